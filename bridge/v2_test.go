package bridge

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
)

// The v2 profile (notifizz.api: v2): each message is one call, made at once, exactly as the
// SDKs 2.x make it.

func TestV2CallsExactOnTheWire(t *testing.T) {
	e := newEnv(t)
	e.cfg.API = APIv2
	r := e.start(nil)

	timed := e.publishRaw("notifizz.track.ord-1", []byte(`{"eventName":"  order_shipped ","properties":{"orderId":"ORD-1","n":42},`+
		`"occurredAt":"2026-11-30T09:15:00.123+01:00"}`), nil)
	untimed := e.publishRaw("notifizz.track.ord-2", []byte(`{"eventName":"order_paid","properties":{"orderId":"ORD-2"},"idempotencyKey":"paid-ORD-2"}`), nil)
	e.publishRaw("notifizz.identify.link-1", []byte(`{"environmentId":"env_1","subjectA":{"type":"email","identifier":"alice@example.com"},`+
		`"subjectB":{"type":"user","identifier":"u_42"},"consentBasis":"contract","expiresAt":"2027-01-01T00:00:00+02:00"}`), nil)
	e.publishRaw("notifizz.detach.unlink-1", []byte(`{"environmentId":"env_1","subject":{"type":"email","identifier":"alice@example.com"}}`), nil)
	e.publishRaw("notifizz.subscribe.sub-1", []byte(`{"resourceId":"doc 7/a","subscriberId":"u_42","role":"watcher","level":2}`), nil)
	e.publishRaw("notifizz.unsubscribe.unsub-1", []byte(`{"resourceId":"doc 7/a","subscriberId":"u_43"}`), nil)

	calls := e.api.waitCalls(t, 6)
	e.settled(e.cfg)
	require.Len(t, e.api.snapshot(), 6, "one call per message")
	byPath := map[string][]apiCall{}
	for _, c := range calls {
		byPath[c.Method+" "+c.Path] = append(byPath[c.Method+" "+c.Path], c)
	}
	tracks := byPath["POST /events/track"]
	require.Len(t, tracks, 2)
	if tracks[0].Body["eventName"] != "order_shipped" {
		tracks[0], tracks[1] = tracks[1], tracks[0]
	}
	timedKey := deriveKey("track", e.cfg.Stream.Name, "ord-1", timed)
	assert.Equal(t, map[string]any{
		"eventName": "order_shipped", "properties": map[string]any{"orderId": "ORD-1", "n": 42.0},
		"sdkSecretKey": testSDKKey, "idempotencyKey": timedKey, "occurredAt": "2026-11-30T08:15:00.123Z",
	}, tracks[0].Body, "the name trimmed, the producer's occurredAt in UTC, no workflows")
	assert.Equal(t, timedKey, tracks[0].idempotencyKey())
	published := e.storedAt(untimed)[0]
	assert.Equal(t, map[string]any{
		"eventName": "order_paid", "properties": map[string]any{"orderId": "ORD-2"},
		"sdkSecretKey": testSDKKey, "idempotencyKey": "paid-ORD-2",
		"occurredAt": published.UTC().Format("2006-01-02T15:04:05.000Z"),
	}, tracks[1].Body, "without one, occurredAt is the time the stream stored the message")
	assert.Equal(t, "paid-ORD-2", tracks[1].idempotencyKey())

	require.Len(t, byPath["POST /identity/identify"], 1)
	assert.Equal(t, map[string]any{
		"environmentId": "env_1",
		"subjectA":      map[string]any{"type": "email", "identifier": "alice@example.com"},
		"subjectB":      map[string]any{"type": "user", "identifier": "u_42"},
		"consentBasis":  "contract", "expiresAt": "2026-12-31T22:00:00.000Z",
	}, byPath["POST /identity/identify"][0].Body)
	require.Len(t, byPath["POST /identity/detach"], 1)
	assert.Equal(t, map[string]any{"environmentId": "env_1", "subject": map[string]any{"type": "email", "identifier": "alice@example.com"}},
		byPath["POST /identity/detach"][0].Body)
	require.Len(t, byPath["POST /subscriptions/doc%207%2Fa/subscribe"], 1, "the resource id is one path segment: %v", byPath)
	assert.Equal(t, map[string]any{"subscriberId": "u_42", "role": "watcher", "level": 2.0},
		byPath["POST /subscriptions/doc%207%2Fa/subscribe"][0].Body)
	require.Len(t, byPath["DELETE /subscriptions/doc%207%2Fa/unsubscribe"], 1)
	assert.Equal(t, map[string]any{"subscriberId": "u_43"}, byPath["DELETE /subscriptions/doc%207%2Fa/unsubscribe"][0].Body)
	for _, c := range calls {
		if c.Path != "/events/track" {
			assert.Empty(t, c.Header.Get("X-Idempotency-Key"), "%s carries no idempotency key", c.Path)
		}
	}
	for _, kind := range []string{"track", "identify", "detach", "subscribe", "unsubscribe"} {
		want := 1.0
		if kind == "track" {
			want = 2
		}
		assert.Equal(t, want, r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": kind, "outcome": "acked"}), kind)
	}
}

func TestV2OccurredAtNone(t *testing.T) {
	e := newEnv(t)
	e.cfg.API = APIv2
	e.cfg.OccurredAt = OccurredAtNone
	e.start(nil)
	e.publishRaw("notifizz.track.ord-3", []byte(`{"eventName":"order_paid","properties":{}}`), nil)
	calls := e.api.waitCalls(t, 1)
	assert.NotContains(t, calls[0].Body, "occurredAt")
	assert.NotContains(t, calls[0].Body, "workflows")
}

func TestV2DeadLettersWhatItCannotExpress(t *testing.T) {
	e := newEnv(t)
	e.cfg.API = APIv2
	r := e.start(nil)
	future := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	cases := []struct {
		subject, body string
		reason        deadletter.Reason
		errHas        string
	}{
		{"notifizz.workflow.k1", `{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com"}]}`, deadletter.ReasonUnsupported, "notifizz.api: v2"},
		{"notifizz.send.k2", `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"u@example.com"}]}}`, deadletter.ReasonUnsupported, "removed send"},
		{"notifizz.track.k3", `{"eventName":"e","properties":{},"workflows":[{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com"}]}]}`,
			deadletter.ReasonUnsupported, "workflows: workflows cannot be expressed"},
		{"notifizz.track.k4", `{"eventName":"caf` + "\u00e9" + `","properties":{},"workflows":[{"campaignId":"c"}]}`,
			deadletter.ReasonInvalidMessage, "eventName: must be printable ASCII"},
		{"notifizz.track.k5", `{"eventName":"   ","properties":{}}`, deadletter.ReasonInvalidMessage, "eventName: must not be empty"},
		{"notifizz.track.k6", `{"eventName":"` + strings.Repeat("e", 121) + `","properties":{}}`, deadletter.ReasonInvalidMessage, "at most 120 bytes"},
		{"notifizz.track.k7", `{"eventName":"e","properties":{},"occurredAt":"` + future + `"}`, deadletter.ReasonInvalidMessage, "occurredAt: must not be more than 5 minutes in the future"},
	}
	seqs := map[string]uint64{}
	for _, c := range cases {
		seqs[c.subject] = e.publishRaw(c.subject, []byte(c.body), nil)
	}
	commit := e.publishRaw("notifizz.commit.k1", nil, nil)
	letters := e.deadLetters(len(cases))
	e.settled(e.cfg)
	bySubject := map[string]deadLetter{}
	for _, l := range letters {
		bySubject[l.Header.Get(deadletter.HeaderOriginalSubject)] = l
	}
	for _, c := range cases {
		l, ok := bySubject[c.subject]
		if !assert.True(t, ok, "no dead letter for %s", c.subject) {
			continue
		}
		assert.Equal(t, string(c.reason), l.Header.Get(deadletter.HeaderReason), c.subject)
		assert.Contains(t, l.Header.Get(deadletter.HeaderError), c.errHas, c.subject)
		assert.Equal(t, seqStr(seqs[c.subject]), l.Header.Get(deadletter.HeaderOriginalSequence), c.subject)
		assert.Equal(t, c.body, string(l.Data), c.subject)
		assert.Equal(t, "notifizz.dlq."+strings.TrimPrefix(c.subject, "notifizz."), l.Subject)
	}
	assert.Empty(t, e.api.snapshot(), "nothing reached the API")
	assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": "ignored"}),
		"a commit (stream sequence %d) is acked and ignored", commit)
	assert.Equal(t, 3.0, r.counter(t, "notifizz_bridge_dead_letters_total", map[string]string{"reason": "unsupported"}))
}

