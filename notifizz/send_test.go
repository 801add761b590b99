package notifizz_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

func sendHeaders(key string) map[string]string {
	return map[string]string{
		"Authorization":     "Bearer " + sdkSecret,
		"Content-Type":      "application/json",
		"User-Agent":        notifizz.DefaultUserAgent,
		"X-Idempotency-Key": key,
	}
}

func TestSendWireFormat(t *testing.T) {
	const response = `{"id":"notif_1","status":"queued","recipients":1}`
	tests := []struct {
		name    string
		notifID string
		path    string
		opts    []notifizz.CallOption
		key     string
	}{
		{name: "plain id", notifID: "notif_template_123", path: "/v1/notification/channel/notificationcenter/config/notif_template_123/track"},
		{name: "id needing escapes", notifID: "a b/c?d", path: "/v1/notification/channel/notificationcenter/config/a%20b%2Fc%3Fd/track"},
		{
			name: "with idempotency key", notifID: "n", path: "/v1/notification/channel/notificationcenter/config/n/track",
			opts: []notifizz.CallOption{notifizz.WithIdempotencyKey("send-key-1")}, key: "send-key-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, respond(http.StatusOK, response))
			props := map[string]any{
				"recipients": []notifizz.Recipient{{ID: "user_42", Email: "alice@example.com", Extra: map[string]any{"plan": "pro"}}},
				"title":      "Your report is ready",
				"message":    "Click to download your monthly report.",
			}
			before := maps.Clone(props)

			got, err := client.Send(context.Background(), tt.notifID, props, tt.opts...)
			require.NoError(t, err)
			assert.JSONEq(t, response, string(got), "the response body is handed back")
			assert.Equal(t, before, props, "the caller's map is not modified")

			h := api.only(t)
			assert.Equal(t, "POST", h.method)
			assert.Equal(t, tt.path, h.uri)
			assertHeaders(t, h, sendHeaders(tt.key))
			require.JSONEq(t, `{
				"properties":{"title":"Your report is ready","message":"Click to download your monthly report."},
				"recipients":[{"id":"user_42","email":"alice@example.com","plan":"pro"}]}`, string(h.body))
			assert.Equal(t, []string{"properties", "recipients"}, topLevelKeys(t, h.body))
		})
	}
}

func TestSendRecipientForms(t *testing.T) {
	const want = `[{"id":"u1","email":"u1@example.com"}]`
	tests := []struct {
		name       string
		recipients any
	}{
		{"[]Recipient", []notifizz.Recipient{{ID: "u1", Email: "u1@example.com"}}},
		{"[]map[string]any", []map[string]any{{"id": "u1", "email": "u1@example.com"}}},
		{"[]any", []any{map[string]any{"id": "u1", "email": "u1@example.com"}}},
		{"json.RawMessage", json.RawMessage(want)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, nil)
			_, err := client.Send(context.Background(), "n", map[string]any{"recipients": tt.recipients})
			require.NoError(t, err)
			body := api.only(t).body
			assert.JSONEq(t, `{"properties":{},"recipients":`+want+`}`, string(body))
		})
	}
}

func TestSendInvalidRequest(t *testing.T) {
	tests := []struct {
		name    string
		notifID string
		props   map[string]any
	}{
		{"nil properties", "n", nil},
		{"missing recipients", "n", map[string]any{"title": "t"}},
		{"nil recipients", "n", map[string]any{"recipients": nil}},
		{"empty slice", "n", map[string]any{"recipients": []notifizz.Recipient{}}},
		{"empty raw array", "n", map[string]any{"recipients": json.RawMessage(`[]`)}},
		{"raw object", "n", map[string]any{"recipients": json.RawMessage(`{"id":"u"}`)}},
		{"not an array", "n", map[string]any{"recipients": "user_42"}},
		{"bytes", "n", map[string]any{"recipients": []byte("[1]")}},
		{"empty notification id", "", map[string]any{"recipients": []any{map[string]any{"id": "u"}}}},
		{"unencodable property", "n", map[string]any{"recipients": []any{1}, "f": func() {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, nil)
			got, err := client.Send(context.Background(), tt.notifID, tt.props)
			require.ErrorIs(t, err, notifizz.ErrInvalidRequest)
			assert.Nil(t, got)
			assert.Zero(t, api.count(), "no request is made")
			assertNoSecrets(t, err)
		})
	}
}

