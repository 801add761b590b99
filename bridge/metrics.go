package bridge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Outcome labels of notifizz_bridge_messages_total.
const (
	outcomeAcked        = "acked"
	outcomeNaked        = "naked"
	outcomeDeadLettered = "dead_lettered"
	outcomeDuplicate    = "duplicate"
	outcomeIgnored      = "ignored"
)

// outcomes lists the outcome labels in the order of the columns of metrics.settled.
var outcomes = [...]string{outcomeAcked, outcomeNaked, outcomeDeadLettered, outcomeDuplicate, outcomeIgnored}

// metrics are the bridge's Prometheus series. They are registered on the registerer the caller
// injects, so a process can run several bridges on separate registries.
type metrics struct {
	messages        *prometheus.CounterVec
	apiCalls        *prometheus.CounterVec
	apiLatency      *prometheus.HistogramVec
	openWindows     prometheus.Gauge
	heldMessages    prometheus.Gauge
	workflowsFlush  prometheus.Histogram
	windowDuration  prometheus.Histogram
	deadLetters     *prometheus.CounterVec
	redeliveries    *prometheus.CounterVec
	naks            prometheus.Counter
	inProgressSends prometheus.Counter
	unroutable      *prometheus.CounterVec
	catalog         *prometheus.CounterVec

	deadLetterFailures prometheus.Counter
	deadLetterWaiting  prometheus.Gauge

	authPaused   prometheus.Gauge
	authFailures *prometheus.CounterVec

	// settled caches the children of messages by kind (in the order of schema.Kinds) and
	// outcome (in the order of outcomes), so that counting a settled message, which happens for
	// every message, is an atomic add rather than a hash of the labels and a lookup under the
	// vector's lock. A child is resolved the first time it is counted, not when the metrics are
	// created: a child exists as a series from its creation, and /metrics shows only the
	// combinations that happened, as it did before the cache.
	settled [numKinds][len(outcomes)]atomic.Pointer[prometheus.Counter]
}

// message counts one message of kind settled with outcome in notifizz_bridge_messages_total.
// It is safe for concurrent use: the coordinator and the workers settle messages.
func (m *metrics) message(kind schema.Kind, outcome string) {
	k, o := kindIndex(kind), outcomeIndex(outcome)
	if k < 0 || o < 0 {
		// A message whose subject did not parse has no kind; it is dead-lettered, rarely.
		m.messages.WithLabelValues(string(kind), outcome).Inc()
		return
	}
	cell := &m.settled[k][o]
	if c := cell.Load(); c != nil {
		(*c).Inc()
		return
	}
	// Two goroutines may get here at once: the vector gives both the same child.
	c := m.messages.WithLabelValues(string(kind), outcome)
	cell.Store(&c)
	c.Inc()
}

// numKinds is len(schema.Kinds), which is not a constant.
const numKinds = 4

// kindIndex is the position of kind in schema.Kinds, or -1.
func kindIndex(kind schema.Kind) int {
	switch kind {
	case schema.KindTrack:
		return 0
	case schema.KindWorkflow:
		return 1
	case schema.KindCommit:
		return 2
	case schema.KindSend:
		return 3
	}
	return -1
}

// outcomeIndex is the position of outcome in outcomes, or -1.
func outcomeIndex(outcome string) int {
	switch outcome {
	case outcomeAcked:
		return 0
	case outcomeNaked:
		return 1
	case outcomeDeadLettered:
		return 2
	case outcomeDuplicate:
		return 3
	case outcomeIgnored:
		return 4
	}
	return -1
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "notifizz_bridge"
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "messages_total",
			Help: "Messages settled by kind and outcome (acked, naked, dead_lettered, duplicate, ignored).",
		}, []string{"kind", "outcome"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "api_calls_total",
			Help: "Notifizz API calls by endpoint and final HTTP status (\"error\" when there was no response).",
		}, []string{"endpoint", "status"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "api_call_duration_seconds",
			Help:    "Duration of Notifizz API calls, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"endpoint"}),
		openWindows: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "open_windows",
			Help: "Coalescing windows currently open.",
		}),
		heldMessages: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "held_messages",
			Help: "Messages held unacknowledged by the bridge (in windows, queued or in flight).",
		}),
		workflowsFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "workflows_per_flush",
			Help:    "Workflows carried by each track call.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 250, 1000},
		}),
		windowDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "window_duration_seconds",
			Help:    "Time from a window's opening to its flush.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "dead_letters_total",
			Help: "Messages dead-lettered, by reason.",
		}, []string{"reason"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "redeliveries_total",
			Help: "Messages received with a delivery count above one, by kind.",
		}, []string{"kind"}),
		naks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "naks_total",
			Help: "Negative acknowledgements sent (each message counts once per nak).",
		}),
		inProgressSends: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "in_progress_total",
			Help: "InProgress acknowledgements sent to keep held messages from redelivery.",
		}),
		deadLetterFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "dead_letter_failures_total",
			Help: "Dead-letter publishes that failed (each is tried again; nothing is dropped).",
		}),
		deadLetterWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "dead_letters_waiting",
			Help: "Messages on their last delivery held until their dead-letter copy is stored.",
		}),
		authPaused: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "api_auth_paused",
			Help: "1 while sending is paused because the Notifizz API refuses the bridge's key (401 or 403), else 0.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "api_auth_failures_total",
			Help: "Notifizz API calls refused with 401 or 403 (the bridge's key), by status; each pauses sending.",
		}, []string{"status"}),
		unroutable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "unroutable_messages_total",
			Help: "Messages published under the subject prefix that no stream captures, by outcome: dead_lettered " +
				"(unknown_subject), refused (a request, answered \"no responders\"), lost (no copy could be stored).",
		}, []string{"outcome"}),
		catalog: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "catalog_violations_total",
			Help: "Tracks that fail the event catalog (catalog.mode soft or strict), by problem: undeclared (the " +
				"event is not in catalog.events) or schema (its properties fail the event's schema), and action: " +
				"sent (soft) or dead_lettered (strict, schema_mismatch).",
		}, []string{"problem", "action"}),
	}
	for _, c := range []prometheus.Collector{
		m.messages, m.apiCalls, m.apiLatency, m.openWindows, m.heldMessages, m.workflowsFlush,
		m.windowDuration, m.deadLetters, m.redeliveries, m.naks, m.inProgressSends, m.unroutable, m.catalog,
		m.deadLetterFailures, m.deadLetterWaiting, m.authPaused, m.authFailures,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
