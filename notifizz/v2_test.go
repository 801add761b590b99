package notifizz_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// v2Headers are the headers of a v2 call without an idempotency key.
var v2Headers = map[string]string{
	"Authorization":     "Bearer " + sdkSecret,
	"Content-Type":      "application/json",
	"User-Agent":        notifizz.DefaultUserAgent,
	"X-Idempotency-Key": "",
}

func setupV2(t *testing.T, h handlerFunc) (*notifizz.Client, *fakeAPI) {
	t.Helper()
	return setup(t, h, notifizz.WithAPI(notifizz.APIv2))
}

func TestTrackEventV2WireFormat(t *testing.T) {
	occurred := time.Date(2026, 11, 30, 9, 15, 2, 345_678_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		req  notifizz.TrackRequest
		want string
	}{
		{
			name: "with occurredAt, in UTC with milliseconds",
			req: notifizz.TrackRequest{EventName: "order_shipped", Properties: map[string]any{"orderId": "ORD-4521"},
				IdempotencyKey: "k1", OccurredAt: occurred},
			want: `{"eventName":"order_shipped","properties":{"orderId":"ORD-4521"},"sdkSecretKey":"` + sdkSecret +
				`","idempotencyKey":"k1","occurredAt":"2026-11-30T08:15:02.345Z"}`,
		},
		{
			name: "without occurredAt, name trimmed",
			req:  notifizz.TrackRequest{EventName: "  order_shipped\t", IdempotencyKey: "k2"},
			want: `{"eventName":"order_shipped","properties":{},"sdkSecretKey":"` + sdkSecret + `","idempotencyKey":"k2"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setupV2(t, nil)
			require.NoError(t, client.TrackEvent(context.Background(), tt.req))
			h := api.only(t)
			assert.Equal(t, "POST", h.method)
			assert.Equal(t, "/v1/events/track", h.uri)
			assertHeaders(t, h, trackHeaders(tt.req.IdempotencyKey))
			assert.JSONEq(t, tt.want, string(h.body))
			assert.NotContains(t, string(h.body), "workflows")
		})
	}
}

func TestTrackEventV2Refusals(t *testing.T) {
	tests := []struct {
		name string
		req  notifizz.TrackRequest
		want string
	}{
		{"blank name", notifizz.TrackRequest{EventName: "   "}, "event name is invalid (empty)"},
		{"name too long", notifizz.TrackRequest{EventName: strings.Repeat("a", 121)}, "(too_long)"},
		{"name not printable ASCII", notifizz.TrackRequest{EventName: "commande_expédiée"}, "(non_ascii)"},
		{"control byte", notifizz.TrackRequest{EventName: "a\x01b"}, "(non_ascii)"},
		{"workflows", notifizz.TrackRequest{EventName: "e", Workflows: []notifizz.Workflow{{CampaignID: "c"}}}, "no workflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setupV2(t, nil)
			err := client.TrackEvent(context.Background(), tt.req)
			require.ErrorIs(t, err, notifizz.ErrInvalidRequest)
			assert.Contains(t, err.Error(), tt.want)
			assert.Zero(t, api.count(), "nothing was sent")
		})
	}
	t.Run("120 bytes is accepted", func(t *testing.T) {
		client, api := setupV2(t, nil)
		require.NoError(t, client.TrackEvent(context.Background(), notifizz.TrackRequest{EventName: strings.Repeat("a", 120)}))
		assert.Equal(t, 1, api.count())
	})
	t.Run("occurredAt under v1", func(t *testing.T) {
		client, api := setup(t, nil)
		err := client.TrackEvent(context.Background(), notifizz.TrackRequest{EventName: "e", OccurredAt: time.Now()})
		require.ErrorIs(t, err, notifizz.ErrInvalidRequest)
		assert.Contains(t, err.Error(), "occurredAt needs the v2 API")
		assert.Zero(t, api.count())
	})
	t.Run("send under v2", func(t *testing.T) {
		client, api := setupV2(t, nil)
		_, err := client.Send(context.Background(), "n1", map[string]any{"recipients": []notifizz.Recipient{{ID: "u", Email: "e@x"}}})
		require.ErrorIs(t, err, notifizz.ErrInvalidRequest)
		assert.Contains(t, err.Error(), "no Notification Center route")
		assert.Zero(t, api.count())
	})
}

func TestV2Calls(t *testing.T) {
	expires := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		call     func(*notifizz.Client) error
		method   string
		uri      string
		wantBody string
	}{
		{
			name: "identify",
			call: func(c *notifizz.Client) error {
				_, err := c.Identify(context.Background(), notifizz.IdentifyRequest{
					EnvironmentID: "env_1",
					SubjectA:      notifizz.Subject{Type: "email", Identifier: "alice@example.com"},
					SubjectB:      notifizz.Subject{Type: "userId", Identifier: "user_42"},
					ConsentBasis:  "contract",
					ExpiresAt:     expires,
				})
				return err
			},
			method: "POST", uri: "/v1/identity/identify",
			wantBody: `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"alice@example.com"},
				"subjectB":{"type":"userId","identifier":"user_42"},"consentBasis":"contract","expiresAt":"2027-01-02T03:04:05.000Z"}`,
		},
		{
			name: "identify without expiry",
			call: func(c *notifizz.Client) error {
				_, err := c.Identify(context.Background(), notifizz.IdentifyRequest{
					EnvironmentID: "env_1",
					SubjectA:      notifizz.Subject{Type: "email", Identifier: "a@x"},
					SubjectB:      notifizz.Subject{Type: "userId", Identifier: "u"},
					ConsentBasis:  "consent",
				})
				return err
			},
			method: "POST", uri: "/v1/identity/identify",
			wantBody: `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"a@x"},
				"subjectB":{"type":"userId","identifier":"u"},"consentBasis":"consent"}`,
		},
		{
			name: "detach",
			call: func(c *notifizz.Client) error {
				_, err := c.Detach(context.Background(), notifizz.DetachRequest{
					EnvironmentID: "env_1", Subject: notifizz.Subject{Type: "email", Identifier: "alice@example.com"}})
				return err
			},
			method: "POST", uri: "/v1/identity/detach",
			wantBody: `{"environmentId":"env_1","subject":{"type":"email","identifier":"alice@example.com"}}`,
		},
		{
			name: "subscribe, resource path-escaped, meta kept, subscriberId not overridden",
			call: func(c *notifizz.Client) error {
				_, err := c.Subscribe(context.Background(), "project/42 alpha", "user_42",
					map[string]any{"role": "owner", "subscriberId": "spoofed"})
				return err
			},
			method: "POST", uri: "/v1/subscriptions/project%2F42%20alpha/subscribe",
			wantBody: `{"subscriberId":"user_42","role":"owner"}`,
		},
		{
			name: "unsubscribe",
			call: func(c *notifizz.Client) error {
				_, err := c.Unsubscribe(context.Background(), "project-42", "user_42")
				return err
			},
			method: "DELETE", uri: "/v1/subscriptions/project-42/unsubscribe",
			wantBody: `{"subscriberId":"user_42"}`,
		},
		{
			name:   "ping",
			call:   func(c *notifizz.Client) error { return c.Ping(context.Background()) },
			method: "POST", uri: "/v1/sdk/ping",
			wantBody: `{"sdkSecretKey":"` + sdkSecret + `"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setupV2(t, nil)
			require.NoError(t, tt.call(client))
			h := api.only(t)
			assert.Equal(t, tt.method, h.method)
			assert.Equal(t, tt.uri, h.uri)
			assertHeaders(t, h, v2Headers)
			assert.JSONEq(t, tt.wantBody, string(h.body))
		})
	}
}

