package notifizz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
)

// API selects the surface of the Notifizz API a Client speaks.
type API int

const (
	// APIv1 is the surface of the SDKs 1.x (the seed): track with chained
	// workflows, and send to the Notification Center.
	APIv1 API = iota
	// APIv2 is the surface of the SDKs 2.x (2026): a flat track with
	// occurredAt, identity, subscriptions and the boot ping; no workflows and
	// no Notification Center route.
	APIv2
)

// String returns "v1" or "v2", the spelling of the bridge's notifizz.api.
func (a API) String() string {
	if a == APIv2 {
		return "v2"
	}
	return "v1"
}

func (a API) defaultBaseURL() string {
	if a == APIv2 {
		return DefaultBaseURLV2
	}
	return DefaultBaseURL
}

// WithAPI selects the API surface (APIv1 by default). A base URL still at the
// other surface's default moves to this one's; one set with WithBaseURL stays.
func WithAPI(a API) Option {
	return func(o *options) {
		if o.baseURL == "" || o.baseURL == o.api.defaultBaseURL() {
			o.baseURL = a.defaultBaseURL()
		}
		o.api = a
	}
}

// MaxEventNameLen is the longest event name the v2 API accepts, in bytes,
// after trimming.
const MaxEventNameLen = 120

// CheckEventName trims name the way the v2 API does and reports why the API
// would refuse it: "empty", "too_long" or "non_ascii" (a byte outside the
// printable ASCII range 0x20–0x7E). It returns the trimmed name and "" when
// the name is valid.
func CheckEventName(name string) (trimmed, problem string) {
	trimmed = strings.TrimSpace(name)
	switch {
	case trimmed == "":
		return trimmed, "empty"
	case len(trimmed) > MaxEventNameLen:
		return trimmed, "too_long"
	}
	for i := 0; i < len(trimmed); i++ {
		if c := trimmed[i]; c < 0x20 || c > 0x7e {
			return trimmed, "non_ascii"
		}
	}
	return trimmed, ""
}

// DeriveIdempotencyKey computes the key the SDKs 2.x derive from an event's
// declared idempotency fields: the first 32 hex characters of
// sha256(eventName + "|" + "f1=v1&f2=v2..."), fields sorted, a string value
// as is and any other value as its JSON. It reports false, and no key, when
// fields is empty or a field is missing or null: a key built without it
// would be shared by different events.
func DeriveIdempotencyKey(eventName string, fields []string, properties map[string]any) (string, bool) {
	if len(fields) == 0 {
		return "", false
	}
	sorted := slices.Clone(fields)
	slices.Sort(sorted)
	var b strings.Builder
	b.WriteString(eventName)
	b.WriteByte('|')
	for i, f := range sorted {
		v, ok := properties[f]
		if !ok || v == nil {
			return "", false
		}
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(f)
		b.WriteByte('=')
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case json.RawMessage:
			var s string
			if json.Unmarshal(v, &s) == nil {
				b.WriteString(s)
			} else {
				b.Write(v)
			}
		default:
			// As JSON.stringify writes it, without HTML escaping; an object's
			// keys come sorted (a Go map has no insertion order to keep).
			data, err := json.MarshalWithOption(jsNumbers(v), json.DisableHTMLEscape())
			if err != nil {
				return "", false
			}
			b.Write(data)
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])[:32], true
}

// jsNumbers returns v with its numbers as JavaScript holds them: a
// json.Number (what the bridge decodes) becomes the float64 it denotes, which
// go-json writes as JSON.stringify does, so that 42.0 or 4.2e1 in a
// producer's JSON give "42" as they would in an SDK handed the parsed JSON;
// -0 becomes 0. A number out of float64's range is kept as written.
func jsNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return v
		}
		return f + 0 // -0 + 0 is 0
	case float64:
		return v + 0
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsNumbers(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsNumbers(x)
		}
		return out
	}
	return v
}

// GenerateSubscribeToken returns the token the Subscribe widget needs in
// secure mode (SDK 2.x generateSubscribeToken): the lowercase hex
// HMAC-SHA256, keyed with the auth secret key, of subscriberID followed by
// resourceID.
func (c *Client) GenerateSubscribeToken(subscriberID, resourceID string) string {
	m := hmac.New(sha256.New, []byte(c.authSecretKey))
	m.Write([]byte(subscriberID + resourceID))
	return hex.EncodeToString(m.Sum(nil))
}

// Subject is one identity of a person (an email, a user id in one system...)
// in the v2 identity calls.
type Subject struct {
	Type       string `json:"type"`
	Identifier string `json:"identifier"`
}

// IdentifyRequest links two subjects to the same audience (SDK 2.x identify).
type IdentifyRequest struct {
	EnvironmentID string    `json:"environmentId"`
	SubjectA      Subject   `json:"subjectA"`
	SubjectB      Subject   `json:"subjectB"`
	ConsentBasis  string    `json:"consentBasis"`
	ExpiresAt     time.Time `json:"-"` // zero: no expiry
}

// DetachRequest moves a subject out of its audience (SDK 2.x detach).
type DetachRequest struct {
	EnvironmentID string  `json:"environmentId"`
	Subject       Subject `json:"subject"`
}

