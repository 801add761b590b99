package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

// TestRouteStdLog: what a library prints with the standard logger (pcgroups does) comes out as
// one record of the daemon's format per line, at error level for an error and warn otherwise.
func TestRouteStdLog(t *testing.T) {
	var out bytes.Buffer
	routeStdLog(newLogger(config.Log{Level: "info", Format: "json"}, &out))
	t.Cleanup(func() {
		stdlog.SetOutput(os.Stderr)
		stdlog.SetFlags(stdlog.LstdFlags)
	})

	stdlog.Printf("Warning: error trying to create consumer for member %q: %v\n", "r1", "boom")
	stdlog.Printf("Error trying to delete our member's consumer: %v\n", "gone")
	dec := json.NewDecoder(&out)
	for _, want := range []struct{ level, msg string }{
		{"WARN", `Warning: error trying to create consumer for member "r1": boom`},
		{"ERROR", "Error trying to delete our member's consumer: gone"},
	} {
		var rec map[string]any
		require.NoError(t, dec.Decode(&rec))
		assert.Equal(t, want.level, rec["level"])
		assert.Equal(t, want.msg, rec["msg"])
		assert.Equal(t, "stdlog", rec["component"])
	}
	assert.False(t, dec.More(), "one record per line")
}

// TestLogDurationsAsText: JSON logs write durations as the config file does ("810ms"), not as
// nanoseconds beside settings written as text; the text format writes them the same way.
func TestLogDurationsAsText(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var out bytes.Buffer
		newLogger(config.Log{Level: "info", Format: format}, &out).Info("m",
			"delay", 810*time.Millisecond, "timeout", 10*time.Second, "n", 3)
		if format == "json" {
			assert.Contains(t, out.String(), `"delay":"810ms","timeout":"10s","n":3`)
		} else {
			assert.Contains(t, out.String(), `delay=810ms timeout=10s n=3`)
		}
	}
}
