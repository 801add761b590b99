package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

const examplePath = "../../config.example.yaml"

// clearExampleEnv empties the variables config.example.yaml reads, so that the machine's
// environment cannot change what the tests see. Empty and unset expand alike.
func clearExampleEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{
		"NATS_URL", "NOTIFIZZ_SDK_SECRET_KEY", "NOTIFIZZ_AUTH_SECRET_KEY",
		"NOTIFIZZ_BRIDGE_NATS_LISTEN", "NOTIFIZZ_BRIDGE_STORE_DIR", "NOTIFIZZ_BRIDGE_HTTP_LISTEN",
		"NOTIFIZZ_BRIDGE_LOG_LEVEL", "NOTIFIZZ_BRIDGE_LOG_FORMAT",
		"NOTIFIZZ_BRIDGE_NATS_TOKEN", "NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH",
	} {
		t.Setenv(v, "")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// problems returns the messages of the Problems in err.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var ps Problems
	require.ErrorAs(t, err, &ps)
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

// TestConfigKeys pins the key list, which users script against: renaming a Go field must not
// rename a key.
func TestConfigKeys(t *testing.T) {
	want := []string{
		"nats.url", "nats.credsFile", "nats.nkeySeedFile", "nats.token", "nats.user", "nats.password",
		"nats.tls.caFile", "nats.tls.certFile", "nats.tls.keyFile", "nats.connectTimeout",
		"nats.embedded.listen", "nats.embedded.storeDir", "nats.embedded.allowNoAuth",
		"stream.name", "stream.subjectPrefix", "stream.create", "stream.storage", "stream.replicas",
		"stream.maxAge", "stream.duplicateWindow",
		"consumer.durable", "consumer.ackWait", "consumer.maxDeliver", "consumer.maxAckPending",
		"partitions.count", "partitions.mode", "partitions.group", "partitions.member", "partitions.members",
		"partitions.failoverAfter",
		"coalesce.delay", "coalesce.mode", "coalesce.maxDelay", "coalesce.maxWorkflows", "coalesce.maxBytes",
		"coalesce.orphanTimeout",
		"notifizz.baseUrl", "notifizz.sdkSecretKey", "notifizz.authSecretKey", "notifizz.timeout",
		"notifizz.maxInFlight", "notifizz.rateLimit", "notifizz.dryRun", "notifizz.api", "notifizz.occurredAt",
		"catalog.mode", "catalog.events",
		"retry.attempts", "retry.initialBackoff", "retry.maxBackoff", "retry.nakInitial", "retry.nakMax",
		"deadLetter.stream", "deadLetter.subjectPrefix",
		"http.listen", "health.stallAfter", "log.level", "log.format", "tracing.enabled", "shutdownTimeout",
	}
	var c Config
	var got []string
	secrets := map[string]bool{}
	for _, k := range c.keys() {
		got = append(got, k.name)
		if k.secret {
			secrets[k.name] = true
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, map[string]bool{
		"nats.token": true, "nats.password": true, "notifizz.sdkSecretKey": true, "notifizz.authSecretKey": true,
	}, secrets)
}

func TestExampleConfigLoads(t *testing.T) {
	clearExampleEnv(t)
	cfg, err := Load(examplePath, Options{DryRun: true, NeedSDKKey: true})
	require.NoError(t, err)

	// The example shows the defaults.
	want := Default()
	want.Notifizz.DryRun = true
	assert.Equal(t, want, cfg)
}

func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &doc))
	var inFile []string
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := strings.TrimPrefix(prefix+"."+k.Value, ".")
			if v.Kind == yaml.MappingNode {
				walk(path, v)
				continue
			}
			inFile = append(inFile, path)
			// A comment may explain a small group of keys, so look at the two keys before too.
			documented := false
			for j := i; j >= max(0, i-4); j -= 2 {
				documented = documented || n.Content[j].HeadComment != ""
			}
			assert.True(t, documented, "key %s has no comment near it", path)
		}
	}
	walk("", doc.Content[0])
	var c Config
	for _, k := range c.keys() {
		assert.Contains(t, inFile, k.name, "config.example.yaml does not show %s", k.name)
	}
}

