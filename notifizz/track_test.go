package notifizz_test

import (
	"context"
	"math"
	"regexp"
	"testing"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// trackKeys is the exact key order of the official SDK's track body.
var trackKeys = []string{"eventName", "properties", "workflows", "sdkSecretKey", "idempotencyKey"}

func TestTrackEventWireFormat(t *testing.T) {
	tests := []struct {
		name string
		req  notifizz.TrackRequest
		want string
	}{
		{
			name: "full event",
			req: notifizz.TrackRequest{
				EventName:  "order_shipped",
				Properties: map[string]any{"orderId": "ORD-4521", "carrier": "FedEx", "amount": 99.99, "tags": []string{"a", "b"}},
				Workflows: []notifizz.Workflow{
					{CampaignID: "shipping_notification", Recipients: []notifizz.Recipient{
						{ID: "user_42", Email: "alice@example.com", Extra: map[string]any{"locale": "fr", "vip": true}},
					}},
					{CampaignID: "notify_team", Recipients: []notifizz.Recipient{
						{ID: "team_1", Email: "lead@example.com"},
						{ID: "team_2", Email: "manager@example.com"},
					}},
				},
				IdempotencyKey: "order-4521-shipped",
			},
			want: `{"eventName":"order_shipped",
				"properties":{"orderId":"ORD-4521","carrier":"FedEx","amount":99.99,"tags":["a","b"]},
				"workflows":[
					{"campaignId":"shipping_notification","recipients":[{"id":"user_42","email":"alice@example.com","locale":"fr","vip":true}]},
					{"campaignId":"notify_team","recipients":[{"id":"team_1","email":"lead@example.com"},{"id":"team_2","email":"manager@example.com"}]}],
				"sdkSecretKey":"` + sdkSecret + `","idempotencyKey":"order-4521-shipped"}`,
		},
		{
			name: "nil properties and workflows",
			req:  notifizz.TrackRequest{EventName: "ping", IdempotencyKey: "k1"},
			want: `{"eventName":"ping","properties":{},"workflows":[],"sdkSecretKey":"` + sdkSecret + `","idempotencyKey":"k1"}`,
		},
		{
			name: "empty properties map",
			req:  notifizz.TrackRequest{EventName: "ping", Properties: map[string]any{}, Workflows: []notifizz.Workflow{}, IdempotencyKey: "k2"},
			want: `{"eventName":"ping","properties":{},"workflows":[],"sdkSecretKey":"` + sdkSecret + `","idempotencyKey":"k2"}`,
		},
		{
			name: "workflow without recipients",
			req:  notifizz.TrackRequest{EventName: "ping", Workflows: []notifizz.Workflow{{CampaignID: "c"}}, IdempotencyKey: "k3"},
			want: `{"eventName":"ping","properties":{},"workflows":[{"campaignId":"c","recipients":[]}],"sdkSecretKey":"` + sdkSecret + `","idempotencyKey":"k3"}`,
		},
		{
			name: "strings needing escapes",
			req: notifizz.TrackRequest{
				EventName:  "quote\" back\\ <b>&amp;\n\t\x01 é \u2028 \xff",
				Properties: map[string]any{"html": "<script>"},
				Workflows: []notifizz.Workflow{{CampaignID: "c\"1", Recipients: []notifizz.Recipient{
					{ID: "ü", Email: "a+b@example.com", Extra: map[string]any{"k\"ey": "v<"}},
				}}},
				IdempotencyKey: "k4",
			},
			want: `{"eventName":"quote\" back\\ <b>&amp;\n\t\u0001 é \u2028 \ufffd","properties":{"html":"<script>"},
				"workflows":[{"campaignId":"c\"1","recipients":[{"id":"ü","email":"a+b@example.com","k\"ey":"v<"}]}],
				"sdkSecretKey":"` + sdkSecret + `","idempotencyKey":"k4"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, nil)
			require.NoError(t, client.TrackEvent(context.Background(), tt.req))

			h := api.only(t)
			assert.Equal(t, "POST", h.method)
			assert.Equal(t, "/v1/events/track", h.uri)
			assertHeaders(t, h, trackHeaders(tt.req.IdempotencyKey))
			require.JSONEq(t, tt.want, string(h.body))
			assert.Equal(t, trackKeys, topLevelKeys(t, h.body))
			assert.Equal(t, byte('{'), field(t, h.body, "properties")[0], "properties is an object")
			assert.Equal(t, byte('['), field(t, h.body, "workflows")[0], "workflows is an array")
			assert.NotContains(t, string(h.body), "\n", "the body is one line")
		})
	}
}

func TestTrackEventRandomIdempotencyKey(t *testing.T) {
	client, api := setup(t, nil)
	for range 2 {
		require.NoError(t, client.TrackEvent(context.Background(), notifizz.TrackRequest{EventName: "ping"}))
	}
	hits := api.all()
	require.Len(t, hits, 2)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	var keys []string
	for _, h := range hits {
		var key string
		require.NoError(t, json.Unmarshal(field(t, h.body, "idempotencyKey"), &key))
		assert.Regexp(t, hex32, key)
		assert.Equal(t, key, h.header.Get("X-Idempotency-Key"), "header and body carry the same key")
		keys = append(keys, key)
	}
	assert.NotEqual(t, keys[0], keys[1], "every event gets its own key")
}

func TestTrackEventInvalidRequest(t *testing.T) {
	tests := []struct {
		name string
		req  notifizz.TrackRequest
	}{
		{"empty event name", notifizz.TrackRequest{Properties: map[string]any{"a": 1}}},
		{"unencodable property", notifizz.TrackRequest{EventName: "e", Properties: map[string]any{"f": func() {}}}},
		{"NaN property", notifizz.TrackRequest{EventName: "e", Properties: map[string]any{"n": math.NaN()}}},
		{"unencodable recipient key", notifizz.TrackRequest{EventName: "e", Workflows: []notifizz.Workflow{
			{CampaignID: "c", Recipients: []notifizz.Recipient{{ID: "u", Email: "e", Extra: map[string]any{"ch": make(chan int)}}}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, nil)
			err := client.TrackEvent(context.Background(), tt.req)
			require.ErrorIs(t, err, notifizz.ErrInvalidRequest)
			assert.False(t, notifizz.IsRetryable(err))
			assert.Zero(t, api.count(), "no request is made")
			assertNoSecrets(t, err)
		})
	}
}

func TestTrackEventRecipientCustomKeys(t *testing.T) {
	client, api := setup(t, nil)
	in := notifizz.Recipient{ID: "user_42", Email: "alice@example.com", Extra: map[string]any{
		"firstName": "Alice",
		"address":   map[string]any{"city": "Lyon", "zip": "69001"},
		"score":     json.Number("12345678901234567890"),
	}}
	require.NoError(t, client.TrackEvent(context.Background(), notifizz.TrackRequest{
		EventName: "e", Workflows: []notifizz.Workflow{{CampaignID: "c", Recipients: []notifizz.Recipient{in}}},
	}))

	var workflows []notifizz.Workflow
	require.NoError(t, json.Unmarshal(field(t, api.only(t).body, "workflows"), &workflows))
	require.Len(t, workflows, 1)
	require.Len(t, workflows[0].Recipients, 1)
	assert.Equal(t, in, workflows[0].Recipients[0], "custom keys survive the trip through the API body")
}

func TestRecipientJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string // JSON to decode
		want notifizz.Recipient
		out  string // exact re-encoding
	}{
		{
			name: "plain",
			in:   `{"email":"alice@example.com","id":"user_42"}`,
			want: notifizz.Recipient{ID: "user_42", Email: "alice@example.com"},
			out:  `{"id":"user_42","email":"alice@example.com"}`,
		},
		{
			name: "custom keys sorted after id and email",
			in:   `{"zeta":"z","email":"a@x.io","alpha":[1,{"b":true,"a":null}],"id":"u1","big":12345678901234567890,"pi":3.14}`,
			want: notifizz.Recipient{ID: "u1", Email: "a@x.io", Extra: map[string]any{
				"zeta":  "z",
				"alpha": []any{json.Number("1"), map[string]any{"b": true, "a": nil}},
				"big":   json.Number("12345678901234567890"),
				"pi":    json.Number("3.14"),
			}},
			out: `{"id":"u1","email":"a@x.io","alpha":[1,{"a":null,"b":true}],"big":12345678901234567890,"pi":3.14,"zeta":"z"}`,
		},
		{
			name: "missing and null id and email",
			in:   `{"id":null,"name":"n"}`,
			want: notifizz.Recipient{Extra: map[string]any{"name": "n"}},
			out:  `{"id":"","email":"","name":"n"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got notifizz.Recipient
			require.NoError(t, json.Unmarshal([]byte(tt.in), &got))
			assert.Equal(t, tt.want, got)

			out, err := json.Marshal(got)
			require.NoError(t, err)
			assert.Equal(t, tt.out, string(out))

			var again notifizz.Recipient
			require.NoError(t, json.Unmarshal(out, &again))
			assert.Equal(t, got, again, "a second round trip changes nothing")
		})
	}

	t.Run("custom keys never override id and email", func(t *testing.T) {
		r := notifizz.Recipient{ID: "real", Email: "real@example.com", Extra: map[string]any{"id": "evil", "email": "evil@example.com", "x": 1}}
		out, err := json.Marshal(r)
		require.NoError(t, err)
		assert.Equal(t, `{"id":"real","email":"real@example.com","x":1}`, string(out))
	})

	t.Run("null leaves the recipient unchanged", func(t *testing.T) {
		r := notifizz.Recipient{ID: "keep"}
		require.NoError(t, json.Unmarshal([]byte(`null`), &r))
		assert.Equal(t, notifizz.Recipient{ID: "keep"}, r)
	})

	for _, in := range []string{`{"id":42,"email":"a@x.io"}`, `{"id":"u","email":true}`, `[1]`, `"u"`} {
		t.Run("invalid "+in, func(t *testing.T) {
			var r notifizz.Recipient
			assert.Error(t, json.Unmarshal([]byte(in), &r))
		})
	}

	t.Run("inside a workflow", func(t *testing.T) {
		w := notifizz.Workflow{CampaignID: "c", Recipients: []notifizz.Recipient{{ID: "u", Email: "e", Extra: map[string]any{"k": "v"}}}}
		out, err := json.Marshal(w)
		require.NoError(t, err)
		assert.Equal(t, `{"campaignId":"c","recipients":[{"id":"u","email":"e","k":"v"}]}`, string(out))
		var back notifizz.Workflow
		require.NoError(t, json.Unmarshal(out, &back))
		assert.Equal(t, w, back)
	})
}
