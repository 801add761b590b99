package deadletter

import (
	"bytes"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Letter is what a dead letter carries: why and where the original was refused, and its
// headers and body. The bridge builds one and publishes Msg; the dlq command reads one back
// with Parse.
type Letter struct {
	// Subject is where the dead letter is stored: Subject or UnknownSubject.
	Subject string
	// ID is its Nats-Msg-Id (MsgID, UnknownMsgID), so that a copy published twice is stored once.
	ID string

	Reason Reason
	// Error is human text; it never holds a secret. Msg makes it one line (HeaderText).
	Error            string
	OriginalSubject  string
	OriginalSequence uint64 // the original's stream sequence; 0 when it was never in a stream
	Deliveries       uint64 // the original's delivery count
	APIStatus        int    // the API's HTTP status; 0 when there was none
	// IdempotencyKey is the key the bridge used, or would use, for the original's event or
	// send; when empty, Msg leaves the original's own HeaderIdempotencyKey, if any.
	IdempotencyKey string
	// Truncated is set when the body holds only the start of the original's (see Fit), which
	// was OriginalSize bytes.
	Truncated    bool
	OriginalSize int

	// Header is the original's headers, of which Msg keeps CarriedHeaders; on a parsed
	// letter, every header as stored.
	Header nats.Header
	// Data is the original's body. Msg redacts it when it may hold a secret.
	Data []byte
}

// Msg builds the message of the dead letter: Subject, the carried headers with the dead-letter
// headers set from the fields, and the body, redacted when the reason is
// ReasonSecretInMessage or it names a secret key: secrets never travel on the bus. The caller
// fits it to the server's max payload (Fit) as it publishes it.
func (l Letter) Msg() *nats.Msg {
	m := nats.NewMsg(l.Subject)
	m.Header = CarriedHeaders(l.Header)
	m.Data = l.Data
	if l.Reason == ReasonSecretInMessage || mayHoldSecret(m.Data) {
		// A body refused for another reason (too large, not JSON) may name one too.
		m.Data = schema.Redact(m.Data)
	}
	h := m.Header
	h.Set(HeaderReason, string(l.Reason))
	h.Set(HeaderError, HeaderText(l.Error))
	h.Set(HeaderOriginalSubject, l.OriginalSubject)
	setOrDel(h, HeaderOriginalSequence, l.OriginalSequence != 0, strconv.FormatUint(l.OriginalSequence, 10))
	h.Set(HeaderDeliveries, strconv.FormatUint(l.Deliveries, 10))
	setOrDel(h, HeaderAPIStatus, l.APIStatus != 0, strconv.Itoa(l.APIStatus))
	if l.IdempotencyKey != "" {
		h.Set(HeaderIdempotencyKey, l.IdempotencyKey)
	}
	setOrDel(h, HeaderTruncated, l.Truncated, strconv.Itoa(l.OriginalSize))
	setOrDel(h, jetstream.MsgIDHeader, l.ID != "", l.ID)
	return m
}

func setOrDel(h nats.Header, key string, set bool, value string) {
	if set {
		h.Set(key, value)
	} else {
		h.Del(key)
	}
}

// Parse reads the dead letter stored under subject with headers h and body data. A header that
// is missing, or a number that does not parse, leaves its field zero; Header is h itself.
func Parse(subject string, h nats.Header, data []byte) Letter {
	l := Letter{
		Subject: subject, ID: h.Get(jetstream.MsgIDHeader),
		Reason: Reason(h.Get(HeaderReason)), Error: h.Get(HeaderError),
		OriginalSubject: h.Get(HeaderOriginalSubject), IdempotencyKey: h.Get(HeaderIdempotencyKey),
		Header: h, Data: data,
	}
	l.OriginalSequence, _ = strconv.ParseUint(h.Get(HeaderOriginalSequence), 10, 64)
	l.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	l.APIStatus, _ = strconv.Atoi(h.Get(HeaderAPIStatus))
	if v := h.Get(HeaderTruncated); v != "" {
		l.Truncated = true
		l.OriginalSize, _ = strconv.Atoi(v)
	}
	return l
}

// Redacted reports whether the body is a redacted copy rather than what was sent: always for
// ReasonSecretInMessage, and for any other reason when Msg redacted the body because it named a
// secret key.
func (l Letter) Redacted() bool {
	if l.Reason == ReasonSecretInMessage {
		return true
	}
	red := []byte(strconv.Quote(schema.Redacted))
	if bytes.Equal(bytes.TrimSpace(l.Data), red) {
		return true
	}
	return bytes.Contains(l.Data, red) && mayHoldSecret(l.Data)
}

// mayHoldSecret reports whether a body names a secret key in plain text.
// MayHoldSecret reports whether data names a secret key (schema.SecretKeys) anywhere, even
// escaped: a letter's body is stored redacted then, and whoever shows one redacts it too.
func MayHoldSecret(data []byte) bool { return mayHoldSecret(data) }

func mayHoldSecret(data []byte) bool {
	for _, k := range schema.SecretKeys() {
		if bytes.Contains(data, []byte(k)) {
			return true
		}
	}
	return false
}

// Fit cuts the body of m so that its headers and body fit in maxPayload bytes, and marks a cut
// body with HeaderTruncated, the original size. A body close to the max payload fits in the
// stream, but its dead letter, with the dead-letter headers added, would not. A maxPayload of
// 0 or less leaves m as it is.
func Fit(m *nats.Msg, maxPayload int64) {
	if maxPayload <= 0 || int64(m.Size()-len(m.Subject)-len(m.Reply)) <= maxPayload {
		return
	}
	m.Header.Set(HeaderTruncated, strconv.Itoa(len(m.Data)))
	headers := int64(m.Size() - len(m.Subject) - len(m.Reply) - len(m.Data))
	m.Data = m.Data[:max(0, min(int64(len(m.Data)), maxPayload-headers))]
}
