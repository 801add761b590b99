package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// commitFlushTimeout is how long a test waits for the API call a commit triggers. It is far
// below coalesce.delay (10s) in the configs below, so a call that comes in time was made by the
// commit, not by the delay.
const commitFlushTimeout = 5 * time.Second

// The pieces of one event, as producers would publish them.
const (
	trackBody     = `{"eventName":"order_shipped","properties":{"orderId":"ORD-4521","carrier":"FedEx"},"workflows":[{"campaignId":"inline","recipients":[{"id":"u0","email":"u0@example.com"}]}]}`
	workflow1Body = `{"campaignId":"shipping_notification","recipients":[{"id":"user_42","email":"alice@example.com","locale":"fr"}]}`
	workflow2Body = `{"campaignId":"ops_digest","recipients":[{"id":"ops_1","email":"ops@example.com"}]}`
)

// trackRequest is a POST /events/track body as the tests read it.
type trackRequest struct {
	EventName  string         `json:"eventName"`
	Properties map[string]any `json:"properties"`
	Workflows  []struct {
		CampaignID string           `json:"campaignId"`
		Recipients []map[string]any `json:"recipients"`
	} `json:"workflows"`
	SDKSecretKey   string `json:"sdkSecretKey"`
	IdempotencyKey string `json:"idempotencyKey"`
}

func (r trackRequest) campaigns() []string {
	var ids []string
	for _, w := range r.Workflows {
		ids = append(ids, w.CampaignID)
	}
	return ids
}

// publishEvent publishes a track, two workflows and a commit for key.
func publishEvent(t *testing.T, config, key string) {
	t.Helper()
	publish(t, config, "track", key, trackBody)
	publish(t, config, "workflow", key, workflow1Body)
	publish(t, config, "workflow", key, workflow2Body)
	publish(t, config, "commit", key)
}

// assertEvent checks the coalesced request for publishEvent's pieces.
func assertEvent(t *testing.T, body trackRequest) {
	t.Helper()
	assert.Equal(t, "order_shipped", body.EventName)
	assert.Equal(t, map[string]any{"orderId": "ORD-4521", "carrier": "FedEx"}, body.Properties)
	// The track's inline workflows first, then the workflow messages in stream order.
	assert.Equal(t, []string{"inline", "shipping_notification", "ops_digest"}, body.campaigns())
	if assert.Len(t, body.Workflows, 3) {
		assert.Equal(t, []map[string]any{{"id": "user_42", "email": "alice@example.com", "locale": "fr"}}, body.Workflows[1].Recipients)
	}
	assert.NotEmpty(t, body.IdempotencyKey)
}

// embeddedConfig writes a config for a daemon with its own embedded server.
func embeddedConfig(t *testing.T, natsAddr, httpAddr, notifizz string) string {
	t.Helper()
	return writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  embedded:
    listen: %s
    storeDir: %s
coalesce:
  delay: 10s
notifizz:
%s
http:
  listen: %s
log:
  level: debug
shutdownTimeout: 5s
`, natsAddr, filepath.Join(t.TempDir(), "nats"), notifizz, httpAddr))
}

func TestE2EDryRun(t *testing.T) {
	t.Parallel()
	const sdkKey = "sdk-dry-run-secret-5f1e"
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := embeddedConfig(t, natsAddr, httpAddr, "  sdkSecretKey: "+sdkKey)

	d := startDaemon(t, nil, "--config", config, "--dry-run")
	d.waitReadyz(t, httpAddr, http.StatusOK)
	publishEvent(t, config, "order-4521")

	line := d.nextLine(t, commitFlushTimeout)
	var req struct {
		Method string       `json:"method"`
		Path   string       `json:"path"`
		Body   trackRequest `json:"body"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &req), line)
	assert.Equal(t, "POST", req.Method)
	assert.Equal(t, "/v1/events/track", req.Path)
	assertEvent(t, req.Body)
	assert.Equal(t, "[REDACTED]", req.Body.SDKSecretKey)

	code, _ := get(t, "http://"+httpAddr+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	var metrics string
	assert.Eventually(t, func() bool {
		_, metrics = get(t, "http://"+httpAddr+"/metrics")
		return strings.Contains(metrics, `notifizz_bridge_messages_total{kind="track",outcome="acked"} 1`)
	}, 10*time.Second, 25*time.Millisecond, "the track is acked after the call")
	assert.Contains(t, metrics, `notifizz_bridge_api_calls_total{code="2xx",dry_run="true",endpoint="track",outcome="success"} 1`)
	assert.Contains(t, metrics, "go_goroutines ")
	assert.Contains(t, metrics, "process_resident_memory_bytes ")

	require.Equal(t, 0, d.stop(t))
	assert.Empty(t, d.stdout.lines, "one event, one request")
	assert.NotContains(t, d.stdout.String()+d.stderr.String(), sdkKey)
	stderr := d.stderr.String()
	assert.Contains(t, stderr, `msg="notifizz-bridge started" nats="embedded `+natsAddr+`" stream=NOTIFIZZ consumer=notifizz-bridge delay=10s dry_run=true`)
	assert.Contains(t, stderr, `msg="notifizz-bridge stopped"`)
}

