package notifizz

import (
	"context"
	"fmt"
	"net/url"
	"reflect"

	"github.com/goccy/go-json"
)

// CallOption changes one Send call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
}

// WithIdempotencyKey sends key in the X-Idempotency-Key header (the body is
// unchanged), so that the API delivers the notification at most once per
// key. It also lets Send retry transient failures, which it otherwise
// does not do.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// Send delivers a notification straight to the Notification Center, like the
// Node SDK's send(): POST {baseURL}/notification/channel/notificationcenter/config/{notifID}/track
// with body {"properties": <properties without "recipients">, "recipients":
// <properties["recipients"]>}. properties must hold a non-empty recipients
// array ([]Recipient, []map[string]any, []any or a json.RawMessage array);
// the caller's map is not modified.
//
// Send returns the response body (nil for an empty one). Without
// WithIdempotencyKey it makes a single attempt, because a retry of a request
// that did reach the API would notify the recipients twice. Errors are as for
// TrackEvent, plus an *InvalidResponseError (ErrInvalidResponse) for a 2xx
// whose body is not JSON, is larger than 1 MiB or broke off: the API accepted
// the request, and the error holds what came back, cut at 1 MiB. Under APIv2,
// which has no such route, it refuses with ErrInvalidRequest.
func (c *Client) Send(ctx context.Context, notifID string, properties map[string]any, opts ...CallOption) (json.RawMessage, error) {
	var co callOptions
	for _, opt := range opts {
		opt(&co)
	}
	o := c.settings()
	if o.api == APIv2 {
		return nil, fmt.Errorf("%w: send: the v2 API has no Notification Center route (the SDKs 2.x removed send)", ErrInvalidRequest)
	}
	if notifID == "" {
		return nil, fmt.Errorf("%w: send: notification id is empty", ErrInvalidRequest)
	}
	recipients := properties["recipients"]
	if err := checkRecipients(recipients); err != nil {
		return nil, err
	}
	// A copy without recipients, since the caller's map is not ours to change.
	rest := make(map[string]any, max(len(properties)-1, 0))
	for k, v := range properties {
		if k != "recipients" {
			rest[k] = v
		}
	}

	e := getEncodeState()
	if err := e.sendBody(rest, recipients); err != nil {
		putEncodeState(e)
		return nil, fmt.Errorf("%w: send: encode body: %w", ErrInvalidRequest, err)
	}
	body := newPayload(e)
	defer body.release()

	return c.do(ctx, &o, &call{
		endpoint:       "send",
		url:            o.baseURL + "/notification/channel/notificationcenter/config/" + url.PathEscape(notifID) + "/track",
		body:           body,
		idempotencyKey: co.idempotencyKey,
		retry:          co.idempotencyKey != "",
		wantBody:       true,
	})
}

func (e *encodeState) sendBody(properties map[string]any, recipients any) error {
	e.raw(`{"properties":`)
	if err := e.object(properties); err != nil {
		return err
	}
	e.raw(`,"recipients":`)
	if err := e.value(recipients); err != nil {
		return err
	}
	e.raw("}")
	return nil
}

// checkRecipients requires a non-empty array, as the API does, so that a
// request bound to fail is never made.
func checkRecipients(v any) error {
	const field = "properties.recipients"
	switch r := v.(type) {
	case nil:
		return fmt.Errorf("%w: send: %s is missing", ErrInvalidRequest, field)
	case json.RawMessage:
		var items []json.RawMessage
		if err := json.Unmarshal(r, &items); err != nil || items == nil {
			return fmt.Errorf("%w: send: %s must be a JSON array", ErrInvalidRequest, field)
		}
		if len(items) == 0 {
			return fmt.Errorf("%w: send: %s is empty", ErrInvalidRequest, field)
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); (k != reflect.Slice && k != reflect.Array) || rv.Type().Elem().Kind() == reflect.Uint8 {
		return fmt.Errorf("%w: send: %s must be an array, not %T", ErrInvalidRequest, field, v)
	}
	if rv.Len() == 0 {
		return fmt.Errorf("%w: send: %s is empty", ErrInvalidRequest, field)
	}
	return nil
}