func TestV2CallsRetryTransientOnly(t *testing.T) {
	client, api := setupV2(t, sequence(http.StatusServiceUnavailable))
	body, err := client.Unsubscribe(context.Background(), "r", "s")
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":200}`, string(body))
	assert.Equal(t, 2, api.count(), "a 503 is retried")

	client, api = setupV2(t, sequence(http.StatusUnprocessableEntity))
	_, err = client.Subscribe(context.Background(), "r", "s", nil)
	var apiErr *notifizz.APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusUnprocessableEntity, apiErr.StatusCode)
	assert.Equal(t, 1, api.count(), "a 4xx is never retried")

	client, api = setupV2(t, sequence(http.StatusServiceUnavailable))
	require.Error(t, client.Ping(context.Background()))
	assert.Equal(t, 1, api.count(), "the ping is one attempt")
}

func TestV2CallsRefuseMissingFields(t *testing.T) {
	client, api := setupV2(t, nil)
	ctx := context.Background()
	_, err := client.Identify(ctx, notifizz.IdentifyRequest{EnvironmentID: "e", SubjectA: notifizz.Subject{Type: "email", Identifier: "a"}})
	assert.ErrorIs(t, err, notifizz.ErrInvalidRequest)
	_, err = client.Detach(ctx, notifizz.DetachRequest{Subject: notifizz.Subject{Type: "email", Identifier: "a"}})
	assert.ErrorIs(t, err, notifizz.ErrInvalidRequest)
	_, err = client.Subscribe(ctx, "", "s", nil)
	assert.ErrorIs(t, err, notifizz.ErrInvalidRequest)
	_, err = client.Unsubscribe(ctx, "r", "")
	assert.ErrorIs(t, err, notifizz.ErrInvalidRequest)
	assert.ErrorIs(t, client.NotifySubscribers(ctx, "", nil, ""), notifizz.ErrInvalidRequest)
	assert.Zero(t, api.count())
}

