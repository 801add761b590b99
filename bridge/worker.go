package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// deadLetterTimeout bounds one dead-letter publish; a slow publish is tried again later.
const deadLetterTimeout = 5 * time.Second

type jobKind uint8

const (
	jobFlush jobKind = iota
	jobSend
	jobDeadLetter
	jobCall // one message, one call of the v2 profile, made in its key's lane (lanes.go)
)

// job is one unit of work for a worker. members are settled in order; for a flush the track is
// the last member.
type job struct {
	kind    jobKind
	members []*heldMsg
	reason  deadletter.Reason // jobDeadLetter
	detail  string            // jobDeadLetter

	// copy is set on a jobDeadLetter that tries again to store copies that failed: the
	// decision they were made with and the wait before the next attempt (see awaitCopies).
	copy *copyRetry
	// waiting is set by the worker: the members whose copy could not be stored on their last
	// delivery, with the decision to store them with. The coordinator keeps holding them and
	// tries again later, so that no worker waits for the dead-letter stream.
	waiting []*heldMsg
	waitFor decision
	waitErr error
	// again is set by the worker on a jobCall whose message was naked: the server delivers it
	// again, and its lane waits for it.
	again bool
	// paused is set by the worker on a call the API refused with 401 or 403: it is left
	// unsettled for the coordinator, whose pause decides what becomes of it (authpause.go).
	paused bool
	// probe is set by the coordinator on the one call a paused bridge makes to see whether
	// the API accepts its key again.
	probe bool
}

// execute runs one job to the end: the API call, the decision, and the settling of every
// member. A worker never returns a job unsettled: what cannot be settled otherwise is naked, or,
// when it is on its last delivery and its dead-letter copy could not be stored, left in
// j.waiting for the coordinator to keep.
func (w *caller) execute(ctx context.Context, j *job) {
	var span trace.Span
	if w.tracer != nil && j.kind != jobDeadLetter {
		ctx, span = w.tracer.start(ctx, j)
	}
	var d decision
	switch j.kind {
	case jobDeadLetter:
		d = decision{action: actDeadLetter, reason: j.reason, detail: j.detail}
		if j.copy != nil {
			d = j.copy.d
		}
	case jobFlush:
		key, err := w.callTrack(ctx, j)
		// The most delivered member decides: once any of them is on its last delivery, the
		// event is dead-lettered whole rather than left with a member the server gave up on.
		var delivered uint64
		for _, h := range j.members {
			delivered = max(delivered, h.delivered)
		}
		d = decide(err, ctx.Err() != nil, delivered, w.backoff, rand.Float64())
		d.key = key
	case jobSend:
		h := j.members[0]
		key, err := w.callSend(ctx, h)
		d = decide(err, ctx.Err() != nil, h.delivered, w.backoff, rand.Float64())
		d.key = key
		if d.action == actDeadLetter && d.status == http.StatusNotFound {
			d.detail += "; " + msgSendGone
		}
	case jobCall:
		h := j.members[0]
		key, err := w.callV2(ctx, h)
		d = decide(err, ctx.Err() != nil, h.delivered, w.backoff, rand.Float64())
		d.key = key
	}
	j.waitFor = d
	if d.action == actPause {
		j.paused = true // settled by the coordinator (authpause.go)
		if span != nil {
			w.tracer.end(span, d, nil)
		}
		return
	}
	j.waiting, j.waitErr = w.settler.settle(ctx, j.members, d)
	if span != nil {
		w.tracer.end(span, d, j.waitErr)
	}
	// A dead letter whose copy could not be stored is naked, but on its last delivery.
	j.again = d.action == actNak || d.action == actDeadLetter && j.waitErr != nil && len(j.waiting) == 0
}

