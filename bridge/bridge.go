package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/internal/retry"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// API is the part of the Notifizz client the bridge calls; *notifizz.Client satisfies it. The
// client does the short in-process retries; the bridge decides what a final error means.
type API interface {
	TrackEvent(ctx context.Context, req notifizz.TrackRequest) error
	Send(ctx context.Context, notifID string, properties map[string]any, opts ...notifizz.CallOption) (json.RawMessage, error)

	// The calls of the v2 profile besides TrackEvent (notifizz.api: v2).
	Identify(ctx context.Context, req notifizz.IdentifyRequest) (json.RawMessage, error)
	Detach(ctx context.Context, req notifizz.DetachRequest) (json.RawMessage, error)
	Subscribe(ctx context.Context, resourceID, subscriberID string, meta map[string]any) (json.RawMessage, error)
	Unsubscribe(ctx context.Context, resourceID, subscriberID string) (json.RawMessage, error)
}

// Source delivers the stream's messages into the bridge: the bridge's own durable consumer, a
// consumer group's member (package group), or a source given with WithSource. Run drives every
// source the same way: Bound, then Consume, then, once every message is settled, Leave.
type Source interface {
	// Bound returns the consumer as it was bound before anything was pulled, or nil: what it
	// shows delivered and not acked, a predecessor held, and windows wait for it to come back.
	Bound() *jetstream.ConsumerInfo
	// Consume delivers messages into sink, never from two goroutines at once, until ctx is
	// done, and returns only once it will not call sink again.
	Consume(ctx context.Context, sink Sink) error
	// Leave runs once Consume has returned and every message it delivered is settled; a source
	// lets go there of what it holds in the server (a group member's partitions).
	Leave()
}

// Sink is what a Source delivers into; the bridge implements it. Every call but Deliver and
// Ready is carried out in order with the messages delivered before it, and, but HoldUntil,
// returns once it has been. A source calls it only from within Consume.
type Sink interface {
	// Deliver hands over one message; it may block while the bridge is busy.
	Deliver(m jetstream.Msg)
	// Ready reports whether the source is bound and pulling (Bridge.Ready).
	Ready(ok bool)
	// HoldUntil holds every window until t: a consumer changed hands, and pieces its previous
	// holder had may come back on their ack timers until then. It replaces the t of the call
	// before: a sooner t ends the hold early, the zero time at once.
	HoldUntil(t time.Time)
	// HoldRedelivered holds, until t, the windows that hold a redelivered piece: the consumer
	// may have changed hands since this instance started (a static member's first pin, after a
	// cover held it), and the pieces another instance handed back come back in no order with
	// those published since. Windows of first deliveries flow on.
	HoldRedelivered(t time.Time)
	// Rebound says the consumer was created again: it delivers what is left in stream order, so
	// the hold at start ends, and any delivery may be a copy of a message settled lately.
	Rebound()
	// ReleaseKeys naks the open windows whose event key keys accepts (all when nil), and with
	// queued the calls no worker has started, so that the next consumer of their messages builds
	// them again; it returns how many it released.
	ReleaseKeys(keys func(key string) bool, queued bool) int
	// Finish settles what the bridge holds now that the stream it came from is gone (a window
	// with its track is sent, one without is dead-lettered), and returns once nothing is held
	// or ctx is done.
	Finish(ctx context.Context)
}

// Option configures a Bridge.
type Option func(*Bridge)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(b *Bridge) { b.log = l } }

// WithRegisterer sets where the bridge's Prometheus series are registered; the default is a
// private registry.
func WithRegisterer(r prometheus.Registerer) Option { return func(b *Bridge) { b.reg = r } }

// WithSource replaces the durable consumer the bridge would bind with another message source.
// Provisioning of the stream and the dead-letter stream still follows the config.
func WithSource(s Source) Option { return func(b *Bridge) { b.source = s } }

// WithOnStarted sets f to be called once, from the source's goroutine, the first time the bridge
// is bound to its consumer and pulling: when the daemon may say it has started.
func WithOnStarted(f func()) Option { return func(b *Bridge) { b.onStarted = f } }