func TestExampleConfigFromEnvironment(t *testing.T) {
	clearExampleEnv(t)
	t.Setenv("NOTIFIZZ_SDK_SECRET_KEY", `sdk "quoted": #secret`)
	t.Setenv("NOTIFIZZ_BRIDGE_HTTP_LISTEN", "0.0.0.0:9090")
	t.Setenv("NATS_URL", "nats://nats-1:4222,nats://nats-2:4222")
	cfg, err := Load(examplePath, Options{NeedSDKKey: true})
	require.NoError(t, err)
	// A value with YAML syntax in it stays one string: expansion happens after parsing.
	assert.Equal(t, `sdk "quoted": #secret`, cfg.Notifizz.SDKSecretKey)
	assert.Equal(t, "0.0.0.0:9090", cfg.HTTP.Listen)
	assert.Equal(t, "nats://nats-1:4222,nats://nats-2:4222", cfg.NATS.URL)
	assert.Equal(t, defaultStoreDir, cfg.NATS.Embedded.StoreDir, "${VAR:-default} takes the default")
}

func TestLoadWithoutFileGivesDefaults(t *testing.T) {
	cfg, err := Load("", Options{})
	require.NoError(t, err)
	assert.Equal(t, Default(), cfg)
	assert.Equal(t, "127.0.0.1:4222", cfg.NATS.Embedded.Listen)
	assert.Equal(t, "./data/nats", cfg.NATS.Embedded.StoreDir)
	assert.Equal(t, "127.0.0.1:8080", cfg.HTTP.Listen)
	assert.Equal(t, Log{Level: "info", Format: "text"}, cfg.Log)
	assert.Equal(t, 10*time.Second, cfg.Notifizz.Timeout)
	assert.Equal(t, "https://eu.api.notifizz.com/v1", cfg.Notifizz.BaseURL)
}

// TestBaseURLFollowsTheProfile: a file that does not set notifizz.baseUrl gets its profile's
// URL, wherever in the file the profile is named; one that sets it keeps it; check prints it.
func TestBaseURLFollowsTheProfile(t *testing.T) {
	const v1, v2 = "https://eu.api.notifizz.com/v1", "https://api.notifizz.com/v1"
	t.Setenv("NB_TEST_UNSET_URL", "")
	for _, tc := range []struct {
		name, file, want string
	}{
		{"no file", "", v1},
		{"v1 by default", "log:\n  level: debug\n", v1},
		{"v1 named", "notifizz:\n  api: v1\n", v1},
		{"v2", "notifizz:\n  api: v2\n", v2},
		{"v2 named after an empty baseUrl", "notifizz:\n  baseUrl: \"\"\n  api: v2\n", v2},
		{"v2 with baseUrl from an unset variable", "notifizz:\n  baseUrl: ${NB_TEST_UNSET_URL}\n  api: v2\n", v2},
		{"v2 with its own URL", "notifizz:\n  api: v2\n  baseUrl: https://notifizz.test/v1\n", "https://notifizz.test/v1"},
		{"v2 keeps the v1 URL when it is written", "notifizz:\n  api: v2\n  baseUrl: " + v1 + "\n", v1},
		{"v1 keeps the v2 URL when it is written", "notifizz:\n  baseUrl: " + v2 + "\n", v2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, "c.yaml", tc.file)
			}
			cfg, err := Load(path, Options{DryRun: true})
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.Notifizz.BaseURL)
			out, err := cfg.YAML()
			require.NoError(t, err)
			assert.Contains(t, string(out), "\n  baseUrl: "+tc.want+"\n", "the effective URL is printed")
		})
	}
	assert.Equal(t, v1, ProfileBaseURL("v1"))
	assert.Equal(t, v2, ProfileBaseURL("v2"))
	assert.Equal(t, v1, Default().Notifizz.BaseURL, "the default profile is v1")
}

