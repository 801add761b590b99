package notifizz_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

func TestGenerateHashedToken(t *testing.T) {
	tests := []struct {
		userID, authSecretKey, want string
	}{
		// The vector of DESIGN.md: sha256("user_42auth_secret").
		{"user_42", "auth_secret", "d132a6f0041278cf709626ac9ff8cae13fb73f1165f7dd162500484ceae8b0c9"},
		// sha256("") for the degenerate case.
		{"", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		t.Run(tt.userID, func(t *testing.T) {
			client := notifizz.NewClient(tt.authSecretKey, "sdk_secret")
			assert.Equal(t, tt.want, client.GenerateHashedToken(tt.userID))
		})
	}
}

func TestDefaults(t *testing.T) {
	assert.Equal(t, "https://eu.api.notifizz.com/v1", notifizz.DefaultBaseURL)
	assert.Equal(t, time.Second, notifizz.DefaultAutoSendDelay)
	assert.Equal(t, "notifizz-go/"+notifizz.Version, notifizz.DefaultUserAgent)
}

// TestConcurrentUse runs every entry point at once, for the race detector.
func TestConcurrentUse(t *testing.T) {
	client, api := setup(t, nil, notifizz.WithAutoSendDelay(time.Millisecond))
	var observed atomic.Int64
	client.Config(notifizz.WithObserver(func(notifizz.Attempt) { observed.Add(1) }))

	const workers, rounds = 16, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				ctx := context.Background()
				assert.NoError(t, client.TrackEvent(ctx, notifizz.TrackRequest{
					EventName:  "direct",
					Properties: map[string]any{"worker": w, "round": i},
					Workflows:  []notifizz.Workflow{{CampaignID: "c", Recipients: alice()}},
				}))

				explicit := client.Track(notifizz.TrackProps{EventName: "chain", Properties: map[string]any{"i": i}}).
					Workflow("c1", alice()).Workflow("c2", alice())
				assert.NoError(t, explicit.Send(ctx))

				// Left to the timer; Done is waited for below.
				auto := client.Track(notifizz.TrackProps{EventName: "auto"}).Workflow("c", alice())

				_, err := client.Send(ctx, fmt.Sprintf("n-%d", w), map[string]any{"recipients": alice()})
				assert.NoError(t, err)

				client.Config(notifizz.WithUserAgent(notifizz.DefaultUserAgent))
				assert.Len(t, client.GenerateHashedToken(fmt.Sprint(i)), 64)
				_ = client.String()

				select {
				case <-auto.Done():
					assert.NoError(t, auto.Err())
				case <-time.After(5 * time.Second):
					t.Error("auto-send never finished")
				}
			}
		})
	}
	wg.Wait()
	const calls = workers * rounds * 4
	require.Equal(t, calls, api.count())
	assert.Equal(t, int64(calls), observed.Load())
}
