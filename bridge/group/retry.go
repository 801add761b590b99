package group

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/internal/clock"
	"github.com/notifizz-bridge/notifizz-bridge/internal/retry"
)

// provisionRetry bounds how long creating a group at start retries an answer that may pass: no
// responders, or a timeout, while a cluster elects its leaders.
const provisionRetry = 30 * time.Second

// retryTransient calls f until it succeeds, fails otherwise than transiently, provisionRetry has
// passed, or ctx is done, waiting a little longer each time (see retry.Until).
func retryTransient(ctx context.Context, f func() error) error {
	return retry.Until(ctx, provisionRetry, f, nil)
}

// casPause waits a short random while before a membership change is tried again, so that
// replicas that collided do not collide again.
func casPause(ctx context.Context) error {
	return clock.Sleep(ctx, time.Duration(50+rand.IntN(100))*time.Millisecond)
}
