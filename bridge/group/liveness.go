package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Dead members of a group. pcgroups never changes a group's membership by itself, so the
// replicas beat (heartbeat) and each judges, by its own clock, whose beat has stopped: in elastic
// mode the live member whose name sorts first drops a dead one (reap); in static mode the next
// live member runs a standby of it (cover). docs/SCALING.md tells the whole story.

// BeatEvery is how often a replica beats, for a group whose members fail over after
// failoverAfter (partitions.failoverAfter): a quarter of it, between 250ms and 5s.
func BeatEvery(failoverAfter time.Duration) time.Duration {
	return min(max(failoverAfter/4, 250*time.Millisecond), 5*time.Second)
}

// DeadAfter is how long a member may go without a beat before the others take it for dead:
// failoverAfter, and never fewer than four beats, so that one late beat is not taken for a death.
// It does not depend on the consumer's AckWait: a dead member's messages come back on their own
// ack timers, while its partitions move (elastic) or get a standby (static) after DeadAfter.
func DeadAfter(failoverAfter time.Duration) time.Duration {
	return max(failoverAfter, 4*BeatEvery(failoverAfter))
}

// heartbeat is this replica's beat in LivenessBucket and its reading of the others' beats. Its
// goroutine (start) beats until end; the group's tending goroutine reads the others' beats.
type heartbeat struct {
	js    jetstream.JetStream
	log   *slog.Logger
	cfg   Config
	every time.Duration
	since string // what this replica beats: when it started
	// kv is the bucket, nil while the operator has not created it. It is set before the beats
	// start, and only the tending goroutine sets it (see find).
	kv      jetstream.KeyValue
	beating atomic.Int64 // since when (Unix ns) this replica's beats go through; 0 while they fail

	stop context.CancelFunc // ends the beats; nil until they start
	wg   sync.WaitGroup     // the beats' goroutine
}

// openHeartbeat returns this replica's heartbeat, creating the bucket when the bridge manages the
// streams. When the operator manages them and the bucket does not exist, its kv is nil: dead
// members are then not detected until the bucket exists, and a warning says so.
func openHeartbeat(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*heartbeat, error) {
	h := &heartbeat{js: js, log: log, cfg: cfg, every: BeatEvery(cfg.FailoverAfter), since: time.Now().UTC().Format(time.RFC3339)}
	if !cfg.Manage {
		kv, err := js.KeyValue(ctx, LivenessBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			log.Warn("the key-value bucket for the group's heartbeats does not exist, so dead members are not detected: "+
				"create it (see docs/SCALING.md) or let the bridge manage the streams (stream.create)", "bucket", LivenessBucket)
			return h, nil
		}
		if err != nil {
			return nil, fmt.Errorf("partitions: liveness bucket %s: %w", LivenessBucket, err)
		}
		h.kv = kv
		return h, nil
	}
	kv, err := h.create(ctx)
	if err != nil {
		// A bucket made with other settings (an earlier version kept it in memory) serves as
		// well: use it as it is.
		if have, gerr := js.KeyValue(ctx, LivenessBucket); gerr == nil {
			log.Warn("the heartbeat bucket exists with other settings; using it as it is", "bucket", LivenessBucket, "error", err)
			h.kv = have
			return h, nil
		}
		return nil, fmt.Errorf("partitions: create liveness bucket %s: %w", LivenessBucket, err)
	}
	h.kv = kv
	return h, nil
}

func (h *heartbeat) create(ctx context.Context) (jetstream.KeyValue, error) {
	return h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LivenessBucket,
		Description: "notifizz-bridge: heartbeats of the replicas of consumer groups",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    h.cfg.Replicas,
	})
}

// key is the key member beats under.
func (h *heartbeat) key(member string) string { return livenessKey(h.cfg.Stream, h.cfg.Group, member) }

// beat puts this replica's key once, and on success sets beating if it was not set. When the
// bucket has gone (a server that lost it), it creates it again if the bridge manages the streams.
func (h *heartbeat) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.every)
	defer cancel()
	put := func() error {
		_, err := h.kv.Put(ctx, h.key(h.cfg.Member), []byte(h.since))
		return err
	}
	err := put()
	if (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrBucketNotFound)) && h.cfg.Manage {
		if _, cerr := h.create(ctx); cerr == nil {
			h.log.Warn("the heartbeat bucket was gone: created it again", "bucket", LivenessBucket)
			err = put()
		}
	}
	if err != nil {
		return err
	}
	h.beating.CompareAndSwap(0, time.Now().UnixNano())
	return nil
}