// trackRequest builds the one API request of a flushed window: the track's inline workflows,
// then each workflow message in stream order. The recipients of every workflow share one
// backing array: one allocation per request rather than one per workflow.
func trackRequest(members []*heldMsg) notifizz.TrackRequest {
	track := members[len(members)-1]
	t := track.track
	n, nr := len(t.Workflows), 0
	for i := range t.Workflows {
		nr += len(t.Workflows[i].Recipients)
	}
	for _, h := range members {
		if h.workflow != nil {
			n++
			nr += len(h.workflow.Recipients)
		}
	}
	wfs := make([]notifizz.Workflow, 0, n)
	rs := make([]notifizz.Recipient, 0, nr)
	for i := range t.Workflows {
		wfs, rs = appendWorkflow(wfs, rs, &t.Workflows[i])
	}
	for _, h := range members {
		if h.workflow != nil {
			wfs, rs = appendWorkflow(wfs, rs, h.workflow)
		}
	}
	return notifizz.TrackRequest{EventName: t.EventName, Properties: t.Properties, Workflows: wfs, IdempotencyKey: trackKey(track)}
}

// trackKey is the idempotency key of the event whose track is h: the track's idempotencyKey,
// else the key its Notifizz-Idempotency-Key header carries (a replayed dead letter), else the
// one the SDKs derive from the event's declared idempotencyFields (catalog.events), else one
// derived from where the track sits in the stream.
func trackKey(h *heldMsg) string {
	if h.track.IdempotencyKey != "" {
		return h.track.IdempotencyKey
	}
	if h.headerKey != "" {
		return h.headerKey
	}
	if h.catalogKey != "" {
		return h.catalogKey
	}
	return deriveKey("track", h.stream, h.key, h.seq)
}

// sendKey is the idempotency key of the send h: the key its Notifizz-Idempotency-Key header
// carries (a replayed dead letter), else its Nats-Msg-Id when that is a valid key by the rules
// of a track's idempotencyKey (it travels in a header too), else one derived from where it sits
// in the stream.
func sendKey(h *heldMsg) string {
	if h.headerKey != "" {
		return h.headerKey
	}
	if key := h.msg.Headers().Get(jetstream.MsgIDHeader); schema.ValidIdempotencyKey(key) {
		return key
	}
	return deriveKey("send", h.stream, h.key, h.seq)
}

// idempotencyKeyOf returns the value of the Notifizz-Idempotency-Key header of m when it is a
// valid key (what a track's idempotencyKey may be: 1 to schema.MaxIdempotencyKeyLen bytes of
// printable ASCII), and whether the header was there at all.
func idempotencyKeyOf(m jetstream.Msg) (key string, present bool) {
	h := m.Headers()
	if h == nil {
		return "", false
	}
	v, ok := h[deadletter.HeaderIdempotencyKey]
	if !ok || len(v) == 0 {
		return "", false
	}
	if !schema.ValidIdempotencyKey(v[0]) {
		return "", true
	}
	return v[0], true
}

// APIWorkflow is w as the bridge hands it to the Notifizz client, for callers that make the call
// themselves (the load command's baseline).
func APIWorkflow(w *schema.Workflow) notifizz.Workflow {
	wfs, _ := appendWorkflow(nil, make([]notifizz.Recipient, 0, len(w.Recipients)), w)
	return wfs[0]
}

// appendWorkflow appends w to wfs, its recipients taken from the end of rs, which has room for
// them.
func appendWorkflow(wfs []notifizz.Workflow, rs []notifizz.Recipient, w *schema.Workflow) ([]notifizz.Workflow, []notifizz.Recipient) {
	start := len(rs)
	for _, r := range w.Recipients {
		rs = append(rs, notifizz.Recipient{ID: r.ID, Email: r.Email, Extra: r.Extra})
	}
	return append(wfs, notifizz.Workflow{CampaignID: w.CampaignID, Recipients: rs[start:len(rs):len(rs)]}), rs
}

