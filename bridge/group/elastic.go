package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
)

// joinAttempts bounds the retries of a membership change that lost a race with another
// replica's (the group's config is updated with compare-and-set).
const joinAttempts = 5

// elasticMode is the state of a member of an elastic group: replicas join it when they start
// and leave it when they stop, and pcgroups re-creates every member's consumer with its new share
// of the partitions on each membership change.
type elasticMode struct {
	// The fields below are guarded by Member.mu.
	joined   bool                                 // this replica added itself to the group, so it must leave it
	members  *pcgroups.ElasticConsumerGroupConfig // the membership last seen
	stalePin string                               // the pin of a consumer pcgroups is replacing
	staleEnd time.Time                            // when to stop waiting for its replacement

	restart chan struct{} // the member's consumer is gone, pcgroups must start again

	gens *consumerGens // which of the member's consumer's generations delivered what
}

// consumerGens tells the generations of a member's consumer apart: pcgroups deletes it and
// creates it again under the same name on each membership change (see consumerJS). A
// generation is known by its creation time on the server; each delivery is tagged with the
// generation that delivered it, which its pin tells (see of).
type consumerGens struct {
	mu      sync.Mutex
	current int64            // the creation time (Unix ns) of the consumer now; 0 while unknown
	pins    map[string]int64 // the generation each pin was first seen under
}

// maxPins bounds the pins consumerGens remembers; those of the current generation are kept.
const maxPins = 64

// of returns the generation that delivered a message carrying pin: each generation has pins of
// its own, and the first message with a pin comes from the generation current then, since
// pcgroups stops pulling from a consumer before it deletes it. It returns 0 while no generation
// is known to be current (pcgroups is deleting or creating the consumer).
func (g *consumerGens) of(pin string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if pin == "" || g.current == 0 {
		return g.current
	}
	gen, ok := g.pins[pin]
	if !ok {
		if len(g.pins) >= maxPins {
			for p, pg := range g.pins {
				if pg != g.current {
					delete(g.pins, p)
				}
			}
		}
		gen = g.current
		g.pins[pin] = gen
	}
	return gen
}

// replaced reports whether gen is not the current generation: the consumer that delivered a
// message tagged gen has been deleted, or may be being deleted.
func (g *consumerGens) replaced(gen int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gen == 0 || gen != g.current
}

// changing says pcgroups is about to delete or create the consumer: no generation is current.
func (g *consumerGens) changing() {
	g.mu.Lock()
	g.current = 0
	g.mu.Unlock()
}

// created says the consumer created (or found, when it existed with the same config) is the
// current generation.
func (g *consumerGens) created(c jetstream.Consumer) {
	g.mu.Lock()
	g.current = c.CachedInfo().Created.UnixNano()
	g.mu.Unlock()
}

// consumerJS is the JetStream through which pcgroups manages this member's consumer. While
// pcgroups deletes or creates the consumer, no generation is current, so that the acks of what
// an old generation delivered are no longer sent (see msg.Ack): once the consumer is created
// again under the same name, the server would apply them to the new one, which did not deliver
// those messages. Such an ack is ignored, or, while no consumer filters the message's partition
// (its next owner waits for the old consumer's deletion to create its own), it removes the
// message from the work-queue stream. An event whose pieces were settled part by the old
// consumer and part by the new one reaches the partition's next owner incomplete: its track
// alone (replayed after the window's delay), or its workflows without their track (held until
// coalesce.orphanTimeout, then dead-lettered as missing_track although the event was sent).
// Not sent, the acks of an old generation are applied by it, in the order the bridge sent them
// (the track last), or not at all, and the next owner replays the rest of the event whole.
type consumerJS struct {
	jetstream.JetStream
	stream, member string
	gens           *consumerGens
}