// find looks for the bucket that was missing when this replica started (the operator manages
// the streams and had not created it), and starts beating once it exists. It runs on the
// tending goroutine, which alone sets kv.
func (h *heartbeat) find(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, h.every)
	defer cancel()
	kv, err := h.js.KeyValue(rctx, LivenessBucket)
	if err != nil {
		return
	}
	h.kv = kv
	h.log.Info("the heartbeat bucket exists now: dead members are detected", "bucket", LivenessBucket)
	h.start(ctx)
}

// start starts the goroutine that beats. The beats go on until end, after this replica has
// settled what it held: a replica that is shutting down is not dead.
func (h *heartbeat) start(ctx context.Context) {
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h.stop = stop
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tick := time.NewTicker(h.every)
		defer tick.Stop()
		missed := 0
		for {
			select {
			case <-bctx.Done():
				return
			case <-tick.C:
			}
			err := h.beat(bctx)
			switch {
			case err == nil:
				if missed >= 2 {
					h.log.Info("heartbeats go through again")
				}
				missed = 0
			case bctx.Err() == nil:
				// One failure may be a slow server; two in a row mean this replica has not
				// been seen for a while, and must not judge the others until its beats have
				// gone through again for DeadAfter.
				if missed++; missed == 2 {
					h.beating.Store(0)
					h.log.Warn("heartbeats are failing: the others take this replica for dead when they fail for "+
						DeadAfter(h.cfg.FailoverAfter).String(), "error", err)
				}
			}
		}
	}()
}

// end stops the beats, when the replica has left.
func (h *heartbeat) end() {
	if h.stop != nil {
		h.stop()
		h.wg.Wait()
	}
}

// failing reports whether the bucket exists and this replica's beats are not going through.
func (h *heartbeat) failing() bool { return h.kv != nil && h.beating.Load() == 0 }

// beatSeen is what a replica last read of a member's beat: the revision of its key (0 when it
// had none) and when, by this replica's clock, that revision was first read.
type beatSeen struct {
	rev   uint64
	since time.Time
}

// alive reads the beats of members and returns the ones whose beat has moved within DeadAfter,
// self included. It reads them rather than watching them, because a watch can take several
// seconds to resume after a reconnect, and a stale view would make live members look dead. It
// judges only once this replica's own beats have gone through for DeadAfter, and forgets what it
// read while they failed: a replica that was cut off from NATS has not seen the others' beats
// meanwhile, and must give each a fresh DeadAfter. What it reads from its first beat on counts,
// so that a replica that has just started judges a member whose beat it saw stop dead DeadAfter
// after it first read its beat, not twice that; a member it never saw beating may be starting
// later, and gets DeadAfter from when this replica can judge. ok is false when it cannot judge
// now.
func (h *heartbeat) alive(ctx context.Context, now time.Time, members []string, seen map[string]beatSeen) (alive map[string]bool, ok bool) {
	dead := DeadAfter(h.cfg.FailoverAfter)
	since := h.beating.Load()
	if since == 0 {
		clear(seen)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, h.every)
	defer cancel()
	alive = make(map[string]bool, len(members))
	for _, m := range members {
		if m == h.cfg.Member {
			alive[m] = true
			continue
		}
		var rev uint64
		e, err := h.kv.Get(ctx, h.key(m))
		switch {
		case err == nil:
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, false // unreachable now: judge at the next tick
		}
		last, known := seen[m]
		if !known || last.rev != rev {
			last = beatSeen{rev: rev, since: now}
			seen[m] = last
		}
		from := last.since
		if rev == 0 {
			// Never seen beating: it may be starting later than this replica. Count from when
			// this replica could first judge, as for a member seen after an outage.
			if judging := time.Unix(0, since).Add(dead); judging.After(from) {
				from = judging
			}
		}
		alive[m] = now.Sub(from) < dead
	}
	for m := range seen {
		if !slices.Contains(members, m) {
			delete(seen, m)
		}
	}
	if now.Sub(time.Unix(0, since)) < dead {
		return nil, false // not beating for long enough to judge
	}
	return alive, true
}

// forget deletes member's key: this replica's when it leaves the group, so that the others do
// not wait for it, or a dead member's once it is dropped.
func (h *heartbeat) forget(ctx context.Context, member string) error {
	if h.kv == nil {
		return nil
	}
	return h.kv.Delete(ctx, h.key(member))
}
