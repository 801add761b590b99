package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// runCLI runs the command line in process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli(context.Background(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

func TestCheckCommand(t *testing.T) {
	clearExampleEnv(t)
	const sdkKey, authKey, natsPW = "sdk-check-secret-1", "auth-check-secret-2", "nats-check-secret-3"
	t.Setenv("NB_TEST_SDK", sdkKey)
	t.Setenv("NB_TEST_AUTH", authKey)
	t.Setenv("NB_TEST_PW", natsPW)
	good := writeFile(t, "good.yaml", `
nats:
  url: nats://bridge:${NB_TEST_PW}@localhost:4222
notifizz:
  sdkSecretKey: ${NB_TEST_SDK}
  authSecretKey: ${NB_TEST_AUTH}
`)
	bad := writeFile(t, "bad.yaml", `
coalesce:
  dleay: 1s
stream:
  replicas: 9
notifizz:
  sdkSecretKey: ${NB_TEST_SDK}
`)

	t.Run("valid", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "", "check", "--config", good)
		require.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stderr)
		assert.Contains(t, stdout, "sdkSecretKey: '[REDACTED]'")
		assert.Contains(t, stdout, "authSecretKey: '[REDACTED]'")
		assert.Contains(t, stdout, "url: nats://[REDACTED]@localhost:4222")
		assert.Contains(t, stdout, "delay: 1s")
		for _, secret := range []string{sdkKey, authKey, natsPW} {
			assert.NotContains(t, stdout, secret)
		}
	})
	t.Run("invalid lists every problem", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "", "check", "--config", bad)
		assert.Equal(t, exitError, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "2 problems")
		assert.Contains(t, stderr, `line 3: unknown key "coalesce.dleay"`)
		assert.Contains(t, stderr, "line 5: stream.replicas: must be between 1 and 5, not 9")
		assert.NotContains(t, stderr, sdkKey)
	})
	t.Run("missing SDK key is a warning, and run refuses", func(t *testing.T) {
		path := writeFile(t, "nokey.yaml", "log:\n  level: debug\n")
		code, stdout, stderr := runCLI(t, "", "check", "--config", path)
		assert.Equal(t, exitOK, code, "the file is valid")
		assert.Contains(t, stdout, "level: debug")
		assert.Contains(t, stderr, "notifizz-bridge: warning: notifizz.sdkSecretKey: is empty: run refuses to start without it; "+
			"set it in the file, e.g. from the environment with ${NOTIFIZZ_SDK_SECRET_KEY}, or run with --dry-run\n")
		code, _, stderr = runCLI(t, "", "run", "--config", path)
		assert.Equal(t, exitError, code)
		assert.Contains(t, stderr, "notifizz.sdkSecretKey: is empty, and run needs it")
		code, _, stderr = runCLI(t, "", "check", "--dry-run", "--config", path)
		assert.Equal(t, exitOK, code, stderr)
		assert.NotContains(t, stderr, "sdkSecretKey", "a dry run needs no key")
	})
	t.Run("example", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "", "check", "--dry-run", "--config", examplePath)
		assert.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "dryRun: true")
	})
	t.Run("example without its secrets names the variables to export", func(t *testing.T) {
		code, _, stderr := runCLI(t, "", "check", "--config", examplePath)
		assert.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stderr, "notifizz.sdkSecretKey: is empty: run refuses to start without it; export NOTIFIZZ_SDK_SECRET_KEY=… (the file reads it from there), or run with --dry-run")
		assert.Contains(t, stderr, "notifizz.authSecretKey: is empty: the token command needs it; export NOTIFIZZ_AUTH_SECRET_KEY=…")
		code, _, stderr = runCLI(t, "", "run", "--config", examplePath)
		assert.Equal(t, exitError, code)
		assert.Contains(t, stderr, "notifizz.sdkSecretKey: is empty, and run needs it to call the Notifizz API: export NOTIFIZZ_SDK_SECRET_KEY=…")
	})
	t.Run("defaults without a file", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "", "check", "--dry-run")
		assert.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "listen: 127.0.0.1:4222")
	})
	t.Run("catalog schema files are compiled", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "schemas"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "schemas", "shipped.json"), []byte(`{"type":"object"}`), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "schemas", "paid.json"), []byte(`{"type":"objet"}`), 0o600))
		path := filepath.Join(dir, "catalog.yaml")
		require.NoError(t, os.WriteFile(path, []byte(`catalog:
  mode: soft
  events:
    order_shipped:
      schema: schemas/shipped.json
      idempotencyFields: [orderId]
    order_paid:
      schema: schemas/paid.json
    "order cancelled":
      schema: schemas/cancelled.json
`), 0o600))
		code, stdout, stderr := runCLI(t, "", "check", "--dry-run", "--config", path)
		assert.Equal(t, exitError, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "2 problems")
		assert.Contains(t, stderr, `line 8: catalog.events.order_paid.schema: "`+filepath.Join(dir, "schemas", "paid.json")+
			`": not a valid JSON Schema: at "/type": value must be one of`)
		assert.Contains(t, stderr, `line 10: catalog.events."order cancelled".schema: "`+filepath.Join(dir, "schemas", "cancelled.json")+
			`": file not found`)

		require.NoError(t, os.WriteFile(filepath.Join(dir, "schemas", "paid.json"), []byte(`{"type":"object"}`), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "schemas", "cancelled.json"), []byte(`{}`), 0o600))
		code, stdout, stderr = runCLI(t, "", "check", "--dry-run", "--config", path)
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "catalog:\n  mode: soft\n  events:\n")
		assert.Contains(t, stdout, "    order_shipped:\n      schema: "+filepath.Join(dir, "schemas", "shipped.json")+"\n      idempotencyFields: [orderId]\n")
	})
	t.Run("unreadable file", func(t *testing.T) {
		code, _, stderr := runCLI(t, "", "check", "--config", "does-not-exist.yaml")
		assert.Equal(t, exitError, code)
		assert.Contains(t, stderr, "does-not-exist.yaml: no such file or directory")
	})
}

