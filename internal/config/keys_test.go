package config

import (
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryFieldHasAKey makes sure that a field added to Config, or to bridge.Config, gets a
// key: without one, a file could not set it and its problems would be named by Go path.
func TestEveryFieldHasAKey(t *testing.T) {
	var c Config
	paths := make(map[uintptr]string)
	leafPaths(reflect.ValueOf(&c).Elem(), "", paths)
	names := c.keyNames()
	for _, path := range paths {
		assert.Contains(t, names, path, "field %s has no key", path)
	}
	assert.Len(t, c.keys(), len(paths), "one key per field")
}

func TestKeyNames(t *testing.T) {
	var c Config
	names := c.keyNames()
	for path, want := range map[string]string{
		"NATS.URL":                 "nats.url",
		"NATS.TLS.CAFile":          "nats.tls.caFile",
		"NATS":                     "nats",
		"NATS.TLS":                 "nats.tls",
		"Bridge.Coalesce.MaxBytes": "coalesce.maxBytes",
		"Bridge.MaxInFlight":       "notifizz.maxInFlight",
		"Bridge.ShutdownTimeout":   "shutdownTimeout",
		"Bridge.Health.StallAfter": "health.stallAfter",
		"Notifizz.SDKSecretKey":    "notifizz.sdkSecretKey",
	} {
		assert.Equal(t, want, names.name(path), path)
	}
	assert.Equal(t, "Bridge.Nothing", names.name("Bridge.Nothing"), "an unknown path stays as it is")
}

// TestLoadProblemsAreStructured checks that each problem carries its key and line as fields,
// including those the bridge reports by Go field.
func TestLoadProblemsAreStructured(t *testing.T) {
	path := writeFile(t, "c.yaml", `coalesce:
  mode: sliding
  maxDelay: 10ms
notifizz:
  maxInFlight: 0
  bogus: 1
`)
	_, err := Load(path, Options{DryRun: true})
	var ps Problems
	require.ErrorAs(t, err, &ps)
	assert.Equal(t, Problems{
		{Key: "coalesce.maxDelay", Line: 3, Msg: "must be at least coalesce.delay (1s) in sliding mode, not 10ms"},
		{Key: "notifizz.maxInFlight", Line: 5, Msg: "must be at least 1, not 0"},
		{Line: 6, Msg: `unknown key "notifizz.bogus"`},
	}, ps)
	assert.True(t, slices.IsSortedFunc(ps, func(a, b Problem) int { return a.Line - b.Line }))
}
