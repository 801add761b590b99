package bridge

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			var maxDeliveries atomic.Int64
			sub, err := e.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", func(*nats.Msg) { maxDeliveries.Add(1) })
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Unsubscribe() })
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
			_, err = e.prod.Track(ctx, "good", "ev", nil)
			require.NoError(t, err)
			_, err = e.prod.Commit(ctx, "good")
			require.NoError(t, err)
			e.api.waitCalls(t, 1)

			tt.fix(e)
			e.waitTerminated(tr, seq, string(schema.ReasonInvalidJSON))
			dls := e.deadLetters(int(tt.before) + 1)
			d := dls[tt.before]
			assert.Equal(t, string(schema.ReasonInvalidJSON), d.Header.Get(HeaderReason))
			assert.Equal(t, seqStr(seq), d.Header.Get(HeaderOriginalSequence))
			e.settled(e.cfg)
			assert.Zero(t, maxDeliveries.Load(), "the server gave up on a message")
		})
	}
}