func TestLoadDecodes(t *testing.T) {
	path := writeFile(t, "c.yaml", `
nats:
  url: nats://localhost:4222
  user: bridge
  password: "p@ss: word"
stream:
  create: false
  replicas: 3
  maxAge: 24h
coalesce:
  delay: 250ms
  mode: sliding
  maxDelay: 2s
notifizz:
  maxInFlight: 0x10
  rateLimit: 12.5
  dryRun: TRUE
log:
  format: json
  level: ~
http:
tracing:
  enabled: true
shutdownTimeout: 1m30s
`)
	cfg, err := Load(path, Options{})
	require.NoError(t, err)
	want := Default()
	want.NATS.URL, want.NATS.User, want.NATS.Password = "nats://localhost:4222", "bridge", "p@ss: word"
	want.Bridge.Stream.Create, want.Bridge.Stream.Replicas, want.Bridge.Stream.MaxAge = false, 3, 24*time.Hour
	want.Bridge.Coalesce.Delay, want.Bridge.Coalesce.Mode, want.Bridge.Coalesce.MaxDelay = 250*time.Millisecond, "sliding", 2*time.Second
	want.Bridge.MaxInFlight, want.Bridge.RateLimit, want.Notifizz.DryRun = 16, 12.5, true
	want.Log.Format = "json"
	want.Tracing.Enabled = true
	want.Bridge.ShutdownTimeout = 90 * time.Second
	assert.Equal(t, want, cfg)
}

func TestLoadReportsEveryProblemWithItsLine(t *testing.T) {
	path := writeFile(t, "bad.yaml", `nats:
  url: ""
coalesce:
  delay: 1x
  maxWorkflows: many
stream:
  replicas: 0
http:
  listen: nope
log:
  level: loud
  format: xml
notifizz:
  baseUrl: ftp://example.com
  dryRun: maybe
  sdkSecretKey: [a, b]
coalesce.dleay: 1s
shutdownTimeout: 5
consumer:
  ackWait: 1s
  ackWait: 2s
`)
	_, err := Load(path, Options{})
	require.Error(t, err)
	assert.Equal(t, []string{
		`line 4: coalesce.delay: invalid duration "1x" (write a Go duration such as "1s", "500ms" or "2m")`,
		`line 5: coalesce.maxWorkflows: must be an integer, not "many"`,
		`line 7: stream.replicas: must be between 1 and 5, not 0`,
		`line 9: http.listen: must be host:port, not "nope"`,
		`line 11: log.level: must be one of debug, info, warn, error, not "loud"`,
		`line 12: log.format: must be json or text, not "xml"`,
		`line 14: notifizz.baseUrl: must be an absolute http:// or https:// URL, not "ftp://example.com"`,
		`line 15: notifizz.dryRun: must be true or false, not "maybe"`,
		`line 16: notifizz.sdkSecretKey: must be a single value, not a list`,
		`line 17: unknown key "coalesce.dleay" (did you mean "coalesce.delay"?)`,
		`line 18: shutdownTimeout: invalid duration "5" (write a Go duration such as "1s", "500ms" or "2m")`,
		`line 21: key "consumer.ackWait" appears twice (first on line 20)`,
	}, problems(t, err))
	assert.True(t, strings.HasPrefix(err.Error(), path+": invalid configuration, 12 problems:\n  line 4: "), err.Error())
}

