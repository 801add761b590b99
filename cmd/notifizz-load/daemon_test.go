package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildDaemon builds the notifizz-bridge binary into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "notifizz-bridge")
	cmd := exec.Command("go", "build", "-o", bin, "../notifizz-bridge")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// TestLoadDaemonShort runs the daemon phase with the built binary on a small backlog and checks
// what it exists to check: the daemon, in its own process over TCP, called every event exactly
// once with all its workflows, dead-lettered nothing, left nothing pending (the phase ends only
// then) and exited 0 on SIGTERM (the phase fails otherwise). No timing is checked.
func TestLoadDaemonShort(t *testing.T) {
	cfg := shortConfig()
	cfg.Daemon = buildDaemon(t)
	cfg.Phases = []string{phaseDaemon}
	rep, err := Run(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	require.NotNil(t, rep)
	assert.Empty(t, rep.Failures)

	require.Len(t, rep.Rounds, 1)
	rd := rep.Rounds[0]
	assert.Nil(t, rd.Raw)
	require.Len(t, rd.Throughput, 2)
	assert.Equal(t, "daemon drain", rd.Throughput[0].Name)
	assert.Equal(t, "daemon first→last call", rd.Throughput[1].Name)
	for _, tr := range rd.Throughput {
		t.Run(tr.Name, func(t *testing.T) {
			assert.True(t, tr.API.ok(1), "%+v", tr.API)
			assert.Equal(t, int64(cfg.Keys), tr.API.Calls)
			assert.Equal(t, cfg.Keys, tr.API.EventsCalled)
			assert.Zero(t, tr.API.Duplicates)
			assert.Zero(t, tr.API.Missing)
			assert.Zero(t, tr.API.IncompleteEvents)
			assert.Equal(t, tr.API.WorkflowsExpected, tr.API.WorkflowsReceived)
			assert.Zero(t, tr.DeadLetters)
			assert.Positive(t, tr.Rate)
		})
	}
	// From the process start includes the start-up: never shorter than the calls alone.
	assert.GreaterOrEqual(t, rd.Throughput[0].Seconds, rd.Throughput[1].Seconds)
	assert.Positive(t, rd.Throughput[0].StartSeconds)

	var table bytes.Buffer
	require.NoError(t, writeReport(rep, cfg, &table))
	assert.Contains(t, table.String(), "daemon drain")
	assert.Contains(t, table.String(), "checks: all passed")
}

func TestParseDaemonFlag(t *testing.T) {
	c, err := parseFlags([]string{"--phases", "raw", "--daemon", "bin/notifizz-bridge"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{phaseRaw, phaseDaemon}, c.Phases)
	assert.Equal(t, "bin/notifizz-bridge", c.Daemon)

	_, err = parseFlags([]string{"--phases", "daemon"}, io.Discard)
	require.ErrorContains(t, err, "needs --daemon")
}
