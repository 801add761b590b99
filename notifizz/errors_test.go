package notifizz_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

func TestAPIErrorRetryable(t *testing.T) {
	tests := []struct {
		status int
		want   bool
	}{
		{400, false}, {401, false}, {403, false}, {404, false}, {409, false}, {413, false}, {422, false},
		{408, true}, {425, true}, {429, true},
		{500, true}, {501, true}, {502, true}, {503, true}, {504, true}, {599, true},
		{301, false}, {304, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			err := &notifizz.APIError{Endpoint: "track", StatusCode: tt.status}
			assert.Equal(t, tt.want, err.Retryable())
			assert.Equal(t, tt.want, notifizz.IsRetryable(err))
		})
	}
}

// timeoutError is a net.Error such as a dial or read timeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"context canceled", context.Canceled, false},
		{"context deadline", context.DeadlineExceeded, false},
		{"wrapped context canceled", fmt.Errorf("notifizz: track: %w", context.Canceled), false},
		{"transient api error", &notifizz.APIError{StatusCode: 503}, true},
		{"wrapped transient api error", fmt.Errorf("flush: %w", &notifizz.APIError{StatusCode: 429}), true},
		{"permanent api error", &notifizz.APIError{StatusCode: 400}, false},
		{"wrapped permanent api error", fmt.Errorf("flush: %w", &notifizz.APIError{StatusCode: 404}), false},
		{"net timeout", timeoutError{}, true},
		{"wrapped net timeout", fmt.Errorf("x: %w", timeoutError{}), true},
		{"op error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"dns error", &net.DNSError{Err: "no such host", Name: "api.example"}, true},
		{"already sent", notifizz.ErrAlreadySent, false},
		{"invalid request", notifizz.ErrInvalidRequest, false},
		{"invalid response", notifizz.ErrInvalidResponse, false},
		{"io error", io.ErrUnexpectedEOF, false},
		{"os deadline", os.ErrDeadlineExceeded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, notifizz.IsRetryable(tt.err))
		})
	}
}

func TestRetryAfterOf(t *testing.T) {
	apiErr := &notifizz.APIError{StatusCode: 429, RetryAfter: 3 * time.Second}
	assert.Equal(t, 3*time.Second, notifizz.RetryAfterOf(apiErr))
	assert.Equal(t, 3*time.Second, notifizz.RetryAfterOf(fmt.Errorf("flush: %w", apiErr)))
	assert.Zero(t, notifizz.RetryAfterOf(nil))
	assert.Zero(t, notifizz.RetryAfterOf(errors.New("boom")))
	assert.Zero(t, notifizz.RetryAfterOf(&notifizz.APIError{StatusCode: 503}))
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *notifizz.APIError
		want string
	}{
		{"status only", &notifizz.APIError{Endpoint: "track", StatusCode: 404}, "notifizz: track: status 404 (not found)"},
		{"with body", &notifizz.APIError{Endpoint: "send", StatusCode: 400, Body: "{\"error\":\"bad\"}\n"}, `notifizz: send: status 400 (bad request): {"error":"bad"}`},
		{"control characters flattened", &notifizz.APIError{Endpoint: "track", StatusCode: 500, Body: "a\nb\rc"}, "notifizz: track: status 500 (internal server error): a b c"},
		{"retry after", &notifizz.APIError{Endpoint: "track", StatusCode: 429, RetryAfter: 2 * time.Second}, "notifizz: track: status 429 (too many requests), retry after 2s"},
		{"unknown status", &notifizz.APIError{Endpoint: "track", StatusCode: 599}, "notifizz: track: status 599"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestAPIErrorRetryAfterFromResponse(t *testing.T) {
	inAMinute := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		retryAfter string
		min, max   time.Duration
	}{
		{"seconds", "7", 7 * time.Second, 7 * time.Second},
		{"http date", inAMinute, 50 * time.Second, time.Minute},
		{"garbage", "soon", 0, 0},
		{"absent", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := setup(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			}, notifizz.WithoutRetry())
			err := client.TrackEvent(context.Background(), ping)
			apiErr, ok := asAPIError(err)
			require.True(t, ok, "got %v", err)
			assert.GreaterOrEqual(t, apiErr.RetryAfter, tt.min)
			assert.LessOrEqual(t, apiErr.RetryAfter, tt.max)
			assert.Equal(t, apiErr.RetryAfter, notifizz.RetryAfterOf(err))
		})
	}
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	// The fake API echoes everything it received, secrets included, in
	// every error response.
	echo := func(status int) handlerFunc {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "%s %s\n%s", r.Header.Get("Authorization"), body, authSecret)
		}
	}
	props := map[string]any{"recipients": alice()}
	tests := []struct {
		name    string
		handler handlerFunc
		opts    []notifizz.Option
		call    func(c *notifizz.Client) error
	}{
		{name: "permanent api error", handler: echo(400), call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}},
		{name: "transient api error after retries", handler: echo(503), call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}},
		{name: "send api error", handler: echo(422), call: func(c *notifizz.Client) error {
			_, err := c.Send(context.Background(), "n", props)
			return err
		}},
		{name: "network error", handler: func(_ int, w http.ResponseWriter, _ *http.Request) { hangUp(t, w) }, call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}},
		{name: "cancelled context", call: func(c *notifizz.Client) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return c.TrackEvent(ctx, ping)
		}},
		{name: "invalid request", call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), notifizz.TrackRequest{})
		}},
		{name: "invalid base url", opts: []notifizz.Option{notifizz.WithBaseURL("http://bad host/v1")}, call: func(c *notifizz.Client) error {
			return c.TrackEvent(context.Background(), ping)
		}},
		{name: "invalid response", handler: respond(http.StatusOK, "not json"), call: func(c *notifizz.Client) error {
			_, err := c.Send(context.Background(), "n", props)
			return err
		}},
		{name: "auto-send error", handler: echo(401), opts: []notifizz.Option{notifizz.WithAutoSendDelay(0)}, call: func(c *notifizz.Client) error {
			tc := c.Track(notifizz.TrackProps{EventName: "e"})
			<-tc.Done()
			return tc.Err()
		}},
		{name: "already sent", call: func(c *notifizz.Client) error {
			tc := c.Track(notifizz.TrackProps{EventName: "e"})
			_ = tc.Send(context.Background())
			return tc.AddWorkflow("late", alice())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := setup(t, tt.handler, tt.opts...)
			err := tt.call(client)
			require.Error(t, err)
			assertNoSecrets(t, err)
			// What the chain wraps (net/http's errors among them) is not
			// ours to word, but must not leak either.
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				assertNoSecretText(t, e)
			}
		})
	}

	t.Run("unreachable server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		client := notifizz.NewClient(authSecret, sdkSecret, notifizz.WithBaseURL("http://"+addr+"/v1"), notifizz.WithoutRetry())
		err = client.TrackEvent(context.Background(), ping)
		require.Error(t, err)
		assert.True(t, notifizz.IsRetryable(err), "%v", err)
		assertNoSecrets(t, err)
	})

	t.Run("client string", func(t *testing.T) {
		client := notifizz.NewClient(authSecret, sdkSecret)
		assertNoSecrets(t, client)
		assert.Contains(t, client.String(), notifizz.DefaultBaseURL)
		assert.True(t, strings.Contains(client.String(), "[redacted]"))
	})
}
