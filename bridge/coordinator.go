package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// heldMsg is a message the bridge holds unacknowledged: in a window, queued for a worker or in
// flight. It is keyed by stream sequence, because acks are: a redelivered copy of a held
// message is the same message.
type heldMsg struct {
	decoded
	touched time.Time // last time the server heard we are working on it
}

// window gathers the pieces of one event until it is flushed.
type window struct {
	key        string
	gen        uint64
	track      *heldMsg
	workflows  []*heldMsg
	commits    []*heldMsg
	nWorkflows int // inline workflows of the track plus workflow messages
	bytes      int // bound on the request body: the envelope, the track's and each workflow's size
	opened     time.Time
	due        time.Time
	dueReached bool // the delay has passed or a commit was seen
	held       bool // it would have flushed, but a recovery hold moved its close (see recovery)
}

// coordinator owns the windows, the timer heap and the held messages. Only its goroutine (the
// one that calls run) touches them; workers get jobs and report back on a channel. It is given
// what it needs (newCoordinator): the part of the config it reads, the settler it and the
// workers settle messages with, the caller the workers run jobs with, a logger and a clock.
type coordinator struct {
	cfg     coordinatorConfig
	settler *settler
	calls   *caller // what each worker runs
	log     *slog.Logger
	m       *metrics
	clock   clock
	// reconnects returns the connection's reconnect count; nil without a connection.
	reconnects func() uint64

	windows map[string]*window
	lanes   map[string]*lane // the order of each key's calls under notifizz.api: v2 (lanes.go)
	// laneHoldAt: when the timer that lets the lanes go on after a hold fires (lanesHeld).
	laneHoldAt time.Time
	held       map[uint64]*heldMsg
	timers     timerHeap
	timer      clockTimer
	armedAt    time.Time
	queue      []*job
	gen        uint64
	rec        recovery // decides the holds on flushes while pieces held elsewhere may come back
	// copiesAnywhere: any delivery, not only a redelivery, may be a copy of a message settled
	// lately, since the consumer was created again (see consumerSource).
	copiesAnywhere bool

	inflight int

	pause authPause // whether the API refuses the bridge's key, and what that holds back (authpause.go)

	copies      map[*copyRetry]struct{} // messages on their last delivery waiting for their dead-letter copy
	draining    bool                    // the input has ended: shutting down
	handingBack bool                    // the shutdown deadline has passed (see handBackCopies)
}

// coordinatorConfig is the part of Config the coordinator reads.
type coordinatorConfig struct {
	coalesce        CoalesceConfig
	ackWait         time.Duration // consumer.ackWait
	nakInitial      time.Duration // retry.nakInitial
	nakMax          time.Duration // retry.nakMax
	shutdownTimeout time.Duration
	maxInFlight     int // workers
	api             APIProfile
	// partitioned: a copy of a message settled lately can come as a first delivery, as a
	// consumer group re-creates its consumers when partitions move.
	partitioned bool
	noKeepAlive bool // turns the InProgress sweep off; only tests set it
}

// newCoordinatorConfig picks out of cfg what the coordinator reads.
func newCoordinatorConfig(cfg Config) coordinatorConfig {
	return coordinatorConfig{
		coalesce: cfg.Coalesce, ackWait: cfg.Consumer.AckWait,
		nakInitial: cfg.Retry.NakInitial, nakMax: cfg.Retry.NakMax,
		shutdownTimeout: cfg.ShutdownTimeout, maxInFlight: cfg.MaxInFlight,
		partitioned: cfg.Partitions.Count > 0, api: cfg.API,
	}
}

// newCoordinator returns a coordinator with nothing held and no recovery hold on.
func newCoordinator(cfg coordinatorConfig, s *settler, calls *caller, log *slog.Logger, clk clock) *coordinator {
	t := clk.NewTimer(time.Hour)
	t.Stop()
	return &coordinator{
		cfg: cfg, settler: s, calls: calls, log: log, m: s.m, clock: clk,
		windows: make(map[string]*window),
		lanes:   make(map[string]*lane),
		held:    make(map[uint64]*heldMsg),
		timer:   t,
		rec:     newRecovery(cfg.ackWait, cfg.nakMax),
		copies:  make(map[*copyRetry]struct{}),
		pause:   authPause{health: &authHealth{}},
	}
}