// capturedRequest is what the fake Notifizz API saw.
type capturedRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

func TestE2EAgainstAPI(t *testing.T) {
	t.Parallel()
	const sdkKey, authKey = "sdk-live-secret-93ab", "auth-live-secret-71cd"
	requests := make(chan capturedRequest, 16)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		requests <- capturedRequest{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone(), body: body}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(api.Close)

	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := embeddedConfig(t, natsAddr, httpAddr, fmt.Sprintf(`
  baseUrl: %s/v1
  sdkSecretKey: ${NB_E2E_SDK_KEY}
  authSecretKey: "${NB_E2E_AUTH_KEY}"
`, api.URL))
	env := []string{"NB_E2E_SDK_KEY=" + sdkKey, "NB_E2E_AUTH_KEY=" + authKey}

	d := startDaemon(t, env, "run", "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	publishEvent(t, config, "order-4521")
	publish(t, config, "send", "report-7", `{"notifId":"notif/monthly","properties":{"title":"Your report","recipients":[{"id":"user_42","email":"alice@example.com"}]}}`)

	got := map[string]capturedRequest{}
	for range 2 {
		select {
		case r := <-requests:
			got[r.path] = r
		case <-time.After(commitFlushTimeout):
			require.FailNow(t, "the API did not get both calls", "got %d", len(got))
		}
	}

	track, ok := got["/v1/events/track"]
	require.True(t, ok, "no track call among %v", got)
	assert.Equal(t, http.MethodPost, track.method)
	assert.Equal(t, "Bearer "+sdkKey, track.header.Get("Authorization"))
	assert.True(t, strings.HasPrefix(track.header.Get("Content-Type"), "application/json"), track.header.Get("Content-Type"))
	assert.Contains(t, track.header.Get("User-Agent"), "notifizz-bridge/")
	var body trackRequest
	require.NoError(t, json.Unmarshal(track.body, &body), string(track.body))
	assertEvent(t, body)
	assert.Equal(t, sdkKey, body.SDKSecretKey, "the API gets the key in the body, as the SDK sends it")
	assert.Equal(t, body.IdempotencyKey, track.header.Get("X-Idempotency-Key"))

	send, ok := got["/v1/notification/channel/notificationcenter/config/notif%2Fmonthly/track"]
	require.True(t, ok, "no send call among %v", got)
	assert.Equal(t, http.MethodPost, send.method)
	assert.Equal(t, "Bearer "+sdkKey, send.header.Get("Authorization"))
	assert.JSONEq(t, `{"properties":{"title":"Your report"},"recipients":[{"id":"user_42","email":"alice@example.com"}]}`, string(send.body))

	require.Equal(t, 0, d.stop(t))
	assert.Empty(t, requests, "one call per event")
	assert.Empty(t, d.stdout.String(), "stdout is for dry-run lines only")
	for _, secret := range []string{sdkKey, authKey} {
		assert.NotContains(t, d.stderr.String(), secret)
	}
}

// TestE2EReadyzFollowsNATS stops the external server the daemon uses and starts it again on the
// same port and store: /readyz must follow, and consuming must resume.
func TestE2EReadyzFollowsNATS(t *testing.T) {
	t.Parallel()
	storeDir := t.TempDir()
	srv := startServer(t, server.Options{ServerName: "e2e", Port: -1, StoreDir: storeDir})
	port := serverPort(srv)
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(port)
	httpAddr := freeAddr(t)
	config := writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  url: %s
coalesce:
  delay: 10s
http:
  listen: %s
log:
  level: debug
shutdownTimeout: 5s
`, natsURL, httpAddr))

	d := startDaemon(t, nil, "--config", config, "--dry-run")
	d.waitReadyz(t, httpAddr, http.StatusOK)
	assert.Contains(t, d.stderr.String(), `nats=`+natsURL)

	natstest.Stop(srv)
	last := d.waitReadyz(t, httpAddr, http.StatusServiceUnavailable)
	assert.Contains(t, last, "nats: ")

	startServer(t, server.Options{ServerName: "e2e", Port: port, StoreDir: storeDir})
	d.waitReadyz(t, httpAddr, http.StatusOK)
	// nats.go calls the reconnect handler, which logs, after the connection is usable.
	assert.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "nats reconnected") }, 10*time.Second, 10*time.Millisecond)

	// The consumer survived the outage: an event published now is sent.
	publish(t, config, "track", "after-restart", `{"eventName":"e","properties":{}}`)
	publish(t, config, "commit", "after-restart")
	line := d.nextLine(t, commitFlushTimeout)
	assert.Contains(t, line, `"eventName":"e"`)

	require.Equal(t, 0, d.stop(t))
}

func TestE2EWrongNATSCredentials(t *testing.T) {
	t.Parallel()
	srv := startServer(t, server.Options{ServerName: "e2e", Port: -1, Authorization: "right-token-3c9d"})
	config := writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  url: %s
  token: wrong-token-8e2f
http:
  listen: %s
`, srv.ClientURL(), freeAddr(t)))

	d := startDaemon(t, nil, "--config", config, "--dry-run")
	assert.Equal(t, 1, d.wait(t, 20*time.Second))
	stderr := d.stderr.String()
	assert.Contains(t, strings.ToLower(stderr), "notifizz-bridge: connect to nats at "+srv.ClientURL()+": nats: authorization violation")
	assert.NotContains(t, stderr, "wrong-token-8e2f")
	assert.NotContains(t, stderr, "right-token-3c9d")
}