// TestCoalesceMaxBytes covers coalesce.maxBytes from file to check: an integer number of bytes
// within its bounds, reported with its line otherwise, and printed back.
func TestCoalesceMaxBytes(t *testing.T) {
	assert.Equal(t, 4<<20, Default().Bridge.Coalesce.MaxBytes)
	tests := []struct {
		value   string
		want    int
		problem string
	}{
		{value: "1048576", want: 1 << 20},
		{value: "0x100000", want: 1 << 20},
		{value: "65536", want: 64 << 10},
		{value: "67108864", want: 64 << 20},
		{value: "${NB_TEST_UNSET:-2097152}", want: 2 << 20},
		{value: "4MiB", problem: `line 3: coalesce.maxBytes: must be an integer, not "4MiB"`},
		{value: "0", problem: "line 3: coalesce.maxBytes: must be between 65536 (64 KiB) and 67108864 (64 MiB) bytes, not 0"},
		{value: "-1", problem: "line 3: coalesce.maxBytes: must be between 65536 (64 KiB) and 67108864 (64 MiB) bytes, not -1"},
		{value: "65535", problem: "line 3: coalesce.maxBytes: must be between 65536 (64 KiB) and 67108864 (64 MiB) bytes, not 65535"},
		{value: "67108865", problem: "line 3: coalesce.maxBytes: must be between 65536 (64 KiB) and 67108864 (64 MiB) bytes, not 67108865"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			path := writeFile(t, "c.yaml", "coalesce:\n  maxWorkflows: 10\n  maxBytes: "+tt.value+"\n")
			cfg, err := Load(path, Options{})
			if tt.problem != "" {
				assert.Equal(t, []string{tt.problem}, problems(t, err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.Bridge.Coalesce.MaxBytes)
			out, err := cfg.YAML()
			require.NoError(t, err)
			assert.Contains(t, string(out), "  maxBytes: "+strconv.Itoa(tt.want)+"\n", "check prints it")
		})
	}
}

func TestLoadUnknownNestedKey(t *testing.T) {
	path := writeFile(t, "c.yaml", "coalesce:\n  delay: 1s\n\n  dleay: 2s\n")
	_, err := Load(path, Options{})
	assert.EqualError(t, err, path+`: invalid configuration: line 4: unknown key "coalesce.dleay" (did you mean "coalesce.delay"?)`)
}

func TestLoadStructureErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"syntax", "nats:\n  url: [\n", "parse YAML: line 2: did not find expected node content"},
		{"scalar document", "hello\n", "line 1: the document must be a mapping of keys to values"},
		{"scalar section", "nats: nope\n", "line 1: nats: must be a mapping of keys to values"},
		{"two documents", "log:\n  level: info\n---\nlog:\n  level: debug\n", "parse YAML: the file must hold exactly one YAML document"},
		{"mapping for a value", "http:\n  listen:\n    host: x\n", "line 2: http.listen: must be a single value, not a mapping"},
		{"tab indentation", "coalesce:\n\tdelay: 1s\n",
			"parse YAML: line 2: found character that cannot start any token (YAML does not allow tabs for indentation: indent with spaces)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", tc.yaml), Options{})
			assert.Equal(t, []string{tc.want}, problems(t, err))
		})
	}
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	for _, content := range []string{"", "# only a comment\n", "~\n"} {
		cfg, err := Load(writeFile(t, "c.yaml", content), Options{})
		require.NoError(t, err)
		assert.Equal(t, Default(), cfg)
	}
}

func TestLoadExpandsEnvironment(t *testing.T) {
	t.Setenv("NB_TEST_DELAY", "3s")
	t.Setenv("NB_TEST_EMPTY", "")
	t.Setenv("NB_TEST_USER", "svc")
	path := writeFile(t, "c.yaml", `
coalesce:
  delay: ${NB_TEST_DELAY}
  maxDelay: ${NB_TEST_UNSET_DURATION}
  maxWorkflows: ${NB_TEST_UNSET:-42}
stream:
  name: ${NB_TEST_EMPTY:-EVENTS}
nats:
  url: nats://${NB_TEST_USER}@localhost:4222
  embedded:
    storeDir: "$${NOT_A_VAR}/pa$word"
`)
	cfg, err := Load(path, Options{})
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cfg.Bridge.Coalesce.Delay)
	assert.Equal(t, Default().Bridge.Coalesce.MaxDelay, cfg.Bridge.Coalesce.MaxDelay, "an unset variable keeps the default")
	assert.Equal(t, 42, cfg.Bridge.Coalesce.MaxWorkflows)
	assert.Equal(t, "EVENTS", cfg.Bridge.Stream.Name)
	assert.Equal(t, "nats://svc@localhost:4222", cfg.NATS.URL)
	assert.Equal(t, "${NOT_A_VAR}/pa$word", cfg.NATS.Embedded.StoreDir)
}

