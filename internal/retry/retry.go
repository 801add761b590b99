// Package retry retries, with growing waits, what may pass by itself at start-up: a NATS server
// not up yet, a JetStream cluster electing its leaders.
package retry

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/internal/clock"
)

// The waits between attempts: from First, doubled each time, up to Max.
const (
	First = 100 * time.Millisecond
	Max   = 2 * time.Second
)

// Transient reports whether err may pass if the same request is made again: no responders, a
// timeout, a connection being lost or not made yet, or JetStream answering that it is not
// available for now (503: a cluster without a leader). A server or account without JetStream
// is not transient: it is a setting to fix, and waiting would only hide it.
func Transient(err error) bool {
	if err == nil || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return false
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoServers) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable
}

// Until calls f until it succeeds, fails otherwise than transiently (Transient), bound has passed
// (0: no bound), or ctx is done, and returns f's last error (ctx's when ctx ended a wait).
// Before each wait, notify (which may be nil) is told of the failure, the attempt's number and
// the wait.
func Until(ctx context.Context, bound time.Duration, f func() error, notify func(err error, attempt int, wait time.Duration)) error {
	var deadline time.Time
	if bound > 0 {
		deadline = time.Now().Add(bound)
	}
	wait := First
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !Transient(err) || ctx.Err() != nil {
			return err
		}
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return err
			}
			wait = min(wait, left)
		}
		if notify != nil {
			notify(err, attempt, wait)
		}
		if serr := clock.Sleep(ctx, wait); serr != nil {
			return errors.Join(serr, err)
		}
		wait = min(2*wait, Max)
	}
}
