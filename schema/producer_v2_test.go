package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProducerPublishesV2 publishes every v2 message to a stream that captures every kind of
// AllKinds (the bridge's stream does not capture KindsV2 yet) and decodes each back.
func TestProducerPublishesV2(t *testing.T) {
	var subjects []string
	for _, k := range AllKinds {
		subjects = append(subjects, DefaultPrefix+"."+string(k)+".*")
	}
	js, stream := setupJetStreamSubjects(t, subjects)
	p := NewProducer(js)
	ctx := t.Context()
	ada := Identity{Type: "email", Identifier: "ada@example.com"}
	crm := Identity{Type: "crm", Identifier: "c-42"}
	// A time in another zone, with more than milliseconds: sent in UTC, to the millisecond.
	occurred := time.Date(2026, 3, 1, 14, 0, 0, 123456789, time.FixedZone("", 2*60*60))
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name        string
		publish     func() (*jetstream.PubAck, error)
		wantSubject string
		wantBody    string
		wantMsgID   string // "" means the default
		want        any    // what the decoder gives back
	}{
		{
			name: "track with occurredAt",
			publish: func() (*jetstream.PubAck, error) {
				return p.TrackWith(ctx, "order-4521-shipped", Track{
					EventName: "order_shipped", Properties: map[string]any{"orderId": "ORD-4521"}, OccurredAt: occurred,
				})
			},
			wantSubject: "notifizz.track.order-4521-shipped",
			wantBody:    `{"eventName":"order_shipped","properties":{"orderId":"ORD-4521"},"occurredAt":"2026-03-01T12:00:00.123Z"}`,
			want: &Track{EventName: "order_shipped", Properties: map[string]any{"orderId": "ORD-4521"},
				OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)},
		},
		{
			name: "track with occurredAt and idempotency key",
			publish: func() (*jetstream.PubAck, error) {
				return p.TrackWith(ctx, "signup-7", Track{EventName: "signup", IdempotencyKey: "signup-7", OccurredAt: expires}, WithMsgID("t-1"))
			},
			wantSubject: "notifizz.track.signup-7",
			wantBody:    `{"eventName":"signup","properties":{},"idempotencyKey":"signup-7","occurredAt":"2027-01-01T00:00:00.000Z"}`,
			wantMsgID:   "t-1",
			want:        &Track{EventName: "signup", Properties: map[string]any{}, IdempotencyKey: "signup-7", OccurredAt: expires},
		},
		{
			name: "identify",
			publish: func() (*jetstream.PubAck, error) {
				return p.Identify(ctx, "link-ada", Identify{EnvironmentID: "env_1", SubjectA: ada, SubjectB: crm, ConsentBasis: "contract"})
			},
			wantSubject: "notifizz.identify.link-ada",
			wantBody:    `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"ada@example.com"},"subjectB":{"type":"crm","identifier":"c-42"},"consentBasis":"contract"}`,
			want:        &Identify{EnvironmentID: "env_1", SubjectA: ada, SubjectB: crm, ConsentBasis: "contract"},
		},
		{
			name: "identify with expiresAt",
			publish: func() (*jetstream.PubAck, error) {
				return p.Identify(ctx, "link-ada-2", Identify{EnvironmentID: "env_1", SubjectA: ada, SubjectB: crm,
					ConsentBasis: "consent", ExpiresAt: expires.In(time.FixedZone("", -5*60*60))}, WithMsgID("id-2"))
			},
			wantSubject: "notifizz.identify.link-ada-2",
			wantBody:    `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"ada@example.com"},"subjectB":{"type":"crm","identifier":"c-42"},"consentBasis":"consent","expiresAt":"2027-01-01T00:00:00.000Z"}`,
			wantMsgID:   "id-2",
			want:        &Identify{EnvironmentID: "env_1", SubjectA: ada, SubjectB: crm, ConsentBasis: "consent", ExpiresAt: expires},
		},
		{
			name: "detach",
			publish: func() (*jetstream.PubAck, error) {
				return p.Detach(ctx, "detach-ada", Detach{EnvironmentID: "env_1", Subject: ada})
			},
			wantSubject: "notifizz.detach.detach-ada",
			wantBody:    `{"environmentId":"env_1","subject":{"type":"email","identifier":"ada@example.com"}}`,
			want:        &Detach{EnvironmentID: "env_1", Subject: ada},
		},
		{
			name: "subscribe",
			publish: func() (*jetstream.PubAck, error) {
				return p.Subscribe(ctx, "sub-1", "order-4521", "user_42", nil)
			},
			wantSubject: "notifizz.subscribe.sub-1",
			wantBody:    `{"resourceId":"order-4521","subscriberId":"user_42"}`,
			want:        &Subscribe{ResourceID: "order-4521", SubscriberID: "user_42"},
		},
		{
			name: "subscribe with meta",
			publish: func() (*jetstream.PubAck, error) {
				return p.Subscribe(ctx, "sub-2", "order/4521", "user_42", map[string]any{
					"channel": "email", "weight": 3, "subscriberId": "ignored", "tags": []string{"a"},
				})
			},
			wantSubject: "notifizz.subscribe.sub-2",
			wantBody:    `{"resourceId":"order/4521","subscriberId":"user_42","channel":"email","tags":["a"],"weight":3}`,
			want: &Subscribe{ResourceID: "order/4521", SubscriberID: "user_42", Meta: map[string]any{
				"channel": "email", "weight": json.Number("3"), "tags": []any{"a"},
			}},
		},
		{
			name: "unsubscribe",
			publish: func() (*jetstream.PubAck, error) {
				return p.Unsubscribe(ctx, "unsub-1", "order-4521", "user_42")
			},
			wantSubject: "notifizz.unsubscribe.unsub-1",
			wantBody:    `{"resourceId":"order-4521","subscriberId":"user_42"}`,
			want:        &Unsubscribe{ResourceID: "order-4521", SubscriberID: "user_42"},
		},
		{
			name: "raw",
			publish: func() (*jetstream.PubAck, error) {
				return p.Publish(ctx, KindUnsubscribe, "raw-1", []byte(`{"subscriberId":"s","resourceId":"r"}`))
			},
			wantSubject: "notifizz.unsubscribe.raw-1",
			wantBody:    `{"subscriberId":"s","resourceId":"r"}`,
			want:        &Unsubscribe{ResourceID: "r", SubscriberID: "s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := streamMsgs(t, stream)
			ack, err := tt.publish()
			require.NoError(t, err)
			assert.False(t, ack.Duplicate)
			assert.Equal(t, before+1, streamMsgs(t, stream))

			msg, err := stream.GetMsg(ctx, ack.Sequence)
			require.NoError(t, err)
			assert.Equal(t, tt.wantSubject, msg.Subject)
			assert.Equal(t, tt.wantBody, string(msg.Data))

			kind, key, err := subjectKindKey(msg.Subject)
			require.NoError(t, err)
			wantID := tt.wantMsgID
			if wantID == "" {
				wantID = string(kind) + "-" + key + "-" + sha32(tt.wantBody)
			}
			assert.Equal(t, wantID, msg.Header.Get(jetstream.MsgIDHeader))

			got, err := decode(kind, msg.Data)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	// A retry of the same request is stored once.
	before := streamMsgs(t, stream)
	ack, err := p.Unsubscribe(ctx, "unsub-1", "order-4521", "user_42")
	require.NoError(t, err)
	assert.True(t, ack.Duplicate)
	assert.Equal(t, before, streamMsgs(t, stream))
}

// subjectKindKey splits <DefaultPrefix>.<kind>.<key> for any kind of AllKinds (ParseSubject
// knows only Kinds).
func subjectKindKey(subject string) (Kind, string, error) {
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) != 3 || parts[0] != DefaultPrefix {
		return "", "", fmt.Errorf("unexpected subject %q", subject)
	}
	k, err := ParseKindAny(parts[1])
	return k, parts[2], err
}

