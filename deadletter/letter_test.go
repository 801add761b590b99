package deadletter

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestReasons pins every reason string: they are the contract of Notifizz-Dlq-Reason, and the
// order is the documentation's (the dlq --reason flag lists them in it).
func TestReasons(t *testing.T) {
	want := []string{
		"invalid_json", "invalid_message", "secret_in_message", "too_large", "unknown_subject",
		"api_rejected", "max_deliveries", "missing_track", "duplicate_track", "too_many_workflows",
		"unsupported", "schema_mismatch",
	}
	var got []string
	for _, r := range Reasons() {
		got = append(got, string(r))
		assert.True(t, Known(r), r)
	}
	assert.Equal(t, want, got)
	for _, r := range []Reason{"", "API_REJECTED", "requeued", "api_rejected "} {
		assert.False(t, Known(r), "%q", r)
	}
	Reasons()[0] = "changed"
	assert.Equal(t, ReasonInvalidJSON, Reasons()[0], "Reasons returns a copy")
}

// TestDecodingReasonsKnown checks that every reason the decoder gives a refused message is a
// known dead-letter reason.
func TestDecodingReasonsKnown(t *testing.T) {
	bodies := map[Reason][]byte{
		ReasonInvalidJSON:     []byte(`{`),
		ReasonInvalidMessage:  []byte(`{"eventName": 1}`),
		ReasonSecretInMessage: []byte(`{"eventName": "e", "sdkSecretKey": "s"}`),
		ReasonTooLarge:        []byte(`{"eventName": "` + strings.Repeat("a", schema.MaxBodySize) + `"}`),
	}
	for want, body := range bodies {
		_, err := schema.DecodeTrack(body)
		require.Error(t, err, want)
		assert.Equal(t, want, schema.ReasonOf(err))
		assert.True(t, Known(schema.ReasonOf(err)), want)
	}
	_, _, err := schema.ParseSubject("notifizz", "notifizz.bogus.k")
	assert.Equal(t, ReasonUnknownSubject, schema.ReasonOf(err))
	assert.True(t, Known(schema.ReasonOf(err)))
}

// TestHeaderNames pins the header names: operators script against them.
func TestHeaderNames(t *testing.T) {
	assert.Equal(t, []string{
		"Notifizz-Dlq-Reason", "Notifizz-Dlq-Error", "Notifizz-Original-Subject", "Notifizz-Original-Sequence",
		"Notifizz-Deliveries", "Notifizz-Api-Status", "Notifizz-Dlq-Truncated", "Notifizz-Idempotency-Key",
	}, []string{
		HeaderReason, HeaderError, HeaderOriginalSubject, HeaderOriginalSequence,
		HeaderDeliveries, HeaderAPIStatus, HeaderTruncated, HeaderIdempotencyKey,
	})
}

func TestSubjects(t *testing.T) {
	assert.Equal(t, "notifizz.dlq.track.order-1", Subject("notifizz.dlq", schema.KindTrack, "order-1"))
	assert.Equal(t, "notifizz.dlq.unknown.42", UnknownSubject("notifizz.dlq", "42"))
	assert.Equal(t, "notifizz.dlq.*.order-1", KeyFilter("notifizz.dlq", "order-1"))
	assert.Equal(t, "notifizz.dlq.*.*", Filter("notifizz.dlq"))
	assert.Equal(t, "dlq-NOTIFIZZ-7", MsgID("NOTIFIZZ", 7))
	assert.Equal(t, "dlq-unknown-abc", UnknownMsgID("abc"))
	assert.Equal(t, "replay-NOTIFIZZ_DLQ-9", ReplayMsgID("NOTIFIZZ_DLQ", 9))
	// Every dead letter's subject is under the stream's filter, and one of a key under its
	// key filter.
	for _, kind := range schema.Kinds {
		s := Subject("p", kind, "k")
		assert.True(t, matches(Filter("p"), s), s)
		assert.True(t, matches(KeyFilter("p", "k"), s), s)
		assert.False(t, matches(KeyFilter("p", "other"), s), s)
	}
	assert.True(t, matches(Filter("p"), UnknownSubject("p", "1")))
}

