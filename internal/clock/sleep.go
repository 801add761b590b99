// Package clock holds the time helpers the project's goroutines share.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done, in which case it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