func TestE2ERunRefusesWithoutSDKKey(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := embeddedConfig(t, natsAddr, httpAddr, "  sdkSecretKey: ${NB_E2E_UNSET_KEY}")
	code, stdout, stderr := runBinary(t, nil, "run", "--config", config)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "notifizz.sdkSecretKey: is empty, and run needs it to call the Notifizz API")
	assert.Contains(t, stderr, "--dry-run")
	_, err := net.Dial("tcp", httpAddr)
	assert.Error(t, err, "nothing was started")
}

// TestE2ESecondSignal holds an API call open so that the graceful shutdown has to wait for it:
// the second signal must end the process at once.
func TestE2ESecondSignal(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() { close(release) })

	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := embeddedConfig(t, natsAddr, httpAddr, fmt.Sprintf(`
  baseUrl: %s/v1
  sdkSecretKey: sdk-second-signal
  timeout: 1m
`, api.URL))
	config = strings.Replace(readFile(t, config), "shutdownTimeout: 5s", "shutdownTimeout: 1m", 1)
	config = writeFile(t, "config2.yaml", config)

	d := startDaemon(t, nil, "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	publish(t, config, "track", "slow", `{"eventName":"e","properties":{}}`)
	publish(t, config, "commit", "slow")
	select {
	case <-entered:
	case <-time.After(commitFlushTimeout):
		require.FailNow(t, "the API call did not start")
	}

	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "shutting down") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, exitForced, d.wait(t, 10*time.Second))
	assert.Contains(t, d.stderr.String(), "second signal")
}

func TestE2ETokenAndVersion(t *testing.T) {
	t.Parallel()
	config := writeFile(t, "config.yaml", "notifizz:\n  authSecretKey: ${NB_E2E_AUTH}\n")
	code, stdout, stderr := runBinary(t, []string{"NB_E2E_AUTH=auth_secret"}, "token", "--config", config, "user_42")
	require.Equal(t, 0, code, stderr)
	sum := sha256.Sum256([]byte("user_42auth_secret"))
	assert.Equal(t, hex.EncodeToString(sum[:])+"\n", stdout)

	code, stdout, _ = runBinary(t, nil, "version")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^notifizz-bridge \S+ .*go1\.\d+`, stdout)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := probeClient.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func TestE2EEmbeddedPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	config := embeddedConfig(t, ln.Addr().String(), freeAddr(t), "  dryRun: true")

	code, _, stderr := runBinary(t, nil, "run", "--config", config)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "notifizz-bridge: embedded NATS server on "+ln.Addr().String()+": Error listening on port")
	assert.Contains(t, stderr, "address already in use")
	assert.Equal(t, 1, strings.Count(stderr, "address already in use"), "the error is reported once")
	assert.Contains(t, stderr, "another notifizz-bridge (or another server) may be running there: stop it, "+
		"or set nats.embedded.listen to another address (config.example.yaml reads it from NOTIFIZZ_BRIDGE_NATS_LISTEN)")
}

func TestHTTPPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	_, err = startHTTP(ln.Addr().String(), http.NotFoundHandler(), discardLogger())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http.listen: listen tcp "+ln.Addr().String())
	assert.Contains(t, err.Error(), "or set http.listen to another address (config.example.yaml reads it from NOTIFIZZ_BRIDGE_HTTP_LISTEN)")
}

// TestE2ENoStartedBeforeARefusal: "started" is said once the bridge consumes; a start-up that
// fails (here: the operator manages the streams, and there are none) never says it.
func TestE2ENoStartedBeforeARefusal(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  embedded:
    listen: %s
    storeDir: %s
stream:
  create: false
notifizz:
  dryRun: true
http:
  listen: %s
log:
  format: json
`, natsAddr, filepath.Join(t.TempDir(), "nats"), httpAddr))
	code, _, stderr := runBinary(t, nil, "run", "--config", config)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "bind stream NOTIFIZZ")
	assert.NotContains(t, stderr, "notifizz-bridge started")
}
