package bridge

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrashKeepsEventsWhole is what a SIGKILL in the middle of an event looks like to the next
// bridge: the dead one pulled the first pieces of an event and never settled them, and the rest
// of it is published after the crash. The new bridge gets those at once, while the dead one's
// pieces come back only after AckWait: it holds its windows until they are back, so the event
// goes out in one call with both workflows, and no piece is left behind as missing_track.
func TestCrashKeepsEventsWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before is published and pulled by the dead bridge, after is published after it died.
		before, after []string
		// commit is the outcome of the commit: with the track held by the dead bridge, a
		// commit that comes first is kept for its event during the hold, and acked with it.
		commit string
	}{
		// The commit makes the window due; flushing when the track comes back would leave
		// out the workflow right behind it.
		{name: "track and a workflow held", before: []string{"track", "c1"}, after: []string{"c2", "commit"}, commit: outcomeAcked},
		// Nothing in the new bridge's window says a piece is missing: the workflow was
		// published before the track.
		{name: "an early workflow held", before: []string{"c1"}, after: []string{"track", "c2", "commit"}, commit: outcomeAcked},
		// The commit finds nothing open: outside a hold it would be acked alone, and the
		// event sent only after its delay.
		{name: "the whole event held", before: []string{"track", "c1", "c2"}, after: []string{"commit"}, commit: outcomeAcked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cfg.Consumer.AckWait = time.Second
			e.cfg.Retry.NakMax = time.Second
			e.cfg.Coalesce.Delay = 300 * time.Millisecond
			// Provision the stream and the durable consumer as the dead bridge had them.
			e.start(nil).stop(t)

			publish := func(piece string) {
				t.Helper()
				var err error
				switch piece {
				case "track":
					_, err = e.prod.Track(ctx, "k1", "ev", nil)
				case "commit":
					_, err = e.prod.Commit(ctx, "k1")
				default:
					_, err = e.prod.Workflow(ctx, "k1", piece, recipients("u-"+piece)...)
				}
				require.NoError(t, err)
			}
			for _, p := range tc.before {
				publish(p)
			}
			e.die(len(tc.before))
			for _, p := range tc.after {
				publish(p)
			}

			r := e.start(nil)
			calls := e.api.waitCalls(t, 1)
			e.settled(e.cfg)
			assert.Len(t, e.api.snapshot(), 1, "one call for the event")
			assert.Equal(t, []string{"c1", "c2"}, workflowIDs(calls[0]), "both workflows in the one call")
			assert.Zero(t, e.dlqCount(), "no workflow left behind as missing_track")
			assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": tc.commit}),
				"the commit %s", tc.commit)
		})
	}
}

// TestCommitAloneDuringHoldIsIgnored: a commit kept during the hold at start whose event never
// comes is acked as ignored once its window's orphan timeout passes, as it would have been at
// once outside the hold; it is not dead-lettered.
func TestCommitAloneDuringHoldIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.cfg.Consumer.AckWait = time.Second
	e.cfg.Retry.NakMax = time.Second
	e.start(nil).stop(t)
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	e.die(1)
	_, err = e.prod.Commit(ctx, "k2")
	require.NoError(t, err)

	r := e.start(nil)
	e.api.waitCalls(t, 1)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": outcomeIgnored}) == 1
	}, waitFor, pollEvery, "the lone commit was not acked as ignored")
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1, "k1 sent, nothing for k2")
	assert.Zero(t, e.dlqCount(), "no dead letter")
}

// TestLoneCommitEndsWithTheHold: a late commit of an event that went out before a crash is kept
// during the hold, in case its event's pieces are on their way back, and let go when the hold
// ends. A new event of the same key published afterwards is its own: its track does not land in
// a window the stale commit made due, and it is sent with its workflow.
func TestLoneCommitEndsWithTheHold(t *testing.T) {
	e := newEnv(t)
	e.cfg.Consumer.AckWait = time.Second
	e.cfg.Retry.NakMax = time.Second
	e.cfg.Coalesce.Delay = 300 * time.Millisecond
	e.cfg.Coalesce.OrphanTimeout = 30 * time.Second
	e.start(nil).stop(t)
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	e.die(1)
	_, err = e.prod.Commit(ctx, "k2") // of an event of k2 sent before the crash
	require.NoError(t, err)

	r := e.start(nil)
	e.api.waitCalls(t, 1)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": outcomeIgnored}) == 1
	}, waitFor, pollEvery, "the stale commit was kept past the hold")

	_, err = e.prod.Track(ctx, "k2", "ev2", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k2", "c1", recipients("u1")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k2")
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 2)
	e.settled(e.cfg)
	assert.Equal(t, []string{"c1"}, workflowIDs(calls[1]), "k2's new event with its workflow")
	assert.Zero(t, e.dlqCount(), "no dead letter")
}

