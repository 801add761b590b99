package bridge

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestDeadLetterStreamOutage breaks the dead-letter stream while the bridge runs: it refuses
// writes (full, with discard new) or is gone. A message to dead-letter must then be naked and
// tried again, never terminated without its copy, valid traffic must keep flowing, and once the
// stream takes writes again the copy is stored and the original terminated. With a small
// MaxDeliver the outage outlasts the message's deliveries: on its last one a nak would make the
// server drop it, so the bridge must keep trying instead.
func TestDeadLetterStreamOutage(t *testing.T) {
	const dlqSubjects = "notifizz.dlq.*.*"
	full := func(e *env) {
		s, err := e.js.Stream(ctx, e.cfg.DeadLetter.Stream)
		require.NoError(e.t, err)
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
		_, err = e.js.UpdateStream(ctx, cfg)
		require.NoError(e.t, err)
		e.publishRaw("notifizz.dlq.filler.x", []byte(`{}`), nil)
	}
	unfull := func(e *env) {
		s, err := e.js.Stream(ctx, e.cfg.DeadLetter.Stream)
		require.NoError(e.t, err)
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs = -1
		_, err = e.js.UpdateStream(ctx, cfg)
		require.NoError(e.t, err)
	}
	deleted := func(e *env) { require.NoError(e.t, e.js.DeleteStream(ctx, e.cfg.DeadLetter.Stream)) }
	recreated := func(e *env) {
		// The operator recreates it; the bridge only provisions streams at start.
		_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.DeadLetter.Stream, Subjects: []string{dlqSubjects}, Storage: jetstream.MemoryStorage})
		require.NoError(e.t, err)
	}
	tests := []struct {
		name       string
		maxDeliver int
		breakIt    func(*env)
		fix        func(*env)
		before     uint64 // messages in the dead-letter stream before the copy
	}{
		{"refuses writes", 1000, full, unfull, 1},
		{"deleted", 1000, deleted, recreated, 0},
		{"refuses writes past the last delivery", 3, full, unfull, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tr := e.watchTerminations()
			maxDeliveries := e.countMaxDeliveries()
			r := e.start(func(c *Config) {
				c.Consumer.MaxDeliver = tt.maxDeliver
				c.Retry.NakInitial = 50 * time.Millisecond
			})
			tt.breakIt(e)

			seq := e.publishRaw("notifizz.track.bad", []byte(`{"eventName":`), nil)
			// Every delivery but the last is naked; the last one is kept and retried.
			naked := float64(min(tt.maxDeliver-1, 3))
			require.Eventually(t, func() bool {
				return r.counter(t, "notifizz_bridge_naks_total", nil) >= naked &&
					r.counter(t, "notifizz_bridge_redeliveries_total", nil) >= naked
			}, waitFor, pollEvery, "the message is naked and redelivered while the stream refuses its copy")
			_, terminated := tr.reason(seq)
			assert.False(t, terminated, "terminated without its copy")

			// Valid traffic is not held up by the outage.
			_, err := e.prod.Track(ctx, "good", "ev", nil)
			require.NoError(t, err)
			_, err = e.prod.Commit(ctx, "good")
			require.NoError(t, err)
			e.api.waitCalls(t, 1)

			tt.fix(e)
			e.waitTerminated(tr, seq, string(schema.ReasonInvalidJSON))
			dls := e.deadLetters(int(tt.before) + 1)
			d := dls[tt.before]
			assert.Equal(t, string(schema.ReasonInvalidJSON), d.Header.Get(deadletter.HeaderReason))
			assert.Equal(t, seqStr(seq), d.Header.Get(deadletter.HeaderOriginalSequence))
			e.settled(e.cfg)
			assert.Zero(t, maxDeliveries.Load(), "the server gave up on a message")
		})
	}
}