// run processes messages until in is closed, then shuts down (see Bridge.Run). It returns when
// every worker it started has returned.
func (c *coordinator) run(ctx context.Context, in <-chan inbound) {
	cfg := c.cfg
	// Workers keep running past ctx so that shutdown can finish the calls in flight; they
	// stop when the shutdown deadline cancels workCtx.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	jobs := make(chan *job)
	// Each worker has at most one finished job to report, so done never blocks a worker once
	// the coordinator stops reading it.
	done := make(chan *job, cfg.maxInFlight)
	var wg sync.WaitGroup
	for range cfg.maxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				c.calls.execute(workCtx, j)
				done <- j
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
		c.timer.Stop()
	}()

	tick := c.clock.NewTicker(max(cfg.ackWait/4, 100*time.Millisecond))
	defer tick.Stop()

	var deadline <-chan time.Time
	var deadlineTimer clockTimer
	defer func() {
		if deadlineTimer != nil {
			deadlineTimer.Stop()
		}
	}()
	for {
		if c.draining && len(c.queue) == 0 && c.inflight == 0 && len(c.copies) == 0 {
			return
		}
		if c.pause.on {
			c.pauseQueue(c.clock.Now())
		}
		c.armTimer()
		var out chan *job
		var next *job
		if len(c.queue) > 0 {
			out, next = jobs, c.queue[0]
		}
		select {
		case m, ok := <-in:
			if !ok {
				in = nil
				c.draining = true
				deadlineTimer = c.clock.NewTimer(cfg.shutdownTimeout)
				deadline = deadlineTimer.Chan()
				c.shutdown()
				c.retryCopiesNow(c.clock.Now())
				continue
			}
			c.onMessage(m)
			c.takeBuffered(in, maxTakeBuffered)
		case out <- next:
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.inflight++
			c.dispatched(next)
		case j := <-done:
			c.inflight--
			c.finished(j, c.clock.Now())
		case now := <-c.timer.Chan():
			c.armedAt = time.Time{}
			// Messages the consumer handed over before the timer fired belong to the windows
			// they arrived in: place them before closing any window, or a busy coordinator
			// would flush a window without pieces that reached the bridge in time.
			if in != nil {
				c.takeBuffered(in, len(in))
			}
			c.onTimer(now)
		case now := <-tick.Chan():
			c.checkReconnects(now)
			c.keepAlive(now)
		case <-deadline:
			deadline = nil
			c.log.Warn("shutdown timeout: cancelling calls in flight and naking queued messages",
				"in_flight", c.inflight, "queued", len(c.queue))
			cancelWork()
			c.handBackQueued()
		}
	}
}

// finished takes back a job a worker has run: its members are settled, except those whose
// dead-letter copy could not be stored on their last delivery, which it keeps (awaitCopies),
// and those of a call the API refused with 401 or 403, which a pause sets aside (authpause.go).
func (c *coordinator) finished(j *job, now time.Time) {
	if c.callFinished(j, now) {
		return // set aside by a pause
	}
	c.release(j.members)
	if j.kind == jobCall {
		c.callDone(j, now)
	}
	if j.copy != nil || len(j.waiting) > 0 {
		c.awaitCopies(j, now)
	}
}

// handBackQueued hands back, once the shutdown deadline has passed, the waiting dead-letter
// copies and every job no worker took.
func (c *coordinator) handBackQueued() {
	c.handBackCopies()
	for _, j := range c.queue {
		if j.kind == jobDeadLetter {
			// A nak would lose a member on its last delivery: hand them back.
			d := decision{action: actDeadLetter, reason: j.reason, detail: j.detail}
			if j.copy != nil {
				d = j.copy.d
				delete(c.copies, j.copy)
			}
			c.handBack(j.members, d)
			continue
		}
		// A flush or a send that no worker took: its members go back like an open
		// window's, none naked on its last delivery.
		c.handBack(j.members, decision{})
	}
	c.queue = nil
	c.noteCopies()
}