// matches reports whether a literal subject matches a filter of literal and '*' tokens.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	if len(f) != len(s) {
		return false
	}
	for i := range f {
		if f[i] != "*" && f[i] != s[i] {
			return false
		}
	}
	return true
}

func TestLetterRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		l    Letter
	}{
		{"every field", Letter{
			Subject: "notifizz.dlq.track.order-1", ID: "dlq-NOTIFIZZ-7",
			Reason: ReasonAPIRejected, Error: "400 Bad Request: eventName unknown",
			OriginalSubject: "notifizz.track.order-1", OriginalSequence: 7, Deliveries: 3, APIStatus: 400,
			IdempotencyKey: "key-1", Truncated: true, OriginalSize: 2 << 20,
			Header: nats.Header{"X-Trace": {"t1"}}, Data: []byte(`{"eventName":"e"}`),
		}},
		{"never in a stream, no API answer", Letter{
			Subject: "notifizz.dlq.unknown.abc", ID: "dlq-unknown-abc",
			Reason: ReasonUnknownSubject, Error: "no stream captures the subject",
			OriginalSubject: "notifizz.bogus.k", Deliveries: 1,
			Header: nats.Header{}, Data: []byte(`{}`),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.l.Msg()
			assert.Equal(t, tt.l.Subject, m.Subject)
			assert.Equal(t, tt.l.Data, m.Data)
			got := Parse(m.Subject, m.Header, m.Data)
			assert.Equal(t, m.Header, got.Header, "a parsed letter holds every header as stored")
			want := tt.l
			want.Header, got.Header = nil, nil
			assert.Equal(t, want, got)
			// A parsed letter builds the same message again.
			again := Parse(m.Subject, m.Header, m.Data)
			assert.Equal(t, m, again.Msg())
		})
	}
}

func TestLetterMsg(t *testing.T) {
	original := nats.Header{
		"X-Trace":                      {"t1"},
		jetstream.MsgIDHeader:          {"producer-id"},
		jetstream.ExpectedStreamHeader: {"NOTIFIZZ"},
		"Nats-TTL":                     {"1h"},
		HeaderAPIStatus:                {"500"},
		HeaderTruncated:                {"12"},
		HeaderIdempotencyKey:           {"producer-key"},
	}
	l := Letter{
		Subject: "p.unknown.1", ID: "dlq-unknown-1", Reason: ReasonTooLarge, Error: "line one\r\nline two" + strings.Repeat("x", MaxErrorLen),
		OriginalSubject: "notifizz.track.k", Deliveries: 1, Header: original, Data: []byte(`{}`),
	}
	m := l.Msg()
	assert.Equal(t, nats.Header{
		"X-Trace":             {"t1"},
		jetstream.MsgIDHeader: {"dlq-unknown-1"},
		HeaderReason:          {"too_large"},
		HeaderError:           {("line one  line two" + strings.Repeat("x", MaxErrorLen))[:MaxErrorLen]},
		HeaderOriginalSubject: {"notifizz.track.k"},
		HeaderDeliveries:      {"1"},
		// Without a key of the bridge's, the original's own stays.
		HeaderIdempotencyKey: {"producer-key"},
	}, m.Header)
	assert.Equal(t, "t1", original.Get("X-Trace"))
	m.Header["X-Trace"][0] = "changed"
	assert.Equal(t, "t1", original.Get("X-Trace"), "the letter's headers are a copy")
}

func TestLetterRedacts(t *testing.T) {
	secret := []byte(`{"eventName":"e","properties":{"authSecretKey":"hunter2"}}`)
	for _, reason := range []Reason{ReasonSecretInMessage, ReasonTooLarge, ReasonAPIRejected} {
		l := Letter{Reason: reason, Data: secret}
		m := l.Msg()
		assert.NotContains(t, string(m.Data), "hunter2", reason)
		assert.Contains(t, string(m.Data), `"authSecretKey":"[REDACTED]"`, reason)
		assert.True(t, Parse(m.Subject, m.Header, m.Data).Redacted(), reason)
	}
	// Not JSON: replaced whole.
	l := Letter{Reason: ReasonInvalidJSON, Data: []byte(`{"sdkSecretKey": hunter2`)}
	m := l.Msg()
	assert.Equal(t, `"[REDACTED]"`, string(m.Data))
	assert.True(t, Parse(m.Subject, m.Header, m.Data).Redacted())

	plain := Letter{Reason: ReasonAPIRejected, Data: []byte(`{"eventName":"e","properties":{"note":"[REDACTED]"}}`)}
	m = plain.Msg()
	assert.Equal(t, plain.Data, m.Data)
	assert.False(t, Parse(m.Subject, m.Header, m.Data).Redacted(), "a body that names no secret key is what was sent")
}

