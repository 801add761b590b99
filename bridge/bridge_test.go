package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

var ctx = context.Background()

// workflowIDs lists the campaign ids of a track call's workflows, in order.
func workflowIDs(c apiCall) []string {
	var ids []string
	wfs, _ := c.Body["workflows"].([]any)
	for _, w := range wfs {
		ids = append(ids, w.(map[string]any)["campaignId"].(string))
	}
	return ids
}

func TestFanInOneCallExactBody(t *testing.T) {
	e := newEnv(t)
	r := e.start(nil)

	// Three services, three connections: the track and the workflows of one event.
	producers := make([]*schema.Producer, 3)
	for i := range producers {
		_, js := e.connect()
		producers[i] = schema.NewProducer(js)
	}
	trackAck, err := producers[0].Track(ctx, "order-4521-shipped", "order_shipped", map[string]any{"orderId": "ORD-4521", "carrier": "FedEx"})
	require.NoError(t, err)
	_, err = producers[1].Workflow(ctx, "order-4521-shipped", "shipping_notification", schema.Recipient{ID: "user_42", Email: "alice@example.com", Extra: map[string]any{"locale": "fr"}})
	require.NoError(t, err)
	_, err = producers[2].Workflow(ctx, "order-4521-shipped", "notify_team", recipients("team_1", "team_2")...)
	require.NoError(t, err)
	_, err = producers[1].Workflow(ctx, "order-4521-shipped", "audit", recipients("auditor")...)
	require.NoError(t, err)

	calls := e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	require.Len(t, e.api.snapshot(), 1, "one API call for the event")
	c := calls[0]
	assert.Equal(t, "/events/track", c.Path)
	wantKey := deriveKey("track", e.cfg.Stream.Name, "order-4521-shipped", trackAck.Sequence)
	assert.Equal(t, wantKey, c.idempotencyKey())
	assert.Equal(t, map[string]any{
		"eventName":  "order_shipped",
		"properties": map[string]any{"orderId": "ORD-4521", "carrier": "FedEx"},
		"workflows": []any{
			map[string]any{"campaignId": "shipping_notification", "recipients": []any{
				map[string]any{"id": "user_42", "email": "alice@example.com", "locale": "fr"}}},
			map[string]any{"campaignId": "notify_team", "recipients": []any{
				map[string]any{"id": "team_1", "email": "team_1@example.com"},
				map[string]any{"id": "team_2", "email": "team_2@example.com"}}},
			map[string]any{"campaignId": "audit", "recipients": []any{
				map[string]any{"id": "auditor", "email": "auditor@example.com"}}},
		},
		"sdkSecretKey":   testSDKKey,
		"idempotencyKey": wantKey,
	}, c.Body)
	assert.Equal(t, float64(4), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"outcome": "acked"}))
	assert.Equal(t, float64(1), r.counter(t, "notifizz_bridge_api_calls_total", map[string]string{"endpoint": "track", "code": "2xx", "outcome": "success", "dry_run": "false"}))
	assert.Equal(t, float64(0), r.counter(t, "notifizz_bridge_open_windows", nil))
	assert.Zero(t, e.dlqCount(), "no dead letters")
}

func TestCommitFlushesAtOnce(t *testing.T) {
	e := newEnv(t)
	e.start(func(c *Config) {
		c.Coalesce.Delay = time.Hour
		c.Coalesce.OrphanTimeout = 2 * time.Hour
	})
	_, err := e.prod.Track(ctx, "k1", "ev", map[string]any{"a": 1})
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 1) // well before the hour's delay
	assert.Equal(t, []string{"c1"}, workflowIDs(calls[0]))
	e.settled(e.cfg)
}

func TestDelayFlushesAfterDelay(t *testing.T) {
	e := newEnv(t)
	e.start(func(c *Config) { c.Coalesce.Delay = 300 * time.Millisecond })
	start := time.Now()
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 1)
	assert.GreaterOrEqual(t, calls[0].At.Sub(start), 300*time.Millisecond, "not before the delay")
	assert.Equal(t, map[string]any{}, calls[0].Body["properties"], "empty properties are {}")
	e.settled(e.cfg)
}

func TestSlidingModePushesCloseBack(t *testing.T) {
	e := newEnv(t)
	const delay = time.Second
	e.start(func(c *Config) {
		c.Coalesce.Mode = ModeSliding
		c.Coalesce.Delay = delay
		c.Coalesce.MaxDelay = 10 * time.Second
		c.Coalesce.OrphanTimeout = 20 * time.Second
	})
	// Workflows every quarter of the delay keep the window open well past one delay after its
	// first message. A run in which the publisher stalled for half a delay or more (a loaded
	// machine) proves nothing either way, since a gap of a delay closes the window by
	// contract: it is run again under a new key.
	for attempt := range 5 {
		key := fmt.Sprintf("k%d", attempt)
		ack, err := e.prod.Track(ctx, key, "ev-"+key, nil)
		require.NoError(t, err)
		seqs := []uint64{ack.Sequence}
		tick := time.NewTicker(delay / 4)
		for i := range 8 {
			<-tick.C
			ack, err := e.prod.Workflow(ctx, key, fmt.Sprintf("c%d", i), recipients("u")...)
			require.NoError(t, err)
			seqs = append(seqs, ack.Sequence)
		}
		tick.Stop()
		times := e.storedAt(seqs...)
		calls := e.api.waitCalls(t, attempt+1)
		if !steady(times, time.Time{}, delay/2) {
			t.Logf("attempt %d: the publisher stalled, trying again", attempt)
			continue
		}
		call := calls[len(calls)-1]
		require.Equal(t, "ev-"+key, call.Body["eventName"], "one call per attempt")
		first, last := times[0], times[len(times)-1]
		require.Greater(t, last.Sub(first), delay, "the messages spanned more than one delay")
		assert.Len(t, workflowIDs(call), 8, "the window stayed open while messages kept coming")
		assert.GreaterOrEqual(t, call.At.Sub(last), delay, "the close came a delay after the last message")
		e.settled(e.cfg)
		return
	}
	t.Fatal("the publisher stalled in every attempt")
}

