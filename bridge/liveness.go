package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
)

// Dead members of a group.
//
// pcgroups never changes a group's membership by itself: a replica that dies without leaving
// stays a member, and its partitions wait for it. So the replicas beat: each one puts its key in
// livenessBucket every beatEvery, and reads the others' (see readBeats). What happens to a
// member whose beat has not moved for deadAfter depends on the mode:
//
//   - elastic: the live member whose name sorts first drops it (see reap): its consumer is
//     deleted (the messages it held stay in the work-queue stream, and the member's partitions'
//     next consumers deliver them at once), then it is removed from the group, which moves its
//     partitions to the others as any membership change does. A replica that finds itself
//     dropped while it runs joins the group again;
//   - static: the members are fixed, so the live member after it in the sorted list runs an
//     instance of it, its standby, until its beats come back (see cover).
//
// Every replica judges by its own clock when it saw each beat move, so clocks need not agree.

// livenessBucket is the key-value bucket where the replicas of consumer groups beat. It keeps one
// value per key: a beat is worth nothing once the next one is due. It is on file storage, so
// that a lone server's restart does not lose it.
const livenessBucket = layout.LivenessBucket

// beatEvery is how often a replica beats: a quarter of AckWait, between 250ms and 5s.
func beatEvery(ackWait time.Duration) time.Duration {
	return min(max(ackWait/4, 250*time.Millisecond), 5*time.Second)
}

// deadAfter is how long a member may go without a beat before it is dropped: AckWait, the time
// the server gives a consumer to settle a message, and never fewer than four beats.
func deadAfter(ackWait time.Duration) time.Duration {
	return max(ackWait, 4*beatEvery(ackWait))
}

// openLiveness returns the liveness bucket, creating it when the bridge manages the streams.
// When the operator manages them and the bucket does not exist, it returns nil: dead members
// are then not detected, and a warning says so.
func (b *Bridge) openLiveness(ctx context.Context) (jetstream.KeyValue, error) {
	if !b.cfg.Stream.Create {
		kv, err := b.js.KeyValue(ctx, livenessBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			b.log.Warn("the key-value bucket for the group's heartbeats does not exist, so dead members are not detected: "+
				"create it (see docs/SCALING.md) or let the bridge manage the streams (stream.create)", "bucket", livenessBucket)
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("partitions: liveness bucket %s: %w", livenessBucket, err)
		}
		return kv, nil
	}
	kv, err := createLiveness(ctx, b.js, b.cfg)
	if err != nil {
		// A bucket made with other settings (an earlier version kept it in memory) serves as
		// well: use it as it is.
		if have, gerr := b.js.KeyValue(ctx, livenessBucket); gerr == nil {
			b.log.Warn("the heartbeat bucket exists with other settings; using it as it is", "bucket", livenessBucket, "error", err)
			return have, nil
		}
		return nil, fmt.Errorf("partitions: create liveness bucket %s: %w", livenessBucket, err)
	}
	return kv, nil
}

func createLiveness(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      livenessBucket,
		Description: "notifizz-bridge: heartbeats of the replicas of consumer groups",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Stream.Replicas,
	})
}

// livenessKey is the key member beats under: <stream>.<group>.<member>.
func (s *partitionedSource) livenessKey(member string) string {
	return layout.LivenessKey(s.cfg.Stream.Name, s.cfg.Partitions.Group, member)
}

// beat puts this replica's key once, and on success sets s.beating if it was not set. When the
// bucket has gone (a server that lost it), it creates it again if the bridge manages the streams.
func (s *partitionedSource) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, beatEvery(s.cfg.Consumer.AckWait))
	defer cancel()
	put := func() error {
		_, err := s.liveness.Put(ctx, s.livenessKey(s.cfg.Partitions.Member), []byte(s.since))
		return err
	}
	err := put()
	if (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrBucketNotFound)) && s.cfg.Stream.Create {
		if _, cerr := createLiveness(ctx, s.js, s.cfg); cerr == nil {
			s.log.Warn("the heartbeat bucket was gone: created it again", "bucket", livenessBucket)
			err = put()
		}
	}
	if err != nil {
		return err
	}
	s.beating.CompareAndSwap(0, time.Now().UnixNano())
	return nil
}

