package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// bridgeBinary returns the notifizz-bridge binary: $NOTIFIZZ_BRIDGE_BIN, or one built from
// the repository.
func bridgeBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NOTIFIZZ_BRIDGE_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		require.NoError(t, err)
		return abs
	}
	bin := filepath.Join(t.TempDir(), "notifizz-bridge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/notifizz-bridge")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestBridgeAcceptsTheConfig runs `notifizz-bridge check` on the config the chart renders,
// in the environment the pod gets, so that a key the bridge does not know, a value it refuses
// or a member missing from the group fails here rather than in a crash-looping pod. The cases
// whose config names mounted files are left out: check opens them.
func TestBridgeAcceptsTheConfig(t *testing.T) {
	bin := bridgeBinary(t)
	for _, tc := range chartCases {
		if tc.files != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			o := render(t, tc.args...)
			members := tc.members
			if members == nil {
				members = []string{o.statefulSet.Name + "-0"}
			}
			for _, pod := range members {
				effective, stderr, err := check(t, bin, o, pod)
				require.NoError(t, err, "%s", stderr)
				// With every secret given, check warns of nothing but the auth secret key, which
				// only the token command needs, when the Secret has none.
				for _, line := range strings.Split(stderr, "\n") {
					if line != "" && !slices.Contains(tc.env, "NOTIFIZZ_AUTH_SECRET_KEY") && !tc.dryRun() {
						assert.Contains(t, line, "warning: notifizz.authSecretKey: is empty")
					} else {
						assert.Empty(t, line)
					}
				}
				var cfg struct {
					NATS struct {
						URL string `json:"url"`
					} `json:"nats"`
					HTTP struct {
						Listen string `json:"listen"`
					} `json:"http"`
					Partitions struct {
						Count   int    `json:"count"`
						Member  string `json:"member"`
						Members any    `json:"members"`
					} `json:"partitions"`
				}
				require.NoError(t, yaml.Unmarshal(effective, &cfg), "%s", effective)
				assert.Equal(t, tc.natsURL, cfg.NATS.URL)
				assert.Contains(t, cfg.HTTP.Listen, "0.0.0.0:")
				assert.Equal(t, tc.partitions, cfg.Partitions.Count)
				if tc.members != nil {
					assert.Equal(t, pod, cfg.Partitions.Member, "the pod is the member of its name")
				}
			}
		})
	}

	// The member name is what makes a pod part of the group: a pod of another name is refused.
	t.Run("a pod that is no member", func(t *testing.T) {
		o := render(t, "-f", chartDir+"/ci/group-values.yaml", "--set", "secret.natsCreds=", "--set", "secret.natsToken=token")
		_, stderr, err := check(t, bin, o, "rel-notifizz-bridge-3")
		require.Error(t, err)
		assert.Contains(t, stderr, `"rel-notifizz-bridge-3" is not in partitions.members`)
	})
}

// check writes the rendered config to a file and runs check on it in the environment the
// pod named pod gets, with made-up secrets; it returns the effective config check prints.
func check(t *testing.T, bin string, o *objects, pod string) ([]byte, string, error) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(o.configText), 0o600))
	values := map[string]string{
		"NOTIFIZZ_BRIDGE_MEMBER":        pod,
		"NOTIFIZZ_SDK_SECRET_KEY":       "sk_test_chart",
		"NOTIFIZZ_AUTH_SECRET_KEY":      "auth_test_chart",
		"NOTIFIZZ_BRIDGE_NATS_TOKEN":    "token_test_chart",
		"NOTIFIZZ_BRIDGE_NATS_PASSWORD": "password_test_chart",
	}
	// Only what the pod's environment holds, nothing of this process's.
	env := []string{"HOME=" + dir}
	for _, e := range o.container(t).Env {
		v, ok := values[e.Name]
		require.True(t, ok, "no test value for %s", e.Name)
		env = append(env, e.Name+"="+v)
	}
	slices.Sort(env)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "check", "--config", cfgPath)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), strings.TrimSpace(stderr.String()), err
}
