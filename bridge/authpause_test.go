package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// authAPI drives the fake API through a pause: it refuses the key with status while refusing
// is set, then accepts every call. It counts the calls that arrive while the bridge says it is
// paused and the most of them in flight at once, and the calls it accepted, by event.
type authAPI struct {
	refusing atomic.Bool
	status   int
	paused   func() bool // whether the bridge under test is paused

	// armed: the calls in flight when the pause began have been answered; from then on
	// every arrival counts.
	armed         atomic.Bool
	inFlight      atomic.Int32
	maxPaused     atomic.Int32
	pausedArrived atomic.Int32

	mu       sync.Mutex
	accepted map[string]int // by event: the track's eventName or the send's path
}

func newAuthAPI(e *env, status int) *authAPI {
	a := &authAPI{status: status, accepted: map[string]int{}}
	a.refusing.Store(true)
	e.api.mu.Lock()
	e.api.onArrive = func() {
		n := a.inFlight.Add(1)
		if a.armed.Load() && a.paused() {
			a.pausedArrived.Add(1)
			for {
				old := a.maxPaused.Load()
				if n <= old || a.maxPaused.CompareAndSwap(old, n) {
					break
				}
			}
		}
	}
	e.api.mu.Unlock()
	e.api.setRespond(func(_ int, c apiCall) (int, map[string]string, string) {
		defer a.inFlight.Add(-1)
		if a.refusing.Load() {
			return a.status, nil, `{"error":"invalid sdk key"}`
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		event := c.Path
		if name, ok := c.Body["eventName"].(string); ok {
			event = name
		}
		a.accepted[event]++
		return http.StatusOK, nil, `{"ok":true}`
	})
	return a
}

// arm starts counting the calls made during the pause, once those that were in flight when it
// began have been answered.
func (a *authAPI) arm(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return a.inFlight.Load() == 0 }, waitFor, pollEvery, "calls in flight at the start of the pause")
	a.armed.Store(true)
}

func (a *authAPI) acceptedCalls() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int, len(a.accepted))
	for k, v := range a.accepted {
		out[k] = v
	}
	return out
}

// TestAuthRejectionPausesInsteadOfDeadLettering: an API that answers 401 (a rotated key) used to
// turn every event into an api_rejected dead letter within seconds. The bridge pauses instead:
// nothing is dead-lettered, it says why it is not ready, the pause shows in the metrics, it makes
// one call at a time meanwhile, and it holds on to messages on their last delivery rather than
// lose them (consumer.maxDeliver is 3, and the pause lasts until every message has been delivered
// that often). Once the API accepts the key, every event is delivered exactly once and the bridge
// is ready again.
func TestAuthRejectionPausesInsteadOfDeadLettering(t *testing.T) {
	e := newEnv(t)
	e.cfg.Consumer.MaxDeliver = 3
	e.cfg.Coalesce.Delay = 100 * time.Millisecond // tracks alone: nothing to coalesce
	e.cfg.Retry.NakInitial = 50 * time.Millisecond
	e.cfg.Retry.NakMax = 400 * time.Millisecond
	a := newAuthAPI(e, http.StatusUnauthorized)
	var logs logBuffer
	r := e.start(nil, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	a.paused = func() bool { return r.b.AuthProblem() != "" }

	const tracks, sends = 20, 5
	for i := range tracks {
		_, err := e.prod.Track(ctx, fmt.Sprintf("k%d", i), fmt.Sprintf("ev%d", i), map[string]any{"i": i})
		require.NoError(t, err)
	}
	for i := range sends {
		_, err := e.prod.Send(ctx, fmt.Sprintf("s%d", i), fmt.Sprintf("n%d", i),
			map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "u@example.com"}}})
		require.NoError(t, err)
	}
	const n = tracks + sends

	require.Eventually(t, func() bool { return r.b.AuthProblem() != "" }, waitFor, pollEvery, "the bridge pauses")
	assert.Contains(t, r.b.AuthProblem(), "status 401")
	a.arm(t)
	assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_api_auth_paused", nil))

	// Every message is delivered maxDeliver times (but the probe's candidate, which may be
	// kept at fewer): a pause that naked a message on its last delivery would lose it, and one
	// that dead-lettered it would show in the dead-letter stream.
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_redeliveries_total", nil) >= float64(2*n-2)
	}, waitFor, pollEvery, "messages redelivered up to their last delivery during the pause")
	require.Eventually(t, func() bool { return a.pausedArrived.Load() >= 3 }, waitFor, pollEvery, "probes during the pause")
	assert.Zero(t, e.dlqCount(), "nothing dead-lettered during the pause")
	assert.NotEmpty(t, r.b.AuthProblem())
	assert.GreaterOrEqual(t, r.counter(t, "notifizz_bridge_api_auth_failures_total", map[string]string{"status": "401"}), 1.0)

	a.refusing.Store(false)
	require.Eventually(t, func() bool { return len(a.acceptedCalls()) == n }, waitFor, pollEvery, "every event delivered once the key works")
	e.settled(e.cfg)
	for event, count := range a.acceptedCalls() {
		assert.Equal(t, 1, count, "event %s accepted once", event)
	}
	assert.Zero(t, e.dlqCount(), "nothing dead-lettered")
	assert.LessOrEqual(t, a.maxPaused.Load(), int32(1), "at most one call in flight during the pause")
	assert.Empty(t, r.b.AuthProblem(), "ready again")
	assert.Equal(t, 0.0, r.counter(t, "notifizz_bridge_api_auth_paused", nil))
	assert.Zero(t, r.counter(t, "notifizz_bridge_dead_letters_total", nil))

	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, "refuses the bridge's key"), "the pause is logged once:\n%s", out)
	assert.Equal(t, 1, strings.Count(out, "accepts the bridge's key again"), "and its end once")
	assert.NotContains(t, out, testSDKKey)
	assert.NotContains(t, out, "api call failed", "no line per refused call")
}

