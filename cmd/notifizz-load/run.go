package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
)

// Run runs the phases of cfg (or the soak) and returns the report. Failed checks are listed in
// the report's Failures; an error means the run could not be completed, and the report, when
// not nil, holds what was measured until then. Progress lines go to log.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Quiet {
		log = io.Discard
	}
	rep := newReport(cfg)
	e, err := newEnv(cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r := &runner{cfg: cfg, e: e, rep: rep, log: log}
	rep.Process.GoroutinesStart = runtime.NumGoroutine()
	rep.Process.FDsStart = openFDs()

	if cfg.Soak > 0 {
		err = r.soak(ctx)
	} else {
		err = r.phases(ctx)
	}
	rep.finish()
	return rep, err
}

type runner struct {
	cfg Config
	e   *env
	rep *Report
	log io.Writer
}

// round is the round of throughput phases being run.
func (r *runner) round() *Round { return &r.rep.Rounds[len(r.rep.Rounds)-1] }

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (r *runner) phases(ctx context.Context) error {
	cfg := r.cfg
	if err := r.warmUp(ctx); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for i := range cfg.Rounds {
		if !cfg.has(phaseRaw) && !cfg.has(phaseBridge) && !cfg.has(phaseBaseline) && !cfg.has(phaseDaemon) {
			break
		}
		r.rep.Rounds = append(r.rep.Rounds, Round{})
		if cfg.Rounds > 1 {
			r.logf("round %d of %d", i+1, cfg.Rounds)
		}
		if cfg.has(phaseRaw) {
			if err := r.raw(ctx); err != nil {
				return fmt.Errorf("raw: %w", err)
			}
		}
		if cfg.has(phaseBridge) {
			err := r.throughput(ctx, "bridge", false)
			if err == nil {
				err = r.throughput(ctx, "bridge", true)
			}
			if err != nil {
				return fmt.Errorf("bridge: %w", err)
			}
		}
		if cfg.has(phaseBaseline) {
			if err := r.throughput(ctx, "baseline", false); err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			if err := r.throughput(ctx, "baseline", true); err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
		}
		if cfg.has(phaseDaemon) {
			if err := r.daemons(ctx); err != nil {
				return fmt.Errorf("daemon: %w", err)
			}
		}
	}
	if cfg.has(phaseLatency) {
		if err := r.latency(ctx); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if cfg.has(phaseHeld) && cfg.Held > 0 {
		if err := r.held(ctx); err != nil {
			return fmt.Errorf("held: %w", err)
		}
	}
	if cfg.has(phaseFailover) {
		if err := r.failover(ctx); err != nil {
			return err
		}
	}
	return nil
}

// warmUp runs the bridge once on a small workload, unmeasured, so that what the process starts
// once and keeps (the server's JetStream API workers, pools, the HTTP transport) is in place
// before the first measurement and is not counted as a phase's growth. With --replicas above 1
// it runs them as the bridge phase will, which also creates the bucket the server keeps static
// groups in.
func (r *runner) warmUp(ctx context.Context) error {
	const keys = 200
	replicas, partitions := 1, 0
	if r.cfg.has(phaseBridge) && r.cfg.Replicas > 1 {
		replicas, partitions = r.cfg.Replicas, r.cfg.Replicas
	}
	if err := r.e.resetPartitionedStreams(ctx, 0, partitions); err != nil {
		return err
	}
	defer r.e.deleteStreams(context.WithoutCancel(ctx))
	wl := workload{keys: keys, workflows: r.cfg.Workflows, bodySize: r.cfg.BodySize, commits: func(int) bool { return true }}
	if _, err := r.publish(ctx, wl); err != nil {
		return err
	}
	api, err := startAPI(keys)
	if err != nil {
		return err
	}
	defer api.close()
	bs, err := r.e.startReplicas(ctx, r.e.bridgeConfig(r.maxAckPending(0, 0)), api.URL, replicas)
	if err != nil {
		return err
	}
	_, err = waitFor(ctx, r.cfg.Timeout, "warm-up settled", func() (bool, error) {
		if api.calls.Load() < keys {
			return false, nil
		}
		return r.e.settledAll(ctx, bs.consumers)
	})
	if stopErr := r.e.stopReplicas(ctx, bs); err == nil {
		err = stopErr
	}
	return err
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// maxAckPending sizes consumer.maxAckPending from delay × rate, as the README asks operators to:
// every message of the events that open within one delay can be held at once. It is never below
// the bridge default, and an explicit --max-ack-pending wins.
func (r *runner) maxAckPending(rate float64, perEvent int) int {
	if r.cfg.MaxAckPending > 0 {
		return r.cfg.MaxAckPending
	}
	n := bridge.DefaultConfig().Consumer.MaxAckPending
	if rate > 0 {
		// Twice the steady need leaves room for the windows that are flushing.
		n = max(n, int(2*rate*r.cfg.Delay.Seconds()*float64(perEvent)))
	}
	return n
}

func (r *runner) throughputWorkload() workload {
	cfg := r.cfg
	wl := workload{keys: cfg.Keys, workflows: cfg.Workflows, bodySize: cfg.BodySize, rate: cfg.Rate}
	if cfg.Commits {
		wl.commits = func(int) bool { return true }
	}
	return wl
}

// raw measures the raw limit: a bare consumer drains the workload from the stream, then
// consumes it while it is being published, as the bridge does in its two modes.
func (r *runner) raw(ctx context.Context) error {
	cfg := r.cfg
	wl := r.throughputWorkload()
	total := cfg.Keys * cfg.messagesPerEvent(cfg.Commits)
	pending := r.maxAckPending(cfg.Rate, cfg.messagesPerEvent(cfg.Commits))
	res := &RawResult{Messages: total}
	for _, live := range []bool{false, true} {
		if err := r.e.resetStreams(ctx, 0); err != nil {
			return err
		}
		var publish func() (time.Time, error)
		if live {
			r.logf("raw end-to-end: consuming while %d messages are published", total)
			publish = func() (time.Time, error) {
				start, _, err := r.publishTimed(ctx, wl, nil)
				return start, err
			}
		} else {
			r.logf("raw drain: publishing %d messages", total)
			pub, err := r.publish(ctx, wl)
			if err != nil {
				return err
			}
			res.PublishSeconds, res.PublishRate = pub.Seconds(), float64(total)/pub.Seconds()
			r.logf("raw drain: draining with a bare consumer")
		}
		f, err := r.e.rawConsume(ctx, total, pending, publish)
		r.e.deleteStreams(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		if live {
			res.EndToEnd = f
		} else {
			res.Drain = f
		}
	}
	r.round().Raw = res
	r.logf("raw: %.0f msgs/s drain, %.0f msgs/s end to end, %.0f msgs/s publish", res.Drain.Rate, res.EndToEnd.Rate, res.PublishRate)
	return nil
}

// publish publishes wl with fresh publisher connections and returns how long it took.
func (r *runner) publish(ctx context.Context, wl workload) (time.Duration, error) {
	_, d, err := r.publishTimed(ctx, wl, nil)
	return d, err
}

func (r *runner) publishTimed(ctx context.Context, wl workload, times *pubTimes) (time.Time, time.Duration, error) {
	p, err := r.e.newPublishers(r.cfg.Publishers)
	if err != nil {
		return time.Time{}, 0, err
	}
	defer p.close()
	start := time.Now()
	err = p.publish(ctx, wl, times)
	return start, time.Since(start), err
}

// prepare readies a throughput phase whose result so far is res: it counts the goroutines
// before it, with no stream, consumer or connection of the phase in place (and again after, so
// that only what the phase leaves behind counts), resets the streams (the notification stream
// split into partitions, 0: not partitioned), publishes wl first when backlog is set (a drain),
// and starts the stand-in API. It returns the bridge's config for the phase. The caller deletes
// the streams and closes the API.
func (r *runner) prepare(ctx context.Context, res *ThroughputResult, wl workload, partitions int, backlog bool) (bridge.Config, *countingAPI, error) {
	cfg := r.cfg
	res.GoroutinesBefore = stableGoroutines()
	if err := r.e.resetPartitionedStreams(ctx, 0, partitions); err != nil {
		return bridge.Config{}, nil, err
	}
	bcfg := r.e.bridgeConfig(r.maxAckPending(cfg.Rate, cfg.messagesPerEvent(cfg.Commits)))
	res.MaxAckPending = bcfg.Consumer.MaxAckPending
	if backlog {
		r.logf("%s: publishing %d messages", res.Name, res.Messages)
		d, err := r.publish(ctx, wl)
		if err != nil {
			return bridge.Config{}, nil, err
		}
		res.PublishSeconds = d.Seconds()
	}
	api, err := startAPI(cfg.Keys)
	if err != nil {
		return bridge.Config{}, nil, err
	}
	return bcfg, api, nil
}

// throughput runs the bridge (or the baseline) on the workload. In drain mode the workload is
// published first and the consumer then drains it, as the raw consumer does; end to end, the
// consumer runs while the workload is published, and the time runs from the first publish to
// the last ack.
func (r *runner) throughput(ctx context.Context, who string, live bool) error {
	cfg := r.cfg
	wl := r.throughputWorkload()
	perEvent := cfg.messagesPerEvent(cfg.Commits)
	total := cfg.Keys * perEvent
	mode := "drain"
	if live {
		mode = "end-to-end"
	}
	res := ThroughputResult{Name: who + " " + mode, Consumer: who, Mode: mode, Messages: total, Replicas: 1}
	partitions := 0 // the bridge's replicas read a stream with one partition each
	if who == "bridge" {
		res.Replicas = cfg.Replicas
		if cfg.Replicas > 1 {
			partitions = cfg.Replicas
		}
	}
	defer r.e.deleteStreams(context.WithoutCancel(ctx))
	bcfg, api, err := r.prepare(ctx, &res, wl, partitions, !live)
	if err != nil {
		return err
	}
	callsPerEvent, consumers := 1, []string(nil) // the bridge's consumers are known once it runs
	if who == "baseline" {
		callsPerEvent, consumers = cfg.Workflows, []string{baselineDurable}
	}
	var stop func() error
	var start time.Time
	var cpu0 time.Duration
	r.logf("%s: starting the %s", res.Name, who)
	if who == "baseline" {
		b, err := r.e.startBaseline(ctx, bcfg, api.URL, cfg.BodySize)
		if err != nil {
			api.close()
			return err
		}
		start, cpu0 = time.Now(), cpuTime()
		stop = func() error { b.stop(); return nil }
	} else {
		// The CPU profile covers the bridge draining the backlog: the bridge and the server
		// delivering to it, without the publishers.
		stopProfile := func() {}
		if !live {
			var err error
			if stopProfile, err = startCPUProfile(cfg.CPUProfile); err != nil {
				api.close()
				return err
			}
		}
		if cfg.Replicas > 1 {
			r.logf("%s: %d replicas in a static group, one partition each", res.Name, cfg.Replicas)
		}
		bs, err := r.e.startReplicas(ctx, bcfg, api.URL, cfg.Replicas)
		if err != nil {
			stopProfile()
			api.close()
			return err
		}
		consumers = bs.consumers
		start, cpu0 = time.Now(), cpuTime()
		if cfg.Replicas > 1 {
			// The replicas start together, but the first ones ready can begin before the
			// clock starts: what they did then is not timed.
			r.logf("%s: %d replicas ready, %d calls made before the clock started", res.Name, cfg.Replicas, api.calls.Load())
		}
		stop = func() error {
			stopProfile()
			res.APICallMs = ms(bs.meanAPICall())
			return r.e.stopReplicas(ctx, bs)
		}
	}
	var publish func() error
	if live {
		r.logf("%s: publishing %d messages", res.Name, total)
		publish = func() error {
			pstart, d, err := r.publishTimed(ctx, wl, nil)
			start = pstart
			res.PublishSeconds = d.Seconds()
			return err
		}
	}
	end, err := r.e.waitPublishing(ctx, res.Name+" settled", publish, func() (bool, error) {
		if api.calls.Load() < int64(cfg.Keys*callsPerEvent) {
			return false, nil
		}
		return r.e.settledAll(ctx, consumers)
	})
	cpu := cpuTime() - cpu0
	stopErr := stop()
	api.close()
	if err != nil {
		return err
	}
	if stopErr != nil {
		return fmt.Errorf("stop: %w", stopErr)
	}
	d := end.Sub(start)
	f := newRawFigure(total, d, cpu)
	res.Seconds, res.Rate, res.CPUSeconds, res.CPUPerMsg = f.Seconds, f.Rate, f.CPUSeconds, f.CPUPerMsg
	res.EventsPerSec = float64(cfg.Keys) / d.Seconds()
	res.API = api.tally(cfg.Keys, callsPerEvent, cfg.Workflows)
	res.CallsPerEvent = res.API.callsPerEvent()
	if res.DeadLetters, err = r.e.deadLetters(ctx); err != nil {
		return err
	}
	r.e.deleteStreams(ctx)
	res.GoroutinesAfter = r.checkGoroutines(res.Name, res.GoroutinesBefore, settleWait)
	if !res.API.ok(callsPerEvent) {
		r.rep.fail("%s: calls do not match the events: %+v", res.Name, res.API)
	}
	if res.DeadLetters > 0 {
		r.rep.fail("%s: %d dead letters", res.Name, res.DeadLetters)
	}
	rd := r.round()
	rd.Throughput = append(rd.Throughput, res)
	r.logf("%s: %.0f msgs/s, %d calls for %d events", res.Name, res.Rate, res.API.Calls, cfg.Keys)
	return nil
}

// stableGoroutines returns the goroutine count once it has stopped changing (goroutines of the
// previous phase may still be ending), waiting at most 2s.
func stableGoroutines() int {
	deadline := time.Now().Add(2 * time.Second)
	n, same := runtime.NumGoroutine(), 0
	for same < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

// settleWait bounds how long a phase waits for the goroutines it started to end before it
// judges them leaked. Goroutines that are ending (connection readers that have yet to see their
// socket closed, timers firing) can take seconds to run on a machine busy with other work, so the
// bound is generous: it is only ever waited in full when something did leak.
const settleWait = 15 * time.Second

// settleCount polls count until it is at most want or wait has passed, and returns the last
// count.
func settleCount(count func() int, want int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		n := count()
		if n <= want || !time.Now().Before(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkGoroutines waits up to wait for the goroutines of a phase to end and fails the run when
// more than before remain, with the stacks of what is left in the failure so that a test run
// shows them. It returns the count after.
func (r *runner) checkGoroutines(name string, before int, wait time.Duration) int {
	after := settleCount(runtime.NumGoroutine, before, wait)
	if after > before {
		r.rep.fail("%s: %d goroutines after, %d before; goroutines left:\n%s", name, after, before, goroutineStacks())
	}
	return after
}

// goroutineStacks is the goroutine profile, one entry per distinct stack with its count, cut
// to a length that a failure message can carry.
func goroutineStacks() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	const maxStacks = 64 << 10
	if s := b.String(); len(s) > maxStacks {
		return s[:maxStacks] + "\n…"
	}
	return b.String()
}

// latency measures at a fixed rate, with the bridge running: from each commit's publish to the
// API receiving the event's call; then, without commits, how late the delay flush is.
func (r *runner) latency(ctx context.Context) error {
	cfg := r.cfg
	res := &LatencyResult{Rate: cfg.LatencyRate, Events: cfg.LatencyKeys, Delay: cfg.Delay.String()}
	for _, commits := range []bool{true, false} {
		wl := workload{keys: cfg.LatencyKeys, workflows: cfg.Workflows, bodySize: cfg.BodySize, rate: cfg.LatencyRate}
		if commits {
			wl.commits = func(int) bool { return true }
		}
		perEvent := cfg.messagesPerEvent(commits)
		name := "latency with commits"
		if !commits {
			name = "latency of delay flushes"
		}
		if err := r.e.resetStreams(ctx, 0); err != nil {
			return err
		}
		api, err := startAPI(wl.keys)
		if err != nil {
			return err
		}
		bcfg := r.e.bridgeConfig(r.maxAckPending(cfg.LatencyRate, perEvent))
		b, err := r.e.startBridge(ctx, bcfg, api.URL)
		if err != nil {
			api.close()
			return err
		}
		r.logf("%s: %d events at %.0f events/s", name, wl.keys, wl.rate)
		times := newPubTimes(wl.keys)
		stopProbe := startProbe()
		_, _, err = r.publishTimed(ctx, wl, times)
		if err == nil {
			_, err = waitFor(ctx, cfg.Timeout, name+" settled", func() (bool, error) {
				if api.calls.Load() < int64(wl.keys) {
					return false, nil
				}
				return r.e.settled(ctx, durableName)
			})
		}
		probe := stopProbe()
		stopErr := b.stop()
		api.close()
		r.e.deleteStreams(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		if stopErr != nil {
			return fmt.Errorf("stop: %w", stopErr)
		}
		t := api.tally(wl.keys, 1, cfg.Workflows)
		if !t.ok(1) {
			r.rep.fail("%s: calls do not match the events: %+v", name, t)
		}
		samples := make([]time.Duration, 0, wl.keys)
		for k := range wl.keys {
			at := api.stats[k].firstAt.Load()
			if at == 0 {
				continue
			}
			if commits {
				samples = append(samples, time.Duration(at-times.commit[k]))
			} else {
				// The window opens when the bridge receives the first piece, a little after it
				// was published: measured from the publish, the figure is an upper bound.
				samples = append(samples, time.Duration(at-times.first[k])-cfg.Delay)
			}
		}
		d := newDist(samples)
		if commits {
			res.CommitToCall, res.CommitTally, res.CommitProbe = d, t, probe
			res.CommitToCallMs = millis(samples)
		} else {
			res.DelayLateness, res.DelayTally, res.DelayProbe = d, t, probe
			res.DelayLatenessMs = millis(samples)
		}
		r.logf("%s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (scheduling probe p99 %.2f ms)", name, d.P50, d.P99, d.Max, probe.P99)
	}
	r.rep.Latency = res
	return nil
}

// probeInterval is how long the scheduling probe sleeps between wake-ups.
const probeInterval = time.Millisecond

// startProbe starts a goroutine that sleeps probeInterval over and over and records how late
// it wakes up: the scheduling delay the machine adds to any latency measured meanwhile (other
// processes on a shared machine, the collector). stop ends it and returns the distribution.
func startProbe() (stop func() dist) {
	done := make(chan struct{})
	result := make(chan dist, 1)
	go func() {
		var late []time.Duration
		for {
			t := time.Now()
			select {
			case <-done:
				result <- newDist(late)
				return
			case <-time.After(probeInterval):
			}
			late = append(late, time.Since(t)-probeInterval)
		}
	}()
	return func() dist {
		close(done)
		return <-result
	}
}

// held measures the heap each held message costs: the bridge holds cfg.Held messages (a long
// delay and no commits keep every window open; consumer.maxAckPending stops delivery there),
// and the live heap after GC is compared with the heap before. The same is measured for a bare
// consumer that only keeps the messages, so that the server's share (the consumer's pending
// state lives in this process too) and the client library's share can be told from the
// bridge's own.
func (r *runner) held(ctx context.Context) error {
	cfg := r.cfg
	n := cfg.Held
	perEvent := cfg.messagesPerEvent(false)
	keys := (n + perEvent - 1) / perEvent
	if err := r.e.resetStreams(ctx, 0); err != nil {
		return err
	}
	defer r.e.deleteStreams(context.WithoutCancel(ctx))
	r.logf("held: publishing %d messages", keys*perEvent)
	if _, err := r.publish(ctx, workload{keys: keys, workflows: cfg.Workflows, bodySize: cfg.BodySize}); err != nil {
		return err
	}
	res := &HeldResult{Held: n}
	res.HeapBefore = liveHeap()

	r.logf("held: a bare consumer holds %d messages", n)
	release, err := r.e.rawHold(ctx, n)
	if err != nil {
		return err
	}
	res.HeapBare = liveHeap()
	release()

	api, err := startAPI(keys)
	if err != nil {
		return err
	}
	defer api.close()
	bcfg := r.e.bridgeConfig(n)
	bcfg.Coalesce.Delay = time.Hour
	bcfg.Coalesce.OrphanTimeout = 2 * time.Hour
	bcfg.Consumer.AckWait = time.Hour // no InProgress sweep while measuring
	// The bare consumer is gone, but its heap may not be; measure the bridge from a fresh base.
	base := liveHeap()
	r.logf("held: the bridge holds %d messages", n)
	b, err := r.e.startBridge(ctx, bcfg, api.URL)
	if err != nil {
		return err
	}
	_, err = waitFor(ctx, cfg.Timeout, "bridge holds messages", func() (bool, error) {
		v, err := b.metric("notifizz_bridge_held_messages")
		return int(v) >= n, err
	})
	if err == nil {
		res.HeapBridge = liveHeap()
		res.HeapBridgeBase = base
		res.RSS = procStatus("VmRSS")
		res.PeakRSS = procStatus("VmHWM")
		if cfg.MemProfile != "" {
			err = writeHeapProfile(cfg.MemProfile)
		}
	}
	if err == nil && cfg.PingWindow > 0 {
		// The idle cost of holding them, with no sweep: the base for the pings' cost below.
		res.IdleCPUPerSec = cpuOver(cfg.PingWindow)
	}
	stopErr := b.stop()
	if err != nil {
		return err
	}
	if stopErr != nil {
		return fmt.Errorf("stop: %w", stopErr)
	}
	if cfg.PingWindow > 0 {
		if err := r.heldPings(ctx, res, bcfg, api.URL); err != nil {
			return err
		}
	}
	res.BareBytesPerMsg = perMsg(res.HeapBare, res.HeapBefore, n)
	res.BridgeBytesPerMsg = perMsg(res.HeapBridge, res.HeapBridgeBase, n)
	res.OwnBytesPerMsg = res.BridgeBytesPerMsg - res.BareBytesPerMsg
	r.rep.Held = res
	r.logf("held: %.0f bytes per held message (bare consumer %.0f)", res.BridgeBytesPerMsg, res.BareBytesPerMsg)
	return nil
}

// cpuOver returns the process's CPU time per second of wall time over d.
func cpuOver(d time.Duration) float64 {
	before, start := cpuTime(), time.Now()
	<-time.After(d) // the length of the measurement
	return float64(cpuTime()-before) / float64(time.Since(start))
}

// heldPings measures what keeping res.Held held messages alive costs with the default
// consumer.ackWait: a bridge holds them (the one before naked them at its stop), and over
// --ping-window the in-progress pings it sends and the process's CPU time are counted, against the
// CPU of the bridge that held them without a sweep.
func (r *runner) heldPings(ctx context.Context, res *HeldResult, bcfg bridge.Config, apiURL string) error {
	bcfg.Consumer.AckWait = bridge.DefaultConfig().Consumer.AckWait
	r.logf("held: the bridge holds %d messages with consumer.ackWait %s", res.Held, bcfg.Consumer.AckWait)
	b, err := r.e.startBridge(ctx, bcfg, apiURL)
	if err != nil {
		return err
	}
	_, err = waitFor(ctx, r.cfg.Timeout, "bridge holds messages", func() (bool, error) {
		v, err := b.metric("notifizz_bridge_held_messages")
		return int(v) >= res.Held, err
	})
	if err == nil {
		// Every held message is pinged once it is half an AckWait old: wait for the first round.
		<-time.After(bcfg.Consumer.AckWait)
		before, _ := b.metric("notifizz_bridge_in_progress_total")
		res.PingCPUPerSec = cpuOver(r.cfg.PingWindow)
		after, _ := b.metric("notifizz_bridge_in_progress_total")
		res.PingsPerSec = (after - before) / r.cfg.PingWindow.Seconds()
		res.PingAckWait = bcfg.Consumer.AckWait.String()
	}
	stopErr := b.stop()
	if err != nil {
		return err
	}
	if stopErr != nil {
		return fmt.Errorf("stop: %w", stopErr)
	}
	r.logf("held: %.0f in-progress pings/s for %d held messages; CPU %.2f s/s against %.2f s/s without them",
		res.PingsPerSec, res.Held, res.PingCPUPerSec, res.IdleCPUPerSec)
	return nil
}

func perMsg(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// dist is a latency distribution in milliseconds.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P90 float64 `json:"p90Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func newDist(s []time.Duration) dist {
	if len(s) == 0 {
		return dist{}
	}
	slices.Sort(s)
	q := func(p float64) float64 {
		i := min(len(s)-1, int(p*float64(len(s))))
		return ms(s[i])
	}
	return dist{N: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
