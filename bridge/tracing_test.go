package bridge

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// traced is a bridge run with tracing on, its spans kept in memory.
type traced struct {
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

// startTraced runs a bridge with the env's config (as changed by mod), tracing into an
// in-memory exporter, with a Notifizz client of one attempt per call whose requests go through
// TraceTransport.
func (e *env) startTraced(mod func(*Config)) *traced {
	e.t.Helper()
	tr := &traced{exp: tracetest.NewInMemoryExporter()}
	tr.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tr.exp))
	e.t.Cleanup(func() { _ = tr.tp.Shutdown(context.Background()) })

	cfg := e.cfg
	if mod != nil {
		mod(&cfg)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	e.t.Cleanup(base.CloseIdleConnections)
	client := notifizz.NewClient(testAuthKey, testSDKKey,
		notifizz.WithBaseURL(e.api.srv.URL),
		notifizz.WithTimeout(2*time.Second),
		notifizz.WithoutRetry(),
		notifizz.WithHTTPClient(&http.Client{Transport: TraceTransport(base, tr.tp)}),
	)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := New(cfg, e.js, client, WithLogger(logger), WithRegisterer(prometheus.NewRegistry()), WithTracerProvider(tr.tp))
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- b.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	require.Eventually(e.t, b.Ready, waitFor, pollEvery, "bridge not ready")
	return tr
}

// spans waits until n spans named name have ended and returns them, oldest first.
func (tr *traced) spans(t *testing.T, name string, n int) tracetest.SpanStubs {
	t.Helper()
	var got tracetest.SpanStubs
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, s := range tr.exp.GetSpans() {
			if s.Name == name {
				got = append(got, s)
			}
		}
		return len(got) >= n
	}, waitFor, pollEvery, "waiting for %d spans %s", n, name)
	return got
}

// producerCtx is the context of a producer's span (a child of a remote parent with a trace
// state, which the child inherits), made with tp so that it is exported too.
func producerCtx(t *testing.T, tp trace.TracerProvider, name string) (context.Context, trace.SpanContext) {
	t.Helper()
	ts, err := trace.ParseTraceState("vendor=" + name)
	require.NoError(t, err)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, byte(len(name))}, SpanID: trace.SpanID{9, 9, byte(len(name))},
		TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx, span := tp.Tracer("producer").Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "publish "+name)
	span.End()
	return ctx, span.SpanContext()
}

// attrs maps a span's attributes by key.
func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTracingOneSpanPerEventWithLinks(t *testing.T) {
	e := newEnv(t)
	tr := e.startTraced(nil)

	// Four services, each in a trace of its own, publish the pieces of one event.
	names := []string{"track", "workflow-a", "workflow-bb", "commit-ccc"}
	ctxs := make([]context.Context, 4)
	scs := make([]trace.SpanContext, 4)
	for i, n := range names {
		ctxs[i], scs[i] = producerCtx(t, tr.tp, n)
	}
	producer := func() *schema.Producer {
		_, js := e.connect()
		return schema.NewProducer(js)
	}
	trackAck, err := producer().Track(ctxs[0], "order-7", "order_shipped", map[string]any{"orderId": "7"})
	require.NoError(t, err)
	_, err = producer().Workflow(ctxs[1], "order-7", "c1", recipients("u1")...)
	require.NoError(t, err)
	_, err = producer().Workflow(ctxs[2], "order-7", "c2", recipients("u2")...)
	require.NoError(t, err)
	_, err = producer().Commit(ctxs[3], "order-7")
	require.NoError(t, err)

	calls := e.api.waitCalls(t, 1)
	s := tr.spans(t, "notifizz.track", 1)[0]
	e.settled(e.cfg)
	require.Len(t, e.api.snapshot(), 1)

	assert.Equal(t, trace.SpanKindClient, s.SpanKind)
	assert.Equal(t, scs[0].TraceID(), s.SpanContext.TraceID(), "in the track's trace")
	assert.Equal(t, scs[0].SpanID(), s.Parent.SpanID(), "a child of the track's span")
	var linked []trace.SpanContext
	for _, l := range s.Links {
		linked = append(linked, l.SpanContext.WithRemote(false))
		assert.Contains(t, []string{"workflow", "commit"}, attrs(l.Attributes)[attrKind].AsString())
	}
	assert.ElementsMatch(t, []trace.SpanContext{scs[1], scs[2], scs[3]}, linked, "one link to each other message")

	a := attrs(s.Attributes)
	assert.Equal(t, "order-7", a[attrEventKey].AsString())
	assert.Equal(t, "order_shipped", a[attrEventName].AsString())
	assert.Equal(t, int64(2), a[attrWorkflows].AsInt64())
	assert.Equal(t, int64(4), a[attrMessages].AsInt64())
	assert.Equal(t, deriveKey("track", e.cfg.Stream.Name, "order-7", trackAck.Sequence), a[attrIdempotencyKey].AsString())
	assert.Equal(t, calls[0].idempotencyKey(), a[attrIdempotencyKey].AsString())
	assert.Equal(t, int64(1), a[attrAttempt].AsInt64())
	assert.Equal(t, "ack", a[attrOutcome].AsString())
	assert.Equal(t, int64(0), a[attrStatusCode].AsInt64(), "no status attribute on success")
	assert.Equal(t, codes.Unset, s.Status.Code)

	// The request carried the trace on: its traceparent is the HTTP attempt's span, a child of
	// the call's.
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.HeaderCarrier(calls[0].Header)))
	require.True(t, sc.IsValid(), "traceparent %q", calls[0].Header.Get("traceparent"))
	assert.Equal(t, s.SpanContext.TraceID(), sc.TraceID())
	var attempt *tracetest.SpanStub
	for _, x := range tr.exp.GetSpans() {
		if x.SpanContext.SpanID() == sc.SpanID() {
			attempt = &x
		}
	}
	require.NotNil(t, attempt, "the request's span was exported")
	assert.Equal(t, s.SpanContext.SpanID(), attempt.Parent.SpanID(), "the HTTP attempt is a child of the call's span")
}

func TestTracingNakThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.api.setRespond(func(n int, _ apiCall) (int, map[string]string, string) {
		if n == 1 {
			return http.StatusServiceUnavailable, nil, `{"error":"unavailable"}`
		}
		return http.StatusOK, nil, `{}`
	})
	tr := e.startTraced(nil)
	ctx, sc := producerCtx(t, tr.tp, "track")
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(context.Background(), "k1") // a message without trace headers
	require.NoError(t, err)

	spans := tr.spans(t, "notifizz.track", 2)
	e.settled(e.cfg)
	require.Len(t, spans, 2, "one span per call")
	first, second := spans[0], spans[1]
	for _, s := range spans {
		assert.Equal(t, sc.SpanID(), s.Parent.SpanID(), "each delivery's call is a child of the track's span")
		assert.Empty(t, s.Links, "the commit carries no trace")
	}
	a1, a2 := attrs(first.Attributes), attrs(second.Attributes)
	assert.Equal(t, "nak", a1[attrOutcome].AsString())
	assert.Equal(t, int64(1), a1[attrAttempt].AsInt64())
	assert.Equal(t, int64(503), a1[attrStatusCode].AsInt64())
	assert.Equal(t, codes.Error, first.Status.Code)
	require.Len(t, first.Events, 1)
	assert.Equal(t, "nak", first.Events[0].Name)

	assert.Equal(t, "ack", a2[attrOutcome].AsString())
	assert.Equal(t, int64(2), a2[attrAttempt].AsInt64(), "the retry is the second delivery")
	assert.Equal(t, a1[attrIdempotencyKey], a2[attrIdempotencyKey], "both under one key")
	assert.NotEqual(t, codes.Error, second.Status.Code)
}

func TestTracingDeadLetterCarriesTraceHeaders(t *testing.T) {
	e := newEnv(t)
	e.api.setRespond(func(int, apiCall) (int, map[string]string, string) {
		return http.StatusBadRequest, nil, `{"error":"unknown campaign"}`
	})
	tr := e.startTraced(nil)
	trackCtx, trackSC := producerCtx(t, tr.tp, "track")
	wfCtx, wfSC := producerCtx(t, tr.tp, "workflow")
	tAck, err := e.prod.Track(trackCtx, "k1", "ev", nil)
	require.NoError(t, err)
	wAck, err := e.prod.Workflow(wfCtx, "k1", "c1", recipients("u")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(context.Background(), "k1")
	require.NoError(t, err)

	s := tr.spans(t, "notifizz.track", 1)[0]
	a := attrs(s.Attributes)
	assert.Equal(t, "dead_letter", a[attrOutcome].AsString())
	assert.Equal(t, string(deadletter.ReasonAPIRejected), a[attrDeadLetter].AsString())
	assert.Equal(t, int64(400), a[attrStatusCode].AsInt64())
	assert.Equal(t, codes.Error, s.Status.Code)
	require.Len(t, s.Links, 1)
	assert.Equal(t, wfSC.SpanID(), s.Links[0].SpanContext.SpanID())

	// Each copy carries its original's trace, so that its replay continues that trace.
	want := map[string]trace.SpanContext{seqStr(tAck.Sequence): trackSC, seqStr(wAck.Sequence): wfSC}
	dls := e.deadLetters(3)
	seen := 0
	for _, d := range dls {
		sc, ok := want[d.Header.Get(deadletter.HeaderOriginalSequence)]
		if !ok {
			assert.Empty(t, d.Header.Get(schema.HeaderTraceparent), "the commit had no trace")
			continue
		}
		seen++
		got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), schema.HeaderCarrier(d.Header)))
		assert.Equal(t, sc.TraceID(), got.TraceID())
		assert.Equal(t, sc.SpanID(), got.SpanID())
		assert.Equal(t, sc.TraceState().String(), d.Header.Get(schema.HeaderTracestate))
		replay := deadletter.ReplayHeaders(d.Header)
		assert.Equal(t, d.Header.Get(schema.HeaderTraceparent), replay.Get(schema.HeaderTraceparent), "a replay keeps it")
	}
	assert.Equal(t, 2, seen)
	e.settled(e.cfg)
}

func TestSpanNames(t *testing.T) {
	for _, tt := range []struct {
		kind jobKind
		msg  schema.Kind
		want string
	}{
		{jobFlush, schema.KindTrack, "notifizz.track"},
		{jobSend, schema.KindSend, "notifizz.send"},
		{jobCall, schema.KindTrack, "notifizz.track"},
		{jobCall, schema.KindIdentify, "notifizz.identify"},
		{jobCall, schema.KindDetach, "notifizz.detach"},
		{jobCall, schema.KindSubscribe, "notifizz.subscribe"},
		{jobCall, schema.KindUnsubscribe, "notifizz.unsubscribe"},
	} {
		j := &job{kind: tt.kind, members: []*heldMsg{{decoded: decoded{kind: tt.msg}}}}
		assert.Equal(t, tt.want, spanName(j))
	}
}
