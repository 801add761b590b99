package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// storeLockName is the lock file the daemon keeps in nats.embedded.storeDir while its embedded
// server runs. Two servers writing one JetStream store corrupt it (each takes the other's
// message blocks for its own), so a second daemon given the same directory refuses to start.
const storeLockName = "notifizz-bridge.lock"

// errStoreLocked is what lockFile returns when another process holds the lock.
var errStoreLocked = errors.New("locked by another process")

// lockStore creates dir if needed and takes the exclusive lock on its lock file, which it
// returns; closing the file lets the lock go. The file holds the process id of its holder, for
// the message another daemon prints.
func lockStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("nats.embedded.storeDir: %w", err)
	}
	path := filepath.Join(dir, storeLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.storeDir: %w", err)
	}
	if err := lockFile(f); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " (process " + pid + ")"
			}
		}
		f.Close()
		if errors.Is(err, errStoreLocked) {
			return nil, fmt.Errorf("nats.embedded.storeDir %s is in use by another process%s, which holds %s: "+
				"two embedded servers must not share a store directory; give this daemon its own nats.embedded.storeDir "+
				"(NOTIFIZZ_BRIDGE_STORE_DIR in config.example.yaml), or set nats.url to the running daemon's server",
				dir, holder, storeLockName)
		}
		return nil, fmt.Errorf("nats.embedded.storeDir: lock %s: %w", path, err)
	}
	// Best effort: the pid only makes the message of another daemon clearer.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
