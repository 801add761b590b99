package test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// chartCase is one set of values and what its rendering must hold.
type chartCase struct {
	name string
	args []string
	// What the case sets, which the checks common to every case compare with.
	replicas   int
	secretName string // "" when the pod reads no Secret
	natsURL    string // "" for the embedded server
	httpPort   int
	natsPort   int
	persistent bool // a PersistentVolumeClaim per pod (embedded server only)
	monitoring bool // ServiceMonitor and PrometheusRule
	// The environment variables the container gets, in order.
	env []string
	// The files the config names (nats.credsFile, nats.tls.caFile, ...): the Secret and key
	// mounted there.
	files map[string][2]string
	// Partitioned cases: the members, in order, the partition count, and
	// partitions.failoverAfter ("" when the chart leaves the bridge's default).
	members       []string
	partitions    int
	failoverAfter string
}

var chartCases = []chartCase{
	{
		name:       "embedded server, defaults and a token",
		args:       []string{"-f", chartDir + "/ci/embedded-values.yaml"},
		replicas:   1,
		secretName: "notifizz-bridge",
		httpPort:   8080, natsPort: 4222, persistent: true,
		env: []string{"NOTIFIZZ_BRIDGE_MEMBER", "NOTIFIZZ_SDK_SECRET_KEY", "NOTIFIZZ_AUTH_SECRET_KEY", "NOTIFIZZ_BRIDGE_NATS_TOKEN"},
	},
	{
		name:       "static group of three on an external server, with monitoring",
		args:       []string{"-f", chartDir + "/ci/group-values.yaml"},
		replicas:   3,
		secretName: "notifizz-bridge",
		natsURL:    "nats://nats.nats.svc:4222",
		httpPort:   8080,
		monitoring: true,
		env:        []string{"NOTIFIZZ_BRIDGE_MEMBER", "NOTIFIZZ_SDK_SECRET_KEY", "NOTIFIZZ_AUTH_SECRET_KEY"},
		files:      map[string][2]string{"nats.credsFile": {"notifizz-bridge", "nats.creds"}},
		members:    []string{"rel-notifizz-bridge-0", "rel-notifizz-bridge-1", "rel-notifizz-bridge-2"},
		partitions: 3,
	},
	{
		name: "static group of two over four partitions, renamed, token, other ports",
		args: []string{"--set", "replicaCount=2", "--set", "partitions.count=4", "--set", "fullnameOverride=bridge",
			"--set", "nats.url=nats://a:4222\\,nats://b:4222", "--set", "secret.name=keys", "--set", "secret.natsToken=token",
			"--set", "secret.authSecretKey=", "--set", "service.httpPort=9090", "--set", "partitions.group=orders",
			"--set", "partitions.failoverAfter=3s"},
		replicas:      2,
		secretName:    "keys",
		natsURL:       "nats://a:4222,nats://b:4222",
		httpPort:      9090,
		env:           []string{"NOTIFIZZ_BRIDGE_MEMBER", "NOTIFIZZ_SDK_SECRET_KEY", "NOTIFIZZ_BRIDGE_NATS_TOKEN"},
		members:       []string{"bridge-0", "bridge-1"},
		partitions:    4,
		failoverAfter: "3s",
	},
	{
		name: "dry run: no Secret, embedded server open to a trusted network, no volume claim",
		args: []string{"--set", "config.notifizz.dryRun=true", "--set", "nats.embedded.allowNoAuth=true",
			"--set", "persistence.enabled=false", "--set", "service.natsPort=4333"},
		replicas: 1,
		httpPort: 8080, natsPort: 4333,
		env: []string{"NOTIFIZZ_BRIDGE_MEMBER"},
	},
	{
		name: "external server with user, password and TLS files",
		args: []string{"--set", "nats.url=tls://nats.example.com:4222", "--set", "secret.name=keys",
			"--set", "nats.user=bridge", "--set", "secret.natsPassword=nats-password",
			"--set", "nats.tls.secretName=nats-tls", "--set", "nats.tls.caFile=ca.crt",
			"--set", "nats.tls.certFile=tls.crt", "--set", "nats.tls.keyFile=tls.key"},
		replicas:   1,
		secretName: "keys",
		natsURL:    "tls://nats.example.com:4222",
		httpPort:   8080,
		env:        []string{"NOTIFIZZ_BRIDGE_MEMBER", "NOTIFIZZ_SDK_SECRET_KEY", "NOTIFIZZ_AUTH_SECRET_KEY", "NOTIFIZZ_BRIDGE_NATS_PASSWORD"},
		files: map[string][2]string{
			"nats.tls.caFile": {"nats-tls", "ca.crt"}, "nats.tls.certFile": {"nats-tls", "tls.crt"}, "nats.tls.keyFile": {"nats-tls", "tls.key"},
		},
	},
	{
		name:       "embedded server secured by an nkey seed",
		args:       []string{"--set", "secret.name=keys", "--set", "secret.natsNkeySeed=seed"},
		replicas:   1,
		secretName: "keys",
		httpPort:   8080, natsPort: 4222, persistent: true,
		env:   []string{"NOTIFIZZ_BRIDGE_MEMBER", "NOTIFIZZ_SDK_SECRET_KEY", "NOTIFIZZ_AUTH_SECRET_KEY"},
		files: map[string][2]string{"nats.nkeySeedFile": {"keys", "seed"}},
	},
}

