package schema

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// setupJetStream starts an embedded JetStream server and creates a stream capturing the subjects
// of prefix (StreamSubjects), with a duplicate window long enough that no test outlives it.
func setupJetStream(t *testing.T, prefix string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	return setupJetStreamSubjects(t, StreamSubjects(prefix))
}

// setupJetStreamSubjects is setupJetStream with a stream capturing the given subjects.
func setupJetStreamSubjects(t *testing.T, subjects []string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	srv := natstest.Run(t, natstest.Options(t.TempDir()))
	_, js := natstest.Connect(t, srv.ClientURL())

	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:       "NOTIFIZZ",
		Subjects:   subjects,
		Storage:    jetstream.MemoryStorage,
		Duplicates: time.Hour,
	})
	require.NoError(t, err)
	return js, stream
}

func streamMsgs(t *testing.T, stream jetstream.Stream) uint64 {
	t.Helper()
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

func sha32(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])[:32]
}

func TestProducerPublishes(t *testing.T) {
	js, stream := setupJetStream(t, DefaultPrefix)
	p := NewProducer(js)
	ctx := t.Context()
	ada := Recipient{ID: "user_42", Email: "ada@example.com", Extra: map[string]any{"firstName": "Ada"}}

	tests := []struct {
		name        string
		publish     func() (*jetstream.PubAck, error)
		wantSubject string
		wantBody    string
		wantMsgID   string // "" means the default
	}{
		{
			name: "track",
			publish: func() (*jetstream.PubAck, error) {
				return p.Track(ctx, "order-4521-shipped", "order_shipped", map[string]any{"orderId": "ORD-4521", "total": 129.9})
			},
			wantSubject: "notifizz.track.order-4521-shipped",
			wantBody:    `{"eventName":"order_shipped","properties":{"orderId":"ORD-4521","total":129.9}}`,
		},
		{
			name: "track with nil properties",
			publish: func() (*jetstream.PubAck, error) {
				return p.Track(ctx, "signup-7", "signup", nil)
			},
			wantSubject: "notifizz.track.signup-7",
			wantBody:    `{"eventName":"signup","properties":{}}`,
		},
		{
			name: "track with inline workflow and idempotency key",
			publish: func() (*jetstream.PubAck, error) {
				return p.TrackWith(ctx, "order-9", Track{
					EventName:      "order_shipped",
					Properties:     map[string]any{},
					Workflows:      []Workflow{{CampaignID: "shipping-update", Recipients: []Recipient{ada}}},
					IdempotencyKey: "order-9-shipped",
				}, WithMsgID("custom-id-1"))
			},
			wantSubject: "notifizz.track.order-9",
			wantBody:    `{"eventName":"order_shipped","properties":{},"workflows":[{"campaignId":"shipping-update","recipients":[{"id":"user_42","email":"ada@example.com","firstName":"Ada"}]}],"idempotencyKey":"order-9-shipped"}`,
			wantMsgID:   "custom-id-1",
		},
		{
			name: "workflow",
			publish: func() (*jetstream.PubAck, error) {
				return p.Workflow(ctx, "order-4521-shipped", "shipping-update", ada, Recipient{ID: "ops", Email: "ops@example.com"})
			},
			wantSubject: "notifizz.workflow.order-4521-shipped",
			wantBody:    `{"campaignId":"shipping-update","recipients":[{"id":"user_42","email":"ada@example.com","firstName":"Ada"},{"id":"ops","email":"ops@example.com"}]}`,
		},
		{
			name: "workflow with",
			publish: func() (*jetstream.PubAck, error) {
				return p.WorkflowWith(ctx, "order-1", Workflow{CampaignID: "c", Recipients: []Recipient{{ID: "u", Email: "e"}}}, WithMsgID("wf-1"))
			},
			wantSubject: "notifizz.workflow.order-1",
			wantBody:    `{"campaignId":"c","recipients":[{"id":"u","email":"e"}]}`,
			wantMsgID:   "wf-1",
		},
		{
			name: "commit",
			publish: func() (*jetstream.PubAck, error) {
				return p.Commit(ctx, "order-4521-shipped")
			},
			wantSubject: "notifizz.commit.order-4521-shipped",
			wantBody:    ``,
		},
		{
			name: "send",
			publish: func() (*jetstream.PubAck, error) {
				return p.Send(ctx, "req-1", "notif_123", map[string]any{
					"title":      "Shipped",
					"recipients": []Recipient{ada},
				})
			},
			wantSubject: "notifizz.send.req-1",
			wantBody:    `{"notifId":"notif_123","properties":{"recipients":[{"id":"user_42","email":"ada@example.com","firstName":"Ada"}],"title":"Shipped"}}`,
		},
		{
			name: "send with typed recipients",
			publish: func() (*jetstream.PubAck, error) {
				return p.SendWith(ctx, "req-2", Send{NotifID: "n", Recipients: []Recipient{{ID: "u", Email: "e"}}})
			},
			wantSubject: "notifizz.send.req-2",
			wantBody:    `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}]}}`,
		},
		{
			name: "raw",
			publish: func() (*jetstream.PubAck, error) {
				return p.Publish(ctx, KindTrack, "raw-1", []byte(` {"eventName":"e", "properties":{"a":1}, "future":true} `))
			},
			wantSubject: "notifizz.track.raw-1",
			wantBody:    ` {"eventName":"e", "properties":{"a":1}, "future":true} `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := streamMsgs(t, stream)
			ack, err := tt.publish()
			require.NoError(t, err)
			assert.False(t, ack.Duplicate)
			assert.Equal(t, "NOTIFIZZ", ack.Stream)
			assert.Equal(t, before+1, streamMsgs(t, stream))

			msg, err := stream.GetMsg(ctx, ack.Sequence)
			require.NoError(t, err)
			assert.Equal(t, tt.wantSubject, msg.Subject)
			assert.Equal(t, tt.wantBody, string(msg.Data))

			kind, key, err := ParseSubject(DefaultPrefix, msg.Subject)
			require.NoError(t, err)
			wantID := tt.wantMsgID
			if wantID == "" {
				wantID = string(kind) + "-" + key + "-" + sha32(tt.wantBody)
			}
			assert.Equal(t, wantID, msg.Header.Get(jetstream.MsgIDHeader))
			assert.NoError(t, Validate(kind, msg.Data), "what was published must be valid")
		})
	}
}