// WithDryRun marks the bridge's API calls as a dry run's (notifizz.dryRun) in the metrics: the
// API the bridge was given prints them rather than sending them.
func WithDryRun(on bool) Option { return func(b *Bridge) { b.dryRun = on } }

// Bridge consumes the notification stream and forwards coalesced events to Notifizz.
type Bridge struct {
	cfg     Config
	js      jetstream.JetStream
	api     API
	log     *slog.Logger
	reg     prometheus.Registerer
	source  Source
	m       *metrics
	settler *settler     // how the workers and the coordinator settle messages
	calls   *caller      // what each worker runs
	settled *settledSeqs // what the workers and the coordinator settled lately (the settler's)
	ready   atomic.Bool
	// onStarted runs the first time ready is set (WithOnStarted); started guards it.
	onStarted func()
	started   sync.Once
	copies    copyHealth // whether dead-letter copies are being stored (see Problem)
	auth      authHealth // whether the API refuses the bridge's key (see AuthProblem)
	stall     stallState // why the bridge is stalled, set by the watchdog (see StallProblem)
	dryRun    bool
	catalog   *catalog.Catalog
	// catalogWarn spaces the warnings of soft mode: one a track would flood the log.
	catalogWarn rate.Sometimes
	// noKeepAlive turns the InProgress sweep off; only tests set it.
	noKeepAlive bool
	running     atomic.Bool
	tp          trace.TracerProvider // nil: no spans (WithTracerProvider)
}

// New checks the config and returns a bridge ready to Run.
func New(cfg Config, js jetstream.JetStream, api API, opts ...Option) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	if js == nil || api == nil {
		return nil, errors.New("bridge: a JetStream context and an API are required")
	}
	b := &Bridge{cfg: cfg, js: js, api: api}
	for _, o := range opts {
		o(b)
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.reg == nil {
		b.reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(b.reg, cfg.API, b.dryRun)
	if err != nil {
		return nil, fmt.Errorf("bridge metrics: %w", err)
	}
	b.m = m
	m.replicas.Set(float64(b.expectedReplicas()))
	if b.catalog, err = catalog.Load(cfg.Catalog); err != nil {
		return nil, fmt.Errorf("bridge catalog: %w", err)
	}
	b.catalogWarn = rate.Sometimes{First: 1, Interval: catalogWarnEvery}
	b.settler = newSettler(cfg, js, b.log, m, &b.copies)
	b.settled = b.settler.settled
	b.calls = newCaller(cfg, api, m, b.settler)
	b.calls.tracer = newCallTracer(b.tp)
	return b, nil
}

// coordinator returns a coordinator wired to b: its config, settler and caller, its logger and
// the real clock.
func (b *Bridge) coordinator() *coordinator {
	cfg := newCoordinatorConfig(b.cfg)
	cfg.noKeepAlive = b.noKeepAlive
	c := newCoordinator(cfg, b.settler, b.calls, b.log, realClock{})
	c.pause.health = &b.auth
	return c
}

// Ready reports whether the bridge is bound to its consumer and pulling messages.
func (b *Bridge) Ready() bool { return b.ready.Load() }

// Run provisions the streams and the consumer (when configured to), consumes until ctx is
// done, and then shuts down: it stops pulling, hands the open windows back (naks), waits up
// to ShutdownTimeout for the calls in flight, naks whatever it still holds, and returns once
// every goroutine it started has ended. It returns nil after a clean shutdown.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("bridge: Run called twice")
	}
	// A NATS cluster that is starting or electing its leaders answers with timeouts and "no
	// responders" for a while: start-up retries those, within StartTimeout.
	if err := b.retryStart(ctx, "provision the streams", func() error { return b.provisionStreams(ctx) }); err != nil {
		return err
	}
	src := b.source
	if src == nil {
		err := b.retryStart(ctx, "bind the consumer", func() error {
			var err error
			src, err = b.newSource(ctx)
			return err
		})
		if err != nil {
			return err
		}
	}

	// Provisioned by now: the watcher reads what the streams capture.
	watchCtx, stopWatch := context.WithCancel(ctx)
	unroutable, err := b.watchUnroutable(watchCtx)
	if err != nil {
		// Credentials that cover only the bridge's own stream and consumer (an operator-managed
		// deployment) may not list streams: the bridge runs as before, without the watcher.
		b.log.Warn("not watching for messages no stream captures (unknown_subject): "+
			"the credentials may lack stream listing ($JS.API.STREAM.LIST)", "error", err)
	}
	// The lag gauges and the stall watchdog, until Run returns.
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		b.watchHealth(watchCtx)
	}()
	defer func() {
		stopWatch() // Run may return before ctx is done, when the source fails
		if unroutable != nil {
			unroutable.wait()
		}
		<-healthDone
	}()

	bound := src.Bound() // before Consume, which may bind another consumer
	in := make(chan inbound, 1024)
	srcErr := make(chan error, 1)
	// The source goroutine owns in: it closes it once the source has returned, which is the
	// coordinator's signal that no more messages will come.
	snk := &sink{b: b, in: in}
	go func() {
		defer snk.close()
		srcErr <- src.Consume(ctx, snk)
	}()

	c := b.coordinator()
	c.startRecovery(bound, b.js.Conn(), time.Now())
	c.run(ctx, in)
	b.ready.Store(false)
	err = <-srcErr
	// Only now, with every held message settled, may a group member's partitions move.
	src.Leave()
	return err
}