// TestDeadLetterTruncatedToMaxPayload publishes broken JSON just under the server's max payload:
// the stream takes it, but its dead-letter copy, with the dead-letter headers added, would not
// fit. The copy is stored with its body cut to fit and the original size in a header, and the
// original is terminated.
func TestDeadLetterTruncatedToMaxPayload(t *testing.T) {
	const maxPayload = 1 << 20
	e := newEnv(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	tr := e.watchTerminations()
	r := e.start(nil)

	body := append([]byte(`{"eventName":"`), bytes.Repeat([]byte("x"), maxPayload-15-len(`{"eventName":"`))...)
	seq := e.publishRaw("notifizz.track.big", body, nil)

	e.waitTerminated(tr, seq, string(schema.ReasonInvalidJSON))
	d := e.deadLetters(1)[0]
	assert.Equal(t, string(schema.ReasonInvalidJSON), d.Header.Get(deadletter.HeaderReason))
	assert.Equal(t, seqStr(seq), d.Header.Get(deadletter.HeaderOriginalSequence))
	assert.Equal(t, strconv.Itoa(len(body)), d.Header.Get(deadletter.HeaderTruncated))
	assert.NotEmpty(t, d.Data)
	assert.Less(t, len(d.Data), len(body))
	assert.True(t, bytes.HasPrefix(body, d.Data), "the copy's body is the start of the original")
	assert.Zero(t, r.counter(t, "notifizz_bridge_dead_letter_failures_total", nil))
	e.settled(e.cfg)
}

// TestDeadLetterCopiesWaitWithoutWorkers deletes the dead-letter stream and publishes more
// poison messages than there are workers, on a consumer that delivers each message twice: on
// their last delivery the messages wait for their copy without holding a worker, so valid
// traffic flows; the wait shows in the metrics and, after consumer.ackWait, in
// DeadLetterProblem. Once the stream is back, every copy is stored and every original
// terminated, and the server gave up on none.
func TestDeadLetterCopiesWaitWithoutWorkers(t *testing.T) {
	const poison = 6
	e := newEnv(t)
	tr := e.watchTerminations()
	maxDeliveries := e.countMaxDeliveries()
	r := e.start(func(c *Config) {
		c.MaxInFlight = 2
		c.Consumer.MaxDeliver = 2
		c.Consumer.AckWait = 2 * time.Second
	})
	require.NoError(t, e.js.DeleteStream(ctx, e.cfg.DeadLetter.Stream))

	var seqs []uint64
	for i := range poison {
		seqs = append(seqs, e.publishRaw(fmt.Sprintf("notifizz.track.bad-%d", i), []byte(`{"eventName":`), nil))
	}
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_dead_letters_waiting", nil) == poison
	}, waitFor, pollEvery, "every poison message waits for its copy on its last delivery")
	assert.GreaterOrEqual(t, r.counter(t, "notifizz_bridge_dead_letter_failures_total", nil), float64(2*poison))

	// More messages wait than there are workers: valid traffic flows all the same.
	_, err := e.prod.Track(ctx, "good", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "good")
	require.NoError(t, err)
	e.api.waitCalls(t, 1)

	var problem string
	require.Eventually(t, func() bool {
		problem = r.b.DeadLetterProblem()
		return problem != ""
	}, waitFor, pollEvery, "the outage shows in readiness after consumer.ackWait")
	assert.Contains(t, problem, e.cfg.DeadLetter.Stream)
	assert.Contains(t, problem, fmt.Sprintf("%d messages waiting", poison))
	for _, seq := range seqs {
		_, terminated := tr.reason(seq)
		assert.False(t, terminated, "stream sequence %d terminated without its copy", seq)
	}

	_, err = e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.DeadLetter.Stream, Subjects: []string{"notifizz.dlq.*.*"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	for _, seq := range seqs {
		e.waitTerminated(tr, seq, string(schema.ReasonInvalidJSON))
	}
	assert.Len(t, e.deadLetters(poison), poison)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_dead_letters_waiting", nil) == 0 && r.b.DeadLetterProblem() == ""
	}, waitFor, pollEvery, "readiness recovers once the copies are stored")
	e.settled(e.cfg)
	assert.Zero(t, maxDeliveries.Load(), "the server gave up on a message")
}