func TestProducerDeduplicates(t *testing.T) {
	js, stream := setupJetStream(t, DefaultPrefix)
	p := NewProducer(js)
	ctx := t.Context()

	first, err := p.Track(ctx, "order-1", "order_shipped", map[string]any{"orderId": "1"})
	require.NoError(t, err)
	require.False(t, first.Duplicate)

	// A retry of the same publish (e.g. after a lost acknowledgement) has the same default ID.
	retry, err := p.Track(ctx, "order-1", "order_shipped", map[string]any{"orderId": "1"})
	require.NoError(t, err)
	assert.True(t, retry.Duplicate)
	assert.Equal(t, first.Sequence, retry.Sequence)
	assert.Equal(t, uint64(1), streamMsgs(t, stream))

	// An explicit ID de-duplicates whatever the body.
	a, err := p.Workflow(ctx, "order-1", "c", Recipient{ID: "u", Email: "e"})
	require.NoError(t, err)
	_, err = p.WorkflowWith(ctx, "order-1", Workflow{CampaignID: "c", Recipients: []Recipient{{ID: "u", Email: "e"}}}, WithMsgID("wf-x"))
	require.NoError(t, err)
	b, err := p.WorkflowWith(ctx, "order-1", Workflow{CampaignID: "other", Recipients: []Recipient{{ID: "v", Email: "f"}}}, WithMsgID("wf-x"))
	require.NoError(t, err)
	assert.False(t, a.Duplicate)
	assert.True(t, b.Duplicate)
	assert.Equal(t, uint64(3), streamMsgs(t, stream))

	// A different body or key is a different message.
	_, err = p.Track(ctx, "order-2", "order_shipped", map[string]any{"orderId": "1"})
	require.NoError(t, err)
	_, err = p.Track(ctx, "order-1", "order_shipped", map[string]any{"orderId": "2"})
	require.NoError(t, err)
	assert.Equal(t, uint64(5), streamMsgs(t, stream))

	// An empty ID turns de-duplication off.
	for range 2 {
		ack, err := p.Commit(ctx, "order-1", WithMsgID(""))
		require.NoError(t, err)
		assert.False(t, ack.Duplicate)
	}
	assert.Equal(t, uint64(7), streamMsgs(t, stream))
	last, err := stream.GetLastMsgForSubject(ctx, "notifizz.commit.order-1")
	require.NoError(t, err)
	assert.Empty(t, last.Header.Get(jetstream.MsgIDHeader))
}

