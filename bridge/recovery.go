package bridge

import (
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/internal/heldback"
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
//
// A recovery only decides: it is given what is pending and the time, and says until when windows
// wait. It does no I/O and reads no clock; the coordinator acts on its answers (see holds.go),
// and asks it about a window only while active reports a hold.
type recovery struct {
	ackWait time.Duration // consumer.ackWait
	nakMax  time.Duration // retry.nakMax

	started        time.Time         // when the start hold began
	startUntil     time.Time         // the hold for what a predecessor held
	pinUntil       time.Time         // the hold after taking over a consumer another instance held
	reconnectUntil time.Time         // the hold of redelivered windows: after a reconnect, or a first pin
	awaited        *heldback.Awaited // the messages pending at start that have not come back yet
	reconnects     uint64            // the connection's reconnect count when last looked at
}

// newRecovery returns a recovery with no hold on, for a consumer with ackWait and naks of at
// most nakMax.
func newRecovery(ackWait, nakMax time.Duration) recovery {
	return recovery{ackWait: ackWait, nakMax: nakMax}
}

// maxHold is how long pieces held elsewhere can take to come back.
func (r *recovery) maxHold() time.Duration { return max(r.ackWait, r.nakMax) }

// start begins the hold at start for pending messages a predecessor was delivered, up to stream
// sequence lastDelivered, and did not ack. It returns when the hold ends at the latest.
func (r *recovery) start(pending int, lastDelivered uint64, now time.Time) time.Time {
	r.awaited = heldback.Await(pending, lastDelivered)
	r.started = now
	r.startUntil = now.Add(r.maxHold() + r.ackWait/4)
	return r.startUntil
}

// active reports whether any hold is on at now. When it is not, every other question has the
// answer "flush": the zero time.
func (r *recovery) active(now time.Time) bool {
	return now.Before(r.startUntil) || now.Before(r.pinUntil) || now.Before(r.reconnectUntil)
}

// holding returns when the holds that concern every window end, or the zero time when none is
// on.
func (r *recovery) holding(now time.Time) time.Time {
	var end time.Time
	for _, t := range []time.Time{r.startUntil, r.pinUntil} {
		if now.Before(t) && t.After(end) {
			end = t
		}
	}
	return end
}

// reconnecting reports whether the hold after a reconnect is on: it concerns only the windows
// holding a redelivered piece.
func (r *recovery) reconnecting(now time.Time) bool { return now.Before(r.reconnectUntil) }

// heldUntil returns when a window may flush, or the zero time when it may flush now.
// redelivered says whether a piece of the window is a redelivery.
func (r *recovery) heldUntil(now time.Time, redelivered bool) time.Time {
	end := r.holding(now)
	if redelivered && now.Before(r.reconnectUntil) && r.reconnectUntil.After(end) {
		end = r.reconnectUntil
	}
	return end
}

// counting reports whether messages pending at start are still awaited.
func (r *recovery) counting() bool { return r.awaited.Left() > 0 }

// returnOutcome is what the return of a message pending at start did to the start hold.
type returnOutcome uint8

const (
	returnNothing  returnOutcome = iota // the hold goes on as it was, or none is on
	returnExtended                      // the last one is back, but the hold now ends at startUntil
	returnEnded                         // the last one is back and the hold is over
)

// noteReturn counts a redelivery of stream sequence seq at now among the messages pending at
// start, and says whether that ended the start hold.
func (r *recovery) noteReturn(seq uint64, now time.Time) returnOutcome {
	if r.counting() && !now.Before(r.startUntil) {
		// The hold ran out before they all came back: stop counting.
		r.awaited = nil
	}
	if !r.awaited.Back(seq) {
		return returnNothing
	}
	r.awaited = nil
	if now.Sub(r.started) >= r.ackWait/2 {
		// They came back on their ack timers: the predecessor died shortly before our start,
		// and may have been sent a few more after it.
		if late := r.started.Add(r.ackWait + r.ackWait/4); late.After(now) {
			r.startUntil = late
			return returnExtended
		}
	}
	r.startUntil = time.Time{}
	return returnEnded
}

// reconnected notes the connection's reconnect count n at now, and reports whether it has
// grown, in which case the hold after a reconnect starts: acks and naks written just before
// the connection dropped may have been lost, and their messages come back later than their
// siblings.
func (r *recovery) reconnected(n uint64, now time.Time) bool {
	if n == r.reconnects {
		return false
	}
	r.reconnects = n
	r.reconnectUntil = later(r.reconnectUntil, now.Add(r.ackWait)) // a first pin's may run longer
	return true
}

// holdRedelivered holds the windows holding a redelivered piece until t (as a reconnect does),
// and reports whether that moved the hold later.
func (r *recovery) holdRedelivered(t time.Time) bool {
	if !t.After(r.reconnectUntil) {
		return false
	}
	r.reconnectUntil = t
	return true
}

// pinMove is what pin did to the hold after a takeover.
type pinMove uint8

const (
	pinSame   pinMove = iota // the hold ends when it did
	pinLater                 // it now ends later (or has started)
	pinSooner                // it now ends sooner (or has ended)
)

// pin holds every window until t, in place of the hold after a takeover set before: the caller
// (a group member) knows every consumer it took over and when each may stop being waited for,
// and passes when the last of them ends; a t sooner than before ends the hold early (the zero
// time ends it now). It reports how that moved the hold, as seen at now.
func (r *recovery) pin(t, now time.Time) pinMove {
	old := r.pinUntil
	r.pinUntil = t
	switch {
	case t.After(old) && t.After(now):
		return pinLater
	case t.Before(old) && old.After(now):
		return pinSooner
	}
	return pinSame
}

// endStart ends the hold at start, and reports whether one was on.
func (r *recovery) endStart() bool {
	if r.startUntil.IsZero() {
		return false
	}
	r.awaited, r.startUntil = nil, time.Time{}
	return true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
