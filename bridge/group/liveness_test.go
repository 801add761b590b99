package group

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// logBuffer is a log's output, safe to read while the member writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runMember starts member's Consume, with hold (when set) run between its first beat and its
// start of consumption, and returns the member and a function that stops it and has it leave,
// as the bridge does. The test calls it once; Cleanup calls it when the test ended before.
func runMember(t *testing.T, ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger, hold func()) (*Member, func()) {
	t.Helper()
	s, err := New(ctx, js, cfg, log)
	require.NoError(t, err)
	s.beforeConsume = hold
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Consume(cctx, &holdingSink{got: make(chan jetstream.Msg, 100)}) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			assert.NoError(t, <-done, "member %s", cfg.Member)
			s.Leave()
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// startHeld returns a hook that holds a member's start of consumption: held is closed once the
// member has beaten for the first time and is held; release lets it go on (more than once is
// fine, so that the test can let it go on its way out too).
func startHeld() (hook func(), held <-chan struct{}, release func()) {
	h, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func() { close(h); <-r }, h, func() { once.Do(func() { close(r) }) }
}

// judgedFor waits until watcher has been able to judge the others' beats for n times DeadAfter,
// checking on the way that ok holds.
func judgedFor(t *testing.T, watcher *Member, n int, ok func() bool) {
	t.Helper()
	dead := DeadAfter(watcher.cfg.FailoverAfter)
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		require.True(t, ok(), "the watching member took the starting one for dead")
		since := watcher.beats.beating.Load()
		if since != 0 && time.Since(time.Unix(0, since)) > time.Duration(n)*dead {
			return
		}
		require.True(t, time.Now().Before(deadline), "the watching member never beat long enough to judge")
		<-tick.C
	}
}

// testConfig is a group on stream N with two partitions that fails over after a second.
func testConfig(mode Mode, member string) Config {
	return Config{
		Stream: "N", SubjectPrefix: "notifizz", Manage: true, Replicas: 1,
		FailoverAfter: time.Second, AckWait: 2 * time.Second, MaxDeliver: 10, MaxAckPending: 100,
		Count: 2, Mode: mode, Group: "g", Member: member, Members: []string{"a", "b"},
	}
}

func testStream(t *testing.T, ctx context.Context) jetstream.JetStream {
	t.Helper()
	srv := natstest.Run(t, natstest.Options(t.TempDir()))
	_, js := natstest.Connect(t, srv.ClientURL())
	streams := layout.Streams{Name: "N", SubjectPrefix: "notifizz", Storage: jetstream.MemoryStorage, Replicas: 1, Partitions: 2}
	_, err := js.CreateStream(ctx, streams.Stream())
	require.NoError(t, err)
	return js
}

// TestStaticStartingMemberIsNotCovered: a static member that has beaten once takes longer than
// failoverAfter to start consuming (a slow cluster, a loaded machine). It is alive: its beats go
// on while it starts, and the member watching it must not take it for dead and cover for it.
func TestStaticStartingMemberIsNotCovered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := testStream(t, ctx)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	hook, held, release := startHeld()
	defer release()
	_, stopA := runMember(t, ctx, js, testConfig(Static, "a"), quiet, hook)
	<-held // a has beaten once and has not started consuming

	var logB logBuffer
	b, stopB := runMember(t, ctx, js, testConfig(Static, "b"), slog.New(slog.NewTextHandler(&logB, nil)), nil)
	defer stopB()

	judgedFor(t, b, 3, func() bool {
		b.mu.Lock()
		covering := b.static.covering["a"]
		b.mu.Unlock()
		return !covering && !strings.Contains(logB.String(), "dead=a")
	})
	release()
	stopA()
}

// TestElasticStartingMemberIsNotDropped: the same for an elastic group, with a member that is in
// the group as it starts (it restarted before the others dropped it): while it binds and joins,
// its beats go on, and the member that drops dead ones must not drop it.
func TestElasticStartingMemberIsNotDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := testStream(t, ctx)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	hook, held, release := startHeld()
	defer release()
	_, stopB := runMember(t, ctx, js, testConfig(Elastic, "b"), quiet, hook)
	<-held // b has beaten once and has not joined
	_, err := pcgroups.AddMembers(ctx, js, "N", "g", []string{"b"})
	require.NoError(t, err)

	// a sorts first: it is the member that drops dead ones.
	var logA logBuffer
	a, stopA := runMember(t, ctx, js, testConfig(Elastic, "a"), slog.New(slog.NewTextHandler(&logA, nil)), nil)
	defer stopA()

	judgedFor(t, a, 3, func() bool { return !strings.Contains(logA.String(), "dead=") })
	gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, js, "N", "g")
	require.NoError(t, err)
	assert.True(t, gc.IsInMembership("b"), "the starting member is still in the group")
	release()
	stopB()
}