func TestV1DeadLettersTheV2Kinds(t *testing.T) {
	e := newEnv(t)
	e.start(nil)
	bodies := map[string]string{
		"notifizz.identify.a":    `{"environmentId":"env","subjectA":{"type":"t","identifier":"1"},"subjectB":{"type":"t","identifier":"2"},"consentBasis":"b"}`,
		"notifizz.detach.b":      `{"environmentId":"env","subject":{"type":"t","identifier":"1"}}`,
		"notifizz.subscribe.c":   `{"resourceId":"r","subscriberId":"s"}`,
		"notifizz.unsubscribe.d": `not even JSON`,
	}
	for subject, body := range bodies {
		e.publishRaw(subject, []byte(body), nil)
	}
	letters := e.deadLetters(len(bodies))
	e.settled(e.cfg)
	for _, l := range letters {
		subject := l.Header.Get(deadletter.HeaderOriginalSubject)
		assert.Equal(t, "unsupported", l.Header.Get(deadletter.HeaderReason), subject)
		assert.Contains(t, l.Header.Get(deadletter.HeaderError), "need notifizz.api: v2", subject)
	}
	assert.Empty(t, e.api.snapshot())
}

func TestV1SendGoneHintsAtV2(t *testing.T) {
	e := newEnv(t)
	e.api.setRespond(func(int, apiCall) (int, map[string]string, string) {
		return http.StatusNotFound, nil, `{"error":"Cannot POST"}`
	})
	e.start(nil)
	_, err := e.prod.Send(context.Background(), "req-1", "notif_1", map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "u@example.com"}}})
	require.NoError(t, err)
	l := e.deadLetters(1)[0]
	assert.Equal(t, "api_rejected", l.Header.Get(deadletter.HeaderReason))
	assert.Equal(t, "404", l.Header.Get(deadletter.HeaderAPIStatus))
	assert.Contains(t, l.Header.Get(deadletter.HeaderError), "set notifizz.api: v2")
}