func (j consumerJS) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if stream != j.stream || cfg.Name != j.member {
		return j.JetStream.CreateConsumer(ctx, stream, cfg)
	}
	j.gens.changing()
	c, err := j.JetStream.CreateConsumer(ctx, stream, cfg)
	if err == nil {
		j.gens.created(c)
	}
	return c, err
}

func (j consumerJS) DeleteConsumer(ctx context.Context, stream, consumer string) error {
	if stream == j.stream && consumer == j.member {
		j.gens.changing()
	}
	return j.JetStream.DeleteConsumer(ctx, stream, consumer)
}

// refuse reports whether the callback must hand m back: pcgroups is replacing this member's
// consumer after a membership change, and what the old one still delivers comes again from the
// new one, or, for a partition that moved, goes to its new owner. Holding it here would open a
// window that the pause between the two consumers could close before its last pieces come. It
// runs under Member.mu.
func (e *elasticMode) refuse(m jetstream.Msg) bool {
	if e.stalePin == "" {
		return false
	}
	if m.Headers().Get(pinHeader) == e.stalePin && time.Now().Before(e.staleEnd) {
		return true
	}
	e.stalePin = "" // the new consumer delivers
	return false
}

// createElastic creates the elastic group, or finds it.
func (s *Member) createElastic(ctx context.Context) error {
	p := s.cfg
	err := retryTransient(ctx, func() error {
		return layout.CreateElasticGroup(ctx, s.js, p.Stream, p.SubjectPrefix, p.Group, p.Count)
	})
	if err != nil {
		return fmt.Errorf("partitions: create elastic group %q on stream %s: %w", p.Group, p.Stream, err)
	}
	return nil
}

// join adds this replica to the elastic group's members, unless it is one already. The group's
// other members rebalance at once; pcgroups gives this replica its partitions as soon as their
// previous owners have let them go.
func (s *Member) join(ctx context.Context) error {
	p, stream := s.cfg, s.cfg.Stream
	for attempt := 1; ; attempt++ {
		gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, s.js, stream, p.Group)
		if err != nil {
			return fmt.Errorf("partitions: elastic group %q on stream %s: %w", p.Group, stream, err)
		}
		if gc.IsInMembership(p.Member) {
			// Already a member (restarted before the others dropped it): it leaves the group
			// when it stops, as if it had just joined.
			if len(gc.MemberMappings) == 0 {
				s.mu.Lock()
				s.elastic.joined = true
				s.mu.Unlock()
			}
			break
		}
		if len(gc.MemberMappings) > 0 {
			return fmt.Errorf("partitions.member: %q is not in the member mappings of elastic group %q, which an operator manages", p.Member, p.Group)
		}
		_, err = pcgroups.AddMembers(ctx, s.js, stream, p.Group, []string{p.Member})
		if err == nil {
			s.mu.Lock()
			s.elastic.joined = true
			s.mu.Unlock()
			break
		}
		if attempt == joinAttempts {
			return fmt.Errorf("partitions: join elastic group %q on stream %s as %q: %w", p.Group, stream, p.Member, err)
		}
		// Another replica changed the membership at the same moment; read it again.
		if err := casPause(ctx); err != nil {
			return err
		}
	}
	if gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, s.js, stream, p.Group); err == nil {
		s.logShare(len(pcgroups.ElasticGetPartitionFilters(*gc, p.Member)))
	}
	return nil
}

// watchMembership follows the elastic group's membership, as pcgroups does: on a change,
// pcgroups deletes and re-creates every member's consumer with its new share of the partitions,
// and this replica must let go of what it holds (see rebalanced). Its goroutine is counted in
// s.watching.
func (s *Member) watchMembership(ctx context.Context) error {
	p := s.cfg
	kv, err := s.js.KeyValue(ctx, ElasticBucket)
	if err != nil {
		return fmt.Errorf("partitions: elastic groups bucket: %w", err)
	}
	// The watch ends when ctx is cancelled: the client closes its updates channel.
	w, err := kv.Watch(ctx, p.Stream+"."+p.Group)
	if err != nil {
		return fmt.Errorf("partitions: watch elastic group %q: %w", p.Group, err)
	}
	s.watching.Add(1)
	go func() {
		defer s.watching.Done()
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // the end of the initial values, or a deletion, which stops pcgroups
			}
			var gc pcgroups.ElasticConsumerGroupConfig
			if err := json.Unmarshal(e.Value(), &gc); err != nil {
				continue // pcgroups stops on it and Consume reports the error
			}
			s.rebalanced(ctx, &gc, e.Created()) // dropped, it joins again from tend (see rejoin)
		}
	}()
	return nil
}