// maxTakeBuffered bounds how many messages takeBuffered handles in a row, so that a timer or a
// finished job waits at most that long for the coordinator.
const maxTakeBuffered = 256

// takeBuffered handles the messages the consumer has already handed over, in order, without
// going back to the select between them: a receive from a ready channel costs much less than a
// select over every source, and while the coordinator is busy here the consumer's goroutine
// does not have to wake it for each message. A closed channel is left to the select, which
// handles the end of the input.
func (c *coordinator) takeBuffered(in <-chan inbound, n int) {
	for range n {
		select {
		case m, ok := <-in:
			if !ok {
				return
			}
			c.onMessage(m)
		default:
			return
		}
	}
}

// armTimer points the one timer at the earliest entry of the heap.
func (c *coordinator) armTimer() {
	next, ok := c.timers.next()
	if !ok || next.Equal(c.armedAt) {
		return
	}
	c.armedAt = next
	c.timer.Reset(next.Sub(c.clock.Now()))
}

func (c *coordinator) hold(h *heldMsg) {
	c.held[h.seq] = h
	c.m.heldMessages.Set(float64(len(c.held)))
}

func (c *coordinator) release(ms []*heldMsg) {
	for _, h := range ms {
		delete(c.held, h.seq)
	}
	c.m.heldMessages.Set(float64(len(c.held)))
}

func (c *coordinator) enqueue(j *job) { c.queue = append(c.queue, j) }

// ackNow settles a message the coordinator decided on by itself (a commit with nothing open, a
// duplicate track). Ack is asynchronous, so it costs the coordinator no round trip.
func (c *coordinator) ackNow(in inbound, outcome string) {
	c.settler.settled.note(in.stream, in.seq)
	if err := in.msg.Ack(); err != nil {
		c.log.Warn("ack failed", "kind", in.kind, "event_key", in.key, "stream_seq", in.seq, "error", err)
		return
	}
	c.m.message(in.kind, outcome)
}