// tendGroup starts the goroutines, counted in s.watching, that look after this replica's place
// in the group until ctx is done: one beats (when the liveness bucket exists), the other, in an
// elastic group, checks this member's consumer and drops the members found dead, and in a static
// group serves the partitions of dead members that fall to this replica. They are apart so that
// a slow drop never delays this replica's own beat.
func (s *partitionedSource) tendGroup(ctx context.Context) {
	every := beatEvery(s.cfg.Consumer.AckWait)
	if s.liveness != nil {
		s.startBeats(ctx)
	}
	s.watching.Add(1)
	go func() {
		defer s.watching.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		seen := map[string]beatSeen{}
		var missing time.Time // since when this member's consumer has been found missing
		for {
			select {
			case <-ctx.Done():
				s.stopCovers()
				return
			case now := <-tick.C:
				if s.liveness == nil {
					s.findLiveness(ctx)
				}
				if s.cfg.Partitions.Mode == PartitionStatic {
					if s.liveness != nil {
						s.cover(ctx, now, seen)
					}
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, every)
				gc, err := pcgroups.GetElasticConsumerGroupConfig(rctx, s.js, s.cfg.Stream.Name, s.cfg.Partitions.Group)
				if err != nil {
					// Unreachable now: forget, and judge afresh once NATS answers again.
					clear(seen)
					missing = time.Time{}
				} else {
					missing = s.checkConsumer(rctx, now, gc, missing)
				}
				cancel()
				if err == nil {
					s.rejoin(ctx, gc)
				}
				if err == nil && s.liveness != nil {
					s.reap(ctx, now, gc, seen)
				}
			}
		}
	}()
}

// findLiveness looks for the heartbeat bucket that was missing when this replica started (the
// operator manages the streams and had not created it), and starts beating once it exists. It
// runs on tendGroup's goroutine, which alone reads s.liveness until Consume returns.
func (s *partitionedSource) findLiveness(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, beatEvery(s.cfg.Consumer.AckWait))
	defer cancel()
	kv, err := s.js.KeyValue(rctx, livenessBucket)
	if err != nil {
		return
	}
	s.liveness = kv
	s.log.Info("the heartbeat bucket exists now: dead members are detected", "bucket", livenessBucket)
	s.startBeats(ctx)
}

// startBeats starts the goroutine that beats, counted in s.beats. The beats go on until leave,
// after this replica has settled what it held: a replica that is shutting down is not dead.
func (s *partitionedSource) startBeats(ctx context.Context) {
	every := beatEvery(s.cfg.Consumer.AckWait)
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBeats = stop
	s.beats.Add(1)
	go func() {
		defer s.beats.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		missed := 0
		for {
			select {
			case <-bctx.Done():
				return
			case <-tick.C:
			}
			err := s.beat(bctx)
			switch {
			case err == nil:
				if missed >= 2 {
					s.log.Info("heartbeats go through again")
				}
				missed = 0
			case bctx.Err() == nil:
				// One failure may be a slow server; two in a row mean this replica has not
				// been seen for a while, and must not judge the others until its beats have
				// gone through again for deadAfter.
				if missed++; missed == 2 {
					s.beating.Store(0)
					s.log.Warn("heartbeats are failing: the others take this replica for dead when they fail for "+
						deadAfter(s.cfg.Consumer.AckWait).String(), "error", err)
				}
			}
		}
	}()
}

// rejoin adds this replica to the elastic group again when it finds itself dropped while it
// runs (the others took it for dead: it was cut off from NATS for longer than deadAfter), once
// its beats go through again; dropped for missing beats, it would only be dropped again. The
// membership watch has it let go of what it held.
func (s *partitionedSource) rejoin(ctx context.Context, gc *pcgroups.ElasticConsumerGroupConfig) {
	p := s.cfg.Partitions
	if gc.IsInMembership(p.Member) || len(gc.MemberMappings) > 0 || s.liveness != nil && s.beating.Load() == 0 {
		return
	}
	s.log.Warn("this replica was dropped from the group: joining again", "group", p.Group, "member", p.Member)
	if err := s.join(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("joining the group again failed; trying again", "error", err)
	}
}

// checkConsumer asks Consume to start pcgroups again when this member's consumer has been
// missing for long. pcgroups creates the consumer with an inactivity threshold of AckWait, so the
// server deletes it when the member cannot pull for that long (an outage, a network partition),
// and pcgroups creates a consumer again only on a membership change. A consumer can also be
// missing for a while during a rebalance, where pcgroups retries after AckWait: the restart comes
// only after twice that. It returns since when the consumer has been missing (zero: it is not).
func (s *partitionedSource) checkConsumer(ctx context.Context, now time.Time, gc *pcgroups.ElasticConsumerGroupConfig, missing time.Time) time.Time {
	self := s.cfg.Partitions.Member
	if len(pcgroups.ElasticGetPartitionFilters(*gc, self)) == 0 {
		return time.Time{} // not a member, or no partition: no consumer to have
	}
	_, err := s.js.Consumer(ctx, elasticStreamName(s.cfg.Stream.Name, s.cfg.Partitions.Group), self)
	switch {
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return time.Time{} // there, or unreachable now
	case missing.IsZero():
		return now
	case now.Sub(missing) < 2*s.cfg.Consumer.AckWait+beatEvery(s.cfg.Consumer.AckWait):
		return missing
	}
	select {
	case s.restart <- struct{}{}:
	default: // one is pending already
	}
	return now
}