// rebalanced lets go of what this replica holds when the group's membership changes. pcgroups
// replaces this replica's consumer at once, and the new one (here or at a partition's new
// owner) delivers everything unacked again. Windows open here would otherwise be sent in part:
// a partition that moved gets its later pieces elsewhere, and even a partition that stayed can
// pause for up to AckWait when the new consumer cannot be created until another member has let
// go of its old share. So every open window is released (naked), and what the old consumer
// still delivers is refused until the new one delivers.
func (s *Member) rebalanced(ctx context.Context, gc *pcgroups.ElasticConsumerGroupConfig, changed time.Time) {
	p := s.cfg
	s.mu.Lock()
	prev := s.elastic.members
	s.elastic.members = gc
	// pcgroups compares the member lists the same way to decide whether to rebalance.
	if prev == nil || reflect.DeepEqual(prev.Members, gc.Members) && reflect.DeepEqual(prev.MemberMappings, gc.MemberMappings) {
		s.mu.Unlock()
		return
	}
	s.elastic.stalePin = s.pins[p.Member]
	s.elastic.staleEnd = time.Now().Add(2*p.AckWait + time.Second)
	s.mu.Unlock()
	share := len(pcgroups.ElasticGetPartitionFilters(*gc, p.Member))
	s.log.Info("the group's membership changed: partitions move", "members", gc.Members, "share", share)
	if gc.IsInMembership(p.Member) {
		s.logShare(share)
	}
	s.release(nil, true)
	s.sink.Rebound() // the new consumers deliver what is left in stream order

	// If pcgroups was quicker than this watch and the new consumer already delivers, its pin
	// is the one just taken as stale: undo that.
	rctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	cons, err := s.js.Consumer(rctx, ElasticStreamName(p.Stream, p.Group), p.Member)
	if err != nil || !cons.CachedInfo().Created.After(changed) {
		return
	}
	for _, pg := range cons.CachedInfo().PriorityGroups {
		s.mu.Lock()
		if pg.PinnedClientID != "" && pg.PinnedClientID == s.elastic.stalePin {
			s.elastic.stalePin = ""
		}
		s.mu.Unlock()
	}
}

// tendElastic is one tick of the tending goroutine in an elastic group: it reads the membership,
// checks this member's consumer, joins again if this replica was dropped, and drops the members
// found dead. missing is since when this member's consumer has been found missing; it returns
// the new value.
func (s *Member) tendElastic(ctx context.Context, now time.Time, seen map[string]beatSeen, missing time.Time) time.Time {
	rctx, cancel := context.WithTimeout(ctx, BeatEvery(s.cfg.FailoverAfter))
	gc, err := pcgroups.GetElasticConsumerGroupConfig(rctx, s.js, s.cfg.Stream, s.cfg.Group)
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
	if err == nil && s.beats.kv != nil {
		s.reap(ctx, now, gc, seen)
	}
	return missing
}

