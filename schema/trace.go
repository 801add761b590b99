package schema

import (
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// The W3C trace context headers of a message (https://www.w3.org/TR/trace-context/): a producer
// that puts them on its messages gets the bridge's API call for the event into its trace.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// HeaderCarrier lets an OpenTelemetry propagator read and write the headers of a NATS message.
// NATS headers keep the case they were written in, unlike HTTP's: Get finds a key in any case
// (a producer in another language may write Traceparent), and Set writes the key as the
// propagator names it (lowercase for W3C), replacing the key in any other case. Set needs a
// non-nil map.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, in any case, or "".
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set sets key to value alone.
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if k != key && strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys lists the keys of the headers.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
