package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// Unit tests of window behaviour: a coordinator wired to in-memory messages, API and publisher
// and a fake clock, driven from the test's goroutine (or, for run, with its own). No server;
// each runs in milliseconds. The end-to-end tests (bridge_test.go) check the same behaviour
// against a real nats-server.

// harness drives one coordinator. deliver hands it a message as the consumer would, advance
// moves the clock and fires its due timers, and both then run what it queued as its workers
// would, on the test's goroutine, so that every check sees the settled result.
type harness struct {
	t     *testing.T
	cfg   Config
	b     *Bridge
	c     *coordinator
	clock *fakeClock
	api   *memAPI
	pub   *memPublisher
	reg   *prometheus.Registry
	seq   uint64
}

func newHarness(t *testing.T, configure func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Coalesce.Delay = time.Second
	cfg.Coalesce.OrphanTimeout = 10 * time.Second
	cfg.MaxInFlight = 2
	if configure != nil {
		configure(&cfg)
	}
	h := &harness{t: t, cfg: cfg, clock: newFakeClock(), api: &memAPI{}, pub: &memPublisher{}, reg: prometheus.NewRegistry()}
	b, err := New(cfg, stubJS{}, h.api, WithRegisterer(h.reg))
	require.NoError(t, err)
	b.settler.pub = h.pub
	b.settler.maxPayload = func() int64 { return 1 << 20 }
	h.b = b
	h.c = newCoordinator(newCoordinatorConfig(cfg), b.settler, b.calls, b.log, h.clock)
	return h
}

// msg returns a message of kind for key, the next in the stream, on its first delivery.
func (h *harness) msg(kind, key, body string) *memMsg {
	h.seq++
	return &memMsg{
		subject: h.cfg.Stream.SubjectPrefix + "." + kind + "." + key, data: []byte(body), record: true,
		meta: jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: h.seq}, NumDelivered: 1, Stream: h.cfg.Stream.Name},
	}
}

// redelivery returns another copy of m, delivered once more.
func redelivery(m *memMsg) *memMsg {
	cp := &memMsg{subject: m.subject, data: m.data, hdr: m.hdr, meta: m.meta, record: true}
	cp.meta.NumDelivered++
	return cp
}

// inbound decodes m as the consumer's goroutine does, received now.
func (h *harness) inbound(m *memMsg) inbound {
	in := h.b.decode(m)
	in.received = h.clock.Now()
	return in
}

// deliver hands m to the coordinator and runs what it queued.
func (h *harness) deliver(m *memMsg) *memMsg {
	h.c.onMessage(h.inbound(m))
	h.work()
	return m
}

func (h *harness) track(key, body string) *memMsg { return h.deliver(h.msg("track", key, body)) }
func (h *harness) commit(key string) *memMsg      { return h.deliver(h.msg("commit", key, "")) }

func (h *harness) workflow(key, campaign string) *memMsg {
	return h.deliver(h.msg("workflow", key, `{"campaignId":"`+campaign+`","recipients":[{"id":"u","email":"u@example.com"}]}`))
}

// advance moves the clock by d, fires the coordinator's due timers and runs what they queued.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	h.c.onTimer(h.clock.Now())
	h.work()
}

// work runs the queued jobs to the end, as the workers would, and hands them back.
func (h *harness) work() {
	for len(h.c.queue) > 0 {
		j := h.c.queue[0]
		h.c.queue = h.c.queue[1:]
		h.c.calls.execute(context.Background(), j)
		h.c.finished(j, h.clock.Now())
	}
}

// counter sums the samples of a counter or gauge whose labels include labels.
func (h *harness) counter(name string, labels map[string]string) float64 {
	h.t.Helper()
	return (&running{reg: h.reg}).counter(h.t, name, labels)
}

// deadLetters returns the reasons and original sequences of the dead-letter copies published.
func (h *harness) deadLetters() []string {
	var out []string
	for _, m := range h.pub.published() {
		out = append(out, m.Header.Get(deadletter.HeaderReason)+" "+m.Header.Get(deadletter.HeaderOriginalSequence))
	}
	return out
}

