package group

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
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
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// casPause waits a short random while before a membership change is tried again, so that
// replicas that collided do not collide again.
func casPause(ctx context.Context) error {
	return sleepCtx(ctx, time.Duration(50+rand.IntN(100))*time.Millisecond)
}

// sleepCtx waits for d or until ctx is done.
//
// TODO(shape): one copy of sleepCtx for the module, where the stream's shape is kept.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
