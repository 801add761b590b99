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
