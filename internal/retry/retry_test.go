package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
)

func TestTransient(t *testing.T) {
	for _, err := range []error{
		nats.ErrNoResponders, nats.ErrTimeout, context.DeadlineExceeded, nats.ErrNoServers,
		fmt.Errorf("create stream: %w", nats.ErrNoResponders),
		&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"},
	} {
		assert.True(t, Transient(err), "%v", err)
	}
	for _, err := range []error{
		nil, errors.New("stream has 3 partitions, the config says 4"), nats.ErrAuthorization,
		&jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use with a different configuration"},
		context.Canceled, jetstream.ErrJetStreamNotEnabled, fmt.Errorf("x: %w", jetstream.ErrJetStreamNotEnabledForAccount),
	} {
		assert.False(t, Transient(err), "%v", err)
	}
}

func TestUntil(t *testing.T) {
	ctx := context.Background()
	t.Run("retries a transient failure until it passes", func(t *testing.T) {
		n := 0
		var told []int
		err := Until(ctx, time.Minute, func() error {
			if n++; n < 3 {
				return nats.ErrNoResponders
			}
			return nil
		}, func(_ error, attempt int, _ time.Duration) { told = append(told, attempt) })
		assert.NoError(t, err)
		assert.Equal(t, 3, n)
		assert.Equal(t, []int{1, 2}, told)
	})
	t.Run("a permanent failure at once", func(t *testing.T) {
		n := 0
		err := Until(ctx, time.Minute, func() error { n++; return nats.ErrAuthorization }, nil)
		assert.ErrorIs(t, err, nats.ErrAuthorization)
		assert.Equal(t, 1, n)
	})
	t.Run("gives up when the bound has passed", func(t *testing.T) {
		n := 0
		err := Until(ctx, 250*time.Millisecond, func() error { n++; return nats.ErrNoServers }, nil)
		assert.ErrorIs(t, err, nats.ErrNoServers)
		assert.GreaterOrEqual(t, n, 2)
	})
	t.Run("ctx ends a wait", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		err := Until(cctx, 0, func() error { return nats.ErrNoServers },
			func(error, int, time.Duration) { cancel() })
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, nats.ErrNoServers, "with the last failure")
	})
}
