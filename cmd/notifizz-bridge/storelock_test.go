package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

func TestEmbeddedStoreDirIsLockedWhileItRuns(t *testing.T) {
	cfg := config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:-1", StoreDir: filepath.Join(t.TempDir(), "nats")}}
	first, err := startEmbedded(cfg, discardLogger())
	require.NoError(t, err)

	// Only the port differs, as when a second daemon is started by mistake.
	_, err = startEmbedded(cfg, discardLogger())
	require.Error(t, err, "a second server on the same store directory")
	assert.Contains(t, err.Error(), "nats.embedded.storeDir "+cfg.Embedded.StoreDir+" is in use by another process (process "+strconv.Itoa(os.Getpid())+")")
	assert.Contains(t, err.Error(), "NOTIFIZZ_BRIDGE_STORE_DIR")

	stopEmbedded(first)
	again, err := startEmbedded(cfg, discardLogger())
	require.NoError(t, err, "the lock goes with the server that held it")
	stopEmbedded(again)
}

func TestE2ESecondDaemonOnSameStoreDirRefusesToStart(t *testing.T) {
	t.Parallel()
	storeDir := filepath.Join(t.TempDir(), "nats")
	config := func(natsAddr, httpAddr string) string {
		return writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  embedded:
    listen: %s
    storeDir: %s
notifizz:
  dryRun: true
http:
  listen: %s
`, natsAddr, storeDir, httpAddr))
	}
	httpA := freeAddr(t)
	a := startDaemon(t, nil, "--config", config(freeAddr(t), httpA))
	a.waitReadyz(t, httpA, http.StatusOK)

	second := startDaemon(t, nil, "--config", config(freeAddr(t), freeAddr(t)))
	assert.Equal(t, 1, second.wait(t, 30*time.Second), "the second daemon refuses to start")
	assert.Contains(t, second.stderr.String(), "nats.embedded.storeDir "+storeDir+" is in use by another process (process "+strconv.Itoa(a.cmd.Process.Pid)+")")
	assert.Equal(t, 0, a.stop(t), "the first daemon is unharmed")

	// Once the first has stopped, the directory is free again.
	httpB := freeAddr(t)
	b := startDaemon(t, nil, "--config", config(freeAddr(t), httpB))
	b.waitReadyz(t, httpB, http.StatusOK)
	assert.Equal(t, 0, b.stop(t))
}