func campaigns(req notifizz.TrackRequest) []string {
	var ids []string
	for _, w := range req.Workflows {
		ids = append(ids, w.CampaignID)
	}
	return ids
}

const trackBody = `{"eventName":"ev","properties":{"a":1}}`

func TestWindowFlushesWhenItsDelayExpires(t *testing.T) {
	h := newHarness(t, nil)
	tr := h.track("k1", trackBody)
	h.advance(400 * time.Millisecond)
	wf := h.workflow("k1", "c1")
	h.advance(599 * time.Millisecond)
	assert.Empty(t, h.api.trackCalls(), "not before the delay, counted from the first piece")
	assert.Empty(t, tr.settled())

	h.advance(time.Millisecond)
	calls := h.api.trackCalls()
	require.Len(t, calls, 1)
	assert.Equal(t, []string{"c1"}, campaigns(calls[0]))
	assert.Equal(t, []string{"ack"}, tr.settled())
	assert.Equal(t, []string{"ack"}, wf.settled())
	assert.Empty(t, h.c.windows)
	assert.Empty(t, h.c.held)
	assert.Equal(t, 0.0, h.counter("notifizz_bridge_open_windows", nil))
}

func TestWindowCommitFlushesAtOnce(t *testing.T) {
	t.Run("after the track", func(t *testing.T) {
		h := newHarness(t, nil)
		tr := h.track("k1", trackBody)
		wf := h.workflow("k1", "c1")
		cm := h.commit("k1")
		calls := h.api.trackCalls()
		require.Len(t, calls, 1, "sent on the commit, the clock not moved")
		assert.Equal(t, []string{"c1"}, campaigns(calls[0]))
		for _, m := range []*memMsg{wf, cm, tr} {
			assert.Equal(t, []string{"ack"}, m.settled())
		}
	})
	t.Run("before the track", func(t *testing.T) {
		h := newHarness(t, nil)
		wf := h.workflow("k1", "c1")
		h.commit("k1")
		assert.Empty(t, h.api.trackCalls(), "nothing to send without a track")
		h.track("k1", trackBody)
		require.Len(t, h.api.trackCalls(), 1, "the track of a committed window flushes it at once")
		assert.Equal(t, []string{"ack"}, wf.settled())
	})
	t.Run("with nothing open", func(t *testing.T) {
		h := newHarness(t, nil)
		cm := h.commit("k1")
		assert.Equal(t, []string{"ack"}, cm.settled())
		assert.Empty(t, h.c.windows, "no window kept outside a hold")
		assert.Equal(t, 1.0, h.counter("notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": outcomeIgnored}))
	})
}

func TestWindowMaxWorkflows(t *testing.T) {
	limit := func(c *Config) { c.Coalesce.MaxWorkflows = 2 }
	t.Run("workflow messages beyond the limit are refused as they arrive", func(t *testing.T) {
		h := newHarness(t, limit)
		h.track("k1", trackBody)
		h.workflow("k1", "c0")
		h.workflow("k1", "c1")
		over := h.workflow("k1", "c2")
		assert.Equal(t, []string{"term " + string(deadletter.ReasonTooManyWorkflows)}, over.settled())
		assert.Equal(t, []string{fmt.Sprintf("%s %d", deadletter.ReasonTooManyWorkflows, over.meta.Sequence.Stream)}, h.deadLetters())
		h.commit("k1")
		require.Len(t, h.api.trackCalls(), 1)
		assert.Equal(t, []string{"c0", "c1"}, campaigns(h.api.trackCalls()[0]))
	})
	t.Run("a late track's inline workflows push the latest workflow messages out", func(t *testing.T) {
		h := newHarness(t, limit)
		w0 := h.workflow("k1", "c0")
		w1 := h.workflow("k1", "c1")
		h.track("k1", `{"eventName":"ev","properties":{},"workflows":[{"campaignId":"i0","recipients":[{"id":"u","email":"u@example.com"}]}]}`)
		h.commit("k1")
		require.Len(t, h.api.trackCalls(), 1)
		assert.Equal(t, []string{"i0", "c0"}, campaigns(h.api.trackCalls()[0]))
		assert.Equal(t, []string{"ack"}, w0.settled())
		assert.Equal(t, []string{"term " + string(deadletter.ReasonTooManyWorkflows)}, w1.settled())
	})
	t.Run("a track carrying more than the limit", func(t *testing.T) {
		h := newHarness(t, limit)
		tr := h.track("k1", `{"eventName":"ev","properties":{},"workflows":[`+strings.Repeat(`{"campaignId":"i","recipients":[{"id":"u","email":"u@example.com"}]},`, 2)+
			`{"campaignId":"i","recipients":[{"id":"u","email":"u@example.com"}]}]}`)
		assert.Equal(t, []string{"term " + string(deadletter.ReasonTooManyWorkflows)}, tr.settled())
		assert.Empty(t, h.c.windows, "no window opened")
	})
}

