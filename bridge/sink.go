package bridge

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
)

// sink is the bridge's side of a Source: it decodes what the source delivers on the source's
// goroutine and hands it to the coordinator over in, and turns every other call into a request
// that the coordinator carries out between two messages (inbound.control), so that a source
// never touches the coordinator's state.
type sink struct {
	b  *Bridge
	in chan<- inbound // closed by close, once Consume has returned
	// mu keeps close from closing in while a Deliver sends on it (Deliver holds it for
	// reading); closed is set by close.
	mu     sync.RWMutex
	closed bool
}

// Deliver hands m to the coordinator. After close it hands m back to the server instead: the
// client library can still run its message callback after the consume context reports it closed
// (it does when the connection itself was closed), and the source has returned by then.
func (s *sink) Deliver(m jetstream.Msg) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		if err := m.Nak(); err != nil {
			s.b.log.Debug("a message delivered after the source returned could not be handed back; it comes back on its ack timer", "error", err)
		}
		return
	}
	s.in <- s.b.decode(m)
}

// close closes in, once no Deliver is sending on it: the coordinator keeps reading in until it
// is closed, so a Deliver blocked on a full in ends, and close does not wait for long.
func (s *sink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	close(s.in)
}

func (s *sink) Ready(ok bool) {
	// Said before it is seen: whoever finds the bridge ready finds "started" logged.
	if ok && s.b.onStarted != nil {
		s.b.started.Do(s.b.onStarted)
	}
	s.b.ready.Store(ok)
}

// HoldUntil does not wait: a group member calls it from its message callback, which must not
// stall the pulls (a pinned consumer's pin expires when its client stops pulling).
func (s *sink) HoldUntil(t time.Time) {
	s.in <- inbound{control: func(c *coordinator) { c.holdUntil(t) }}
}

// HoldRedelivered does not wait, as HoldUntil.
func (s *sink) HoldRedelivered(t time.Time) {
	s.in <- inbound{control: func(c *coordinator) { c.holdRedelivered(t) }}
}

func (s *sink) Rebound() {
	s.do(func(c *coordinator) {
		c.copiesAnywhere = true
		c.endStartHold(time.Now())
	})
}

func (s *sink) ReleaseKeys(keys func(key string) bool, queued bool) int {
	var n int
	s.do(func(c *coordinator) { n = c.releaseWindows(queued, keys) })
	return n
}

func (s *sink) Finish(ctx context.Context) {
	s.do(func(c *coordinator) { c.finishWindows(time.Now()) })
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var empty bool
		s.do(func(c *coordinator) { empty = len(c.held) == 0 })
		if empty {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// do runs f on the coordinator's goroutine, after the messages delivered so far, and waits until
// it has run. The coordinator reads in until it is closed, so the wait always ends.
func (s *sink) do(f func(*coordinator)) {
	done := make(chan struct{})
	s.in <- inbound{control: func(c *coordinator) {
		f(c)
		close(done)
	}}
	<-done
}

// releaseWindows naks the messages of every open window whose key mine accepts (every window
// when mine is nil), and, with queued, of the flush and send calls still waiting for a worker,
// and forgets them: the next consumer of their partitions builds the windows again from the
// redeliveries. It returns how many windows and calls it released. Calls a worker has started
// run to their end. A nak would lose a message on its last delivery, which the server does not
// deliver again: a window holding one is flushed instead, and a call holding one stays queued,
// so that it is sent from here.
func (c *coordinator) releaseWindows(queued bool, mine func(key string) bool) int {
	n := 0
	now := c.clock.Now()
	for _, w := range c.windows {
		if mine != nil && !mine(w.key) {
			continue
		}
		members := append(slices.Clone(w.workflows), w.commits...)
		if w.track != nil {
			members = append(members, w.track)
		}
		if slices.ContainsFunc(members, c.settler.lastDelivery) {
			if w.track != nil {
				c.flush(w, now)
			}
			continue // without a track, it ends as missing_track at its orphan timeout
		}
		c.closeWindow(w)
		c.settler.nakAll(members, 0)
		c.release(members)
		n++
	}
	n += c.releaseLanes(mine)
	if !queued {
		return n
	}
	n += c.releaseKept(mine)
	// A dead letter does not depend on what the next consumer holds: it goes ahead, and so
	// does a paused bridge's probe, which it waits for (authpause.go).
	kept, freed := c.releaseJobs(c.queue, mine, func(j *job) bool { return j.kind == jobDeadLetter || j.probe })
	n += len(c.queue) - len(kept)
	c.queue = kept
	c.advanceFreed(freed)
	return n
}

// releaseJobs naks and releases the calls of jobs whose key mine accepts (all when mine is
// nil), except those stay keeps and those holding a message on its last delivery, which are
// made from here. It returns the jobs kept, in place, and the lanes of the released v2 calls,
// for advanceFreed once the caller has stored the kept jobs.
func (c *coordinator) releaseJobs(jobs []*job, mine func(key string) bool, stay func(*job) bool) (kept []*job, freed []*lane) {
	kept = jobs[:0]
	for _, j := range jobs {
		if stay(j) || slices.ContainsFunc(j.members, c.settler.lastDelivery) ||
			mine != nil && len(j.members) > 0 && !mine(j.members[0].key) {
			kept = append(kept, j)
			continue
		}
		c.settler.nakAll(j.members, 0)
		c.release(j.members)
		if l := c.lanes[j.members[0].key]; j.kind == jobCall && l != nil {
			freed = append(freed, l)
		}
	}
	clear(jobs[len(kept):])
	return kept, freed
}

// advanceFreed lets the lanes whose call was released go on without it (advancing one may queue
// its next call).
func (c *coordinator) advanceFreed(freed []*lane) {
	for _, l := range freed {
		l.busy = false
		c.advance(l)
	}
}

// finishWindows flushes every window that has a track and dead-letters the pieces of those that
// have none (missing_track): their stream is gone.
func (c *coordinator) finishWindows(now time.Time) {
	c.finishLanes()
	for _, w := range c.windows {
		switch {
		case w.track != nil:
			c.flush(w, now)
		case len(w.workflows) == 0:
			c.ignoreLoneCommits(w)
		default:
			c.closeWindow(w)
			c.enqueue(&job{kind: jobDeadLetter, members: append(w.workflows, w.commits...), reason: deadletter.ReasonMissingTrack,
				detail: "the stream was deleted before the event's track arrived"})
		}
	}
}
