package main

import (
	"context"
	"math"
	"runtime"
	"time"
)

// Growth bounds of a soak: what the last third of the samples may exceed the second third by.
// The first third is the warm-up (pools, the stream reaching its MaxAge, keep-alive connections).
const (
	soakGoroutineBound = 10
	soakFDBound        = 10
	soakHeapBound      = 16 << 20 // plus a quarter of the warmed-up heap
	soakMaxAge         = time.Minute
)

// SoakResult is a steady workload sampled over time.
type SoakResult struct {
	Duration        string       `json:"duration"`
	Rate            float64      `json:"eventsPerSec"`
	Events          int          `json:"events"`
	API             tally        `json:"api"`
	DeadLetters     uint64       `json:"deadLetters"`
	Samples         []SoakSample `json:"samples"`
	GoroutineGrowth int          `json:"goroutineGrowth"`
	GoroutineBound  int          `json:"goroutineBound"`
	HeapGrowth      int64        `json:"heapGrowth"`
	HeapBound       int64        `json:"heapBound"`
	FDGrowth        int          `json:"fdGrowth"`
	FDBound         int          `json:"fdBound"`
}

// SoakSample is the process at one moment of the soak.
type SoakSample struct {
	Seconds    float64 `json:"t"`
	Goroutines int     `json:"goroutines"`
	Heap       uint64  `json:"heap"`
	FDs        int     `json:"fds"`
	Conns      int     `json:"connections"` // client connections of the embedded server; -1 with --nats
	APIConns   int     `json:"apiConnections"`
	Held       float64 `json:"held"`
}

// Each keep-alive connection to the stand-in API accounts for this many goroutines (the
// transport's reader and writer, the server's handler) and descriptors (one at each end), all in
// this process. The pool grows to the most calls ever in flight at once (at most maxInFlight)
// and shrinks when connections sit idle, so the soak judges the process net of it.
const (
	goroutinesPerAPIConn = 3
	fdsPerAPIConn        = 2
)

func (s SoakSample) netGoroutines() int { return s.Goroutines - goroutinesPerAPIConn*s.APIConns }
func (s SoakSample) netFDs() int        { return s.FDs - fdsPerAPIConn*s.APIConns }

// soak runs the bridge under a steady workload for cfg.Soak: every other event is committed,
// the others wait for their delay, so both ways of closing a window run all along. It samples
// the process every cfg.SoakSample and fails if goroutines, heap or descriptors grow.
func (r *runner) soak(ctx context.Context) error {
	cfg := r.cfg
	keys := int(math.Ceil(cfg.SoakRate * cfg.Soak.Seconds()))
	res := &SoakResult{Duration: cfg.Soak.String(), Rate: cfg.SoakRate, Events: keys,
		GoroutineBound: soakGoroutineBound, FDBound: soakFDBound}
	r.rep.Soak = res
	// A short MaxAge keeps the stream (and the server's memory for it) at a steady size.
	if err := r.e.resetStreams(ctx, soakMaxAge); err != nil {
		return err
	}
	defer r.e.deleteStreams(context.WithoutCancel(ctx))
	// Everything that grows with the number of events is allocated before the first sample.
	api, err := startAPI(keys)
	if err != nil {
		return err
	}
	defer api.close()
	bcfg := r.e.bridgeConfig(r.maxAckPending(cfg.SoakRate, cfg.messagesPerEvent(true)))
	bcfg.Stream.MaxAge = soakMaxAge
	bcfg.Stream.DuplicateWindow = min(bcfg.Stream.DuplicateWindow, soakMaxAge) // the server's rule
	b, err := r.e.startBridge(ctx, bcfg, api.URL)
	if err != nil {
		return err
	}
	defer func() { _ = b.stop() }()

	wl := workload{keys: keys, workflows: cfg.Workflows, bodySize: cfg.BodySize, rate: cfg.SoakRate,
		commits: func(k int) bool { return k%2 == 0 }}
	pubDone := make(chan error, 1)
	r.logf("soak: %s at %.0f events/s", cfg.Soak, cfg.SoakRate)
	start := time.Now()
	go func() {
		_, _, err := r.publishTimed(ctx, wl, nil)
		pubDone <- err
	}()
	tick := time.NewTicker(cfg.SoakSample)
	defer tick.Stop()
	var pubErr error
	for published := false; !published; {
		select {
		case pubErr = <-pubDone:
			published = true
		case <-tick.C:
			// A sample taken once the publishers have closed their connections would make the
			// last third look smaller than it is.
			select {
			case pubErr = <-pubDone:
				published = true
				continue
			default:
			}
			s := r.sample(b, api, start)
			res.Samples = append(res.Samples, s)
			r.logf("soak: %.0fs goroutines %d heap %s fds %d connections %d API connections %d held %.0f",
				s.Seconds, s.Goroutines, mib(s.Heap), s.FDs, s.Conns, s.APIConns, s.Held)
		}
	}
	if pubErr != nil {
		return pubErr
	}
	_, err = waitFor(ctx, cfg.Timeout, "soak settled", func() (bool, error) {
		if api.calls.Load() < int64(keys) {
			return false, nil
		}
		return r.e.settled(ctx, durableName)
	})
	if err != nil {
		return err
	}
	res.API = api.tally(keys, 1, cfg.Workflows)
	if !res.API.ok(1) {
		r.rep.fail("soak: calls do not match the events: %+v", res.API)
	}
	if res.DeadLetters, err = r.e.deadLetters(ctx); err != nil {
		return err
	}
	if res.DeadLetters > 0 {
		r.rep.fail("soak: %d dead letters", res.DeadLetters)
	}
	r.judgeSoak(res)
	return nil
}

