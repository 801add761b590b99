package bridge

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
)

// A 401 or a 403 from the Notifizz API says that the bridge's own key is wrong (rotated or
// revoked), not that the event is: every other call would be refused the same way. So the
// bridge pauses instead of dead-lettering: it stops sending, hands the calls it has back to
// the server with a delay (a nak, never a term), and probes the API with one real call at a
// time, after a wait that doubles from retry.nakInitial up to maxProbeWait (and
// retry.nakMax), until the API answers something other than 401 or 403. Bridge.AuthProblem
// says why meanwhile (the daemon's /readyz answers 503 with it).
//
// A pause must not turn into dead letters. Naked messages count deliveries, and on its last
// delivery (consumer.maxDeliver) a nak would lose a message: the server never delivers it
// again. So a call holding a message on its last delivery is not naked but kept, with the
// probe's candidate, kept from redelivery by the InProgress sweep, and sent once the pause
// ends (or handed back at shutdown, see handBack). The decision function never turns a 401
// or a 403 into max_deliveries.

// maxProbeWait caps the wait between two probes of a paused bridge: a key put right is
// noticed within it.
const maxProbeWait = 30 * time.Second

// authPause is the coordinator's state of a pause; its goroutine owns it. health is what it
// publishes for readers on other goroutines.
type authPause struct {
	on      bool
	since   time.Time
	status  int           // the status of the rejection that started the pause
	wait    time.Duration // before the next probe
	probeAt time.Time     // when the next probe may start
	probing bool          // a probe is queued or running
	// kept are the calls kept while paused: the next probe's candidate first, then those
	// holding a message on its last delivery. They are sent once the pause ends.
	kept []*job
	// calling counts the API calls (flush, send and v2 calls) handed to workers and not yet
	// back: a probe starts only when none is, so that a paused bridge makes one call at a
	// time.
	calling int
	health  *authHealth
}

// authHealth is the pause as readers on other goroutines see it (Bridge.AuthProblem): atomics.
type authHealth struct {
	since  atomic.Int64 // unix nanoseconds of the start of the pause; 0 when not paused
	status atomic.Int32 // the status that started it
}

// AuthProblem says, in a few words, why the bridge has stopped sending because the Notifizz
// API refuses its key (401 or 403), or returns "" when it has not.
func (b *Bridge) AuthProblem() string {
	since := b.auth.since.Load()
	if since == 0 {
		return ""
	}
	return fmt.Sprintf("notifizz api: the key is refused (status %d) for %s: sending paused, probing until it is accepted",
		b.auth.status.Load(), time.Since(time.Unix(0, since)).Round(time.Second))
}

// isAPICall reports whether a job calls the API.
func isAPICall(j *job) bool { return j.kind != jobDeadLetter }

// dispatched notes a job handed to a worker.
func (c *coordinator) dispatched(j *job) {
	if isAPICall(j) {
		c.pause.calling++
	}
}

// callFinished updates the pause with the outcome of a job a worker has run, and sets its
// messages aside when the API refused the key. It reports whether it took the job over, in
// which case the caller does nothing more with it.
func (c *coordinator) callFinished(j *job, now time.Time) bool {
	if !isAPICall(j) {
		return false
	}
	p := &c.pause
	c.pause.calling--
	probe := j.probe
	if probe {
		j.probe = false
		p.probing = false
	}
	switch {
	case j.paused:
		c.m.authFailures.WithLabelValues(strconv.Itoa(j.waitFor.status)).Inc()
		if !p.on {
			c.startPause(j, now)
		} else if probe {
			c.nextProbe(now)
			c.log.Debug("probe refused: the notifizz api still refuses the key", statusAttr(j.waitFor.status), "next_probe_in", p.wait)
		}
		c.setAside(j, now)
		return true
	case p.on && keyAccepted(j.waitFor):
		c.endPause(now)
	case p.on && probe:
		// An answer that says nothing of the key (5xx, a network error): probe again later.
		c.nextProbe(now)
	}
	return false
}

// keyAccepted reports whether the API judged a call with the bridge's key: it answered 2xx, or
// rejected the request itself with a 4xx other than 401 and 403 (dead-lettered api_rejected).
func keyAccepted(d decision) bool {
	return d.action == actAck ||
		d.action == actDeadLetter && d.reason == deadletter.ReasonAPIRejected && d.status >= 400 && d.status <= 499
}

// startPause starts a pause on the rejection of j, logged once.
func (c *coordinator) startPause(j *job, now time.Time) {
	p := &c.pause
	p.on, p.since, p.status = true, now, j.waitFor.status
	p.wait = 0
	c.nextProbe(now)
	p.health.status.Store(int32(p.status))
	p.health.since.Store(now.UnixNano())
	c.m.authPaused.Set(1)
	c.log.Error("the notifizz api refuses the bridge's key (notifizz.sdkSecretKey rotated or revoked?): sending paused, "+
		"messages handed back with a delay, probing with one call at a time until the key is accepted",
		statusAttr(p.status), "endpoint", endpointOf(j), "error", j.waitFor.detail)
}

