package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// In-memory stand-ins for the coordinator's unit tests and the window-path benchmark: they
// isolate the coordinator, the workers and the settler from the network.

// memMsg is an in-memory jetstream.Msg. It counts its acks in acks when set (the benchmark),
// and records every settling call in order when record is set (the unit tests).
type memMsg struct {
	subject string
	data    []byte
	hdr     nats.Header
	meta    jetstream.MsgMetadata
	acks    *ackCounter
	record  bool

	mu    sync.Mutex
	calls []string // "ack", "nak", "nak 5s", "in_progress", "term <reason>"
}

// ackCounter closes done when the expected number of acks arrived.
type ackCounter struct {
	n, want atomic.Int64
	done    chan struct{}
}

func (c *ackCounter) Add(int64) {
	if c.n.Add(1) == c.want.Load() {
		close(c.done)
	}
}

func (m *memMsg) note(call string) {
	if !m.record {
		return
	}
	m.mu.Lock()
	m.calls = append(m.calls, call)
	m.mu.Unlock()
}

// settled returns the calls recorded so far.
func (m *memMsg) settled() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

func (m *memMsg) Metadata() (*jetstream.MsgMetadata, error) { return &m.meta, nil }
func (m *memMsg) Data() []byte                              { return m.data }
func (m *memMsg) Headers() nats.Header                      { return m.hdr }
func (m *memMsg) Subject() string                           { return m.subject }
func (m *memMsg) Reply() string                             { return "" }

func (m *memMsg) Ack() error {
	if m.acks != nil {
		m.acks.Add(1)
	}
	m.note("ack")
	return nil
}

func (m *memMsg) DoubleAck(context.Context) error { return m.Ack() }

func (m *memMsg) Nak() error {
	m.note("nak")
	return nil
}

func (m *memMsg) NakWithDelay(d time.Duration) error {
	m.note("nak " + d.String())
	return nil
}

func (m *memMsg) InProgress() error {
	m.note("in_progress")
	return nil
}

func (m *memMsg) Term() error { return m.TermWithReason("") }

func (m *memMsg) TermWithReason(reason string) error {
	m.note("term " + reason)
	return nil
}

// stubJS satisfies jetstream.JetStream for code that never touches the server.
type stubJS struct{ jetstream.JetStream }

// memPublisher stores what the settler publishes (dead-letter copies, requeues), or fails
// every publish while fail is set.
type memPublisher struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	fail bool
}

func (p *memPublisher) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return nil, fmt.Errorf("publish to %s: %w", m.Subject, nats.ErrTimeout)
	}
	p.msgs = append(p.msgs, m)
	return &jetstream.PubAck{Sequence: uint64(len(p.msgs))}, nil
}

func (p *memPublisher) published() []*nats.Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*nats.Msg(nil), p.msgs...)
}

func (p *memPublisher) setFail(fail bool) {
	p.mu.Lock()
	p.fail = fail
	p.mu.Unlock()
}

// memAPI records the calls it gets and answers them with err.
type memAPI struct {
	mu     sync.Mutex
	tracks []notifizz.TrackRequest
	sends  []string
	v2     []string // the v2 calls other than track, as "<call> <what it names>"
	err    error
}

func (a *memAPI) v2Call(call string) (json.RawMessage, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.v2 = append(a.v2, call)
	return json.RawMessage(`{}`), a.err
}

func (a *memAPI) Identify(_ context.Context, req notifizz.IdentifyRequest) (json.RawMessage, error) {
	return a.v2Call("identify " + req.SubjectA.Identifier + " " + req.SubjectB.Identifier)
}

func (a *memAPI) Detach(_ context.Context, req notifizz.DetachRequest) (json.RawMessage, error) {
	return a.v2Call("detach " + req.Subject.Identifier)
}

func (a *memAPI) Subscribe(_ context.Context, resourceID, subscriberID string, _ map[string]any) (json.RawMessage, error) {
	return a.v2Call("subscribe " + resourceID + " " + subscriberID)
}

func (a *memAPI) Unsubscribe(_ context.Context, resourceID, subscriberID string) (json.RawMessage, error) {
	return a.v2Call("unsubscribe " + resourceID + " " + subscriberID)
}

func (a *memAPI) v2Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.v2...)
}

// v1Only completes an API fake of the v1 calls: the v2 calls fail, as a test of v1 never makes them.
type v1Only struct{}

var errV2Call = errors.New("a v2 call in a v1 test")

func (v1Only) Identify(context.Context, notifizz.IdentifyRequest) (json.RawMessage, error) {
	return nil, errV2Call
}

func (v1Only) Detach(context.Context, notifizz.DetachRequest) (json.RawMessage, error) {
	return nil, errV2Call
}

func (v1Only) Subscribe(context.Context, string, string, map[string]any) (json.RawMessage, error) {
	return nil, errV2Call
}

func (v1Only) Unsubscribe(context.Context, string, string) (json.RawMessage, error) {
	return nil, errV2Call
}

func (a *memAPI) TrackEvent(_ context.Context, req notifizz.TrackRequest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tracks = append(a.tracks, req)
	return a.err
}

func (a *memAPI) Send(_ context.Context, notifID string, _ map[string]any, _ ...notifizz.CallOption) (json.RawMessage, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sends = append(a.sends, notifID)
	return json.RawMessage(`{}`), a.err
}

func (a *memAPI) trackCalls() []notifizz.TrackRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]notifizz.TrackRequest(nil), a.tracks...)
}

// fakeClock is a clock that moves only when the test advances it. Its timers and tickers fire
// (a non-blocking send, as time's do) when it is advanced to or past their time, or at once
// when set to a time already passed.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
}

type fakeTimer struct {
	clk    *fakeClock
	ch     chan time.Time
	at     time.Time
	armed  bool
	period time.Duration // tickers
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward and fires what is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fire()
}

func (c *fakeClock) NewTimer(d time.Duration) clockTimer {
	t := &fakeTimer{clk: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

func (c *fakeClock) NewTicker(d time.Duration) clockTicker {
	t := &fakeTimer{clk: c, ch: make(chan time.Time, 1), period: d}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return fakeTicker{t}
}

// fakeTicker is a fakeTimer that rearms itself by its period.
type fakeTicker struct{ *fakeTimer }

func (t fakeTicker) Stop() { t.fakeTimer.Stop() }

// fire sends the time on every armed timer that is due; c.mu is held.
func (c *fakeClock) fire() {
	for _, t := range c.timers {
		if !t.armed || t.at.After(c.now) {
			continue
		}
		select {
		case t.ch <- c.now:
		default: // a tick nobody read yet: dropped, as time.Ticker does
		}
		if t.period > 0 {
			for !t.at.After(c.now) {
				t.at = t.at.Add(t.period)
			}
		} else {
			t.armed = false
		}
	}
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.armed
	t.at, t.armed = t.clk.now.Add(d), true
	t.clk.fire()
	return was
}

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}
