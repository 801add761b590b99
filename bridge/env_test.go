package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

const (
	testSDKKey  = "sdk-secret-9f2c41"
	testAuthKey = "auth-secret-77ab03"
	waitFor     = 30 * time.Second
	pollEvery   = 10 * time.Millisecond
)

// apiCall is one request the stand-in Notifizz API received.
type apiCall struct {
	Method string
	Path   string
	Header http.Header
	Body   map[string]any
	Size   int // bytes of the body as sent
	At     time.Time
}

// idempotencyKey returns the key the call was made under.
func (c apiCall) idempotencyKey() string { return c.Header.Get("X-Idempotency-Key") }

// fakeAPI is the stand-in for the Notifizz API, the one thing these tests fake. It checks every
// request's method and headers, records it, and answers with what respond says.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	calls    []apiCall
	respond  func(n int, c apiCall) (status int, header map[string]string, body string)
	release  chan struct{} // when set, every request waits for it to close (a stalled API)
	onArrive func()        // when set, called as each request arrives, before it waits
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	// assert, not require: this runs on the server's goroutine. Every call is a POST but the
	// v2 unsubscribe, a DELETE.
	method := http.MethodPost
	if strings.HasSuffix(r.URL.Path, "/unsubscribe") {
		method = http.MethodDelete
	}
	assert.Equal(f.t, method, r.Method, r.URL.Path)
	assert.Equal(f.t, "Bearer "+testSDKKey, r.Header.Get("Authorization"))
	assert.Equal(f.t, "application/json", r.Header.Get("Content-Type"))
	raw, err := io.ReadAll(r.Body)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The client gave up while sending the body (its timeout ran out on a machine starved
		// of CPU): it never gets an answer and tries again, so this is no call.
		return
	}
	assert.NoError(f.t, err)
	var body map[string]any
	assert.NoError(f.t, json.Unmarshal(raw, &body), "body %s", raw)
	c := apiCall{Method: r.Method, Path: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: body, Size: len(raw), At: time.Now()}
	if c.Path == "/events/track" {
		assert.Equal(f.t, c.idempotencyKey(), body["idempotencyKey"], "header and body keys agree")
		assert.Equal(f.t, testSDKKey, body["sdkSecretKey"])
	}
	// onArrive runs before the call is recorded, so that a test that waited for n calls knows
	// that n arrivals were seen.
	f.mu.Lock()
	onArrive := f.onArrive
	f.mu.Unlock()
	if onArrive != nil {
		onArrive()
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	n := len(f.calls)
	respond, release := f.respond, f.release
	f.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	status, header, out := http.StatusOK, map[string]string(nil), `{"ok":true}`
	if respond != nil {
		status, header, out = respond(n, c)
	}
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, out)
}

