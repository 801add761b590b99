package main

import (
	"context"
	"fmt"
	"time"
)

// FailoverResult is the delivery gap after a bridge is killed under a steady workload, with the
// daemon's default consumer.ackWait and partitions.failoverAfter, for each mode.
type FailoverResult struct {
	Rate        float64        `json:"eventsPerSec"`
	Events      int            `json:"events"`
	KillAfter   string         `json:"killAfter"`
	AckWait     string         `json:"ackWait"`
	FailoverAft string         `json:"failoverAfter"`
	Closed      string         `json:"windowsClosedBy"` // "commit → call" or "window end → call"
	Modes       []FailoverMode `json:"modes"`
}

// FailoverMode is one kill: in single-replica mode the bridge is killed and another started at
// once (a restarted process); in a static group of three the middle member is killed and stays
// dead, and the next member serves its partition.
type FailoverMode struct {
	Name     string `json:"name"`
	Replicas int    `json:"replicas"`
	// CommitToCall is each event's first call after its commit was published (without commits,
	// after its first piece's publish plus coalesce.delay); its max is the longest an event
	// waited because of the kill.
	CommitToCall dist `json:"commitToCall"`
	// Late is the events whose first call came more than a second after their commit.
	Late int `json:"lateEvents"`
	// LastLate is when, after the kill, the last late event was called.
	LastLateMs float64 `json:"lastLateAfterKillMs"`
	Tally      tally   `json:"api"`
}

// Defaults of the failover phase: a steady rate, long enough before the kill for every window to
// be open somewhere, long enough after it for the gap to close while events keep coming.
const (
	failoverRate      = 200.0
	failoverDuration  = 30 * time.Second
	failoverKillAfter = 10 * time.Second
)

// failover kills a bridge while events are published at a steady rate, and measures how long
// the events wait: in single-replica mode (another bridge started at once, as a supervisor
// restarts a killed process) and in a static group of three (the killed member stays dead).
// The kill closes the bridge's connection first, so that nothing it held is settled, as with
// SIGKILL.
func (r *runner) failover(ctx context.Context) error {
	keys := int(failoverRate * failoverDuration.Seconds())
	def := r.e.bridgeConfig(1)
	res := &FailoverResult{Rate: failoverRate, Events: keys, KillAfter: failoverKillAfter.String(),
		AckWait: def.Consumer.AckWait.String(), FailoverAft: def.Partitions.FailoverAfter.String(), Closed: "commit → call"}
	if !r.cfg.Commits {
		res.Closed = "window end (first piece + delay) → call"
	}
	for _, m := range []struct {
		name     string
		replicas int
	}{{"single-replica mode, restarted at once", 1}, {"static group of 3, one member killed", 3}} {
		fm, err := r.failoverRun(ctx, m.name, m.replicas, keys)
		if err != nil {
			return fmt.Errorf("failover (%s): %w", m.name, err)
		}
		res.Modes = append(res.Modes, fm)
	}
	r.rep.Failover = res
	return nil
}

func (r *runner) failoverRun(ctx context.Context, name string, n, keys int) (FailoverMode, error) {
	cfg := r.cfg
	fm := FailoverMode{Name: name, Replicas: n}
	partitions := 0
	if n > 1 {
		partitions = n
	}
	if err := r.e.resetPartitionedStreams(ctx, 0, partitions); err != nil {
		return fm, err
	}
	defer r.e.deleteStreams(context.WithoutCancel(ctx))
	api, err := startAPI(keys)
	if err != nil {
		return fm, err
	}
	defer api.close()
	perEvent := cfg.messagesPerEvent(cfg.Commits)
	bcfg := r.e.bridgeConfig(r.maxAckPending(failoverRate, perEvent))
	set, err := r.e.startReplicas(ctx, bcfg, api.URL, n)
	if err != nil {
		return fm, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = r.e.stopReplicas(context.WithoutCancel(ctx), set)
		}
	}()

	wl := workload{keys: keys, workflows: cfg.Workflows, bodySize: cfg.BodySize, rate: failoverRate}
	if cfg.Commits {
		wl.commits = func(int) bool { return true }
	}
	times := newPubTimes(keys)
	r.logf("failover, %s: %d events at %.0f events/s, a kill after %s", name, keys, failoverRate, failoverKillAfter)
	published := make(chan error, 1)
	go func() {
		_, _, err := r.publishTimed(ctx, wl, times)
		published <- err
	}()
	var pubErr error
	select {
	case pubErr = <-published:
		published <- pubErr
	case <-time.After(failoverKillAfter):
	}
	if pubErr != nil {
		return fm, pubErr
	}
	victim := set.runs[len(set.runs)/2]
	killed := time.Now()
	victim.nc.Close() // as SIGKILL: nothing it holds is settled
	victim.cancel()
	<-victim.done
	victim.done <- nil
	if n == 1 {
		b, err := r.e.startBridge(ctx, bcfg, api.URL)
		if err != nil {
			return fm, err
		}
		set.runs = append(set.runs, b)
	}
	r.logf("failover, %s: killed", name)
	if err := <-published; err != nil {
		return fm, err
	}
	_, err = waitFor(ctx, cfg.Timeout, "failover: every event called", func() (bool, error) {
		t := api.tally(keys, 1, cfg.Workflows)
		if t.Missing > 0 {
			return false, nil
		}
		return r.e.settledAll(ctx, set.consumers)
	})
	stopped = true
	stopErr := r.e.stopReplicas(context.WithoutCancel(ctx), set)
	if err != nil {
		return fm, err
	}
	if stopErr != nil {
		return fm, fmt.Errorf("stop: %w", stopErr)
	}
	fm.Tally = api.tally(keys, 1, cfg.Workflows)
	if fm.Tally.Missing > 0 || fm.Tally.UnknownCalls > 0 {
		r.rep.fail("failover (%s): events missing or unknown calls: %+v", name, fm.Tally)
	}
	samples := make([]time.Duration, 0, keys)
	for k := range keys {
		at := api.stats[k].firstAt.Load()
		// From the commit, or without commits from when the window closed at the latest (its
		// first piece's publish plus the delay).
		from := times.commit[k]
		if !cfg.Commits {
			from = times.first[k] + int64(cfg.Delay)
		}
		if at == 0 || from <= int64(cfg.Delay) {
			continue
		}
		d := time.Duration(at - from)
		samples = append(samples, d)
		if d > time.Second {
			fm.Late++
			fm.LastLateMs = max(fm.LastLateMs, ms(time.Unix(0, at).Sub(killed)))
		}
	}
	fm.CommitToCall = newDist(samples)
	r.logf("failover, %s: commit → call max %.0f ms, p99 %.0f ms; %d events later than 1 s, the last called %.1f s after the kill",
		name, fm.CommitToCall.Max, fm.CommitToCall.P99, fm.Late, fm.LastLateMs/1000)
	return fm, nil
}