// retryStart runs a start-up step with retry.Until within StartTimeout, logging each transient
// failure.
func (b *Bridge) retryStart(ctx context.Context, what string, f func() error) error {
	return retry.Until(ctx, b.cfg.StartTimeout, f, func(err error, attempt int, wait time.Duration) {
		b.log.Warn("start-up: could not "+what+"; retrying", "attempt", attempt, "retry_in", wait, "error", err)
	})
}

// provisionStreams creates or updates the notification stream and the dead-letter stream, or,
// when the operator manages them, checks that they exist.
func (b *Bridge) provisionStreams(ctx context.Context) error {
	if err := b.checkStreamPartitions(ctx); err != nil {
		return err
	}
	cfg := b.cfg
	if !cfg.Stream.Create {
		st, err := b.js.Stream(ctx, cfg.Stream.Name)
		if err != nil {
			return fmt.Errorf("bind stream %s: %w", cfg.Stream.Name, err)
		}
		if missing := b.uncaptured(st.CachedInfo().Config.Subjects); len(missing) > 0 {
			b.log.Warn("the stream does not capture the subjects of some kinds this bridge sends: publishing to them finds no stream; add them to its subjects",
				"stream", cfg.Stream.Name, "api", cfg.API, "missing", strings.Join(missing, " "))
		}
		if _, err := b.js.Stream(ctx, cfg.DeadLetter.Stream); err != nil {
			// Dead letters nak until the stream exists; that is safe, so only warn.
			b.log.Warn("dead-letter stream not found; dead letters will be retried until it exists",
				"stream", cfg.DeadLetter.Stream, "error", err)
		}
		return nil
	}
	streams := cfg.StreamLayout()
	if _, err := b.js.CreateOrUpdateStream(ctx, streams.Stream()); err != nil {
		return fmt.Errorf("create or update stream %s: %w", cfg.Stream.Name, err)
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, streams.DeadLetterStream()); err != nil {
		return fmt.Errorf("create or update dead-letter stream %s: %w", cfg.DeadLetter.Stream, err)
	}
	return nil
}

// uncaptured returns the subjects "<prefix>.<kind>.*" of the kinds this bridge makes calls for
// under its API profile that none of an operator-managed stream's subjects captures.
func (b *Bridge) uncaptured(subjects []string) []string {
	var missing []string
	for _, k := range schema.AllKinds {
		if b.checkKind(k) != nil || k == schema.KindCommit && b.cfg.API == APIv2 {
			continue // refused, or (a v2 commit) ignored: nothing is lost if it is not stored
		}
		want := b.cfg.Stream.SubjectPrefix + "." + string(k) + ".*"
		if !slices.ContainsFunc(subjects, func(have string) bool { return server.SubjectMatchesFilter(want, have) }) {
			missing = append(missing, want)
		}
	}
	return missing
}