// TestAuthForbiddenPausesV2: a 403 pauses the v2 profile too, for every kind of call, and
// briefly: the calls are made once the API accepts the key, nothing is dead-lettered.
func TestAuthForbiddenPausesV2(t *testing.T) {
	e := newEnv(t)
	e.cfg.API = APIv2
	e.cfg.Retry.NakInitial = 50 * time.Millisecond
	e.cfg.Retry.NakMax = 400 * time.Millisecond
	a := newAuthAPI(e, http.StatusForbidden)
	r := e.start(nil)
	a.paused = func() bool { return r.b.AuthProblem() != "" }

	e.publishRaw("notifizz.track.t1", []byte(`{"eventName":"order_paid","properties":{"orderId":"ORD-1"}}`), nil)
	e.publishRaw("notifizz.identify.i1", []byte(`{"environmentId":"env_1","subjectA":{"type":"email","identifier":"a@example.com"},`+
		`"subjectB":{"type":"user","identifier":"u_1"},"consentBasis":"contract"}`), nil)
	e.publishRaw("notifizz.subscribe.s1", []byte(`{"resourceId":"doc-1","subscriberId":"u_1"}`), nil)
	e.publishRaw("notifizz.unsubscribe.s2", []byte(`{"resourceId":"doc-2","subscriberId":"u_2"}`), nil)

	require.Eventually(t, func() bool { return r.b.AuthProblem() != "" }, waitFor, pollEvery, "the bridge pauses")
	assert.Contains(t, r.b.AuthProblem(), "status 403")
	a.arm(t)
	require.Eventually(t, func() bool { return a.pausedArrived.Load() >= 1 }, waitFor, pollEvery, "a probe during the pause")
	a.refusing.Store(false)

	require.Eventually(t, func() bool { return len(a.acceptedCalls()) == 4 }, waitFor, pollEvery, "every call made once the key works")
	e.settled(e.cfg)
	assert.Equal(t, map[string]int{
		"order_paid": 1, "/identity/identify": 1, "/subscriptions/doc-1/subscribe": 1, "/subscriptions/doc-2/unsubscribe": 1,
	}, a.acceptedCalls())
	assert.Zero(t, e.dlqCount())
	assert.LessOrEqual(t, a.maxPaused.Load(), int32(1), "at most one call in flight during the pause")
	assert.Empty(t, r.b.AuthProblem())
	assert.GreaterOrEqual(t, r.counter(t, "notifizz_bridge_api_auth_failures_total", map[string]string{"status": "403"}), 1.0)
}

// TestBadRequestStillDeadLetters: a 4xx other than 401 and 403 is about the event, not the key:
// it is dead-lettered api_rejected after one call, and the bridge does not pause.
func TestBadRequestStillDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.cfg.Coalesce.Delay = 100 * time.Millisecond
	tr := e.watchTerminations()
	e.api.setRespond(func(int, apiCall) (int, map[string]string, string) {
		return http.StatusBadRequest, nil, `{"error":"bad event"}`
	})
	r := e.start(nil)

	ack, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	e.waitTerminated(tr, ack.Sequence, string(deadletter.ReasonAPIRejected))
	dls := e.deadLetters(1)
	assert.Equal(t, "400", dls[0].Header.Get(deadletter.HeaderAPIStatus))
	assert.Len(t, e.api.snapshot(), 1, "one call")
	assert.Empty(t, r.b.AuthProblem(), "not paused")
	assert.Equal(t, 0.0, r.counter(t, "notifizz_bridge_api_auth_paused", nil))
	assert.Zero(t, r.counter(t, "notifizz_bridge_api_auth_failures_total", nil))
}

// dispatch runs the coordinator's queue as its run loop does, one job at a time: the pause
// first sets its calls aside and picks the probe, then a worker runs the head of the queue.
func (h *harness) dispatch() {
	for {
		if h.c.pause.on {
			h.c.pauseQueue(h.clock.Now())
		}
		if len(h.c.queue) == 0 {
			return
		}
		j := h.c.queue[0]
		h.c.queue = h.c.queue[1:]
		h.c.dispatched(j)
		h.c.calls.execute(context.Background(), j)
		h.c.finished(j, h.clock.Now())
	}
}