func TestLoadEnvironmentErrors(t *testing.T) {
	t.Setenv("NB_TEST_BAD_DURATION", "soon")
	path := writeFile(t, "c.yaml", "coalesce:\n  delay: ${NB_TEST_BAD_DURATION}\nnats:\n  url: ${NATS\n")
	_, err := Load(path, Options{})
	assert.Equal(t, []string{
		`line 2: coalesce.delay: invalid duration "soon" (write a Go duration such as "1s", "500ms" or "2m")`,
		`line 4: nats.url: unterminated ${ (write $${ for a literal ${)`,
	}, problems(t, err))
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x${A}y${B_2}z", want: "xalphaybz"},
		{in: "${UNSET}", want: ""},
		{in: "${UNSET:-dflt}", want: "dflt"},
		{in: "${EMPTY:-dflt}", want: "dflt"},
		{in: "${A:-dflt}", want: "alpha"},
		{in: "${UNSET:-}", want: ""},
		{in: "$A $ $$ $${A}", want: "$A $ $$ ${A}"},
		{in: "${A", err: "unterminated ${ (write $${ for a literal ${)"},
		{in: "${}", err: `invalid variable name "" in ${...}`},
		{in: "${1A}", err: `invalid variable name "1A" in ${...}`},
		{in: "${A-B}", err: `invalid variable name "A-B" in ${...}`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := expandEnv(tc.in, lookup)
			if tc.err != "" {
				assert.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestValidateNATS(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "user.creds")
	require.NoError(t, os.WriteFile(creds, []byte("x"), 0o600))
	for _, tc := range []struct {
		name string
		edit func(*NATS)
		want []string
	}{
		{"embedded default", func(*NATS) {}, nil},
		{"embedded bad listen", func(n *NATS) { n.Embedded.Listen = "localhost"; n.Embedded.StoreDir = "" }, []string{
			`nats.embedded.listen: must be host:port, not "localhost"`,
			"nats.embedded.storeDir: must not be empty when nats.url is empty",
		}},
		{"port zero", func(n *NATS) { n.Embedded.Listen = "127.0.0.1:0" }, []string{
			`nats.embedded.listen: must be host:port with a port from 1 to 65535, not "127.0.0.1:0"`,
		}},
		{"embedded token", func(n *NATS) { n.Token = "t" }, nil},
		{"embedded user and password", func(n *NATS) { n.User = "u"; n.Password = "p" }, nil},
		{"embedded nkey", func(n *NATS) { n.NkeySeedFile = creds }, nil},
		{"embedded tls", func(n *NATS) { n.TLS = TLS{CAFile: creds, CertFile: creds, KeyFile: creds}; n.Token = "t" }, nil},
		{"embedded two auth methods", func(n *NATS) { n.Token = "t"; n.NkeySeedFile = creds }, []string{
			"nats: set only one way to authenticate, not nats.nkeySeedFile and nats.token",
		}},
		{"embedded password without user", func(n *NATS) { n.Password = "secretpw" }, []string{
			"nats.user: is required with nats.password",
		}},
		{"embedded password too long", func(n *NATS) { n.User = "u"; n.Password = strings.Repeat("secretpw", 10) }, []string{
			"nats.password: must be at most 72 bytes with the embedded server, which keeps only a bcrypt hash of it",
		}},
		{"embedded creds file", func(n *NATS) { n.CredsFile = creds; n.Token = "t" }, []string{
			"nats.credsFile: needs an external server set up with an operator and accounts, but nats.url is empty (the embedded server is used): " +
				"secure the embedded server with nats.token, nats.user/nats.password or nats.nkeySeedFile instead",
		}},
		{"embedded tls files", func(n *NATS) {
			n.TLS.CAFile = creds
			n.TLS.KeyFile = filepath.Join(dir, "missing.pem")
		}, []string{
			"nats.tls.caFile: verifies the embedded server's certificate (nats.url is empty), but the server has none: set nats.tls.certFile and nats.tls.keyFile to give it TLS",
			"nats.tls.certFile: is required with nats.tls.keyFile",
			"nats.tls.keyFile: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory",
		}},
		{"embedded missing seed file", func(n *NATS) { n.NkeySeedFile = filepath.Join(dir, "missing.nk") }, []string{
			"nats.nkeySeedFile: open " + filepath.Join(dir, "missing.nk") + ": no such file or directory",
		}},
		{"embedded beyond loopback is valid: only run refuses it", func(n *NATS) { n.Embedded.Listen = "0.0.0.0:4222" }, nil},
		{"external ok", func(n *NATS) { n.URL = "nats://a:4222, tls://b:4222"; n.CredsFile = creds }, nil},
		{"bad urls are redacted", func(n *NATS) { n.URL = "http://u:secretpw@a:4222,nats://"; n.Token = "t" }, []string{
			`nats.url: "http://[REDACTED]@a:4222" must start with nats://, tls://, ws:// or wss://`,
			`nats.url: "nats://" has no host`,
		}},
		{"two auth methods", func(n *NATS) { n.URL = "nats://a:4222"; n.Token = "t"; n.User = "u"; n.Password = "p" }, []string{
			"nats: set only one way to authenticate, not nats.token and nats.user/nats.password",
		}},
		{"user without password", func(n *NATS) { n.URL = "nats://a:4222"; n.User = "u" }, []string{
			"nats.password: is required with nats.user",
		}},
		{"missing files", func(n *NATS) {
			n.URL = "nats://a:4222"
			n.CredsFile = filepath.Join(dir, "missing.creds")
			n.TLS.CertFile = creds
		}, []string{
			"nats.tls.keyFile: is required with nats.tls.certFile",
			"nats.credsFile: open " + filepath.Join(dir, "missing.creds") + ": no such file or directory",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg.NATS)
			err := cfg.Validate()
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			var got []string
			for _, e := range flatten(err) {
				got = append(got, e.Error())
			}
			assert.Equal(t, tc.want, got)
			for _, e := range got {
				assert.NotContains(t, e, "secretpw")
			}
		})
	}
}

// TestRequireEmbeddedAuth: run and check (Options.Serve) refuse an embedded server that
// listens beyond loopback without authentication, unless nats.embedded.allowNoAuth; the other
// commands, which only connect to it, do not.
func TestRequireEmbeddedAuth(t *testing.T) {
	seed := writeFile(t, "user.nk", "x")
	for _, tc := range []struct {
		name, nats string
		refused    bool
	}{
		{"loopback v4", "  embedded:\n    listen: 127.0.0.1:4222\n", false},
		{"loopback v4 range", "  embedded:\n    listen: 127.3.2.1:4222\n", false},
		{"loopback v6", "  embedded:\n    listen: \"[::1]:4222\"\n", false},
		{"localhost", "  embedded:\n    listen: localhost:4222\n", false},
		{"wildcard v4", "  embedded:\n    listen: 0.0.0.0:4222\n", true},
		{"wildcard v6", "  embedded:\n    listen: \"[::]:4222\"\n", true},
		{"no host", "  embedded:\n    listen: \":4222\"\n", true},
		{"an interface", "  embedded:\n    listen: 10.1.2.3:4222\n", true},
		{"a host name", "  embedded:\n    listen: bridge.internal:4222\n", true},
		{"token", "  token: tok-3f9a\n  embedded:\n    listen: 0.0.0.0:4222\n", false},
		{"user and password", "  user: bridge\n  password: pw-8c1d\n  embedded:\n    listen: 0.0.0.0:4222\n", false},
		{"nkey", "  nkeySeedFile: " + seed + "\n  embedded:\n    listen: 0.0.0.0:4222\n", false},
		{"tls alone is no authentication", "  tls:\n    certFile: " + seed + "\n    keyFile: " + seed + "\n  embedded:\n    listen: 0.0.0.0:4222\n", true},
		{"opt-out", "  embedded:\n    listen: 0.0.0.0:4222\n    allowNoAuth: true\n", false},
		{"external server", "  url: nats://nats-1:4222\n  embedded:\n    listen: 0.0.0.0:4222\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", "nats:\n"+tc.nats)
			_, err := Load(path, Options{})
			require.NoError(t, err, "a command that does not serve accepts it")
			_, err = Load(path, Options{Serve: true})
			if !tc.refused {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrEmbeddedNoAuth)
			listen := regexp.MustCompile(`listen: "?([^"\n]*)`).FindStringSubmatch(tc.nats)[1]
			line := strings.Count(tc.nats[:strings.Index(tc.nats, "listen:")], "\n") + 2
			assert.Equal(t, []string{fmt.Sprintf("line %d: nats.embedded.listen: %q is reachable from other hosts, and the embedded server has no authentication: "+
				"anyone who reaches it could read the messages or delete the stream. "+
				"Secure it: set nats.token (e.g. token: ${NOTIFIZZ_BRIDGE_NATS_TOKEN}), or set nats.user/nats.password or nats.nkeySeedFile; "+
				"or listen on loopback (127.0.0.1); or, on a network you trust, set nats.embedded.allowNoAuth: true", line, listen)}, problems(t, err))
		})
	}

	t.Run("the example names its variables", func(t *testing.T) {
		clearExampleEnv(t)
		t.Setenv("NOTIFIZZ_BRIDGE_NATS_LISTEN", "0.0.0.0:4222")
		_, err := Load(examplePath, Options{Serve: true, DryRun: true})
		require.Error(t, err)
		msgs := problems(t, err)
		require.Len(t, msgs, 1)
		assert.Contains(t, msgs[0], "Secure it: export NOTIFIZZ_BRIDGE_NATS_TOKEN=… (the file reads nats.token from there)")
		assert.Contains(t, msgs[0], "or, on a network you trust, export NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH=true (the file reads nats.embedded.allowNoAuth from there)")

		t.Setenv("NOTIFIZZ_BRIDGE_NATS_TOKEN", "tok-from-env-5e2b")
		cfg, err := Load(examplePath, Options{Serve: true, DryRun: true})
		require.NoError(t, err)
		assert.Equal(t, "tok-from-env-5e2b", cfg.NATS.Token)
		out, err := cfg.YAML()
		require.NoError(t, err)
		assert.NotContains(t, string(out), "tok-from-env-5e2b")

		t.Setenv("NOTIFIZZ_BRIDGE_NATS_TOKEN", "")
		t.Setenv("NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH", "true")
		cfg, err = Load(examplePath, Options{Serve: true, DryRun: true})
		require.NoError(t, err)
		assert.True(t, cfg.NATS.Embedded.AllowNoAuth)
	})

	t.Run("RequireEmbeddedAuth", func(t *testing.T) {
		cfg := Default()
		assert.NoError(t, cfg.RequireEmbeddedAuth())
		cfg.NATS.Embedded.Listen = "0.0.0.0:4222"
		err := cfg.RequireEmbeddedAuth()
		assert.ErrorIs(t, err, ErrEmbeddedNoAuth)
		var p Problem
		require.ErrorAs(t, err, &p)
		assert.Equal(t, "nats.embedded.listen", p.Key)
		cfg.NATS.User, cfg.NATS.Password = "u", "p"
		assert.NoError(t, cfg.RequireEmbeddedAuth())
	})
}

