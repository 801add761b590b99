package schema

import (
	"strconv"
)

// maxDepth bounds the nesting of objects and arrays. The parser recurses once per level, so the
// bound keeps a hostile body from exhausting the stack; real messages nest a handful of levels.
const maxDepth = 64

// The keys whose values are credentials of the Notifizz account. They belong in the bridge's
// configuration only: a message carrying one would copy the secret into the stream, its replicas,
// backups and dead letters.
const (
	secretSDKKey  = "sdkSecretKey"
	secretAuthKey = "authSecretKey"
)

// parser is a strict RFC 8259 parser over a whole message body. It validates the syntax, bounds
// the depth and notices secret keys at any depth in a single pass, and the typed decoders in
// decode.go drive it to fill the message structs in that same pass, the generic parts
// (properties, custom recipient keys) included (generic, in decode.go).
//
// Every method that consumes input returns false on a syntax error, after recording it in synErr;
// callers then unwind without doing anything else.
type parser struct {
	data  []byte
	pos   int
	depth int
	// build is false when the caller only validates, so that no value is materialised.
	build bool
	// secret is set when a key named like a secret is seen; the paths are computed afterwards by
	// a second, slower walk, because the common case has none.
	secret   bool
	synErr   string
	problems []Problem
	// omitted counts the problems beyond MaxProblems.
	omitted int
}

// key is the position of an object key's content in the input, without the quotes.
type key struct {
	start, end int
	// esc reports whether the content has escapes, which must be decoded before comparing it.
	esc bool
}

// strSafe marks the bytes that may appear in a string as they are: everything but the quote, the
// backslash and the control characters. Multi-byte UTF-8 is checked once for the whole body.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (p *parser) fail(msg string) bool {
	if p.synErr == "" {
		p.synErr = msg
	}
	return false
}

func (p *parser) failAt(msg string, offset int) bool {
	return p.fail(msg + " at offset " + strconv.Itoa(offset))
}

func (p *parser) eof() bool {
	return p.fail("unexpected end of input")
}

// unexpected reports the byte at p.pos without quoting it: it may be part of a secret.
func (p *parser) unexpected(what string) bool {
	if p.pos >= len(p.data) {
		return p.eof()
	}
	return p.failAt("unexpected character, expected "+what, p.pos)
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the byte at p.pos, or 0 at the end of the input (0 never starts a value).
func (p *parser) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > maxDepth {
		return p.failAt("nesting deeper than "+strconv.Itoa(maxDepth)+" levels", p.pos)
	}
	return true
}

// value consumes any JSON value.
func (p *parser) value() bool {
	if p.pos >= len(p.data) {
		return p.eof()
	}
	switch c := p.data[p.pos]; c {
	case '{':
		return p.anyObject()
	case '[':
		return p.anyArray()
	case '"':
		_, _, _, ok := p.str()
		return ok
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return p.number()
		}
		return p.unexpected("a value")
	}
}

func (p *parser) literal(lit string) bool {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.failAt("invalid literal", p.pos)
	}
	p.pos += len(lit)
	return true
}

// number consumes a number with the grammar of RFC 8259 (no leading zeros, no '+', no bare '.').
func (p *parser) number() bool {
	data, i := p.data, p.pos
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return p.failAt("invalid number", p.pos)
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return p.failAt("invalid number", p.pos)
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return p.failAt("invalid number", p.pos)
		}
		i = j
	}
	p.pos = i
	return true
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// str consumes the string at p.pos, which must be '"', and returns the bounds of its content and
// whether the content has escapes.
func (p *parser) str() (start, end int, esc, ok bool) {
	data := p.data
	i := p.pos + 1
	start = i
	for {
		for i < len(data) && strSafe[data[i]] {
			i++
		}
		if i >= len(data) {
			return 0, 0, false, p.fail("unexpected end of input in a string")
		}
		switch data[i] {
		case '"':
			p.pos = i + 1
			return start, i, esc, true
		case '\\':
			esc = true
			if i+1 >= len(data) {
				return 0, 0, false, p.fail("unexpected end of input in a string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(data)-i < 6 || hex4(data[i+2:i+6]) < 0 {
					return 0, 0, false, p.failAt("invalid escape in a string", i)
				}
				i += 6
			default:
				return 0, 0, false, p.failAt("invalid escape in a string", i)
			}
		default:
			return 0, 0, false, p.failAt("control character in a string", i)
		}
	}
}

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) int {
	v := 0
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		v = v<<4 | int(c)
	}
	return v
}

