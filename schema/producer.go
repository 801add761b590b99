package schema

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
)

// Producer publishes messages of the contract to JetStream: the Notifizz SDK's chain
// (client.track(...).workflow(...), then send or await) spread over the bus, with the event key
// tying the pieces together. Every method validates the body with this package's decoders before
// publishing, so an invalid message returns the same *Error the bridge would dead-letter it with,
// and nothing is published.
//
// Every message gets a Nats-Msg-Id, by default derived from its kind, key and body (see MsgID):
// retrying a publish whose acknowledgement was lost does not store it twice, as long as the retry
// falls within the stream's duplicate window. The trace of the context a method is given goes
// with the message as W3C traceparent and tracestate headers (see WithPropagator), so that the
// bridge's API call for the event joins that trace; a context with no span adds no header.
// A Producer is safe for concurrent use.
type Producer struct {
	js     jetstream.JetStream
	prefix string
	prop   propagation.TextMapPropagator // nil: no trace headers
}

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithPrefix sets the subject prefix (default DefaultPrefix). It must match the bridge's
// stream.subjectPrefix. An invalid prefix makes every publish fail.
func WithPrefix(prefix string) ProducerOption {
	return func(p *Producer) { p.prefix = prefix }
}

// WithPropagator sets how the trace of a publish's context is written into the message's
// headers. The default is the W3C trace context (traceparent, tracestate), what the bridge
// reads; pass otel.GetTextMapPropagator() to add what the process propagates besides (baggage),
// or nil to write no trace header at all.
func WithPropagator(p propagation.TextMapPropagator) ProducerOption {
	return func(pr *Producer) { pr.prop = p }
}

// NewProducer returns a Producer publishing through js.
func NewProducer(js jetstream.JetStream, opts ...ProducerOption) *Producer {
	p := &Producer{js: js, prefix: DefaultPrefix, prop: propagation.TraceContext{}}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// PublishOption configures one publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	msgID    string
	msgIDSet bool
}

// WithMsgID sets the Nats-Msg-Id of the message instead of the default from MsgID, e.g. an ID the
// producer already has for the operation. An empty id publishes without Nats-Msg-Id, and so
// without de-duplication.
func WithMsgID(id string) PublishOption {
	return func(o *publishOptions) {
		o.msgID = id
		o.msgIDSet = true
	}
}

// MsgID returns the default Nats-Msg-Id of a message: "<kind>-<key>-" followed by the first 32
// hex digits (128 bits) of the SHA-256 of the body. It is deterministic, so an identical message
// published again for the same key within the stream's duplicate window is stored once; messages
// that differ in anything are not de-duplicated.
func MsgID(kind Kind, key string, body []byte) string {
	sum := sha256.Sum256(body)
	return string(kind) + "-" + key + "-" + hex.EncodeToString(sum[:16])
}

// Track publishes the event eventName with its properties on <prefix>.track.<key>. Nil props
// are sent as {}.
func (p *Producer) Track(ctx context.Context, key, eventName string, props map[string]any, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.TrackWith(ctx, key, Track{EventName: eventName, Properties: props}, opts...)
}

// TrackWith publishes t on <prefix>.track.<key>, for tracks with inline workflows, their own
// idempotency key, or the time the event occurred (t.OccurredAt, sent as occurredAt in UTC with
// milliseconds, under notifizz.api: v2).
func (p *Producer) TrackWith(ctx context.Context, key string, t Track, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindTrack, key, t, opts)
}

// Workflow publishes, on <prefix>.workflow.<key>, one campaign to send to recipients as part of
// the event with the same key. It takes no options because of its variadic recipients; see
// WorkflowWith.
func (p *Producer) Workflow(ctx context.Context, key, campaignID string, recipients ...Recipient) (*jetstream.PubAck, error) {
	return p.WorkflowWith(ctx, key, Workflow{CampaignID: campaignID, Recipients: recipients})
}

// WorkflowWith publishes w on <prefix>.workflow.<key>.
func (p *Producer) WorkflowWith(ctx context.Context, key string, w Workflow, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindWorkflow, key, w, opts)
}