func TestSlidingModeBoundedByMaxDelay(t *testing.T) {
	e := newEnv(t)
	const delay, maxDelay = 300 * time.Millisecond, 600 * time.Millisecond
	e.start(func(c *Config) {
		c.Coalesce.Mode = ModeSliding
		c.Coalesce.Delay = delay
		c.Coalesce.MaxDelay = maxDelay
		c.Coalesce.OrphanTimeout = 5 * time.Second
	})
	// Workflows keep coming every third of the delay until the call arrives, so that only
	// maxDelay can close the window; without it the loop would run into its deadline. A run in
	// which the publisher stalled for half a delay before the call (a loaded machine) may have
	// closed the window by delay instead, so it is run again under a new key.
	for attempt := range 5 {
		key := fmt.Sprintf("k%d", attempt)
		ack, err := e.prod.Track(ctx, key, "ev-"+key, nil)
		require.NoError(t, err)
		seqs := []uint64{ack.Sequence}
		tick := time.NewTicker(delay / 3)
		deadline := time.Now().Add(waitFor)
		for i := 0; len(e.api.snapshot()) <= attempt; i++ {
			require.True(t, time.Now().Before(deadline), "the window never closed while workflows kept coming")
			<-tick.C
			ack, err := e.prod.Workflow(ctx, key, fmt.Sprintf("c%d", i), recipients("u")...)
			require.NoError(t, err)
			seqs = append(seqs, ack.Sequence)
		}
		tick.Stop()
		call := e.api.snapshot()[attempt]
		require.Equal(t, "ev-"+key, call.Body["eventName"], "one call per attempt")
		times := e.storedAt(seqs...)
		if !steady(times, call.At, delay/2) {
			t.Logf("attempt %d: the publisher stalled, trying again", attempt)
			continue
		}
		assert.GreaterOrEqual(t, call.At.Sub(times[0]), maxDelay, "the window stayed open until maxDelay")
		return
	}
	t.Fatal("the publisher stalled in every attempt")
}

// steady reports whether no two consecutive times (those before until, when it is set) lie gap
// or more apart: a publisher that kept to its pace.
func steady(times []time.Time, until time.Time, gap time.Duration) bool {
	for i := 1; i < len(times) && (until.IsZero() || times[i].Before(until)); i++ {
		if times[i].Sub(times[i-1]) >= gap {
			return false
		}
	}
	return true
}

func TestWorkflowsBeforeTrackMakeOneCall(t *testing.T) {
	e := newEnv(t)
	e.start(func(c *Config) { c.Coalesce.Delay = time.Hour; c.Coalesce.OrphanTimeout = 2 * time.Hour })
	_, err := e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c2", recipients("u2")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	// The commit made the window due, but there is no track yet: nothing is sent until it comes.
	_, err = e.prod.TrackWith(ctx, "k1", schema.Track{EventName: "ev", Properties: map[string]any{},
		Workflows: []schema.Workflow{{CampaignID: "inline", Recipients: recipients("u0")}}})
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 1)
	assert.Equal(t, []string{"inline", "c1", "c2"}, workflowIDs(calls[0]), "inline first, then stream order")
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1)
}

func TestMaxWorkflowsOverflowDeadLetters(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.start(func(c *Config) { c.Coalesce.MaxWorkflows = 2 })
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	var seqs []uint64
	for i := range 3 {
		ack, err := e.prod.Workflow(ctx, "k1", fmt.Sprintf("c%d", i), recipients("u")...)
		require.NoError(t, err)
		seqs = append(seqs, ack.Sequence)
	}
	dl := e.deadLetters(1)
	assert.Equal(t, string(deadletter.ReasonTooManyWorkflows), dl[0].Header.Get(deadletter.HeaderReason))
	assert.Equal(t, seqStr(seqs[2]), dl[0].Header.Get(deadletter.HeaderOriginalSequence))
	e.waitTerminated(tr, seqs[2], string(deadletter.ReasonTooManyWorkflows))
	calls := e.api.waitCalls(t, 1)
	assert.Equal(t, []string{"c0", "c1"}, workflowIDs(calls[0]))
	e.settled(e.cfg)
}