func TestWindowMaxBytes(t *testing.T) {
	limit := func(c *Config) { c.Coalesce.MaxBytes = MinWindowBytes }
	// 12,000 bytes as published, 18,000 once escaped in the request (each '<' becomes \u003c):
	// three fit in 64 KiB with a small track, a fourth does not.
	pad := strings.Repeat("abcdefghi<", 1200)
	big := func(h *harness, key, campaign string) *memMsg {
		return h.deliver(h.msg("workflow", key, `{"campaignId":"`+campaign+`","recipients":[{"id":"u","email":"u@example.com","note":"`+pad+`"}]}`))
	}
	t.Run("workflows after the track are refused as they arrive", func(t *testing.T) {
		h := newHarness(t, limit)
		h.track("k1", trackBody)
		for i := range 3 {
			big(h, "k1", fmt.Sprintf("c%d", i))
		}
		over := big(h, "k1", "c3")
		assert.Equal(t, []string{"term too_large"}, over.settled())
		h.commit("k1")
		require.Len(t, h.api.trackCalls(), 1)
		assert.Equal(t, []string{"c0", "c1", "c2"}, campaigns(h.api.trackCalls()[0]))
	})
	t.Run("a large track after them pushes the latest out", func(t *testing.T) {
		h := newHarness(t, limit)
		w0, w1, w2 := big(h, "k1", "c0"), big(h, "k1", "c1"), big(h, "k1", "c2")
		h.track("k1", `{"eventName":"ev","properties":{"note":"`+strings.Repeat("x", 20_000)+`"}}`)
		h.commit("k1")
		require.Len(t, h.api.trackCalls(), 1)
		assert.Equal(t, []string{"c0", "c1"}, campaigns(h.api.trackCalls()[0]))
		assert.Equal(t, []string{"ack"}, w0.settled())
		assert.Equal(t, []string{"ack"}, w1.settled())
		assert.Equal(t, []string{"term too_large"}, w2.settled())
	})
	t.Run("a track too large alone", func(t *testing.T) {
		h := newHarness(t, limit)
		tr := h.track("k1", `{"eventName":"ev","properties":{"note":"`+strings.Repeat("x", MinWindowBytes)+`"}}`)
		assert.Equal(t, []string{"term too_large"}, tr.settled())
		assert.Empty(t, h.c.windows)
	})
}

