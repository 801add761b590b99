package bridge

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
)

// HealthConfig configures the stall watchdog.
type HealthConfig struct {
	// StallAfter is how long messages may be pending on the bridge's consumer while the bridge
	// settles none for good (acked, dead-lettered, ignored) before it calls itself stalled:
	// /readyz answers 503 with the reason, notifizz_bridge_stalled is 1 and a warning is logged,
	// until a message is settled again or nothing is pending. 0 turns the watchdog off. A value
	// below Coalesce.OrphanTimeout or Consumer.AckWait is raised to the longer of them: a lone
	// piece waits up to the one, and a window up to the other for what a predecessor held, with
	// nothing settled, and neither is a stall.
	StallAfter time.Duration
}

// stallAfter is the watchdog's threshold in effect (see HealthConfig.StallAfter); 0 when off.
func (c Config) stallAfter() time.Duration {
	if c.Health.StallAfter <= 0 {
		return 0
	}
	return max(c.Health.StallAfter, c.Coalesce.OrphanTimeout, c.Consumer.AckWait)
}

// lagPollEvery is how often the consumer's info is read for the lag gauges, at most: a shorter
// StallAfter polls four times within it, so that a stall is seen on time.
const lagPollEvery = 5 * time.Second

// lagPollMin bounds the poll from below, whatever StallAfter is.
const lagPollMin = 100 * time.Millisecond

// lagGauges are the consumer's figures as its info shows them, by stream, consumer and group
// member (empty for the single consumer).
type lagGauges struct {
	pending, ackPending, redelivered, waiting *prometheus.GaugeVec
}

func newLagGauges() lagGauges {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help},
			[]string{"stream", "consumer", "member"})
	}
	return lagGauges{
		pending: gauge("consumer_pending_messages",
			"Messages in the stream the consumer has not delivered yet (ConsumerInfo num_pending): the lag."),
		ackPending: gauge("consumer_ack_pending_messages",
			"Messages delivered and not acknowledged yet (ConsumerInfo num_ack_pending): what the bridge holds."),
		redelivered: gauge("consumer_redelivered_messages",
			"Messages delivered more than once and not acknowledged yet (ConsumerInfo num_redelivered)."),
		waiting: gauge("consumer_waiting_pulls",
			"Pull requests waiting on the consumer (ConsumerInfo num_waiting); 0 for long means no replica is pulling."),
	}
}

// lagTarget is one consumer whose info the bridge reads.
type lagTarget struct {
	stream, consumer, member string
	// own is this replica's consumer: its pending messages are the bridge's work, which the
	// watchdog weighs. A static group's other members are read only for their gauges.
	own bool
}

// lagTargets lists the consumers to read: the durable consumer, or, in a group, this member's
// consumer, and in a static group every member's, so that each replica shows a member no replica
// pulls from.
func (b *Bridge) lagTargets() []lagTarget {
	cfg := b.cfg
	p := cfg.Partitions
	switch {
	case p.Count == 0:
		return []lagTarget{{stream: cfg.Stream.Name, consumer: cfg.Consumer.Durable, own: true}}
	case p.Mode == PartitionElastic:
		return []lagTarget{{stream: group.ElasticStreamName(cfg.Stream.Name, p.Group), consumer: p.Member, member: p.Member, own: true}}
	}
	var ts []lagTarget
	for _, m := range p.Members {
		ts = append(ts, lagTarget{stream: cfg.Stream.Name, consumer: group.StaticConsumerName(p.Group, m), member: m, own: m == p.Member})
	}
	return ts
}

// expectedReplicas is how many replicas the config expects: the members of a static group, one
// without partitions, and 0 for an elastic group, whose size the config does not fix.
func (b *Bridge) expectedReplicas() int {
	p := b.cfg.Partitions
	switch {
	case p.Count == 0:
		return 1
	case p.Mode == PartitionElastic:
		return 0
	}
	return len(p.Members)
}