func (c *coordinator) onMessage(in inbound) {
	if in.control != nil {
		in.control(c) // a request of the source through its Sink (sink.go), in order with its messages
		return
	}
	log := c.log
	if in.fatal != nil {
		// Without metadata there is no stream sequence and no reply subject to settle it with;
		// the server redelivers it after AckWait until MaxDeliver.
		log.Error("message without JetStream metadata", "subject", in.msg.Subject(), "error", in.fatal)
		return
	}
	if in.delivered > 1 {
		c.m.redeliveries.WithLabelValues(string(in.kind)).Inc()
	}
	if _, ok := c.held[in.seq]; ok {
		// A redelivered copy of a message we hold: acks are keyed by stream sequence, so
		// settling the copy we have settles this one too. Keep one copy.
		log.Debug("redelivered copy of a held message", "event_key", in.key, "stream_seq", in.seq, "num_delivered", in.delivered)
		return
	}
	if (in.delivered > 1 || c.copiesAnywhere || c.cfg.partitioned) && c.settler.settled.has(in.stream, in.seq) {
		// A copy of a message settled lately (see settledSeqs). A consumer group's copy can
		// be a first delivery: pcgroups re-creates consumers when partitions move.
		log.Debug("copy of a settled message", "event_key", in.key, "stream_seq", in.seq, "num_delivered", in.delivered)
		c.ackNow(in, outcomeDuplicate)
		return
	}
	if in.delivered > 1 && c.noteRedelivery(in, in.received) {
		// The last piece a predecessor held is back: once it is in its window, flush what
		// the hold kept.
		defer c.resume(in.received)
	}
	h := &heldMsg{decoded: in.decoded, touched: in.received}
	if in.err != nil {
		reason := schema.ReasonOf(in.err)
		if reason == "" {
			reason = deadletter.ReasonInvalidMessage
		}
		c.hold(h)
		c.enqueue(&job{kind: jobDeadLetter, members: []*heldMsg{h}, reason: reason, detail: in.err.Error()})
		return
	}
	now := in.received
	if c.cfg.api == APIv2 {
		// Nothing to gather: every message is a call of its own, in its key's lane.
		if in.kind == schema.KindCommit {
			c.ackNow(in, outcomeIgnored)
			return
		}
		c.hold(h)
		c.addCall(h)
		return
	}
	switch in.kind {
	case schema.KindSend:
		c.hold(h)
		c.enqueue(&job{kind: jobSend, members: []*heldMsg{h}})
	case schema.KindCommit:
		w := c.windows[in.key]
		if w == nil {
			var end time.Time
			if c.rec.active(now) {
				end = c.rec.holding(now)
			}
			if end.IsZero() {
				c.ackNow(in, outcomeIgnored)
				return
			}
			w = c.keepLoneCommit(in.key, now, end)
		}
		c.hold(h)
		w.commits = append(w.commits, h)
		w.dueReached = true
		if w.track != nil {
			c.flushWhenFree(w, now)
		}
	case schema.KindTrack:
		w := c.windows[in.key]
		if w != nil && w.track != nil {
			if bytes.Equal(w.track.msg.Data(), in.msg.Data()) {
				// The same track published twice outside the duplicate window: one event.
				c.ackNow(in, outcomeDuplicate)
				return
			}
			c.hold(h)
			c.enqueue(&job{kind: jobDeadLetter, members: []*heldMsg{h}, reason: deadletter.ReasonDuplicateTrack,
				detail: fmt.Sprintf("a different track is already open for this key (stream sequence %d)", w.track.seq)})
			return
		}
		if n := len(in.track.Workflows); n > c.cfg.coalesce.MaxWorkflows {
			c.hold(h)
			c.enqueue(&job{kind: jobDeadLetter, members: []*heldMsg{h}, reason: deadletter.ReasonTooManyWorkflows,
				detail: fmt.Sprintf("the track carries %d workflows, more than coalesce.maxWorkflows (%d)", n, c.cfg.coalesce.MaxWorkflows)})
			return
		}
		if limit := c.cfg.coalesce.MaxBytes; requestEnvelope+in.size > limit {
			c.hold(h)
			c.enqueue(&job{kind: jobDeadLetter, members: []*heldMsg{h}, reason: deadletter.ReasonTooLarge,
				detail: fmt.Sprintf("the track alone makes a request of up to %d bytes, more than coalesce.maxBytes (%d)", requestEnvelope+in.size, limit)})
			return
		}
		if w == nil {
			w = c.open(in.key, now)
		}
		c.hold(h)
		w.track = h
		w.nWorkflows += len(in.track.Workflows)
		w.bytes += in.size
		c.slide(w, now)
		if w.dueReached {
			c.flushWhenFree(w, now)
		}
	case schema.KindWorkflow:
		w := c.windows[in.key]
		if w != nil && w.nWorkflows >= c.cfg.coalesce.MaxWorkflows {
			c.hold(h)
			c.enqueue(&job{kind: jobDeadLetter, members: []*heldMsg{h}, reason: deadletter.ReasonTooManyWorkflows,
				detail: fmt.Sprintf("the event already has coalesce.maxWorkflows (%d) workflows", c.cfg.coalesce.MaxWorkflows)})
			return
		}
		used := requestEnvelope
		if w != nil {
			used = w.bytes
		}
		if limit := c.cfg.coalesce.MaxBytes; used+in.size > limit {
			c.hold(h)
			c.enqueue(&job{kind: jobDeadLetter, members: []*heldMsg{h}, reason: deadletter.ReasonTooLarge,
				detail: fmt.Sprintf("the workflow would take the event's request to up to %d bytes, more than coalesce.maxBytes (%d)", used+in.size, limit)})
			return
		}
		if w == nil {
			w = c.open(in.key, now)
		}
		c.hold(h)
		w.workflows = append(w.workflows, h)
		w.nWorkflows++
		w.bytes += in.size
		c.slide(w, now)
	}
}