func TestWindowOrphanTimeout(t *testing.T) {
	h := newHarness(t, nil)
	wf := h.workflow("k1", "c1")
	cm := h.commit("k1")
	h.advance(h.cfg.Coalesce.Delay)
	assert.Empty(t, wf.settled(), "a window without its track waits past its delay")
	h.advance(h.cfg.Coalesce.OrphanTimeout - h.cfg.Coalesce.Delay - time.Millisecond)
	assert.Empty(t, wf.settled())

	h.advance(time.Millisecond)
	assert.Equal(t, []string{"term " + string(deadletter.ReasonMissingTrack)}, wf.settled())
	assert.Equal(t, []string{"term " + string(deadletter.ReasonMissingTrack)}, cm.settled())
	assert.Empty(t, h.api.trackCalls())
	assert.Len(t, h.deadLetters(), 2)
	assert.Empty(t, h.c.windows)
	assert.Empty(t, h.c.held)

	// A track that comes later is an event of its own.
	h.track("k1", trackBody)
	h.advance(h.cfg.Coalesce.Delay)
	require.Len(t, h.api.trackCalls(), 1)
	assert.Empty(t, campaigns(h.api.trackCalls()[0]))
}

func TestWindowSliding(t *testing.T) {
	sliding := func(c *Config) {
		c.Coalesce.Mode = ModeSliding
		c.Coalesce.Delay = time.Second
		c.Coalesce.MaxDelay = 3 * time.Second
	}
	t.Run("each piece pushes the close back by the delay", func(t *testing.T) {
		h := newHarness(t, sliding)
		h.track("k1", trackBody)
		h.advance(800 * time.Millisecond)
		h.workflow("k1", "c1")
		h.advance(999 * time.Millisecond)
		assert.Empty(t, h.api.trackCalls(), "the close moved to a delay after the workflow")
		h.advance(time.Millisecond)
		require.Len(t, h.api.trackCalls(), 1)
		assert.Equal(t, []string{"c1"}, campaigns(h.api.trackCalls()[0]))
	})
	t.Run("never past maxDelay", func(t *testing.T) {
		h := newHarness(t, sliding)
		h.track("k1", trackBody)
		for i := range 3 {
			h.advance(900 * time.Millisecond)
			h.workflow("k1", fmt.Sprintf("c%d", i))
		}
		// 2.7 s after the open; the last workflow would move the close to 3.7 s.
		h.advance(299 * time.Millisecond)
		assert.Empty(t, h.api.trackCalls())
		h.advance(time.Millisecond)
		require.Len(t, h.api.trackCalls(), 1, "closed maxDelay after it opened")
		assert.Equal(t, []string{"c0", "c1", "c2"}, campaigns(h.api.trackCalls()[0]))
	})
	t.Run("a commit still flushes at once", func(t *testing.T) {
		h := newHarness(t, sliding)
		h.track("k1", trackBody)
		h.commit("k1")
		assert.Len(t, h.api.trackCalls(), 1)
	})
}

func TestWindowRedeliveredCopyOfHeldMessage(t *testing.T) {
	h := newHarness(t, nil)
	tr := h.track("k1", trackBody)
	wf := h.workflow("k1", "c1")
	// The server redelivers the workflow while the bridge holds it (its AckWait ran out).
	cp := h.deliver(redelivery(wf))
	assert.Len(t, h.c.held, 2, "one copy kept")
	h.commit("k1")
	require.Len(t, h.api.trackCalls(), 1)
	assert.Equal(t, []string{"c1"}, campaigns(h.api.trackCalls()[0]), "the workflow once")
	assert.Equal(t, []string{"ack"}, wf.settled(), "settling the copy kept settles both: acks go by stream sequence")
	assert.Empty(t, cp.settled())
	assert.Equal(t, []string{"ack"}, tr.settled())
	assert.Equal(t, 1.0, h.counter("notifizz_bridge_redeliveries_total", map[string]string{"kind": "workflow"}))

	// A copy that comes after the event was settled is acked as a duplicate, not sent again.
	late := h.deliver(redelivery(tr))
	assert.Equal(t, []string{"ack"}, late.settled())
	assert.Len(t, h.api.trackCalls(), 1)
	assert.Equal(t, 1.0, h.counter("notifizz_bridge_messages_total", map[string]string{"kind": "track", "outcome": outcomeDuplicate}))
}

