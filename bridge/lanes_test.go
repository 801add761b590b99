package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// The lanes of the v2 profile on the coordinator alone (lanes.go); TestV2CallsOfOneKeyInStreamOrder
// checks them end to end.

func newV2Harness(t *testing.T) *harness {
	return newHarness(t, func(c *Config) {
		c.API = APIv2
		c.Consumer.AckWait = 10 * time.Second
	})
}

func (h *harness) subscribe(key, id string) *memMsg {
	return h.msg("subscribe", key, `{"resourceId":"`+key+`","subscriberId":"`+id+`"}`)
}

func (h *harness) unsubscribe(key, id string) *memMsg {
	return h.msg("unsubscribe", key, `{"resourceId":"`+key+`","subscriberId":"`+id+`"}`)
}

var errUnavailable = &notifizz.APIError{Endpoint: "subscribe", StatusCode: 503}

func TestLaneWaitsForTheNakedCall(t *testing.T) {
	h := newV2Harness(t)
	h.api.err = errUnavailable
	sub := h.deliver(h.subscribe("r", "u1"))
	require.Len(t, sub.settled(), 1)
	assert.Regexp(t, `^nak \d`, sub.settled()[0], "a failed call is naked with a delay")

	h.api.err = nil
	unsub := h.deliver(h.unsubscribe("r", "u1"))
	other := h.deliver(h.subscribe("s", "u9"))
	assert.Equal(t, []string{"subscribe r u1", "subscribe s u9"}, h.api.v2Calls(),
		"the unsubscribe waits for the subscribe before it; another key does not")
	assert.Empty(t, unsub.settled())
	assert.Equal(t, []string{"ack"}, other.settled())

	again := h.deliver(redelivery(sub))
	assert.Equal(t, []string{"subscribe r u1", "subscribe s u9", "subscribe r u1", "unsubscribe r u1"}, h.api.v2Calls())
	assert.Equal(t, []string{"ack"}, again.settled())
	assert.Equal(t, []string{"ack"}, unsub.settled())
	assert.Empty(t, h.c.lanes, "idle lanes are forgotten")
	assert.Empty(t, h.c.held)
}

func TestLaneGoesOnWhenTheNakedCallStaysAway(t *testing.T) {
	h := newV2Harness(t)
	h.api.err = errUnavailable
	h.deliver(h.subscribe("r", "u1"))
	h.api.err = nil
	unsub := h.deliver(h.unsubscribe("r", "u1"))
	h.advance(2 * h.cfg.Retry.NakInitial) // more than the nak's delay, less than an ack wait more
	assert.Empty(t, unsub.settled(), "still waiting")
	h.advance(h.cfg.Consumer.AckWait)
	assert.Equal(t, []string{"ack"}, unsub.settled(), "the wait is bounded")
	assert.Equal(t, []string{"subscribe r u1", "unsubscribe r u1"}, h.api.v2Calls())
}

func TestLanesHandedBackAtShutdownAndRelease(t *testing.T) {
	h := newV2Harness(t)
	h.api.err = errUnavailable
	h.deliver(h.subscribe("r", "u1"))
	h.deliver(h.subscribe("s", "u2"))
	h.api.err = nil
	r := h.deliver(h.unsubscribe("r", "u1"))
	s := h.deliver(h.unsubscribe("s", "u2"))

	assert.Equal(t, 1, h.c.releaseWindows(false, func(key string) bool { return key == "s" }))
	assert.Equal(t, []string{"nak"}, s.settled(), "a released key's waiting call goes back at once")
	assert.Empty(t, r.settled())

	h.c.shutdown()
	assert.Equal(t, []string{"nak"}, r.settled(), "shutdown hands the waiting calls back")
	assert.Empty(t, h.c.lanes)
	assert.Empty(t, h.c.held)
	assert.Equal(t, []string{"subscribe r u1", "subscribe s u2"}, h.api.v2Calls(), "no call made out of order")
}

