package schema

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/goccy/go-json/jsontext"
)

// tokParser decodes and validates a body with go-json: its jsontext.Decoder reads the tokens
// (strict RFC 8259 syntax; duplicate names are allowed, because the decoders report them only
// for known fields; UTF-8 is checked once for the whole body, as the scanner does, so that lone
// surrogate escapes stay accepted), and go-json's Unmarshal builds the generic parts.
//
// The syntax error's text, which is part of the contract (dead letters carry it), is the
// scanner's: when go-json reports an error, describeSyntax walks the body again to word it.
type tokParser struct {
	dec  jsontext.Decoder
	buf  bytes.Buffer
	data []byte
	// base is the depth of the value this parser reads within the whole body.
	base  int
	build bool
	// bad is set on a syntax error or a nesting deeper than maxDepth.
	bad      bool
	secret   bool
	problems []Problem
	omitted  int
}

var tokParsers = sync.Pool{New: func() any { return new(tokParser) }}

var tokOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

func (p *tokParser) reset(data []byte, base int, build bool) {
	p.data = data
	p.buf = *bytes.NewBuffer(data)
	p.dec.Reset(&p.buf, tokOptions...)
	p.base, p.build, p.bad, p.secret, p.problems, p.omitted = base, build, false, false, nil, 0
}

// runTokens is run with go-json doing the parsing: the same checks in the same order, with
// parse reading the top-level object.
func runTokens(kind Kind, data []byte, build bool, parse func(p *tokParser) bool) error {
	if len(data) > MaxBodySize {
		return newError(ReasonTooLarge, "", "body is "+strconv.Itoa(len(data))+
			" bytes, more than the limit of "+strconv.Itoa(MaxBodySize))
	}
	if !utf8.Valid(data) {
		return newError(ReasonInvalidJSON, "", "body is not valid UTF-8")
	}
	first := bytes.TrimLeft(data, " \t\r\n")
	if len(first) == 0 {
		if kind == KindCommit {
			return nil
		}
		return newError(ReasonInvalidJSON, "", "body is empty")
	}
	p := tokParsers.Get().(*tokParser)
	defer tokParsers.Put(p)
	p.reset(data, 0, build)
	ok := false
	if first[0] != '{' {
		if p.value() && p.end() {
			return newError(ReasonInvalidJSON, "", "body must be a JSON object")
		}
	} else {
		ok = parse(p) && p.end()
	}
	if !ok {
		return newError(ReasonInvalidJSON, "", describeSyntax(data))
	}
	if p.secret {
		return &Error{Reason: ReasonSecretInMessage, Problems: secretProblems(data)}
	}
	problems := p.problems
	if p.omitted > 0 {
		problems = append(problems, moreProblems(p.omitted))
	}
	if len(problems) > 0 {
		return &Error{Reason: ReasonInvalidMessage, Problems: problems}
	}
	return nil
}

// describeSyntax words the first syntax error of a body that go-json rejected, as the scanner
// does.
func describeSyntax(data []byte) string {
	p := parser{data: data}
	p.ws()
	if p.peek() != '{' {
		p.document()
	} else if p.anyObject() {
		p.end()
	}
	if p.synErr == "" {
		return "invalid JSON"
	}
	return p.synErr
}

func (p *tokParser) fail() bool {
	p.bad = true
	return false
}

// end checks that nothing follows the top-level value.
func (p *tokParser) end() bool {
	if _, err := p.dec.ReadToken(); err != io.EOF {
		return p.fail()
	}
	return true
}

func (p *tokParser) peek() jsontext.Kind { return p.dec.PeekKind() }

// open reads the '{' or '[' that starts the next value and checks the depth.
func (p *tokParser) open() bool {
	if _, err := p.dec.ReadToken(); err != nil {
		return p.fail()
	}
	if p.base+p.dec.StackDepth() > maxDepth {
		return p.fail()
	}
	return true
}

// raw reads the next value whole and checks it for secrets and depth.
func (p *tokParser) raw() (jsontext.Value, bool) {
	depth := p.base + p.dec.StackDepth()
	v, err := p.dec.ReadValue()
	if err != nil {
		return nil, p.fail()
	}
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') && !p.scanned(v, depth) {
		return nil, false
	}
	return v, true
}

