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
