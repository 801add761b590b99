package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

func TestDecide(t *testing.T) {
	b := backoff{initial: time.Second, max: 30 * time.Second, maxDeliver: 5}
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	movedErr := &notifizz.APIError{Endpoint: "track", StatusCode: 301, Location: "https://moved.example/v2/events/track"}
	junk := &notifizz.InvalidResponseError{Endpoint: "send", StatusCode: 200}
	tests := []struct {
		name      string
		err       error
		aborted   bool
		delivered uint64
		want      decision
	}{
		{"success acks", nil, false, 1, decision{action: actAck}},
		{"success acks even on the last delivery", nil, false, 5, decision{action: actAck}},
		{"shutdown naks at once", context.Canceled, true, 1, decision{action: actNak}},
		{"400 dead-letters", &notifizz.APIError{StatusCode: 400}, false, 1, decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: 400}},
		{"401 pauses", &notifizz.APIError{StatusCode: 401}, false, 1, decision{action: actPause, status: 401}},
		{"403 wrapped pauses", fmt.Errorf("call: %w", &notifizz.APIError{StatusCode: 403}), false, 2, decision{action: actPause, status: 403}},
		{"401 pauses on the last delivery too", &notifizz.APIError{StatusCode: 401}, false, 5, decision{action: actPause, status: 401}},
		{"403 pauses beyond the last delivery", &notifizz.APIError{StatusCode: 403, RetryAfter: time.Second}, false, 9, decision{action: actPause, status: 403}},
		{"402 dead-letters", &notifizz.APIError{StatusCode: 402}, false, 1, decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: 402}},
		{"shutdown during a 401 naks at once", &notifizz.APIError{StatusCode: 401}, true, 1, decision{action: actNak}},
		{"404 wrapped dead-letters", fmt.Errorf("call: %w", &notifizz.APIError{StatusCode: 404}), false, 2, decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: 404}},
		{"503 naks with backoff", &notifizz.APIError{StatusCode: 503}, false, 1, decision{action: actNak, status: 503, delay: time.Second}},
		{"503 third delivery naks 4s", &notifizz.APIError{StatusCode: 503}, false, 3, decision{action: actNak, status: 503, delay: 4 * time.Second}},
		{"backoff is capped", &notifizz.APIError{StatusCode: 500}, false, 4, decision{action: actNak, status: 500, delay: 8 * time.Second}},
		{"429 honours a longer Retry-After", &notifizz.APIError{StatusCode: 429, RetryAfter: 20 * time.Second}, false, 1, decision{action: actNak, status: 429, delay: 20 * time.Second}},
		{"408 is transient", &notifizz.APIError{StatusCode: 408}, false, 1, decision{action: actNak, status: 408, delay: time.Second}},
		{"425 is transient", &notifizz.APIError{StatusCode: 425}, false, 1, decision{action: actNak, status: 425, delay: time.Second}},
		{"network error naks", netErr, false, 1, decision{action: actNak, delay: time.Second}},
		{"a request the client refuses dead-letters", fmt.Errorf("%w: send: header X-Idempotency-Key holds a control character", notifizz.ErrInvalidRequest), false, 1,
			decision{action: actDeadLetter, reason: "invalid_message"}},
		{"last delivery dead-letters", &notifizz.APIError{StatusCode: 503}, false, 5, decision{action: actDeadLetter, reason: deadletter.ReasonMaxDeliveries, status: 503}},
		{"last delivery of a network error dead-letters", netErr, false, 6, decision{action: actDeadLetter, reason: deadletter.ReasonMaxDeliveries}},
		{"301 dead-letters", movedErr, false, 1, decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: 301}},
		{"307 dead-letters", &notifizz.APIError{StatusCode: 307}, false, 1, decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: 307}},
		{"2xx with junk acks", junk, false, 1, decision{action: actAck, status: 200}},
		{"2xx with junk acks on the last delivery", junk, false, 5, decision{action: actAck, status: 200}},
		{"2xx with junk acks even when shutdown cut it short", fmt.Errorf("send: %w", junk), true, 1, decision{action: actAck, status: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// jitter 0.5 is the middle of the ±20 % band: the delay is the schedule's own.
			got := decide(tt.err, tt.aborted, tt.delivered, b, 0.5)
			assert.Equal(t, tt.want.action, got.action, "action")
			assert.Equal(t, tt.want.reason, got.reason, "reason")
			assert.Equal(t, tt.want.status, got.status, "status")
			assert.Equal(t, tt.want.delay, got.delay, "delay")
			if tt.err != nil && !tt.aborted {
				assert.NotEmpty(t, got.detail, "a failure carries human text")
			}
			if tt.want.status >= 300 && tt.want.status <= 399 {
				assert.Contains(t, got.detail, "notifizz.baseUrl", "a redirect says which setting to change")
			}
		})
	}
}

func TestBackoffSchedule(t *testing.T) {
	b := backoff{initial: time.Second, max: 10 * time.Second}
	tests := []struct {
		n      uint64
		jitter float64
		retry  time.Duration
		want   time.Duration
	}{
		{1, 0.5, 0, time.Second},
		{2, 0.5, 0, 2 * time.Second},
		{4, 0.5, 0, 8 * time.Second},
		{5, 0.5, 0, 10 * time.Second},
		{60, 0.5, 0, 10 * time.Second}, // no overflow on a large count
		{1, 0, 0, 800 * time.Millisecond},
		{1, 0.999999, 0, 1199999 * time.Microsecond},
		{1, 0.5, 3 * time.Second, 3 * time.Second},
		{5, 0.5, 3 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d jitter=%v retry=%v", tt.n, tt.jitter, tt.retry), func(t *testing.T) {
			assert.InDelta(t, float64(tt.want), float64(b.delay(tt.n, tt.retry, tt.jitter)), float64(time.Microsecond))
		})
	}
}

func TestAPIWorkflow(t *testing.T) {
	w := &schema.Workflow{CampaignID: "c1", Recipients: []schema.Recipient{
		{ID: "u1", Email: "a@example.com", Extra: map[string]any{"locale": "fr"}},
		{ID: "u2", Email: "b@example.com"},
	}}
	assert.Equal(t, notifizz.Workflow{CampaignID: "c1", Recipients: []notifizz.Recipient{
		{ID: "u1", Email: "a@example.com", Extra: map[string]any{"locale": "fr"}},
		{ID: "u2", Email: "b@example.com"},
	}}, APIWorkflow(w))
}

// TestStatusAttr: a log line names the API status only when an API answered; a dead letter
// refused before any call has none, rather than status=0.
func TestStatusAttr(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	log.Info("a", "kind", "track", statusAttr(0), "reason", "invalid_message")
	log.Info("b", statusAttr(400))
	assert.Contains(t, out.String(), "msg=a kind=track reason=invalid_message\n")
	assert.Contains(t, out.String(), "msg=b status=400\n")
}