func TestV2CommitIgnoredAndWorkflowRefused(t *testing.T) {
	h := newV2Harness(t)
	commit := h.commit("k")
	assert.Equal(t, []string{"ack"}, commit.settled())
	wf := h.workflow("k", "c")
	assert.Equal(t, []string{"term unsupported"}, wf.settled())
	assert.Equal(t, []string{"unsupported 2"}, h.deadLetters())
	assert.Empty(t, h.c.windows)
}

// TestLanesWaitForWhatAPredecessorHeld: after a crash, the calls the dead bridge held come back
// on their ack timers, after later calls of the same keys; no lane starts a call until they are
// back, so each key's calls still go out in stream order.
func TestLanesWaitForWhatAPredecessorHeld(t *testing.T) {
	h := newV2Harness(t)
	held := h.subscribe("r", "u1") // the predecessor pulled it and died
	h.c.startRecovery(&jetstream.ConsumerInfo{NumAckPending: 1, Delivered: jetstream.SequenceInfo{Stream: held.meta.Sequence.Stream}}, nil, h.clock.Now())
	unsub := h.deliver(h.unsubscribe("r", "u1"))
	other := h.deliver(h.subscribe("s", "u9"))
	assert.Empty(t, h.api.v2Calls(), "no lane starts while what the predecessor held may come back")
	assert.Empty(t, unsub.settled())

	again := h.deliver(redelivery(held))
	var ofR []string
	for _, c := range h.api.v2Calls() {
		if strings.Contains(c, " r ") {
			ofR = append(ofR, c)
		}
	}
	assert.Equal(t, []string{"subscribe r u1", "unsubscribe r u1"}, ofR, "once it is back, the key's calls in stream order")
	assert.Contains(t, h.api.v2Calls(), "subscribe s u9")
	assert.Equal(t, []string{"ack"}, again.settled())
	assert.Equal(t, []string{"ack"}, unsub.settled())
	assert.Equal(t, []string{"ack"}, other.settled())
}

// TestLanesGoOnWhenTheHoldRunsOut: what never comes back holds the lanes only until the hold's
// time bound.
func TestLanesGoOnWhenTheHoldRunsOut(t *testing.T) {
	h := newV2Harness(t)
	until := h.c.rec.start(1, 1000, h.clock.Now())
	sub := h.deliver(h.subscribe("r", "u1"))
	h.advance(until.Sub(h.clock.Now()) - time.Millisecond)
	assert.Empty(t, sub.settled(), "held")
	h.advance(time.Millisecond)
	assert.Equal(t, []string{"ack"}, sub.settled(), "the hold ran out: the lane goes on")
	assert.Equal(t, []string{"subscribe r u1"}, h.api.v2Calls())
}

// TestLanesFollowTheStartHoldWhenItShortens: when what the predecessor held is back on its ack
// timers, the start hold ends sooner than its bound (a quarter of AckWait past AckWait from the
// start) and the lanes go on then, even when the last message back makes no call (a commit,
// which v2 ignores).
func TestLanesFollowTheStartHoldWhenItShortens(t *testing.T) {
	h := newV2Harness(t)
	start := h.clock.Now()
	held := h.msg("commit", "x", "") // the predecessor pulled it and died
	h.c.startRecovery(&jetstream.ConsumerInfo{NumAckPending: 1, Delivered: jetstream.SequenceInfo{Stream: held.meta.Sequence.Stream}}, nil, start)
	sub := h.deliver(h.subscribe("r", "u1"))
	h.advance(h.cfg.Consumer.AckWait) // it comes back on its ack timer
	h.deliver(redelivery(held))
	end := start.Add(h.cfg.Consumer.AckWait + h.cfg.Consumer.AckWait/4)
	require.Equal(t, end, h.c.rec.startUntil, "the hold now ends a quarter of AckWait past AckWait from the start")
	assert.Empty(t, sub.settled())
	h.advance(end.Sub(h.clock.Now()))
	assert.Equal(t, []string{"ack"}, sub.settled(), "the lane went on when the shortened hold ended")
}
