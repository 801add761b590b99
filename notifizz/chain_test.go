package notifizz_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// neverAuto keeps the auto-send timer out of tests about explicit sends.
const neverAuto = time.Hour

func alice() []notifizz.Recipient {
	return []notifizz.Recipient{{ID: "user_42", Email: "alice@example.com"}}
}

// waitDone waits for a TrackContext to finish, failing after a generous bound.
func waitDone(t *testing.T, tc *notifizz.TrackContext) {
	t.Helper()
	select {
	case <-tc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("track context never finished")
	}
}

func TestTrackAutoSend(t *testing.T) {
	client, api := setup(t, nil, notifizz.WithAutoSendDelay(20*time.Millisecond))
	props := map[string]any{"orderId": "ORD-4521"}
	tc := client.
		Track(notifizz.TrackProps{EventName: "comment_posted", Properties: props}).
		Workflow("notify_author", []notifizz.Recipient{{ID: "author_1", Email: "author@example.com"}}).
		Workflow("notify_team", []notifizz.Recipient{{ID: "team_1", Email: "lead@example.com"}, {ID: "team_2", Email: "manager@example.com"}})
	// Track copied the map, so the caller may reuse it at once.
	props["orderId"] = "changed"

	require.Eventually(t, func() bool { return api.count() == 1 }, 5*time.Second, 5*time.Millisecond)
	waitDone(t, tc)
	require.NoError(t, tc.Err())

	h := api.only(t)
	assertHeaders(t, h, trackHeaders(tc.IdempotencyKey()))
	require.JSONEq(t, `{"eventName":"comment_posted","properties":{"orderId":"ORD-4521"},
		"workflows":[
			{"campaignId":"notify_author","recipients":[{"id":"author_1","email":"author@example.com"}]},
			{"campaignId":"notify_team","recipients":[{"id":"team_1","email":"lead@example.com"},{"id":"team_2","email":"manager@example.com"}]}],
		"sdkSecretKey":"`+sdkSecret+`","idempotencyKey":"`+tc.IdempotencyKey()+`"}`, string(h.body))

	<-api.hitCh // the one expected request
	api.noMoreHits(t, 100*time.Millisecond)
	require.NoError(t, tc.Send(context.Background()), "Send after the auto-send returns its result")
	assert.Equal(t, 1, api.count(), "and does not send again")
}

func TestTrackSendStopsTimer(t *testing.T) {
	const delay = 50 * time.Millisecond
	client, api := setup(t, nil, notifizz.WithAutoSendDelay(delay))
	tc := client.Track(notifizz.TrackProps{EventName: "payment_received", Properties: map[string]any{"amount": 99.99}}).
		Workflow("payment_confirmation", alice())

	require.NoError(t, tc.Send(context.Background()))
	select {
	case <-tc.Done():
	default:
		t.Fatal("Done is closed once Send has returned")
	}
	require.Equal(t, 1, api.count())
	<-api.hitCh

	// Waiting past the delay proves that the stopped timer sends nothing.
	api.noMoreHits(t, 3*delay)
	require.NoError(t, tc.Send(context.Background()))
	assert.Equal(t, 1, api.count())
}

func TestTrackConcurrentSend(t *testing.T) {
	g := newGate()
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		// Holding the one request keeps every Send overlapping with it.
		g.wait(r)
		w.WriteHeader(http.StatusOK)
	}, notifizz.WithAutoSendDelay(neverAuto))
	t.Cleanup(g.open)
	tc := client.Track(notifizz.TrackProps{EventName: "e"}).Workflow("c", alice())

	const senders = 50
	var started, finished sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		started.Add(1)
		finished.Go(func() {
			started.Done()
			errs <- tc.Send(context.Background())
		})
	}
	started.Wait()
	<-api.hitCh
	g.open()
	finished.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 1, api.count(), "one HTTP call however many senders")
}

