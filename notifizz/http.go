package notifizz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/goccy/go-json"
)

// maxResponseBody bounds the 2xx body Send reads and hands back.
const maxResponseBody = 1 << 20

// maxDrain bounds how much of an unread body is discarded so that the
// connection can be reused; beyond it, closing the connection is cheaper.
const maxDrain = 64 << 10

// call is one logical API request, made in one or more attempts that all
// send the same body and idempotency key.
type call struct {
	endpoint string // "track", "send", "identify"..., for errors and metrics
	method   string // POST when empty
	url      string
	body     *payload
	// idempotencyKey, when set, goes into X-Idempotency-Key; it is what makes
	// a retry safe, since the API then runs the request at most once.
	idempotencyKey string
	retry          bool
	wantBody       bool
}

// do runs k with retries per o.retry: only transient failures are retried,
// after max(backoff, Retry-After), and the caller's ctx ends the call at once.
func (c *Client) do(ctx context.Context, o *options, k *call) (json.RawMessage, error) {
	attempts := 1
	if k.retry {
		attempts = max(o.retry.Attempts, 1)
	}
	var lastErr error
	for n := 1; ; n++ {
		body, err := c.attempt(ctx, o, k, n)
		if err == nil {
			return body, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			// An attempt the caller cut short failed because of it; one that had already
			// failed (the caller cancelled just after) is the last failure worth telling.
			if !errors.Is(err, ctxErr) {
				lastErr = err
			}
			return nil, cancelled(k.endpoint, ctxErr, lastErr)
		}
		if n >= attempts || !IsRetryable(err) {
			return nil, wrapAttempts(err, n)
		}
		lastErr = err
		wait := max(o.retry.backoff(n), RetryAfterOf(err))
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			// Waiting would only end in the caller's deadline. Handing back
			// the transient error now, with its Retry-After, lets the caller
			// schedule the retry itself (the bridge naks with that delay).
			return nil, wrapAttempts(err, n)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, cancelled(k.endpoint, err, lastErr)
		}
	}
}

// attempt makes one HTTP attempt and reports it to the observer.
func (c *Client) attempt(ctx context.Context, o *options, k *call, n int) (json.RawMessage, error) {
	start := time.Now()
	status, body, err := c.roundTrip(ctx, o, k, n)
	if o.observer != nil {
		o.observer(Attempt{Endpoint: k.endpoint, Number: n, StatusCode: status, Duration: time.Since(start), Err: err})
	}
	return body, err
}

func (c *Client) roundTrip(ctx context.Context, o *options, k *call, n int) (int, json.RawMessage, error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if o.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, o.timeout)
	}
	defer cancel()

	method := k.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(actx, method, k.url, nil)
	if err != nil {
		// Only a malformed base URL gets here; %v keeps the url.Error out of
		// the chain, where it would look like a retryable net.Error.
		return 0, nil, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, k.endpoint, err)
	}
	// The attempt sends its own copy of the pooled bytes, in a body net/http knows to be in
	// memory: it then writes the headers and the body in one write, where a body of another
	// type costs a write of the headers alone first, and a copy buffer. The transport may read
	// the body after Do returns, so the copy is what lets the pooled buffer go back with the
	// call. ContentLength is set by hand, or the request would go out chunked.
	body := bytes.Clone(k.body.bytes())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	req.Header["Authorization"] = []string{c.bearer}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["User-Agent"] = []string{o.userAgent}
	if k.idempotencyKey != "" {
		req.Header["X-Idempotency-Key"] = []string{k.idempotencyKey}
	}
	if err := refusal(req); err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, k.endpoint, err)
	}

	resp, err := o.httpClient.Do(req)
	if err != nil {
		return 0, nil, c.requestError(ctx, actx, o, k.endpoint, n, err)
	}
	defer drainAndClose(resp.Body)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil, c.apiError(k.endpoint, resp)
	}
	if !k.wantBody {
		return resp.StatusCode, nil, nil
	}
	// From here on the API has accepted the request: whatever is wrong with
	// the body is an InvalidResponseError, never a reason to send again.
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return resp.StatusCode, nil, c.invalidResponse(k.endpoint, resp.StatusCode, data,
			"broke off: "+c.redact(err.Error()))
	}
	if len(data) > maxResponseBody {
		return resp.StatusCode, nil, c.invalidResponse(k.endpoint, resp.StatusCode, data,
			fmt.Sprintf("exceeds %d bytes", maxResponseBody))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// A 204 or an empty 200: success with nothing to hand back.
		return resp.StatusCode, nil, nil
	}
	if !json.Valid(data) {
		return resp.StatusCode, nil, c.invalidResponse(k.endpoint, resp.StatusCode, data, "is not JSON")
	}
	return resp.StatusCode, data, nil
}