func TestProducerRefusesInvalid(t *testing.T) {
	js, stream := setupJetStream(t, DefaultPrefix)
	p := NewProducer(js)
	bad := NewProducer(js, WithPrefix("notifizz.*"))
	ctx := t.Context()

	tests := []struct {
		name    string
		publish func() (*jetstream.PubAck, error)
		reason  Reason
		want    []Problem
	}{
		{name: "empty event name", publish: func() (*jetstream.PubAck, error) { return p.Track(ctx, "k", "", nil) },
			reason: ReasonInvalidMessage, want: problems("eventName", "must not be empty")},
		{name: "secret in properties", publish: func() (*jetstream.PubAck, error) {
			return p.Track(ctx, "k", "e", map[string]any{"cfg": map[string]any{"sdkSecretKey": "sk_live"}})
		}, reason: ReasonSecretInMessage, want: problems("properties.cfg.sdkSecretKey", secretMsg)},
		{name: "no recipients", publish: func() (*jetstream.PubAck, error) { return p.Workflow(ctx, "k", "c") },
			reason: ReasonInvalidMessage, want: problems("recipients", "must not be empty")},
		{name: "recipient without email", publish: func() (*jetstream.PubAck, error) { return p.Workflow(ctx, "k", "c", Recipient{ID: "u"}) },
			reason: ReasonInvalidMessage, want: problems("recipients[0].email", "must not be empty")},
		{name: "send without recipients", publish: func() (*jetstream.PubAck, error) { return p.Send(ctx, "k", "n", map[string]any{"title": "t"}) },
			reason: ReasonInvalidMessage, want: problems("properties.recipients", "required")},
		{name: "raw invalid JSON", publish: func() (*jetstream.PubAck, error) { return p.Publish(ctx, KindTrack, "k", []byte(`{`)) },
			reason: ReasonInvalidJSON},
		{name: "raw too large", publish: func() (*jetstream.PubAck, error) {
			return p.Publish(ctx, KindCommit, "k", make([]byte, MaxBodySize+1))
		}, reason: ReasonTooLarge},
		{name: "bad key", publish: func() (*jetstream.PubAck, error) { return p.Commit(ctx, "order.1") },
			reason: ReasonUnknownSubject, want: problems("key", "must be a single subject token (no '.')")},
		{name: "unknown kind", publish: func() (*jetstream.PubAck, error) { return p.Publish(ctx, Kind("event"), "k", []byte(`{}`)) },
			reason: ReasonUnknownSubject},
		{name: "bad prefix", publish: func() (*jetstream.PubAck, error) { return bad.Commit(ctx, "k") },
			reason: ReasonUnknownSubject, want: problems("prefix", "token 2 must not contain the wildcards '*' or '>'")},
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

func TestProducerCustomPrefix(t *testing.T) {
	js, stream := setupJetStream(t, "acme.notifizz")
	p := NewProducer(js, WithPrefix("acme.notifizz"))
	ctx := t.Context()

	ack, err := p.Track(ctx, "k1", "e", nil)
	require.NoError(t, err)
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	assert.Equal(t, "acme.notifizz.track.k1", msg.Subject)

	// With the default prefix, no stream captures the subject: JetStream reports that.
	_, err = NewProducer(js).Commit(ctx, "k1")
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	assert.Equal(t, Reason(""), ReasonOf(err))
	assert.Equal(t, uint64(1), streamMsgs(t, stream))
}

func TestProducerHonoursContext(t *testing.T) {
	js, stream := setupJetStream(t, DefaultPrefix)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := NewProducer(js).Commit(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, uint64(0), streamMsgs(t, stream))
}

func TestMsgID(t *testing.T) {
	assert.Equal(t, "commit-k-e3b0c44298fc1c149afbf4c8996fb924", MsgID(KindCommit, "k", nil))
	assert.Equal(t, "track-order-1-"+sha32(`{}`), MsgID(KindTrack, "order-1", []byte(`{}`)))
}
