package group

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/heldback"
)

// TestHoldEnd: the windows are held until the last member's hold ends; ended holds are dropped.
func TestHoldEnd(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := newStaticMode()
	assert.True(t, st.holdEnd(t0).IsZero(), "no hold")
	st.holds["m1"] = t0.Add(5 * time.Second)
	st.holds["m2"] = t0.Add(3 * time.Second)
	st.holds["m3"] = t0.Add(-time.Second)
	assert.Equal(t, t0.Add(5*time.Second), st.holdEnd(t0))
	assert.NotContains(t, st.holds, "m3", "an ended hold is dropped")
	delete(st.holds, "m1") // m1's messages are back
	assert.Equal(t, t0.Add(3*time.Second), st.holdEnd(t0), "m2's hold still runs")
	assert.True(t, st.holdEnd(t0.Add(3*time.Second)).IsZero())
	assert.Empty(t, st.holds)
}

// holdSink records the holds a member asks of the bridge.
type holdSink struct {
	holdingSink
	holds       []time.Time
	redelivered []time.Time
}

func (s *holdSink) HoldUntil(t time.Time)       { s.holds = append(s.holds, t) }
func (s *holdSink) HoldRedelivered(t time.Time) { s.redelivered = append(s.redelivered, t) }

// coverMember is a static member "a" of a group with "b", with a sink that records its holds.
func coverMember() (*Member, *holdSink) {
	sink := &holdSink{}
	return &Member{
		cfg:    Config{Mode: Static, Member: "a", Members: []string{"a", "b"}, AckWait: 5 * time.Second, FailoverAfter: 5 * time.Second},
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		static: newStaticMode(),
		sink:   sink,
	}, sink
}

// TestCoverHoldEndsOnItsCount: the hold of the pin taken from a dead member ends when the last
// message it held is back; a later pin of the same member (after a standby held it) is held
// for its own reasons, which the old count does not end.
func TestCoverHoldEndsOnItsCount(t *testing.T) {
	s, sink := coverMember()
	s.static.lastBeat["b"] = time.Now()
	s.static.awaited["b"] = heldback.Await(2, 10)
	s.pinned("b", false)
	require.Len(t, sink.holds, 1)
	assert.True(t, sink.holds[0].After(time.Now()), "held from the takeover pin on")
	s.cameBack("b", 3)
	s.cameBack("b", 12) // published after the takeover
	assert.Len(t, sink.holds, 1, "one of the two is back")
	s.cameBack("b", 7)
	require.Len(t, sink.holds, 2)
	assert.True(t, sink.holds[1].IsZero(), "the last one is back: the hold ends")

	// The pin moves to a standby and back: a new hold, and no stale count to end it.
	s.static.awaited["b"] = heldback.Await(1, 10)
	s.pinned("b", false)
	require.Len(t, sink.holds, 3)
	assert.True(t, sink.holds[2].After(time.Now()))
	assert.NotContains(t, s.static.awaited, "b", "the count was of the takeover's pin")
	s.cameBack("b", 5)
	assert.Len(t, sink.holds, 3, "the later pin's hold runs its course")
}

// TestFirstPinHoldsRedelivered: a member's first pin, when nobody held the pin at its start,
// holds only the windows with a redelivered piece.
func TestFirstPinHoldsRedelivered(t *testing.T) {
	s, sink := coverMember()
	s.pinned("a", true)
	assert.Empty(t, sink.holds, "no hold of every window")
	require.Len(t, sink.redelivered, 1)
	assert.True(t, sink.redelivered[0].After(time.Now().Add(s.cfg.AckWait)), "for 1.25 x ackWait")

	s.static.boundPinned = true // another instance held the pin at its start
	s.pinned("a", true)
	assert.Len(t, sink.holds, 1, "every window held, as at a start after a crash")
}
