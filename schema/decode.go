package schema

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-json"
)

// MaxBodySize is the largest message body the decoders accept, in bytes; larger bodies are
// rejected with ReasonTooLarge before anything else is looked at. NATS's default max_payload is
// the same, so with default servers the check only matters for servers configured larger.
const MaxBodySize = 1 << 20

// The decoders check, in this order, and stop at the first class that fails:
//
//  1. size: more than MaxBodySize bytes → ReasonTooLarge;
//  2. JSON: strict RFC 8259 syntax, valid UTF-8, one top-level object and nothing after it,
//     nesting of at most 64 levels → ReasonInvalidJSON;
//  3. secrets: a key sdkSecretKey or authSecretKey anywhere in the document, at any depth, even
//     escaped or in a key that a duplicate later overrides → ReasonSecretInMessage, one problem
//     per key;
//  4. the body's fields → ReasonInvalidMessage, with every problem and its field path, in
//     document order (a missing field is reported where its object ends).
//
// Unknown fields are ignored, for forward compatibility. A known field given twice in one object
// is a problem ("duplicate key"): JSON parsers disagree on which copy wins, so a producer in
// another language could mean the other one.
//
// A track, workflow or commit, the messages of the window path, is decoded in a single pass of
// this package's scanner (scan.go), which builds the generic parts (properties, custom recipient
// keys) as it reads them, with the values go-json would give; it is two to nine times faster on
// them than go-json doing the parsing (docs/PERFORMANCE.md). A send is decoded with go-json
// (gojson.go), and so are the kinds of KindsV2 (decode_v2.go). Either way, numbers in the
// generic parts are json.Number and strings are copies: nothing refers to data after the call.

// DecodeTrack decodes and validates the body of a track message.
func DecodeTrack(data []byte) (*Track, error) {
	t := new(Track)
	if err := run(KindTrack, data, target{track: t}); err != nil {
		return nil, err
	}
	return t, nil
}

// DecodeWorkflow decodes and validates the body of a workflow message.
func DecodeWorkflow(data []byte) (*Workflow, error) {
	w := new(Workflow)
	if err := run(KindWorkflow, data, target{workflow: w}); err != nil {
		return nil, err
	}
	return w, nil
}

// DecodeCommit validates the body of a commit message: empty, blank, or a JSON object whose content
// is ignored (but which must not hold secrets).
func DecodeCommit(data []byte) error {
	return run(KindCommit, data, target{})
}

