package notifizz

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Version is the version of this client, sent in the default User-Agent.
const Version = "0.1.0"

// DefaultBaseURL is the Notifizz API endpoint the official SDKs 1.x use, and
// the default under APIv1.
const DefaultBaseURL = "https://eu.api.notifizz.com/v1"

// DefaultBaseURLV2 is the endpoint of the official SDKs 2.x, the default
// under APIv2.
const DefaultBaseURLV2 = "https://api.notifizz.com/v1"

// DefaultAutoSendDelay is how long a TrackContext waits for more workflows
// before it sends itself, like the SDK's autoSendDelayMs default of 1000.
const DefaultAutoSendDelay = time.Second

// DefaultTimeout bounds one HTTP attempt; retries each get a fresh timeout.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent identifies this client to the Notifizz API.
const DefaultUserAgent = "notifizz-go/" + Version

// DefaultRetryPolicy retries a transient failure after 1 s and then 2 s, as the
// official SDK does.
var DefaultRetryPolicy = RetryPolicy{Attempts: 3, InitialBackoff: time.Second, MaxBackoff: 2 * time.Second}

// RetryPolicy says how often and how patiently a call is retried after a
// transient failure (see IsRetryable). Permanent failures are never retried.
type RetryPolicy struct {
	// Attempts is the total number of attempts including the first one;
	// 1 (or less) disables retries.
	Attempts int
	// InitialBackoff is the wait before the second attempt; it doubles for
	// every further attempt.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait; zero or negative means no cap.
	MaxBackoff time.Duration
}

// backoff returns the wait before retry number n (1 for the wait before the
// second attempt). A Retry-After sent by the server may lengthen it.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := max(p.InitialBackoff, 0)
	for i := 1; i < n; i++ {
		// Doubling stops at the cap, and before it could overflow when
		// there is none.
		if p.MaxBackoff > 0 && d >= p.MaxBackoff || d > time.Duration(1<<62) {
			break
		}
		d *= 2
	}
	if p.MaxBackoff > 0 && d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	return d
}

// Attempt describes one HTTP attempt, for metrics (see WithObserver).
type Attempt struct {
	// Endpoint is "track" or "send".
	Endpoint string
	// Number is the 1-based attempt number within one call.
	Number int
	// StatusCode is the HTTP status, or 0 when there was no response
	// (network error, timeout, cancellation).
	StatusCode int
	// Duration covers sending the request and reading the response.
	Duration time.Duration
	// Err is nil when the attempt succeeded with a 2xx status.
	Err error
}

// options are the settings a Client reads at the start of every call; they
// are copied so that Config may change them while calls are in flight.
type options struct {
	api           API
	baseURL       string
	autoSendDelay time.Duration
	httpClient    *http.Client
	timeout       time.Duration
	userAgent     string
	retry         RetryPolicy
	observer      func(Attempt)
}

// Option changes a Client setting, in NewClient or Config.
type Option func(*options)

// WithAutoSendDelay sets how long a TrackContext waits before it sends itself
// (the SDK's autoSendDelayMs). A negative delay counts as zero.
func WithAutoSendDelay(d time.Duration) Option {
	return func(o *options) { o.autoSendDelay = max(d, 0) }
}

// WithBaseURL sets the API base URL (the SDK's baseUrl), e.g. for another
// region or a test server. An empty URL restores the default of the client's
// API surface (DefaultBaseURL, or DefaultBaseURLV2 under APIv2).
func WithBaseURL(u string) Option {
	return func(o *options) {
		// A trailing slash would double the one every endpoint path starts with.
		u = strings.TrimRight(u, "/")
		if u == "" {
			u = o.api.defaultBaseURL()
		}
		o.baseURL = u
	}
}

// WithHTTPClient sets the HTTP client used for every request. nil restores the
// package default, which keeps enough idle connections per host for a busy
// bridge. Timeouts are better set with WithTimeout, which applies per attempt.
// The client is used through a copy that never follows redirects, whatever
// its CheckRedirect says (see APIError.Location).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc == nil {
			o.httpClient = defaultHTTPClient()
			return
		}
		o.httpClient = withoutRedirects(hc)
	}
}

// withoutRedirects returns a copy of hc whose CheckRedirect hands a 3xx back
// as the response. Followed, a 301, 302 or 303 turns the POST into a GET
// without body whose 2xx passes for success, and a 307 or 308 sends the body
// (which holds the SDK secret) and perhaps the Authorization header wherever
// the API pointed.
func withoutRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// WithTimeout bounds each HTTP attempt (default 10 s); every retry gets a
// fresh timeout, and an attempt that runs out of time is retried. Zero or
// negative disables it, leaving only the caller's context.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = max(d, 0) }
}

// WithUserAgent sets the User-Agent header; empty restores DefaultUserAgent.
func WithUserAgent(ua string) Option {
	return func(o *options) {
		if ua == "" {
			ua = DefaultUserAgent
		}
		o.userAgent = ua
	}
}

