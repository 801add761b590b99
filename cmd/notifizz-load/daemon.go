package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/internal/loopback"
)

// daemonBinaries are the binaries of --daemon, a comma-separated list.
func (c Config) daemonBinaries() []string {
	var bins []string
	for _, b := range strings.Split(c.Daemon, ",") {
		if b = strings.TrimSpace(b); b != "" {
			bins = append(bins, b)
		}
	}
	return bins
}

// daemonStopTimeout bounds how long the daemon may take to exit after SIGTERM.
const daemonStopTimeout = 30 * time.Second

// daemonSDKKey is the SDK key the daemon under test is given: the stand-in API takes any.
const daemonSDKKey = "notifizz-load-stand-in"

// daemon drains the workload with the built notifizz-bridge binary, run as users run it: its
// own process, a config file, connected over TCP to the run's server, which it did not start,
// calling the stand-in API through notifizz.baseUrl. The backlog is published first, then the
// binary is started; the time runs from the start of the process to the API receiving the last
// event's call, so that the daemon's start-up counts. A second row times the calls alone, from
// the first to the last. The daemon must call every event once, leave nothing pending, and exit
// 0 on SIGTERM.
//
// The daemon inherits the environment, so GOGC, GOMEMLIMIT and NOTIFIZZ_BRIDGE_CPUPROFILE or
// NOTIFIZZ_BRIDGE_MEMPROFILE given to the load command reach it.
//
// With several binaries (--daemon A,B), each drains its own backlog in every round, one after
// the other (each round starting with the next one), and the rows are named after the binaries:
// a change is measured against the build before it in the same run.
func (r *runner) daemons(ctx context.Context) error {
	bins := r.cfg.daemonBinaries()
	// Each round starts with the next binary, so that none always runs right after raw.
	n := len(r.rep.Rounds) - 1
	for i := range bins {
		bin := bins[(i+n)%len(bins)]
		name := "daemon drain"
		if len(bins) > 1 {
			name += " " + filepath.Base(bin)
		}
		if err := r.daemon(ctx, bin, name); err != nil {
			return err
		}
	}
	return nil
}

// daemon runs one binary on a backlog of its own and adds its rows, named name, to the round.
func (r *runner) daemon(ctx context.Context, bin, name string) error {
	cfg := r.cfg
	wl := r.throughputWorkload()
	perEvent := cfg.messagesPerEvent(cfg.Commits)
	total := cfg.Keys * perEvent
	res := ThroughputResult{Name: name, Consumer: "daemon", Mode: "drain", Messages: total, Replicas: 1}
	defer r.e.deleteStreams(context.WithoutCancel(ctx))
	bcfg, api, err := r.prepare(ctx, &res, wl, 0, true)
	if err != nil {
		return err
	}
	apiClosed := false
	defer func() {
		if !apiClosed {
			api.close()
		}
	}()

	dir, err := os.MkdirTemp("", "notifizz-load-daemon-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	httpAddr, err := loopback.FreeAddr()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte(r.daemonConfig(bcfg.Consumer.MaxAckPending, bcfg.Coalesce.OrphanTimeout, api.URL, httpAddr)), 0o600); err != nil {
		return err
	}

	// The daemon runs in the temporary directory: a relative path names a file from here.
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	r.logf("%s: starting %s", res.Name, bin)
	cmd := exec.CommandContext(ctx, bin, "run", "--config", conf)
	cmd.Env = append(os.Environ(), "NOTIFIZZ_SDK_SECRET_KEY="+daemonSDKKey)
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.WaitDelay = time.Second
	cpu0 := cpuTime()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fails only if it has already exited
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("daemon exit: %w; its output:\n%s", err, stderr.tail())
			}
			return nil
		case <-time.After(daemonStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("daemon still running %s after SIGTERM; its output:\n%s", daemonStopTimeout, stderr.tail())
		}
	}

	_, err = waitFor(ctx, cfg.Timeout, res.Name+" settled", func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("daemon exited early (%v); its output:\n%s", err, stderr.tail())
		default:
		}
		if api.calls.Load() < int64(cfg.Keys) {
			return false, nil
		}
		return r.e.settled(ctx, durableName)
	})
	stopErr := stop()
	api.close()
	apiClosed = true
	if err != nil {
		return err
	}
	if stopErr != nil {
		return stopErr
	}
	cpu := cpuTime() - cpu0 + cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

	first, last := api.callSpan(cfg.Keys)
	res.API = api.tally(cfg.Keys, 1, cfg.Workflows)
	res.CallsPerEvent = res.API.callsPerEvent()
	if res.DeadLetters, err = r.e.deadLetters(ctx); err != nil {
		return err
	}
	r.e.deleteStreams(ctx)
	res.GoroutinesAfter = r.checkGoroutines(res.Name, res.GoroutinesBefore, settleWait)
	if !res.API.ok(1) {
		r.rep.fail("%s: calls do not match the events: %+v", res.Name, res.API)
	}
	if res.DeadLetters > 0 {
		r.rep.fail("%s: %d dead letters", res.Name, res.DeadLetters)
	}
	if first.IsZero() {
		return fmt.Errorf("%s: no call was made", res.Name)
	}
	res.StartSeconds = first.Sub(start).Seconds()
	fromStart := res
	fill := func(t *ThroughputResult, d time.Duration) {
		f := newRawFigure(total, d, cpu)
		t.Seconds, t.Rate, t.CPUSeconds, t.CPUPerMsg = f.Seconds, f.Rate, f.CPUSeconds, f.CPUPerMsg
		t.EventsPerSec = float64(cfg.Keys) / d.Seconds()
	}
	fill(&fromStart, last.Sub(start))
	calls := res
	calls.Name = strings.Replace(name, "drain", "first→last call", 1) // short: it labels a bar of --plot
	fill(&calls, last.Sub(first))
	rd := r.round()
	rd.Throughput = append(rd.Throughput, fromStart, calls)
	started := "?"
	if at := stderr.startedAt(); !at.IsZero() {
		started = fmt.Sprintf("%.3f s", at.Sub(start).Seconds())
	}
	r.logf("%s: %.0f msgs/s from the process start (consuming after %s, first call after %.3f s), %.0f msgs/s first→last call, %d calls for %d events",
		res.Name, fromStart.Rate, started, res.StartSeconds, calls.Rate, res.API.Calls, cfg.Keys)
	return nil
}