// TestMaxBytesOverflowDeadLetters feeds windows more bytes than coalesce.maxBytes, with bodies
// that grow when the request escapes them (each '<' becomes \u003c): each event is sent once,
// its request within the bound, and the workflows that do not fit are dead-lettered too_large.
func TestMaxBytesOverflowDeadLetters(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.start(func(c *Config) { c.Coalesce.MaxBytes = MinWindowBytes })
	// 12,000 bytes as published, 18,000 once escaped in the request: three fit in 64 KiB with
	// the track, a fourth does not.
	pad := strings.Repeat("abcdefghi<", 1200)
	workflow := func(key, campaign string) uint64 {
		return e.publishRaw("notifizz.workflow."+key, []byte(`{"campaignId":"`+campaign+
			`","recipients":[{"id":"u","email":"u@example.com","note":"`+pad+`"}]}`), nil)
	}
	track := func(key, note string) uint64 {
		return e.publishRaw("notifizz.track."+key, []byte(`{"eventName":"`+key+`","properties":{"note":"`+note+`"}}`), nil)
	}
	commit := func(key string) {
		_, err := e.prod.Commit(ctx, key)
		require.NoError(t, err)
	}

	// Workflows after their track: those that do not fit are refused as they arrive.
	track("after", "")
	var overflow []uint64
	for i := range 6 {
		seq := workflow("after", fmt.Sprintf("c%d", i))
		if i >= 3 {
			overflow = append(overflow, seq)
		}
	}
	commit("after")
	// Workflows before a large track: the latest make way when the window closes.
	for i := range 3 {
		seq := workflow("before", fmt.Sprintf("c%d", i))
		if i == 2 {
			overflow = append(overflow, seq)
		}
	}
	track("before", strings.Repeat("x", 20_000))
	commit("before")
	// A track that alone makes a request beyond the bound.
	tooBig := track("alone", strings.Repeat("x", MinWindowBytes))
	// Ordinary traffic beside them.
	track("small", "")
	workflow("small", "s0")
	commit("small")

	for _, seq := range overflow {
		e.waitTerminated(tr, seq, string(schema.ReasonTooLarge))
	}
	e.waitTerminated(tr, tooBig, string(schema.ReasonTooLarge))
	e.settled(e.cfg)
	dls := e.deadLetters(len(overflow) + 1)
	assert.Len(t, dls, len(overflow)+1)
	for _, d := range dls {
		assert.Equal(t, string(schema.ReasonTooLarge), d.Header.Get(deadletter.HeaderReason), d.Header.Get(deadletter.HeaderOriginalSubject))
		assert.Contains(t, d.Header.Get(deadletter.HeaderError), "coalesce.maxBytes")
	}

	calls := map[string]apiCall{}
	for _, c := range e.api.snapshot() {
		name, _ := c.Body["eventName"].(string)
		assert.NotContains(t, calls, name, "one call per event")
		calls[name] = c
		assert.LessOrEqual(t, c.Size, MinWindowBytes, "request body of %s within coalesce.maxBytes", name)
	}
	assert.Len(t, calls, 3)
	assert.Equal(t, []string{"c0", "c1", "c2"}, workflowIDs(calls["after"]))
	assert.Equal(t, []string{"c0", "c1"}, workflowIDs(calls["before"]))
	assert.Equal(t, []string{"s0"}, workflowIDs(calls["small"]))
}

func TestInterleavedKeysStaySeparate(t *testing.T) {
	e := newEnv(t)
	e.start(nil)
	for i := range 3 {
		for _, k := range []string{"a", "b"} {
			_, err := e.prod.Workflow(ctx, k, fmt.Sprintf("%s%d", k, i), recipients("u")...)
			require.NoError(t, err)
		}
	}
	for _, k := range []string{"b", "a"} {
		_, err := e.prod.Track(ctx, k, "ev-"+k, nil)
		require.NoError(t, err)
	}
	calls := e.api.waitCalls(t, 2)
	e.settled(e.cfg)
	require.Len(t, e.api.snapshot(), 2)
	byEvent := map[string][]string{}
	for _, c := range calls {
		byEvent[c.Body["eventName"].(string)] = workflowIDs(c)
	}
	assert.Equal(t, map[string][]string{"ev-a": {"a0", "a1", "a2"}, "ev-b": {"b0", "b1", "b2"}}, byEvent)
}

