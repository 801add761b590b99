package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// The project's alert rules, and the chart's copy of them, which its PrometheusRule serves.
var (
	rulesFile     = filepath.Join("..", "..", "monitoring", "alerts.yaml")
	chartRuleCopy = filepath.Join(chartDir, "files", "alerts.yaml")
)

// TestAlertRulesCopyIsInSync fails when the chart's copy of the alert rules differs from
// deploy/monitoring/alerts.yaml: run deploy/helm/sync-alerts.sh.
func TestAlertRulesCopyIsInSync(t *testing.T) {
	want, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	got, err := os.ReadFile(chartRuleCopy)
	require.NoError(t, err)
	if string(want) == string(got) {
		return
	}
	wantLines, gotLines := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	line := 0
	for line < min(len(wantLines), len(gotLines)) && wantLines[line] == gotLines[line] {
		line++
	}
	t.Errorf("%s differs from %s from line %d on: run deploy/helm/sync-alerts.sh", chartRuleCopy, rulesFile, line+1)
}

// alertRules reads the chart's copy of the rules strictly as a PrometheusRule's spec: a rule
// file is the same shape ({groups: [...]}).
func alertRules(t *testing.T) monitoringv1.PrometheusRuleSpec {
	t.Helper()
	data, err := os.ReadFile(chartRuleCopy)
	require.NoError(t, err)
	var spec monitoringv1.PrometheusRuleSpec
	require.NoError(t, yaml.UnmarshalStrict(data, &spec))
	require.NotEmpty(t, spec.Groups)
	for _, g := range spec.Groups {
		require.NotEmpty(t, g.Rules, "group %s", g.Name)
	}
	return spec
}
