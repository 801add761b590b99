package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

func TestDryRunTransport(t *testing.T) {
	var out bytes.Buffer
	tr := newDryRunTransport(&out, "sdk-dry-secret", "")
	body := `{"eventName":"e","properties":{"note":"key is sdk-dry-secret","nested":{"authSecretKey":"a"}},"sdkSecretKey":"sdk-dry-secret","idempotencyKey":"k"}`
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/notification/channel/notificationcenter/config/a%2Fb/track", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sdk-dry-secret")
	req.Header.Set("X-Idempotency-Key", "send-42")

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	answer, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(answer))

	line := out.String()
	assert.Equal(t, 1, strings.Count(line, "\n"))
	assert.NotContains(t, line, "sdk-dry-secret")
	assert.Equal(t,
		`{"method":"POST","path":"/v1/notification/channel/notificationcenter/config/a%2Fb/track",`+
			`"headers":{"X-Idempotency-Key":"send-42"},"body":{"eventName":"e","properties":{"note":"key is [REDACTED]","nested":{"authSecretKey":"[REDACTED]"}},"sdkSecretKey":"[REDACTED]","idempotencyKey":"k"}}`+"\n",
		line)
}

// TestDryRunScrubsHTMLEscapedSecret: the client escapes <, > and & in the bodies it encodes, so
// a secret holding them appears escaped; it is scrubbed in that form too.
func TestDryRunScrubsHTMLEscapedSecret(t *testing.T) {
	var out bytes.Buffer
	cfg := config.Default()
	cfg.Notifizz.DryRun = true
	cfg.Notifizz.SDKSecretKey = "s<k&y>1"
	c := newAPIClient(cfg, &out, discardLogger())
	require.NoError(t, c.TrackEvent(context.Background(), notifizz.TrackRequest{
		EventName: "e", Properties: map[string]any{"note": "pasted s<k&y>1 here"}, IdempotencyKey: "k",
	}))
	line := out.String()
	assert.NotContains(t, line, `s\u003ck\u0026y\u003e1`)
	assert.NotContains(t, line, "s<k&y>1")
	assert.Contains(t, line, `"note":"pasted [REDACTED] here"`)
}

func TestDryRunTransportNonJSONBody(t *testing.T) {
	var out bytes.Buffer
	tr := newDryRunTransport(&out)
	req, err := http.NewRequest(http.MethodPost, "http://x/v1/y", strings.NewReader("not json"))
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, `{"method":"POST","path":"/v1/y","body":"[REDACTED]"}`+"\n", out.String())
}