func TestValidateIncludesBridgeProblems(t *testing.T) {
	cfg := Default()
	cfg.Bridge.Coalesce.Mode = "eager"
	cfg.Bridge.MaxInFlight = 0
	cfg.Notifizz.Timeout = 0
	cfg.Notifizz.BaseURL = "https://user:pw@api.example.com/v1"
	cfg.Bridge.API = "v3"
	cfg.Bridge.OccurredAt = "now"
	err := cfg.Validate()
	require.Error(t, err)
	var msgs []string
	for _, e := range flatten(err) {
		msgs = append(msgs, e.Error())
	}
	assert.Equal(t, []string{
		"notifizz.baseUrl: must not carry credentials, a query or a fragment",
		"notifizz.timeout: must be positive, not 0s",
		`coalesce.mode: must be "fixed" or "sliding", not "eager"`,
		"notifizz.maxInFlight: must be at least 1, not 0",
		`notifizz.api: must be "v1" or "v2", not "v3"`,
		`notifizz.occurredAt: must be "publish" or "none", not "now"`,
	}, msgs)
}

func TestValidateSDKKeyControlCharacters(t *testing.T) {
	cfg := Default()
	cfg.Notifizz.SDKSecretKey = "sk-live-123\n"
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "notifizz.sdkSecretKey: must not contain control characters")
	assert.NotContains(t, err.Error(), "sk-live-123")
	cfg.Notifizz.SDKSecretKey = `sk <"&'\> ok`
	assert.NoError(t, cfg.Validate())
}

