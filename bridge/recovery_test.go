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
	e := newEnv(t)
	e.cfg.Consumer.AckWait = 2 * time.Second
	b, err := New(e.cfg, e.js, e.client())
	require.NoError(t, err)
	c := b.coordinator()
	start := time.Now()
	c.startRecovery(&jetstream.ConsumerInfo{NumAckPending: 1, Delivered: jetstream.SequenceInfo{Stream: 10}}, nil, start)
	c.holdUntil(start.Add(4 * time.Second)) // a pin moved here
	// The one message pending at start comes back.
	c.noteRedelivery(inbound{decoded: decoded{seq: 5, delivered: 2}}, start.Add(1600*time.Millisecond))
	assert.Equal(t, start.Add(4*time.Second), c.rec.holding(start.Add(1600*time.Millisecond)), "the takeover hold still runs")
	assert.True(t, c.rec.holding(start.Add(4*time.Second)).IsZero(), "and ends when it should")
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
