package group

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/notifizz-bridge/notifizz-bridge/internal/clock"
)

// provisionRetry bounds how long creating a group at start retries an answer that may pass: no
// responders, or a timeout, while a cluster elects its leaders.
const provisionRetry = 30 * time.Second

// retryTransient calls f until it succeeds, fails otherwise than transiently, provisionRetry has
// passed, or ctx is done, waiting a little longer each time.
func retryTransient(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(provisionRetry)
	wait := 100 * time.Millisecond
	for {
		err := f()
		transient := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded)
		if err == nil || !transient || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// casPause waits a short random while before a membership change is tried again, so that
// replicas that collided do not collide again.
func casPause(ctx context.Context) error {
	return clock.Sleep(ctx, time.Duration(50+rand.IntN(100))*time.Millisecond)
}
