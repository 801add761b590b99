package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2ERefusedKeyPausesUntilAccepted: the Notifizz API answers 401 (the key was rotated) for a
// while. The daemon dead-letters nothing, /readyz answers 503 with the reason and /metrics shows
// the pause, it makes one call at a time meanwhile, and once the API accepts the key every
// event is delivered exactly once and /readyz answers 200 again.
func TestE2ERefusedKeyPausesUntilAccepted(t *testing.T) {
	t.Parallel()
	const sdkKey = "sdk-rotated-secret-4e7a"
	var (
		refusing      atomic.Bool
		armed         atomic.Bool
		inFlight      atomic.Int32
		maxPaused     atomic.Int32
		pausedArrived atomic.Int32
		mu            sync.Mutex
		accepted      = map[string]int{}
	)
	refusing.Store(true)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		if armed.Load() {
			pausedArrived.Add(1)
			for old := maxPaused.Load(); n > old && !maxPaused.CompareAndSwap(old, n); old = maxPaused.Load() {
			}
		}
		// assert, not require: this is the server's goroutine.
		raw, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		var body trackRequest
		assert.NoError(t, json.Unmarshal(raw, &body), string(raw))
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/v1/events/track", r.URL.Path)
		assert.Equal(t, "Bearer "+sdkKey, r.Header.Get("Authorization"))
		assert.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"), r.Header.Get("Content-Type"))
		assert.Equal(t, sdkKey, body.SDKSecretKey)
		assert.Equal(t, body.IdempotencyKey, r.Header.Get("X-Idempotency-Key"))
		assert.Equal(t, []string{"inline"}, body.campaigns())
		w.Header().Set("Content-Type", "application/json")
		if refusing.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid sdk key"}`)
			return
		}
		mu.Lock()
		accepted[body.EventName]++
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(api.Close)
	acceptedCalls := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range accepted {
			out[k] = v
		}
		return out
	}

	srv := startServer(t, server.Options{ServerName: "e2e", Port: -1, StoreDir: t.TempDir()})
	_, js := testConn(t, srv.ClientURL())
	httpAddr := freeAddr(t)
	config := externalConfig(t, srv.ClientURL(), httpAddr, fmt.Sprintf(`
notifizz:
  baseUrl: %s/v1
  sdkSecretKey: %s
coalesce:
  delay: 10s
consumer:
  maxDeliver: 3
retry:
  nakInitial: 100ms
  nakMax: 1s
log:
  level: debug
shutdownTimeout: 5s
`, api.URL, sdkKey))

	d := startDaemon(t, nil, "run", "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	const events = 5
	for i := range events {
		key := fmt.Sprintf("order-%d", i)
		publish(t, config, "track", key, fmt.Sprintf(
			`{"eventName":"ev%d","properties":{},"workflows":[{"campaignId":"inline","recipients":[{"id":"u","email":"u@example.com"}]}]}`, i))
		publish(t, config, "commit", key)
	}

	last := d.waitReadyz(t, httpAddr, http.StatusServiceUnavailable)
	assert.Contains(t, last, "the key is refused (status 401)")
	require.Eventually(t, func() bool { return inFlight.Load() == 0 }, 30*time.Second, 10*time.Millisecond)
	armed.Store(true)
	_, metrics := get(t, "http://"+httpAddr+"/metrics")
	assert.Contains(t, metrics, "notifizz_bridge_api_auth_paused 1")
	assert.Contains(t, metrics, `notifizz_bridge_api_auth_failures_total{status="401"}`)

	// Probes until the events have been delivered beyond consumer.maxDeliver: a pause must
	// not use their deliveries up.
	require.Eventually(t, func() bool {
		_, metrics := get(t, "http://"+httpAddr+"/metrics")
		return pausedArrived.Load() >= 2 && metricValue(metrics, `notifizz_bridge_redeliveries_total{kind="track"}`) >= 2*events-2
	}, 60*time.Second, 25*time.Millisecond, "tracks delivered up to consumer.maxDeliver, and probes, during the pause")
	code, _ := readyz(httpAddr)
	assert.Equal(t, http.StatusServiceUnavailable, code, "not ready while paused")
	assert.Zero(t, dlqCount(t, js), "nothing dead-lettered while paused")

	armed.Store(false) // calls made once the key works run side by side again
	refusing.Store(false)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	require.Eventually(t, func() bool { return len(acceptedCalls()) == events }, 60*time.Second, 25*time.Millisecond,
		"every event delivered once the key works")
	require.Eventually(t, func() bool { return drained(consumerInfo(js)) }, 60*time.Second, 25*time.Millisecond, "every message acked")
	for event, n := range acceptedCalls() {
		assert.Equal(t, 1, n, "event %s accepted once", event)
	}
	assert.Zero(t, dlqCount(t, js), "nothing dead-lettered")
	assert.LessOrEqual(t, maxPaused.Load(), int32(1), "one call at a time while paused")
	_, metrics = get(t, "http://"+httpAddr+"/metrics")
	assert.Contains(t, metrics, "notifizz_bridge_api_auth_paused 0")

	require.Equal(t, 0, d.stop(t))
	stderr := d.stderr.String()
	assert.Equal(t, 1, strings.Count(stderr, "refuses the bridge's key"), "the pause is logged once")
	assert.Equal(t, 1, strings.Count(stderr, "accepts the bridge's key again"), "and its end once")
	assert.NotContains(t, stderr, sdkKey)
}

// dlqCount is the number of messages in the dead-letter stream.
func dlqCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "NOTIFIZZ_DLQ")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State.Msgs
}

// metricValue is the value of one series in a /metrics page, or -1 when it is not there.
func metricValue(page, series string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
