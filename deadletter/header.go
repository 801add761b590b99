package deadletter

import (
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The headers of a dead letter, besides those of the original it carries (DESIGN §4).
const (
	HeaderReason           = "Notifizz-Dlq-Reason"
	HeaderError            = "Notifizz-Dlq-Error"
	HeaderOriginalSubject  = "Notifizz-Original-Subject"
	HeaderOriginalSequence = "Notifizz-Original-Sequence"
	HeaderDeliveries       = "Notifizz-Deliveries"
	HeaderAPIStatus        = "Notifizz-Api-Status"
	// HeaderTruncated marks a dead letter whose body was cut to fit the server's max payload;
	// its value is the size of the original body in bytes.
	HeaderTruncated = "Notifizz-Dlq-Truncated"
	// HeaderIdempotencyKey is the idempotency key the bridge used (or would use) for the
	// message's event or send. A dead letter carries it, and so does its replay: a track or
	// send message that carries it is sent under it.
	HeaderIdempotencyKey = "Notifizz-Idempotency-Key"
)

// The prefixes of the headers a dead letter adds, which its replay drops.
const (
	dlqHeaderPrefix      = "Notifizz-Dlq-"
	originalHeaderPrefix = "Notifizz-Original-"
)

// MaxErrorLen bounds the human text of a dead letter's HeaderError.
const MaxErrorLen = 1024

// CarriedHeaders returns a copy of the headers of a message the bridge publishes again (a dead
// letter, a requeue), without the directives its producer gave the stream that stored it:
// expectations (Nats-Expected-*), a per-message TTL, a rollup or a batch would make the next
// stream refuse the copy every time, or act on it a second time. The rest is kept, the W3C
// trace headers (traceparent, tracestate) among them, so that a replay of the copy continues
// the original's trace.
//
// It differs from ReplayHeaders on purpose: it reads an original, which has no dead-letter
// headers to drop, and keeps its Nats-Msg-Id for the caller to replace.
func CarriedHeaders(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Nats-Expected-") || strings.HasPrefix(k, "Nats-Batch-") ||
			k == "Nats-TTL" || k == "Nats-Rollup" {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// ReplayHeaders returns the headers of the replay of a stored dead letter whose headers are h:
// the original's, that is h minus what the bridge added (Notifizz-Dlq-*, Notifizz-Original-*,
// Notifizz-Deliveries, Notifizz-Api-Status), its Nats-Msg-Id (the dead letter's, not the
// original's) and the publish expectations the dead letter was stored with, which would make
// the replay fail. Notifizz-Idempotency-Key stays: the bridge sends a replayed track or send
// under the key its first attempt used.
//
// It differs from CarriedHeaders on purpose: it reads a dead letter, not an original, and
// keeps whatever else a dead letter written by an earlier version carried.
func ReplayHeaders(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		switch {
		case strings.HasPrefix(k, dlqHeaderPrefix), strings.HasPrefix(k, originalHeaderPrefix),
			k == HeaderDeliveries, k == HeaderAPIStatus,
			k == jetstream.MsgIDHeader, strings.HasPrefix(k, "Nats-Expected-"):
			continue
		}
		out[k] = slices.Clone(v)
	}
	return out
}

// HeaderText makes human text safe for a header: one line, at most MaxErrorLen bytes.
func HeaderText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > MaxErrorLen {
		s = s[:MaxErrorLen]
	}
	return s
}