// newSource returns the source the config asks for, once the streams are provisioned: a member
// of the consumer group when the stream is partitioned, the durable consumer otherwise.
func (b *Bridge) newSource(ctx context.Context) (Source, error) {
	if b.cfg.Partitions.Count > 0 {
		return b.newGroupSource(ctx)
	}
	cons, err := b.bindConsumer(ctx, 0)
	if err != nil {
		return nil, err
	}
	return b.newConsumerSource(cons), nil
}

// decoded is a message with what the bridge learned of it: where it sits in the stream, which
// event it belongs to, and its body.
type decoded struct {
	msg       jetstream.Msg
	seq       uint64
	delivered uint64
	stream    string
	kind      schema.Kind
	key       string
	track     *schema.Track
	workflow  *schema.Workflow
	send      *schema.Send
	// The v2 kinds' bodies (notifizz.api: v2).
	identify    *schema.Identify
	detach      *schema.Detach
	subscribe   *schema.Subscribe
	unsubscribe *schema.Unsubscribe
	// catalogKey is the key the catalog derives for a track that brings none (see trackKey).
	catalogKey string
	size       int    // track and workflow: a bound on the bytes the body takes in the request
	headerKey  string // a valid Notifizz-Idempotency-Key header of a track or send
}

// inbound is a message decoded on the consumer's goroutine, ready for the coordinator.
type inbound struct {
	decoded
	err      error // a *schema.Error when the message can never be processed
	fatal    error // the message has no JetStream metadata: it cannot be acked at all
	received time.Time
	control  func(*coordinator) // not a message: a request of the source, through its Sink (sink.go)
}

// decode parses the subject and the body. It runs on the consumer's goroutine, so the
// coordinator spends its time only on windows.
func (b *Bridge) decode(m jetstream.Msg) inbound {
	in := inbound{decoded: decoded{msg: m}, received: time.Now()}
	meta, err := m.Metadata()
	if err != nil {
		in.fatal = err
		return in
	}
	in.seq, in.delivered, in.stream = meta.Sequence.Stream, meta.NumDelivered, meta.Stream
	in.kind, in.key, in.err = b.parseSubject(m.Subject())
	if in.err != nil {
		return in
	}
	// A kind the API profile cannot express is refused whatever its body.
	if in.err = b.checkKind(in.kind); in.err != nil {
		return in
	}
	switch in.kind {
	case schema.KindTrack:
		in.track, in.err = schema.DecodeTrack(m.Data())
		in.size = encodedBound(m.Data())
	case schema.KindWorkflow:
		in.workflow, in.err = schema.DecodeWorkflow(m.Data())
		in.size = encodedBound(m.Data()) + 1 // and the comma before it
	case schema.KindCommit:
		in.err = schema.DecodeCommit(m.Data())
	case schema.KindSend:
		in.send, in.err = schema.DecodeSend(m.Data())
	case schema.KindIdentify:
		in.identify, in.err = schema.DecodeIdentify(m.Data())
	case schema.KindDetach:
		in.detach, in.err = schema.DecodeDetach(m.Data())
	case schema.KindSubscribe:
		in.subscribe, in.err = schema.DecodeSubscribe(m.Data())
	case schema.KindUnsubscribe:
		in.unsubscribe, in.err = schema.DecodeUnsubscribe(m.Data())
	}
	if in.kind == schema.KindTrack && b.cfg.API == APIv2 {
		if in.err == nil {
			in.err = b.checkTrackV2(in.track, in.received, meta.Timestamp)
		} else if err := eventNameError(m.Data()); err != nil {
			in.err = err // the name is judged before anything else
		}
	}
	if in.kind == schema.KindTrack || in.kind == schema.KindSend {
		var present bool
		if in.headerKey, present = idempotencyKeyOf(m); present && in.headerKey == "" {
			b.log.Warn("ignoring an invalid "+deadletter.HeaderIdempotencyKey+" header (want 1 to 255 printable ASCII characters)",
				"kind", in.kind, "event_key", in.key, "stream_seq", in.seq)
		}
	}
	if in.err == nil && in.kind == schema.KindTrack {
		in.err = b.applyCatalog(&in)
	}
	return in
}