func TestTrackLateWorkflow(t *testing.T) {
	client, api := setup(t, nil, notifizz.WithAutoSendDelay(neverAuto))
	tc := client.Track(notifizz.TrackProps{EventName: "e"}).Workflow("on_time", alice())
	require.NoError(t, tc.Send(context.Background()))

	err := tc.AddWorkflow("too_late", alice())
	require.ErrorIs(t, err, notifizz.ErrAlreadySent)
	assertNoSecrets(t, err)

	assert.Same(t, tc, tc.Workflow("also_late", alice()), "Workflow stays chainable")
	require.ErrorIs(t, tc.Err(), notifizz.ErrAlreadySent)
	require.ErrorIs(t, tc.Send(context.Background()), notifizz.ErrAlreadySent)

	h := api.only(t)
	assert.NotContains(t, string(h.body), "too_late")
	assert.NotContains(t, string(h.body), "also_late")
}

func TestTrackWorkflowWhileSending(t *testing.T) {
	g := newGate()
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		g.wait(r)
		w.WriteHeader(http.StatusOK)
	}, notifizz.WithAutoSendDelay(neverAuto))
	t.Cleanup(g.open)
	tc := client.Track(notifizz.TrackProps{EventName: "e"}).Workflow("on_time", alice())

	result := make(chan error, 1)
	go func() { result <- tc.Send(context.Background()) }()
	<-api.hitCh

	require.ErrorIs(t, tc.AddWorkflow("in_flight", alice()), notifizz.ErrAlreadySent, "a request in flight cannot grow")
	assert.ErrorIs(t, tc.Err(), notifizz.ErrAlreadySent, "Err reports the misuse before the send is done")
	select {
	case <-tc.Done():
		t.Fatal("the send is still held by the server")
	default:
	}
	g.open()
	require.ErrorIs(t, <-result, notifizz.ErrAlreadySent)
	assert.NotContains(t, string(api.only(t).body), "in_flight")
}

func TestTrackAutoSendError(t *testing.T) {
	client, api := setup(t, respond(http.StatusBadRequest, `{"error":"unknown campaign"}`),
		notifizz.WithAutoSendDelay(10*time.Millisecond))
	tc := client.Track(notifizz.TrackProps{EventName: "e"}).Workflow("missing", alice())
	waitDone(t, tc)

	err := tc.Err()
	apiErr, ok := asAPIError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.JSONEq(t, `{"error":"unknown campaign"}`, apiErr.Body)
	assertNoSecrets(t, err)

	assert.Equal(t, err, tc.Send(context.Background()), "Send hands back the same result")
	assert.Equal(t, 1, api.count(), "a permanent error is not retried or resent")
}

func TestTrackSendContext(t *testing.T) {
	g := newGate()
	client, api := setup(t, func(n int, w http.ResponseWriter, r *http.Request) {
		g.wait(r)
		w.WriteHeader(http.StatusOK)
	}, notifizz.WithAutoSendDelay(neverAuto))
	t.Cleanup(g.open)
	tc := client.Track(notifizz.TrackProps{EventName: "e"})

	// The first sender's send is running; a second sender whose ctx ends
	// stops waiting without disturbing it.
	first := make(chan error, 1)
	go func() { first <- tc.Send(context.Background()) }()
	<-api.hitCh
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, tc.Send(ctx), context.Canceled)

	g.open()
	require.NoError(t, <-first)
	require.NoError(t, tc.Err())
	assert.Equal(t, 1, api.count())
}

func TestConfigMergesOverCurrentSettings(t *testing.T) {
	client, _ := setup(t, nil, notifizz.WithAutoSendDelay(neverAuto))
	other := newFakeAPI(t, nil)

	// Like the SDK's config(): only the given settings change.
	client.Config(notifizz.WithBaseURL(other.URL+"/v2/"), notifizz.WithAutoSendDelay(10*time.Millisecond))
	tc := client.Track(notifizz.TrackProps{EventName: "e"})
	waitDone(t, tc)
	require.NoError(t, tc.Err())
	h := other.only(t)
	assert.Equal(t, "/v2/events/track", h.uri, "a trailing slash on the base URL is not doubled")
	assertHeaders(t, h, trackHeaders(tc.IdempotencyKey()))
}