func TestThousandKeysOneCallEach(t *testing.T) {
	e := newEnv(t)
	// Commits close the windows: a delay would split an event whose publisher stalled between
	// its pieces for longer than the delay, which a loaded machine does.
	e.start(func(c *Config) { c.Coalesce.Delay = time.Minute; c.Coalesce.OrphanTimeout = 2 * time.Minute })
	const keys = 1000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for p := range 4 { // four publishers, each a share of the keys
		_, js := e.connect()
		prod := schema.NewProducer(js)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := p; k < keys; k += 4 {
				key := fmt.Sprintf("key-%d", k)
				if _, err := prod.Track(ctx, key, "ev", map[string]any{"k": key}); err != nil {
					errs <- err
					return
				}
				if _, err := prod.Workflow(ctx, key, "c", recipients("u")...); err != nil {
					errs <- err
					return
				}
				if _, err := prod.Commit(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	e.api.waitCalls(t, keys)
	e.settled(e.cfg)
	calls := e.api.snapshot()
	assert.Len(t, calls, keys, "exactly one call per key")
	seen := map[string]int{}
	for _, c := range calls {
		seen[c.Body["properties"].(map[string]any)["k"].(string)]++
		assert.Len(t, workflowIDs(c), 1)
	}
	assert.Len(t, seen, keys)
}

func TestOrphanWorkflowDeadLettersMissingTrack(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.start(func(c *Config) {
		c.Coalesce.Delay = 300 * time.Millisecond
		c.Coalesce.OrphanTimeout = 500 * time.Millisecond
	})
	start := time.Now()
	ack, err := e.prod.Workflow(ctx, "lonely", "c1", recipients("u1")...)
	require.NoError(t, err)
	dl := e.deadLetters(1)
	assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "not before the orphan timeout")
	assert.Equal(t, string(deadletter.ReasonMissingTrack), dl[0].Header.Get(deadletter.HeaderReason))
	assert.Equal(t, "notifizz.dlq.workflow.lonely", dl[0].Subject)
	e.waitTerminated(tr, ack.Sequence, string(deadletter.ReasonMissingTrack))
	assert.Empty(t, e.api.snapshot())
	e.settled(e.cfg)
}

func TestDuplicateTrack(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	r := e.start(func(c *Config) { c.Coalesce.Delay = 500 * time.Millisecond })
	_, err := e.prod.Track(ctx, "k1", "ev", map[string]any{"v": 1})
	require.NoError(t, err)
	// The same track again under another message id (outside the duplicate window): one event.
	_, err = e.prod.Track(ctx, "k1", "ev", map[string]any{"v": 1}, schema.WithMsgID("again"))
	require.NoError(t, err)
	// A different track for the same open window: dead-lettered.
	ack, err := e.prod.Track(ctx, "k1", "ev", map[string]any{"v": 2})
	require.NoError(t, err)
	dl := e.deadLetters(1)
	assert.Equal(t, string(deadletter.ReasonDuplicateTrack), dl[0].Header.Get(deadletter.HeaderReason))
	e.waitTerminated(tr, ack.Sequence, string(deadletter.ReasonDuplicateTrack))
	calls := e.api.waitCalls(t, 1)
	assert.Equal(t, map[string]any{"v": float64(1)}, calls[0].Body["properties"])
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1)
	assert.Equal(t, float64(1), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "track", "outcome": "duplicate"}))
}

func TestCommitWithNothingOpenIsAcked(t *testing.T) {
	e := newEnv(t)
	r := e.start(nil)
	_, err := e.prod.Commit(ctx, "nothing-here")
	require.NoError(t, err)
	e.settled(e.cfg)
	// The counter moves after Ack returns, which can be after the server has the ack.
	assert.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "commit", "outcome": "ignored"}) == 1
	}, waitFor, pollEvery)
	assert.Empty(t, e.api.snapshot())
	assert.Zero(t, e.dlqCount())
}

func TestLateWorkflowAfterFlushBecomesOrphan(t *testing.T) {
	e := newEnv(t)
	e.start(func(c *Config) {
		c.Coalesce.Delay = 300 * time.Millisecond
		c.Coalesce.OrphanTimeout = 500 * time.Millisecond
	})
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	_, err = e.prod.Workflow(ctx, "k1", "late", recipients("u")...)
	require.NoError(t, err)
	dl := e.deadLetters(1)
	assert.Equal(t, string(deadletter.ReasonMissingTrack), dl[0].Header.Get(deadletter.HeaderReason))
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1, "the late workflow made no call")
}

func TestSendOneCallEach(t *testing.T) {
	e := newEnv(t)
	e.start(nil)
	ack, err := e.prod.Send(ctx, "report-7", "notif template/1", map[string]any{
		"recipients": []any{map[string]any{"id": "user_42", "email": "alice@example.com"}},
		"title":      "Your report is ready",
	})
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	c := calls[0]
	assert.Equal(t, "/notification/channel/notificationcenter/config/notif%20template%2F1/track", c.Path)
	assert.Equal(t, map[string]any{
		"properties": map[string]any{"title": "Your report is ready"},
		"recipients": []any{map[string]any{"id": "user_42", "email": "alice@example.com"}},
	}, c.Body)
	// The producer's Nats-Msg-Id is the idempotency key.
	msg, err := e.js.Stream(ctx, e.cfg.Stream.Name)
	require.NoError(t, err)
	raw, err := msg.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	assert.Equal(t, raw.Header.Get(nats.MsgIdHdr), c.idempotencyKey())
	assert.NotEmpty(t, c.idempotencyKey())
}

