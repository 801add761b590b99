package group

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
)

// staticMode is the state of a member of a static group: a fixed list of members, each with
// its share of the partitions; another instance of a member is its standby, which the server
// pins when the member's pin expires; the live member after a dead one covers for it.
type staticMode struct {
	// boundPinned: another instance pulled or held the member's pin when this one started. Set
	// by New.
	boundPinned bool
	// covering: the dead members whose instance this replica runs. Guarded by Member.mu.
	covering map[string]bool
	// covers: covering's instances. Owned by the tending goroutine.
	covers map[string]cover
}

// createStatic creates the static group, or finds it as the config describes it.
func (s *Member) createStatic(ctx context.Context) error {
	p := s.cfg
	// pcgroups compares member lists in order; sorted, every replica writes the same one.
	members := slices.Sorted(slices.Values(p.Members))
	err := retryTransient(ctx, func() error {
		return layout.CreateStaticGroup(ctx, s.js, p.Stream, p.Group, p.Count, members)
	})
	if err != nil {
		if have, gerr := pcgroups.GetStaticConsumerGroupConfig(ctx, s.js, p.Stream, p.Group); gerr == nil {
			return fmt.Errorf("partitions: static group %q on stream %s has %d partitions and members %v, but the config says %d and %v; "+
				"a static group's members are fixed (see docs/SCALING.md): %w", p.Group, p.Stream, have.MaxMembers, have.Members, p.Count, members, err)
		}
		return fmt.Errorf("partitions: create static group %q on stream %s: %w", p.Group, p.Stream, err)
	}
	return nil
}

// staticFilters is a static member's share of the partitions, as filter subjects "<p>.>".
func (s *Member) staticFilters(member string) []string {
	return pcgroups.GeneratePartitionFilters(slices.Sorted(slices.Values(s.cfg.Members)), uint(s.cfg.Count), nil, member, ">")
}

// pinned holds the windows when this replica has just been pinned to a static member's consumer
// that another instance held: a standby taking over, the member covering for a dead one, or the
// member itself getting its partitions back. The previous holder may have died holding pieces of
// events, which come back on their ack timers (which its in-progress pings pushed back), after
// the pieces published since; so windows are held for AckWait and a quarter, as at a start after
// a crash. A member's first pin needs none when nobody held the pin at its start: the hold at
// start covers what its consumer showed pending then. It runs on the callback, under s.mu.
func (s *Member) pinned(member string, first bool) {
	ackWait := s.cfg.AckWait
	if first && !s.static.boundPinned {
		return
	}
	until := time.Now().Add(ackWait + ackWait/4)
	s.log.Info("pinned to a member's consumer that another instance held", "member", member)
	s.sink.HoldUntil(until)
}

// cover serves the partitions of the static group's dead members (see heartbeat.alive) that
// fall to this replica, and gives back those whose member is alive again. A static group's
// members are fixed, so a dead member's partitions cannot move to another member; but a second
// instance of a member is its standby, which the server pins once the member's pin expires. So
// the live member that follows a dead one in the sorted list of members (skipping dead ones)
// runs an instance of it until its beats come back.
func (s *Member) cover(ctx context.Context, now time.Time, seen map[string]beatSeen) {
	members := slices.Sorted(slices.Values(s.cfg.Members))
	alive, ok := s.beats.alive(ctx, now, members, seen)
	if !ok {
		return
	}
	self := s.cfg.Member
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
	for m := range s.static.covers {
		if alive[m] {
			s.giveBack(ctx, m)
		}
	}
	for m, mine := range want {
		if _, ok := s.static.covers[m]; mine && !ok {
			s.takeOver(ctx, m)
		}
	}
}

// takeOver starts an instance of the dead member m, which the server pins once m's pin expires
// (its TTL is AckWait from m's last pull). The pieces m held come back on their ack timers, in no
// order with the ones published since: the windows are held from the pin on (see pinned).
func (s *Member) takeOver(ctx context.Context, m string) {
	p := s.cfg
	log := s.log.With("group", p.Group, "dead", m)
	s.mu.Lock()
	s.static.covering[m] = true
	s.mu.Unlock()
	// pcgroups binds the instance's config watcher to its context and does not stop it in Stop:
	// each instance gets a context of its own, cancelled when it ends.
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cc, err := pcgroups.StaticConsume(ictx, s.js, p.Stream, p.Group, m, s.callback(m), s.cons)
	if err != nil {
		cancel()
		log.Warn("could not serve a dead member's partitions; will try again", "error", err)
		s.mu.Lock()
		s.static.covering[m] = false
		s.mu.Unlock()
		return
	}
	s.static.covers[m] = cover{cc: cc, cancel: cancel}
	log.Warn("a member's heartbeats stopped: serving its partitions until it is back", "after", DeadAfter(p.AckWait))
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
func (s *Member) giveBack(ctx context.Context, m string) {
	s.mu.Lock()
	s.static.covering[m] = false // what the instance still delivers is handed back
	s.mu.Unlock()
	c := s.static.covers[m]
	delete(s.static.covers, m)
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
		s.release(func(key string) bool { return parts[PartitionOf(key, s.cfg.Count)] }, true)
		s.stepDown(ctx, m)
	}
	s.log.Info("a member's heartbeats are back: gave its partitions back", "group", s.cfg.Group, "member", m)
}

// stopCovers stops the instances this replica runs for dead members, when it stops.
func (s *Member) stopCovers() {
	for m, c := range s.static.covers {
		s.mu.Lock()
		s.static.covering[m] = false
		s.mu.Unlock()
		_ = c.stop() // stopping: how it ended does not matter
		delete(s.static.covers, m)
	}
}

// leaveStatic steps down from this member's pin, and from those of dead members it served until
// it stopped.
func (s *Member) leaveStatic(ctx context.Context) {
	s.mu.Lock()
	members := make([]string, 0, len(s.pins))
	for m := range s.pins {
		members = append(members, m)
	}
	s.mu.Unlock()
	for _, m := range members {
		s.stepDown(ctx, m)
	}
}

// stepDown unpins this replica from static member m's consumer, if it holds its pin, so that
// another instance of m (a standby, m itself back, or the member covering for it) is pinned now
// rather than when the pin's TTL expires.
func (s *Member) stepDown(ctx context.Context, m string) {
	p := s.cfg
	s.mu.Lock()
	pin := s.pins[m]
	s.mu.Unlock()
	if pin == "" {
		return // never received a message: not the pinned instance
	}
	defer func() { // once done, or found not pinned; kept for leave if the step-down failed
		s.mu.Lock()
		if s.pins[m] == pin {
			delete(s.pins, m)
		}
		s.mu.Unlock()
	}()
	log := s.log.With("group", p.Group, "member", m)
	cons, err := s.js.Consumer(ctx, p.Stream, StaticConsumerName(p.Group, m))
	if err != nil {
		log.Warn("could not read the member's consumer to step down", "error", err)
		pin = "" // keep it for leave
		return
	}
	for _, pg := range cons.CachedInfo().PriorityGroups {
		if pg.PinnedClientID != pin {
			continue
		}
		if err := pcgroups.StaticMemberStepDown(ctx, s.js, p.Stream, p.Group, m); err != nil {
			log.Warn("step down failed; another instance takes over when the pin expires", "error", err)
			pin = "" // keep it for leave
			return
		}
		log.Info("stepped down: another instance of this member may take over")
	}
}