// Commit publishes an empty message on <prefix>.commit.<key>: the event is complete and the
// bridge sends it without waiting for the rest of its coalescing delay, like awaiting the SDK's
// chain.
func (p *Producer) Commit(ctx context.Context, key string, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.Publish(ctx, KindCommit, key, nil, opts...)
}

// Send publishes a Notification Center request on <prefix>.send.<key>; props must contain
// "recipients". Nil props are sent as {} (and so refused, having no recipients).
func (p *Producer) Send(ctx context.Context, key, notifID string, props map[string]any, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.SendWith(ctx, key, Send{NotifID: notifID, Properties: props}, opts...)
}

// SendWith publishes s on <prefix>.send.<key>; s.Recipients, when not nil, is sent as
// properties.recipients.
func (p *Producer) SendWith(ctx context.Context, key string, s Send, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindSend, key, s, opts)
}

// Identify publishes, on <prefix>.identify.<key>, a request to link m.SubjectA and m.SubjectB to
// the same audience (notifizz.api: v2); the key names the request. A non-zero m.ExpiresAt is
// sent in UTC with milliseconds.
func (p *Producer) Identify(ctx context.Context, key string, m Identify, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindIdentify, key, m, opts)
}

// Detach publishes, on <prefix>.detach.<key>, a request to move m.Subject out of its audience
// (notifizz.api: v2); the key names the request.
func (p *Producer) Detach(ctx context.Context, key string, m Detach, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindDetach, key, m, opts)
}

// Subscribe publishes, on <prefix>.subscribe.<key>, a request to subscribe subscriberID to
// resourceID with the given meta keys, which may be nil (notifizz.api: v2); the key names the
// request.
func (p *Producer) Subscribe(ctx context.Context, key, resourceID, subscriberID string, meta map[string]any, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindSubscribe, key, Subscribe{ResourceID: resourceID, SubscriberID: subscriberID, Meta: meta}, opts)
}

// Unsubscribe publishes, on <prefix>.unsubscribe.<key>, a request to unsubscribe subscriberID
// from resourceID (notifizz.api: v2); the key names the request.
func (p *Producer) Unsubscribe(ctx context.Context, key, resourceID, subscriberID string, opts ...PublishOption) (*jetstream.PubAck, error) {
	return p.publishValue(ctx, KindUnsubscribe, key, Unsubscribe{ResourceID: resourceID, SubscriberID: subscriberID}, opts)
}

func (p *Producer) publishValue(ctx context.Context, kind Kind, key string, v any, opts []PublishOption) (*jetstream.PubAck, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("schema: encode %s body: %w", kind, err)
	}
	return p.Publish(ctx, kind, key, body, opts...)
}

// Publish publishes a raw body on <prefix>.<kind>.<key> after checking it with Validate, for
// producers that build their JSON themselves; kind may be any of AllKinds. Errors from the subject or the body are *Error;
// errors from JetStream are wrapped.
func (p *Producer) Publish(ctx context.Context, kind Kind, key string, body []byte, opts ...PublishOption) (*jetstream.PubAck, error) {
	subject, err := Subject(p.prefix, kind, key)
	if err != nil {
		return nil, err
	}
	if err := Validate(kind, body); err != nil {
		return nil, err
	}
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := o.msgID
	if !o.msgIDSet {
		id = MsgID(kind, key, body)
	}
	var pubOpts []jetstream.PublishOpt
	if id != "" {
		pubOpts = append(pubOpts, jetstream.WithMsgID(id))
	}
	m := &nats.Msg{Subject: subject, Data: body}
	if p.prop != nil {
		// Without a span in ctx the propagator writes nothing, and the message has no headers
		// but its Nats-Msg-Id.
		h := nats.Header{}
		p.prop.Inject(ctx, HeaderCarrier(h))
		if len(h) > 0 {
			m.Header = h
		}
	}
	ack, err := p.js.PublishMsg(ctx, m, pubOpts...)
	if err != nil {
		return nil, fmt.Errorf("schema: publish to %s: %w", subject, err)
	}
	return ack, nil
}
