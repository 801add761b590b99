package notifizz_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// Example mirrors the Node SDK's quickstart: track an event, attach a
// workflow and send it, then send a notification straight to the
// Notification Center.
func Example() {
	// A stand-in for the Notifizz API, so that the example runs offline.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"status":"queued"}`)
	}))
	defer api.Close()

	client := notifizz.NewClient("YOUR_AUTH_SECRET_KEY", "YOUR_SDK_SECRET_KEY",
		notifizz.WithBaseURL(api.URL+"/v1"), // omit to use notifizz.DefaultBaseURL
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// await client.track({...}).workflow(...)
	err := client.
		Track(notifizz.TrackProps{
			EventName:  "order_shipped",
			Properties: map[string]any{"orderId": "ORD-4521", "carrier": "FedEx"},
		}).
		Workflow("shipping_notification", []notifizz.Recipient{
			{ID: "user_42", Email: "alice@example.com"},
		}).
		Send(ctx)
	if err != nil {
		fmt.Println("Failed to send notification:", err)
		return
	}
	fmt.Println("event tracked")

	// await client.send({notifId, properties})
	resp, err := client.Send(ctx, "notif_template_123", map[string]any{
		"recipients": []notifizz.Recipient{{ID: "user_42", Email: "alice@example.com"}},
		"title":      "Your report is ready",
		"message":    "Click to download your monthly report.",
	})
	if err != nil {
		fmt.Println("Failed to send notification:", err)
		return
	}
	fmt.Println("notification:", string(resp))
	// Output:
	// event tracked
	// notification: {"status":"queued"}
}

// Example_v2 is the surface of the SDKs 2.x (2026): a flat track with
// occurredAt, identity and subscriptions. Each line shows the SDK call it
// mirrors; the stand-in API prints the requests it gets.
func Example_v2() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Println(r.Method, r.URL.EscapedPath())
		_, _ = io.WriteString(w, `{}`)
	}))
	defer api.Close()

	client := notifizz.NewClient("YOUR_AUTH_SECRET_KEY", "YOUR_SDK_SECRET_KEY",
		notifizz.WithAPI(notifizz.APIv2),
		notifizz.WithBaseURL(api.URL+"/v1"), // omit to use notifizz.DefaultBaseURLV2
	)
	ctx := context.Background()
	shippedAt := time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC)

	// await notifizz.track("order_shipped", {...}, undefined, shippedAt)
	_ = client.TrackEvent(ctx, notifizz.TrackRequest{
		EventName:  "order_shipped",
		Properties: map[string]any{"orderId": "ORD-4521"},
		OccurredAt: shippedAt,
	})
	// await notifizz.identify({environmentId, subjectA, subjectB, consentBasis})
	_, _ = client.Identify(ctx, notifizz.IdentifyRequest{
		EnvironmentID: "env_1",
		SubjectA:      notifizz.Subject{Type: "email", Identifier: "alice@example.com"},
		SubjectB:      notifizz.Subject{Type: "user", Identifier: "user_42"},
		ConsentBasis:  "contract",
	})
	// await notifizz.subscribe("doc_7", "user_42") / unsubscribe(...)
	_, _ = client.Subscribe(ctx, "doc_7", "user_42", nil)
	_, _ = client.Unsubscribe(ctx, "doc_7", "user_42")
	// await notifizz.notifySubscribers("doc_7", {...})
	_ = client.NotifySubscribers(ctx, "doc_7", map[string]any{"title": "New comment"}, "")
	// notifizz.generateSubscribeToken("user_42", "doc_7")
	fmt.Println(len(client.GenerateSubscribeToken("user_42", "doc_7")), "hex characters")
	// Output:
	// POST /v1/events/track
	// POST /v1/identity/identify
	// POST /v1/subscriptions/doc_7/subscribe
	// DELETE /v1/subscriptions/doc_7/unsubscribe
	// POST /v1/events/track
	// 64 hex characters
}

func ExampleClient_GenerateHashedToken() {
	client := notifizz.NewClient("auth_secret", "sdk_secret")
	// Return this to your frontend via an API endpoint.
	fmt.Println(client.GenerateHashedToken("user_42"))
	// Output: d132a6f0041278cf709626ac9ff8cae13fb73f1165f7dd162500484ceae8b0c9
}

// The auto-send of the Node SDK: without Send, the event goes out by itself
// after the delay, and Done and Err report the result.
func ExampleTrackContext_Done() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	client := notifizz.NewClient("auth", "sdk",
		notifizz.WithBaseURL(api.URL), notifizz.WithAutoSendDelay(10*time.Millisecond))

	tc := client.Track(notifizz.TrackProps{EventName: "comment_posted"}).
		Workflow("notify_author", []notifizz.Recipient{{ID: "author_1", Email: "author@example.com"}})
	<-tc.Done()
	fmt.Println("sent, err:", tc.Err())
	// Output: sent, err: <nil>
}
