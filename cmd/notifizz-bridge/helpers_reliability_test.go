package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// startServer runs an external JetStream server with opts, filled in with what every test
// wants (loopback, no logs, no signal handling), and shuts it down at the end of the test.
func startServer(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	base := natstest.Options(opts.StoreDir)
	opts.Host, opts.JetStream, opts.NoLog, opts.NoSigs = base.Host, base.JetStream, base.NoLog, base.NoSigs
	if opts.ServerName == "" {
		opts.ServerName = "reliability"
	}
	return natstest.Run(t, &opts)
}

// serverPort is the client port a server listens on.
func serverPort(s *server.Server) int { return natstest.Port(s) }

// testConn connects the test itself to a server; it reconnects forever, so that it survives
// server restarts, and is closed at the end of the test.
func testConn(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	return natstest.Connect(t, url, opts...)
}

// externalConfig writes a config for a daemon connected to an external server at natsURL;
// extra is appended as is (YAML at the top level).
func externalConfig(t *testing.T, natsURL, httpAddr, extra string) string {
	t.Helper()
	return writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  url: %s
http:
  listen: %s
%s
`, natsURL, httpAddr, extra))
}

// consumerInfo reads the daemon's consumer state, or returns nil while it cannot.
func consumerInfo(js jetstream.JetStream) *jetstream.ConsumerInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, "NOTIFIZZ", "notifizz-bridge")
	if err != nil {
		return nil
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

// drained reports whether the consumer has nothing left: no message undelivered, unacked or
// waiting for redelivery.
func drained(info *jetstream.ConsumerInfo) bool {
	return info != nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
}

// dlqMessage is one message of the dead-letter stream.
type dlqMessage struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
}

// readDLQ returns every message of the dead-letter stream, in order.
func readDLQ(t *testing.T, js jetstream.JetStream) []dlqMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "NOTIFIZZ_DLQ")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []dlqMessage
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		// Each read has a deadline of its own, and only a message that is not there is skipped:
		// a read that timed out on a busy machine must not make a dead letter look missing.
		var m *jetstream.RawStreamMsg
		require.Eventually(t, func() bool {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err = s.GetMsg(rctx, seq)
			return err == nil || errors.Is(err, jetstream.ErrMsgNotFound)
		}, 2*time.Minute, 100*time.Millisecond, "reading dead letter %d: %v", seq, err)
		if m == nil {
			continue // deleted: a replayed dead letter leaves a gap
		}
		out = append(out, dlqMessage{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

// rssKiB is the resident set size of a process, from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			require.NoError(t, err)
			return n
		}
	}
	require.FailNow(t, "no VmRSS in /proc status")
	return 0
}
