package notifizz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// TrackRequest is one whole event, for callers that hold it all at once (the
// bridge). TrackProps and TrackContext build the same thing step by step.
type TrackRequest struct {
	// EventName is the event slug; it must match a workflow in the dashboard.
	EventName string
	// Properties is arbitrary event data; nil or empty is sent as {}.
	Properties map[string]any
	// Workflows lists the campaigns to run; nil is sent as [].
	Workflows []Workflow
	// IdempotencyKey makes the event safe to retry: the API runs one key at
	// most once. Empty means a random 32-hex-character key, as the official
	// SDK does; callers that may resend the same event later (the bridge,
	// after a redelivery) should pass a stable key instead.
	IdempotencyKey string
	// OccurredAt is when the business event happened (APIv2 only; zero:
	// not sent). The API refuses a date in the future beyond a small skew.
	OccurredAt time.Time
}

// TrackEvent sends req in one logical POST {baseURL}/events/track, retried on
// transient failures per the client's RetryPolicy with the same idempotency
// key every time. It returns nil on success, an *APIError for a non-2xx
// response, an error wrapping ErrInvalidRequest for a request that was never
// sent, or the caller's ctx error if ctx ended the call.
//
// Under APIv1 the body is {"eventName", "properties", "workflows",
// "sdkSecretKey", "idempotencyKey"}, and OccurredAt must be zero. Under APIv2
// it is {"eventName", "properties", "sdkSecretKey", "idempotencyKey",
// "occurredAt"?}: the event name is trimmed and checked as the API checks it
// (CheckEventName), and Workflows must be empty.
func (c *Client) TrackEvent(ctx context.Context, req TrackRequest) error {
	o := c.settings()
	if o.api == APIv2 {
		name, problem := CheckEventName(req.EventName)
		if problem != "" {
			return fmt.Errorf("%w: track: event name is invalid (%s)", ErrInvalidRequest, problem)
		}
		if len(req.Workflows) > 0 {
			return fmt.Errorf("%w: track: the v2 API has no workflows (campaigns choose recipients server-side)", ErrInvalidRequest)
		}
		req.EventName = name
	} else {
		if req.EventName == "" {
			return fmt.Errorf("%w: track: event name is empty", ErrInvalidRequest)
		}
		if !req.OccurredAt.IsZero() {
			return fmt.Errorf("%w: track: occurredAt needs the v2 API (WithAPI(APIv2))", ErrInvalidRequest)
		}
	}
	key := req.IdempotencyKey
	if key == "" {
		key = newIdempotencyKey()
	}
	e := getEncodeState()
	encode := e.trackBody
	if o.api == APIv2 {
		encode = e.trackBodyV2
	}
	if err := encode(&req, c.sdkSecretKey, key); err != nil {
		putEncodeState(e)
		return fmt.Errorf("%w: track: encode body: %w", ErrInvalidRequest, err)
	}
	body := newPayload(e)
	defer body.release()

	_, err := c.do(ctx, &o, &call{
		endpoint:       "track",
		url:            o.baseURL + "/events/track",
		body:           body,
		idempotencyKey: key,
		retry:          true,
	})
	return err
}

