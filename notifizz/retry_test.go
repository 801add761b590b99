package notifizz_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

var ping = notifizz.TrackRequest{EventName: "ping", IdempotencyKey: "retry-key"}

func TestRetryTransientStatuses(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
	}{
		{"503 503 200", []int{503, 503}},
		{"500 200", []int{500}},
		{"502 504 200", []int{502, 504}},
		{"408 200", []int{408}},
		{"425 200", []int{425}},
		{"429 200", []int{429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, api := setup(t, sequence(tt.statuses...))
			require.NoError(t, client.TrackEvent(context.Background(), notifizz.TrackRequest{EventName: "ping"}))

			hits := api.all()
			require.Len(t, hits, len(tt.statuses)+1)
			key := hits[0].header.Get("X-Idempotency-Key")
			require.NotEmpty(t, key)
			for _, h := range hits {
				assert.Equal(t, key, h.header.Get("X-Idempotency-Key"), "every attempt carries the same key")
				assert.Equal(t, hits[0].body, h.body, "and the same body")
			}
		})
	}
}

func TestRetryExhausted(t *testing.T) {
	client, api := setup(t, respond(http.StatusServiceUnavailable, `{"error":"down"}`))
	err := client.TrackEvent(context.Background(), ping)
	apiErr, ok := asAPIError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.True(t, notifizz.IsRetryable(err), "the caller may retry later")
	assert.Contains(t, err.Error(), "after 3 attempts")
	assert.Equal(t, fastRetry.Attempts, api.count())
	assertNoSecrets(t, err)
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}, notifizz.WithRetry(notifizz.RetryPolicy{Attempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))

	require.NoError(t, client.TrackEvent(context.Background(), ping))
	hits := api.all()
	require.Len(t, hits, 2)
	gap := hits[1].at.Sub(hits[0].at)
	assert.GreaterOrEqual(t, gap, time.Second, "Retry-After outweighs the 1ms backoff")
}

func TestRetryAfterBeyondDeadline(t *testing.T) {
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	err := client.TrackEvent(ctx, ping)
	require.NoError(t, ctx.Err(), "it returned without waiting for a deadline it could not beat")
	assert.Equal(t, 120*time.Second, notifizz.RetryAfterOf(err), "the caller learns when to retry")
	assert.True(t, notifizz.IsRetryable(err))
	assert.Equal(t, 1, api.count())
}

func TestRetryNetworkError(t *testing.T) {
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			hangUp(t, w)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	require.NoError(t, client.TrackEvent(context.Background(), ping))
	hits := api.all()
	require.Len(t, hits, 2)
	assert.Equal(t, hits[0].header.Get("X-Idempotency-Key"), hits[1].header.Get("X-Idempotency-Key"))

	t.Run("without retry", func(t *testing.T) {
		client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) { hangUp(t, w) }, notifizz.WithoutRetry())
		err := client.TrackEvent(context.Background(), ping)
		require.Error(t, err)
		assert.True(t, notifizz.IsRetryable(err), "a network error is transient: %v", err)
		assert.Zero(t, notifizz.RetryAfterOf(err))
		assert.Equal(t, 1, api.count())
		assertNoSecrets(t, err)
	})
}

func TestNoRetryOnPermanentStatus(t *testing.T) {
	// The body echoes the request, secrets included, and is far longer than
	// the excerpt an error keeps.
	echo := func(status int) handlerFunc {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":"rejected","auth":"` + r.Header.Get("Authorization") + `","hint":"` + authSecret + `","pad":"` +
				strings.Repeat("é", 1000) + `"}`))
		}
	}
	for _, status := range []int{400, 401, 403, 404, 409, 422} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			client, api := setup(t, echo(status))
			err := client.TrackEvent(context.Background(), ping)
			apiErr, ok := asAPIError(err)
			require.True(t, ok, "got %v", err)
			assert.Equal(t, status, apiErr.StatusCode)
			assert.Equal(t, "track", apiErr.Endpoint)
			assert.False(t, apiErr.Retryable())
			assert.False(t, notifizz.IsRetryable(err))
			assert.LessOrEqual(t, len(apiErr.Body), 512)
			assert.True(t, strings.HasPrefix(apiErr.Body, `{"error":"rejected","auth":"Bearer [redacted]","hint":"[redacted]"`), apiErr.Body)
			assert.Equal(t, 1, api.count(), "a permanent error is never retried")
			assertNoSecrets(t, err)
		})
	}
}

