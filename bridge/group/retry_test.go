package group

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetryTransient: creating a group retries what a cluster electing its leaders answers (no
// responders), and gives up at once on anything else.
func TestRetryTransient(t *testing.T) {
	calls := 0
	err := retryTransient(context.Background(), func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("create group: %w", nats.ErrNoResponders)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)

	calls = 0
	refused := errors.New("refused")
	err = retryTransient(context.Background(), func() error { calls++; return refused })
	assert.ErrorIs(t, err, refused)
	assert.Equal(t, 1, calls)
}
