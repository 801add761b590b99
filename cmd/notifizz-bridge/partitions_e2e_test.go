package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// partitionedConfig writes the config of one replica of a static group of two members, a and b,
// over four partitions.
func partitionedConfig(t *testing.T, nats, httpAddr, member string) string {
	t.Helper()
	return writeFile(t, "config-"+member+".yaml", fmt.Sprintf(`
nats:
%s
partitions:
  count: 4
  mode: static
  group: e2e
  member: %s
  members: a,b
coalesce:
  delay: 10s
notifizz:
  sdkSecretKey: sdk-partitions-e2e
http:
  listen: %s
log:
  level: debug
shutdownTimeout: 5s
`, nats, member, httpAddr))
}

// TestE2EPartitionedReplicas runs two daemons as the two members of a static group, one with
// the embedded server and one using it: each event is printed once, by the member that owns
// its key's partition, whole.
func TestE2EPartitionedReplicas(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	httpA, httpB := freeAddr(t), freeAddr(t)
	configA := partitionedConfig(t, fmt.Sprintf("  embedded:\n    listen: %s\n    storeDir: %s", natsAddr, filepath.Join(t.TempDir(), "nats")), httpA, "a")
	configB := partitionedConfig(t, "  url: nats://"+natsAddr, httpB, "b")

	a := startDaemon(t, nil, "--config", configA, "--dry-run")
	a.waitReadyz(t, httpA, http.StatusOK)
	b := startDaemon(t, nil, "--config", configB, "--dry-run")
	b.waitReadyz(t, httpB, http.StatusOK)

	// Two keys in a's partitions (0 and 1 of 4, by the server's FNV-1a hash) and two in b's.
	var keysA, keysB []string
	for i := 0; len(keysA) < 2 || len(keysB) < 2; i++ {
		key := "order-" + strconv.Itoa(i)
		h := fnv.New32a()
		h.Write([]byte(key))
		if h.Sum32()%4 < 2 {
			if len(keysA) < 2 {
				keysA = append(keysA, key)
			}
		} else if len(keysB) < 2 {
			keysB = append(keysB, key)
		}
	}
	for _, key := range append(append([]string(nil), keysA...), keysB...) {
		publishEvent(t, configA, key)
	}

	keys := map[string]bool{}
	for _, d := range []*daemon{a, b} {
		for range 2 {
			line := d.nextLine(t, commitFlushTimeout)
			var req struct {
				Body trackRequest `json:"body"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &req), line)
			assertEvent(t, req.Body)
			keys[req.Body.IdempotencyKey] = true
		}
	}
	assert.Len(t, keys, 4, "four events, four idempotency keys")

	require.Equal(t, 0, b.stop(t))
	require.Equal(t, 0, a.stop(t))
	assert.Empty(t, a.stdout.lines, "a printed only its two events")
	assert.Empty(t, b.stdout.lines, "b printed only its two events")
	assert.Contains(t, a.stderr.String(), `partitions.count=4 partitions.mode=static partitions.group=e2e partitions.member=a`)
	assert.Contains(t, b.stderr.String(), `msg="joined the consumer group" mode=static group=e2e member=b partitions=4`)
}