func TestNoSDKKeyRefusal(t *testing.T) {
	path := writeFile(t, "c.yaml", "notifizz:\n  sdkSecretKey: ${NB_TEST_UNSET_KEY}\n")
	_, err := Load(path, Options{NeedSDKKey: true})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNoSDKKey)
	assert.Contains(t, err.Error(), "line 2: notifizz.sdkSecretKey: is empty")

	_, err = Load(path, Options{NeedSDKKey: true, DryRun: true})
	assert.NoError(t, err)
	_, err = Load(writeFile(t, "c.yaml", "notifizz:\n  dryRun: true\n"), Options{NeedSDKKey: true})
	assert.NoError(t, err)
}

func TestConfigYAMLRedactsSecrets(t *testing.T) {
	cfg := Default()
	cfg.NATS.URL = "nats://svc:natspw-123@a:4222,nats://tok-456@b:4222"
	cfg.NATS.Password = "natspw-123"
	cfg.NATS.Token = "tok-456"
	cfg.Notifizz.SDKSecretKey = "sdk-789"
	cfg.Notifizz.AuthSecretKey = ""
	out, err := cfg.YAML()
	require.NoError(t, err)
	text := string(out)
	for _, secret := range []string{"natspw-123", "tok-456", "sdk-789"} {
		assert.NotContains(t, text, secret)
	}
	assert.Contains(t, text, "url: nats://[REDACTED]@a:4222,nats://[REDACTED]@b:4222")
	assert.Contains(t, text, "sdkSecretKey: '[REDACTED]'")
	assert.Contains(t, text, `authSecretKey: ""`, "an empty secret shows as empty, so that a missing one is visible")
	assert.Contains(t, text, "\n  rateLimit: 0.0\n", "a whole float is written as one, not as !!float 0")
	assert.NotContains(t, text, "!!")

	// The printed config is itself a valid config (with the secrets blanked by redaction).
	cfg.NATS.URL = "nats://a:4222"
	cfg.NATS.Password = ""
	out, err = cfg.YAML()
	require.NoError(t, err)
	back := Default()
	_, _, errs := back.decode(out, func(string) (string, bool) { return "", false })
	require.Empty(t, errs)
	assert.Equal(t, cfg.Bridge, back.Bridge)
	assert.Equal(t, cfg.NATS.URL, back.NATS.URL)
	assert.Equal(t, schema.Redacted, back.NATS.Token)
}