// open starts a window for key with its delay and orphan timers.
func (c *coordinator) open(key string, now time.Time) *window {
	cfg := c.cfg.coalesce
	c.gen++
	w := &window{key: key, gen: c.gen, opened: now, due: now.Add(cfg.Delay), bytes: requestEnvelope}
	c.windows[key] = w
	c.timers.add(timerEntry{at: w.due, key: key, gen: w.gen, kind: timerDue})
	c.timers.add(timerEntry{at: now.Add(cfg.OrphanTimeout), key: key, gen: w.gen, kind: timerOrphan})
	c.m.openWindows.Set(float64(len(c.windows)))
	return w
}

// slide pushes the close of a sliding window back by the delay, never past MaxDelay after it
// opened. The old timer entry stays in the heap and is skipped when it fires.
func (c *coordinator) slide(w *window, now time.Time) {
	cfg := c.cfg.coalesce
	if cfg.Mode != ModeSliding || w.dueReached {
		return
	}
	due := now.Add(cfg.Delay)
	if limit := w.opened.Add(cfg.MaxDelay); due.After(limit) {
		due = limit
	}
	if due.After(w.due) {
		w.due = due
		c.timers.add(timerEntry{at: due, key: w.key, gen: w.gen, kind: timerDue})
	}
}

func (c *coordinator) onTimer(now time.Time) {
	for {
		e, ok := c.timers.popDue(now)
		if !ok {
			return
		}
		switch e.kind {
		case timerCopy:
			c.retryCopies(now)
			continue
		case timerLane:
			c.laneWaitOver(e)
			continue
		case timerProbe:
			continue // the loop probes, when it may (pauseQueue)
		case timerLaneHold:
			c.laneHoldAt = time.Time{}
			c.advanceLanes()
			continue
		}
		w := c.windows[e.key]
		if w == nil || w.gen != e.gen {
			continue // the window was flushed or ended before this entry fired
		}
		switch e.kind {
		case timerDue:
			if !e.at.Equal(w.due) {
				continue // a sliding window moved its close later
			}
			if w.track == nil && len(w.workflows) == 0 {
				// Commits kept during a hold (see keepLoneCommit).
				if end := c.rec.holding(now); !end.IsZero() {
					w.due = end
					c.timers.add(timerEntry{at: end, key: w.key, gen: w.gen, kind: timerDue})
				} else {
					c.ignoreLoneCommits(w)
				}
				continue
			}
			w.dueReached = true
			if w.track != nil {
				c.flushWhenFree(w, now)
			}
		case timerOrphan:
			if w.track != nil {
				c.flushWhenFree(w, now)
				continue
			}
			if c.rec.active(now) {
				if end := c.heldUntil(w, now); !end.IsZero() {
					// Its track may be among what is still on its way back.
					c.timers.add(timerEntry{at: end, key: w.key, gen: w.gen, kind: timerOrphan})
					continue
				}
			}
			if len(w.workflows) == 0 {
				c.ignoreLoneCommits(w)
				continue
			}
			c.closeWindow(w)
			members := append(slices.Clone(w.workflows), w.commits...)
			c.enqueue(&job{kind: jobDeadLetter, members: members, reason: deadletter.ReasonMissingTrack,
				detail: fmt.Sprintf("no track arrived within coalesce.orphanTimeout (%s) of the first message", c.cfg.coalesce.OrphanTimeout)})
		}
	}
}

func (c *coordinator) closeWindow(w *window) {
	delete(c.windows, w.key)
	c.m.openWindows.Set(float64(len(c.windows)))
}

// flushWhenFree flushes w, which is due, or, while a recovery hold keeps it, moves its close to
// the end of the hold (see holds.go). Outside a hold it is flush.
func (c *coordinator) flushWhenFree(w *window, now time.Time) {
	if c.rec.active(now) {
		if end := c.heldUntil(w, now); !end.IsZero() {
			c.postpone(w, end)
			return
		}
	}
	c.flush(w, now)
}

