package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Durable names of the bare consumers; the bridge's is durableName.
const (
	rawDurable      = "raw"
	baselineDurable = "baseline"
)

// Secrets of the stand-in API; it checks none of them.
const (
	loadSDKKey  = "load-sdk-key"
	loadAuthKey = "load-auth-key"
)

// newClient is a real Notifizz client pointed at the stand-in API, configured as the daemon
// configures it from the bridge config. It uses the package's default HTTP client, whose
// keep-alive pool is part of what is measured.
func newClient(apiURL string, cfg bridge.Config) *notifizz.Client {
	return notifizz.NewClient(loadAuthKey, loadSDKKey,
		notifizz.WithBaseURL(apiURL),
		notifizz.WithTimeout(10*time.Second),
		notifizz.WithRetry(notifizz.RetryPolicy{
			Attempts:       cfg.Retry.Attempts,
			InitialBackoff: cfg.Retry.InitialBackoff,
			MaxBackoff:     cfg.Retry.MaxBackoff,
		}))
}

// bareConsumer creates a durable pull consumer with the bridge's settings, so that the bare
// consumers and the bridge read the stream the same way.
func (e *env) bareConsumer(ctx context.Context, js jetstream.JetStream, durable string, maxAckPending int) (jetstream.Consumer, error) {
	c := e.bridgeConfig(maxAckPending)
	c.Consumer.Durable = durable
	return js.CreateOrUpdateConsumer(ctx, streamName, c.ConsumerLayout().DurableConfig(0))
}

// consume starts pulling cons, read through nc, as the bridge pulls its consumer.
func consume(nc *nats.Conn, cons jetstream.Consumer, handle func(jetstream.Msg)) (jetstream.ConsumeContext, error) {
	c := layout.Consumer{MaxAckPending: cons.CachedInfo().Config.MaxAckPending}
	return cons.Consume(handle, c.Pull(nc.MaxPayload())...)
}

// stopConsume stops pulling and waits until the handler will not run again.
func stopConsume(cc jetstream.ConsumeContext) {
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(10 * time.Second):
	}
}

// rawConsume consumes and acks total messages with a bare consumer doing no processing: the
// raw limit the bridge is compared with. Without publish, the messages are already in the stream
// and the time runs from the start of pulling; with it, publish runs once the consumer is
// pulling, and the time runs from the start of publishing. Either way it ends when the server
// has every ack.
func (e *env) rawConsume(ctx context.Context, total, maxAckPending int, publish func() (time.Time, error)) (rawFigure, error) {
	nc, js, err := e.connect("notifizz-load raw consumer", true)
	if err != nil {
		return rawFigure{}, err
	}
	defer closeConn(nc)
	_ = e.js.DeleteConsumer(ctx, streamName, rawDurable)
	cons, err := e.bareConsumer(ctx, js, rawDurable, maxAckPending)
	if err != nil {
		return rawFigure{}, fmt.Errorf("raw consumer: %w", err)
	}
	var acked atomic.Int64
	start, cpu0 := time.Now(), cpuTime()
	cc, err := consume(nc, cons, func(m jetstream.Msg) {
		// Ack is asynchronous: it is published without waiting for the server's reply.
		if m.Ack() == nil {
			acked.Add(1)
		}
	})
	if err != nil {
		return rawFigure{}, err
	}
	defer stopConsume(cc)
	var pub func() error
	if publish != nil {
		pub = func() error {
			t, err := publish()
			start = t
			return err
		}
	}
	end, err := e.waitPublishing(ctx, "raw consumer drained", pub, func() (bool, error) {
		if acked.Load() < int64(total) {
			return false, nil
		}
		return e.settled(ctx, rawDurable)
	})
	cpu := cpuTime() - cpu0
	if err != nil {
		return rawFigure{}, err
	}
	return newRawFigure(total, end.Sub(start), cpu), nil
}