// deriveKey is the idempotency key of a message that brought none: a hash of where the message
// sits in the stream, so it is the same on every redelivery, restart and replica.
func deriveKey(domain, stream, key string, seq uint64) string {
	// Built on the stack and hashed with Sum256, so that only the returned string is allocated.
	var buf [256]byte
	b := append(buf[:0], domain...)
	b = append(b, 0)
	b = append(b, stream...)
	b = append(b, 0)
	b = append(b, key...)
	b = append(b, 0)
	b = strconv.AppendUint(b, seq, 10)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// callTrack makes the track call of a flushed window and returns the idempotency key it used.
func (w *caller) callTrack(ctx context.Context, j *job) (string, error) {
	req := trackRequest(j.members)
	w.m.workflowsFlush.Observe(float64(len(req.Workflows)))
	return req.IdempotencyKey, w.call(ctx, "track", func(ctx context.Context) error { return w.api.TrackEvent(ctx, req) })
}

// callSend makes the call of a send message and returns the idempotency key it used.
func (w *caller) callSend(ctx context.Context, h *heldMsg) (string, error) {
	key := sendKey(h)
	return key, w.call(ctx, "send", func(ctx context.Context) error {
		_, err := w.api.Send(ctx, h.send.NotifID, h.send.Properties, notifizz.WithIdempotencyKey(key))
		return err
	})
}

// call waits for the rate limiter, makes the call and records its metrics.
func (w *caller) call(ctx context.Context, endpoint string, f func(context.Context) error) error {
	if w.limiter != nil {
		if err := w.limiter.Wait(ctx); err != nil {
			return err
		}
	}
	start := time.Now()
	err := f(ctx)
	w.m.apiLatency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	w.m.apiCall(endpoint, err)
	return err
}

// statusAttr is the API status of a decision for a log line, or nothing when no call answered
// (a message refused before any call, a network error).
func statusAttr(status int) slog.Attr {
	if status == 0 {
		return slog.Attr{}
	}
	return slog.Int("status", status)
}

// settle carries out a decision on every member, in order. It returns the members whose
// dead-letter copy could not be stored on their last delivery, with the last error: they are
// neither naked nor terminated, and the caller must keep them until their copy is stored.
func (s *settler) settle(ctx context.Context, members []*heldMsg, d decision) (waiting []*heldMsg, err error) {
	last := members[len(members)-1]
	switch d.action {
	case actAck:
		if d.detail != "" {
			s.log.Warn("api accepted the call but its response body is unreadable; messages acked",
				"kind", last.kind, "event_key", last.key, "stream_seq", last.seq, statusAttr(d.status), "error", d.detail)
		}
		s.ackAll(members, outcomeAcked)
	case actNak:
		s.log.Warn("api call failed; messages will be redelivered",
			"kind", last.kind, "event_key", last.key, "stream_seq", last.seq, "num_delivered", last.delivered,
			statusAttr(d.status), "delay", d.delay, "error", d.detail)
		s.nakAll(members, d.delay)
	case actDeadLetter:
		return s.deadLetterAll(ctx, members, d)
	}
	return nil, nil
}

// ackAll acks every message and counts it under outcome, noting them as settled first.
func (s *settler) ackAll(members []*heldMsg, outcome string) {
	s.settled.noteAll(members)
	for _, h := range members {
		if err := h.msg.Ack(); err != nil {
			// The message will be redelivered, and its copy acked (see settledSeqs).
			s.log.Warn("ack failed", "kind", h.kind, "event_key", h.key, "stream_seq", h.seq, "error", err)
			continue
		}
		s.m.message(h.kind, outcome)
	}
}

// nakAll naks every message, with a delay when it is positive.
func (s *settler) nakAll(members []*heldMsg, delay time.Duration) {
	for _, h := range members {
		var err error
		if delay > 0 {
			err = h.msg.NakWithDelay(delay)
		} else {
			err = h.msg.Nak()
		}
		if err != nil {
			// The server redelivers it after AckWait all the same.
			s.log.Warn("nak failed", "kind", h.kind, "event_key", h.key, "stream_seq", h.seq, "error", err)
			continue
		}
		s.m.naks.Inc()
		s.m.message(h.kind, outcomeNaked)
	}
}

// deadLetterAll copies each message to the dead-letter stream and terminates the original only
// once the copy is stored. A message whose copy could not be stored is naked, to be copied on a
// later delivery, unless it is on its last delivery: the server would not deliver it again, so
// it is returned among waiting, to be tried again without holding the worker (see
// coordinator.awaitCopies). Nothing is terminated or naked on its last delivery without a copy.
func (s *settler) deadLetterAll(ctx context.Context, members []*heldMsg, d decision) (waiting []*heldMsg, lastErr error) {
	for _, h := range members {
		if err := s.deadLetter(ctx, h, d); err != nil {
			s.m.deadLetterFailures.Inc()
			s.noteCopyFailure(err)
			lastErr = err
			if s.lastDelivery(h) {
				s.log.Error("dead-letter publish failed on the last delivery; the message is held and the copy tried again",
					"kind", h.kind, "event_key", h.key, "stream_seq", h.seq, "reason", d.reason, "error", err)
				waiting = append(waiting, h)
				continue
			}
			s.log.Error("dead-letter publish failed; message naked",
				"kind", h.kind, "event_key", h.key, "stream_seq", h.seq, "reason", d.reason, "error", err)
			s.nakAll([]*heldMsg{h}, s.nakInitial)
			continue
		}
		s.noteCopyStored()
		s.log.Warn("message dead-lettered", "kind", h.kind, "event_key", h.key, "stream_seq", h.seq,
			"num_delivered", h.delivered, "reason", d.reason, statusAttr(d.status), "error", d.detail)
		s.m.deadLetters.WithLabelValues(string(d.reason)).Inc()
		s.m.message(h.kind, outcomeDeadLettered)
		s.settled.note(h.stream, h.seq)
		if err := h.msg.TermWithReason(string(d.reason)); err != nil {
			// The redelivery this causes is acked (see settledSeqs), its copy being stored.
			s.log.Warn("term failed", "event_key", h.key, "stream_seq", h.seq, "error", err)
		}
	}
	return waiting, lastErr
}

// lastDelivery reports whether the server will not deliver h again after a nak.
func (s *settler) lastDelivery(h *heldMsg) bool {
	return s.maxDeliver > 0 && h.delivered >= uint64(s.maxDeliver)
}

// deadLetter publishes the dead-letter copy of one message and waits for the stream's ack.
func (s *settler) deadLetter(ctx context.Context, h *heldMsg, d decision) error {
	l := deadletter.Letter{
		Subject: s.deadLetterSubject(h), ID: deadletter.MsgID(h.stream, h.seq),
		Reason: d.reason, Error: d.detail, OriginalSubject: h.msg.Subject(), OriginalSequence: h.seq,
		Deliveries: h.delivered, APIStatus: d.status, IdempotencyKey: usedKey(h, d),
		Header: h.msg.Headers(), Data: h.msg.Data(),
	}
	return s.publishDeadLetter(ctx, l.Msg())
}

// publishDeadLetter publishes a dead-letter copy to the dead-letter stream, cut to fit the
// server's max payload, and waits for its ack.
func (s *settler) publishDeadLetter(ctx context.Context, m *nats.Msg) error {
	// Set here rather than by the publish option, so that the size below counts it.
	m.Header.Set(jetstream.ExpectedStreamHeader, s.dlqStream)
	deadletter.Fit(m, s.maxPayload())
	ctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	_, err := s.pub.PublishMsg(ctx, m)
	return err
}

// usedKey is the idempotency key a dead letter records: the one the call used when there was
// a call, else the one a track or a send would be sent under.
func usedKey(h *heldMsg, d decision) string {
	switch {
	case d.key != "":
		return d.key
	case h.track != nil:
		return trackKey(h)
	case h.send != nil:
		return sendKey(h)
	}
	return ""
}

// deadLetterSubject is <prefix>.<kind>.<key>; a message whose subject could not be parsed has
// neither, and goes to <prefix>.unknown.<stream sequence>.
func (s *settler) deadLetterSubject(h *heldMsg) string {
	p := s.dlqPrefix
	if h.kind == "" || h.key == "" {
		return deadletter.UnknownSubject(p, strconv.FormatUint(h.seq, 10))
	}
	return deadletter.Subject(p, h.kind, h.key)
}
