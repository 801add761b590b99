package bridge

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// recovery holds back flushes while pieces of events may still be on their way back from
// somewhere the bridge cannot see: a bridge that crashed holding them, or acks and naks lost
// with a NATS connection. Such pieces come back only when their ack timer (AckWait) or their
// nak delay (at most NakMax, by default) runs out, in no particular order relative to the pieces
// published since, so a window flushed meanwhile (on its commit, say) would go out without them,
// and they would end as missing_track. So:
//
//   - at start, when the consumer reports messages delivered but not acked (a predecessor
//     crashed holding them), no window flushes until they have all come back: any window may
//     be missing one of them, even one whose pieces all arrive for the first time (a workflow
//     published before its track). If they come back late (the predecessor died recently), the
//     server may also have delivered a few more to its dead connection after our start, before
//     it noticed the death, and those come back AckWait later still: the hold then lasts at
//     least AckWait and a quarter from the start. It never lasts more than max(AckWait, NakMax)
//     and a quarter of AckWait, in case some never come back;
//   - after the connection reconnects, a window holding a redelivered piece does not flush for
//     AckWait: a nak lost with the connection brings its message back after AckWait, while its
//     siblings, whose naks got through, come back after their delay. Windows of first
//     deliveries are not concerned, so new events flow on.
//
// Windows keep gathering meanwhile, and flush when the hold ends. In steady state nothing is
// held: the bridge's own naks settle every member of a job together, so they come back together.
type recovery struct {
	started        time.Time // when the start hold began
	startUntil     time.Time // the hold for what a predecessor held
	pinUntil       time.Time // the hold after taking over a consumer another instance held
	reconnectUntil time.Time // the hold after a reconnect
	pending        int       // messages pending at start that have not come back yet
	lastDelivered  uint64    // the last stream sequence delivered before the start
	seen           map[uint64]struct{}
	conn           *nats.Conn // nil when the bridge runs without one (benchmarks)
	reconnects     uint64
}

// recoveryHold is how long pieces held elsewhere can take to come back.
func (c *coordinator) recoveryHold() time.Duration {
	return max(c.b.cfg.Consumer.AckWait, c.b.cfg.Retry.NakMax)
}

// startRecovery starts the hold at start when info (the consumer as it was bound, before this
// bridge pulled anything) shows messages delivered but not acked, and watches conn for
// reconnects. info is nil when the source is not the bridge's own consumer.
func (c *coordinator) startRecovery(info *jetstream.ConsumerInfo, conn *nats.Conn, now time.Time) {
	c.rec.conn = conn
	if conn != nil {
		c.rec.reconnects = conn.Stats().Reconnects
	}
	if info == nil || info.NumAckPending == 0 {
		return
	}
	c.rec.pending = info.NumAckPending
	c.rec.lastDelivered = info.Delivered.Stream
	c.rec.seen = make(map[uint64]struct{}, info.NumAckPending)
	c.rec.started = now
	c.rec.startUntil = now.Add(c.recoveryHold() + c.b.cfg.Consumer.AckWait/4)
	c.b.log.Info("holding windows until the messages a previous bridge held come back",
		"pending", info.NumAckPending, "at_most_until", c.rec.startUntil)
}

// holding returns when the holds that concern every window end, or the zero time when none
// is on.
func (c *coordinator) holding(now time.Time) time.Time {
	var end time.Time
	for _, t := range []time.Time{c.rec.startUntil, c.rec.pinUntil} {
		if now.Before(t) && t.After(end) {
			end = t
		}
	}
	return end
}