func TestNotifySubscribers(t *testing.T) {
	client, api := setupV2(t, nil)
	require.NoError(t, client.NotifySubscribers(context.Background(), "project-42",
		map[string]any{"title": "New comment"}, "nk-1"))
	h := api.only(t)
	assert.Equal(t, "/v1/events/track", h.uri)
	assertHeaders(t, h, trackHeaders("nk-1"))
	assert.JSONEq(t, `{"eventName":"subscription-entered","properties":{"title":"New comment","resourceId":"project-42"},
		"sdkSecretKey":"`+sdkSecret+`","idempotencyKey":"nk-1"}`, string(h.body))
}

func TestGenerateSubscribeToken(t *testing.T) {
	client := notifizz.NewClient(authSecret, sdkSecret)
	// printf '%s' 'user_42res_9' | openssl dgst -sha256 -hmac "$authSecret"
	assert.Equal(t, "8fb403f88a31bc506f25d1292a9c0ab39448b2f4dd9e5f660164d505900abf80",
		client.GenerateSubscribeToken("user_42", "res_9"))
	other := notifizz.NewClient("another_auth_secret", sdkSecret)
	assert.NotEqual(t, client.GenerateSubscribeToken("user_42", "res_9"), other.GenerateSubscribeToken("user_42", "res_9"),
		"keyed with the auth secret")
}

