package bridge

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every bridge, server,
// connection and HTTP server a test starts must be gone by the end, which is how a goroutine
// leak in Run, the workers or the consumer would show.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