// rawHold consumes up to maxAckPending messages without acking them and keeps them, for the
// memory a bare consumer needs to hold what the bridge holds. release drops them.
func (e *env) rawHold(ctx context.Context, n int) (release func(), err error) {
	nc, js, err := e.connect("notifizz-load raw holder", true)
	if err != nil {
		return nil, err
	}
	cons, err := e.bareConsumer(ctx, js, rawDurable, n)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("raw holder: %w", err)
	}
	var mu sync.Mutex
	held := make([]jetstream.Msg, 0, n)
	cc, err := consume(nc, cons, func(m jetstream.Msg) {
		mu.Lock()
		held = append(held, m)
		mu.Unlock()
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	release = func() {
		stopConsume(cc)
		closeConn(nc)
		_ = e.js.DeleteConsumer(context.Background(), streamName, rawDurable)
		mu.Lock()
		held = nil
		mu.Unlock()
	}
	_, err = waitFor(ctx, e.cfg.Timeout, "raw holder full", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(held) >= n, nil
	})
	if err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// bridgeRun is a running bridge with its own connection, as the daemon has.
type bridgeRun struct {
	b      *bridge.Bridge
	nc     *nats.Conn
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startBridge runs the bridge against the stand-in API and returns once it is consuming.
func (e *env) startBridge(ctx context.Context, cfg bridge.Config, apiURL string) (*bridgeRun, error) {
	nc, js, err := e.connect("notifizz-load bridge", true)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	b, err := bridge.New(cfg, js, newClient(apiURL, cfg), bridge.WithRegisterer(reg))
	if err != nil {
		nc.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &bridgeRun{b: b, nc: nc, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(runCtx) }()
	_, err = waitFor(ctx, readyTimeout, "bridge ready", func() (bool, error) {
		select {
		case err := <-r.done:
			r.done <- err
			return false, fmt.Errorf("bridge stopped: %w", err)
		default:
		}
		return b.Ready(), nil
	})
	if err != nil {
		_ = r.stop()
		return nil, err
	}
	return r, nil
}

// stop shuts the bridge down (it flushes what has a track and naks the rest) and closes its
// connection once the last acks are flushed.
func (r *bridgeRun) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err
	closeConn(r.nc)
	return err
}

// metric reads one of the bridge's gauges or counters (without labels) from its registry.
func (r *bridgeRun) metric(name string) (float64, error) {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), nil
			}
			return m.GetGauge().GetValue(), nil
		}
	}
	return 0, errors.New("no metric " + name)
}

// replicaGroup is the static consumer group of the bridge phase with --replicas above 1; each
// member's consumer is named by layout.StaticConsumerName.
const replicaGroup = "notifizz-load"

// replicaMembers names the members of a group of n replicas: r0, r1, ...
func replicaMembers(n int) []string {
	m := make([]string, n)
	for i := range m {
		m[i] = "r" + strconv.Itoa(i)
	}
	return m
}

// replicaSet is the bridges of a phase: one in single-replica mode, or the members of a static
// partitioned group, each with its own connection and Prometheus registry, in this process.
type replicaSet struct {
	runs      []*bridgeRun
	consumers []string // the consumers that must be settled at the end of the phase
	group     bool     // a static group, deleted with the phase
}

// startReplicas starts n bridges with cfg against the stand-in API and returns once every one
// is consuming. With n = 1 it is startBridge. Above 1, the stream must have been created with n
// partitions (resetPartitionedStreams): the bridges run in static partitioned mode with
// partitions.count = n, one partition per member (the file store serves one filter subject far
// faster than several; see docs/SCALING.md), and are started all at once.
func (e *env) startReplicas(ctx context.Context, cfg bridge.Config, apiURL string, n int) (*replicaSet, error) {
	if n == 1 {
		b, err := e.startBridge(ctx, cfg, apiURL)
		if err != nil {
			return nil, err
		}
		return &replicaSet{runs: []*bridgeRun{b}, consumers: []string{cfg.Consumer.Durable}}, nil
	}
	members := replicaMembers(n)
	cfg.Partitions = bridge.PartitionsConfig{Count: n, Mode: bridge.PartitionStatic, Group: replicaGroup, Members: members,
		FailoverAfter: bridge.DefaultConfig().Partitions.FailoverAfter}
	// The group is created here, once, as the bridge would: replicas starting together would
	// otherwise each write its config.
	s := &replicaSet{group: true}
	if err := layout.CreateStaticGroup(ctx, e.js, streamName, replicaGroup, n, members); err != nil {
		return nil, fmt.Errorf("create static group %s: %w", replicaGroup, err)
	}
	runs, errs := make([]*bridgeRun, n), make([]error, n)
	var wg sync.WaitGroup
	for i, m := range members {
		c := cfg
		c.Partitions.Member = m
		wg.Go(func() { runs[i], errs[i] = e.startBridge(ctx, c, apiURL) })
		s.consumers = append(s.consumers, layout.StaticConsumerName(replicaGroup, m))
	}
	wg.Wait()
	for _, r := range runs {
		if r != nil {
			s.runs = append(s.runs, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = e.stopReplicas(ctx, s)
		return nil, err
	}
	return s, nil
}

// stopReplicas stops every bridge of s and, for a group, deletes it, so that the next phase
// starts without it.
func (e *env) stopReplicas(ctx context.Context, s *replicaSet) error {
	var errs []error
	for _, r := range s.runs {
		errs = append(errs, r.stop())
	}
	if s.group {
		if err := pcgroups.DeleteStatic(context.WithoutCancel(ctx), e.js, streamName, replicaGroup); err != nil {
			errs = append(errs, fmt.Errorf("delete static group %s: %w", replicaGroup, err))
		}
	}
	return errors.Join(errs...)
}

// meanAPICall is the mean duration of the API calls of every bridge of s so far.
func (s *replicaSet) meanAPICall() time.Duration {
	var sum float64
	var n uint64
	for _, r := range s.runs {
		rs, rn := r.apiCalls()
		sum += rs
		n += rn
	}
	if n == 0 {
		return 0
	}
	return time.Duration(sum / float64(n) * float64(time.Second))
}

// apiCalls is the sum in seconds and the count of the bridge's API call durations so far.
func (r *bridgeRun) apiCalls() (sum float64, n uint64) {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() != "notifizz_bridge_api_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			n += m.GetHistogram().GetSampleCount()
		}
		return sum, n
	}
	return 0, 0
}

