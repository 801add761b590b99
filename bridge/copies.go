package bridge

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Dead-letter copies that cannot be stored.
//
// A message whose copy fails before its last delivery is naked and copied on a later delivery.
// On its last delivery a nak would lose it (the server does not deliver it again), so the
// coordinator keeps holding it (the InProgress sweep keeps it from redelivery) and tries the
// copy again with a growing wait, as a job like any other: no worker waits for the dead-letter
// stream, and other traffic flows meanwhile. At shutdown the waiting copies are tried at once;
// those still not stored at the shutdown deadline are handed back (see handBack).

// copyRetry is the messages of one job whose copies still have to be stored. The coordinator's
// goroutine owns it.
type copyRetry struct {
	d       decision
	members []*heldMsg
	since   time.Time     // when their copy first failed
	wait    time.Duration // before the next attempt
	at      time.Time     // when the next attempt is due
	queued  bool          // an attempt is queued or in flight
}

// copyHealth is what the coordinator and the workers report about dead-letter copies, for
// DeadLetterProblem. Its fields are atomics: the HTTP server reads them.
type copyHealth struct {
	failingSince atomic.Int64 // unix nanoseconds of the first failure since a copy was last stored; 0 when none
	lastFailure  atomic.Int64 // unix nanoseconds of the latest failure
	waitingSince atomic.Int64 // unix nanoseconds since the oldest waiting message waits; 0 when none waits
	waiting      atomic.Int64 // messages waiting for their copy
	lastErr      atomic.Pointer[string]
}

// noteCopyFailure records a failed dead-letter publish.
func (s *settler) noteCopyFailure(err error) {
	now := time.Now().UnixNano()
	s.copies.failingSince.CompareAndSwap(0, now)
	s.copies.lastFailure.Store(now)
	e := err.Error()
	s.copies.lastErr.Store(&e)
}

// noteCopyStored records a stored dead-letter copy.
func (s *settler) noteCopyStored() { s.copies.failingSince.Store(0) }

// DeadLetterProblem says, in a few words, why dead letters are not being stored, or returns ""
// when they are: copies have failed without one success for longer than consumer.ackWait (and
// failed again within it), or a message has waited that long for its copy. Within that bound a
// failure is a blip the retries absorb; a failure followed by no other attempt (its message
// went elsewhere) is forgotten after it.
func (b *Bridge) DeadLetterProblem() string {
	bound := b.cfg.Consumer.AckWait
	now := time.Now()
	since := func(v int64) time.Duration {
		if v == 0 {
			return 0
		}
		return now.Sub(time.Unix(0, v))
	}
	failing, waiting := since(b.copies.failingSince.Load()), since(b.copies.waitingSince.Load())
	if since(b.copies.lastFailure.Load()) > bound {
		failing = 0 // nothing has failed lately
	}
	if failing <= bound && waiting <= bound {
		return ""
	}
	msg := fmt.Sprintf("dead letters: copies to stream %s failing for %s", b.cfg.DeadLetter.Stream, max(failing, waiting).Round(time.Second))
	if n := b.copies.waiting.Load(); n > 0 {
		msg += fmt.Sprintf(", %d messages waiting for their copy", n)
	}
	if e := b.copies.lastErr.Load(); e != nil {
		msg += ": " + deadletter.HeaderText(*e)
	}
	return msg
}

// awaitCopies takes over the members of a finished job whose copy could not be stored: they
// stay held, and their copy is tried again after a wait. After the shutdown deadline they are
// handed back at once.
func (c *coordinator) awaitCopies(j *job, now time.Time) {
	cr := j.copy
	if cr != nil {
		cr.queued = false
		delete(c.copies, cr)
	}
	if len(j.waiting) > 0 {
		if cr == nil {
			cr = &copyRetry{d: j.waitFor, since: now, wait: c.cfg.nakInitial}
		} else {
			cr.wait = min(2*cr.wait, c.cfg.nakMax)
		}
		cr.members = j.waiting
		for _, h := range cr.members {
			c.hold(h)
		}
		if c.handingBack {
			c.handBack(cr.members, cr.d)
		} else {
			c.copies[cr] = struct{}{}
			cr.at = now.Add(cr.wait)
			if c.draining {
				// Shutting down: try again soon, within the shutdown timeout.
				cr.at = now.Add(min(cr.wait, c.cfg.shutdownTimeout/10))
			}
			c.timers.add(timerEntry{at: cr.at, kind: timerCopy})
		}
	}
	c.noteCopies()
}

// retryCopies queues an attempt for every waiting copy that is due at now.
func (c *coordinator) retryCopies(now time.Time) {
	for cr := range c.copies {
		if cr.queued || cr.at.After(now) {
			continue
		}
		cr.queued = true
		c.enqueue(&job{kind: jobDeadLetter, members: cr.members, reason: cr.d.reason, detail: cr.d.detail, copy: cr})
	}
}

