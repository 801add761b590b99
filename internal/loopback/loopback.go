// Package loopback finds free loopback addresses for a process that listens on a port it is
// given and takes no port 0: the daemon's HTTP and embedded NATS listeners, started by the tests
// and by the load command.
//
// A port found free by listening on port 0 and closing the listener comes from the kernel's
// ephemeral range, where the next listener on port 0 of any process (an httptest server of
// another package's tests running at the same time, say) can be handed it again before the
// daemon binds it, or after the daemon has exited while a test still polls it. FreeAddr takes
// its ports below that range, where no listener on port 0 is ever put.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// ephemeralRangeFile is where Linux says which ports it hands to listeners on port 0.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// FreeAddr returns "127.0.0.1:PORT" with a port that was free a moment ago, below the kernel's
// ephemeral range when that range is known and leaves room under it; otherwise a port the
// kernel picks (the ephemeral range: the race above is then possible).
func FreeAddr() (string, error) {
	if lo, hi, ok := belowEphemeral(); ok {
		for range 200 {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo))))
			if err != nil {
				continue // taken: another try
			}
			addr := ln.Addr().String()
			return addr, ln.Close()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// belowEphemeral returns the ports [lo, hi) that FreeAddr picks from: the upper half of those
// under the ephemeral range, above the privileged ones.
func belowEphemeral() (lo, hi int, ok bool) {
	data, err := os.ReadFile(ephemeralRangeFile)
	if err != nil {
		return 0, 0, false
	}
	return splitBelow(string(data))
}

// splitBelow reads the ephemeral range as the kernel writes it ("32768\t60999\n").
func splitBelow(s string) (lo, hi int, ok bool) {
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return 0, 0, false
	}
	first, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, 0, false
	}
	lo, hi = max(first/2, 1024), first
	if hi-lo < 1000 {
		return 0, 0, false
	}
	return lo, hi, true
}