// nextProbe doubles the wait before the next probe (the first is retry.nakInitial), within
// maxProbeWait and retry.nakMax, and wakes the coordinator then.
func (c *coordinator) nextProbe(now time.Time) {
	p := &c.pause
	if p.wait == 0 {
		p.wait = c.cfg.nakInitial
	} else {
		p.wait = min(2*p.wait, maxProbeWait, c.cfg.nakMax)
	}
	p.wait = max(p.wait, time.Millisecond)
	p.probeAt = now.Add(p.wait)
	c.timers.add(timerEntry{at: p.probeAt, kind: timerProbe})
}

// endPause ends the pause, logged once, and queues the calls it kept, ahead of the rest.
func (c *coordinator) endPause(now time.Time) {
	p := &c.pause
	c.log.Info("the notifizz api accepts the bridge's key again: sending resumed", "paused_for", now.Sub(p.since).Round(time.Millisecond))
	p.on = false
	p.wait = 0
	p.health.since.Store(0)
	c.m.authPaused.Set(0)
	if len(p.kept) > 0 {
		c.queue = append(p.kept, c.queue...)
		p.kept = nil
	}
}

// pauseQueue runs before each dispatch while paused: it sets aside every API call of the queue
// and, when the next probe is due and no call is running, puts one kept call at its head, the
// probe. Dead-letter jobs go on: they do not call the API.
func (c *coordinator) pauseQueue(now time.Time) {
	p := &c.pause
	if len(c.queue) > 0 {
		kept := c.queue[:0:0]
		var aside []*job
		for _, j := range c.queue {
			if !isAPICall(j) || j.probe {
				kept = append(kept, j)
				continue
			}
			aside = append(aside, j)
		}
		c.queue = kept
		for _, j := range aside {
			c.setAside(j, now)
		}
	}
	if !p.on || p.probing || p.calling > 0 || len(p.kept) == 0 || now.Before(p.probeAt) || c.draining {
		return
	}
	j := p.kept[0]
	p.kept[0] = nil
	p.kept = p.kept[1:]
	j.probe = true
	p.probing = true
	c.queue = slices.Insert(c.queue, 0, j)
}

// setAside takes an API call out of the way of a pause: it is kept when it is the first (the
// next probe's candidate) or holds a message on its last delivery, else naked with a delay no
// shorter than the wait until the next probe. While shutting down it is handed back.
func (c *coordinator) setAside(j *job, now time.Time) {
	p := &c.pause
	j.paused = false
	if c.draining {
		c.handBack(j.members, decision{})
		if j.kind == jobCall {
			c.callDone(j, now)
		}
		return
	}
	if len(p.kept) == 0 || slices.ContainsFunc(j.members, c.settler.lastDelivery) {
		p.kept = append(p.kept, j)
		return
	}
	var delivered uint64
	for _, h := range j.members {
		delivered = max(delivered, h.delivered)
	}
	delay := max(c.calls.backoff.delay(delivered, 0, rand.Float64()), p.probeAt.Sub(now))
	last := j.members[len(j.members)-1]
	c.log.Debug("paused: messages handed back", "kind", last.kind, "event_key", last.key, "stream_seq", last.seq,
		"num_delivered", last.delivered, "delay", delay)
	c.settler.nakAll(j.members, delay)
	c.release(j.members)
	if j.kind == jobCall {
		// Its lane waits for the redelivery, as for any naked call.
		j.again = true
		j.waitFor = decision{action: actNak, delay: delay}
		c.callDone(j, now)
	}
}

// releaseKept naks the calls a pause kept whose key mine accepts (all when mine is nil), as
// releaseWindows does the queued ones, so that the next consumer of their keys makes them; a
// call holding a message on its last delivery stays, to be made from here. It returns how many
// it released.
func (c *coordinator) releaseKept(mine func(key string) bool) int {
	kept, freed := c.releaseJobs(c.pause.kept, mine, func(*job) bool { return false })
	n := len(c.pause.kept) - len(kept)
	c.pause.kept = kept
	c.advanceFreed(freed)
	return n
}

// handBackKept hands back, at shutdown, the calls a pause kept.
func (c *coordinator) handBackKept() {
	for _, j := range c.pause.kept {
		c.handBack(j.members, decision{})
	}
	c.pause.kept = nil
}

// endpointOf names the API call of j for a log line.
func endpointOf(j *job) string {
	switch j.kind {
	case jobFlush:
		return "track"
	case jobSend:
		return "send"
	}
	return string(j.members[0].kind)
}

// isAuthStatus reports whether an API status says the bridge's own key is wrong.
func isAuthStatus(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}
