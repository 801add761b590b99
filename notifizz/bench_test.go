package notifizz_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// BenchmarkTrackEvent measures a whole call against an instant local API,
// the client's share of the bridge's end-to-end cost.
func BenchmarkTrackEvent(b *testing.B) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer api.Close()
	client := notifizz.NewClient("auth", "sdk", notifizz.WithBaseURL(api.URL), notifizz.WithHTTPClient(api.Client()))
	req := notifizz.TrackRequest{EventName: "order_shipped", Properties: map[string]any{"orderId": "ORD-4521"}, IdempotencyKey: "k"}
	for i := range 10 {
		req.Workflows = append(req.Workflows, notifizz.Workflow{
			CampaignID: fmt.Sprintf("campaign_%d", i),
			Recipients: []notifizz.Recipient{{ID: fmt.Sprintf("user_%d", i), Email: "user@example.com"}},
		})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := client.TrackEvent(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
