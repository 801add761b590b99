package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/internal/retry"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// flushTimeout bounds the final flush of acks buffered in the NATS connection at exit.
const flushTimeout = 2 * time.Second

// runDaemon runs the bridge until ctx is done, then shuts down in order: the bridge (it drains,
// hands open windows back and waits for calls in flight within shutdownTimeout), the HTTP endpoint, the NATS connection, the
// embedded server. Dry-run lines go to stdout, logs to stderr.
func runDaemon(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	if err := cfg.RequireSDKKey(); err != nil {
		return err // config.Load reports it first; this guards other callers
	}
	if err := cfg.RequireEmbeddedAuth(); err != nil {
		return err // likewise, with config.Options.Serve
	}
	log := newLogger(cfg.Log, stderr)
	routeStdLog(log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)

	// The endpoints come first, so that an orchestrator sees a live process (/healthz) that is
	// not ready (/readyz) while NATS is still out of reach.
	var (
		connected atomic.Pointer[natsConn]
		running   atomic.Pointer[bridge.Bridge]
	)
	ready := func() (bool, string) {
		conn, b := connected.Load(), running.Load()
		switch {
		case ctx.Err() != nil:
			return false, "shutting down"
		case conn == nil:
			return false, "nats: connecting"
		case !conn.nc.IsConnected():
			return false, "nats: " + conn.nc.Status().String()
		case b == nil || !b.Ready():
			return false, "bridge: not consuming yet"
		}
		if problem := b.DeadLetterProblem(); problem != "" {
			return false, "bridge: " + problem
		}
		if problem := b.AuthProblem(); problem != "" {
			return false, "bridge: " + problem
		}
		if problem := b.StallProblem(); problem != "" {
			return false, "bridge: " + problem
		}
		return true, "ok"
	}
	registerDaemonMetrics(reg, buildVersion(), cfg.Bridge.API, ready)
	hs, err := startHTTP(cfg.HTTP.Listen, newHTTPHandler(ready, reg, log), log)
	if err != nil {
		return err
	}
	defer func() {
		if err := hs.stop(); err != nil {
			log.Warn("http shutdown", "error", err)
		}
	}()

	tp, stopTracing, err := startTracing(ctx, cfg.Tracing, log)
	if err != nil {
		return err
	}
	defer stopTracing() // after the bridge, whose last spans it exports
	client := newAPIClient(cfg, stdout, log)
	var traceOpts []bridge.Option
	if tp != nil {
		traceAPIClient(client, cfg, stdout, tp)
		traceOpts = append(traceOpts, bridge.WithTracerProvider(tp))
	}
	// Under v2, the SDKs' boot ping, as they make it when they start: in the background, so
	// that it delays neither NATS nor readiness; the deferred stop ends it before exit.
	defer startBootPing(ctx, cfg, client, log).stop()

	conn, err := connectDaemon(ctx, cfg.NATS, cfg.Bridge.StartTimeout, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for NATS: a requested stop
		}
		return err
	}
	defer conn.close()
	connected.Store(conn)

	js, err := jetstream.New(conn.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// "started" is said once the bridge consumes, not before a start-up refusal.
	// The coalescing delay means nothing under v2, where nothing is coalesced.
	delay := slog.Any("delay", cfg.Bridge.Coalesce.Delay)
	if cfg.Bridge.API == bridge.APIv2 {
		delay = slog.Attr{}
	}
	started := func() {
		log.Info("notifizz-bridge started",
			"nats", conn.target,
			"stream", cfg.Bridge.Stream.Name,
			consumerAttr(cfg.Bridge),
			delay,
			"dry_run", cfg.Notifizz.DryRun,
			"api", cfg.Bridge.API,
			"http", cfg.HTTP.Listen,
			"version", buildVersion().short())
	}
	b, err := bridge.New(cfg.Bridge, js, client, append([]bridge.Option{
		bridge.WithLogger(log), bridge.WithRegisterer(reg), bridge.WithOnStarted(started),
		bridge.WithDryRun(cfg.Notifizz.DryRun)}, traceOpts...)...)
	if err != nil {
		return err
	}

	running.Store(b)

	stopNotice := context.AfterFunc(ctx, func() {
		log.Info("shutting down; send the signal again to exit at once", "timeout", cfg.Bridge.ShutdownTimeout)
	})
	defer stopNotice()

	if err := b.Run(ctx); err != nil {
		// A signal during start-up interrupts provisioning; that is a requested stop.
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("bridge: %w", err)
	}
	log.Info("notifizz-bridge stopped")
	return nil
}

// consumerAttr names what the bridge consumes through, for the start-up log: the durable
// consumer, or, in partitioned mode, the consumer group and this replica's name in it.
func consumerAttr(b bridge.Config) slog.Attr {
	p := b.Partitions
	if p.Count == 0 {
		return slog.String("consumer", b.Consumer.Durable)
	}
	return slog.Group("partitions", "count", p.Count, "mode", p.Mode, "group", p.Group, "member", p.Member)
}