func TestSendResponseBody(t *testing.T) {
	props := map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "e"}}}
	tenMB := strings.Repeat("y", 10<<20)
	tests := []struct {
		name    string
		handler handlerFunc
		want    json.RawMessage
		// For an invalid response: the bytes handed back, whether they were cut, and what the
		// error text quotes.
		wantInvalid   string
		wantTruncated bool
		wantExcerpt   string
	}{
		{name: "json", handler: respond(http.StatusCreated, ` {"a":[1,2]} `), want: json.RawMessage(` {"a":[1,2]} `)},
		{name: "no content", handler: respond(http.StatusNoContent, ``)},
		{name: "empty 200", handler: respond(http.StatusOK, ``)},
		{name: "not json", handler: respond(http.StatusOK, `<html>ok</html>`), wantInvalid: `<html>ok</html>`, wantExcerpt: ": <html>ok</html>"},
		{name: "too large", handler: respond(http.StatusOK, `"`+strings.Repeat("x", 1<<20)+`"`),
			wantInvalid: `"` + strings.Repeat("x", 1<<20-1), wantTruncated: true, wantExcerpt: `: "xxx`},
		{name: "10 MB", handler: respond(http.StatusOK, tenMB), wantInvalid: tenMB[:1<<20], wantTruncated: true, wantExcerpt: ": yyy"},
		{name: "echoing the secret", handler: respond(http.StatusOK, "ok "+sdkSecret), wantInvalid: "ok " + sdkSecret, wantExcerpt: ": ok [redacted]"},
		{name: "broken off", handler: func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"partial":`)
		}, wantInvalid: `{"partial":`, wantExcerpt: `broke off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, tt.handler)
			got, err := client.Send(context.Background(), "n", props, notifizz.WithIdempotencyKey("k"))
			if tt.wantInvalid != "" {
				require.ErrorIs(t, err, notifizz.ErrInvalidResponse)
				assert.False(t, notifizz.IsRetryable(err), "the API accepted the request; retrying would not help")
				assertNoSecrets(t, err)
				// What came back reaches the caller, bounded, and the error quotes a bounded excerpt.
				invalid, ok := errors.AsType[*notifizz.InvalidResponseError](err)
				require.True(t, ok, "got %T", err)
				assert.Equal(t, http.StatusOK, invalid.StatusCode)
				assert.Equal(t, "send", invalid.Endpoint)
				assert.True(t, tt.wantInvalid == string(invalid.Body), "body handed back (%d bytes, want %d)", len(invalid.Body), len(tt.wantInvalid))
				assert.Equal(t, tt.wantTruncated, invalid.Truncated)
				assert.Contains(t, err.Error(), tt.wantExcerpt)
				assert.Less(t, len(err.Error()), 700, "the error quotes an excerpt only")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, 1, api.count(), "one request: a 2xx is never sent again")
		})
	}
}

func TestSendRetriesOnlyWithIdempotencyKey(t *testing.T) {
	props := map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "e"}}}

	t.Run("with key", func(t *testing.T) {
		client, api := setup(t, sequence(http.StatusServiceUnavailable))
		_, err := client.Send(context.Background(), "n", props, notifizz.WithIdempotencyKey("send-1"))
		require.NoError(t, err)
		hits := api.all()
		require.Len(t, hits, 2)
		for _, h := range hits {
			assert.Equal(t, "send-1", h.header.Get("X-Idempotency-Key"))
		}
		assert.Equal(t, hits[0].body, hits[1].body, "every attempt sends the same body")
	})

	t.Run("without key", func(t *testing.T) {
		client, api := setup(t, sequence(http.StatusServiceUnavailable))
		_, err := client.Send(context.Background(), "n", props)
		apiErr, ok := asAPIError(err)
		require.True(t, ok, "got %v", err)
		assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
		assert.True(t, notifizz.IsRetryable(err), "the caller may still retry it")
		assert.Equal(t, 1, api.count(), "a retry without a key could notify twice")
	})
}