// heldUntil returns when w may flush, or the zero time when it may flush now.
func (c *coordinator) heldUntil(w *window, now time.Time) time.Time {
	end := c.holding(now)
	if now.Before(c.rec.reconnectUntil) && c.rec.reconnectUntil.After(end) && hasRedelivered(w) {
		end = c.rec.reconnectUntil
	}
	return end
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

// noteRedelivery counts the messages pending at start as they come back, and checks for a
// reconnect: a redelivery is how lost acks and naks show. It reports whether the start hold has
// just ended, in which case the caller resumes flushing once it has placed this message.
func (c *coordinator) noteRedelivery(in inbound, now time.Time) (ended bool) {
	c.checkReconnects(now)
	if c.rec.pending > 0 && !now.Before(c.rec.startUntil) {
		// The hold ran out before they all came back: stop counting.
		c.rec.pending, c.rec.seen = 0, nil
	}
	if c.rec.pending == 0 || in.seq > c.rec.lastDelivered {
		return false
	}
	if _, ok := c.rec.seen[in.seq]; ok {
		return false
	}
	c.rec.seen[in.seq] = struct{}{}
	if c.rec.pending--; c.rec.pending > 0 {
		return false
	}
	c.rec.seen = nil
	ackWait := c.b.cfg.Consumer.AckWait
	if now.Sub(c.rec.started) >= ackWait/2 {
		// They came back on their ack timers: the predecessor died shortly before our start,
		// and may have been sent a few more after it.
		if late := c.rec.started.Add(ackWait + ackWait/4); late.After(now) {
			c.rec.startUntil = late
			c.b.log.Info("the messages a previous bridge held are back; holding for the ones sent to it since", "until", late)
			c.retime(now)
			return false
		}
	}
	c.rec.startUntil = time.Time{}
	c.b.log.Info("the messages a previous bridge held are back; flushing resumes")
	return true
}

// checkReconnects starts the hold after a reconnect: acks and naks written just before the
// connection dropped may have been lost, and their messages come back later than their siblings.
func (c *coordinator) checkReconnects(now time.Time) {
	if c.rec.conn == nil {
		return
	}
	n := c.rec.conn.Stats().Reconnects
	if n == c.rec.reconnects {
		return
	}
	c.rec.reconnects = n
	c.rec.reconnectUntil = now.Add(c.b.cfg.Consumer.AckWait)
	c.b.log.Info("reconnected to NATS: holding redelivered windows while messages whose naks were lost come back",
		"for", c.b.cfg.Consumer.AckWait)
}

// flushWhenFree flushes w, or, while it is held, moves its close to the end of the hold.
func (c *coordinator) flushWhenFree(w *window, now time.Time) {
	end := c.heldUntil(w, now)
	if end.IsZero() {
		c.flush(w, now)
		return
	}
	w.held = true
	// Due now, it flushes when the hold ends: later than its close would have been, or sooner,
	// when a commit made it due before its delay ran out.
	if !w.due.Equal(end) {
		w.due = end
		c.timers.add(timerEntry{at: end, key: w.key, gen: w.gen, kind: timerDue})
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

// resume flushes, when the start hold ends early, the windows that were due during it, and
// lets go of the commits it kept whose event has not come.
func (c *coordinator) resume(now time.Time) {
	for _, w := range c.windows {
		switch {
		case w.track != nil && (w.dueReached || w.held):
			c.flushWhenFree(w, now)
		case w.track == nil && len(w.workflows) == 0 && c.holding(now).IsZero():
			c.ignoreLoneCommits(w)
		}
	}
}

// keepLoneCommit keeps a commit that found nothing open during a hold, in a window of its own
// that lasts as long as the hold: the event's other pieces may still be on their way back,
// held by a bridge that died.
func (c *coordinator) keepLoneCommit(key string, now time.Time) *window {
	w := c.open(key, now)
	w.due = c.holding(now)
	c.timers.add(timerEntry{at: w.due, key: key, gen: w.gen, kind: timerDue})
	return w
}

// ignoreLoneCommits acks, as ignored, the commits of a window that holds nothing else once the
// hold that kept them is over, as they would have been at once outside it; a window kept longer
// would take a later event of the same key for theirs.
func (c *coordinator) ignoreLoneCommits(w *window) {
	c.closeWindow(w)
	c.b.ackAll(w.commits, outcomeIgnored)
	c.release(w.commits)
}

// holdUntil holds every window until t: this replica has taken over partitions from an
// instance that may have died holding pieces of their events, which come back on their ack
// timers. It is apart from the start hold, which its own count can end early.
func (c *coordinator) holdUntil(t time.Time) {
	if t.After(c.rec.pinUntil) {
		c.rec.pinUntil = t
		c.b.log.Info("holding windows until the messages the partitions' previous consumer held come back", "until", t)
	}
}

// endStartHold ends the hold at start, for a source whose consumer was replaced by one that
// delivers what is left in stream order, and flushes what the hold kept.
func (c *coordinator) endStartHold(now time.Time) {
	if c.rec.startUntil.IsZero() {
		return
	}
	c.rec.pending, c.rec.seen, c.rec.startUntil = 0, nil, time.Time{}
	c.resume(now)
}
