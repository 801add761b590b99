package bridge

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// tracerName is the instrumentation scope of the bridge's spans.
const tracerName = "github.com/notifizz-bridge/notifizz-bridge/bridge"

// The attributes of a call's span. The event's messages, the key it is sent under and what
// became of it: enough to find the event of a notification, and the notification of an event.
const (
	attrEventKey       = attribute.Key("notifizz.event_key")
	attrEventName      = attribute.Key("notifizz.event_name")
	attrNotifID        = attribute.Key("notifizz.notif_id")
	attrWorkflows      = attribute.Key("notifizz.workflows")
	attrMessages       = attribute.Key("notifizz.messages")
	attrIdempotencyKey = attribute.Key("notifizz.idempotency_key")
	// attrAttempt is the delivery of the deciding message this call was made on: 1 for the
	// first, more after a nak or a redelivery.
	attrAttempt        = attribute.Key("notifizz.attempt")
	attrOutcome        = attribute.Key("notifizz.outcome")
	attrDeadLetter     = attribute.Key("notifizz.dead_letter.reason")
	attrStatusCode     = attribute.Key("http.response.status_code")
	attrKind           = attribute.Key("notifizz.kind")
	attrStreamSequence = attribute.Key("notifizz.stream_sequence")
)

// WithTracerProvider turns tracing on with tp (the daemon passes the OpenTelemetry SDK's when
// tracing.enabled is set): each API call is a span named after it (notifizz.track,
// notifizz.send, notifizz.identify...), whose parent is the trace its message's W3C trace
// headers carry (the track, for a coalesced event) and which links to the trace of every other
// message of the event. Without it the bridge makes no span and reads no trace header. For the
// HTTP request to carry the span on to the API, give the client a TraceTransport.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(b *Bridge) { b.tp = tp }
}

// TraceTransport wraps base (nil: http.DefaultTransport) so that each HTTP attempt of a call
// is a span, child of the call's, whose W3C traceparent the request carries: the Notifizz API,
// or a proxy before it, sees which trace a request belongs to.
func TraceTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))
}

// callTracer makes the span of each API call. A nil *callTracer makes none, at no cost: the
// caller checks for nil before anything else.
type callTracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator // what producers write: the W3C trace context
}

func newCallTracer(tp trace.TracerProvider) *callTracer {
	if tp == nil {
		return nil
	}
	return &callTracer{tracer: tp.Tracer(tracerName), prop: propagation.TraceContext{}}
}

// spanName is the name of the span of j's call: its endpoint, after the kind of the message
// that decides it (a flush's track, a send, a v2 message).
func spanName(j *job) string {
	if j.kind == jobFlush {
		return "notifizz.track"
	}
	return "notifizz." + string(j.members[len(j.members)-1].kind)
}

// start opens the span of the call of j, a flush, a send or a v2 call, and returns ctx with it.
// The last member decides (the track of a flush), and its trace is the parent; every other
// member whose headers carry a trace is linked.
func (t *callTracer) start(ctx context.Context, j *job) (context.Context, trace.Span) {
	deciding := j.members[len(j.members)-1]
	parent := t.prop.Extract(ctx, schema.HeaderCarrier(deciding.msg.Headers()))
	others := j.members[:len(j.members)-1]
	var links []trace.Link
	var linkAttrs []attribute.KeyValue // one backing array for every link's attributes
	for _, h := range others {
		sc := trace.SpanContextFromContext(t.prop.Extract(context.Background(), schema.HeaderCarrier(h.msg.Headers())))
		if !sc.IsValid() {
			continue
		}
		if links == nil {
			links = make([]trace.Link, 0, len(others))
			linkAttrs = make([]attribute.KeyValue, 0, 2*len(others))
		}
		n := len(linkAttrs)
		linkAttrs = append(linkAttrs, attrKind.String(string(h.kind)), attrStreamSequence.Int64(int64(h.seq)))
		links = append(links, trace.Link{SpanContext: sc, Attributes: linkAttrs[n:len(linkAttrs):len(linkAttrs)]})
	}
	var delivered uint64
	for _, h := range j.members {
		delivered = max(delivered, h.delivered)
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", deciding.msg.Subject()),
		attrEventKey.String(deciding.key),
		attrMessages.Int(len(j.members)),
		attrAttempt.Int64(int64(delivered)),
	}
	switch {
	case deciding.track != nil:
		attrs = append(attrs, attrEventName.String(deciding.track.EventName),
			attrWorkflows.Int(workflowCount(j.members)))
	case deciding.send != nil:
		attrs = append(attrs, attrNotifID.String(deciding.send.NotifID))
	}
	return t.tracer.Start(parent, spanName(j), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
}

// workflowCount is the number of workflows of a flush: the track's inline ones and the workflow
// messages.
func workflowCount(members []*heldMsg) int {
	n := 0
	for _, h := range members {
		switch {
		case h.track != nil:
			n += len(h.track.Workflows)
		case h.workflow != nil:
			n++
		}
	}
	return n
}

// end records what became of the call's messages and ends the span: the outcome (ack, nak,
// dead_letter with its reason), the key the call was made under, the API's status, and an
// event for a nak (with its delay) or a dead letter (with its reason). copyErr is the error of
// a dead-letter copy that could not be stored.
func (t *callTracer) end(span trace.Span, d decision, copyErr error) {
	attrs := []attribute.KeyValue{attrOutcome.String(d.action.String())}
	if d.key != "" {
		attrs = append(attrs, attrIdempotencyKey.String(d.key))
	}
	if d.status != 0 {
		attrs = append(attrs, attrStatusCode.Int(d.status))
	}
	switch d.action {
	case actNak:
		span.AddEvent("nak", trace.WithAttributes(attribute.String("delay", d.delay.String())))
		span.SetStatus(codes.Error, d.detail)
	case actPause:
		span.AddEvent("auth_pause")
		span.SetStatus(codes.Error, d.detail)
	case actDeadLetter:
		attrs = append(attrs, attrDeadLetter.String(string(d.reason)))
		span.AddEvent("dead_letter", trace.WithAttributes(attribute.String("reason", string(d.reason))))
		span.SetStatus(codes.Error, string(d.reason)+": "+d.detail)
		if copyErr != nil {
			span.RecordError(copyErr, trace.WithAttributes(attribute.String("what", "dead-letter copy not stored")))
		}
	}
	span.SetAttributes(attrs...)
	span.End()
}