// scanned checks an object or array read whole at depth for secret keys and for nesting deeper
// than maxDepth; the common value has neither escapes nor anything like a secret's name, nor
// enough brackets to be too deep, and is not walked.
func (p *tokParser) scanned(v []byte, depth int) bool {
	if bytes.IndexByte(v, '\\') < 0 && !bytes.Contains(v, []byte("ecretKey")) &&
		depth+bytes.Count(v, []byte("{"))+bytes.Count(v, []byte("[")) <= maxDepth {
		return true
	}
	sub := tokParsers.Get().(*tokParser)
	defer tokParsers.Put(sub)
	sub.reset(v, depth, false)
	ok := sub.walk()
	if sub.secret {
		p.secret = true
	}
	if !ok {
		return p.fail()
	}
	return true
}

// walk consumes any value token by token, noting secret keys and checking the depth.
func (p *tokParser) walk() bool {
	switch p.peek() {
	case '{':
		return p.object(func(tokKey) bool { return p.walk() })
	case '[':
		return p.array(func(int) bool { return p.walk() })
	default:
		if err := p.dec.SkipValue(); err != nil {
			return p.fail()
		}
		return true
	}
}

// value consumes any value.
func (p *tokParser) value() bool {
	_, ok := p.raw()
	return ok
}

// tokKey is an object key's content, without the quotes; valid until the next read.
type tokKey struct {
	raw []byte
	esc bool
}

func (p *tokParser) key() (tokKey, bool) {
	v, err := p.dec.ReadValue()
	if err != nil || len(v) < 2 || v[0] != '"' {
		return tokKey{}, p.fail()
	}
	k := tokKey{raw: v[1 : len(v)-1]}
	k.esc = bytes.IndexByte(k.raw, '\\') >= 0
	if p.keyIs(k, secretSDKKey) || p.keyIs(k, secretAuthKey) {
		p.secret = true
	}
	return k, true
}

func (p *tokParser) keyIs(k tokKey, name string) bool {
	if !k.esc {
		return string(k.raw) == name
	}
	return unescapedEquals(k.raw, name)
}

// object consumes the object that comes next, calling member for each key; member must consume
// the value.
func (p *tokParser) object(member func(k tokKey) bool) bool {
	if !p.open() {
		return false
	}
	for {
		switch p.peek() {
		case '}':
			if _, err := p.dec.ReadToken(); err != nil {
				return p.fail()
			}
			return true
		case jsontext.KindInvalid:
			// The error is read again, to be reported.
			_, _ = p.dec.ReadToken()
			return p.fail()
		}
		k, ok := p.key()
		if !ok || !member(k) {
			return false
		}
	}
}

// array consumes the array that comes next, calling elem for each element.
func (p *tokParser) array(elem func(i int) bool) bool {
	if !p.open() {
		return false
	}
	for i := 0; ; i++ {
		switch p.peek() {
		case ']':
			if _, err := p.dec.ReadToken(); err != nil {
				return p.fail()
			}
			return true
		case jsontext.KindInvalid:
			return p.fail()
		}
		if !elem(i) {
			return false
		}
	}
}

// str reads a string value.
func (p *tokParser) str() (content []byte, esc, ok bool) {
	v, err := p.dec.ReadValue()
	if err != nil {
		return nil, false, p.fail()
	}
	content = v[1 : len(v)-1]
	return content, bytes.IndexByte(content, '\\') >= 0, true
}

// stringOf decodes a string's content as go-json does.
func stringOf(content []byte, esc bool) string {
	if !esc {
		return string(content)
	}
	var out string
	_ = json.Unmarshal(bytes.Join([][]byte{{'"'}, content, {'"'}}, nil), &out)
	return out
}

// generic reads any value and returns what go-json gives for it with UseNumber.
func (p *tokParser) generic() (any, bool) {
	v, ok := p.raw()
	if !ok {
		return nil, false
	}
	return decodeAny(v), true
}