// TestTakeoverHoldOutlastsStartHold: the hold armed when a pin moves here is apart from the hold
// at start, whose count of returning messages must not cut it short.
func TestTakeoverHoldOutlastsStartHold(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Consumer.AckWait = 2 * time.Second })
	c := h.c
	start := h.clock.Now()
	c.startRecovery(&jetstream.ConsumerInfo{NumAckPending: 1, Delivered: jetstream.SequenceInfo{Stream: 10}}, nil, start)
	c.holdUntil(start.Add(4 * time.Second)) // a pin moved here
	// The one message pending at start comes back.
	c.noteRedelivery(inbound{decoded: decoded{seq: 5, delivered: 2}}, start.Add(1600*time.Millisecond))
	assert.Equal(t, start.Add(4*time.Second), c.rec.holding(start.Add(1600*time.Millisecond)), "the takeover hold still runs")
	assert.True(t, c.rec.holding(start.Add(4*time.Second)).IsZero(), "and ends when it should")
}

// TestRecovery checks the decisions of the recovery value alone: no coordinator, no clock.
func TestRecovery(t *testing.T) {
	const ackWait, nakMax = 4 * time.Second, 8 * time.Second
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	t.Run("no hold", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		assert.False(t, r.active(t0))
		assert.True(t, r.holding(t0).IsZero())
		assert.True(t, r.heldUntil(t0, true).IsZero())
		assert.False(t, r.counting())
		assert.Equal(t, returnNothing, r.noteReturn(1, t0))
		assert.False(t, r.endStart(), "no start hold to end")
	})
	t.Run("start hold ends when the last pending message is back", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		until := r.start(2, 10, t0)
		assert.Equal(t, at(nakMax+ackWait/4), until, "at most the longest return and a quarter of AckWait")
		assert.True(t, r.active(at(time.Second)))
		assert.Equal(t, until, r.holding(at(time.Second)))
		assert.Equal(t, until, r.heldUntil(at(time.Second), false))
		assert.Equal(t, returnNothing, r.noteReturn(11, at(time.Second)), "published after the start: not one of them")
		assert.Equal(t, returnNothing, r.noteReturn(5, at(time.Second)))
		assert.Equal(t, returnNothing, r.noteReturn(5, at(time.Second)), "the same one twice counts once")
		assert.True(t, r.counting())
		assert.Equal(t, returnEnded, r.noteReturn(7, at(time.Second)), "back early, on their naks: over")
		assert.False(t, r.active(at(time.Second)))
		assert.False(t, r.counting())
	})
	t.Run("back on their ack timers, the hold lasts AckWait and a quarter", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		r.start(1, 10, t0)
		assert.Equal(t, returnExtended, r.noteReturn(3, at(ackWait/2)))
		assert.Equal(t, at(ackWait+ackWait/4), r.holding(at(ackWait/2)))
		assert.True(t, r.holding(at(ackWait+ackWait/4)).IsZero())
	})
	t.Run("back after AckWait and a quarter: over", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		r.start(1, 10, t0)
		assert.Equal(t, returnEnded, r.noteReturn(3, at(ackWait+ackWait/4)))
		assert.False(t, r.active(at(ackWait+ackWait/4)))
	})
	t.Run("the hold runs out before they are all back", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		until := r.start(2, 10, t0)
		assert.False(t, r.active(until))
		assert.Equal(t, returnNothing, r.noteReturn(3, until))
		assert.False(t, r.counting(), "stopped counting")
	})
	t.Run("endStart", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		r.start(2, 10, t0)
		assert.True(t, r.endStart())
		assert.False(t, r.active(t0))
		assert.False(t, r.counting())
	})
	t.Run("reconnect holds only redelivered windows", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		assert.False(t, r.reconnected(0, t0), "the count as at start")
		assert.True(t, r.reconnected(1, t0))
		assert.False(t, r.reconnected(1, at(time.Second)), "the same reconnect")
		assert.True(t, r.active(at(time.Second)))
		assert.True(t, r.reconnecting(at(time.Second)))
		assert.True(t, r.holding(at(time.Second)).IsZero(), "not every window")
		assert.True(t, r.heldUntil(at(time.Second), false).IsZero(), "first deliveries flow on")
		assert.Equal(t, at(ackWait), r.heldUntil(at(time.Second), true))
		assert.False(t, r.active(at(ackWait)))
	})
	t.Run("redelivered windows", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		assert.True(t, r.holdRedelivered(at(10*time.Second)), "a first pin")
		assert.False(t, r.holdRedelivered(at(5*time.Second)), "never shortened")
		assert.True(t, r.reconnected(1, t0))
		assert.Equal(t, at(10*time.Second), r.heldUntil(t0, true), "a reconnect does not cut the first pin's hold short")
		assert.True(t, r.heldUntil(t0, false).IsZero(), "first deliveries flow on")
		assert.True(t, r.reconnected(2, at(8*time.Second)))
		assert.Equal(t, at(8*time.Second+ackWait), r.heldUntil(at(8*time.Second), true), "a later reconnect extends it")
	})
	t.Run("pin", func(t *testing.T) {
		r := newRecovery(ackWait, nakMax)
		assert.Equal(t, pinLater, r.pin(at(5*time.Second), t0))
		assert.Equal(t, pinSame, r.pin(at(5*time.Second), t0))
		assert.Equal(t, at(5*time.Second), r.holding(t0))
		assert.Equal(t, at(5*time.Second), r.heldUntil(t0, true))
		assert.False(t, r.endStart(), "a pin is not the start hold")
		assert.True(t, r.active(t0))
		assert.Equal(t, pinSooner, r.pin(at(3*time.Second), t0), "the member saw what it awaited come back")
		assert.Equal(t, at(3*time.Second), r.holding(t0))
		assert.Equal(t, pinSooner, r.pin(time.Time{}, t0), "the zero time ends it")
		assert.False(t, r.active(t0))
		assert.Equal(t, pinSame, r.pin(time.Time{}, t0))
		r.pin(at(time.Second), t0)
		assert.Equal(t, pinSame, r.pin(time.Time{}, at(2*time.Second)), "a hold already over is not ended")
	})
}