// beatSeen is what a replica last read of a member's beat: the revision of its key (0 when it
// had none) and when, by this replica's clock, that revision was first read.
type beatSeen struct {
	rev   uint64
	since time.Time
}

// readBeats reads the beats of members and returns the ones whose beat has moved within
// deadAfter, self included. It reads them rather than watching them, because a watch can take
// several seconds to resume after a reconnect, and a stale view would make live members look
// dead. It judges only once this replica's own beats have gone through for deadAfter, and forgets
// what it read before: a replica that was cut off from NATS (or has just started) has not seen
// the others' beats meanwhile, and must give each a fresh deadAfter. ok is false when it cannot
// judge now.
func (s *partitionedSource) readBeats(ctx context.Context, now time.Time, members []string, seen map[string]beatSeen) (alive map[string]bool, ok bool) {
	dead := deadAfter(s.cfg.Consumer.AckWait)
	if since := s.beating.Load(); since == 0 || now.Sub(time.Unix(0, since)) < dead {
		clear(seen)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, beatEvery(s.cfg.Consumer.AckWait))
	defer cancel()
	alive = make(map[string]bool, len(members))
	for _, m := range members {
		if m == s.cfg.Partitions.Member {
			alive[m] = true
			continue
		}
		var rev uint64
		e, err := s.liveness.Get(ctx, s.livenessKey(m))
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
		alive[m] = now.Sub(last.since) < dead
	}
	for m := range seen {
		if !slices.Contains(members, m) {
			delete(seen, m)
		}
	}
	return alive, true
}

// reap drops the elastic group's members found dead (see readBeats), when this replica is the
// live member whose name sorts first, so that one replica does it. gc is the membership as just
// read.
func (s *partitionedSource) reap(ctx context.Context, now time.Time, gc *pcgroups.ElasticConsumerGroupConfig, seen map[string]beatSeen) {
	self := s.cfg.Partitions.Member
	if !gc.IsInMembership(self) {
		return // dropped: the membership watch has it join again
	}
	alive, ok := s.readBeats(ctx, now, gc.Members, seen)
	if !ok {
		return
	}
	var live, gone []string
	for _, m := range gc.Members {
		if alive[m] {
			live = append(live, m)
		} else {
			gone = append(gone, m)
		}
	}
	if len(gone) == 0 || slices.Min(live) != self {
		return
	}
	if s.drop(ctx, gone) {
		for _, m := range gone {
			delete(seen, m)
		}
	}
}

// cover serves the partitions of the static group's dead members (see readBeats) that fall to
// this replica, and gives back those whose member is alive again. A static group's members are
// fixed, so a dead member's partitions cannot move to another member; but a second instance of
// a member is its standby, which the server pins once the member's pin expires. So the live
// member that follows a dead one in the sorted list of members (skipping dead ones) runs an
// instance of it until its beats come back.
func (s *partitionedSource) cover(ctx context.Context, now time.Time, seen map[string]beatSeen) {
	members := slices.Sorted(slices.Values(s.cfg.Partitions.Members))
	alive, ok := s.readBeats(ctx, now, members, seen)
	if !ok {
		return
	}
	self := s.cfg.Partitions.Member
	want := map[string]bool{}
	for i, m := range members {
		if alive[m] {
			continue
		}
		for j := 1; j < len(members); j++ {
			if next := members[(i+j)%len(members)]; alive[next] {
				want[m] = next == self
				break
			}
		}
	}
	// A cover ends only when its member is back: handing it to another member that has just
	// come back would leave the partition unserved until that one can judge.
	for m := range s.covers {
		if alive[m] {
			s.giveBack(ctx, m)
		}
	}
	for m, mine := range want {
		if _, ok := s.covers[m]; mine && !ok {
			s.takeOver(ctx, m)
		}
	}
}

