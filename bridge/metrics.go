package bridge

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcome labels of notifizz_bridge_messages_total.
const (
	outcomeAcked        = "acked"
	outcomeNaked        = "naked"
	outcomeDeadLettered = "dead_lettered"
	outcomeDuplicate    = "duplicate"
	outcomeIgnored      = "ignored"
)

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
	}
	for _, c := range []prometheus.Collector{
		m.messages, m.apiCalls, m.apiLatency, m.openWindows, m.heldMessages, m.workflowsFlush,
		m.windowDuration, m.deadLetters, m.redeliveries, m.naks, m.inProgressSends,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
