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
	"github.com/notifizz-bridge/notifizz-bridge/internal/heldback"
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
	// lastBeat: when, by this replica's clock, the beat of each member in covering was last
	// seen to move; zero when that member held nothing as this replica took over. Kept until
	// this replica's instance is first pinned (see pinned). Guarded by Member.mu.
	lastBeat map[string]time.Time
	// covers: covering's instances. Owned by the tending goroutine.
	covers map[string]cover
	// holds: for each member whose consumer this replica was pinned to after another instance
	// held it, when its hold ends; the bridge holds its windows until the last of them. Guarded
	// by Member.mu.
	holds map[string]time.Time
	// awaited: for each dead member this replica covers, the messages its consumer had delivered
	// and not acked when it was unpinned; once they are all back, its hold ends. Nothing else
	// pulled from that consumer then, so nothing more was delivered to the dead member: every
	// one of them comes back to the cover on its ack timer. Guarded by Member.mu.
	awaited map[string]*heldback.Awaited
}

// newStaticMode is the state of a static member that has taken nothing over yet.
func newStaticMode() *staticMode {
	return &staticMode{
		covering: map[string]bool{}, lastBeat: map[string]time.Time{}, covers: map[string]cover{},
		holds: map[string]time.Time{}, awaited: map[string]*heldback.Awaited{},
	}
}

// holdEnd is when the last hold in holds ends after now (the zero time when none does); holds
// that have ended are dropped.
func (st *staticMode) holdEnd(now time.Time) time.Time {
	var end time.Time
	for m, t := range st.holds {
		if !t.After(now) {
			delete(st.holds, m)
			continue
		}
		if t.After(end) {
			end = t
		}
	}
	return end
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
// a crash. A member's first pin needs no such hold when nobody held the pin at its start: the
// hold at start covers what its consumer showed pending then; only the windows holding a
// redelivered piece wait, in case a member covered for it while it was starting (a fresh
// cluster, a slow start) and handed the windows back. For a dead member it covers, the hold
// ends when what that member held is back (see cameBack), or at the latest its beats allow (see
// coverHold). It runs on the callback, under s.mu.
func (s *Member) pinned(member string, first bool) {
	ackWait := s.cfg.AckWait
	now := time.Now()
	if first && !s.static.boundPinned {
		// Nobody held the pin when this replica started; but a member covering for it, when
		// it was slow to start, may have held it since and handed its windows back (naks that
		// reach the server in no order with the messages published since). A window holding a
		// redelivered piece waits until they can all be back; first deliveries flow on.
		s.sink.HoldRedelivered(now.Add(ackWait + ackWait/4))
		return
	}
	until := now.Add(ackWait + ackWait/4)
	takeover := false
	if last, ok := s.static.lastBeat[member]; ok && member != s.cfg.Member {
		takeover = true
		// A zero time: the dead member held nothing when this replica took over (see takeOver).
		if back := s.coverHold(last); last.IsZero() || back.Before(until) {
			until = back
		}
		// Only for the pin taken from the dead member: a later move of the pin (to a standby
		// and back) is held as any other.
		delete(s.static.lastBeat, member)
	}
	if !takeover || !until.After(now) {
		// The count is of what the dead member held when this replica took over: a later pin
		// (after a standby held it) may follow messages it does not count.
		delete(s.static.awaited, member)
	}
	s.log.Info("pinned to a member's consumer that another instance held", "member", member, "hold", max(until.Sub(now), 0).Round(time.Millisecond))
	if until.After(now) {
		s.static.holds[member] = until
		s.sink.HoldUntil(s.static.holdEnd(now))
	}
}

// cameBack counts a message delivered by the instance of dead member m among those m held when
// this replica took over (see takeOver), and ends m's hold once the last of them is back, when
// the server redelivers them rather than at the latest it could. It runs on the callback, under
// s.mu, after the message was delivered to the sink, so that the windows it belongs to have it
// when the hold ends.
func (s *Member) cameBack(m string, seq uint64) {
	a := s.static.awaited[m]
	if !a.Back(seq) {
		return
	}
	delete(s.static.awaited, m)
	if _, held := s.static.holds[m]; !held {
		return
	}
	delete(s.static.holds, m)
	s.log.Info("the messages a dead member held are back: its hold ends", "member", m)
	s.sink.HoldUntil(s.static.holdEnd(time.Now()))
}

// coverHold is when every message a dead member held has come back, for a member whose beat was
// last seen to move at last: it died before its next beat; the server delivered it messages
// until its last pull request expired (pcgroups pulls with an expiry of half of AckWait, at
// least 1s), or until its connection closed; each of them comes back AckWait after its delivery
// (a dead member sends no in-progress), and a quarter of AckWait is left for the server's
// redelivery timer and the trip. With failoverAfter and AckWait at their 5s defaults that is
// 10s after the last beat, while the pin moves only after failoverAfter, and the pin's time plus
// 1.25 × AckWait is at least 11.25s after it; pinned takes the earlier of the two.
func (s *Member) coverHold(last time.Time) time.Time {
	ackWait := s.cfg.AckWait
	return last.Add(BeatEvery(s.cfg.FailoverAfter) + max(ackWait/2, time.Second) + ackWait + ackWait/4)
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
			s.takeOver(ctx, m, seen[m].since)
		}
	}
}