// takeOver starts an instance of the dead member m, which the server pins once m's pin expires
// (its TTL is AckWait from m's last pull). The pieces m held come back on their ack timers, in no
// order with the ones published since: the windows are held from the pin on (see pinned).
func (s *partitionedSource) takeOver(ctx context.Context, m string) {
	p := s.cfg.Partitions
	log := s.log.With("group", p.Group, "dead", m)
	s.mu.Lock()
	s.covering[m] = true
	s.mu.Unlock()
	ackWait := s.cfg.Consumer.AckWait
	// pcgroups binds the instance's config watcher to its context and does not stop it in Stop:
	// each instance gets a context of its own, cancelled when it ends.
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cc, err := pcgroups.StaticConsume(ictx, s.js, s.cfg.Stream.Name, p.Group, m, s.callback(m), s.cons)
	if err != nil {
		cancel()
		log.Warn("could not serve a dead member's partitions; will try again", "error", err)
		s.mu.Lock()
		s.covering[m] = false
		s.mu.Unlock()
		return
	}
	s.covers[m] = cover{cc: cc, cancel: cancel}
	log.Warn("a member's heartbeats stopped: serving its partitions until it is back", "after", deadAfter(ackWait))
}

// cover is an instance this replica runs for a dead member of a static group.
type cover struct {
	cc     pcgroups.ConsumerGroupConsumeContext
	cancel context.CancelFunc
}

// stop stops the instance and its config watcher.
func (c cover) stop() error {
	c.cc.Stop()
	err := <-c.cc.Done()
	c.cancel()
	return err
}

// giveBack stops serving member m's partitions: it stops the instance, releases (naks) what this
// replica holds, so that m builds its windows whole from the redeliveries, and steps down from
// m's pin, so that m's own instance is pinned at once.
func (s *partitionedSource) giveBack(ctx context.Context, m string) {
	p := s.cfg.Partitions
	s.mu.Lock()
	s.covering[m] = false // what the instance still delivers is handed back
	s.mu.Unlock()
	c := s.covers[m]
	delete(s.covers, m)
	if err := c.stop(); err != nil {
		s.log.Warn("instance of a member stopped with an error", "member", m, "error", err)
	}
	s.mu.Lock()
	_, served := s.pins[m]
	s.mu.Unlock()
	if served {
		// Only m's windows: this replica's own partitions stay where they are.
		parts := map[int]bool{}
		for _, f := range s.staticFilters(m) {
			if n, err := strconv.Atoi(strings.TrimSuffix(f, ".>")); err == nil {
				parts[n] = true
			}
		}
		s.releaseKeys(true, func(key string) bool { return parts[partitionOf(key, s.count)] })
		s.stepDown(ctx, m)
	}
	s.log.Info("a member's heartbeats are back: gave its partitions back", "group", p.Group, "member", m)
}

// stopCovers stops the instances this replica runs for dead members, when it stops.
func (s *partitionedSource) stopCovers() {
	for m, c := range s.covers {
		s.mu.Lock()
		s.covering[m] = false
		s.mu.Unlock()
		_ = c.stop() // stopping: how it ended does not matter
		delete(s.covers, m)
	}
}

// drop removes dead members from the group, after deleting their consumers: a dead member's
// consumer would keep its partitions' filters, on which the work-queue stream allows one
// consumer, and what it held goes to the next consumers once it is gone. It reports whether the
// members were removed.
func (s *partitionedSource) drop(ctx context.Context, dead []string) bool {
	p, stream := s.cfg.Partitions, s.cfg.Stream.Name
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	log := s.log.With("group", p.Group, "dead", dead, "after", deadAfter(s.cfg.Consumer.AckWait))
	for _, m := range dead {
		err := s.js.DeleteConsumer(ctx, elasticStreamName(stream, p.Group), m)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			log.Warn("could not delete a dead member's consumer; will try again", "member", m, "error", err)
			return false
		}
	}
	if err := s.deleteMembers(ctx, dead...); err != nil {
		log.Warn("could not drop dead members from the group; will try again", "error", err)
		return false
	}
	for _, m := range dead {
		if err := s.liveness.Delete(ctx, s.livenessKey(m)); err != nil {
			log.Warn("could not delete a dead member's heartbeat", "member", m, "error", err)
		}
	}
	log.Warn("dropped members whose heartbeats stopped: their partitions move to the others")
	return true
}

// forget deletes this replica's key when it leaves the group, so that the others do not wait
// for it.
func (s *partitionedSource) forget(ctx context.Context) error {
	if s.liveness == nil {
		return nil
	}
	return s.liveness.Delete(ctx, s.livenessKey(s.cfg.Partitions.Member))
}

// endBeats stops the beats, when the replica has left.
func (s *partitionedSource) endBeats() {
	if s.stopBeats != nil {
		s.stopBeats()
		s.beats.Wait()
	}
}