// retryCopiesNow makes every waiting copy due at once: shutdown has begun.
func (c *coordinator) retryCopiesNow(now time.Time) {
	for cr := range c.copies {
		cr.at = now
	}
	c.retryCopies(now)
}

// handBackCopies hands back every waiting copy that no worker is trying: the shutdown deadline
// has passed.
func (c *coordinator) handBackCopies() {
	c.handingBack = true
	for cr := range c.copies {
		if cr.queued {
			continue // its job is queued (handed back with the queue) or in flight
		}
		delete(c.copies, cr)
		c.handBack(cr.members, cr.d)
	}
	c.noteCopies()
}

// noteCopies publishes the number of waiting messages and the oldest wait.
func (c *coordinator) noteCopies() {
	var n int
	var oldest time.Time
	for cr := range c.copies {
		n += len(cr.members)
		if oldest.IsZero() || cr.since.Before(oldest) {
			oldest = cr.since
		}
	}
	c.m.deadLetterWaiting.Set(float64(n))
	c.settler.copies.waiting.Store(int64(n))
	if oldest.IsZero() {
		c.settler.copies.waitingSince.Store(0)
	} else {
		c.settler.copies.waitingSince.Store(oldest.UnixNano())
	}
}

// handBack lets go of members at shutdown without losing them (open windows, and messages whose
// dead-letter copy could not be stored, d saying why): a message the server will deliver again
// is naked; one on its last delivery, which a nak would lose, is published again to the subject
// it came on (see requeue) and terminated once stored. Only when that fails too is it naked, and
// an error says where it stays in the stream.
func (c *coordinator) handBack(members []*heldMsg, d decision) {
	s := c.settler
	for _, h := range members {
		if !s.lastDelivery(h) {
			s.nakAll([]*heldMsg{h}, 0)
			continue
		}
		if d.reason == deadletter.ReasonSecretInMessage {
			// Publishing it again would put the secret back on the bus.
			s.log.Error("message holding a secret naked on its last delivery at shutdown, without a dead-letter copy: "+
				"it stays in the stream until its limits remove it",
				"kind", h.kind, "event_key", h.key, "stream", h.stream, "stream_seq", h.seq)
			s.nakAll([]*heldMsg{h}, 0)
			continue
		}
		// Each member has a deadline of its own: one slow publish must not fail the rest.
		ctx, cancel := context.WithTimeout(context.Background(), deadLetterTimeout)
		err := s.requeue(ctx, h, d)
		cancel()
		if err != nil {
			s.log.Error("requeue failed for a message on its last delivery at shutdown; message naked, and "+
				"the server will not deliver it again: it stays in the stream until its limits remove it",
				"kind", h.kind, "event_key", h.key, "stream", h.stream, "stream_seq", h.seq, "reason", d.reason, "error", err)
			s.nakAll([]*heldMsg{h}, 0)
			continue
		}
		s.log.Warn("message on its last delivery published again to its subject at shutdown",
			"kind", h.kind, "event_key", h.key, "stream_seq", h.seq, "reason", d.reason)
		s.settled.note(h.stream, h.seq)
		if err := h.msg.TermWithReason("requeued"); err != nil {
			s.log.Warn("term failed", "event_key", h.key, "stream_seq", h.seq, "error", err)
		}
	}
	c.release(members)
}

// requeue publishes the original message again to the subject its producer used, so that the
// stream delivers it anew: what a nak does for a message that is not on its last delivery. It
// carries the idempotency key the bridge used (deadletter.HeaderIdempotencyKey), so that the event reaches
// the API under it, and a Nats-Msg-Id of its own, or the stream would take it for the original.
func (s *settler) requeue(ctx context.Context, h *heldMsg, d decision) error {
	subject := h.msg.Subject()
	if s.partitioned {
		if _, published, ok := schema.SplitPartition(subject); ok {
			subject = published
		}
	}
	m := nats.NewMsg(subject)
	m.Header = deadletter.CarriedHeaders(h.msg.Headers())
	m.Data = h.msg.Data()
	if key := usedKey(h, d); key != "" {
		m.Header.Set(deadletter.HeaderIdempotencyKey, key)
	}
	m.Header.Set(jetstream.MsgIDHeader, "requeue-"+h.stream+"-"+strconv.FormatUint(h.seq, 10))
	_, err := s.pub.PublishMsg(ctx, m, jetstream.WithExpectStream(s.stream))
	if err != nil {
		return fmt.Errorf("requeue to %s: %w", subject, err)
	}
	return nil
}
