package bridge

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
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
	// The consumer's lag as its info shows it, and the stall watchdog (health.go).
	lag         lagGauges
	replicas    prometheus.Gauge // the replicas the config expects (see expectedReplicas)
	noProgress  prometheus.Gauge
	stalled     prometheus.Gauge
	dryRunLabel string // the dry_run label of api_calls_total: "true" or "false", fixed for the process

	// finals counts the messages settled for good (every outcome but naked): the watchdog reads
	// it to tell progress.
	finals atomic.Uint64

	// settled caches the children of messages by kind (in the order of schema.Kinds) and
	// outcome (in the order of outcomes), so that counting a settled message, which happens for
	// every message, is an atomic add rather than a hash of the labels and a lookup under the
	// vector's lock. Every combination is created with the metrics (see precreate), so that each
	// series exists at 0 before its first occurrence; the cache is filled then too.
	settled [numKinds][len(outcomes)]atomic.Pointer[prometheus.Counter]
}

// message counts one message of kind settled with outcome in notifizz_bridge_messages_total.
// It is safe for concurrent use: the coordinator and the workers settle messages.
func (m *metrics) message(kind schema.Kind, outcome string) {
	if outcome != outcomeNaked {
		m.finals.Add(1)
	}
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

// metricsNamespace prefixes every series of the bridge.
const metricsNamespace = "notifizz_bridge"

// newMetrics creates and registers the bridge's series, with every known label combination of
// its counters at 0 (see precreate) for the API profile api. dryRun marks the API calls of a
// dry run (notifizz.dryRun), which reach no API, in api_calls_total.
func newMetrics(reg prometheus.Registerer, api APIProfile, dryRun bool) (*metrics, error) {
	const ns = metricsNamespace
	m := &metrics{
		dryRunLabel: strconv.FormatBool(dryRun),
		lag:         newLagGauges(),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "expected_replicas",
			Help: "Replicas the config expects to run: the members of a static group (partitions.members), 1 without " +
				"partitions, 0 for an elastic group (its members join and leave).",
		}),
		noProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "no_progress_seconds",
			Help: "Seconds for which messages have been pending (undelivered or unacknowledged on the bridge's consumer) " +
				"while the bridge settled none for good; 0 when nothing is pending.",
		}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "stalled",
			Help: "1 while the stall watchdog finds work pending and no progress for health.stallAfter (then /readyz answers 503), else 0.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "messages_total",
			Help: "Messages settled by kind and outcome (acked, naked, dead_lettered, duplicate, ignored).",
		}, []string{"kind", "outcome"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "api_calls_total",
			Help: "Notifizz API calls by endpoint, status class of the final answer (code: 2xx, 3xx, 4xx, 5xx, or none " +
				"when no answer came), outcome (success, transient, permanent, auth) and dry_run (true when the call " +
				"was printed by a dry run, not sent).",
		}, []string{"endpoint", "code", "outcome", "dry_run"}),
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
		m.deadLetterFailures, m.deadLetterWaiting, m.authPaused, m.authFailures, m.replicas, m.noProgress, m.stalled,
		m.lag.pending, m.lag.ackPending, m.lag.redelivered, m.lag.waiting,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.precreate(api)
	return m, nil
}

// precreate creates every known label combination of the counters at 0, so that rate() and the
// alerts see a series before its first occurrence: messages by kind and outcome, dead letters
// by reason, redeliveries by kind, API calls (and their durations) by endpoint and answer,
// unroutable messages and catalog violations. The kinds are all the decoder knows under both profiles (a kind of the
// other profile is dead-lettered, and counted, all the same); the endpoints are the profile's.
func (m *metrics) precreate(api APIProfile) {
	for _, kind := range schema.AllKinds {
		for _, outcome := range outcomes {
			c := m.messages.WithLabelValues(string(kind), outcome)
			if k, o := kindIndex(kind), outcomeIndex(outcome); k >= 0 && o >= 0 {
				m.settled[k][o].Store(&c)
			}
		}
		m.redeliveries.WithLabelValues(string(kind))
	}
	for _, r := range deadletter.Reasons() {
		m.deadLetters.WithLabelValues(string(r))
	}
	for _, endpoint := range apiEndpoints(api) {
		m.apiLatency.WithLabelValues(endpoint)
		for _, a := range apiAnswers {
			m.apiCalls.WithLabelValues(endpoint, a.code, a.outcome, m.dryRunLabel)
		}
	}
	for _, o := range []string{unroutableDeadLettered, unroutableRefused, unroutableLost} {
		m.unroutable.WithLabelValues(o)
	}
	for _, status := range []string{"401", "403"} {
		m.authFailures.WithLabelValues(status)
	}
	for _, problem := range []string{"undeclared", "schema"} {
		for _, action := range []string{"sent", "dead_lettered"} {
			m.catalog.WithLabelValues(problem, action)
		}
	}
}

// apiEndpoints lists the endpoint labels of the calls the profile makes.
func apiEndpoints(api APIProfile) []string {
	if api == APIv2 {
		return []string{"track", "identify", "detach", "subscribe", "unsubscribe"}
	}
	return []string{"track", "send"}
}

// The outcome labels of api_calls_total.
const (
	callSuccess   = "success"   // a 2xx answer
	callTransient = "transient" // 408, 425, 429, 5xx, or no answer (network error, timeout): retried, then naked
	callPermanent = "permanent" // any other 4xx, or a 3xx: dead-lettered (api_rejected)
	callAuth      = "auth"      // 401 or 403: the bridge's own key is refused
)

// apiAnswers lists the (code, outcome) pairs an API call can end with.
var apiAnswers = []struct{ code, outcome string }{
	{"2xx", callSuccess},
	{"3xx", callPermanent},
	{"4xx", callPermanent},
	{"4xx", callAuth},
	{"4xx", callTransient},
	{"5xx", callTransient},
	{"none", callTransient},
}

// apiAnswer returns the code and outcome labels of an API call that ended with err.
func apiAnswer(err error) (code, outcome string) {
	if err == nil || errors.Is(err, notifizz.ErrInvalidResponse) {
		return "2xx", callSuccess // a 2xx is a success whatever its body
	}
	var apiErr *notifizz.APIError
	if !errors.As(err, &apiErr) {
		return "none", callTransient
	}
	code = strconv.Itoa(apiErr.StatusCode/100) + "xx"
	switch {
	case apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden:
		return code, callAuth
	case apiErr.Retryable():
		return code, callTransient
	}
	return code, callPermanent
}

// apiCall counts one API call to endpoint that ended with err.
func (m *metrics) apiCall(endpoint string, err error) {
	code, outcome := apiAnswer(err)
	m.apiCalls.WithLabelValues(endpoint, code, outcome, m.dryRunLabel).Inc()
}