func (r *runner) sample(b *bridgeRun, api *countingAPI, start time.Time) SoakSample {
	s := SoakSample{Seconds: time.Since(start).Seconds(), Heap: liveHeap(), Goroutines: runtime.NumGoroutine(), FDs: openFDs(), Conns: -1,
		APIConns: int(api.open.Load())}
	if r.e.srv != nil {
		s.Conns = r.e.srv.NumClients()
	}
	s.Held, _ = b.metric("notifizz_bridge_held_messages")
	return s
}

// judgeSoak compares the last third of the samples with the second third, goroutines and
// descriptors net of the API connection pool.
func (r *runner) judgeSoak(res *SoakResult) {
	n := len(res.Samples)
	if n < 3 {
		r.rep.fail("soak: %d samples are too few to judge growth; run longer or sample more often", n)
		return
	}
	mid, last := res.Samples[n/3:2*n/3], res.Samples[2*n/3:]
	mean := func(ss []SoakSample, f func(SoakSample) float64) float64 {
		var t float64
		for _, s := range ss {
			t += f(s)
		}
		return t / float64(len(ss))
	}
	gor := func(s SoakSample) float64 { return float64(s.netGoroutines()) }
	heap := func(s SoakSample) float64 { return float64(s.Heap) }
	fds := func(s SoakSample) float64 { return float64(s.netFDs()) }
	res.GoroutineGrowth = int(math.Round(mean(last, gor) - mean(mid, gor)))
	res.HeapGrowth = int64(mean(last, heap) - mean(mid, heap))
	res.HeapBound = soakHeapBound + int64(mean(mid, heap)/4)
	res.FDGrowth = int(math.Round(mean(last, fds) - mean(mid, fds)))
	if res.GoroutineGrowth > res.GoroutineBound {
		r.rep.fail("soak: goroutines grew by %d (bound %d)", res.GoroutineGrowth, res.GoroutineBound)
	}
	if res.HeapGrowth > res.HeapBound {
		r.rep.fail("soak: heap grew by %s (bound %s)", signedMiB(res.HeapGrowth), mib(uint64(res.HeapBound)))
	}
	if res.FDGrowth > res.FDBound {
		r.rep.fail("soak: file descriptors grew by %d (bound %d)", res.FDGrowth, res.FDBound)
	}
}