func (f *fakeAPI) setRespond(r func(n int, c apiCall) (int, map[string]string, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = r
}

func (f *fakeAPI) snapshot() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

// waitCalls waits until at least n calls arrived and returns them all.
func (f *fakeAPI) waitCalls(t *testing.T, n int) []apiCall {
	t.Helper()
	require.Eventually(t, func() bool { return len(f.snapshot()) >= n }, waitFor, pollEvery,
		"waiting for %d API calls", n)
	return f.snapshot()
}

// env is one embedded JetStream server, a connection, the fake API and a bridge config.
type env struct {
	t    *testing.T
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	api  *fakeAPI
	cfg  Config
	prod *schema.Producer
}

// startServer starts an embedded JetStream server, shut down at the end of the test; mods
// change its options.
func startServer(t *testing.T, dir string, port int, mods ...func(*server.Options)) *server.Server {
	t.Helper()
	opts := natstest.Options(dir)
	opts.Port = port
	// Above schema.MaxBodySize, so that an oversize body reaches the bridge.
	opts.MaxPayload = 4 << 20
	for _, mod := range mods {
		mod(opts)
	}
	return natstest.Run(t, opts)
}

// newEnv starts a server (its options changed by mods), connects to it, and fakes the API.
func newEnv(t *testing.T, mods ...func(*server.Options)) *env {
	t.Helper()
	e := &env{t: t, api: newFakeAPI(t)}
	e.srv = startServer(t, t.TempDir(), -1, mods...)
	e.nc, e.js = e.connect()
	e.prod = schema.NewProducer(e.js)

	cfg := DefaultConfig()
	cfg.Stream.Storage = "memory"
	cfg.Consumer.AckWait = 5 * time.Second
	// The pieces of an event published one after the other must meet in one window even when a
	// loaded machine stalls the publisher: the delay is ten times what such a stall was seen to
	// last. Tests that are about the delay set their own.
	cfg.Coalesce.Delay = 2 * time.Second
	cfg.Coalesce.OrphanTimeout = 6 * time.Second
	cfg.Retry.NakInitial = 100 * time.Millisecond
	cfg.Retry.NakMax = time.Second
	cfg.MaxInFlight = 8
	cfg.ShutdownTimeout = 5 * time.Second
	e.cfg = cfg
	return e
}

// connect opens another connection to the env's server, closed at the end of the test.
func (e *env) connect() (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	return natstest.Connect(e.t, e.srv.ClientURL())
}

// client is a Notifizz client for the fake API with fast retries, speaking the profile of the
// env's config.
func (e *env) client() *notifizz.Client { return e.clientFor(e.cfg.API) }

// clientFor is client for the API profile p.
func (e *env) clientFor(p APIProfile) *notifizz.Client {
	api := notifizz.APIv1
	if p == APIv2 {
		api = notifizz.APIv2
	}
	return notifizz.NewClient(testAuthKey, testSDKKey,
		notifizz.WithAPI(api),
		notifizz.WithBaseURL(e.api.srv.URL),
		notifizz.WithTimeout(2*time.Second),
		notifizz.WithRetry(notifizz.RetryPolicy{Attempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
	)
}

// running is a bridge started by env.start.
type running struct {
	b      *Bridge
	reg    *prometheus.Registry
	cancel context.CancelFunc
	errc   chan error
	once   sync.Once
}

// start runs a bridge with the env's config (as changed by mod) until the test ends or stop.
func (e *env) start(mod func(*Config), opts ...Option) *running {
	e.t.Helper()
	cfg := e.cfg
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := New(cfg, e.js, e.clientFor(cfg.API), append([]Option{WithLogger(logger), WithRegisterer(reg)}, opts...)...)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, reg: reg, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- b.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	require.Eventually(e.t, b.Ready, waitFor, pollEvery, "bridge not ready")
	return r
}

// stop cancels the bridge and waits for Run to return.
func (r *running) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.errc:
			assert.NoError(t, err, "Run")
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// counter sums the series of one counter or gauge of the bridge's registry whose labels
// include the given ones.
func (r *running) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			if m.Counter != nil {
				sum += m.GetCounter().GetValue()
			} else {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// settled waits until the consumer holds nothing: every message acked or terminated.
func (e *env) settled(cfg Config) {
	e.t.Helper()
	var info *jetstream.ConsumerInfo
	require.Eventually(e.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cons, err := e.js.Consumer(ctx, cfg.Stream.Name, cfg.Consumer.Durable)
		if err != nil {
			return false
		}
		info, err = cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}, waitFor, pollEvery, "consumer still holds messages: %+v", info)
}

// storedAt returns when the server stored each of the stream's messages seqs: the bridge cannot
// have seen a message earlier, which makes these times a safe lower bound for what it did next.
func (e *env) storedAt(seqs ...uint64) []time.Time {
	e.t.Helper()
	stream, err := e.js.Stream(ctx, e.cfg.Stream.Name)
	require.NoError(e.t, err)
	times := make([]time.Time, len(seqs))
	for i, seq := range seqs {
		m, err := stream.GetMsg(ctx, seq)
		require.NoError(e.t, err)
		times[i] = m.Time
	}
	return times
}

// deadLetter is one message of the dead-letter stream.
type deadLetter struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// deadLetters waits until the dead-letter stream holds n messages and returns them.
func (e *env) deadLetters(n int) []deadLetter {
	e.t.Helper()
	ctx := context.Background()
	var count uint64
	require.Eventually(e.t, func() bool {
		s, err := e.js.Stream(ctx, e.cfg.DeadLetter.Stream)
		if err != nil {
			return false
		}
		count = s.CachedInfo().State.Msgs
		return count >= uint64(n)
	}, waitFor, pollEvery, "waiting for %d dead letters", n)
	s, err := e.js.Stream(ctx, e.cfg.DeadLetter.Stream)
	require.NoError(e.t, err)
	var out []deadLetter
	for seq := uint64(1); len(out) < int(count); seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(e.t, err)
		out = append(out, deadLetter{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

// dlqCount is the number of messages in the dead-letter stream now.
func (e *env) dlqCount() uint64 {
	s, err := e.js.Stream(context.Background(), e.cfg.DeadLetter.Stream)
	if err != nil {
		return 0
	}
	return s.CachedInfo().State.Msgs
}

// terminations records the server's advisories for terminated messages: proof that the bridge
// terminated an original (with its reason) rather than acking it.
type terminations struct {
	mu  sync.Mutex
	got map[uint64]string // stream sequence → reason
}

func (e *env) watchTerminations() *terminations {
	e.t.Helper()
	tr := &terminations{got: map[uint64]string{}}
	sub, err := e.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", func(m *nats.Msg) {
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
			Reason    string `json:"reason"`
		}
		if json.Unmarshal(m.Data, &adv) == nil {
			tr.mu.Lock()
			tr.got[adv.StreamSeq] = adv.Reason
			tr.mu.Unlock()
		}
	})
	require.NoError(e.t, err)
	require.NoError(e.t, e.nc.Flush())
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return tr
}

func (tr *terminations) reason(seq uint64) (string, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r, ok := tr.got[seq]
	return r, ok
}

func (e *env) waitTerminated(tr *terminations, seq uint64, reason string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		r, ok := tr.reason(seq)
		return ok && r == reason
	}, waitFor, pollEvery, "stream sequence %d not terminated with %q", seq, reason)
}

// withoutKeepAlive turns the InProgress sweep off, so that a test can make the server redeliver
// held messages.
func withoutKeepAlive(b *Bridge) { b.noKeepAlive = true }

// publishRaw publishes bytes to a subject and returns the stream sequence.
func (e *env) publishRaw(subject string, data []byte, hdr nats.Header) uint64 {
	e.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	if hdr != nil {
		m.Header = hdr
	}
	ack, err := e.js.PublishMsg(context.Background(), m)
	require.NoError(e.t, err)
	return ack.Sequence
}

func recipients(ids ...string) []schema.Recipient {
	rs := make([]schema.Recipient, len(ids))
	for i, id := range ids {
		rs[i] = schema.Recipient{ID: id, Email: id + "@example.com"}
	}
	return rs
}

func seqStr(seq uint64) string { return strconv.FormatUint(seq, 10) }
