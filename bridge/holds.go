package bridge

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// What the coordinator does with its windows while a recovery hold is on (see recovery, which
// decides when holds start and end). In steady state only checkReconnects (on each tick and
// redelivery) and noteRedelivery (on each redelivery) run, to notice a hold start or end; the
// normal flush path (flushWhenFree, onTimer) asks c.rec about a window only when c.rec.active
// says a hold is on.

// startRecovery starts the hold at start when info (the consumer as it was bound, before this
// bridge pulled anything) shows messages delivered but not acked, and watches conn for
// reconnects. info is nil when the source is not the bridge's own consumer; conn is nil when the
// bridge runs without one (benchmarks, unit tests).
func (c *coordinator) startRecovery(info *jetstream.ConsumerInfo, conn *nats.Conn, now time.Time) {
	if conn != nil {
		c.reconnects = func() uint64 { return conn.Stats().Reconnects }
		c.rec.reconnects = c.reconnects()
	}
	if info == nil || info.NumAckPending == 0 {
		return
	}
	until := c.rec.start(info.NumAckPending, info.Delivered.Stream, now)
	c.log.Info("holding windows until the messages a previous bridge held come back",
		"pending", info.NumAckPending, "at_most_until", until)
}

// heldUntil returns when w may flush, or the zero time when it may flush now.
func (c *coordinator) heldUntil(w *window, now time.Time) time.Time {
	return c.rec.heldUntil(now, c.rec.reconnecting(now) && hasRedelivered(w))
}

// hasRedelivered reports whether a piece of w is a redelivery. It only runs during a hold.
func hasRedelivered(w *window) bool {
	if w.track != nil && w.track.delivered > 1 {
		return true
	}
	for _, hs := range [][]*heldMsg{w.workflows, w.commits} {
		for _, h := range hs {
			if h.delivered > 1 {
				return true
			}
		}
	}
	return false
}

// postpone moves the close of w, due now but held, to end, when the hold ends: later than its
// close would have been, or sooner, when a commit made it due before its delay ran out.
func (c *coordinator) postpone(w *window, end time.Time) {
	w.held = true
	if !w.due.Equal(end) {
		w.due = end
		c.timers.add(timerEntry{at: end, key: w.key, gen: w.gen, kind: timerDue})
	}
}

// noteRedelivery counts the messages pending at start as they come back, and checks for a
// reconnect: a redelivery is how lost acks and naks show. It reports whether the start hold has
// just ended, in which case the caller resumes flushing once it has placed this message.
func (c *coordinator) noteRedelivery(in inbound, now time.Time) (ended bool) {
	c.checkReconnects(now)
	if !c.rec.counting() {
		return false
	}
	switch c.rec.noteReturn(in.seq, now) {
	case returnExtended:
		c.log.Info("the messages a previous bridge held are back; holding for the ones sent to it since", "until", c.rec.startUntil)
		c.retime(now)
		c.advanceLanes() // held lanes wait for the new, sooner end (lanesHeld arms its timer)
	case returnEnded:
		c.log.Info("the messages a previous bridge held are back; flushing resumes")
		return true
	}
	return false
}

// checkReconnects starts the hold after a reconnect (see recovery.reconnected).
func (c *coordinator) checkReconnects(now time.Time) {
	if c.reconnects == nil {
		return
	}
	if c.rec.reconnected(c.reconnects(), now) {
		c.log.Info("reconnected to NATS: holding redelivered windows while messages whose naks were lost come back",
			"for", c.cfg.ackWait)
	}
}

// retime moves the close of the windows a hold moved to when the hold now ends, which is
// sooner than it was when they were moved.
func (c *coordinator) retime(now time.Time) {
	for _, w := range c.windows {
		if !w.held {
			continue
		}
		if end := c.heldUntil(w, now); !end.IsZero() && end.Before(w.due) {
			w.due = end
			c.timers.add(timerEntry{at: end, key: w.key, gen: w.gen, kind: timerDue})
		}
	}
}

// resume flushes, when a hold ends early, the windows that were due during it, lets go of the
// commits it kept whose event has not come, and lets the lanes go on.
func (c *coordinator) resume(now time.Time) {
	defer c.advanceLanes()
	for _, w := range c.windows {
		switch {
		case w.track != nil && (w.dueReached || w.held):
			c.flushWhenFree(w, now)
		case w.track == nil && len(w.workflows) == 0 && c.rec.holding(now).IsZero():
			c.ignoreLoneCommits(w)
		}
	}
}

// keepLoneCommit keeps a commit that found nothing open during a hold, in a window of its own
// that lasts as long as the hold (until end): the event's other pieces may still be on their
// way back, held by a bridge that died.
func (c *coordinator) keepLoneCommit(key string, now, end time.Time) *window {
	w := c.open(key, now)
	w.due = end
	c.timers.add(timerEntry{at: w.due, key: key, gen: w.gen, kind: timerDue})
	return w
}

// holdUntil holds every window until t: this replica has taken over partitions from an
// instance that may have died holding pieces of their events, which come back on their ack
// timers. A t sooner than the hold's end ends it early: the group member has seen them all come
// back. It is apart from the start hold, which its own count can end early.
func (c *coordinator) holdUntil(t time.Time) {
	now := c.clock.Now()
	switch c.rec.pin(t, now) {
	case pinLater:
		c.log.Info("holding windows until the messages the partitions' previous consumer held come back", "until", t)
	case pinSooner:
		// What the hold postponed flushes now, or when another hold still on ends.
		c.log.Info("the messages the partitions' previous consumer held are back; the hold after the takeover ends")
		c.resume(now)
	}
}

// holdRedelivered holds, until t, the windows holding a redelivered piece, as after a
// reconnect: this replica's first pin to a static member's consumer may follow an instance that
// covered for it meanwhile and handed its windows back.
func (c *coordinator) holdRedelivered(t time.Time) {
	if c.rec.holdRedelivered(t) {
		c.log.Debug("first pin to a consumer another instance may have held: holding windows with a redelivered piece", "until", t)
	}
}

// endStartHold ends the hold at start, for a source whose consumer was replaced by one that
// delivers what is left in stream order, and flushes what the hold kept.
func (c *coordinator) endStartHold(now time.Time) {
	if c.rec.endStart() {
		c.resume(now)
	}
}