// newAPIClient builds the Notifizz client; in a dry run its transport prints instead of
// sending. The client does the short in-process retries, the bridge the naks after them.
func newAPIClient(cfg config.Config, stdout io.Writer, log *slog.Logger) *notifizz.Client {
	n := cfg.Notifizz
	opts := []notifizz.Option{
		// The surface first: WithAPI moves a base URL still at the other surface's default,
		// and the configured one, resolved by config.Load, must stay as it is.
		notifizz.WithAPI(clientAPI(cfg.Bridge.API)),
		notifizz.WithBaseURL(n.BaseURL),
		notifizz.WithTimeout(n.Timeout),
		notifizz.WithUserAgent("notifizz-bridge/" + buildVersion().short() + " " + notifizz.DefaultUserAgent),
		notifizz.WithRetry(notifizz.RetryPolicy{
			Attempts:       cfg.Bridge.Retry.Attempts,
			InitialBackoff: cfg.Bridge.Retry.InitialBackoff,
			MaxBackoff:     cfg.Bridge.Retry.MaxBackoff,
		}),
		// Only the last attempt of a call reaches the bridge; the ones before it are worth a
		// debug line when an operator wonders why calls are slow.
		notifizz.WithObserver(func(a notifizz.Attempt) {
			if a.Err != nil {
				log.Debug("notifizz attempt failed", "endpoint", a.Endpoint, "attempt", a.Number,
					"status", a.StatusCode, "duration", a.Duration, "error", a.Err)
			}
		}),
	}
	if n.DryRun {
		opts = append(opts, notifizz.WithHTTPClient(&http.Client{
			Transport: newDryRunTransport(stdout, n.SDKSecretKey, n.AuthSecretKey),
		}))
	}
	return notifizz.NewClient(n.AuthSecretKey, n.SDKSecretKey, opts...)
}

// clientAPI is the notifizz client's surface for the profile api.
func clientAPI(api bridge.APIProfile) notifizz.API {
	if api == bridge.APIv2 {
		return notifizz.APIv2
	}
	return notifizz.APIv1
}

// natsConn is the daemon's NATS connection and, when nats.url is empty, the embedded server
// behind it.
type natsConn struct {
	nc     *nats.Conn
	srv    *embeddedServer // nil for an external server
	target string          // where it connected, for logs: a redacted URL or "embedded <listen>"
}

// connectDaemon connects for the long run: it reconnects forever and logs every change of
// connection state. The first connection to an external server is retried while the server is
// out of reach, within bound (nats.connectTimeout; 0: no bound) or until ctx is done, each
// failure logged; a failure that waiting cannot mend (a wrong credential, a TLS mismatch) is
// returned at once, so that a misconfigured daemon does not start.
func connectDaemon(ctx context.Context, cfg config.NATS, bound time.Duration, log *slog.Logger) (*natsConn, error) {
	if cfg.URL == "" {
		// The client's options first, so that a seed it cannot use stops start-up before the
		// server has started.
		auth, err := authOptions(cfg)
		if err != nil {
			return nil, err
		}
		srv, err := startEmbedded(cfg, log)
		if err != nil {
			return nil, err
		}
		// In-process: no TCP between the daemon and its own server, so no TLS either (the
		// server does not ask it of in-process clients), but the same authentication.
		url := "nats://" + srv.Addr().String()
		nc, err := bridge.Connect(url, "notifizz-bridge", log, append(auth, nats.InProcessServer(srv.Server))...)
		if err != nil {
			stopEmbedded(srv)
			return nil, connectError("embedded "+cfg.Embedded.Listen, true, err)
		}
		return &natsConn{nc: nc, srv: srv, target: "embedded " + cfg.Embedded.Listen}, nil
	}
	target := config.RedactURL(cfg.URL)
	auth, err := clientOptions(cfg)
	if err != nil {
		return nil, err
	}
	var nc *nats.Conn
	err = retry.Until(ctx, bound, func() error {
		nc, err = bridge.Connect(cfg.URL, "notifizz-bridge", log, auth...)
		return err
	}, func(err error, attempt int, wait time.Duration) {
		log.Warn("nats not reachable yet; retrying", "url", target, "attempt", attempt, "retry_in", wait,
			"gives_up_after", bound, "error", err)
	})
	if err != nil {
		return nil, connectError(target, false, err)
	}
	return &natsConn{nc: nc, target: target}, nil
}

// close flushes what the connection still buffers (the last acks and naks), closes it, and
// stops the embedded server.
func (c *natsConn) close() {
	if c.nc.IsConnected() {
		_ = c.nc.FlushTimeout(flushTimeout) // best effort: unflushed acks only cause redelivery
	}
	c.nc.Close()
	if c.srv != nil {
		stopEmbedded(c.srv)
	}
}