// key consumes an object key and the colon after it, and notes whether the key is a secret.
func (p *parser) key() (key, bool) {
	if p.peek() != '"' {
		return key{}, p.unexpected("a string key")
	}
	s, e, esc, ok := p.str()
	if !ok {
		return key{}, false
	}
	k := key{start: s, end: e, esc: esc}
	if p.isSecret(k) {
		p.secret = true
	}
	p.ws()
	if p.peek() != ':' {
		return key{}, p.unexpected("':'")
	}
	p.pos++
	p.ws()
	return k, true
}

// keyIs reports whether k, once unescaped, is name. Names are ASCII.
func (p *parser) keyIs(k key, name string) bool {
	raw := p.data[k.start:k.end]
	if !k.esc {
		return string(raw) == name
	}
	return unescapedEquals(raw, name)
}

func (p *parser) isSecret(k key) bool {
	// The length test keeps the common case to one comparison per key.
	if n := k.end - k.start; !k.esc && n != len(secretSDKKey) && n != len(secretAuthKey) {
		return false
	}
	return p.keyIs(k, secretSDKKey) || p.keyIs(k, secretAuthKey)
}

// unescapedEquals compares the content of a syntactically valid JSON string with an ASCII name,
// decoding escapes on the fly, so that "sdk\u0053ecretKey" is recognised as the secret it is
// without allocating.
func unescapedEquals(raw []byte, name string) bool {
	j := 0
	for i := 0; i < len(raw); j++ {
		c := raw[i]
		if c == '\\' {
			switch e := raw[i+1]; e {
			case 'u':
				v := hex4(raw[i+2 : i+6])
				if v >= 0x80 {
					return false
				}
				c, i = byte(v), i+6
			case 'b':
				c, i = '\b', i+2
			case 'f':
				c, i = '\f', i+2
			case 'n':
				c, i = '\n', i+2
			case 'r':
				c, i = '\r', i+2
			case 't':
				c, i = '\t', i+2
			default:
				c, i = e, i+2
			}
		} else {
			i++
		}
		if j >= len(name) || name[j] != c {
			return false
		}
	}
	return j == len(name)
}

// object consumes the object at p.pos, which must be '{', calling member for each key; member
// must consume the value.
func (p *parser) object(member func(k key) bool) bool {
	if !p.enter() {
		return false
	}
	p.pos++
	p.ws()
	if p.peek() == '}' {
		p.pos++
		p.depth--
		return true
	}
	for {
		k, ok := p.key()
		if !ok || !member(k) {
			return false
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
			p.ws()
		case '}':
			p.pos++
			p.depth--
			return true
		default:
			return p.unexpected("',' or '}'")
		}
	}
}

// array consumes the array at p.pos, which must be '[', calling elem for each element; elem must
// consume the value.
func (p *parser) array(elem func(i int) bool) bool {
	if !p.enter() {
		return false
	}
	p.pos++
	p.ws()
	if p.peek() == ']' {
		p.pos++
		p.depth--
		return true
	}
	for i := 0; ; i++ {
		if !elem(i) {
			return false
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
			p.ws()
		case ']':
			p.pos++
			p.depth--
			return true
		default:
			return p.unexpected("',' or ']'")
		}
	}
}

// anyObject and anyArray are object and array without callbacks, for the generic parts of a
// document, which are most of its bytes.
func (p *parser) anyObject() bool {
	if !p.enter() {
		return false
	}
	p.pos++
	p.ws()
	if p.peek() == '}' {
		p.pos++
		p.depth--
		return true
	}
	for {
		if _, ok := p.key(); !ok || !p.value() {
			return false
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
			p.ws()
		case '}':
			p.pos++
			p.depth--
			return true
		default:
			return p.unexpected("',' or '}'")
		}
	}
}

func (p *parser) anyArray() bool {
	if !p.enter() {
		return false
	}
	p.pos++
	p.ws()
	if p.peek() == ']' {
		p.pos++
		p.depth--
		return true
	}
	for {
		if !p.value() {
			return false
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
			p.ws()
		case ']':
			p.pos++
			p.depth--
			return true
		default:
			return p.unexpected("',' or ']'")
		}
	}
}

// document consumes a whole body holding one value, surrounded by optional whitespace.
func (p *parser) document() bool {
	p.ws()
	if !p.value() {
		return false
	}
	return p.end()
}

// end checks that only whitespace follows the top-level value.
func (p *parser) end() bool {
	p.ws()
	if p.pos != len(p.data) {
		return p.failAt("unexpected data after the top-level value", p.pos)
	}
	return true
}