// rejoin adds this replica to the elastic group again when it finds itself dropped while it
// runs (the others took it for dead: it was cut off from NATS for longer than DeadAfter), once
// its beats go through again; dropped for missing beats, it would only be dropped again. The
// membership watch has it let go of what it held.
func (s *Member) rejoin(ctx context.Context, gc *pcgroups.ElasticConsumerGroupConfig) {
	p := s.cfg
	if gc.IsInMembership(p.Member) || len(gc.MemberMappings) > 0 || s.beats.failing() {
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
func (s *Member) checkConsumer(ctx context.Context, now time.Time, gc *pcgroups.ElasticConsumerGroupConfig, missing time.Time) time.Time {
	self := s.cfg.Member
	if len(pcgroups.ElasticGetPartitionFilters(*gc, self)) == 0 {
		return time.Time{} // not a member, or no partition: no consumer to have
	}
	_, err := s.js.Consumer(ctx, ElasticStreamName(s.cfg.Stream, s.cfg.Group), self)
	switch {
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return time.Time{} // there, or unreachable now
	case missing.IsZero():
		return now
	case now.Sub(missing) < 2*s.cfg.AckWait+BeatEvery(s.cfg.FailoverAfter):
		return missing
	}
	select {
	case s.elastic.restart <- struct{}{}:
	default: // one is pending already
	}
	return now
}

// reap drops the elastic group's members found dead (see heartbeat.alive), when this replica is
// the live member whose name sorts first, so that one replica does it. gc is the membership as
// just read.
func (s *Member) reap(ctx context.Context, now time.Time, gc *pcgroups.ElasticConsumerGroupConfig, seen map[string]beatSeen) {
	self := s.cfg.Member
	if !gc.IsInMembership(self) {
		return // dropped: the membership watch has it join again
	}
	alive, ok := s.beats.alive(ctx, now, gc.Members, seen)
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

// drop removes dead members from the group, after deleting their consumers: a dead member's
// consumer would keep its partitions' filters, on which the work-queue stream allows one
// consumer, and what it held goes to the next consumers once it is gone. It reports whether the
// members were removed.
func (s *Member) drop(ctx context.Context, dead []string) bool {
	p := s.cfg
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	log := s.log.With("group", p.Group, "dead", dead, "after", DeadAfter(p.FailoverAfter))
	for _, m := range dead {
		err := s.js.DeleteConsumer(ctx, ElasticStreamName(p.Stream, p.Group), m)
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
		if err := s.beats.forget(ctx, m); err != nil {
			log.Warn("could not delete a dead member's heartbeat", "member", m, "error", err)
		}
	}
	log.Warn("dropped members whose heartbeats stopped: their partitions move to the others")
	return true
}

// deleteMembers removes members from the elastic group, trying again when another replica
// changed the membership at the same moment (pcgroups updates it with compare-and-set).
func (s *Member) deleteMembers(ctx context.Context, members ...string) error {
	for attempt := 1; ; attempt++ {
		_, err := pcgroups.DeleteMembers(ctx, s.js, s.cfg.Stream, s.cfg.Group, members)
		if err == nil || attempt == joinAttempts || casPause(ctx) != nil {
			return err
		}
	}
}

// leaveElastic deletes this member's consumer and leaves the group, when this replica joined it.
func (s *Member) leaveElastic(ctx context.Context, log *slog.Logger) {
	p := s.cfg
	s.mu.Lock()
	joined := s.elastic.joined
	s.mu.Unlock()
	if !joined {
		return
	}
	// The consumer goes first: the others cannot create consumers over its partitions while it
	// exists, and this replica's stopped instance would not delete it.
	err := s.js.DeleteConsumer(ctx, ElasticStreamName(p.Stream, p.Group), p.Member)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		log.Warn("delete of the member's consumer failed; the server removes it after consumer.ackWait", "error", err)
	}
	if err := s.deleteMembers(ctx, p.Member); err != nil {
		log.Error("leaving the group failed: this member keeps its partitions until it is back or dropped", "error", err)
		return
	}
	log.Info("left the consumer group: its partitions move to the other members")
	if err := s.beats.forget(ctx, p.Member); err != nil {
		log.Warn("could not delete this member's heartbeat", "error", err)
	}
}