func TestWithoutRetry(t *testing.T) {
	client, api := setup(t, sequence(http.StatusServiceUnavailable), notifizz.WithoutRetry())
	err := client.TrackEvent(context.Background(), ping)
	apiErr, ok := asAPIError(err)
	require.True(t, ok, "got %v", err)
	assert.True(t, apiErr.Retryable())
	assert.NotContains(t, err.Error(), "attempts", "a single attempt is not reported as a retry")
	assert.Equal(t, 1, api.count())
}

func TestContextCancelStopsStalledCall(t *testing.T) {
	g := newGate()
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		// Stalls until the test ends, unless the client goes away first.
		g.wait(r)
	})
	t.Cleanup(g.open)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- client.TrackEvent(ctx, ping) }()
	<-api.hitCh
	cancel()

	select {
	case err := <-result:
		require.ErrorIs(t, err, context.Canceled)
		assert.False(t, notifizz.IsRetryable(err), "the caller asked to stop")
		assertNoSecrets(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("TrackEvent ignored the cancellation")
	}
	assert.Equal(t, 1, api.count(), "a cancelled call is not retried")
}

func TestContextCancelDuringBackoff(t *testing.T) {
	// The observer reports the end of the first attempt: from then on the
	// call is waiting out its hour-long backoff.
	attempted := make(chan notifizz.Attempt, 1)
	client, api := setup(t, sequence(http.StatusServiceUnavailable),
		notifizz.WithRetry(notifizz.RetryPolicy{Attempts: 3, InitialBackoff: time.Hour}),
		notifizz.WithObserver(func(a notifizz.Attempt) { attempted <- a }))
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- client.TrackEvent(ctx, ping) }()
	require.Equal(t, http.StatusServiceUnavailable, (<-attempted).StatusCode)
	cancel()

	select {
	case err := <-result:
		require.ErrorIs(t, err, context.Canceled)
		assert.False(t, notifizz.IsRetryable(err))
		assert.Contains(t, err.Error(), "status 503", "the last failure is kept for context")
		assertNoSecrets(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the backoff ignored the cancellation")
	}
	assert.Equal(t, 1, api.count())
}

func TestPerAttemptTimeout(t *testing.T) {
	// The first attempt stalls until the test ends, unless the client gives
	// up on it first.
	stall := func(g *gate) handlerFunc {
		return func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				g.wait(r)
				return
			}
			w.WriteHeader(http.StatusOK)
		}
	}

	t.Run("retried", func(t *testing.T) {
		g := newGate()
		client, api := setup(t, stall(g), notifizz.WithTimeout(50*time.Millisecond))
		t.Cleanup(g.open)
		require.NoError(t, client.TrackEvent(context.Background(), ping))
		assert.Equal(t, 2, api.count())
	})

	t.Run("without retry", func(t *testing.T) {
		g := newGate()
		var attempts []notifizz.Attempt
		client, api := setup(t, stall(g), notifizz.WithTimeout(50*time.Millisecond), notifizz.WithoutRetry(),
			notifizz.WithObserver(func(a notifizz.Attempt) { attempts = append(attempts, a) }))
		t.Cleanup(g.open)
		err := client.TrackEvent(context.Background(), ping)
		require.Error(t, err)
		assert.True(t, notifizz.IsRetryable(err), "a per-attempt timeout is the server's slowness: %v", err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "timed out")
		assertNoSecrets(t, err)
		require.Len(t, attempts, 1)
		assert.Zero(t, attempts[0].StatusCode, "no response")
		assert.Equal(t, 1, api.count())
	})
}