// Identify makes POST {baseURL}/identity/identify with body {"environmentId",
// "subjectA", "subjectB", "consentBasis", "expiresAt"?} and returns the
// response body ({action, audienceId?}). Transient failures are retried like
// a track's; linking twice links once.
func (c *Client) Identify(ctx context.Context, req IdentifyRequest) (json.RawMessage, error) {
	if req.EnvironmentID == "" || req.SubjectA.Type == "" || req.SubjectA.Identifier == "" ||
		req.SubjectB.Type == "" || req.SubjectB.Identifier == "" {
		return nil, fmt.Errorf("%w: identify: environmentId and both subjects' type and identifier are required", ErrInvalidRequest)
	}
	body := struct {
		IdentifyRequest
		ExpiresAt string `json:"expiresAt,omitempty"`
	}{IdentifyRequest: req}
	if !req.ExpiresAt.IsZero() {
		body.ExpiresAt = isoTime(req.ExpiresAt)
	}
	return c.jsonCall(ctx, "identify", http.MethodPost, "/identity/identify", body)
}

// Detach makes POST {baseURL}/identity/detach with body {"environmentId",
// "subject"} and returns the response body ({action, subjectId?}).
func (c *Client) Detach(ctx context.Context, req DetachRequest) (json.RawMessage, error) {
	if req.EnvironmentID == "" || req.Subject.Type == "" || req.Subject.Identifier == "" {
		return nil, fmt.Errorf("%w: detach: environmentId and the subject's type and identifier are required", ErrInvalidRequest)
	}
	return c.jsonCall(ctx, "detach", http.MethodPost, "/identity/detach", req)
}

// Subscribe makes POST {baseURL}/subscriptions/{resourceID}/subscribe with
// body {"subscriberId", ...meta} (a meta key named subscriberId is ignored)
// and returns the response body. Subscribing twice is one subscription.
func (c *Client) Subscribe(ctx context.Context, resourceID, subscriberID string, meta map[string]any) (json.RawMessage, error) {
	if resourceID == "" || subscriberID == "" {
		return nil, fmt.Errorf("%w: subscribe: resourceId and subscriberId are required", ErrInvalidRequest)
	}
	body := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		body[k] = v
	}
	body["subscriberId"] = subscriberID
	return c.jsonCall(ctx, "subscribe", http.MethodPost, "/subscriptions/"+url.PathEscape(resourceID)+"/subscribe", body)
}

// Unsubscribe makes DELETE {baseURL}/subscriptions/{resourceID}/unsubscribe
// with body {"subscriberId"}; it is a no-op for one not subscribed.
func (c *Client) Unsubscribe(ctx context.Context, resourceID, subscriberID string) (json.RawMessage, error) {
	if resourceID == "" || subscriberID == "" {
		return nil, fmt.Errorf("%w: unsubscribe: resourceId and subscriberId are required", ErrInvalidRequest)
	}
	body := struct {
		SubscriberID string `json:"subscriberId"`
	}{subscriberID}
	return c.jsonCall(ctx, "unsubscribe", http.MethodDelete, "/subscriptions/"+url.PathEscape(resourceID)+"/unsubscribe", body)
}

// SubscriptionEnteredEvent is the event NotifySubscribers tracks.
const SubscriptionEnteredEvent = "subscription-entered"

// NotifySubscribers notifies every subscriber of resourceID (SDK 2.x
// notifySubscribers): a TrackEvent of "subscription-entered" whose
// properties are props plus resourceId. It needs APIv2.
func (c *Client) NotifySubscribers(ctx context.Context, resourceID string, props map[string]any, idempotencyKey string) error {
	if resourceID == "" {
		return fmt.Errorf("%w: notify subscribers: resourceId is required", ErrInvalidRequest)
	}
	p := make(map[string]any, len(props)+1)
	for k, v := range props {
		p[k] = v
	}
	p["resourceId"] = resourceID
	return c.TrackEvent(ctx, TrackRequest{EventName: SubscriptionEnteredEvent, Properties: p, IdempotencyKey: idempotencyKey})
}

// PingTimeout bounds Ping, which is best-effort.
const PingTimeout = 2 * time.Second

// Ping makes the SDKs 2.x boot ping, POST {baseURL}/sdk/ping with body
// {"sdkSecretKey"}: one attempt, at most PingTimeout, never retried. Callers
// ignore its error but may log it.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	body := struct {
		SDKSecretKey string `json:"sdkSecretKey"`
	}{c.sdkSecretKey}
	e := getEncodeState()
	if err := e.value(body); err != nil {
		putEncodeState(e)
		return fmt.Errorf("%w: ping: encode body: %w", ErrInvalidRequest, err)
	}
	p := newPayload(e)
	defer p.release()
	o := c.settings()
	_, err := c.do(ctx, &o, &call{endpoint: "ping", url: o.baseURL + "/sdk/ping", body: p})
	return err
}

// jsonCall encodes body and makes one logical request of the v2 surface,
// retried on transient failures, returning the response body.
func (c *Client) jsonCall(ctx context.Context, endpoint, method, path string, body any) (json.RawMessage, error) {
	e := getEncodeState()
	if err := e.value(body); err != nil {
		putEncodeState(e)
		return nil, fmt.Errorf("%w: %s: encode body: %w", ErrInvalidRequest, endpoint, err)
	}
	p := newPayload(e)
	defer p.release()
	o := c.settings()
	return c.do(ctx, &o, &call{
		endpoint: endpoint,
		method:   method,
		url:      o.baseURL + path,
		body:     p,
		retry:    true,
		wantBody: true,
	})
}

// isoTime formats t the way JavaScript's Date.toISOString does, which is
// what the SDKs send: UTC, milliseconds, Z.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