func TestTokenCommand(t *testing.T) {
	sum := sha256.Sum256([]byte("user_42auth_secret"))
	want := hex.EncodeToString(sum[:])

	path := writeFile(t, "c.yaml", "notifizz:\n  authSecretKey: auth_secret\n")
	code, stdout, stderr := runCLI(t, "", "token", "--config", path, "user_42")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want+"\n", stdout)

	code, _, stderr = runCLI(t, "", "token", "user_42")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "notifizz.authSecretKey is empty")

	code, _, _ = runCLI(t, "", "token", "--config", path)
	assert.Equal(t, exitUsage, code)

	// A file that reads the key from an unset variable, as config.example.yaml does: the error
	// names the variable to export, not the line the file already has.
	const unset = "NB_TEST_TOKEN_AUTH_UNSET"
	_, isSet := os.LookupEnv(unset)
	require.False(t, isSet, unset)
	fromEnv := writeFile(t, "env.yaml", "notifizz:\n  authSecretKey: ${"+unset+"}\n")
	code, stdout, stderr = runCLI(t, "", "token", "--config", fromEnv, "user_42")
	assert.Equal(t, exitError, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "notifizz-bridge: "+fromEnv+": line 2: notifizz.authSecretKey: is empty: the token command needs it; "+
		"export "+unset+"=… (the file reads it from there)\n", stderr)
}