func TestChartRenders(t *testing.T) {
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			o := render(t, tc.args...)
			checkStatefulSet(t, tc, o)
			checkSecurity(t, o)
			checkProbes(t, tc, o)
			checkEnvAndSecrets(t, tc, o)
			checkConfig(t, tc, o)
			checkFiles(t, tc, o)
			checkServices(t, tc, o)
			checkPDB(t, o)
			checkMonitoring(t, tc, o)
		})
	}
}

// podLabels are the labels of the StatefulSet's pods.
func podLabels(o *objects) labels.Set {
	return labels.Set(o.statefulSet.Spec.Template.Labels)
}

func checkStatefulSet(t *testing.T, tc chartCase, o *objects) {
	sts := o.statefulSet
	require.NotNil(t, sts)
	assert.Equal(t, namespace, sts.Namespace)
	require.NotNil(t, sts.Spec.Replicas)
	assert.Equal(t, int32(tc.replicas), *sts.Spec.Replicas)
	assert.Equal(t, "Parallel", string(sts.Spec.PodManagementPolicy))
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(podLabels(o)), "the selector %s must match the pods' labels %v", sel, podLabels(o))
	assert.NotEmpty(t, sts.Spec.Template.Annotations["checksum/config"], "a config change must roll the pods")
	c := o.container(t)
	assert.Equal(t, []string{"run", "--config", "/etc/notifizz-bridge/config.yaml"}, c.Args)
	assert.Contains(t, c.Image, "notifizz-bridge:")
}

func checkSecurity(t *testing.T, o *objects) {
	pod := o.statefulSet.Spec.Template.Spec
	require.NotNil(t, pod.SecurityContext)
	// The distroless image's nonroot user, and a group that owns the volumes.
	assert.Equal(t, ptrTo(int64(65532)), pod.SecurityContext.RunAsUser)
	assert.Equal(t, ptrTo(int64(65532)), pod.SecurityContext.FSGroup)
	assert.Equal(t, ptrTo(true), pod.SecurityContext.RunAsNonRoot)
	assert.Equal(t, ptrTo(false), pod.AutomountServiceAccountToken)
	sc := o.container(t).SecurityContext
	require.NotNil(t, sc)
	assert.Equal(t, ptrTo(true), sc.ReadOnlyRootFilesystem)
	assert.Equal(t, ptrTo(false), sc.AllowPrivilegeEscalation)
	require.NotNil(t, sc.Capabilities)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	// The only writable place is the embedded server's store.
	for _, m := range o.container(t).VolumeMounts {
		if !m.ReadOnly {
			assert.Equal(t, "/data", m.MountPath, "volume %s is writable", m.Name)
		}
	}
	res := o.container(t).Resources
	assert.False(t, res.Requests.Memory().IsZero(), "a memory request")
	assert.False(t, res.Limits.Memory().IsZero(), "a memory limit")
}

func checkProbes(t *testing.T, tc chartCase, o *objects) {
	c := o.container(t)
	port := containerPort(c, "http")
	assert.Equal(t, int32(tc.httpPort), port, "the http container port")
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		require.NotNil(t, p.probe, p.name)
		require.NotNil(t, p.probe.HTTPGet, p.name)
		assert.Equal(t, p.path, p.probe.HTTPGet.Path, p.name)
		assert.Equal(t, "http", p.probe.HTTPGet.Port.String(), p.name)
	}
	// The bridge listens where the probes knock.
	listen, _ := o.lookup("http.listen")
	assert.Equal(t, fmt.Sprintf("0.0.0.0:%d", tc.httpPort), listen)
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// varRef matches the ${VAR} and ${VAR:-default} references the bridge expands in its config.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