// TestV2CallsOfOneKeyInStreamOrder publishes alternating subscribes and unsubscribes over 50
// keys, with 64 calls in flight, an API that answers at uneven speeds and fails some calls for
// long enough that they are naked and delivered again: for each key, the API must see its
// calls in stream order.
func TestV2CallsOfOneKeyInStreamOrder(t *testing.T) {
	const keys, perKey = 50, 20
	e := newEnv(t)
	e.cfg.API = APIv2
	e.cfg.MaxInFlight = 64
	e.cfg.Retry.NakInitial = 20 * time.Millisecond
	e.cfg.Retry.NakMax = 100 * time.Millisecond
	var mu sync.Mutex
	failed := map[string]int{} // attempts failed, by subscriber id
	e.api.setRespond(func(n int, c apiCall) (int, map[string]string, string) {
		if n%3 == 0 {
			time.Sleep(time.Duration(n%7) * time.Millisecond) // uneven answers
		}
		id, _ := c.Body["subscriberId"].(string)
		mu.Lock()
		defer mu.Unlock()
		// One call in 13 fails all the client's attempts (3) the first time it comes.
		if n%13 == 0 && failed[id] == 0 || failed[id] > 0 && failed[id] < 3 {
			failed[id]++
			return http.StatusServiceUnavailable, nil, `{}`
		}
		return http.StatusOK, nil, `{}`
	})
	r := e.start(nil)
	ctx := context.Background()
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("res-%02d", k)
			id := fmt.Sprintf("%s-%03d", key, i)
			var err error
			if i%2 == 0 {
				_, err = e.prod.Subscribe(ctx, key, key, id, nil)
			} else {
				_, err = e.prod.Unsubscribe(ctx, key, key, id)
			}
			require.NoError(t, err)
		}
	}
	e.settled(e.cfg)
	mu.Lock()
	nFailed := len(failed)
	mu.Unlock()
	require.Positive(t, nFailed, "some calls failed and were delivered again")
	assert.Positive(t, r.counter(t, "notifizz_bridge_naks_total", nil), "failed calls were naked")
	// The successful call of each message, per key in the order the API answered it. A
	// failed attempt is answered 503 and does not count; its retry must still come before the
	// next message of its key.
	seen := map[string][]string{}
	for _, c := range e.api.snapshot() {
		id := c.Body["subscriberId"].(string)
		key := strings.Split(strings.TrimPrefix(c.Path, "/subscriptions/"), "/")[0]
		seen[key] = append(seen[key], id)
	}
	for k := range keys {
		key := fmt.Sprintf("res-%02d", k)
		var want []string
		for i := range perKey {
			want = append(want, fmt.Sprintf("%s-%03d", key, i))
		}
		got := compactRetries(seen[key])
		assert.Equal(t, want, got, "calls of %s in stream order", key)
	}
}

// compactRetries drops the repeats of a call made again right after it failed.
func compactRetries(ids []string) []string {
	var out []string
	for _, id := range ids {
		if len(out) > 0 && out[len(out)-1] == id {
			continue
		}
		out = append(out, id)
	}
	return out
}

// TestV2KindsOnAStreamFromBefore: a stream created before the bridge knew the v2 kinds captures
// the four v1 kinds only; the bridge adds the v2 kinds' subjects at start.
func TestV2KindsOnAStreamFromBefore(t *testing.T) {
	e := newEnv(t)
	e.cfg.API = APIv2
	old := e.cfg.StreamLayout().Stream()
	old.Subjects = old.Subjects[:4]
	require.Equal(t, []string{"notifizz.track.*", "notifizz.workflow.*", "notifizz.commit.*", "notifizz.send.*"}, old.Subjects)
	_, err := e.js.CreateStream(context.Background(), old)
	require.NoError(t, err)
	e.start(nil)
	e.publishRaw("notifizz.detach.d-1", []byte(`{"environmentId":"env_1","subject":{"type":"email","identifier":"a@example.com"}}`), nil)
	calls := e.api.waitCalls(t, 1)
	assert.Equal(t, "/identity/detach", calls[0].Path)
}
