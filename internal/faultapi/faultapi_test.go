package faultapi

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const trackBody = `{"eventName":"e","properties":{"id":7,"b":"x"},"workflows":[{"campaignId":"c1"},{"campaignId":"c2"}]}`

func post(t *testing.T, c *http.Client, url, key, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/events/track", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Idempotency-Key", key)
	req.Header.Set("Authorization", "Bearer sdk")
	resp, err := c.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func start(t *testing.T, f Faults, opts ...Option) (*API, *httptest.Server) {
	t.Helper()
	api := New(f, append([]Option{WithSeed(1), WithBearer("sdk")}, opts...)...)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		srv.Close()
	})
	return api, srv
}

func TestEachFault(t *testing.T) {
	tests := []struct {
		name    string
		faults  Faults
		status  int  // 0: the request fails
		timeout bool // the failure is the client's timeout
		outcome Outcome
	}{
		{"ok", Faults{}, 200, false, OutcomeOK},
		{"reject", Faults{Reject: 1}, 400, false, OutcomeReject},
		{"server error", Faults{ServerError: 1}, -1, false, OutcomeServerError},
		{"rate limit", Faults{RateLimit: 1, RetryAfter: 1500 * time.Millisecond}, 429, false, OutcomeRateLimit},
		{"stall", Faults{Stall: 1, StallFor: 10 * time.Second}, 0, true, OutcomeStall},
		{"reset", Faults{Reset: 1}, 0, false, OutcomeReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := start(t, tt.faults)
			client := &http.Client{Timeout: 300 * time.Millisecond}
			resp, err := post(t, client, srv.URL, "key-1", trackBody)
			switch tt.status {
			case 0:
				require.Error(t, err)
				var ne interface{ Timeout() bool }
				assert.Equal(t, tt.timeout, errors.As(err, &ne) && ne.Timeout(), "%v", err)
			case -1:
				require.NoError(t, err)
				assert.GreaterOrEqual(t, resp.StatusCode, 500)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.status, resp.StatusCode)
			}
			if tt.outcome == OutcomeRateLimit {
				assert.Equal(t, "2", resp.Header.Get("Retry-After"), "rounded up to whole seconds")
			}
			// A client that retried on its own (the transport does for a reset of an
			// idempotent request) leaves more than one attempt; each is the same.
			ats := api.Attempts()
			require.NotEmpty(t, ats)
			for _, at := range ats {
				assert.Equal(t, tt.outcome, at.Outcome)
				assert.Equal(t, "key-1", at.Key)
				assert.Equal(t, "/events/track", at.Path)
				assert.Equal(t, `/events/track e {"b":"x","id":7}`, at.Event)
				assert.Equal(t, []string{"c1", "c2"}, at.Workflows)
			}
		})
	}
}

func TestRecordsPerKeyAndPerEvent(t *testing.T) {
	api, srv := start(t, Faults{})
	c := srv.Client()
	for _, r := range []struct{ key, body string }{
		{"k1", trackBody},
		{"k1", trackBody}, // a retry: same key, same event
		{"k2", `{"eventName":"e","properties":{"b":"x","id":7}}`}, // the same event under another key
		{"k3", `{"eventName":"other","properties":{}}`},
	} {
		_, err := post(t, c, srv.URL, r.key, r.body)
		require.NoError(t, err)
	}
	attempts, ok := api.Count()
	assert.Equal(t, 4, attempts)
	assert.Equal(t, 4, ok)
	byKey := api.ByKey()
	assert.Equal(t, 2, byKey["k1"].Successes)
	assert.Len(t, byKey["k1"].Events, 1)
	ev := api.ByEvent()[`/events/track e {"b":"x","id":7}`]
	assert.Equal(t, []string{"k1", "k2"}, ev.Keys, "property order does not change the identity")
	assert.Equal(t, map[string]bool{"c1": true, "c2": true}, ev.Workflows)

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/events/track", strings.NewReader(trackBody))
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no bearer token")
}

func TestRatesAndChange(t *testing.T) {
	api, srv := start(t, Faults{ServerError: 0.5})
	c := srv.Client()
	for range 200 {
		_, err := post(t, c, srv.URL, "k", `{"eventName":"e","properties":{}}`)
		require.NoError(t, err)
	}
	_, ok := api.Count()
	assert.InDelta(t, 100, ok, 30, "about half succeed")

	api.SetFaults(Faults{})
	for range 10 {
		_, err := post(t, c, srv.URL, "k", `{"eventName":"e","properties":{}}`)
		require.NoError(t, err)
	}
	_, ok2 := api.Count()
	assert.Equal(t, ok+10, ok2, "the burst is over")
}

func TestDraw(t *testing.T) {
	f := Faults{Reject: 0.1, ServerError: 0.2, RateLimit: 0.1, Stall: 0.1, Reset: 0.1}
	for _, c := range []struct {
		u    float64
		want Outcome
	}{
		{0.05, OutcomeReject}, {0.15, OutcomeServerError}, {0.35, OutcomeRateLimit},
		{0.45, OutcomeStall}, {0.55, OutcomeReset}, {0.65, OutcomeOK}, {0.99, OutcomeOK},
	} {
		assert.Equal(t, c.want, draw(f, c.u), "u=%v", c.u)
	}
}

// TestBodyCutOffIsAborted: a client that goes away in the middle of its body (its timeout, on a
// busy machine) is recorded as aborted, and what arrived counts as no event of its key.
func TestBodyCutOffIsAborted(t *testing.T) {
	api, srv := start(t, Faults{})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	_, err = io.WriteString(conn, "POST /events/track HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sdk\r\n"+
		"X-Idempotency-Key: cut\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"+`{"eventName":"e"`)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.Eventually(t, func() bool { return len(api.Attempts()) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, OutcomeAborted, api.Attempts()[0].Outcome)
	assert.Empty(t, api.ByKey()["cut"].Events, "no event recorded under the key")
}