// TestWindowStartHold: with a predecessor's message pending at start, a committed window waits,
// and flushes, whole, as soon as that message is back.
func TestWindowStartHold(t *testing.T) {
	h := newHarness(t, nil)
	h.c.startRecovery(&jetstream.ConsumerInfo{NumAckPending: 1, Delivered: jetstream.SequenceInfo{Stream: 1}}, nil, h.clock.Now())
	held := h.msg("track", "k1", trackBody) // the predecessor pulled it and died
	wf := h.workflow("k1", "c1")
	cm := h.commit("k1")
	other := h.commit("k2") // finds nothing open: kept during the hold
	h.advance(h.cfg.Coalesce.Delay)
	assert.Empty(t, h.api.trackCalls(), "held")
	assert.Empty(t, cm.settled())
	assert.Empty(t, other.settled())

	h.advance(time.Second)
	h.deliver(redelivery(held))
	require.Len(t, h.api.trackCalls(), 1, "flushed once the pending message is back")
	assert.Equal(t, []string{"c1"}, campaigns(h.api.trackCalls()[0]))
	assert.Equal(t, []string{"ack"}, wf.settled())
	assert.Equal(t, []string{"ack"}, cm.settled())
	assert.Equal(t, []string{"ack"}, other.settled(), "the lone commit let go when the hold ended")
	assert.Equal(t, 1.0, h.counter("notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": outcomeIgnored}))
	assert.Empty(t, h.c.windows)
}

