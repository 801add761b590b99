package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shortConfig is a load run small enough for the test suite: every phase, a few hundred events.
func shortConfig() Config {
	cfg := DefaultConfig()
	cfg.Keys = 200
	cfg.Workflows = 3
	cfg.Publishers = 2
	cfg.LatencyKeys = 100
	cfg.LatencyRate = 500
	cfg.Held = 2000
	cfg.PingWindow = 0            // a figure, not a check: TestLoadShort does not wait for it
	cfg.Timeout = 3 * time.Minute // a deadline only: a busy machine is slow
	cfg.Quiet = true
	// Commits close the windows; the delay only has to outlast a stall of the publisher or of
	// the bridge between the pieces of one event, which on a machine busy with other tests can
	// exceed the default second and split the event by contract.
	cfg.Delay = 5 * time.Second
	return cfg
}

// TestLoadShort runs every phase on a small workload and checks what the load command exists
// to check: every event called exactly once with all its workflows, nothing dead-lettered,
// nothing left pending (a phase only ends once the consumer has nothing pending), no goroutine
// left behind. It checks no timing: the figures depend on the machine.
func TestLoadShort(t *testing.T) {
	cfg := shortConfig()
	rep, err := Run(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	require.NotNil(t, rep)
	assert.Empty(t, rep.Failures)

	require.Len(t, rep.Rounds, cfg.Rounds)
	rd := rep.Rounds[0]
	require.NotNil(t, rd.Raw)
	assert.Equal(t, cfg.Keys*(cfg.Workflows+2), rd.Raw.Messages)
	assert.Positive(t, rd.Raw.Drain.Rate)
	assert.Positive(t, rd.Raw.EndToEnd.Rate)

	want := map[string]int{"bridge drain": 1, "bridge end-to-end": 1, "baseline drain": cfg.Workflows, "baseline end-to-end": cfg.Workflows}
	require.Len(t, rd.Throughput, len(want))
	for _, tr := range rd.Throughput {
		t.Run(tr.Name, func(t *testing.T) {
			perEvent, ok := want[tr.Name]
			require.True(t, ok, "unexpected phase %q", tr.Name)
			assert.True(t, tr.API.ok(perEvent), "%+v", tr.API)
			assert.Equal(t, int64(cfg.Keys*perEvent), tr.API.Calls)
			assert.InDelta(t, float64(perEvent), tr.CallsPerEvent, 1e-9)
			assert.Zero(t, tr.API.Duplicates)
			assert.Zero(t, tr.API.Missing)
			assert.Equal(t, tr.API.WorkflowsExpected, tr.API.WorkflowsReceived)
			assert.Zero(t, tr.DeadLetters)
			assert.LessOrEqual(t, tr.GoroutinesAfter, tr.GoroutinesBefore)
		})
	}

	require.NotNil(t, rep.Latency)
	assert.True(t, rep.Latency.CommitTally.ok(1), "%+v", rep.Latency.CommitTally)
	assert.True(t, rep.Latency.DelayTally.ok(1), "%+v", rep.Latency.DelayTally)
	assert.Equal(t, cfg.LatencyKeys, rep.Latency.CommitToCall.N)
	assert.Equal(t, cfg.LatencyKeys, rep.Latency.DelayLateness.N)

	require.NotNil(t, rep.Held)
	assert.Equal(t, cfg.Held, rep.Held.Held)
	assert.Positive(t, rep.Held.HeapBridge)

	// Both outputs render what was measured.
	var table, js bytes.Buffer
	require.NoError(t, writeReport(rep, cfg, &table))
	assert.Contains(t, table.String(), "bridge end-to-end")
	assert.Contains(t, table.String(), "checks: all passed")
	cfg.Format = "json"
	require.NoError(t, writeReport(rep, cfg, &js))
	var back Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Len(t, back.Rounds, 1)
	assert.Len(t, back.Rounds[0].Throughput, len(want))
	assert.Len(t, back.Summary, len(want)+2) // and the two raw rows
}

// TestLoadReplicasShort runs the bridge phase with two replicas in a static group and checks
// the same as TestLoadShort: every event called exactly once with all its workflows (a window
// split over the two replicas would show as two calls, or an incomplete one), nothing
// dead-lettered, nothing left pending, no goroutine left behind. No timing is checked.
func TestLoadReplicasShort(t *testing.T) {
	cfg := shortConfig()
	cfg.Phases = []string{phaseBridge}
	cfg.Replicas = 2
	rep, err := Run(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	require.NotNil(t, rep)
	assert.Empty(t, rep.Failures)
	assert.Equal(t, 2, rep.Workload.Replicas)

	require.Len(t, rep.Rounds, 1)
	rd := rep.Rounds[0]
	assert.Nil(t, rd.Raw)
	require.Len(t, rd.Throughput, 2)
	for _, tr := range rd.Throughput {
		t.Run(tr.Name, func(t *testing.T) {
			assert.Equal(t, 2, tr.Replicas)
			assert.True(t, tr.API.ok(1), "%+v", tr.API)
			assert.Equal(t, int64(cfg.Keys), tr.API.Calls)
			assert.Equal(t, cfg.Keys, tr.API.EventsCalled)
			assert.InDelta(t, 1.0, tr.CallsPerEvent, 1e-9)
			assert.Zero(t, tr.API.Duplicates)
			assert.Zero(t, tr.API.Missing)
			assert.Zero(t, tr.API.IncompleteEvents)
			assert.Zero(t, tr.DeadLetters)
			assert.LessOrEqual(t, tr.GoroutinesAfter, tr.GoroutinesBefore)
		})
	}
	var table bytes.Buffer
	require.NoError(t, writeReport(rep, cfg, &table))
	assert.Contains(t, table.String(), "bridge replicas 2")
	assert.Contains(t, table.String(), "checks: all passed")
}

// TestLoadSoakShort runs a short soak and checks that every event of it was called once. The
// growth bounds are not asserted: over a few seconds the warm-up is most of the run.
func TestLoadSoakShort(t *testing.T) {
	cfg := shortConfig()
	cfg.Soak = 2 * time.Second
	cfg.SoakRate = 100
	cfg.SoakSample = 500 * time.Millisecond
	rep, err := Run(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	require.NotNil(t, rep.Soak)
	assert.True(t, rep.Soak.API.ok(1), "%+v", rep.Soak.API)
	assert.Equal(t, 200, rep.Soak.Events)
	assert.Zero(t, rep.Soak.DeadLetters)
	assert.NotEmpty(t, rep.Soak.Samples)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			assert.Equal(t, 10_000, c.Keys)
			assert.Equal(t, 10, c.Workflows)
			assert.Equal(t, allPhases, c.Phases)
			assert.Equal(t, 120_000, c.Keys*c.messagesPerEvent(c.Commits))
		}},
		{name: "latency alias", args: []string{"--latency"}, check: func(t *testing.T, c Config) {
			assert.Equal(t, []string{phaseLatency}, c.Phases)
		}},
		{name: "phases", args: []string{"--phases", "raw, bridge"}, check: func(t *testing.T, c Config) {
			assert.Equal(t, []string{phaseRaw, phaseBridge}, c.Phases)
		}},
		{name: "workload", args: []string{"--keys", "5", "--workflows", "2", "--commits=false", "--rate", "50"}, check: func(t *testing.T, c Config) {
			assert.Equal(t, 5, c.Keys)
			assert.Equal(t, 3, c.messagesPerEvent(c.Commits))
			assert.InDelta(t, 50, c.Rate, 0)
		}},
		{name: "replicas", args: []string{"--replicas", "3"}, check: func(t *testing.T, c Config) {
			assert.Equal(t, 3, c.Replicas)
		}},
		{name: "replicas default", check: func(t *testing.T, c Config) {
			assert.Equal(t, 1, c.Replicas)
		}},
		{name: "no replicas", args: []string{"--replicas", "0"}, wantErr: "--replicas must be between 1 and"},
		{name: "every problem at once", args: []string{"--storage", "disk", "--phases", "warp", "--keys", "0"},
			wantErr: "--storage must be file or memory"},
		{name: "unknown phase", args: []string{"--phases", "warp"}, wantErr: `unknown phase "warp"`},
		{name: "soak sample", args: []string{"--soak", "1s", "--soak-sample", "2s"}, wantErr: "--soak-sample"},
		{name: "argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run([]string{"-h"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "usage: notifizz-load")
	errOut.Reset()
	assert.Equal(t, 2, run([]string{"--keys", "-1"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "--keys must be at least 1")
}

func TestBodies(t *testing.T) {
	for _, size := range []int{0, 200, 1000} {
		tb, wb := trackBody(12345, size), workflowBody(12345, 7, size)
		assert.True(t, json.Valid(tb), "%s", tb)
		assert.True(t, json.Valid(wb), "%s", wb)
		if size > 0 {
			assert.Len(t, tb, size)
			assert.Len(t, wb, size)
		}
		k, ok := loadKeyOf(tb)
		assert.True(t, ok)
		assert.Equal(t, 12345, k)
		assert.Equal(t, 1, strings.Count(string(wb), `{"campaignId":`))
	}
	n, ok := eventNumber(eventKey(42))
	assert.True(t, ok)
	assert.Equal(t, 42, n)
}

// TestCheckGoroutines shows that the phase check waits for goroutines that are still ending
// and fails on one that never ends, naming it.
func TestCheckGoroutines(t *testing.T) {
	t.Run("ending late is not a leak", func(t *testing.T) {
		r := &runner{rep: &Report{}}
		before := stableGoroutines()
		release := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			<-release
		}()
		// The goroutine ends a while after the check has started, as a connection reader does
		// when its socket is closed under it.
		time.AfterFunc(300*time.Millisecond, func() { close(release) })
		after := r.checkGoroutines("late", before, 10*time.Second)
		<-done
		assert.LessOrEqual(t, after, before)
		assert.Empty(t, r.rep.Failures)
	})
	t.Run("a leak fails", func(t *testing.T) {
		r := &runner{rep: &Report{}}
		before := stableGoroutines()
		stop := make(chan struct{})
		defer close(stop)
		go leakForTest(stop)
		after := r.checkGoroutines("leaky phase", before, 200*time.Millisecond)
		assert.Greater(t, after, before)
		require.Len(t, r.rep.Failures, 1)
		assert.Contains(t, r.rep.Failures[0], "leaky phase: ")
		assert.Contains(t, r.rep.Failures[0], "leakForTest", "the failure names the leaked goroutine")
	})
}

// leakForTest blocks until stop is closed: a goroutine the check must see as leaked.
func leakForTest(stop <-chan struct{}) { <-stop }