// TestDryRunClientSerialisesLines drives the transport through the real client from many
// goroutines: every line must come out whole.
func TestDryRunClientSerialisesLines(t *testing.T) {
	var out bytes.Buffer
	cfg := config.Default()
	cfg.Notifizz.DryRun = true
	cfg.Notifizz.SDKSecretKey = "sdk-concurrent-secret"
	c := newAPIClient(cfg, &out, discardLogger())

	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := c.TrackEvent(context.Background(), notifizz.TrackRequest{
				EventName:      fmt.Sprintf("event-%d", i),
				Properties:     map[string]any{"i": i},
				IdempotencyKey: fmt.Sprintf("key-%d", i),
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, n)
	seen := map[string]bool{}
	for _, l := range lines {
		var got struct {
			Method, Path string
			Body         struct {
				EventName    string `json:"eventName"`
				SDKSecretKey string `json:"sdkSecretKey"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(l), &got), l)
		assert.Equal(t, "POST", got.Method)
		assert.Equal(t, "/v1/events/track", got.Path)
		assert.Equal(t, "[REDACTED]", got.Body.SDKSecretKey)
		seen[got.Body.EventName] = true
	}
	assert.Len(t, seen, n)
	assert.NotContains(t, out.String(), "sdk-concurrent-secret")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestDryRunV2Calls drives every call of the v2 surface through the daemon's client in a dry
// run: each is printed with its method, its path under the v2 base URL (the resource
// path-escaped), the track's idempotency header, and its body with the secret redacted.
func TestDryRunV2Calls(t *testing.T) {
	const sdkKey = "sdk-dry-v2-secret-0c3d"
	path := writeFile(t, "c.yaml", "notifizz:\n  api: v2\n  sdkSecretKey: "+sdkKey+"\n")
	cfg, err := config.Load(path, config.Options{DryRun: true})
	require.NoError(t, err)
	var out bytes.Buffer
	c := newAPIClient(cfg, &out, discardLogger())
	assert.Contains(t, c.String(), `baseURL: "https://api.notifizz.com/v1"`, "the v2 profile's URL")
	ctx := context.Background()
	var lines []string
	next := func() string {
		t.Helper()
		l := out.String()
		out.Reset()
		require.Equal(t, 1, strings.Count(l, "\n"), "one line per call: %q", l)
		lines = append(lines, l)
		return strings.TrimSuffix(l, "\n")
	}

	occurred := time.Date(2026, 11, 30, 10, 0, 0, 123e6, time.UTC)
	require.NoError(t, c.TrackEvent(ctx, notifizz.TrackRequest{
		EventName: "order_shipped", Properties: map[string]any{"orderId": "ORD-1"}, IdempotencyKey: "key-1", OccurredAt: occurred,
	}))
	assert.Equal(t, `{"method":"POST","path":"/v1/events/track","headers":{"X-Idempotency-Key":"key-1"},`+
		`"body":{"eventName":"order_shipped","properties":{"orderId":"ORD-1"},"sdkSecretKey":"[REDACTED]","idempotencyKey":"key-1","occurredAt":"2026-11-30T10:00:00.123Z"}}`, next())

	_, err = c.Identify(ctx, notifizz.IdentifyRequest{
		EnvironmentID: "env_1",
		SubjectA:      notifizz.Subject{Type: "email", Identifier: "alice@example.com"},
		SubjectB:      notifizz.Subject{Type: "user_id", Identifier: "user_42"},
		ConsentBasis:  "contract",
		ExpiresAt:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	require.NoError(t, err)
	assert.Equal(t, `{"method":"POST","path":"/v1/identity/identify","body":{"environmentId":"env_1",`+
		`"subjectA":{"type":"email","identifier":"alice@example.com"},"subjectB":{"type":"user_id","identifier":"user_42"},`+
		`"consentBasis":"contract","expiresAt":"2027-01-01T00:00:00.000Z"}}`, next())

	_, err = c.Detach(ctx, notifizz.DetachRequest{EnvironmentID: "env_1", Subject: notifizz.Subject{Type: "email", Identifier: "alice@example.com"}})
	require.NoError(t, err)
	assert.Equal(t, `{"method":"POST","path":"/v1/identity/detach","body":{"environmentId":"env_1","subject":{"type":"email","identifier":"alice@example.com"}}}`, next())

	_, err = c.Subscribe(ctx, "doc/7 draft", "user_42", map[string]any{"role": "owner"})
	require.NoError(t, err)
	assert.Equal(t, `{"method":"POST","path":"/v1/subscriptions/doc%2F7%20draft/subscribe","body":{"role":"owner","subscriberId":"user_42"}}`, next())

	_, err = c.Unsubscribe(ctx, "doc/7 draft", "user_42")
	require.NoError(t, err)
	assert.Equal(t, `{"method":"DELETE","path":"/v1/subscriptions/doc%2F7%20draft/unsubscribe","body":{"subscriberId":"user_42"}}`, next())

	require.NoError(t, c.NotifySubscribers(ctx, "doc/7 draft", map[string]any{"title": "Q4"}, "key-2"))
	assert.Equal(t, `{"method":"POST","path":"/v1/events/track","headers":{"X-Idempotency-Key":"key-2"},`+
		`"body":{"eventName":"subscription-entered","properties":{"resourceId":"doc/7 draft","title":"Q4"},"sdkSecretKey":"[REDACTED]","idempotencyKey":"key-2"}}`, next())

	require.NoError(t, c.Ping(ctx))
	assert.Equal(t, `{"method":"POST","path":"/v1/sdk/ping","body":{"sdkSecretKey":"[REDACTED]"}}`, next())

	for _, l := range lines {
		assert.NotContains(t, l, sdkKey)
	}
}