// TestWindowTakeoverHoldEndsEarly: a group member that took a consumer over holds the windows
// until the latest its previous holder's messages can be back, and ends the hold sooner once it
// has seen them all: what the hold postponed flushes then, and a commit kept alone is let go.
func TestWindowTakeoverHoldEndsEarly(t *testing.T) {
	h := newHarness(t, nil)
	h.c.holdUntil(h.clock.Now().Add(time.Minute))
	held := h.msg("track", "k1", trackBody) // the dead member pulled it
	wf := h.workflow("k1", "c1")
	cm := h.commit("k1")
	other := h.commit("k2") // finds nothing open: kept during the hold
	h.advance(h.cfg.Coalesce.Delay)
	h.deliver(redelivery(held))
	assert.Empty(t, h.api.trackCalls(), "held until the member says the hold ends")
	assert.Empty(t, cm.settled())

	h.c.holdUntil(h.clock.Now().Add(time.Second)) // another takeover's hold still runs a second
	h.work()
	assert.Empty(t, h.api.trackCalls(), "shortened, not ended")
	h.c.holdUntil(time.Time{})
	h.work()
	require.Len(t, h.api.trackCalls(), 1, "flushed when the hold ended")
	assert.Equal(t, []string{"c1"}, campaigns(h.api.trackCalls()[0]))
	assert.Equal(t, []string{"ack"}, wf.settled())
	assert.Equal(t, []string{"ack"}, cm.settled())
	assert.Equal(t, []string{"ack"}, other.settled(), "the lone commit let go when the hold ended")
	assert.False(t, h.c.rec.active(h.clock.Now()))
}

// TestWindowFirstPinHoldsRedelivered: after a static member's first pin, a window holding a
// piece another instance handed back (a redelivery) waits until its siblings can be back, even
// when its commit comes first; a window of first deliveries flushes as usual.
func TestWindowFirstPinHoldsRedelivered(t *testing.T) {
	h := newHarness(t, nil)
	h.c.holdRedelivered(h.clock.Now().Add(5 * time.Second))
	handedBack := h.msg("track", "k1", trackBody) // the cover held it, and naked it on giving back
	h.deliver(redelivery(handedBack))
	h.workflow("k1", "c1")
	h.commit("k1") // delivered before the cover's nak of k1's second workflow reached the server
	fresh := h.track("k2", trackBody)
	h.commit("k2")
	assert.Equal(t, []string{"ack"}, fresh.settled(), "first deliveries flow on")
	require.Len(t, h.api.trackCalls(), 1)
	late := h.msg("workflow", "k1", `{"campaignId":"c2","recipients":[{"id":"u","email":"u@example.com"}]}`)
	h.deliver(redelivery(late))
	h.advance(5*time.Second - time.Millisecond)
	assert.Len(t, h.api.trackCalls(), 1, "k1 waits for what may still come back")
	h.advance(time.Millisecond)
	require.Len(t, h.api.trackCalls(), 2)
	assert.Equal(t, []string{"c1", "c2"}, campaigns(h.api.trackCalls()[1]), "k1 whole")
}

// TestWindowReconnectHoldsRedelivered: after a reconnect, a window holding a redelivered piece
// waits AckWait; a window of first deliveries flushes as usual.
func TestWindowReconnectHoldsRedelivered(t *testing.T) {
	h := newHarness(t, nil)
	var reconnects uint64
	h.c.reconnects = func() uint64 { return reconnects }
	fresh := h.track("k1", trackBody)
	old := h.msg("track", "k2", trackBody)
	reconnects++
	h.deliver(redelivery(old))
	h.commit("k1")
	h.commit("k2")
	assert.Equal(t, []string{"ack"}, fresh.settled(), "first deliveries flow on")
	require.Len(t, h.api.trackCalls(), 1)
	h.advance(h.cfg.Consumer.AckWait - time.Millisecond)
	assert.Len(t, h.api.trackCalls(), 1, "the redelivered window waits AckWait")
	h.advance(time.Millisecond)
	assert.Len(t, h.api.trackCalls(), 2)
}

// die plays a bridge that pulls n messages from the durable consumer and dies without settling
// them: the server redelivers them only after AckWait.
func (e *env) die(n int) {
	e.t.Helper()
	cons, err := e.js.Consumer(ctx, e.cfg.Stream.Name, e.cfg.Consumer.Durable)
	require.NoError(e.t, err)
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(e.t, err)
	got := 0
	for range batch.Messages() {
		got++
	}
	require.NoError(e.t, batch.Error())
	require.Equal(e.t, n, got)
}