// TestSendWithInvalidMsgIDUsesDerivedKey sends messages whose Nats-Msg-Id cannot be an
// idempotency key (a control character, which net/http refuses in a header, and 9,000
// characters): each is sent once under the key derived from the stream, and acked.
func TestSendWithInvalidMsgIDUsesDerivedKey(t *testing.T) {
	e := newEnv(t)
	r := e.start(nil)
	body := []byte(`{"notifId":"n1","properties":{"recipients":[{"id":"u","email":"u@example.com"}]}}`)
	ids := map[string]string{
		"control": "order-\x01-1",
		"long":    strings.Repeat("k", 9000),
	}
	want := map[string]string{} // event key → derived idempotency key
	for key, id := range ids {
		seq := e.publishRaw("notifizz.send."+key, body, nats.Header{nats.MsgIdHdr: []string{id}})
		want[key] = deriveKey("send", e.cfg.Stream.Name, key, seq)
	}
	e.api.waitCalls(t, len(ids))
	e.settled(e.cfg)
	calls := e.api.snapshot()
	require.Len(t, calls, len(ids), "each send is made once")
	got := map[string]bool{}
	for _, c := range calls {
		got[c.idempotencyKey()] = true
	}
	for key, k := range want {
		assert.True(t, got[k], "send %s made under its derived key %s", key, k)
	}
	assert.Equal(t, float64(len(ids)), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "send", "outcome": outcomeAcked}))
	assert.Zero(t, e.dlqCount())
}

func TestDeadLetterReasonsAndHeaders(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.start(nil)
	big := make([]byte, schema.MaxBodySize+1)
	for i := range big {
		big[i] = ' '
	}
	big[0] = '{'
	big[len(big)-1] = '}'
	tests := []struct {
		name    string
		subject string
		body    string
		reason  string
		check   func(t *testing.T, d deadLetter)
	}{
		{"invalid json", "notifizz.track.k-json", `{"eventName":`, "invalid_json", nil},
		{"invalid message", "notifizz.workflow.k-msg", `{"campaignId":"c","recipients":[{"id":"u"}]}`, "invalid_message",
			func(t *testing.T, d deadLetter) {
				assert.Contains(t, d.Header.Get(deadletter.HeaderError), "recipients[0].email")
			}},
		{"secret in message", "notifizz.track.k-secret", `{"eventName":"e","properties":{},"sdkSecretKey":"leaked-value-123"}`, "secret_in_message",
			func(t *testing.T, d deadLetter) {
				assert.NotContains(t, string(d.Data), "leaked-value-123", "secret redacted in the copy")
				assert.Contains(t, string(d.Data), "eventName")
			}},
		{"too large", "notifizz.track.k-big", string(big), "too_large", nil},
		{"too large with a secret", "notifizz.track.k-big-secret", `{"sdkSecretKey":"leaked-value-456",` + string(big[1:]), "too_large",
			func(t *testing.T, d deadLetter) {
				assert.NotContains(t, string(d.Data), "leaked-value-456", "secret redacted in the copy")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.dlqCount()
			hdr := nats.Header{"X-Trace": []string{"trace-1"}}
			seq := e.publishRaw(tt.subject, []byte(tt.body), hdr)
			e.waitTerminated(tr, seq, tt.reason)
			dls := e.deadLetters(int(before) + 1)
			d := dls[before]
			kind, key := splitSubject(tt.subject)
			assert.Equal(t, "notifizz.dlq."+kind+"."+key, d.Subject)
			assert.Equal(t, tt.reason, d.Header.Get(deadletter.HeaderReason))
			assert.NotEmpty(t, d.Header.Get(deadletter.HeaderError))
			assert.Equal(t, tt.subject, d.Header.Get(deadletter.HeaderOriginalSubject))
			assert.Equal(t, seqStr(seq), d.Header.Get(deadletter.HeaderOriginalSequence))
			assert.Equal(t, "1", d.Header.Get(deadletter.HeaderDeliveries))
			assert.Empty(t, d.Header.Get(deadletter.HeaderAPIStatus))
			assert.Equal(t, "dlq-NOTIFIZZ-"+seqStr(seq), d.Header.Get(nats.MsgIdHdr))
			assert.Equal(t, "trace-1", d.Header.Get("X-Trace"), "original headers kept")
			if !strings.Contains(tt.body, "leaked-value") {
				assert.Equal(t, tt.body, string(d.Data), "body is the original bytes")
			}
			if tt.check != nil {
				tt.check(t, d)
			}
			// The bridge keeps working after each poison message.
			key2 := "after-" + key
			_, err := e.prod.Track(ctx, key2, "ev", nil)
			require.NoError(t, err)
			_, err = e.prod.Commit(ctx, key2)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				for _, c := range e.api.snapshot() {
					if c.Body["eventName"] == "ev" && c.At.After(time.Time{}) {
						return true
					}
				}
				return false
			}, waitFor, pollEvery)
		})
	}
	e.settled(e.cfg)
}

func splitSubject(s string) (string, string) {
	var parts []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	parts = append(parts, s[start:])
	return parts[1], parts[2]
}

func TestTransientThenSuccessSameKey(t *testing.T) {
	e := newEnv(t)
	e.api.setRespond(func(n int, _ apiCall) (int, map[string]string, string) {
		if n <= 2 {
			return 503, nil, `{"error":"unavailable"}`
		}
		return 200, nil, `{}`
	})
	e.start(nil)
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	e.api.waitCalls(t, 3)
	e.settled(e.cfg)
	calls := e.api.snapshot()
	require.Len(t, calls, 3)
	for _, c := range calls {
		assert.Equal(t, calls[0].idempotencyKey(), c.idempotencyKey(), "every attempt under one key")
	}
	assert.Zero(t, e.dlqCount())
}