// DecodeSend decodes and validates the body of a send message.
func DecodeSend(data []byte) (*Send, error) {
	s := new(Send)
	if err := run(KindSend, data, target{send: s}); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks the body of a message of the given kind, any of AllKinds, as the decoder of that
// kind does, without building the values. An unknown kind is an *Error with ReasonUnknownSubject
// (from ParseKindAny).
func Validate(kind Kind, data []byte) error {
	if _, err := ParseKindAny(string(kind)); err != nil {
		return err
	}
	return run(kind, data, target{})
}

// target says what run fills: at most one of the pointers is set, none to only validate.
type target struct {
	track       *Track
	workflow    *Workflow
	send        *Send
	identify    *Identify
	detach      *Detach
	subscribe   *Subscribe
	unsubscribe *Unsubscribe
}

// run decodes a body of any kind: a send and the kinds of KindsV2 with go-json (runTokens), the
// kinds of the window path with this package's scanner, which is several times faster on them
// (docs/PERFORMANCE.md).
func run(kind Kind, data []byte, dst target) error {
	return decodeWith(kind, data, dst)
}

// decodeWith is run's implementation; the tests run every test with a go-json-only one too.
var decodeWith = decodeProduction

func decodeProduction(kind Kind, data []byte, dst target) error {
	switch kind {
	case KindTrack, KindWorkflow, KindCommit:
		return runScanner(kind, data, dst)
	}
	return runTokens(kind, data, dst != target{}, func(p *tokParser) bool {
		return p.body(kind, dst)
	})
}

// runScanner decodes a track, workflow or commit in a single pass of the scanner.
func runScanner(kind Kind, data []byte, dst target) error {
	if len(data) > MaxBodySize {
		return newError(ReasonTooLarge, "", "body is "+strconv.Itoa(len(data))+
			" bytes, more than the limit of "+strconv.Itoa(MaxBodySize))
	}
	// Checked once for the whole body rather than per string: utf8.Valid is much faster than any
	// per-byte check in the parser, and invalid UTF-8 outside strings is a syntax error anyway.
	if !utf8.Valid(data) {
		return newError(ReasonInvalidJSON, "", "body is not valid UTF-8")
	}
	p := parser{data: data, build: dst != target{}}
	p.ws()
	if p.pos == len(data) {
		if kind == KindCommit {
			return nil
		}
		return newError(ReasonInvalidJSON, "", "body is empty")
	}
	var ok bool
	if p.peek() != '{' {
		// The rest is still parsed, so that garbage is reported as a syntax error.
		if p.document() {
			return newError(ReasonInvalidJSON, "", "body must be a JSON object")
		}
	} else {
		switch kind {
		case KindTrack:
			t := dst.track
			if t == nil {
				t = new(Track)
			}
			ok = p.track(t)
		case KindWorkflow:
			w := dst.workflow
			if w == nil {
				w = new(Workflow)
			}
			ok = p.workflow(nil, w)
		case KindCommit:
			ok = p.anyObject()
		}
		ok = ok && p.end()
	}
	if !ok {
		return newError(ReasonInvalidJSON, "", p.synErr)
	}
	if p.secret {
		return &Error{Reason: ReasonSecretInMessage, Problems: secretProblems(data)}
	}
	if p.omitted > 0 {
		p.problems = append(p.problems, moreProblems(p.omitted))
	}
	if len(p.problems) > 0 {
		return &Error{Reason: ReasonInvalidMessage, Problems: p.problems}
	}
	return nil
}

// path is the location of a value, kept as a chain on the stack and only formatted into a string
// when there is a problem to report.
type path struct {
	parent *path
	field  string // "" for an array element
	index  int
}

func (at *path) appendTo(b []byte) []byte {
	if at == nil {
		return b
	}
	b = at.parent.appendTo(b)
	if at.field == "" {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(at.index), 10)
		return append(b, ']')
	}
	if len(b) > 0 {
		b = append(b, '.')
	}
	return append(b, at.field...)
}

// problem records a problem with field of the object at (or with at itself when field is "").
func (p *parser) problem(at *path, field, msg string) {
	if len(p.problems) == MaxProblems {
		p.omitted++
		return
	}
	if field != "" {
		at = &path{parent: at, field: field}
	}
	b := at.appendTo(make([]byte, 0, 48))
	p.problems = append(p.problems, Problem{Path: string(b), Message: msg})
}

// Problem messages, shared with the JSON Schemas' wording where they have one.
const (
	msgRequired  = "required"
	msgDuplicate = "duplicate key"
	msgString    = "must be a string"
	msgObject    = "must be an object"
	msgArray     = "must be an array"
	msgEmpty     = "must not be empty"
)

// fields records which known keys of an object were seen.
type fields uint8

// first marks f as seen and reports whether it was the first time; the second time it records a
// duplicate-key problem.
func (p *parser) first(seen *fields, f fields, at *path, name string) bool {
	if *seen&f != 0 {
		p.problem(at, name, msgDuplicate)
		return false
	}
	*seen |= f
	return true
}

func (p *parser) requireAll(seen fields, at *path, names ...string) {
	for i, name := range names {
		if seen&(1<<i) == 0 {
			p.problem(at, name, msgRequired)
		}
	}
}

// requiredString consumes a value that must be a non-empty string and stores it in dst.
func (p *parser) requiredString(at *path, field string, dst *string) bool {
	if p.peek() != '"' {
		p.problem(at, field, msgString)
		return p.value()
	}
	s, e, esc, ok := p.str()
	if !ok {
		return false
	}
	if s == e {
		p.problem(at, field, msgEmpty)
		return true
	}
	if p.build {
		*dst = p.stringAt(s, e, esc)
	}
	return true
}

// stringAt returns the decoded content of the string at [s, e).
func (p *parser) stringAt(s, e int, esc bool) string {
	if !esc {
		return string(p.data[s:e])
	}
	var out string
	// The string is known to be valid, so go-json cannot fail on it.
	_ = json.Unmarshal(p.data[s-1:e+1], &out)
	return out
}

