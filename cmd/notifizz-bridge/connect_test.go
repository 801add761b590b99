package main

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// waitConfig is a dry-run config against the NATS server at natsAddr.
func waitConfig(t *testing.T, natsAddr, httpAddr, connectTimeout string) string {
	t.Helper()
	return writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  url: nats://%s
  connectTimeout: %s
notifizz:
  dryRun: true
http:
  listen: %s
shutdownTimeout: 5s
`, natsAddr, connectTimeout, httpAddr))
}

// TestE2EWaitsForNATS: a bridge started before its NATS server does not exit: it is alive
// (/healthz 200) and not ready (/readyz 503) while it retries, says so in its log, and starts
// consuming once the server is up.
func TestE2EWaitsForNATS(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	d := startDaemon(t, nil, "run", "--config", waitConfig(t, natsAddr, httpAddr, "0"))

	d.waitReadyz(t, httpAddr, http.StatusServiceUnavailable)
	code, _ := get(t, "http://"+httpAddr+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	_, body := readyz(httpAddr)
	assert.Contains(t, body, "nats: connecting")
	require.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "nats not reachable yet; retrying") },
		30*time.Second, 25*time.Millisecond, "each failed attempt is logged")
	assert.NotContains(t, d.stderr.String(), "notifizz-bridge started")

	_, portText, err := net.SplitHostPort(natsAddr)
	require.NoError(t, err)
	opts := natstest.Options(filepath.Join(t.TempDir(), "nats"))
	opts.Port, err = strconv.Atoi(portText)
	require.NoError(t, err)
	natstest.Run(t, opts)

	d.waitReadyz(t, httpAddr, http.StatusOK)
	// The log reaches the test through a pipe, which may lag behind /readyz.
	assert.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "notifizz-bridge started") },
		10*time.Second, 25*time.Millisecond)
	assert.Equal(t, 0, d.stop(t))
}

// TestE2EConnectTimeout: nats.connectTimeout bounds the wait; a SIGTERM ends it cleanly.
func TestE2EConnectTimeout(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	code, _, stderr := runBinary(t, nil, "run", "--config", waitConfig(t, natsAddr, httpAddr, "1s"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "nats not reachable yet; retrying")
	assert.Contains(t, stderr, "notifizz-bridge: connect to NATS at nats://"+natsAddr)

	d := startDaemon(t, nil, "run", "--config", waitConfig(t, freeAddr(t), httpAddr, "0"))
	d.waitReadyz(t, httpAddr, http.StatusServiceUnavailable)
	assert.Equal(t, 0, d.stop(t), "a stop while waiting for NATS is a clean exit")
}
