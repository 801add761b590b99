package bridge

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// settler carries out decisions on held messages: it acks, naks, dead-letters and requeues
// them, counts each in the metrics and remembers what it settled (see settledSeqs). The workers
// and the coordinator share one; it is safe for concurrent use, its fields being set once by
// New.
type settler struct {
	log     *slog.Logger
	m       *metrics
	settled *settledSeqs
	copies  *copyHealth // whether dead-letter copies are being stored (see Bridge.DeadLetterProblem)

	// pub stores dead-letter copies and requeued messages; maxPayload is the server's limit on
	// what one may weigh.
	pub        publisher
	maxPayload func() int64

	stream      string // the stream the bridge reads, which a requeued message must land in
	partitioned bool   // stored subjects carry a partition, which a requeue takes off
	maxDeliver  int    // consumer.maxDeliver: a message delivered that often is not delivered again
	nakInitial  time.Duration
	dlqStream   string
	dlqPrefix   string
}

// publisher is the part of JetStream the settler publishes with.
type publisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// newSettler returns the settler of a bridge reading cfg's stream through js.
func newSettler(cfg Config, js jetstream.JetStream, log *slog.Logger, m *metrics, copies *copyHealth) *settler {
	return &settler{
		log: log, m: m, settled: newSettledSeqs(cfg.Stream.Name, settledMemory), copies: copies,
		pub:        js,
		maxPayload: func() int64 { return js.Conn().MaxPayload() },
		stream:     cfg.Stream.Name, partitioned: cfg.Partitions.Count > 0,
		maxDeliver: cfg.Consumer.MaxDeliver, nakInitial: cfg.Retry.NakInitial,
		dlqStream: cfg.DeadLetter.Stream, dlqPrefix: cfg.DeadLetter.SubjectPrefix,
	}
}

// caller runs a job to the end on a worker's goroutine: the API call, the decision, and the
// settling. It is safe for concurrent use.
type caller struct {
	api     API
	limiter *rate.Limiter // nil when calls are not limited
	backoff backoff
	m       *metrics
	settler *settler
	tracer  *callTracer // nil when tracing is off (WithTracerProvider)
}

// newCaller returns the caller of a bridge configured by cfg.
func newCaller(cfg Config, api API, m *metrics, s *settler) *caller {
	c := &caller{
		api: api, m: m, settler: s,
		backoff: backoff{initial: cfg.Retry.NakInitial, max: cfg.Retry.NakMax, maxDeliver: cfg.Consumer.MaxDeliver},
	}
	if cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(1, int(cfg.RateLimit)))
	}
	return c
}