// decodeAny decodes a valid JSON value with go-json, numbers as json.Number.
func decodeAny(v []byte) any {
	if v[0] == '{' {
		m, _ := decodeObject(v)
		return m
	}
	var out any
	if useNumber != nil {
		_ = json.UnmarshalOf(v, &out, useNumber)
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	_ = dec.Decode(&out)
	return out
}

func (p *tokParser) problem(at *path, field, msg string) {
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

func (p *tokParser) first(seen *fields, f fields, at *path, name string) bool {
	if *seen&f != 0 {
		p.problem(at, name, msgDuplicate)
		return false
	}
	*seen |= f
	return true
}

func (p *tokParser) requireAll(seen fields, at *path, names ...string) {
	for i, name := range names {
		if seen&(1<<i) == 0 {
			p.problem(at, name, msgRequired)
		}
	}
}

func (p *tokParser) requiredString(at *path, field string, dst *string) bool {
	if p.peek() != '"' {
		p.problem(at, field, msgString)
		return p.value()
	}
	s, esc, ok := p.str()
	if !ok {
		return false
	}
	if len(s) == 0 {
		p.problem(at, field, msgEmpty)
		return true
	}
	if p.build {
		*dst = stringOf(s, esc)
	}
	return true
}

func (p *tokParser) recipients(at *path, dst *[]Recipient) bool {
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

func (p *tokParser) recipient(at *path, r *Recipient) bool {
	if p.peek() != '{' {
		p.problem(at, "", msgObject)
		return p.value()
	}
	var seen fields
	ok := p.object(func(k tokKey) bool {
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
			return p.extraInto(k, &r.Extra)
		}
	})
	if !ok {
		return false
	}
	p.requireAll(seen, at, "id", "email")
	return true
}

// body reads the top-level object of a message of kind: a send or a kind of KindsV2 (decode_v2.go)
// in production, and every kind but track and workflow in the go-json reference of the tests.
func (p *tokParser) body(kind Kind, dst target) bool {
	switch kind {
	case KindSend:
		return p.send(orNew(dst.send))
	case KindIdentify:
		return p.identify(orNew(dst.identify))
	case KindDetach:
		return p.detach(orNew(dst.detach))
	case KindSubscribe:
		return p.subscribe(orNew(dst.subscribe))
	case KindUnsubscribe:
		return p.unsubscribe(orNew(dst.unsubscribe))
	default:
		return p.value()
	}
}

// orNew returns v, or a new T to decode into when v is nil.
func orNew[T any](v *T) *T {
	if v == nil {
		return new(T)
	}
	return v
}

const (
	fNotifID fields = 1 << iota
	fSendProperties
)

// extraInto consumes the value of key k, an unknown key kept as given, into *dst (made on first
// use), as go-json builds a map: a key given twice keeps its last value. Without build it only
// consumes the value.
func (p *tokParser) extraInto(k tokKey, dst *map[string]any) bool {
	if !p.build {
		return p.value()
	}
	name := stringOf(k.raw, k.esc)
	v, ok := p.generic()
	if !ok {
		return false
	}
	if *dst == nil {
		*dst = make(map[string]any)
	}
	(*dst)[name] = v
	return true
}

func (p *tokParser) send(s *Send) bool {
	var seen fields
	ok := p.object(func(k tokKey) bool {
		switch {
		case p.keyIs(k, "notifId"):
			if !p.first(&seen, fNotifID, nil, "notifId") {
				return p.value()
			}
			return p.requiredString(nil, "notifId", &s.NotifID)
		case p.keyIs(k, "properties"):
			if !p.first(&seen, fSendProperties, nil, "properties") {
				return p.value()
			}
			return p.sendProperties(s)
		default:
			return p.value()
		}
	})
	if ok {
		p.requireAll(seen, nil, "notifId", "properties")
	}
	return ok
}

func (p *tokParser) sendProperties(s *Send) bool {
	if p.peek() != '{' {
		p.problem(nil, "properties", msgObject)
		return p.value()
	}
	at := path{field: "properties"}
	var seen fields
	var props map[string]any
	if p.build {
		props = map[string]any{}
	}
	data := p.data
	ok := p.object(func(k tokKey) bool {
		if p.keyIs(k, "recipients") && p.first(&seen, 1, &at, "recipients") {
			start := p.dec.InputOffset()
			if !p.recipients(&at, &s.Recipients) {
				return false
			}
			if p.build {
				// The properties keep the recipients as sent, as generic values.
				raw := bytes.TrimLeft(data[start:p.dec.InputOffset()], " \t\r\n:")
				props["recipients"] = decodeAny(raw)
			}
			return true
		}
		if !p.build {
			return p.value()
		}
		name := stringOf(k.raw, k.esc)
		v, ok := p.generic()
		props[name] = v
		return ok
	})
	if !ok {
		return false
	}
	p.requireAll(seen, &at, "recipients")
	s.Properties = props
	return true
}