func TestFit(t *testing.T) {
	l := Letter{Subject: "p.track.k", Reason: ReasonTooLarge, Data: []byte(strings.Repeat("a", 1000))}
	m := l.Msg()
	Fit(m, 0)
	assert.Len(t, m.Data, 1000, "no limit")
	Fit(m, 10_000)
	assert.Len(t, m.Data, 1000, "fits")
	assert.Empty(t, m.Header.Get(HeaderTruncated))

	Fit(m, 600)
	assert.Equal(t, "1000", m.Header.Get(HeaderTruncated))
	assert.LessOrEqual(t, m.Size()-len(m.Subject), 600)
	assert.Greater(t, len(m.Data), 0)
	got := Parse(m.Subject, m.Header, m.Data)
	assert.True(t, got.Truncated)
	assert.Equal(t, 1000, got.OriginalSize)
}

// TestReplayHeaders: a replay carries the original's headers and the bridge's idempotency key,
// and none of the dead letter's own.
func TestReplayHeaders(t *testing.T) {
	in := nats.Header{
		"X-Trace":                      {"t1"},
		"Traceparent":                  {"00-abc-def-01"},
		"tracestate":                   {"vendor=abc"},
		HeaderReason:                   {"api_rejected"},
		HeaderError:                    {"400"},
		HeaderOriginalSubject:          {"notifizz.track.k"},
		HeaderOriginalSequence:         {"7"},
		HeaderDeliveries:               {"1"},
		HeaderAPIStatus:                {"400"},
		jetstream.MsgIDHeader:          {"dlq-NOTIFIZZ-7"},
		jetstream.ExpectedStreamHeader: {"NOTIFIZZ_DLQ"},
		HeaderTruncated:                {"1048561"},
		HeaderIdempotencyKey:           {"key-1"},
	}
	out := ReplayHeaders(in)
	assert.Equal(t, nats.Header{"X-Trace": {"t1"}, "Traceparent": {"00-abc-def-01"}, "tracestate": {"vendor=abc"},
		HeaderIdempotencyKey: {"key-1"}}, out, "a replay continues the original's trace")
	out["X-Trace"][0] = "changed"
	assert.Equal(t, "t1", in.Get("X-Trace"), "a copy, not the dead letter's own slice")
}

// TestCarriedHeaders: a copy drops the directives the producer gave the stream that stored the
// original, and keeps the rest: the trace headers among them, so that the copy's replay
// continues the original's trace.
func TestCarriedHeaders(t *testing.T) {
	in := nats.Header{
		"X-Trace":                      {"t1"},
		"traceparent":                  {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"tracestate":                   {"vendor=abc"},
		jetstream.MsgIDHeader:          {"id-1"},
		jetstream.ExpectedStreamHeader: {"NOTIFIZZ"},
		"Nats-Expected-Last-Sequence":  {"3"},
		"Nats-TTL":                     {"1h"},
		"Nats-Rollup":                  {"sub"},
		"Nats-Batch-Id":                {"b"},
		HeaderIdempotencyKey:           {"key-1"},
	}
	out := CarriedHeaders(in)
	assert.Equal(t, nats.Header{"X-Trace": {"t1"}, jetstream.MsgIDHeader: {"id-1"}, HeaderIdempotencyKey: {"key-1"},
		"traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "tracestate": {"vendor=abc"}}, out)
	out["X-Trace"][0] = "changed"
	assert.Equal(t, "t1", in.Get("X-Trace"), "a copy")
	assert.Equal(t, nats.Header{}, CarriedHeaders(nil))
}

func TestFailsUnchanged(t *testing.T) {
	var failing []Reason
	for _, r := range Reasons() {
		if FailsUnchanged(r) {
			failing = append(failing, r)
		}
	}
	assert.Equal(t, []Reason{ReasonInvalidJSON, ReasonInvalidMessage}, failing)
}