// TestPauseProbesAndKeepsLastDeliveries walks a pause step by step on a fake clock: the first
// 401 pauses and keeps its call as the next probe, the other calls are naked with a delay, a
// probe is made when its wait is over and the wait doubles when it fails, a call on its last
// delivery is kept rather than naked or dead-lettered, and when a probe succeeds what was kept
// is sent.
func TestPauseProbesAndKeepsLastDeliveries(t *testing.T) {
	h := newHarness(t, func(cfg *Config) { cfg.Consumer.MaxDeliver = 3 })
	h.c.pause.health = &h.b.auth // as Bridge.coordinator wires it
	h.api.err = &notifizz.APIError{Endpoint: "track", StatusCode: http.StatusUnauthorized, Body: `{"error":"bad key"}`}
	deliver := func(m *memMsg) *memMsg {
		h.c.onMessage(h.inbound(m))
		return m
	}
	advance := func(d time.Duration) {
		h.clock.Advance(d)
		h.c.onTimer(h.clock.Now())
		h.dispatch()
	}
	var msgs []*memMsg
	for i := range 4 {
		msgs = append(msgs, deliver(h.msg("track", fmt.Sprintf("k%d", i), trackBody)))
	}
	advance(time.Second) // the windows close

	require.Len(t, h.api.trackCalls(), 1, "the first 401 pauses: no other call is made")
	assert.Contains(t, h.b.AuthProblem(), "status 401")
	assert.Equal(t, 1.0, h.counter("notifizz_bridge_api_auth_paused", nil))
	assert.Empty(t, msgs[0].settled(), "the refused call is kept for the probe")
	for _, m := range msgs[1:] {
		if assert.Len(t, m.settled(), 1) {
			assert.True(t, strings.HasPrefix(m.settled()[0], "nak "), "naked with a delay: %v", m.settled())
			d, err := time.ParseDuration(strings.TrimPrefix(m.settled()[0], "nak "))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, d, h.cfg.Retry.NakInitial, "no sooner than the probe")
		}
	}

	advance(999 * time.Millisecond)
	assert.Len(t, h.api.trackCalls(), 1, "no probe before its wait (retry.nakInitial)")
	advance(time.Millisecond)
	assert.Len(t, h.api.trackCalls(), 2, "the probe: the kept call, made again")
	assert.Empty(t, msgs[0].settled(), "refused again, kept again")

	// A call on its last delivery is kept rather than naked: the server would not deliver it
	// again.
	last := h.msg("track", "k1", trackBody)
	last.meta.Sequence.Stream = msgs[1].meta.Sequence.Stream
	last.meta.NumDelivered = 3
	deliver(last)
	advance(time.Second) // its window closes; the probe waits 2s now
	assert.Len(t, h.api.trackCalls(), 2)
	assert.Empty(t, last.settled(), "kept on its last delivery")

	h.api.err = nil
	advance(time.Second) // the probe's doubled wait is over
	assert.Empty(t, h.b.AuthProblem(), "resumed")
	assert.Equal(t, 0.0, h.counter("notifizz_bridge_api_auth_paused", nil))
	assert.Equal(t, []string{"ack"}, msgs[0].settled())
	assert.Equal(t, []string{"ack"}, last.settled(), "what the pause kept is sent when it ends")
	assert.Len(t, h.api.trackCalls(), 4)
	assert.Empty(t, h.deadLetters())
	assert.Equal(t, 2.0, h.counter("notifizz_bridge_api_auth_failures_total", map[string]string{"status": "401"}))
}

// TestPauseHandsBackAtShutdown: at shutdown the calls a pause kept are handed back as open
// windows are: naked, or, on the last delivery, published again to their subject.
func TestPauseHandsBackAtShutdown(t *testing.T) {
	h := newHarness(t, func(cfg *Config) { cfg.Consumer.MaxDeliver = 3 })
	h.api.err = &notifizz.APIError{Endpoint: "track", StatusCode: http.StatusForbidden}
	first := h.msg("track", "k0", trackBody)
	last := h.msg("track", "k1", trackBody)
	last.meta.NumDelivered = 3
	h.c.onMessage(h.inbound(first))
	h.c.onMessage(h.inbound(last))
	h.clock.Advance(time.Second)
	h.c.onTimer(h.clock.Now())
	h.dispatch()
	require.True(t, h.c.pause.on)
	require.Len(t, h.c.pause.kept, 2, "the probe's candidate and the call on its last delivery")
	assert.Empty(t, first.settled())
	assert.Empty(t, last.settled())

	h.c.draining = true
	h.c.shutdown()
	assert.Equal(t, []string{"nak"}, first.settled(), "handed back")
	assert.Equal(t, []string{"term requeued"}, last.settled(), "published again, then terminated")
	if pub := h.pub.published(); assert.Len(t, pub, 1) {
		assert.Equal(t, last.subject, pub[0].Subject, "to its own subject")
		assert.Empty(t, pub[0].Header.Get(deadletter.HeaderReason), "not a dead letter")
	}
	assert.Empty(t, h.c.held)
}
