package loopback

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitBelow(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"32768\t60999\n", 16384, 32768, true},
		{"1024 65535", 0, 0, false}, // no room under it
		{"1800 65535", 0, 0, false},
		{"5000 65535", 2500, 5000, true},
		{"garbage", 0, 0, false},
		{"x 60999", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := splitBelow(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		if tt.ok {
			assert.Equal(t, tt.lo, lo, tt.in)
			assert.Equal(t, tt.hi, hi, tt.in)
		}
	}
}

// TestFreeAddrBelowEphemeral: the address is on loopback, can be listened on, and (where the
// kernel says its ephemeral range) is below it.
func TestFreeAddrBelowEphemeral(t *testing.T) {
	addr, err := FreeAddr()
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	if lo, hi, ok := belowEphemeral(); ok {
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		assert.True(t, p >= lo && p < hi, "port %d in [%d, %d)", p, lo, hi)
	}
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, ln.Close())
}