func TestRetryAfterRespectedAcrossNaks(t *testing.T) {
	e := newEnv(t)
	e.api.setRespond(func(n int, _ apiCall) (int, map[string]string, string) {
		if n <= 3 { // the client's three attempts, then the bridge naks
			return 429, map[string]string{"Retry-After": "1"}, `{}`
		}
		return 200, nil, `{}`
	})
	e.start(func(c *Config) { c.Retry.NakInitial = 10 * time.Millisecond; c.Retry.NakMax = 20 * time.Millisecond })
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 4)
	assert.GreaterOrEqual(t, calls[3].At.Sub(calls[2].At), time.Second, "the nak waited for Retry-After")
	e.settled(e.cfg)
	assert.Equal(t, calls[0].idempotencyKey(), calls[3].idempotencyKey())
}

func TestPermanentRejectionDeadLettersAfterOneCall(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.api.setRespond(func(int, apiCall) (int, map[string]string, string) {
		return 400, nil, `{"error":"unknown campaign"}`
	})
	e.start(nil)
	tAck, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	wAck, err := e.prod.Workflow(ctx, "k1", "c1", recipients("u")...)
	require.NoError(t, err)
	cAck, err := e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	dls := e.deadLetters(3)
	for _, seq := range []uint64{tAck.Sequence, wAck.Sequence, cAck.Sequence} {
		e.waitTerminated(tr, seq, string(deadletter.ReasonAPIRejected))
	}
	for _, d := range dls {
		assert.Equal(t, string(deadletter.ReasonAPIRejected), d.Header.Get(deadletter.HeaderReason))
		assert.Equal(t, "400", d.Header.Get(deadletter.HeaderAPIStatus))
		assert.Contains(t, d.Header.Get(deadletter.HeaderError), "unknown campaign", "body excerpt")
		assert.NotContains(t, d.Header.Get(deadletter.HeaderError), testSDKKey)
	}
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 1, "a 4xx is never retried")
}

func TestNeverRecoveringAPINaksThenMaxDeliveries(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	e.api.setRespond(func(int, apiCall) (int, map[string]string, string) { return 500, nil, `{}` })
	r := e.start(func(c *Config) {
		c.Consumer.MaxDeliver = 3
		c.Retry.NakInitial = 100 * time.Millisecond
		c.Retry.NakMax = time.Second
	})
	ack, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	e.waitTerminated(tr, ack.Sequence, string(deadletter.ReasonMaxDeliveries))
	dls := e.deadLetters(1)
	var d deadLetter
	for _, x := range dls {
		if x.Header.Get(deadletter.HeaderOriginalSequence) == seqStr(ack.Sequence) {
			d = x
		}
	}
	assert.Equal(t, string(deadletter.ReasonMaxDeliveries), d.Header.Get(deadletter.HeaderReason))
	assert.Equal(t, "3", d.Header.Get(deadletter.HeaderDeliveries))
	assert.Equal(t, "500", d.Header.Get(deadletter.HeaderAPIStatus))
	calls := e.api.snapshot()
	assert.Len(t, calls, 9, "three deliveries of three attempts each")
	// The gaps between deliveries grow: the first nak waits ~100 ms, the second ~200 ms.
	gap1 := calls[3].At.Sub(calls[2].At)
	gap2 := calls[6].At.Sub(calls[5].At)
	assert.GreaterOrEqual(t, gap1, 80*time.Millisecond)
	assert.Greater(t, gap2, gap1)
	assert.Equal(t, float64(2), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "track", "outcome": "naked"}),
		"naked after the first and second deliveries, dead-lettered on the third")
}

func TestRedeliveryWhileHeldCountedOnce(t *testing.T) {
	e := newEnv(t)
	// With the InProgress sweep off and AckWait 1 s, the server redelivers the held messages
	// while their 2.5 s window is open: the copies must not count twice.
	r := e.start(func(c *Config) {
		c.Consumer.AckWait = time.Second
		c.Coalesce.Delay = 2500 * time.Millisecond
		c.Coalesce.OrphanTimeout = 5 * time.Second
	}, withoutKeepAlive)
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u")...)
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	assert.GreaterOrEqual(t, r.counter(t, "notifizz_bridge_redeliveries_total", map[string]string{"kind": "track"}), float64(1),
		"the server did redeliver the held track")
	assert.Len(t, e.api.snapshot(), 1, "one call")
	assert.Equal(t, []string{"c1"}, workflowIDs(calls[0]), "the workflow once, not once per delivery")
	assert.Equal(t, float64(1), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "workflow", "outcome": "acked"}))
}

func TestInProgressKeepsLongWindowAlive(t *testing.T) {
	e := newEnv(t)
	r := e.start(func(c *Config) {
		c.Consumer.AckWait = time.Second
		c.Coalesce.Delay = 3 * time.Second
		c.Coalesce.OrphanTimeout = 5 * time.Second
	})
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u")...)
	require.NoError(t, err)
	e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	assert.Zero(t, r.counter(t, "notifizz_bridge_redeliveries_total", nil), "held three AckWaits without a redelivery")
	assert.GreaterOrEqual(t, r.counter(t, "notifizz_bridge_in_progress_total", nil), float64(2))
	assert.Len(t, e.api.snapshot(), 1)
}