// anyObjectInto consumes an object that must be one and decodes it into dst.
func (p *parser) anyObjectInto(at *path, field string, dst *map[string]any) bool {
	if p.peek() != '{' {
		p.problem(at, field, msgObject)
		return p.value()
	}
	if !p.build {
		return p.anyObject()
	}
	v, ok := p.generic()
	if ok {
		*dst = v.(map[string]any)
	}
	return ok
}

const (
	fEventName fields = 1 << iota
	fProperties
	fWorkflows
	fIdempotencyKey
	fOccurredAt
)

func (p *parser) track(t *Track) bool {
	var seen fields
	ok := p.object(func(k key) bool {
		switch {
		case p.keyIs(k, "eventName"):
			if !p.first(&seen, fEventName, nil, "eventName") {
				return p.value()
			}
			return p.requiredString(nil, "eventName", &t.EventName)
		case p.keyIs(k, "properties"):
			if !p.first(&seen, fProperties, nil, "properties") {
				return p.value()
			}
			return p.anyObjectInto(nil, "properties", &t.Properties)
		case p.keyIs(k, "workflows"):
			if !p.first(&seen, fWorkflows, nil, "workflows") {
				return p.value()
			}
			return p.workflows(&t.Workflows)
		case p.keyIs(k, "idempotencyKey"):
			if !p.first(&seen, fIdempotencyKey, nil, "idempotencyKey") {
				return p.value()
			}
			return p.idempotencyKey(&t.IdempotencyKey)
		case p.keyIs(k, "occurredAt"):
			if !p.first(&seen, fOccurredAt, nil, "occurredAt") {
				return p.value()
			}
			return p.dateTime(nil, "occurredAt", &t.OccurredAt)
		default:
			return p.value()
		}
	})
	if ok {
		p.requireAll(seen, nil, "eventName", "properties")
	}
	return ok
}

// dateTime consumes a value that must be a date-time string (parseDateTime) and stores it in dst.
func (p *parser) dateTime(at *path, field string, dst *time.Time) bool {
	if p.peek() != '"' {
		p.problem(at, field, msgString)
		return p.value()
	}
	s, e, esc, ok := p.str()
	if !ok {
		return false
	}
	v := p.data[s:e]
	if esc {
		v = []byte(p.stringAt(s, e, esc))
	}
	t, ok := parseDateTime(v)
	if !ok {
		p.problem(at, field, msgDateTime)
		return true
	}
	if p.build {
		*dst = t
	}
	return true
}

// MaxIdempotencyKeyLen is the longest idempotencyKey a track message may carry, in bytes.
const MaxIdempotencyKeyLen = 255

// ValidIdempotencyKey reports whether key is acceptable as an idempotency key by the rules of a
// track's idempotencyKey: 1 to MaxIdempotencyKeyLen bytes of printable ASCII. The bridge applies
// them to every key it sends, such as the Nats-Msg-Id of a send message.
func ValidIdempotencyKey(key string) bool {
	return key != "" && len(key) <= MaxIdempotencyKeyLen && printableASCII(key)
}

// idempotencyKey consumes an idempotency key: it travels in an HTTP header (X-Idempotency-Key), so
// it is limited to printable ASCII, which is also what makes its byte limit expressible as the
// character limit (maxLength) of the JSON Schema.
func (p *parser) idempotencyKey(dst *string) bool {
	const field = "idempotencyKey"
	if p.peek() != '"' {
		p.problem(nil, field, msgString)
		return p.value()
	}
	s, e, esc, ok := p.str()
	if !ok {
		return false
	}
	// Without escapes the content is the value, and is checked without a copy.
	v := p.data[s:e]
	if esc {
		v = []byte(p.stringAt(s, e, esc))
	}
	switch {
	case len(v) == 0:
		p.problem(nil, field, msgEmpty)
	case !printableASCII(v):
		p.problem(nil, field, "must contain only printable ASCII characters")
	case len(v) > MaxIdempotencyKeyLen:
		p.problem(nil, field, "must be at most "+strconv.Itoa(MaxIdempotencyKeyLen)+" bytes")
	default:
		if p.build {
			*dst = string(v)
		}
	}
	return true
}

func printableASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (p *parser) workflows(dst *[]Workflow) bool {
	if p.peek() != '[' {
		p.problem(nil, "workflows", msgArray)
		return p.value()
	}
	at := path{field: "workflows"}
	return p.array(func(i int) bool {
		el := path{parent: &at, index: i}
		var w Workflow
		if !p.workflow(&el, &w) {
			return false
		}
		if p.build {
			*dst = append(*dst, w)
		}
		return true
	})
}

const (
	fCampaignID fields = 1 << iota
	fRecipients
)

// workflow consumes a workflow object: the body of a workflow message (at == nil) or an element
// of a track's workflows.
func (p *parser) workflow(at *path, w *Workflow) bool {
	if p.peek() != '{' {
		p.problem(at, "", msgObject)
		return p.value()
	}
	var seen fields
	ok := p.object(func(k key) bool {
		switch {
		case p.keyIs(k, "campaignId"):
			if !p.first(&seen, fCampaignID, at, "campaignId") {
				return p.value()
			}
			return p.requiredString(at, "campaignId", &w.CampaignID)
		case p.keyIs(k, "recipients"):
			if !p.first(&seen, fRecipients, at, "recipients") {
				return p.value()
			}
			return p.recipients(at, &w.Recipients)
		default:
			return p.value()
		}
	})
	if ok {
		p.requireAll(seen, at, "campaignId", "recipients")
	}
	return ok
}

// recipients consumes the recipients array of the object at.
func (p *parser) recipients(at *path, dst *[]Recipient) bool {
	if p.peek() != '[' {
		p.problem(at, "recipients", msgArray)
		return p.value()
	}
	field := path{parent: at, field: "recipients"}
	n := 0
	ok := p.array(func(i int) bool {
		n++
		el := path{parent: &field, index: i}
		var r Recipient
		if !p.recipient(&el, &r) {
			return false
		}
		if p.build {
			*dst = append(*dst, r)
		}
		return true
	})
	if ok && n == 0 {
		p.problem(at, "recipients", msgEmpty)
	}
	return ok
}

const (
	fID fields = 1 << iota
	fEmail
)

func (p *parser) recipient(at *path, r *Recipient) bool {
	if p.peek() != '{' {
		p.problem(at, "", msgObject)
		return p.value()
	}
	var seen fields
	ok := p.object(func(k key) bool {
		switch {
		case p.keyIs(k, "id"):
			if !p.first(&seen, fID, at, "id") {
				return p.value()
			}
			return p.requiredString(at, "id", &r.ID)
		case p.keyIs(k, "email"):
			if !p.first(&seen, fEmail, at, "email") {
				return p.value()
			}
			return p.requiredString(at, "email", &r.Email)
		default:
			if !p.build {
				return p.value()
			}
			// A custom key: its value is built as it is parsed, so that the recipient is read
			// once. A key given twice keeps its last value, as in go-json's maps.
			name := p.stringAt(k.start, k.end, k.esc)
			v, ok := p.generic()
			if !ok {
				return false
			}
			if r.Extra == nil {
				r.Extra = make(map[string]any)
			}
			r.Extra[name] = v
			return true
		}
	})
	if !ok {
		return false
	}
	p.requireAll(seen, at, "id", "email")
	return true
}

// generic consumes any value and returns what go-json gives when it decodes that value into an
// any with UseNumber, as decodeObject does: map[string]any (where a key given twice keeps its
// last value), []any (empty, not nil, for []), json.Number with the number as written, a string
// (a copy, escapes decoded as go-json decodes them), bool or nil. Syntax errors are those of
// value.
func (p *parser) generic() (any, bool) {
	switch c := p.peek(); c {
	case '{':
		m := map[string]any{}
		ok := p.object(func(k key) bool {
			name := p.stringAt(k.start, k.end, k.esc)
			v, ok := p.generic()
			m[name] = v
			return ok
		})
		return m, ok
	case '[':
		a := []any{}
		ok := p.array(func(int) bool {
			v, ok := p.generic()
			a = append(a, v)
			return ok
		})
		return a, ok
	case '"':
		s, e, esc, ok := p.str()
		if !ok {
			return nil, false
		}
		return p.stringAt(s, e, esc), true
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		start := p.pos
		if !p.value() {
			return nil, false
		}
		// value consumed a number: anything else starts with one of the bytes above.
		return json.Number(p.data[start:p.pos]), true
	}
}