// TestTokenSubscribe: token --subscribe prints the SDKs 2.x subscribe token, the hex
// HMAC-SHA256 keyed with authSecretKey over SUBSCRIBER followed by RESOURCE.
func TestTokenSubscribe(t *testing.T) {
	mac := hmac.New(sha256.New, []byte("auth_secret"))
	mac.Write([]byte("user_42" + "doc/7 draft"))
	want := hex.EncodeToString(mac.Sum(nil))

	path := writeFile(t, "c.yaml", "notifizz:\n  authSecretKey: auth_secret\n")
	code, stdout, stderr := runCLI(t, "", "token", "--config", path, "--subscribe", "user_42", "doc/7 draft")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want+"\n", stdout)
	assert.Empty(t, stderr)

	code, stdout, _ = runCLI(t, "", "token", "--subscribe", "--config", path, "user_4", "2doc/7 draft")
	require.Equal(t, exitOK, code)
	other := hmac.New(sha256.New, []byte("auth_secret"))
	other.Write([]byte("user_42doc/7 draft"))
	assert.Equal(t, hex.EncodeToString(other.Sum(nil))+"\n", stdout,
		"SDK 2.x concatenates the two without a separator, so this pair has the same token")

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no authSecretKey", []string{"token", "--subscribe", "u", "r"}, exitError,
			"notifizz-bridge: notifizz.authSecretKey is empty: set it in the file given with --config"},
		{"one argument", []string{"token", "--config", path, "--subscribe", "u"}, exitUsage,
			"token --subscribe takes two arguments, SUBSCRIBER RESOURCE, got 1 argument\n"},
		{"three arguments", []string{"token", "--config", path, "--subscribe", "u", "r", "x"}, exitUsage,
			"token --subscribe takes two arguments, SUBSCRIBER RESOURCE, got 3 arguments\n"},
		{"empty resource", []string{"token", "--config", path, "--subscribe", "u", ""}, exitUsage,
			"token --subscribe: SUBSCRIBER and RESOURCE must not be empty"},
		{"two arguments without --subscribe", []string{"token", "--config", path, "u", "r"}, exitUsage,
			"token takes one USER_ID, got 2 arguments; for a subscribe token, give --subscribe before SUBSCRIBER RESOURCE"},
		{"--subscribe after the arguments", []string{"token", "--config", path, "u", "r", "--subscribe"}, exitUsage,
			"--subscribe comes after the arguments: flags go before arguments"},
		{"no argument", []string{"token", "--config", path}, exitUsage, "token takes one USER_ID, got 0 arguments"},
		{"help", []string{"token", "--help"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stderr, tc.stderr)
			if tc.code != exitOK {
				assert.Empty(t, stdout)
			}
		})
	}
	code, stdout, _ = runCLI(t, "", "token", "--help")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "Usage: notifizz-bridge token [--config FILE] USER_ID | [--config FILE] --subscribe SUBSCRIBER RESOURCE")
	assert.Contains(t, stdout, "HMAC-SHA256")
	assert.Contains(t, stdout, "-subscribe")
}

func TestVersionCommand(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "version")
	assert.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(stdout, "notifizz-bridge "), stdout)
	assert.Contains(t, stdout, "go1.")
}

func TestReadVersion(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "aaaa1111"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	v := readVersion(bi, "", "")
	assert.Equal(t, "aaaa1111", v.Revision, "recorded by the toolchain")
	assert.True(t, v.Modified)
	assert.Equal(t, "aaaa1111-dirty", v.short())

	v = readVersion(nil, "v1.4.0", "bbbb2222")
	assert.Equal(t, "v1.4.0", v.Version, "stamped by the linker")
	assert.Equal(t, "bbbb2222", v.Revision)
	assert.Contains(t, v.String(), "notifizz-bridge v1.4.0 (bbbb2222) go1.")

	v = readVersion(bi, "", "cccc3333-dirty")
	assert.Equal(t, "cccc3333", v.Revision, "the stamp wins over what the toolchain recorded")
	assert.True(t, v.Modified)
	assert.Empty(t, v.Time, "the recorded time was another revision's")
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of it
		stderr string // a part of it
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"unknown flag", []string{"run", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus"},
		{"default command takes flags", []string{"--bogus"}, exitUsage, "", "Usage: notifizz-bridge run"},
		{"run takes no arguments", []string{"run", "extra"}, exitUsage, "", `run takes no arguments, got "extra"`},
		{"check takes no arguments", []string{"check", "x.yaml"}, exitUsage, "", "flags come before arguments"},
		{"help", []string{"help"}, exitOK, "Commands:", ""},
		{"--help", []string{"--help"}, exitOK, "Commands:", ""},
		{"help run", []string{"help", "run"}, exitOK, "-dry-run", ""},
		{"help unknown", []string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{"run --help", []string{"run", "--help"}, exitOK, "Usage: notifizz-bridge run [--config FILE] [--dry-run]", ""},
		{"check --help", []string{"check", "-h"}, exitOK, "-config FILE", ""},
		{"publish --help", []string{"publish", "--help"}, exitOK, "-msg-id ID", ""},
		{"publish --help lists every kind", []string{"publish", "--help"}, exitOK, "KIND is one of track, workflow, commit, send (notifizz.api: v1), and identify,\ndetach, subscribe, unsubscribe", ""},
		{"token --help", []string{"token", "--help"}, exitOK, "USER_ID", ""},
		{"version --help", []string{"version", "--help"}, exitOK, "Usage: notifizz-bridge version", ""},
		{"publish needs kind and key", []string{"publish", "track"}, exitUsage, "", "publish takes KIND KEY [JSON|-], got 1 arguments"},
		{"publish bad kind", []string{"publish", "tracks", "k", "{}"}, exitUsage, "", `KIND: unknown kind "tracks" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`},
		{"publish bad key", []string{"publish", "commit", "a.b"}, exitUsage, "", `KEY "a.b": `},
		{"publish bad timeout", []string{"publish", "--timeout", "0s", "commit", "k"}, exitUsage, "", "--timeout must be positive"},
		{"publish invalid body", []string{"publish", "track", "k", `{"eventName":""}`}, exitError, "", "invalid track body: invalid_message"},
		{"publish body from stdin", []string{"publish", "workflow", "k", "-"}, exitError, "", "invalid workflow body"},
		{"publish flag after arguments", []string{"publish", "track", "k", `{}`, "--config", "x.yaml"}, exitUsage, "",
			"--config comes after the arguments: flags go before arguments, e.g. notifizz-bridge publish --config ... (see 'notifizz-bridge help publish')"},
		{"token flag after arguments", []string{"token", "user_42", "-config=x.yaml"}, exitUsage, "",
			"flags go before arguments, e.g. notifizz-bridge token -config=x.yaml ... (see 'notifizz-bridge help token')"},
		{"help after arguments", []string{"publish", "commit", "k", "--help"}, exitUsage, "", "flags go before arguments"},
		{"a key may begin with a dash", []string{"publish", "track", "-k", `{"eventName":""}`}, exitError, "", "invalid track body"},
		{"--version", []string{"--version"}, exitOK, "notifizz-bridge ", ""},
		{"-version", []string{"-version"}, exitOK, "go1.", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, `{"campaignId":"c"}`, tc.args...)
			assert.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stdout, tc.stdout)
			assert.Contains(t, stderr, tc.stderr)
		})
	}
}