// invalidResponse describes a 2xx whose body cannot be handed back; data is
// what was read, at most one byte more than the limit.
func (c *Client) invalidResponse(endpoint string, status int, data []byte, problem string) *InvalidResponseError {
	truncated := len(data) > maxResponseBody
	if truncated {
		data = data[:maxResponseBody]
	}
	return &InvalidResponseError{
		Endpoint:   endpoint,
		StatusCode: status,
		Body:       data,
		Truncated:  truncated,
		problem:    problem,
		excerpt:    c.excerpt(data, maxErrorBody),
	}
}

// refusal says why net/http would refuse to send req, or returns nil. Do reports its refusals
// (a header value with a control character, a URL it has no transport for) like network errors,
// which would make a request that can never be sent look worth retrying.
func refusal(req *http.Request) error {
	if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return errors.New("base URL must be an absolute http:// or https:// URL")
	}
	for name, values := range req.Header {
		for _, v := range values {
			// The rule of net/http's header check. The value is never quoted: it may be a secret.
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				return fmt.Errorf("header %s holds a control character", name)
			}
		}
	}
	return nil
}

// requestError classifies an attempt that got no usable response. The
// caller's cancellation is reported as such; everything else (network
// errors, the per-attempt timeout) is transient.
func (c *Client) requestError(ctx, actx context.Context, o *options, endpoint string, n int, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("notifizz: %s: attempt %d: %w", endpoint, n, ctxErr)
	}
	e := &requestError{endpoint: endpoint, attempt: n, err: err}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		e.timeout = true
		e.msg = fmt.Sprintf("notifizz: %s: attempt %d timed out after %s", endpoint, n, o.timeout)
	} else {
		// The transport's errors name the URL and the cause, never headers
		// or body, but redacting costs nothing on this rare path and keeps
		// "never in error text" true whatever a custom transport prints.
		e.msg = c.redact(fmt.Sprintf("notifizz: %s: attempt %d: %v", endpoint, n, err))
	}
	return e
}

// apiError reads a bounded, redacted excerpt of a non-2xx response and, for a
// 3xx, where it pointed.
func (c *Client) apiError(endpoint string, resp *http.Response) *APIError {
	// Reading past the limit lets a secret that starts inside the excerpt be
	// recognised whole and redacted.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, int64(maxErrorBody+c.longestMatch)))
	e := &APIError{
		Endpoint:   endpoint,
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Body:       c.excerpt(raw, maxErrorBody),
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		if loc, err := resp.Location(); err == nil {
			loc.User = nil
			e.Location = c.excerpt([]byte(loc.String()), maxErrorBody)
		}
	}
	return e
}

// redact replaces every form of the client's secrets in s by "[redacted]".
func (c *Client) redact(s string) string { return scrub(s, len(s), redacted, c.forms) }

// excerpt returns at most limit bytes of valid UTF-8 taken from raw[:limit],
// with every secret that starts there replaced by "[redacted]". Scanning in
// raw's positions, rather than redacting and then cutting, ensures that no
// shift caused by a replacement can pull a partial secret into the excerpt.
func (c *Client) excerpt(raw []byte, limit int) string {
	return truncateUTF8(strings.ToValidUTF8(scrub(string(raw), limit, redacted, c.forms), "\uFFFD"), limit)
}

// cancelled reports that the caller's ctx ended the call, with the last
// transient failure for context; the text of both is already free of secrets.
func cancelled(endpoint string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("notifizz: %s: %w", endpoint, ctxErr)
	}
	return fmt.Errorf("notifizz: %s: %w (last error: %v)", endpoint, ctxErr, last)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drainAndClose discards what is left of a response body, within a bound, so
// that the keep-alive connection goes back to the pool.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	_ = body.Close()
}
