package test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The chart under test, the release and the namespace every test renders it as.
const (
	chartDir  = "../notifizz-bridge"
	release   = "rel"
	namespace = "bridges"
)

// helm returns the helm binary: $HELM, or helm on the PATH.
func helm(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	require.NoError(t, err, "helm is needed: put it on the PATH or set HELM (.ci/helm.sh installs it)")
	return h
}

// runHelm runs helm with args and returns its standard output, or an error carrying its
// standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", args[0], err, stderr.String())
	}
	return stdout.String(), nil
}

// template renders the chart with helm template and the extra args (--set, -f).
func template(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
}

// objects are the objects of one rendering, decoded into their API types.
type objects struct {
	statefulSet     *appsv1.StatefulSet
	configMap       *corev1.ConfigMap
	services        map[string]*corev1.Service
	serviceAccount  *corev1.ServiceAccount
	pdb             *policyv1.PodDisruptionBudget
	serviceMonitor  *monitoringv1.ServiceMonitor
	prometheusRule  *monitoringv1.PrometheusRule
	config          map[string]any // the bridge's config file, from the ConfigMap
	configText      string
	renderedObjects int
}

// render renders the chart and decodes every object strictly; it fails the test on a
// rendering error, an unknown kind, an unknown field or a second object of a kind the chart
// makes one of.
func render(t *testing.T, args ...string) *objects {
	t.Helper()
	out, err := template(t, args...)
	require.NoError(t, err)
	objs, err := decode(out)
	require.NoError(t, err)
	return objs
}

// decode reads the YAML stream helm template writes into objects.
func decode(stream string) (*objects, error) {
	objs := &objects{services: map[string]*corev1.Service{}}
	r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("%w in\n%s", err, doc)
		}
		if len(probe) == 0 {
			continue // a template that rendered nothing
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, err
		}
		var target any
		single := func(have bool, kind string) error {
			if have {
				return fmt.Errorf("a second %s", kind)
			}
			return nil
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 StatefulSet":
			if err := single(objs.statefulSet != nil, tm.Kind); err != nil {
				return nil, err
			}
			objs.statefulSet = &appsv1.StatefulSet{}
			target = objs.statefulSet
		case "v1 ConfigMap":
			if err := single(objs.configMap != nil, tm.Kind); err != nil {
				return nil, err
			}
			objs.configMap = &corev1.ConfigMap{}
			target = objs.configMap
		case "v1 ServiceAccount":
			if err := single(objs.serviceAccount != nil, tm.Kind); err != nil {
				return nil, err
			}
			objs.serviceAccount = &corev1.ServiceAccount{}
			target = objs.serviceAccount
		case "policy/v1 PodDisruptionBudget":
			if err := single(objs.pdb != nil, tm.Kind); err != nil {
				return nil, err
			}
			objs.pdb = &policyv1.PodDisruptionBudget{}
			target = objs.pdb
		case "monitoring.coreos.com/v1 ServiceMonitor":
			if err := single(objs.serviceMonitor != nil, tm.Kind); err != nil {
				return nil, err
			}
			objs.serviceMonitor = &monitoringv1.ServiceMonitor{}
			target = objs.serviceMonitor
		case "monitoring.coreos.com/v1 PrometheusRule":
			if err := single(objs.prometheusRule != nil, tm.Kind); err != nil {
				return nil, err
			}
			objs.prometheusRule = &monitoringv1.PrometheusRule{}
			target = objs.prometheusRule
		case "v1 Service":
			target = &corev1.Service{}
		default:
			return nil, fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			return nil, fmt.Errorf("%s: %w", tm.Kind, err)
		}
		if svc, ok := target.(*corev1.Service); ok {
			if objs.services[svc.Name] != nil {
				return nil, fmt.Errorf("two Services named %s", svc.Name)
			}
			objs.services[svc.Name] = svc
		}
		objs.renderedObjects++
	}
	if objs.configMap != nil {
		objs.configText = objs.configMap.Data["config.yaml"]
		if err := yaml.UnmarshalStrict([]byte(objs.configText), &objs.config); err != nil {
			return nil, fmt.Errorf("config.yaml: %w", err)
		}
	}
	return objs, nil
}

// lookup returns the value at a dotted path of the bridge's config, and whether it is there.
func (o *objects) lookup(path string) (any, bool) {
	var cur any = o.config
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// container returns the bridge's container.
func (o *objects) container(t *testing.T) corev1.Container {
	t.Helper()
	require.NotNil(t, o.statefulSet)
	require.Len(t, o.statefulSet.Spec.Template.Spec.Containers, 1)
	return o.statefulSet.Spec.Template.Spec.Containers[0]
}

// repoRoot is the root of the bridge's repository, which holds this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "config.example.yaml"))
	return root
}