func checkEnvAndSecrets(t *testing.T, tc chartCase, o *objects) {
	c := o.container(t)
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
		switch {
		case e.Name == "NOTIFIZZ_BRIDGE_MEMBER":
			require.NotNil(t, e.ValueFrom)
			require.NotNil(t, e.ValueFrom.FieldRef, "the member name is the pod's name")
			assert.Equal(t, "metadata.name", e.ValueFrom.FieldRef.FieldPath)
		default:
			require.NotNil(t, e.ValueFrom, e.Name)
			require.NotNil(t, e.ValueFrom.SecretKeyRef, "%s comes from the Secret", e.Name)
			assert.Empty(t, e.Value, "%s: no secret in the manifest", e.Name)
			assert.Equal(t, tc.secretName, e.ValueFrom.SecretKeyRef.Name, e.Name)
			// Only the key the token command needs may be missing from the Secret.
			optional := e.ValueFrom.SecretKeyRef.Optional != nil && *e.ValueFrom.SecretKeyRef.Optional
			assert.Equal(t, e.Name == "NOTIFIZZ_AUTH_SECRET_KEY", optional, "%s optional", e.Name)
		}
	}
	assert.Equal(t, tc.env, names)
	// Every variable the config expands is one the pod sets, so that a secret can never be
	// silently empty; and every secret the pod gets is used.
	var refs []string
	for _, m := range varRef.FindAllStringSubmatch(o.configText, -1) {
		require.Empty(t, m[2], "the chart's config relies on no default of %s", m[1])
		refs = append(refs, m[1])
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	want := slices.Clone(names)
	slices.Sort(want)
	if tc.members == nil {
		// Outside a group the member name is not read.
		want = slices.DeleteFunc(want, func(s string) bool { return s == "NOTIFIZZ_BRIDGE_MEMBER" })
	}
	assert.ElementsMatch(t, want, refs, "the variables the config expands")
	assert.NotContains(t, o.configText, "sk_", "no secret in the config")
}

func checkConfig(t *testing.T, tc chartCase, o *objects) {
	url, _ := o.lookup("nats.url")
	assert.Equal(t, tc.natsURL, url)
	_, embedded := o.lookup("nats.embedded")
	assert.Equal(t, tc.natsURL == "", embedded, "embedded server settings only without nats.url")
	if tc.natsURL == "" {
		listen, _ := o.lookup("nats.embedded.listen")
		assert.Equal(t, fmt.Sprintf("0.0.0.0:%d", tc.natsPort), listen)
		assert.Equal(t, int32(tc.natsPort), containerPort(o.container(t), "nats"))
		storeDir, _ := o.lookup("nats.embedded.storeDir")
		assert.Equal(t, "/data/nats", storeDir)
		assert.Equal(t, "/data", mountPath(o.container(t), "data"), "the store is on the data volume")
		if tc.persistent {
			require.Len(t, o.statefulSet.Spec.VolumeClaimTemplates, 1)
			pvc := o.statefulSet.Spec.VolumeClaimTemplates[0]
			assert.Equal(t, "data", pvc.Name)
			assert.Equal(t, "1Gi", pvc.Spec.Resources.Requests.Storage().String())
		} else {
			assert.Empty(t, o.statefulSet.Spec.VolumeClaimTemplates)
			v := volume(o, "data")
			require.NotNil(t, v)
			assert.NotNil(t, v.EmptyDir)
		}
	} else {
		assert.Zero(t, containerPort(o.container(t), "nats"))
		assert.Empty(t, o.statefulSet.Spec.VolumeClaimTemplates, "no store with an external server")
		assert.Nil(t, volume(o, "data"))
	}

	partitions, grouped := o.lookup("partitions")
	if tc.members == nil {
		assert.False(t, grouped, "single-replica mode has no partitions: %v", partitions)
		return
	}
	// The pods of a StatefulSet are named <name>-<ordinal>, and each is the member of its name.
	var pods []string
	for i := range tc.replicas {
		pods = append(pods, o.statefulSet.Name+"-"+strconv.Itoa(i))
	}
	assert.Equal(t, tc.members, pods, "the pod names")
	members, _ := o.lookup("partitions.members")
	assert.Equal(t, strings.Join(tc.members, ","), members)
	member, _ := o.lookup("partitions.member")
	assert.Equal(t, "${NOTIFIZZ_BRIDGE_MEMBER}", member)
	count, _ := o.lookup("partitions.count")
	assert.EqualValues(t, tc.partitions, count)
	mode, _ := o.lookup("partitions.mode")
	assert.Equal(t, "static", mode)
	failoverAfter, set := o.lookup("partitions.failoverAfter")
	if tc.failoverAfter == "" {
		assert.False(t, set, "partitions.failoverAfter left to the bridge: %v", failoverAfter)
	} else {
		assert.Equal(t, tc.failoverAfter, failoverAfter)
	}
}