func TestRestartMidWindowDeliversOnce(t *testing.T) {
	e := newEnv(t)
	e.cfg.Stream.Storage = "file"
	// The first bridge's API call stalls; it is stopped with a short shutdown timeout, so its
	// messages are naked; the second bridge delivers the event under the same key.
	e.api.release = make(chan struct{})
	first := e.start(func(c *Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	e.api.waitCalls(t, 1)
	first.stop(t)
	e.api.mu.Lock()
	e.api.release = nil
	e.api.mu.Unlock()

	e.start(nil)
	calls := e.api.waitCalls(t, 2)
	e.settled(e.cfg)
	assert.Equal(t, calls[0].idempotencyKey(), calls[len(calls)-1].idempotencyKey(), "replayed under the same key")
	assert.Equal(t, []string{"c1"}, workflowIDs(calls[len(calls)-1]))
}

// TestShutdownHandsWindowsBack: at shutdown every open window is naked, with a track or not, so
// that the next bridge rebuilds it whole: the event whose commit is published after the restart
// is sent once, with the workflows of both sides of the restart.
func TestShutdownHandsWindowsBack(t *testing.T) {
	// Registered first, so it runs last: after the server, connections and API are closed.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	e := newEnv(t)
	long := func(c *Config) { c.Coalesce.Delay = time.Hour; c.Coalesce.OrphanTimeout = 2 * time.Hour }
	r := e.start(long)
	_, err := e.prod.Track(ctx, "with-track", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "with-track", "c1", recipients("u")...)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "orphan", "c2", recipients("u")...)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_held_messages", nil) == 3
	}, waitFor, pollEvery)
	r.stop(t)
	assert.Empty(t, e.api.snapshot(), "nothing sent early at shutdown")
	assert.Equal(t, float64(2), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "workflow", "outcome": "naked"}))
	assert.Equal(t, float64(1), r.counter(t, "notifizz_bridge_messages_total", map[string]string{"kind": "track", "outcome": "naked"}))
	cons, err := e.js.Consumer(ctx, e.cfg.Stream.Name, e.cfg.Consumer.Durable)
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, info.NumAckPending+int(info.NumPending), "every held message is left for the next bridge")

	// The next bridge: the rest of the event comes after the restart.
	e.start(long)
	_, err = e.prod.Workflow(ctx, "with-track", "c3", recipients("u")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "with-track")
	require.NoError(t, err)
	calls := e.api.waitCalls(t, 1)
	assert.Equal(t, []string{"c1", "c3"}, workflowIDs(calls[0]), "one call with the pieces of both sides of the restart")
}

func TestBindToOperatorManagedStreamsAndUnknownSubject(t *testing.T) {
	e := newEnv(t)
	tr := e.watchTerminations()
	// The operator manages a stream that captures more than the bridge understands, and the
	// consumer; the dead-letter stream does not exist yet.
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.Stream.Name, Subjects: []string{"notifizz.*.*"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	_, err = e.js.CreateConsumer(ctx, e.cfg.Stream.Name, jetstream.ConsumerConfig{
		Durable: e.cfg.Consumer.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second, MaxAckPending: 1000,
	})
	require.NoError(t, err)
	r := e.start(func(c *Config) { c.Stream.Create = false; c.Retry.NakInitial = 50 * time.Millisecond })

	seq := e.publishRaw("notifizz.bogus.k1", []byte(`{}`), nil)
	// Without its dead-letter stream the bridge naks: nothing is terminated without its copy.
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_messages_total", map[string]string{"outcome": "naked"}) >= 2
	}, waitFor, pollEvery)
	_, terminated := tr.reason(seq)
	assert.False(t, terminated)

	_, err = e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.DeadLetter.Stream, Subjects: []string{"notifizz.dlq.*.*"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	e.waitTerminated(tr, seq, string(schema.ReasonUnknownSubject))
	dl := e.deadLetters(1)
	assert.Equal(t, "notifizz.dlq.unknown."+seqStr(seq), dl[0].Subject)
	assert.Equal(t, string(schema.ReasonUnknownSubject), dl[0].Header.Get(deadletter.HeaderReason))
	assert.Equal(t, "notifizz.bogus.k1", dl[0].Header.Get(deadletter.HeaderOriginalSubject))

	// Valid traffic flows through the bound consumer.
	_, err = e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	e.api.waitCalls(t, 1)
	e.settled(e.cfg)
}

