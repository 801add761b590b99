package schema

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

// producerSpan is a sampled span context with a trace state, as a producer's tracer would put
// in the context of a publish.
func producerSpan(t *testing.T) trace.SpanContext {
	t.Helper()
	ts, err := trace.ParseTraceState("vendor=abc")
	require.NoError(t, err)
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
}

func TestProducerTraceHeaders(t *testing.T) {
	js, stream := setupJetStream(t, DefaultPrefix)
	sc := producerSpan(t)
	traced := trace.ContextWithSpanContext(t.Context(), sc)

	tests := []struct {
		name   string
		p      *Producer
		ctx    context.Context
		parent string // traceparent; "" for none
		state  string
	}{
		{"span in context", NewProducer(js), traced,
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=abc"},
		{"no span", NewProducer(js), t.Context(), "", ""},
		{"no propagator", NewProducer(js, WithPropagator(nil)), traced, "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "trace-" + string(rune('a'+i))
			ack, err := tt.p.Track(tt.ctx, key, "ev", nil)
			require.NoError(t, err)
			m, err := stream.GetMsg(t.Context(), ack.Sequence)
			require.NoError(t, err)
			assert.Equal(t, tt.parent, m.Header.Get(HeaderTraceparent))
			assert.Equal(t, tt.state, m.Header.Get(HeaderTracestate))
			assert.NotEmpty(t, m.Header.Get(jetstream.MsgIDHeader), "the trace headers do not replace Nats-Msg-Id")
		})
	}
}

func TestHeaderCarrier(t *testing.T) {
	h := nats.Header{"Traceparent": {"00-a-b-01"}, "Other": {"x"}}
	c := HeaderCarrier(h)
	assert.Equal(t, "00-a-b-01", c.Get("traceparent"), "found in any case")
	assert.Empty(t, c.Get("tracestate"))
	c.Set("traceparent", "00-c-d-01")
	assert.Equal(t, nats.Header{"traceparent": {"00-c-d-01"}, "Other": {"x"}}, h, "set once, in the propagator's case")
	assert.ElementsMatch(t, []string{"traceparent", "Other"}, c.Keys())
	assert.Empty(t, HeaderCarrier(nil).Get("traceparent"), "a message without headers")
}