// takeOver unpins the dead member m's consumer and starts an instance of m, which the server
// pins at its first pull rather than when m's pin expires (its TTL is AckWait from m's last
// pull). The pieces m held come back on their ack timers, in no order with the ones published
// since: the windows are held from the pin on (see pinned).
func (s *Member) takeOver(ctx context.Context, m string, lastBeat time.Time) {
	p := s.cfg
	log := s.log.With("group", p.Group, "dead", m)
	// The dead member's pin would expire only AckWait after its last pull. When nobody pulls
	// from its consumer (a dead process's pull requests go with its connection), unpin it now,
	// so that the server pins this instance at its first pull, DeadAfter after the death
	// whatever AckWait is. A member that still pulls is alive or cut off: its pin is left to
	// expire, as it does only if the member stops pulling. When, besides, the consumer shows
	// nothing delivered and unacked, nothing of m's can come back on an ack timer, and no hold
	// is needed (see pinned).
	uctx, ucancel := context.WithTimeout(ctx, leaveTimeout)
	defer ucancel()
	var awaited *heldback.Awaited
	quiet := false
	if c, err := s.js.Consumer(uctx, p.Stream, StaticConsumerName(p.Group, m)); err == nil && c.CachedInfo().NumWaiting == 0 {
		info := c.CachedInfo()
		if err := pcgroups.StaticMemberStepDown(uctx, s.js, p.Stream, p.Group, m); err != nil {
			log.Info("could not unpin the dead member's consumer; its pin moves here when it expires", "error", err)
		} else if info.NumAckPending == 0 {
			quiet = true
		} else if again, err := c.Info(uctx); err == nil && again.Delivered.Stream == info.Delivered.Stream {
			// What it held comes back here: once all of it has, the hold can end (see cameBack).
			// Only when nothing was delivered between the reading and the unpin (a member taken
			// for dead that still pulls): otherwise, or when the consumer cannot be read again,
			// what it holds is not known, and the hold runs to its bound.
			awaited = heldback.Await(info.NumAckPending, info.Delivered.Stream)
		}
	}
	s.mu.Lock()
	s.static.covering[m] = true
	if quiet {
		lastBeat = time.Time{} // it held nothing: no hold (see pinned)
	}
	s.static.lastBeat[m] = lastBeat
	if awaited != nil {
		s.static.awaited[m] = awaited
	} else {
		delete(s.static.awaited, m)
	}
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
		delete(s.static.lastBeat, m)
		delete(s.static.awaited, m)
		s.mu.Unlock()
		return
	}
	s.static.covers[m] = cover{cc: cc, cancel: cancel}
	log.Warn("a member's heartbeats stopped: serving its partitions until it is back", "after", DeadAfter(p.FailoverAfter))
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
	delete(s.static.lastBeat, m)
	delete(s.static.awaited, m)
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
	// The hold was for m's windows, which are handed back: the others need not wait for it.
	s.mu.Lock()
	if _, held := s.static.holds[m]; held {
		delete(s.static.holds, m)
		s.sink.HoldUntil(s.static.holdEnd(time.Now()))
	}
	s.mu.Unlock()
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