func TestDeriveIdempotencyKey(t *testing.T) {
	// Vectors computed outside Go: printf '%s' '<input>' | sha256sum, first 32 characters.
	key, ok := notifizz.DeriveIdempotencyKey("order_shipped", []string{"orderId", "carrier"},
		map[string]any{"orderId": "ORD-4521", "carrier": "FedEx", "other": 1})
	require.True(t, ok)
	assert.Equal(t, "c10f32f855721c244e48c76bac2dfe44", key, "order_shipped|carrier=FedEx&orderId=ORD-4521")

	key, ok = notifizz.DeriveIdempotencyKey("invoice_paid", []string{"tags", "paid", "amount"},
		map[string]any{"amount": 42.5, "paid": true, "tags": []any{"a", "b"}})
	require.True(t, ok)
	assert.Equal(t, "56887d1fa7bd406b16ef612013ab8460", key, `invoice_paid|amount=42.5&paid=true&tags=["a","b"]`)

	_, ok = notifizz.DeriveIdempotencyKey("e", []string{"a", "b"}, map[string]any{"a": "x"})
	assert.False(t, ok, "a missing field gives no key")
	_, ok = notifizz.DeriveIdempotencyKey("e", []string{"a"}, map[string]any{"a": nil})
	assert.False(t, ok, "a null field gives no key")
	_, ok = notifizz.DeriveIdempotencyKey("e", nil, map[string]any{"a": "x"})
	assert.False(t, ok, "no declared fields, no key")
}

// TestDeriveIdempotencyKeyNumbers checks the numbers the bridge decodes (json.Number, as the
// producer wrote them) against JSON.stringify of the parsed value, which is what an SDK hashes.
func TestDeriveIdempotencyKeyNumbers(t *testing.T) {
	// Vectors computed outside Go: printf '%s' '<input>' | sha256sum, first 32 characters.
	for _, tc := range []struct {
		name  string
		props map[string]any
		want  string // key of the input in the message
	}{
		{"integer, decimal and exponent as JavaScript writes them",
			map[string]any{"amount": json.Number("42.0"), "count": json.Number("1e3"), "ratio": json.Number("1.50")},
			"f1ebca218477b81a5bc884c1d1bf0748"}, // order_paid|amount=42&count=1000&ratio=1.5
		{"float64 and int as json.Number would give them",
			map[string]any{"amount": 42.0, "count": 1000, "ratio": 1.5},
			"f1ebca218477b81a5bc884c1d1bf0748"}, // order_paid|amount=42&count=1000&ratio=1.5
		{"numbers inside arrays and objects",
			map[string]any{"a": json.Number("-0"), "b": []any{json.Number("2.0"), json.Number("0.5"), "x"},
				"c": map[string]any{"z": []any{json.Number("1.25")}, "k": json.Number("1")}},
			"520ac8349be9d7212f47bd8439b11374"}, // e|a=0&b=[2,0.5,"x"]&c={"k":1,"z":[1.25]}
		{"an integer beyond 2^53 rounds as in JavaScript",
			map[string]any{"big": json.Number("12345678901234567890")},
			"4f7b62552e56d13f9d84046956873205"}, // e|big=12345678901234567000
	} {
		t.Run(tc.name, func(t *testing.T) {
			event := "e"
			if _, ok := tc.props["ratio"]; ok {
				event = "order_paid"
			}
			fields := make([]string, 0, len(tc.props))
			for f := range tc.props {
				fields = append(fields, f)
			}
			key, ok := notifizz.DeriveIdempotencyKey(event, fields, tc.props)
			require.True(t, ok)
			assert.Equal(t, tc.want, key)
		})
	}
}

func TestWithAPIBaseURL(t *testing.T) {
	assert.Contains(t, notifizz.NewClient(authSecret, sdkSecret).String(), `"https://eu.api.notifizz.com/v1"`)
	assert.Contains(t, notifizz.NewClient(authSecret, sdkSecret, notifizz.WithAPI(notifizz.APIv2)).String(),
		`"https://api.notifizz.com/v1"`)
	c := notifizz.NewClient(authSecret, sdkSecret, notifizz.WithBaseURL("https://x.test/v1"), notifizz.WithAPI(notifizz.APIv2))
	assert.Contains(t, c.String(), `"https://x.test/v1"`, "a chosen base URL stays")
	c = notifizz.NewClient(authSecret, sdkSecret, notifizz.WithAPI(notifizz.APIv2), notifizz.WithBaseURL(""))
	assert.Contains(t, c.String(), `"https://api.notifizz.com/v1"`, "empty restores the v2 default")
}