// WithRetry sets the retry policy for transient failures. Attempts below 1
// count as 1 and negative waits as zero.
func WithRetry(p RetryPolicy) Option {
	return func(o *options) {
		p.Attempts = max(p.Attempts, 1)
		p.InitialBackoff = max(p.InitialBackoff, 0)
		p.MaxBackoff = max(p.MaxBackoff, 0)
		o.retry = p
	}
}

// WithoutRetry makes every call a single attempt, for callers that retry on
// their own (the bridge naks and lets JetStream redeliver).
func WithoutRetry() Option {
	return WithRetry(RetryPolicy{Attempts: 1})
}

// WithObserver registers f to be called synchronously after every HTTP
// attempt, for metrics. f must be safe for concurrent use and quick, since
// it runs on the caller's goroutine; nil removes the observer.
func WithObserver(f func(Attempt)) Option {
	return func(o *options) { o.observer = f }
}

// maxIdleConns is how many idle keep-alive connections the default client
// keeps, all to one host if need be. A connection is kept only if it was in
// use at once with the others, so the bound costs nothing below it; it must
// not be below the calls a caller makes at once (the bridge's maxInFlight),
// or every call beyond it opens and closes a connection of its own.
const maxIdleConns = 1024

// defaultHTTPClient is shared by every Client that has no client of its own,
// so that clients made and dropped do not each leave idle connections behind.
// The stock transport keeps only 2 idle connections per host, which makes a
// bridge with many calls in flight to one host reconnect all the time.
var defaultHTTPClient = sync.OnceValue(func() *http.Client {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		// Someone replaced the default transport; respect their choice.
		return withoutRedirects(&http.Client{})
	}
	tr = tr.Clone()
	tr.MaxIdleConns = maxIdleConns
	tr.MaxIdleConnsPerHost = maxIdleConns
	return withoutRedirects(&http.Client{Transport: tr})
})

// DefaultTransport returns the transport of the HTTP client a Client uses when given none, for
// a caller that wraps it (to trace each request, say) and hands the wrapper back with
// WithHTTPClient: the wrapper keeps its pool of idle connections.
func DefaultTransport() http.RoundTripper {
	if tr := defaultHTTPClient().Transport; tr != nil {
		return tr
	}
	return http.DefaultTransport
}

// Client talks to the Notifizz API. It is the Go counterpart of the Node
// SDK's NotifizzClient and is safe for concurrent use; Config may be called
// while other goroutines use it.
type Client struct {
	authSecretKey string
	sdkSecretKey  string
	// bearer is the Authorization header value, built once because every
	// request carries it.
	bearer string
	// forms are what redaction looks for (see secretForms), and longestMatch
	// the most text a match of one of them can span.
	forms        []string
	longestMatch int

	mu   sync.RWMutex
	opts options
}

// NewClient returns a client that authenticates with sdkSecretKey and signs
// widget tokens with authSecretKey, the two keys of the Notifizz dashboard,
// in the order the Node SDK's constructor takes them.
func NewClient(authSecretKey, sdkSecretKey string, opts ...Option) *Client {
	c := &Client{
		authSecretKey: authSecretKey,
		sdkSecretKey:  sdkSecretKey,
		bearer:        "Bearer " + sdkSecretKey,
		forms:         secretForms(sdkSecretKey, authSecretKey),
		opts: options{
			baseURL:       DefaultBaseURL,
			autoSendDelay: DefaultAutoSendDelay,
			httpClient:    defaultHTTPClient(),
			timeout:       DefaultTimeout,
			userAgent:     DefaultUserAgent,
			retry:         DefaultRetryPolicy,
		},
	}
	for _, f := range c.forms {
		c.longestMatch = max(c.longestMatch, maxUnit*len(f))
	}
	for _, opt := range opts {
		opt(&c.opts)
	}
	return c
}

// Config merges opts over the current settings, like the SDK's config(). Calls
// already in flight keep the settings they started with.
func (c *Client) Config(opts ...Option) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, opt := range opts {
		opt(&c.opts)
	}
}

// settings returns a copy of the current options, so that one call sees one
// consistent configuration even if Config runs concurrently.
func (c *Client) settings() options {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.opts
}

// GenerateHashedToken returns the widget token for userID: the lowercase hex
// SHA-256 of userID followed by the auth secret key, as the official SDKs
// compute it. Hand it to the frontend so the widget can authenticate.
func (c *Client) GenerateHashedToken(userID string) string {
	sum := sha256.Sum256([]byte(userID + c.authSecretKey))
	return hex.EncodeToString(sum[:])
}

// String describes the client without its secrets, so that logging a Client
// by mistake leaks nothing.
func (c *Client) String() string {
	o := c.settings()
	return fmt.Sprintf("notifizz.Client{baseURL: %q, sdkSecretKey: %s, authSecretKey: %s}",
		o.baseURL, redactedMark(c.sdkSecretKey), redactedMark(c.authSecretKey))
}

// GoString keeps %#v from printing the secret fields.
func (c *Client) GoString() string { return c.String() }

func redactedMark(secret string) string {
	if secret == "" {
		return `""`
	}
	return redacted
}
