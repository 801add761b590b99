package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// Names of the streams under test. They are not the daemon's defaults, so that pointing --nats
// at a server that also runs a real bridge cannot touch its streams.
const (
	streamName   = "NOTIFIZZ_LOAD"
	subjectPref  = "loadtest"
	dlqStream    = "NOTIFIZZ_LOAD_DLQ"
	dlqPrefix    = "loadtest.dlq"
	durableName  = "notifizz-load"
	readyTimeout = 30 * time.Second
	pollEvery    = 2 * time.Millisecond
)

// env is the JetStream server of a run and the connections to it.
type env struct {
	cfg      Config
	srv      *server.Server // nil with --nats
	storeDir string
	url      string
	admin    *nats.Conn // stream management and consumer info, never the measured traffic
	js       jetstream.JetStream
}

func newEnv(cfg Config) (*env, error) {
	e := &env{cfg: cfg, url: cfg.NATSURL}
	if e.url == "" {
		dir, err := os.MkdirTemp("", "notifizz-load-*")
		if err != nil {
			return nil, err
		}
		e.storeDir = dir
		opts := natstest.Options(dir)
		opts.ServerName = "notifizz-load"
		srv, err := natstest.Start(opts, readyTimeout)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		e.srv = srv
		e.url = srv.ClientURL()
	}
	nc, err := bridge.Connect(e.url, "notifizz-load admin", discard)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("connect to %s: %w", e.url, err)
	}
	e.admin = nc
	e.js, err = jetstream.New(nc)
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.admin != nil {
		e.admin.Close()
	}
	if e.srv != nil {
		natstest.Stop(e.srv)
	}
	if e.storeDir != "" {
		_ = os.RemoveAll(e.storeDir)
	}
}

// discard is the logger of the load run's connections and bridges, which log nothing.
var discard = slog.New(slog.DiscardHandler)

// connect opens a connection for measured traffic, as the daemon connects. Consumers may go
// in-process (the daemon's embedded mode); publishers always use TCP, as other services would.
func (e *env) connect(name string, consumer bool, jsOpts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	var opts []nats.Option
	if consumer && e.cfg.InProcess && e.srv != nil {
		opts = append(opts, nats.InProcessServer(e.srv))
	}
	nc, err := bridge.Connect(e.url, name, discard, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", name, err)
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream %s: %w", name, err)
	}
	return nc, js, nil
}

// closeConn flushes what the connection still buffers (acks) before closing it.
func closeConn(nc *nats.Conn) {
	if nc == nil {
		return
	}
	_ = nc.FlushTimeout(2 * time.Second)
	nc.Close()
}

// bridgeConfig is the bridge's configuration for a phase: the daemon's defaults with the load
// run's names, delay and limits.
func (e *env) bridgeConfig(maxAckPending int) bridge.Config {
	c := bridge.DefaultConfig()
	c.Stream.Name = streamName
	c.Stream.SubjectPrefix = subjectPref
	c.Stream.Storage = bridge.Storage(e.cfg.Storage)
	c.DeadLetter.Stream = dlqStream
	c.DeadLetter.SubjectPrefix = dlqPrefix
	c.Consumer.Durable = durableName
	c.Consumer.MaxAckPending = maxAckPending
	c.Coalesce.Delay = e.cfg.Delay
	c.Coalesce.OrphanTimeout = max(c.Coalesce.OrphanTimeout, 2*e.cfg.Delay)
	c.MaxInFlight = e.cfg.MaxInFlight
	return c
}

// errCodeStreamStoreFailed is the server's "error creating store for stream" (nats-server's
// JSStreamStoreFailedF), which nats.go names no constant for.
const errCodeStreamStoreFailed jetstream.ErrorCode = 10049

// resetStreams deletes the streams under test and creates the main one as the bridge would, so
// that every phase starts from an empty stream with the same configuration.
func (e *env) resetStreams(ctx context.Context, maxAge time.Duration) error {
	return e.resetPartitionedStreams(ctx, maxAge, 0)
}

// resetPartitionedStreams is resetStreams for a stream split into partitions partitions (0: not
// partitioned), with the subject transform a partitioned bridge gives the stream it creates:
// the stored subject is <partition>.<prefix>.<kind>.<key>, the partition a hash of the key.
func (e *env) resetPartitionedStreams(ctx context.Context, maxAge time.Duration, partitions int) error {
	for _, name := range []string{streamName, dlqStream} {
		if err := e.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	// The bridge's own layout, from its config; a bridge refuses a stream whose partition
	// count differs from partitions.count.
	c := e.bridgeConfig(1)
	c.Partitions.Count = partitions
	l := c.StreamLayout()
	if maxAge != 0 {
		l.MaxAge = maxAge
	}
	l.DuplicateWindow = min(l.DuplicateWindow, l.MaxAge)
	sc := l.Stream()
	// The server removes a deleted stream's files after it answers the delete, so creating
	// the same name at once can fail to create its store: try again for a little while.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.js.CreateStream(ctx, sc)
		var apiErr *jetstream.APIError
		if err != nil && errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamStoreFailed && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", streamName, err)
		}
		return nil
	}
}

// deleteStreams removes what a phase left, so that the next one does not pay for it.
func (e *env) deleteStreams(ctx context.Context) {
	for _, name := range []string{streamName, dlqStream} {
		_ = e.js.DeleteStream(ctx, name)
	}
}

// deadLetters counts the messages in the dead-letter stream; none is expected.
func (e *env) deadLetters(ctx context.Context) (uint64, error) {
	s, err := e.js.Stream(ctx, dlqStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// settledAll reports whether every one of the consumers is settled.
func (e *env) settledAll(ctx context.Context, consumers []string) (bool, error) {
	for _, c := range consumers {
		if ok, err := e.settled(ctx, c); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// settled reports whether the consumer has nothing left to deliver and nothing unacknowledged.
func (e *env) settled(ctx context.Context, consumer string) (bool, error) {
	c, err := e.js.Consumer(ctx, streamName, consumer)
	if err != nil {
		return false, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, err
	}
	return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0, nil
}

// waitFor polls cond until it holds, the deadline passes or ctx ends. It returns the time at
// which cond was first seen to hold.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		now := time.Now()
		if err != nil {
			return now, fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return now, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("%s: not reached within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return now, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}