func TestObserver(t *testing.T) {
	var mu sync.Mutex
	var attempts []notifizz.Attempt
	client, _ := setup(t, sequence(http.StatusServiceUnavailable, http.StatusTooManyRequests),
		notifizz.WithObserver(func(a notifizz.Attempt) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, a)
		}))
	require.NoError(t, client.TrackEvent(context.Background(), ping))
	_, err := client.Send(context.Background(), "n", map[string]any{"recipients": alice()})
	require.NoError(t, err)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, attempts, 4)
	want := []struct {
		endpoint string
		number   int
		status   int
		failed   bool
	}{
		{"track", 1, 503, true},
		{"track", 2, 429, true},
		{"track", 3, 200, false},
		{"send", 1, 200, false},
	}
	for i, w := range want {
		a := attempts[i]
		assert.Equal(t, w.endpoint, a.Endpoint, "attempt %d", i)
		assert.Equal(t, w.number, a.Number, "attempt %d", i)
		assert.Equal(t, w.status, a.StatusCode, "attempt %d", i)
		assert.Equal(t, w.failed, a.Err != nil, "attempt %d: %v", i, a.Err)
		assert.Positive(t, a.Duration, "attempt %d", i)
	}
}

func TestDefaultRetryPolicy(t *testing.T) {
	// Like the SDK: three attempts, retried after 1 s and then 2 s.
	assert.Equal(t, notifizz.RetryPolicy{Attempts: 3, InitialBackoff: time.Second, MaxBackoff: 2 * time.Second}, notifizz.DefaultRetryPolicy)
}

// TestRequestNetHTTPRefusesIsPermanent covers requests net/http refuses to send, which Do reports
// like network errors: they fail at once with ErrInvalidRequest, are not retried, and the error
// does not quote the value at fault, which may be a secret.
func TestRequestNetHTTPRefusesIsPermanent(t *testing.T) {
	recipients := map[string]any{"recipients": []notifizz.Recipient{{ID: "u", Email: "u@example.com"}}}
	tests := []struct {
		name  string
		opts  []notifizz.Option
		sdk   string // the client's SDK secret key; sdkSecret when empty
		call  func(c *notifizz.Client) error
		quiet string // text the error must not contain
	}{
		{name: "send key with a control character", call: func(c *notifizz.Client) error {
			_, err := c.Send(context.Background(), "n", recipients, notifizz.WithIdempotencyKey("key-\x01-secretish"))
			return err
		}, quiet: "secretish"},
		{name: "track key with a newline", call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), notifizz.TrackRequest{EventName: "e", IdempotencyKey: "key\nsecretish"})
		}, quiet: "secretish"},
		{name: "user agent with DEL", opts: []notifizz.Option{notifizz.WithUserAgent("agent\x7f")}, call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}},
		{name: "SDK secret key with a newline", sdk: "sk_newline_SECRET\n", call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}, quiet: "sk_newline_SECRET"},
		{name: "base URL without a transport", opts: []notifizz.Option{notifizz.WithBaseURL("ftp://api.example.com/v1")}, call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, api := setup(t, nil)
			sdk := sdkSecret
			if tt.sdk != "" {
				sdk = tt.sdk
			}
			opts := append([]notifizz.Option{notifizz.WithBaseURL(api.URL + "/v1"), notifizz.WithHTTPClient(api.Client()), notifizz.WithRetry(fastRetry)}, tt.opts...)
			err := tt.call(notifizz.NewClient(authSecret, sdk, opts...))
			require.ErrorIs(t, err, notifizz.ErrInvalidRequest)
			assert.False(t, notifizz.IsRetryable(err))
			assert.Zero(t, api.count(), "no request is made")
			if tt.quiet != "" {
				assert.NotContains(t, err.Error(), tt.quiet)
			}
			assertNoSecrets(t, err)
		})
	}
}
