package notifizz

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/goccy/go-json"
)

// maxPooledBuffer keeps an occasional huge request from pinning its buffer
// in the pool for the life of the process.
const maxPooledBuffer = 256 << 10

// encodeState is a reusable buffer with a JSON encoder writing into it. The
// track body is on the bridge's hot path, so its fixed parts are appended by
// hand and only caller-supplied values (properties, custom recipient keys) go
// through the JSON encoder.
type encodeState struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encodePool = sync.Pool{New: func() any {
	e := new(encodeState)
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

func getEncodeState() *encodeState {
	e := encodePool.Get().(*encodeState)
	e.buf.Reset()
	return e
}

func putEncodeState(e *encodeState) {
	if e.buf.Cap() > maxPooledBuffer {
		return
	}
	encodePool.Put(e)
}

// value appends the JSON encoding of v. The encoder escapes HTML characters
// like appendString does, so the whole body follows one convention.
func (e *encodeState) value(v any) error {
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	// Encode terminates every value with a newline; the body is one line.
	e.buf.Truncate(e.buf.Len() - 1)
	return nil
}

// raw appends s verbatim.
func (e *encodeState) raw(s string) { e.buf.WriteString(s) }

// str appends s as a JSON string, without allocating when the buffer has room.
func (e *encodeState) str(s string) {
	e.buf.Write(appendString(e.buf.AvailableBuffer(), s))
}

// object appends m, writing {} for a nil or empty map: the API wants an
// object there, never null.
func (e *encodeState) object(m map[string]any) error {
	if len(m) == 0 {
		e.raw("{}")
		return nil
	}
	return e.value(m)
}

// trackBody appends the body of POST /events/track with its keys in the
// order the official SDK sends them.
func (e *encodeState) trackBody(req *TrackRequest, sdkSecretKey, idempotencyKey string) error {
	e.raw(`{"eventName":`)
	e.str(req.EventName)
	e.raw(`,"properties":`)
	if err := e.object(req.Properties); err != nil {
		return err
	}
	e.raw(`,"workflows":[`)
	for i := range req.Workflows {
		if i > 0 {
			e.raw(",")
		}
		if err := e.workflow(&req.Workflows[i]); err != nil {
			return err
		}
	}
	e.raw(`],"sdkSecretKey":`)
	e.str(sdkSecretKey)
	e.raw(`,"idempotencyKey":`)
	e.str(idempotencyKey)
	e.raw("}")
	return nil
}

// trackBodyV2 appends the body of POST /events/track of the v2 API, keys in
// the order the SDKs 2.x send them.
func (e *encodeState) trackBodyV2(req *TrackRequest, sdkSecretKey, idempotencyKey string) error {
	e.raw(`{"eventName":`)
	e.str(req.EventName)
	e.raw(`,"properties":`)
	if err := e.object(req.Properties); err != nil {
		return err
	}
	e.raw(`,"sdkSecretKey":`)
	e.str(sdkSecretKey)
	e.raw(`,"idempotencyKey":`)
	e.str(idempotencyKey)
	if !req.OccurredAt.IsZero() {
		e.raw(`,"occurredAt":`)
		e.str(isoTime(req.OccurredAt))
	}
	e.raw("}")
	return nil
}

// workflow appends w the way its json tags would, but with an empty array
// rather than null for missing recipients.
func (e *encodeState) workflow(w *Workflow) error {
	e.raw(`{"campaignId":`)
	e.str(w.CampaignID)
	e.raw(`,"recipients":[`)
	for i := range w.Recipients {
		if i > 0 {
			e.raw(",")
		}
		if err := e.recipient(&w.Recipients[i]); err != nil {
			return err
		}
	}
	e.raw("]}")
	return nil
}

// recipient appends r as {"id":..,"email":..,<custom keys sorted>}. Custom
// keys named id or email are skipped so that they can never override the
// real ones.
func (e *encodeState) recipient(r *Recipient) error {
	e.raw(`{"id":`)
	e.str(r.ID)
	e.raw(`,"email":`)
	e.str(r.Email)
	if len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			if k != "id" && k != "email" {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			e.raw(",")
			e.str(k)
			e.raw(":")
			if err := e.value(r.Extra[k]); err != nil {
				return err
			}
		}
	}
	e.raw("}")
	return nil
}

// htmlSafe marks the ASCII bytes that need no escaping in a JSON string.
// <, > and & are escaped as encoding/json does by default, so that a body
// pasted into HTML (a dashboard, a log viewer) cannot inject markup.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped like encoding/json:
// control characters, quotes, backslashes, HTML characters, U+2028 and U+2029
// are escaped, and invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but they end a line in JavaScript source.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// payload is an encoded request body shared by every attempt of one call.
// Its buffer returns to the pool when the call releases it. No attempt hands
// the buffer itself to the transport, which may read a request body after
// RoundTrip has returned: each sends a copy (see Client.roundTrip).
type payload struct {
	e    *encodeState
	refs atomic.Int32
}

func newPayload(e *encodeState) *payload {
	p := &payload{e: e}
	p.refs.Store(1)
	return p
}

func (p *payload) bytes() []byte { return p.e.buf.Bytes() }

// release drops the call's own reference.
func (p *payload) release() {
	if p.refs.Add(-1) == 0 {
		putEncodeState(p.e)
	}
}