// ignoreLoneCommits acks, as ignored, the commits of a window that holds nothing else once the
// hold that kept them is over, as they would have been at once outside it; a window kept longer
// would take a later event of the same key for theirs.
func (c *coordinator) ignoreLoneCommits(w *window) {
	c.closeWindow(w)
	c.settler.ackAll(w.commits, outcomeIgnored)
	c.release(w.commits)
}

// flush closes the window and queues its one API call.
func (c *coordinator) flush(w *window, now time.Time) {
	c.closeWindow(w)
	c.m.windowDuration.Observe(now.Sub(w.opened).Seconds())
	// Workflows go in stream order; redeliveries can arrive out of it.
	slices.SortFunc(w.workflows, func(a, b *heldMsg) int { return cmpSeq(a.seq, b.seq) })
	if excess := w.nWorkflows - c.cfg.coalesce.MaxWorkflows; excess > 0 {
		// The track's inline workflows arrived after workflow messages had filled the window:
		// the latest workflow messages make way.
		cut := max(0, len(w.workflows)-excess)
		for _, h := range w.workflows[cut:] {
			w.bytes -= h.size
		}
		c.enqueue(&job{kind: jobDeadLetter, members: slices.Clone(w.workflows[cut:]), reason: deadletter.ReasonTooManyWorkflows,
			detail: fmt.Sprintf("the event has more than coalesce.maxWorkflows (%d) workflows", c.cfg.coalesce.MaxWorkflows)})
		w.workflows = w.workflows[:cut]
	}
	if limit := c.cfg.coalesce.MaxBytes; w.bytes > limit {
		// Likewise when the track came after workflow messages had filled the window's bytes;
		// the track alone always fits (see onMessage).
		cut := len(w.workflows)
		for cut > 0 && w.bytes > limit {
			cut--
			w.bytes -= w.workflows[cut].size
		}
		c.enqueue(&job{kind: jobDeadLetter, members: slices.Clone(w.workflows[cut:]), reason: deadletter.ReasonTooLarge,
			detail: fmt.Sprintf("the event's request would exceed coalesce.maxBytes (%d bytes)", limit)})
		w.workflows = w.workflows[:cut]
	}
	members := make([]*heldMsg, 0, len(w.workflows)+len(w.commits)+1)
	members = append(members, w.workflows...)
	members = append(members, w.commits...)
	// The track goes last: acked last, so a crash part-way leaves it to be redelivered and
	// the event replayed under the same idempotency key.
	members = append(members, w.track)
	c.enqueue(&job{kind: jobFlush, members: members})
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// keepAlive tells the server we are still working on messages held longer than AckWait/2, so
// that it does not redeliver them (to us or to another bridge) while they wait.
func (c *coordinator) keepAlive(now time.Time) {
	if c.cfg.noKeepAlive {
		return
	}
	limit := c.cfg.ackWait / 2
	for _, h := range c.held {
		if now.Sub(h.touched) < limit {
			continue
		}
		h.touched = now
		if err := h.msg.InProgress(); err != nil {
			if !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				c.log.Warn("in-progress failed", "event_key", h.key, "stream_seq", h.seq, "error", err)
			}
			continue
		}
		c.m.inProgressSends.Inc()
	}
}

// shutdown hands every open window back, so that another bridge (or this one, restarted)
// rebuilds it whole from the redeliveries: sending it early would split an event whose pieces
// are published across a deploy. See handBack for a member on its last delivery.
func (c *coordinator) shutdown() {
	for _, w := range c.windows {
		c.closeWindow(w)
		members := append(slices.Clone(w.workflows), w.commits...)
		if w.track != nil {
			members = append(members, w.track)
		}
		c.handBack(members, decision{})
	}
	c.shutdownLanes()
	c.handBackKept()
	c.timers = nil
}
