package notifizz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrAlreadySent reports a workflow attached to a TrackContext that has
// already been sent (or is being sent), the Go form of the error the Node
// SDK throws from workflow() after the event went out.
var ErrAlreadySent = errors.New("notifizz: event already sent")

// ErrInvalidRequest reports a call rejected before any request was made,
// such as an empty event name or a Send without recipients. Retrying it
// cannot help.
var ErrInvalidRequest = errors.New("notifizz: invalid request")

// ErrInvalidResponse reports a 2xx response whose body Send cannot hand back
// (not JSON, larger than the read limit, or cut off). The API accepted the
// request, so a caller that only needs to know that (the bridge) treats it as
// success. The error is an *InvalidResponseError, which holds what came back.
var ErrInvalidResponse = errors.New("notifizz: invalid response")

// maxErrorBody bounds the response excerpt an APIError keeps: enough to
// see what the API complained about, small enough for logs and headers.
const maxErrorBody = 512

// APIError is a non-2xx response of the Notifizz API.
type APIError struct {
	// Endpoint names the call: "track", "send", or a v2 call ("identify",
	// "detach", "subscribe", "unsubscribe", "ping").
	Endpoint string
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// RetryAfter is the server's Retry-After (delta-seconds or HTTP-date),
	// or 0 when absent or invalid.
	RetryAfter time.Duration
	// Body is an excerpt of the response body, at most 512 bytes, with any
	// of the client's secrets replaced by "[redacted]" in case the API echoes
	// the request back.
	Body string
	// Location is where a 3xx pointed (its Location header resolved against
	// the request URL), without URL credentials and with secrets redacted,
	// at most 512 bytes. Redirects are never followed: a POST redirected
	// would arrive as a GET without body or carry the secret to another
	// host, so a 3xx is permanent and the base URL is what must change.
	Location string
}

// Error returns a lowercase, one-line description. It never contains a
// secret: the body excerpt was redacted when the error was made.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("notifizz: ")
	b.WriteString(e.Endpoint)
	b.WriteString(": status ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if text := http.StatusText(e.StatusCode); text != "" {
		b.WriteString(" (")
		b.WriteString(strings.ToLower(text))
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		b.WriteString(", retry after ")
		b.WriteString(e.RetryAfter.String())
	}
	if e.StatusCode >= 300 && e.StatusCode <= 399 {
		b.WriteString(": redirect")
		if e.Location != "" {
			b.WriteString(" to ")
			b.WriteString(strconv.Quote(e.Location))
		}
		b.WriteString(" not followed; the base URL must change")
	}
	writeBody(&b, e.Body)
	return b.String()
}

// writeBody appends ": " and a response excerpt, on one line, unless it is
// blank.
func writeBody(b *strings.Builder, body string) {
	if body = strings.TrimSpace(body); body == "" {
		return
	}
	b.WriteString(": ")
	// Control characters would split one log line into several.
	b.WriteString(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, body))
}

// InvalidResponseError is a 2xx response whose body Send cannot hand back as
// JSON: it is not JSON, it is larger than 1 MiB, or it broke off. The API
// accepted the request all the same. errors.Is(err, ErrInvalidResponse)
// holds for it, and IsRetryable does not: sending again would repeat what
// the API already did.
type InvalidResponseError struct {
	// Endpoint names the call: "track", "send", or a v2 call ("identify",
	// "detach", "subscribe", "unsubscribe", "ping").
	Endpoint string
	// StatusCode is the HTTP status of the response, a 2xx.
	StatusCode int
	// Body is what came back, as received and cut at 1 MiB. Like the body
	// of a successful Send it is not redacted; Error quotes only a redacted
	// excerpt of it.
	Body []byte
	// Truncated reports that the response was longer than Body.
	Truncated bool
	// problem says what is wrong with the body; excerpt is the start of
	// Body with secrets redacted, at most 512 bytes.
	problem, excerpt string
}

// Error returns a lowercase, one-line description with a redacted excerpt of
// the body.
func (e *InvalidResponseError) Error() string {
	var b strings.Builder
	b.WriteString("notifizz: ")
	b.WriteString(e.Endpoint)
	b.WriteString(": status ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	b.WriteString(" accepted the request, but the response body ")
	b.WriteString(e.problem)
	writeBody(&b, e.excerpt)
	return b.String()
}

// GoString keeps %#v from dumping the body, which may be large and may echo a
// secret.
func (e *InvalidResponseError) GoString() string {
	return fmt.Sprintf("&notifizz.InvalidResponseError{Endpoint:%q, StatusCode:%d, Body:<%d bytes>, Truncated:%t}",
		e.Endpoint, e.StatusCode, len(e.Body), e.Truncated)
}

// Is makes errors.Is(err, ErrInvalidResponse) hold.
func (e *InvalidResponseError) Is(target error) bool { return target == ErrInvalidResponse }

// Retryable reports whether the status is transient: 408, 425, 429 and 5xx.
// Every other 4xx is permanent; retrying it would only have the server's
// idempotency layer mask the rejection.
func (e *APIError) Retryable() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout,
		e.StatusCode == http.StatusTooEarly,
		e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500 && e.StatusCode <= 599:
		return true
	}
	return false
}

// requestError is a failed attempt that got no HTTP response: a network
// error or a per-attempt timeout. Both are transient.
type requestError struct {
	endpoint string
	attempt  int
	timeout  bool
	// msg is computed once with secrets redacted, so that Error never
	// depends on what the underlying error happens to print.
	msg string
	err error
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.err }

// Timeout reports whether the attempt ran out of its per-attempt time.
func (e *requestError) Timeout() bool { return e.timeout }

// IsRetryable reports whether err is transient, so that trying again later
// may succeed: an APIError with a transient status, a network error or a
// per-attempt timeout. A cancelled or expired caller context is not, since
// the caller asked to stop; nil is not either. Wrapped errors are unwrapped.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.Retryable()
	}
	// Checked before the context errors: a per-attempt timeout wraps
	// context.DeadlineExceeded but is the server's fault, not the caller's.
	if _, ok := errors.AsType[*requestError](err); ok {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return false
}

// RetryAfterOf returns the Retry-After carried by err, or 0 if there is none.
func RetryAfterOf(err error) time.Duration {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.RetryAfter
	}
	return 0
}

// parseRetryAfter reads a Retry-After value: delta-seconds or an HTTP-date
// (RFC 9110 §10.2.3). Anything else, and dates in the past, give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		// A value this large is garbage rather than a wait to honour, and
		// would overflow time.Duration.
		if err != nil || secs > uint64(time.Duration(1<<63-1)/time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(t.Sub(now), 0)
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// wrapAttempts adds the number of attempts to the final error of a call that
// was retried, keeping it unwrappable.
func wrapAttempts(err error, attempts int) error {
	if attempts <= 1 {
		return err
	}
	return fmt.Errorf("%w (after %d attempts)", err, attempts)
}