// watchdog tells a stall from the consumer's pending count and the bridge's progress. Its
// fields belong to the goroutine of watchHealth.
type watchdog struct {
	after        time.Duration // health.stallAfter; 0: never stalled
	finals       uint64        // metrics.finals as last read
	progress     time.Time     // when finals was last seen to move
	pendingSince time.Time     // when work was first seen pending after none was; zero when none is
	stalled      bool
}

// observe takes one reading, pending messages at now with finals settled so far, and returns
// how long work has been pending without progress and whether that makes a stall.
func (w *watchdog) observe(now time.Time, pending, finals uint64) (idle time.Duration, stalled bool) {
	if finals != w.finals || w.progress.IsZero() {
		w.finals, w.progress = finals, now
	}
	if pending == 0 {
		w.pendingSince = time.Time{}
		return 0, false
	}
	if w.pendingSince.IsZero() {
		w.pendingSince = now
	}
	from := w.progress
	if w.pendingSince.After(from) {
		from = w.pendingSince // idle before the work came: that was no stall
	}
	idle = now.Sub(from)
	return idle, w.after > 0 && idle >= w.after
}

// watchHealth reads the consumers' info every poll until ctx is done, sets the lag gauges and
// runs the stall watchdog, which sets b.stall.
func (b *Bridge) watchHealth(ctx context.Context) {
	after := b.cfg.stallAfter()
	every := lagPollEvery
	if after > 0 {
		every = max(min(every, after/4), lagPollMin)
	}
	targets := b.lagTargets()
	last := make([]uint64, len(targets)) // each own consumer's pending, as last read
	w := &watchdog{after: after}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		var pending uint64
		for i, t := range targets {
			if n, ok := b.readLag(ctx, t); ok {
				last[i] = n
			}
			if t.own {
				// A consumer that could not be read keeps its last count: a consumer that is
				// gone with work on it is no progress either.
				pending += last[i]
			}
		}
		idle, stalled := w.observe(time.Now(), pending, b.m.finals.Load())
		b.m.noProgress.Set(idle.Seconds())
		switch {
		case stalled:
			reason := fmt.Sprintf("stalled: %d messages pending and none settled for %s", pending, idle.Truncate(time.Second))
			b.stall.Store(&reason)
			if !w.stalled {
				b.log.Warn("the bridge is stalled: messages are pending and none was settled; not ready until one is",
					"pending", pending, "for", idle.Truncate(time.Second), "stall_after", w.after)
			}
			b.m.stalled.Set(1)
		case w.stalled:
			b.stall.Store(nil)
			b.m.stalled.Set(0)
			b.log.Info("the bridge is no longer stalled", "pending", pending)
		}
		w.stalled = stalled
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readLag reads t's info into the lag gauges and returns its pending messages, delivered or
// not; ok is false when the info could not be read.
func (b *Bridge) readLag(ctx context.Context, t lagTarget) (pending uint64, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, lagPollEvery)
	defer cancel()
	cons, err := b.js.Consumer(ctx, t.stream, t.consumer)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Debug("could not read the consumer's info for the lag metrics", "stream", t.stream, "consumer", t.consumer, "error", err)
		}
		return 0, false
	}
	info := cons.CachedInfo()
	l := b.m.lag
	labels := []string{t.stream, t.consumer, t.member}
	l.pending.WithLabelValues(labels...).Set(float64(info.NumPending))
	l.ackPending.WithLabelValues(labels...).Set(float64(info.NumAckPending))
	l.redelivered.WithLabelValues(labels...).Set(float64(info.NumRedelivered))
	l.waiting.WithLabelValues(labels...).Set(float64(info.NumWaiting))
	return info.NumPending + uint64(info.NumAckPending), true
}

// stallState holds the watchdog's reason while the bridge is stalled, nil otherwise.
type stallState = atomic.Pointer[string]

// StallProblem returns why the bridge is stalled (see HealthConfig.StallAfter), or "" when it
// is not: the daemon's /readyz answers 503 with it.
func (b *Bridge) StallProblem() string {
	if r := b.stall.Load(); r != nil {
		return *r
	}
	return ""
}
