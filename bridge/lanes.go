package bridge

import (
	"slices"
	"time"
)

// Under notifizz.api: v2 nothing is coalesced: every message is one call of its own, made as
// soon as it arrives. The calls of one key are made one at a time, in stream order, so that a
// subscribe and the unsubscribe after it never overtake each other: each key has a lane, which
// queues a call only once the one before it has been settled.
//
// A call that failed for now is naked, and the server delivers it again after its delay: its
// lane waits for it rather than let the calls behind it go first, up to the nak's delay and an
// ack wait more (laneWaitGrace): a redelivery that does not come by then went elsewhere (the
// key's partition moved) or comes on its ack timer, and the lane goes on.
//
// While a recovery hold that concerns every window is on (see recovery.go: a predecessor died
// holding messages, or this replica took over a consumer another instance held), no lane starts
// a call: the earlier calls of any key may still be on their way back on their ack timers, and
// would come after the later ones. The lanes go on, in stream order, once the hold ends, early
// (its count of returning messages is complete) or on its time.

// lane is the order of one key's calls.
type lane struct {
	key     string
	busy    bool       // a call of this key is queued or running
	pending []*heldMsg // the calls waiting for it, in stream order
	waitFor uint64     // the stream sequence of a naked call the lane waits for; 0 for none
	waitGen uint64     // tells the timer of the current wait from those of earlier ones
}

// addCall puts a held call message in its key's lane, in stream order, and starts the lane's
// next call when it is free.
func (c *coordinator) addCall(h *heldMsg) {
	l := c.lanes[h.key]
	if l == nil {
		l = &lane{key: h.key}
		c.lanes[h.key] = l
	}
	if l.waitFor == h.seq {
		l.waitFor = 0 // the naked call is back
	}
	i, _ := slices.BinarySearchFunc(l.pending, h.seq, func(p *heldMsg, seq uint64) int { return cmpSeq(p.seq, seq) })
	l.pending = slices.Insert(l.pending, i, h)
	c.advance(l)
}

// advance queues the lane's next call when none of its key is queued or running and it waits
// for no redelivery, and forgets the lane once it is idle.
func (c *coordinator) advance(l *lane) {
	if l.busy || l.waitFor != 0 {
		return
	}
	if len(l.pending) == 0 {
		delete(c.lanes, l.key)
		return
	}
	if c.lanesHeld() {
		return
	}
	h := l.pending[0]
	l.pending[0] = nil
	l.pending = l.pending[1:]
	l.busy = true
	c.enqueue(&job{kind: jobCall, members: []*heldMsg{h}})
}

// lanesHeld reports whether a recovery hold keeps the lanes from starting calls, and sees that
// a timer advances them when it ends on its time (resume advances them when it ends early).
func (c *coordinator) lanesHeld() bool {
	now := c.clock.Now()
	if !c.rec.active(now) {
		return false
	}
	end := c.rec.holding(now)
	if end.IsZero() {
		return false // a reconnect's hold: it concerns redelivered windows only
	}
	if !c.laneHoldAt.Equal(end) {
		c.laneHoldAt = end
		c.timers.add(timerEntry{at: end, kind: timerLaneHold})
	}
	return true
}

// advanceLanes starts the next call of every free lane, once a hold has ended.
func (c *coordinator) advanceLanes() {
	for _, l := range c.lanes {
		c.advance(l)
	}
}

// callDone frees the lane of a call a worker has settled. When the call was naked, the lane
// waits for its redelivery (see the comment at the top of the file).
func (c *coordinator) callDone(j *job, now time.Time) {
	h := j.members[0]
	l := c.lanes[h.key]
	if l == nil {
		return // released (releaseWindows) while the call ran
	}
	l.busy = false
	if j.again {
		l.waitFor = h.seq
		l.waitGen++
		c.timers.add(timerEntry{at: now.Add(j.waitFor.delay + c.cfg.ackWait), key: l.key, gen: l.waitGen, kind: timerLane})
	}
	c.advance(l)
}

// laneWaitOver ends a lane's wait for a redelivery that did not come in time.
func (c *coordinator) laneWaitOver(e timerEntry) {
	l := c.lanes[e.key]
	if l == nil || l.waitFor == 0 || l.waitGen != e.gen {
		return
	}
	c.log.Warn("a call naked for a later delivery did not come back in time; the calls of its key after it go ahead",
		"event_key", l.key, "stream_seq", l.waitFor)
	l.waitFor = 0
	c.advance(l)
}

// releaseLanes hands back the waiting calls of the lanes whose key mine accepts (every lane when
// mine is nil), and forgets those lanes, so that the next consumer of their keys makes the calls
// in order; a call on its last delivery is kept, to be made from here. It returns how many calls
// it handed back. A call queued or running is left to releaseWindows and its worker.
func (c *coordinator) releaseLanes(mine func(key string) bool) int {
	n := 0
	for key, l := range c.lanes {
		if mine != nil && !mine(key) {
			continue
		}
		if slices.ContainsFunc(l.pending, c.settler.lastDelivery) {
			continue
		}
		c.settler.nakAll(l.pending, 0)
		c.release(l.pending)
		n += len(l.pending)
		delete(c.lanes, key)
	}
	return n
}

// finishLanes stops every lane's wait for a redelivery: the stream is gone, nothing comes back.
func (c *coordinator) finishLanes() {
	for _, l := range c.lanes {
		l.waitFor = 0
		c.advance(l)
	}
}

// shutdownLanes hands back every call no worker has been given, as open windows are: the next
// bridge makes them, in order.
func (c *coordinator) shutdownLanes() {
	for key, l := range c.lanes {
		c.handBack(l.pending, decision{})
		delete(c.lanes, key)
	}
}