// baselineRun forwards the workload without coalescing: a bare consumer hands each workflow
// message to one of MaxInFlight workers, which makes one API call for it (with the event's
// name and properties, as a producer calling the SDK per message would) and acks it. Tracks and
// commits are acked at once. It shares the bridge's client, consumer settings and concurrency,
// so the difference is the coalescing.
type baselineRun struct {
	nc   *nats.Conn
	cc   jetstream.ConsumeContext
	jobs chan baselineJob
	wg   sync.WaitGroup
}

type baselineJob struct {
	msg jetstream.Msg
	req notifizz.TrackRequest
}

func (e *env) startBaseline(ctx context.Context, cfg bridge.Config, apiURL string, bodySize int) (*baselineRun, error) {
	nc, js, err := e.connect("notifizz-load baseline", true)
	if err != nil {
		return nil, err
	}
	cons, err := e.bareConsumer(ctx, js, baselineDurable, cfg.Consumer.MaxAckPending)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("baseline consumer: %w", err)
	}
	client := newClient(apiURL, cfg)
	r := &baselineRun{nc: nc, jobs: make(chan baselineJob, 1024)}
	workCtx := context.WithoutCancel(ctx)
	for range cfg.MaxInFlight {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for j := range r.jobs {
				if err := client.TrackEvent(workCtx, j.req); err != nil {
					_ = j.msg.Nak()
					continue
				}
				_ = j.msg.Ack()
			}
		}()
	}
	padding := string(trackPadding(bodySize))
	r.cc, err = consume(nc, cons, func(m jetstream.Msg) {
		kind, key, err := schema.ParseSubject(subjectPref, m.Subject())
		if err != nil || kind != schema.KindWorkflow {
			_ = m.Ack()
			return
		}
		w, err := schema.DecodeWorkflow(m.Data())
		k, ok := eventNumber(key)
		if err != nil || !ok {
			_ = m.Term()
			return
		}
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		props := map[string]any{"loadKey": k}
		if padding != "" {
			props["pad"] = padding
		}
		r.jobs <- baselineJob{msg: m, req: notifizz.TrackRequest{
			EventName:      "load_event",
			Properties:     props,
			Workflows:      []notifizz.Workflow{bridge.APIWorkflow(w)},
			IdempotencyKey: "baseline-" + strconv.FormatUint(meta.Sequence.Stream, 10),
		}}
	})
	if err != nil {
		close(r.jobs)
		r.wg.Wait()
		nc.Close()
		return nil, err
	}
	return r, nil
}

func (r *baselineRun) stop() {
	stopConsume(r.cc)
	close(r.jobs)
	r.wg.Wait()
	closeConn(r.nc)
}

// trackPadding is the padding trackBody adds for size, so that the baseline's calls carry the
// same properties as the bridge's.
func trackPadding(size int) []byte {
	b := trackBody(0, size)
	i := len(`{"eventName":"load_event","properties":{"loadKey":0,"pad":"`)
	if len(b) <= i {
		return nil
	}
	return b[i : len(b)-len(`"}}`)]
}

// waitPublishing is waitFor(e.cfg.Timeout) for a consumer that may be running while its workload
// is published: publish, when not nil, runs meanwhile, and done is only asked once it has
// returned without error. It returns once publish has returned.
func (e *env) waitPublishing(ctx context.Context, what string, publish func() error, done func() (bool, error)) (time.Time, error) {
	pubDone := make(chan error, 1)
	if publish != nil {
		go func() { pubDone <- publish() }()
	} else {
		pubDone <- nil
	}
	published := false
	end, err := waitFor(ctx, e.cfg.Timeout, what, func() (bool, error) {
		if !published {
			select {
			case err := <-pubDone:
				published = true
				if err != nil {
					return false, err
				}
			default:
				return false, nil
			}
		}
		return done()
	})
	if !published {
		// Publishing stops with ctx or at its own errors; wait for it before tearing down.
		<-pubDone
	}
	return end, err
}