// TestOperatorStreamMissingSubjectsWarns: an operator-managed stream that does not capture the
// subjects of kinds the profile sends is named at start, with those subjects; kinds the profile
// refuses or ignores are not.
func TestOperatorStreamMissingSubjectsWarns(t *testing.T) {
	tests := []struct {
		name     string
		api      APIProfile
		subjects []string
		missing  string // "" for no warning
	}{
		{"v1 stream, v2 profile", APIv2, []string{"notifizz.track.*", "notifizz.workflow.*", "notifizz.commit.*", "notifizz.send.*"},
			"notifizz.identify.* notifizz.detach.* notifizz.subscribe.* notifizz.unsubscribe.*"},
		{"v1 stream, v1 profile", APIv1, []string{"notifizz.track.*", "notifizz.workflow.*", "notifizz.commit.*", "notifizz.send.*"}, ""},
		{"send left out", APIv1, []string{"notifizz.track.*", "notifizz.workflow.*", "notifizz.commit.*"}, "notifizz.send.*"},
		{"everything", APIv2, []string{"notifizz.>"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.Stream.Name, Subjects: tt.subjects, Storage: jetstream.MemoryStorage})
			require.NoError(t, err)
			_, err = e.js.CreateConsumer(ctx, e.cfg.Stream.Name, jetstream.ConsumerConfig{
				Durable: e.cfg.Consumer.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second, MaxAckPending: 1000,
			})
			require.NoError(t, err)
			var logs logBuffer
			e.start(func(c *Config) { c.Stream.Create = false; c.API = tt.api }, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if tt.missing == "" {
				assert.NotContains(t, logs.String(), "does not capture")
				return
			}
			assert.Regexp(t, `missing="?`+regexp.QuoteMeta(tt.missing)+`"?\n`, logs.String())
		})
	}
}

func TestBindFailsWithoutStream(t *testing.T) {
	e := newEnv(t)
	cfg := e.cfg
	cfg.Stream.Create = false
	b, err := New(cfg, e.js, e.client())
	require.NoError(t, err)
	err = b.Run(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bind stream NOTIFIZZ")
}

func TestStalledAPIBackPressuresConsumer(t *testing.T) {
	e := newEnv(t)
	e.api.release = make(chan struct{})
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	e.api.setRespond(func(int, apiCall) (int, map[string]string, string) {
		mu.Lock()
		inFlight--
		mu.Unlock()
		return 200, nil, `{}`
	})
	e.api.onArrive = func() {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
	}
	r := e.start(func(c *Config) {
		c.Consumer.MaxAckPending = 10
		c.MaxInFlight = 2
		c.Coalesce.Delay = 50 * time.Millisecond
	})
	const events = 20
	for i := range events {
		_, err := e.prod.Track(ctx, fmt.Sprintf("k%d", i), "ev", nil)
		require.NoError(t, err)
	}
	// The bridge holds MaxAckPending messages and no more; the rest wait in the stream.
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_held_messages", nil) == 10
	}, waitFor, pollEvery)
	e.api.waitCalls(t, 2)
	cons, err := e.js.Consumer(ctx, e.cfg.Stream.Name, e.cfg.Consumer.Durable)
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10, info.NumAckPending)
	assert.Equal(t, uint64(events-10), info.NumPending)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return maxInFlight == 2
	}, waitFor, pollEvery, "two calls in flight while the API stalls")

	close(e.api.release)
	e.api.waitCalls(t, events)
	e.settled(e.cfg)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, maxInFlight, "maxInFlight bounds concurrent calls")
	assert.Len(t, e.api.snapshot(), events)
}

func TestRateLimitSpacesCalls(t *testing.T) {
	e := newEnv(t)
	e.start(func(c *Config) { c.RateLimit = 2; c.Coalesce.Delay = 50 * time.Millisecond })
	for i := range 4 {
		_, err := e.prod.Track(ctx, fmt.Sprintf("k%d", i), "ev", nil)
		require.NoError(t, err)
	}
	calls := e.api.waitCalls(t, 4)
	// A burst of 2, then one call every 500 ms: the fourth comes at least 1 s after the first.
	assert.GreaterOrEqual(t, calls[3].At.Sub(calls[0].At), 900*time.Millisecond)
	e.settled(e.cfg)
}

// flakyStreams is JetStream whose first creations of a stream answer "no responders", as a
// cluster electing its leaders does.
type flakyStreams struct {
	jetstream.JetStream
	failures atomic.Int32
}

func (f *flakyStreams) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, fmt.Errorf("create stream: %w", nats.ErrNoResponders)
	}
	return f.JetStream.CreateOrUpdateStream(ctx, cfg)
}

// TestStartRetriesTransientProvisioning: a start-up that meets "no responders" retries within
// StartTimeout and then runs; one that meets it past StartTimeout fails with it.
func TestStartRetriesTransientProvisioning(t *testing.T) {
	e := newEnv(t)
	js := &flakyStreams{JetStream: e.js}
	js.failures.Store(3)
	b, err := New(e.cfg, js, e.client(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	require.Eventually(t, b.Ready, waitFor, pollEvery, "the bridge starts once the streams can be created")
	assert.Less(t, js.failures.Load(), int32(0), "every failure was met")
	cancel()
	require.NoError(t, <-errc)

	js.failures.Store(1 << 20)
	cfg := e.cfg
	cfg.StartTimeout = 300 * time.Millisecond
	b, err = New(cfg, js, e.client(), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	err = b.Run(context.Background())
	assert.ErrorIs(t, err, nats.ErrNoResponders, "given up after StartTimeout")
}