func TestProblemsUnwrap(t *testing.T) {
	sentinel := errors.New("boom")
	err := error(Problems{{Msg: "a"}, {Key: "x.y", Line: 3, Msg: "boom", err: sentinel}})
	assert.ErrorIs(t, err, sentinel)
	assert.Equal(t, "invalid configuration, 2 problems:\n  a\n  line 3: x.y: boom", err.Error())
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "",
		"nats://a:4222":                       "nats://a:4222",
		"nats://u:p@a:4222":                   "nats://[REDACTED]@a:4222",
		"nats://token@a:4222,tls://b:4222":    "nats://[REDACTED]@a:4222,tls://b:4222",
		"u:p@a:4222":                          "[REDACTED]@a:4222",
		"nats://u:p@ss@a:4222":                "nats://[REDACTED]@a:4222",
		"nats://a:4222,nats://x:y@b:1,c:4222": "nats://a:4222,nats://[REDACTED]@b:1,c:4222",
	} {
		assert.Equal(t, want, RedactURL(in), in)
	}
}

func TestEditDistanceSuggestions(t *testing.T) {
	d := decoder{leaves: map[string]key{}, sections: map[string]bool{}}
	var c Config
	for _, k := range c.keys() {
		d.leaves[k.name] = k
	}
	assert.Equal(t, ` (did you mean "notifizz.baseUrl"?)`, d.suggest("notifizz.baseURL"))
	assert.Equal(t, ` (did you mean "shutdownTimeout"?)`, d.suggest("shutdowntimeout"))
	assert.Empty(t, d.suggest("something.else.entirely"))
	assert.Equal(t, 0, editDistance("same", "same"))
	assert.Equal(t, 2, editDistance("dleay", "delay"))
}