func TestParsePublishArgs(t *testing.T) {
	m, err := parsePublishArgs([]string{"commit", "k"})
	require.NoError(t, err)
	assert.False(t, m.fromStdin, "a commit needs no body, so stdin is not read")
	assert.Nil(t, m.body)

	m, err = parsePublishArgs([]string{"commit", "k", "-"})
	require.NoError(t, err)
	assert.True(t, m.fromStdin)

	m, err = parsePublishArgs([]string{"track", "k"})
	require.NoError(t, err)
	assert.True(t, m.fromStdin)

	m, err = parsePublishArgs([]string{"send", "k", `{"x":1}`})
	require.NoError(t, err)
	assert.False(t, m.fromStdin)
	assert.Equal(t, `{"x":1}`, string(m.body))
}

func TestEmbeddedClientURL(t *testing.T) {
	assert.Equal(t, "nats://127.0.0.1:4222", embeddedClientURL("0.0.0.0:4222", false))
	assert.Equal(t, "nats://127.0.0.1:4222", embeddedClientURL(":4222", false))
	assert.Equal(t, "nats://[::1]:4222", embeddedClientURL("[::]:4222", false))
	assert.Equal(t, "nats://10.1.2.3:5222", embeddedClientURL("10.1.2.3:5222", false))
	assert.Equal(t, "tls://127.0.0.1:4222", embeddedClientURL("0.0.0.0:4222", true))
}

// TestPublishSaysItReadsATerminal: publish without JSON reads stdin; at a terminal it says so,
// or the command would look hung. Piped input gets no such line.
func TestPublishSaysItReadsATerminal(t *testing.T) {
	code, _, stderr := runCLI(t, `{"campaignId":"c"}`, "publish", "workflow", "k")
	assert.Equal(t, exitError, code)
	assert.NotContains(t, stderr, "reading the workflow body", "piped input")

	stdinIsTerminal = func(io.Reader) bool { return true }
	t.Cleanup(func() { stdinIsTerminal = isTerminalFile })
	code, _, stderr = runCLI(t, `{"campaignId":"c"}`, "publish", "workflow", "k")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "reading the workflow body from standard input; end it with Ctrl-D (or give the JSON as an argument)\n")
	assert.Contains(t, stderr, "invalid workflow body", "and then it reads it")
}