// newIdempotencyKey returns 16 random bytes in hex, the shape of the keys the
// official SDK generates.
func newIdempotencyKey() string {
	var b [16]byte
	// crypto/rand.Read never fails; it crashes the program rather than
	// return predictable bytes.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TrackProps starts an event, like the object the Node SDK's track() takes.
// The SDK secret key comes from the Client rather than from every call.
type TrackProps struct {
	EventName  string
	Properties map[string]any
}

// TrackContext is an event being built, the Go form of the Node SDK's
// promise-like TrackContext: chain Workflow calls onto it, and it sends
// itself once the client's auto-send delay has passed, or at once when Send
// is called. It is sent exactly once however it is triggered, and is safe
// for concurrent use.
type TrackContext struct {
	c   *Client
	req TrackRequest

	mu      sync.Mutex
	state   trackState
	timer   *time.Timer
	misuse  error // the first workflow attached too late
	sendErr error
	done    chan struct{}
}

type trackState int

const (
	trackOpen    trackState = iota // accepting workflows, timer running
	trackSending                   // the one send is in flight
	trackDone                      // sent; sendErr holds the result
)

// Track starts an event and its auto-send timer (the client's auto-send
// delay, read now). The properties map is copied, so the caller may reuse it;
// its values are not, so they must not change until the event is sent.
func (c *Client) Track(props TrackProps) *TrackContext {
	t := &TrackContext{
		c: c,
		req: TrackRequest{
			EventName:      props.EventName,
			Properties:     maps.Clone(props.Properties),
			IdempotencyKey: newIdempotencyKey(),
		},
		done: make(chan struct{}),
	}
	// The lock keeps a zero delay from firing before t.timer is assigned.
	t.mu.Lock()
	t.timer = time.AfterFunc(c.settings().autoSendDelay, t.autoSend)
	t.mu.Unlock()
	return t
}

// Workflow attaches a campaign and its recipients and returns t, for
// chaining. Once the event has been sent (or is being sent) the workflow is
// not attached and ErrAlreadySent is recorded, to be returned by Err and
// Send; use AddWorkflow to get the error at once. The recipients slice is
// copied; the recipients' Extra maps are not.
func (t *TrackContext) Workflow(campaignID string, recipients []Recipient) *TrackContext {
	_ = t.AddWorkflow(campaignID, recipients)
	return t
}

// AddWorkflow is Workflow returning ErrAlreadySent (wrapped, for errors.Is)
// when the event has already been sent.
func (t *TrackContext) AddWorkflow(campaignID string, recipients []Recipient) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != trackOpen {
		err := fmt.Errorf("%w: workflow %q not attached", ErrAlreadySent, campaignID)
		if t.misuse == nil {
			t.misuse = err
		}
		return err
	}
	t.req.Workflows = append(t.req.Workflows, Workflow{CampaignID: campaignID, Recipients: slices.Clone(recipients)})
	return nil
}

// Send sends the event now, stopping the auto-send timer, and returns the
// result, like awaiting the Node TrackContext. If the event is already being
// sent or was sent, Send waits for that one result instead: the event never
// goes out twice. If ctx ends first, Send returns ctx's error; a send that
// this call started is then abandoned with it, while one started elsewhere
// carries on.
func (t *TrackContext) Send(ctx context.Context) error {
	t.mu.Lock()
	start := t.state == trackOpen
	if start {
		t.state = trackSending
		t.timer.Stop()
	}
	t.mu.Unlock()
	if start {
		t.finish(t.c.TrackEvent(ctx, t.snapshot()))
	}
	select {
	case <-t.done:
		return t.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done returns a channel that is closed once the send, automatic or
// explicit, has finished.
func (t *TrackContext) Done() <-chan struct{} { return t.done }

// Err returns the result of the send once Done is closed, joined with
// ErrAlreadySent if a workflow was attached too late; before that, it returns
// only such an ErrAlreadySent, or nil.
func (t *TrackContext) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == trackDone {
		return joinErrs(t.sendErr, t.misuse)
	}
	return t.misuse
}

// IdempotencyKey returns the key the event is sent with, for logs and for
// matching the request on the Notifizz side.
func (t *TrackContext) IdempotencyKey() string { return t.req.IdempotencyKey }

// autoSend runs on the timer's goroutine. It has no caller context, so it is
// bounded by the retry budget instead: every attempt's timeout plus every
// backoff, so that a stuck send cannot keep its goroutine forever.
func (t *TrackContext) autoSend() {
	t.mu.Lock()
	if t.state != trackOpen {
		t.mu.Unlock()
		return
	}
	t.state = trackSending
	t.mu.Unlock()

	ctx := context.Background()
	// The bound follows the settings the send itself will use, which a
	// Config since Track may have changed.
	if budget := retryBudget(t.c.settings()); budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	t.finish(t.c.TrackEvent(ctx, t.snapshot()))
}

// snapshot returns the request as it stands. Once the state has left
// trackOpen no workflow can be added, so it does not change any more.
func (t *TrackContext) snapshot() TrackRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.req
}

func (t *TrackContext) finish(err error) {
	t.mu.Lock()
	t.sendErr = err
	t.state = trackDone
	t.mu.Unlock()
	close(t.done)
}

// retryBudget is the longest a call may take under o without a Retry-After
// beyond the backoff: every attempt's timeout plus every wait. Zero means
// unbounded (no per-attempt timeout).
func retryBudget(o options) time.Duration {
	if o.timeout <= 0 {
		return 0
	}
	attempts := max(o.retry.Attempts, 1)
	budget := time.Duration(attempts) * o.timeout
	for n := 1; n < attempts; n++ {
		budget += o.retry.backoff(n)
	}
	return budget
}

// joinErrs wraps both errors, or returns the non-nil one. Unlike errors.Join
// it keeps the text on one line, for logs.
func joinErrs(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}
