package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

// pingAPI is a Notifizz API that records every request and answers status.
type pingAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []capturedRequest
}

func newPingAPI(t *testing.T, status int, answer string) *pingAPI {
	t.Helper()
	a := &pingAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.requests = append(a.requests, capturedRequest{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone(), body: body})
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *pingAPI) seen() []capturedRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]capturedRequest(nil), a.requests...)
}

// assertPing checks one request is the SDKs' boot ping, exactly.
func assertPing(t *testing.T, r capturedRequest, sdkKey string) {
	t.Helper()
	assert.Equal(t, http.MethodPost, r.method)
	assert.Equal(t, "/v1/sdk/ping", r.path)
	assert.Equal(t, "Bearer "+sdkKey, r.header.Get("Authorization"))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.JSONEq(t, `{"sdkSecretKey":"`+sdkKey+`"}`, string(r.body))
	assert.Equal(t, `{"sdkSecretKey":"`+sdkKey+`"}`, string(r.body), "nothing else in the body")
}

// pingConfig is a v2 config that calls url.
func pingConfig(url, sdkKey string) config.Config {
	cfg := config.Default()
	cfg.Bridge.API = bridge.APIv2
	cfg.Notifizz.BaseURL = url + "/v1"
	cfg.Notifizz.SDKSecretKey = sdkKey
	return cfg
}

// waitPing waits for p to end by itself, then stops it.
func waitPing(t *testing.T, p *bootPing) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the boot ping did not end")
	}
	p.stop()
}

func TestBootPing(t *testing.T) {
	const sdkKey = "sdk-ping-secret-4e2a"
	t.Run("v2 pings once", func(t *testing.T) {
		api := newPingAPI(t, http.StatusOK, `{}`)
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		cfg := pingConfig(api.URL, sdkKey)
		waitPing(t, startBootPing(context.Background(), cfg, newAPIClient(cfg, io.Discard, log), log))
		got := api.seen()
		require.Len(t, got, 1)
		assertPing(t, got[0], sdkKey)
		assert.Contains(t, logs.String(), `level=INFO msg="notifizz boot ping ok"`)
	})
	t.Run("a failed ping is a warning without the secret", func(t *testing.T) {
		api := newPingAPI(t, http.StatusInternalServerError, `{"error":"down","echo":"`+sdkKey+`"}`)
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		cfg := pingConfig(api.URL, sdkKey)
		waitPing(t, startBootPing(context.Background(), cfg, newAPIClient(cfg, io.Discard, log), log))
		require.Len(t, api.seen(), 1, "best-effort: one attempt, never retried")
		assert.Contains(t, logs.String(), `level=WARN msg="notifizz boot ping failed; the bridge runs on"`)
		assert.Contains(t, logs.String(), "500")
		assert.NotContains(t, logs.String(), sdkKey)
	})
	t.Run("a refused key is an error that says so, without the secret", func(t *testing.T) {
		api := newPingAPI(t, http.StatusUnauthorized, `{"error":"bad key","echo":"`+sdkKey+`"}`)
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		cfg := pingConfig(api.URL, sdkKey)
		waitPing(t, startBootPing(context.Background(), cfg, newAPIClient(cfg, io.Discard, log), log))
		require.Len(t, api.seen(), 1)
		assert.Contains(t, logs.String(), `level=ERROR msg="notifizz boot ping: the notifizz api refuses the key`)
		assert.Contains(t, logs.String(), "status=401")
		assert.NotContains(t, logs.String(), sdkKey)
	})
	t.Run("no ping under v1", func(t *testing.T) {
		api := newPingAPI(t, http.StatusOK, `{}`)
		cfg := pingConfig(api.URL, sdkKey)
		cfg.Bridge.API = bridge.APIv1
		waitPing(t, startBootPing(context.Background(), cfg, newAPIClient(cfg, io.Discard, discardLogger()), discardLogger()))
		assert.Empty(t, api.seen())
	})
	t.Run("no ping in a dry run", func(t *testing.T) {
		// The dry-run transport prints every request the client makes: a ping would be a line.
		var out bytes.Buffer
		cfg := pingConfig("https://api.notifizz.com", sdkKey)
		cfg.Notifizz.DryRun = true
		c := newAPIClient(cfg, &out, discardLogger())
		waitPing(t, startBootPing(context.Background(), cfg, c, discardLogger()))
		assert.Empty(t, out.String())
		require.NoError(t, c.Ping(context.Background()), "the client itself would print a ping")
		assert.Contains(t, out.String(), `"path":"/v1/sdk/ping"`)
	})
}

// TestBootPingRunsInTheBackground: startBootPing returns while the API still holds the ping,
// and stop ends a ping in flight rather than waiting for the API or the ping's timeout.
func TestBootPingRunsInTheBackground(t *testing.T) {
	const sdkKey = "sdk-ping-secret-hang"
	entered, release := make(chan struct{}, 1), make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // so that the server notices the client leave
		entered <- struct{}{}
		select { // held until the client gives up, or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handler
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := pingConfig(api.URL, sdkKey)
	p := startBootPing(context.Background(), cfg, newAPIClient(cfg, io.Discard, log), log)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the ping never reached the API")
	}
	assert.Empty(t, logs.String(), "the ping is still in flight after startBootPing returned")

	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		p.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "stop did not return")
	}
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "stop cancels the ping; it does not wait for its timeout (2s)")
	assert.NotContains(t, logs.String(), "boot ping failed", "a ping cut short by the stop is no failure")
}

// TestE2EBootPing: a v2 daemon pings the API once at start; in a dry run it pings nothing.
func TestE2EBootPing(t *testing.T) {
	t.Parallel()
	const sdkKey = "sdk-e2e-ping-secret-a81c"
	api := newPingAPI(t, http.StatusOK, `{}`)

	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfgPath := embeddedConfig(t, natsAddr, httpAddr, fmt.Sprintf("  api: v2\n  baseUrl: %s/v1\n  sdkSecretKey: %s", api.URL, sdkKey))
	d := startDaemon(t, nil, "--config", cfgPath)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	require.Eventually(t, func() bool { return len(api.seen()) > 0 }, 10*time.Second, 20*time.Millisecond, "the daemon pings")
	require.Equal(t, 0, d.stop(t))
	got := api.seen()
	require.Len(t, got, 1, "one ping")
	assertPing(t, got[0], sdkKey)
	assert.Contains(t, d.stderr.String(), `msg="notifizz boot ping ok"`)
	assert.Contains(t, d.stderr.String(), "api=v2")
	assert.NotContains(t, d.stderr.String(), sdkKey)

	// A dry run: the daemon waits for its ping goroutine before it exits, so a ping would be on
	// stdout by then.
	natsAddr, httpAddr = freeAddr(t), freeAddr(t)
	cfgPath = embeddedConfig(t, natsAddr, httpAddr, fmt.Sprintf("  api: v2\n  baseUrl: %s/v1\n  sdkSecretKey: %s", api.URL, sdkKey))
	d = startDaemon(t, nil, "--config", cfgPath, "--dry-run")
	d.waitReadyz(t, httpAddr, http.StatusOK)
	require.Equal(t, 0, d.stop(t))
	assert.Empty(t, strings.TrimSpace(d.stdout.String()), "no request printed")
	assert.Len(t, api.seen(), 1, "and none sent")
	assert.NotContains(t, d.stderr.String(), "boot ping")
}