func mountPath(c corev1.Container, volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return ""
}

func volume(o *objects, name string) *corev1.Volume {
	for i, v := range o.statefulSet.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &o.statefulSet.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// checkFiles follows every file the config names to the Secret key mounted there, and the
// config file to the ConfigMap.
func checkFiles(t *testing.T, tc chartCase, o *objects) {
	c := o.container(t)
	cfgVol := volume(o, "config")
	require.NotNil(t, cfgVol)
	require.NotNil(t, cfgVol.ConfigMap)
	assert.Equal(t, o.configMap.Name, cfgVol.ConfigMap.Name)
	assert.Equal(t, "/etc/notifizz-bridge/config.yaml", mountPath(c, "config"))

	got := map[string][2]string{}
	for _, key := range []string{"nats.credsFile", "nats.nkeySeedFile", "nats.tls.caFile", "nats.tls.certFile", "nats.tls.keyFile"} {
		if v, ok := o.lookup(key); ok {
			secret, secretKey := mountedSecretKey(t, o, v.(string))
			got[key] = [2]string{secret, secretKey}
		}
	}
	if len(got) == 0 {
		got = nil
	}
	assert.Equal(t, tc.files, got, "the Secret and key each file of the config is read from")
}

// mountedSecretKey returns the Secret and key that the container sees at file, if any.
func mountedSecretKey(t *testing.T, o *objects, file string) (secret, key string) {
	for _, m := range o.container(t).VolumeMounts {
		rel, ok := strings.CutPrefix(file, m.MountPath+"/")
		if !ok {
			continue
		}
		v := volume(o, m.Name)
		if v == nil || v.Secret == nil {
			return "", ""
		}
		if len(v.Secret.Items) == 0 {
			return v.Secret.SecretName, rel
		}
		for _, it := range v.Secret.Items {
			if it.Path == rel {
				return v.Secret.SecretName, it.Key
			}
		}
	}
	return "", ""
}

func checkServices(t *testing.T, tc chartCase, o *objects) {
	require.Len(t, o.services, 2)
	// The Service is named after the release's full name, as the StatefulSet is.
	main := o.services[o.statefulSet.Name]
	require.NotNil(t, main, "the Service: %v", o.services)
	headless := o.services[main.Name+"-headless"]
	require.NotNil(t, headless)
	assert.Equal(t, headless.Name, o.statefulSet.Spec.ServiceName, "the governing Service")
	assert.Equal(t, "None", headless.Spec.ClusterIP)
	for _, svc := range []*corev1.Service{main, headless} {
		assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels(o)), "%s selects the pods", svc.Name)
	}
	ports := map[string]int32{}
	for _, p := range main.Spec.Ports {
		ports[p.Name] = p.Port
		assert.Equal(t, p.Name, p.TargetPort.String(), "targets the container port by name")
	}
	want := map[string]int32{"http": int32(tc.httpPort)}
	if tc.natsURL == "" {
		want["nats"] = int32(tc.natsPort)
	}
	assert.Equal(t, want, ports)
}

func checkPDB(t *testing.T, o *objects) {
	require.NotNil(t, o.pdb)
	require.NotNil(t, o.pdb.Spec.MaxUnavailable)
	assert.Equal(t, "1", o.pdb.Spec.MaxUnavailable.String())
	assert.Nil(t, o.pdb.Spec.MinAvailable)
	sel, err := metav1.LabelSelectorAsSelector(o.pdb.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(podLabels(o)))
}

