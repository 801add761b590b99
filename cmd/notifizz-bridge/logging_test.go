package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRouteStdLog: what a library prints with the standard logger (pcgroups does) comes out as
// one record of the daemon's format, at warn level.
func TestRouteStdLog(t *testing.T) {
	var out bytes.Buffer
	routeStdLog(newLogger(LogConfig{Level: "info", Format: "json"}, &out))
	t.Cleanup(func() {
		stdlog.SetOutput(os.Stderr)
		stdlog.SetFlags(stdlog.LstdFlags)
	})

	stdlog.Printf("Warning: error trying to create consumer for member %q: %v\n", "r1", "boom")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &rec), "one JSON record: %s", out.String())
	assert.Equal(t, "WARN", rec["level"])
	assert.Equal(t, `Warning: error trying to create consumer for member "r1": boom`, rec["msg"])
	assert.Equal(t, "pcgroups", rec["component"])
}