func TestProducerRefusesInvalidV2(t *testing.T) {
	js, stream := setupJetStreamSubjects(t, []string{"notifizz.>"})
	p := NewProducer(js)
	ctx := t.Context()
	ada := Identity{Type: "email", Identifier: "ada@example.com"}

	tests := []struct {
		name    string
		publish func() (*jetstream.PubAck, error)
		reason  Reason
		want    []Problem
	}{
		{name: "identify without consent basis", publish: func() (*jetstream.PubAck, error) {
			return p.Identify(ctx, "k", Identify{EnvironmentID: "e", SubjectA: ada, SubjectB: ada})
		}, reason: ReasonInvalidMessage, want: problems("consentBasis", "must not be empty")},
		{name: "identify with empty subject", publish: func() (*jetstream.PubAck, error) {
			return p.Identify(ctx, "k", Identify{EnvironmentID: "e", SubjectA: ada, ConsentBasis: "c"})
		}, reason: ReasonInvalidMessage, want: problems("subjectB.type", "must not be empty", "subjectB.identifier", "must not be empty")},
		{name: "detach without environment", publish: func() (*jetstream.PubAck, error) {
			return p.Detach(ctx, "k", Detach{Subject: ada})
		}, reason: ReasonInvalidMessage, want: problems("environmentId", "must not be empty")},
		{name: "subscribe with a secret in meta", publish: func() (*jetstream.PubAck, error) {
			return p.Subscribe(ctx, "k", "r", "s", map[string]any{"authSecretKey": "a"})
		}, reason: ReasonSecretInMessage, want: problems("authSecretKey", secretMsg)},
		{name: "unsubscribe without subscriber", publish: func() (*jetstream.PubAck, error) {
			return p.Unsubscribe(ctx, "k", "r", "")
		}, reason: ReasonInvalidMessage, want: problems("subscriberId", "must not be empty")},
		{name: "bad key", publish: func() (*jetstream.PubAck, error) {
			return p.Unsubscribe(ctx, "a b", "r", "s")
		}, reason: ReasonUnknownSubject, want: problems("key", "must not contain whitespace or control characters")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack, err := tt.publish()
			assertSchemaError(t, err, tt.reason, tt.want)
			assert.Nil(t, ack)
		})
	}
	assert.Equal(t, uint64(0), streamMsgs(t, stream), "nothing may be published")
}
