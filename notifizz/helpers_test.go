package notifizz_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// Distinctive secrets, so that a leak into any text is unmistakable.
const (
	sdkSecret  = "sk_test_SDK_SECRET_9f8e7d6c5b4a"
	authSecret = "ak_test_AUTH_SECRET_1a2b3c4d5e6f"
)

// fastRetry keeps retry tests quick while still going through real waits.
var fastRetry = notifizz.RetryPolicy{Attempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

// hit is one request as the fake API saw it.
type hit struct {
	n      int // 1-based
	method string
	uri    string // the request URI as sent, still escaped
	header http.Header
	body   []byte
	at     time.Time
}

// fakeAPI stands in for the Notifizz API: it records every request before
// handing it to the test's handler, so blocked and hijacked requests count.
type fakeAPI struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
	// hitCh receives every hit, for tests that wait for one or prove that
	// none arrives.
	hitCh chan hit
}

// handlerFunc answers the n-th request (1-based).
type handlerFunc func(n int, w http.ResponseWriter, r *http.Request)

func newFakeAPI(t *testing.T, h handlerFunc) *fakeAPI {
	t.Helper()
	if h == nil {
		h = respond(http.StatusOK, `{"ok":true}`)
	}
	api := &fakeAPI{hitCh: make(chan hit, 1024)}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		api.mu.Lock()
		rec := hit{n: len(api.hits) + 1, method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: body, at: time.Now()}
		api.hits = append(api.hits, rec)
		api.mu.Unlock()
		api.hitCh <- rec
		h(rec.n, w, r)
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *fakeAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.hits)
}

func (a *fakeAPI) all() []hit {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]hit(nil), a.hits...)
}

// only returns the single request the test expects.
func (a *fakeAPI) only(t *testing.T) hit {
	t.Helper()
	hits := a.all()
	require.Len(t, hits, 1)
	return hits[0]
}

// noMoreHits proves that no further request arrives within d. Waiting is the
// point here: an absence cannot be polled for.
func (a *fakeAPI) noMoreHits(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case h := <-a.hitCh:
		t.Fatalf("unexpected request %d to %s", h.n, h.uri)
	case <-time.After(d):
	}
}

// setup returns a client wired to a fresh fake API under base path /v1, with
// fast retries; opts override.
func setup(t *testing.T, h handlerFunc, opts ...notifizz.Option) (*notifizz.Client, *fakeAPI) {
	t.Helper()
	api := newFakeAPI(t, h)
	base := []notifizz.Option{
		notifizz.WithBaseURL(api.URL + "/v1"),
		notifizz.WithHTTPClient(api.Client()),
		notifizz.WithRetry(fastRetry),
	}
	return notifizz.NewClient(authSecret, sdkSecret, append(base, opts...)...), api
}

// gate holds requests until it opens. Tests open it themselves and also in
// a cleanup registered after setup: cleanups run last-in first-out, so a
// failed test still frees its handlers before the server's Close, which
// waits for them.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or the client abandons the request.
func (g *gate) wait(r *http.Request) {
	select {
	case <-g.ch:
	case <-r.Context().Done():
	}
}

// respond answers every request with status and body.
func respond(status int, body string) handlerFunc {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// sequence answers the n-th request with statuses[n-1], and 200 after them.
func sequence(statuses ...int) handlerFunc {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		status := http.StatusOK
		if n <= len(statuses) {
			status = statuses[n-1]
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"status":`+strconv.Itoa(status)+`}`)
	}
}

// hangUp closes the connection without a response, a network error.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if !assert.NoError(t, err) {
		return
	}
	_ = conn.Close()
}

// transportHeaders are added by net/http itself rather than by the client.
var transportHeaders = map[string]bool{"Accept-Encoding": true, "Content-Length": true}

// assertHeaders checks every header of a request: each of want has exactly
// its value, "" meaning absent, and nothing else was sent besides what the
// transport adds. Content-Length must match the body, so it was not chunked.
func assertHeaders(t *testing.T, h hit, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if v == "" {
			assert.NotContains(t, h.header, k, "header %s", k)
			continue
		}
		assert.Equal(t, []string{v}, h.header.Values(k), "header %s", k)
	}
	for k := range h.header {
		_, expected := want[k]
		assert.True(t, expected || transportHeaders[k], "unexpected header %s", k)
	}
	assert.Equal(t, strconv.Itoa(len(h.body)), h.header.Get("Content-Length"))
}

// trackHeaders are the headers of a track request with the given key.
func trackHeaders(key string) map[string]string {
	return map[string]string{
		"Authorization":     "Bearer " + sdkSecret,
		"Content-Type":      "application/json",
		"User-Agent":        notifizz.DefaultUserAgent,
		"X-Idempotency-Key": key,
	}
}

// topLevelKeys returns the keys of a JSON object in the order they appear.
func topLevelKeys(t *testing.T, body []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		key, ok := tok.(string)
		require.True(t, ok, "key %v", tok)
		keys = append(keys, key)
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// field returns one top-level value of a JSON object, verbatim.
func field(t *testing.T, body []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	v, ok := m[key]
	require.True(t, ok, "missing key %q in %s", key, body)
	return v
}

// assertNoSecrets checks every rendering of v for either secret and, for an
// error of ours, that its text starts lowercase.
func assertNoSecrets(t *testing.T, v any) {
	t.Helper()
	assertNoSecretText(t, v)
	if err, ok := v.(error); ok && err != nil {
		assert.Equal(t, strings.ToLower(err.Error()[:1]), err.Error()[:1], "error text starts lowercase: %s", err)
	}
}

// assertNoSecretText checks every rendering of v for either secret.
func assertNoSecretText(t *testing.T, v any) {
	t.Helper()
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		text := fmt.Sprintf(format, v)
		assert.NotContains(t, text, sdkSecret, format)
		assert.NotContains(t, text, authSecret, format)
		// A fragment of a secret is a leak too.
		assert.NotContains(t, text, "SDK_SECRET", format)
		assert.NotContains(t, text, "AUTH_SECRET", format)
	}
}

// asAPIError finds the *APIError in err's chain.
func asAPIError(err error) (*notifizz.APIError, bool) {
	return errors.AsType[*notifizz.APIError](err)
}
