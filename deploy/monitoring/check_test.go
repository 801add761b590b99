// Package monitoring checks the dashboard and the alert rules of this directory against the
// metrics the bridge exports, so that a renamed metric cannot break them silently. It is its
// own Go module, so that the Prometheus server's module, whose PromQL parser and rule-file
// reader it uses, does not join the bridge's dependencies.
//
// metrics.txt, the list it checks against, is written from a real scrape and kept equal to it by
// TestMetricsListMatchesScrape in cmd/notifizz-bridge.
package monitoring

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

var promql = parser.NewParser(parser.Options{})

// exported reads metrics.txt.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			names[l] = true
		}
	}
	if !names["notifizz_bridge_messages_total"] {
		t.Fatalf("metrics.txt lists no notifizz_bridge_messages_total: %d names", len(names))
	}
	return names
}

// metricNames returns the metric names an expression selects, and fails on a selector without
// one: every query here names its metric.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return nil
	}
	var names []string
	for _, matchers := range parser.ExtractSelectors(e) {
		name := ""
		for _, m := range matchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: a selector names no metric: %v", where, matchers)
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	return names
}

// grafanaVars are the range variables Grafana fills in; they are not PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// labelValues matches Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboard is the part of dashboard.json the checks read.
type dashboard struct {
	UID        string     `json:"uid"`
	Inputs     []any      `json:"__inputs"`
	Panels     []panel    `json:"panels"`
	Templating templating `json:"templating"`
}

type templating struct {
	List []struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"`
		Datasource *datasource     `json:"datasource"`
	} `json:"list"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboardQueriesUseExportedMetrics parses every query of the dashboard, its variables'
// too, and checks each metric it names against metrics.txt.
func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	names := exported(t)
	d := readDashboard(t)
	checked := 0
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, target := range p.Targets {
				for _, n := range metricNames(t, "panel "+p.Title, grafanaVars.Replace(target.Expr)) {
					checked++
					if !names[n] {
						t.Errorf("panel %q: %s is not a metric the bridge exports (metrics.txt)", p.Title, n)
					}
				}
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("variable %s: %v", v.Name, err)
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: not a label_values(selector, label) query: %q", v.Name, q.Query)
			continue
		}
		for _, n := range metricNames(t, "variable "+v.Name, m[1]) {
			checked++
			if !names[n] {
				t.Errorf("variable %s: %s is not a metric the bridge exports (metrics.txt)", v.Name, n)
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d metric references checked: the dashboard was not read as expected", checked)
	}
}

// TestDashboardDatasourceIsTemplated checks that the dashboard imports anywhere: every panel and
// query uses the ${datasource} variable, and no UID is written in.
func TestDashboardDatasourceIsTemplated(t *testing.T) {
	d := readDashboard(t)
	if d.UID != "" || len(d.Inputs) > 0 {
		t.Errorf("the dashboard has a uid (%q) or __inputs: let the importer choose", d.UID)
	}
	hasVar := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" {
			hasVar = true
		}
		if v.Datasource != nil && v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s uses data source %q", v.Name, v.Datasource.UID)
		}
	}
	if !hasVar {
		t.Error("no datasource variable")
	}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: data source %+v, want ${datasource}", p.Title, p.Datasource)
			}
			for _, target := range p.Targets {
				if target.Datasource == nil || target.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: a query's data source is %+v, want ${datasource}", p.Title, target.Datasource)
				}
			}
		}
	}
	walk(d.Panels)
	// A UID anywhere else in the file would be one hard-coded.
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	uids := regexp.MustCompile(`"uid":\s*"([^"]*)"`).FindAllStringSubmatch(string(data), -1)
	for _, m := range uids {
		if m[1] != "${datasource}" {
			t.Errorf("hard-coded uid %q", m[1])
		}
	}
}

// TestRulesUseExportedMetrics parses alerts.yaml as Prometheus does and checks every metric its
// expressions name, that each alert waits (for:) and links to its runbook section.
func TestRulesUseExportedMetrics(t *testing.T) {
	names := exported(t)
	groups, errs := rulefmt.ParseFile("alerts.yaml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	runbook, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, n := range metricNames(t, "alert "+r.Alert, r.Expr) {
				if !names[n] {
					t.Errorf("alert %s: %s is not a metric the bridge exports (metrics.txt)", r.Alert, n)
				}
			}
			if r.For == 0 && r.Alert != "" {
				t.Errorf("alert %s has no for: duration", r.Alert)
			}
			anchor := "#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "/docs/OPERATIONS.md"+anchor) {
				t.Errorf("alert %s: runbook_url %q does not point at docs/OPERATIONS.md%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !regexp.MustCompile(`(?m)^#+ ` + regexp.QuoteMeta(r.Alert) + `$`).Match(runbook) {
				t.Errorf("alert %s: docs/OPERATIONS.md has no heading %q for its runbook link", r.Alert, r.Alert)
			}
		}
	}
	want := []string{"NotifizzBridgeAPIErrors", "NotifizzBridgeAuthFailures", "NotifizzBridgeDeadLetters",
		"NotifizzBridgeGroupMemberMissing", "NotifizzBridgeLagGrowing", "NotifizzBridgeNotReady",
		"NotifizzBridgeRedeliveryStorm", "NotifizzBridgeStalled"}
	slices.Sort(alerts)
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts %v, want %v", alerts, want)
	}
}

// TestRuleTestsUseExportedMetrics checks the series of the promtool tests: a test on a series
// the bridge does not export would pass while the alert could never fire.
func TestRuleTestsUseExportedMetrics(t *testing.T) {
	names := exported(t)
	data, err := os.ReadFile("alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Tests []struct {
			Name        string `yaml:"name"`
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, test := range file.Tests {
		for _, s := range test.InputSeries {
			for _, name := range metricNames(t, "test "+test.Name, s.Series) {
				n++
				if !names[name] {
					t.Errorf("test %q: %s is not a metric the bridge exports (metrics.txt)", test.Name, name)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no input series read")
	}
}
