package bridge

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrashMidEventKeepsWorkflowsTogether is what a SIGKILL in the middle of an event looks
// like to the next bridge: the dead one had received the track and a workflow, and never
// settled them; the rest of the event (another workflow, the commit) is published after the
// crash. The new bridge gets those at once, while the track and the first workflow come back
// only after AckWait. The commit has already made the window due, so flushing when the track
// comes back would leave out the workflow right behind it: the bridge holds its windows until
// what its predecessor held is back.
func TestCrashMidEventKeepsWorkflowsTogether(t *testing.T) {
	e := newEnv(t)
	e.cfg.Consumer.AckWait = time.Second
	e.cfg.Coalesce.Delay = 300 * time.Millisecond
	// Provision the stream and the durable consumer as the dead bridge had them.
	e.start(nil).stop(t)

	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	e.die(2)

	_, err = e.prod.Workflow(ctx, "k1", "c2", recipients("u2")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)

	e.start(nil)
	calls := e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1, "one call for the event")
	assert.Equal(t, []string{"c1", "c2"}, workflowIDs(calls[0]), "both workflows in the one call")
	assert.Zero(t, e.dlqCount(), "no workflow left behind as missing_track")
}

// TestCrashBeforeTrackKeepsWorkflowsTogether is the same crash with the workflow published
// before the track: the dead bridge held only the workflow, and the new one gets the track, a
// second workflow and the commit at once, all first deliveries. Nothing in that window says a
// piece is missing; only the hold at start keeps it from flushing without the first workflow.
func TestCrashBeforeTrackKeepsWorkflowsTogether(t *testing.T) {
	e := newEnv(t)
	e.cfg.Consumer.AckWait = time.Second
	e.cfg.Retry.NakMax = time.Second
	e.cfg.Coalesce.Delay = 300 * time.Millisecond
	e.start(nil).stop(t)

	_, err := e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	e.die(1)
	_, err = e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c2", recipients("u2")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)

	e.start(nil)
	calls := e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1, "one call for the event")
	assert.Equal(t, []string{"c1", "c2"}, workflowIDs(calls[0]), "both workflows in the one call")
	assert.Zero(t, e.dlqCount(), "no workflow left behind as missing_track")
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