// daemonConfig is the config file of the daemon under test: the daemon's defaults with the
// run's stream, consumer and dead-letter names (the stream is created by the run, as for the
// in-process bridge, and the daemon binds to it), the run's delay and limits, the stand-in API
// and the run's server.
func (r *runner) daemonConfig(maxAckPending int, orphanTimeout time.Duration, apiURL, httpAddr string) string {
	cfg := r.cfg
	return fmt.Sprintf(`nats:
  url: %q
  connectTimeout: 30s
stream:
  name: %s
  subjectPrefix: %s
  storage: %s
consumer:
  durable: %s
  maxAckPending: %d
coalesce:
  delay: %s
  orphanTimeout: %s
notifizz:
  baseUrl: %q
  sdkSecretKey: ${NOTIFIZZ_SDK_SECRET_KEY}
  maxInFlight: %d
deadLetter:
  stream: %s
  subjectPrefix: %s
http:
  listen: %q
log:
  level: info
`, r.e.url, streamName, subjectPref, cfg.Storage, durableName, maxAckPending, cfg.Delay, orphanTimeout,
		apiURL, cfg.MaxInFlight, dlqStream, dlqPrefix, httpAddr)
}

// callSpan returns when the API received the first and the last first call of events
// [0, events); zero times if none was called.
func (a *countingAPI) callSpan(events int) (first, last time.Time) {
	var lo, hi int64
	for k := range min(events, len(a.stats)) {
		at := a.stats[k].firstAt.Load()
		if at == 0 {
			continue
		}
		if lo == 0 || at < lo {
			lo = at
		}
		hi = max(hi, at)
	}
	if lo == 0 {
		return time.Time{}, time.Time{}
	}
	return time.Unix(0, lo), time.Unix(0, hi)
}

// lockedBuffer keeps the daemon's output for a failure message, and notes when the daemon
// said it started (it says so once it consumes).
type lockedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	started time.Time
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started.IsZero() && bytes.Contains(p, []byte("notifizz-bridge started")) {
		b.started = time.Now()
	}
	return b.buf.Write(p)
}

// startedAt is when the daemon logged its start, or the zero time.
func (b *lockedBuffer) startedAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

// tail is the end of the output, at most a few KiB.
func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	const maxTail = 8 << 10
	if len(s) > maxTail {
		s = "…" + s[len(s)-maxTail:]
	}
	return strings.TrimSpace(s)
}