// TestDeadLetterCopyHandedBackAtShutdown stops the bridge while a rejected event, on its last
// delivery, waits for a dead-letter copy the stream cannot take. A nak would lose it, so it is
// published again to its subject with the idempotency key of its call, and the original
// terminated: the next bridge sends it under the same key.
func TestDeadLetterCopyHandedBackAtShutdown(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	maxDeliveries := e.countMaxDeliveries()
	e.api.setRespond(func(n int, _ apiCall) (int, map[string]string, string) {
		if n == 1 {
			return http.StatusBadRequest, nil, `{"error":"rejected"}`
		}
		return http.StatusOK, nil, `{"ok":true}`
	})
	mod := func(c *Config) {
		c.Consumer.MaxDeliver = 1
		c.ShutdownTimeout = time.Second
	}
	r := e.start(mod)
	require.NoError(t, e.js.DeleteStream(ctx, e.cfg.DeadLetter.Stream))

	ack, err := e.prod.Track(ctx, "rejected", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "rejected")
	require.NoError(t, err)
	first := e.api.waitCalls(t, 1)[0].idempotencyKey()
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_dead_letters_waiting", nil) == 2
	}, waitFor, pollEvery, "the track and the commit wait for their copies")
	r.stop(t)

	e.waitTerminated(tr, ack.Sequence, "requeued")
	s, err := e.js.Stream(ctx, e.cfg.Stream.Name)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(ctx, "notifizz.track.rejected")
	require.NoError(t, err)
	assert.Greater(t, m.Sequence, ack.Sequence, "published again")
	assert.Equal(t, first, m.Header.Get(deadletter.HeaderIdempotencyKey))

	e.start(nil) // provisions the dead-letter stream again
	calls := e.api.waitCalls(t, 2)
	assert.Equal(t, first, calls[1].idempotencyKey(), "the event reaches the API under its first key")
	e.settled(e.cfg)
	assert.Zero(t, maxDeliveries.Load(), "the server gave up on a message")
}

// TestDeadLetterCopyDropsPublishDirectives: a message published with an expectation for its
// stream (here the last sequence of its subject) is stored there, but the same expectation on
// its dead-letter copy would make the dead-letter stream refuse it on every attempt. The copy
// leaves the producer's directives behind and is stored.
func TestDeadLetterCopyDropsPublishDirectives(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.start(nil)
	first := e.publishRaw("notifizz.track.expect", []byte(`{"eventName":"ev","properties":{}}`), nil)
	hdr := nats.Header{}
	hdr.Set(jetstream.ExpectedLastSubjSeqHeader, seqStr(first))
	seq := e.publishRaw("notifizz.track.expect", []byte(`{"eventName":`), hdr)
	dl := e.deadLetters(1)
	assert.Equal(t, "invalid_json", dl[0].Header.Get(deadletter.HeaderReason))
	assert.Empty(t, dl[0].Header.Get(jetstream.ExpectedLastSubjSeqHeader), "the producer's expectation is not carried")
	e.waitTerminated(tr, seq, "invalid_json")
}

// TestDeadLetterProblemForgetsOldFailures: /readyz reports failing copies while they keep
// failing, not forever after one failure whose message was then settled elsewhere.
func TestDeadLetterProblemForgetsOldFailures(t *testing.T) {
	b := &Bridge{cfg: DefaultConfig()}
	hourAgo := time.Now().Add(-time.Hour).UnixNano()
	b.copies.failingSince.Store(hourAgo)
	b.copies.lastFailure.Store(hourAgo)
	assert.Empty(t, b.DeadLetterProblem(), "one failure an hour ago, no attempt since")
	b.copies.lastFailure.Store(time.Now().UnixNano())
	assert.Contains(t, b.DeadLetterProblem(), "failing for 1h0m0s", "failing since an hour, and again just now")
}

// countMaxDeliveries counts the server's advisories of messages it gave up on after
// consumer.maxDeliver deliveries, from now until the end of the test.
func (e *env) countMaxDeliveries() *atomic.Int64 {
	e.t.Helper()
	var n atomic.Int64
	sub, err := e.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", func(*nats.Msg) { n.Add(1) })
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return &n
}