func checkMonitoring(t *testing.T, tc chartCase, o *objects) {
	if !tc.monitoring {
		assert.Nil(t, o.serviceMonitor)
		assert.Nil(t, o.prometheusRule)
		return
	}
	sm := o.serviceMonitor
	require.NotNil(t, sm)
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	require.NoError(t, err)
	var selected []string
	for name, svc := range o.services {
		if sel.Matches(labels.Set(svc.Labels)) {
			selected = append(selected, name)
		}
	}
	// One Service, or each pod would be scraped twice.
	assert.Equal(t, []string{o.statefulSet.Name}, selected)
	require.Len(t, sm.Spec.Endpoints, 1)
	assert.Equal(t, "http", sm.Spec.Endpoints[0].Port)
	assert.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
	assert.Equal(t, []string{namespace}, sm.Spec.NamespaceSelector.MatchNames)

	require.NotNil(t, o.prometheusRule)
	assert.Equal(t, alertRules(t), o.prometheusRule.Spec, "the PrometheusRule holds the project's alert rules")
}

func ptrTo[T any](v T) *T { return &v }

// TestChartRefuses renders values the bridge could not run with: the chart must fail with a
// message that names what to set.
func TestChartRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"several replicas on the embedded server",
			[]string{"--set", "replicaCount=2", "--set", "secret.name=keys", "--set", "secret.natsToken=token"},
			"nats.url is required when replicaCount is 2"},
		{"no Secret",
			[]string{"--set", "secret.natsToken=token"},
			"secret.name is required: the name of an existing Secret"},
		{"no SDK key in the Secret",
			[]string{"--set", "secret.name=keys", "--set", "secret.sdkSecretKey=", "--set", "secret.natsToken=token"},
			"secret.sdkSecretKey is required"},
		{"embedded server without authentication",
			[]string{"--set", "secret.name=keys"},
			"must require authentication: set secret.natsToken"},
		{"two ways to authenticate",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsToken=token", "--set", "secret.natsNkeySeed=seed"},
			"set only one way to authenticate to NATS, not secret.natsToken and secret.natsNkeySeed"},
		{"a password without a user",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsPassword=password"},
			"nats.user is required with secret.natsPassword"},
		{"a creds file for the embedded server",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsCreds=creds"},
			"secret.natsCreds needs an external server (nats.url)"},
		{"TLS files without their Secret",
			[]string{"--set", "secret.name=keys", "--set", "nats.url=nats://n:4222", "--set", "nats.tls.caFile=ca.crt"},
			"nats.tls.secretName is required"},
		{"fewer partitions than replicas",
			[]string{"--set", "replicaCount=3", "--set", "partitions.count=2", "--set", "nats.url=nats://n:4222", "--set", "secret.name=keys"},
			"partitions.count (2) must be at least replicaCount (3)"},
		{"a full name that is no member name",
			[]string{"--set", "replicaCount=2", "--set", "fullnameOverride=bridge.eu", "--set", "nats.url=nats://n:4222", "--set", "secret.name=keys"},
			`the release's full name "bridge.eu" must hold only letters, digits, '-' and '_'`},
		{"a key the chart sets, in config",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsToken=token", "--set", "config.nats.url=nats://n:4222"},
			"additional properties 'nats' not allowed"},
		{"partitions in config",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsToken=token", "--set", "config.partitions.count=3"},
			"additional properties 'partitions' not allowed"},
		{"a secret in config",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsToken=token", "--set", "config.notifizz.sdkSecretKey=sk_live"},
			"/config/notifizz"},
		{"a misspelt value",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsToken=token", "--set", "replicas=3"},
			"additional properties 'replicas' not allowed"},
		{"an unknown config section",
			[]string{"--set", "secret.name=keys", "--set", "secret.natsToken=token", "--set", "config.coalese.delay=2s"},
			"additional properties 'coalese' not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := template(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "sk_live", "no secret in the error")
		})
	}
}

// TestChartLints runs helm lint --strict with each values file of the chart's ci/ folder.
func TestChartLints(t *testing.T) {
	for _, f := range []string{"embedded-values.yaml", "group-values.yaml"} {
		t.Run(f, func(t *testing.T) {
			out, err := runHelm(t, "lint", "--strict", chartDir, "-f", chartDir+"/ci/"+f)
			require.NoError(t, err, out)
			assert.Contains(t, out, "0 chart(s) failed")
		})
	}
}

// dryRun reports whether the case runs the bridge in dry-run mode.
func (tc chartCase) dryRun() bool {
	return slices.Contains(tc.args, "config.notifizz.dryRun=true")
}