func TestWindowKeepAlive(t *testing.T) {
	h := newHarness(t, nil)
	tr := h.track("k1", trackBody)
	h.c.keepAlive(h.clock.Now().Add(h.cfg.Consumer.AckWait/2 - time.Millisecond))
	assert.Empty(t, tr.settled(), "not yet half of AckWait")
	h.c.keepAlive(h.clock.Now().Add(h.cfg.Consumer.AckWait / 2))
	assert.Equal(t, []string{"in_progress"}, tr.settled())
}

// runHarness runs h's coordinator on its own goroutine, as Bridge.Run does, and returns its
// input and a channel closed when run has returned.
func runHarness(t *testing.T, h *harness) (chan<- inbound, <-chan struct{}) {
	in := make(chan inbound, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.c.run(context.Background(), in)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the coordinator did not return")
		}
	})
	return in, done
}

// TestRunFlushesOnTheClock drives run itself: its timer comes from the clock, so the window
// closes when the fake clock passes its delay, without waiting for a real second.
func TestRunFlushesOnTheClock(t *testing.T) {
	h := newHarness(t, nil)
	in, done := runHarness(t, h)
	tr := h.msg("track", "k1", trackBody)
	in <- h.inbound(tr)
	placed := make(chan struct{})
	in <- inbound{control: func(*coordinator) { close(placed) }}
	<-placed
	h.clock.Advance(h.cfg.Coalesce.Delay)
	require.Eventually(t, func() bool { return len(tr.settled()) > 0 }, time.Second, time.Millisecond)
	assert.Equal(t, []string{"ack"}, tr.settled())
	assert.Len(t, h.api.trackCalls(), 1)
	close(in)
	<-done
}

// TestRunShutdownHandsBack: when the input ends, open windows go back to the server whole: a
// member the server will deliver again is naked; one on its last delivery, which a nak would
// lose, is published again to its subject and terminated. Nothing is sent.
func TestRunShutdownHandsBack(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Consumer.MaxDeliver = 3 })
	in, done := runHarness(t, h)
	tr := h.msg("track", "k1", trackBody)
	wf := h.msg("workflow", "k1", `{"campaignId":"c1","recipients":[{"id":"u","email":"u@example.com"}]}`)
	wf.meta.NumDelivered = 3
	in <- h.inbound(tr)
	in <- h.inbound(wf)
	close(in)
	<-done
	assert.Empty(t, h.api.trackCalls(), "an open window is not sent at shutdown")
	assert.Equal(t, []string{"nak"}, tr.settled())
	assert.Equal(t, []string{"term requeued"}, wf.settled())
	pub := h.pub.published()
	require.Len(t, pub, 1)
	assert.Equal(t, wf.subject, pub[0].Subject)
	assert.Equal(t, wf.data, pub[0].Data)
	assert.Equal(t, fmt.Sprintf("requeue-%s-%d", h.cfg.Stream.Name, wf.meta.Sequence.Stream), pub[0].Header.Get(jetstream.MsgIDHeader))
	assert.Empty(t, h.c.held)
}

// TestRunShutdownDeadlineHandsBackCopies: a message whose dead-letter copy cannot be stored on
// its last delivery is held and tried again; at the shutdown deadline it is handed back.
func TestRunShutdownDeadlineHandsBackCopies(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Consumer.MaxDeliver = 1 })
	h.pub.setFail(true)
	in, done := runHarness(t, h)
	bad := h.msg("track", "k1", `{"eventName":`)
	in <- h.inbound(bad)
	close(in)
	require.Eventually(t, func() bool { return h.counter("notifizz_bridge_dead_letter_failures_total", nil) >= 1 },
		time.Second, time.Millisecond, "the copy was not tried")
	select {
	case <-done:
		t.Fatal("the coordinator returned with a message waiting for its copy")
	default:
	}
	h.clock.Advance(h.cfg.ShutdownTimeout)
	<-done
	// The wait outlasts half of AckWait: the message was kept alive meanwhile.
	settled := slices.DeleteFunc(bad.settled(), func(s string) bool { return s == "in_progress" })
	assert.Equal(t, []string{"nak"}, settled, "the requeue failed too: naked, the last resort")
}
