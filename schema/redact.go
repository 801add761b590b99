package schema

import (
	"strconv"
	"unicode/utf8"
)

// Redacted replaces the value of every secret key in the output of Redact. An input that is not
// valid JSON is replaced by it as a whole, as a JSON string.
const Redacted = "[REDACTED]"

// Redact returns a copy of a JSON body in which the value of every sdkSecretKey and authSecretKey,
// at any depth, is the string "[REDACTED]"; everything else is kept byte for byte, so a dead
// letter still shows the producer what it sent. An input that is not valid JSON (as decoders here
// define it: UTF-8, nesting of at most 64 levels) is replaced as a whole by the JSON string
// "[REDACTED]", because a secret cannot be located reliably in it. An empty or blank body has
// nothing to hide and is returned as it is. Unlike the decoders, Redact accepts any top-level
// value and any size.
func Redact(data []byte) []byte {
	if isBlank(data) {
		return append([]byte{}, data...)
	}
	hits, ok := findSecrets(data, 0)
	if !ok {
		return []byte(strconv.Quote(Redacted))
	}
	out := make([]byte, 0, len(data))
	last := 0
	for _, h := range hits {
		out = append(out, data[last:h.start]...)
		out = strconv.AppendQuote(out, Redacted)
		last = h.end
	}
	return append(out, data[last:]...)
}

// SecretKeys returns the keys whose values are credentials of the Notifizz account, in the
// order the documentation names them: a message naming one is refused with
// ReasonSecretInMessage, and Redact hides their values.
func SecretKeys() []string { return []string{secretSDKKey, secretAuthKey} }

func isBlank(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// secretHit is a secret key found in a document: its path and the bounds of its value.
type secretHit struct {
	path       string
	start, end int
}

// secretProblems lists the secret keys of a valid document, in document order.
func secretProblems(data []byte) []Problem {
	hits, _ := findSecrets(data, MaxProblems)
	problems := make([]Problem, 0, min(len(hits), MaxProblems+1))
	for _, h := range hits[:min(len(hits), MaxProblems)] {
		problems = append(problems, Problem{Path: h.path, Message: "secret must not be sent on the bus"})
	}
	if len(hits) > MaxProblems {
		problems = append(problems, moreProblems(len(hits)-MaxProblems))
	}
	return problems
}

// findSecrets walks a document keeping the path to the current value, which the decoders' single
// pass does not do to stay fast; it only runs when that pass has seen a secret, and for Redact.
// The paths of the first maxPaths hits are formatted. It reports false if data is not valid JSON.
func findSecrets(data []byte, maxPaths int) ([]secretHit, bool) {
	if !utf8.Valid(data) {
		return nil, false
	}
	w := secretWalker{p: parser{data: data}, maxPaths: maxPaths}
	w.p.ws()
	if !w.value() || !w.p.end() {
		return nil, false
	}
	return w.hits, true
}

type secretWalker struct {
	p        parser
	path     []step
	hits     []secretHit
	maxPaths int
}

// step is one element of a path: an object key or an array index.
type step struct {
	key   key
	index int // -1 for a key
}

func (w *secretWalker) value() bool {
	p := &w.p
	switch p.peek() {
	case '{':
		return p.object(func(k key) bool {
			if p.isSecret(k) {
				// The value is replaced as a whole, so secrets nested inside it need no entry.
				start := p.pos
				if !p.value() {
					return false
				}
				hit := secretHit{start: start, end: p.pos}
				if len(w.hits) < w.maxPaths {
					hit.path = w.render(step{key: k, index: -1})
				}
				w.hits = append(w.hits, hit)
				return true
			}
			w.path = append(w.path, step{key: k, index: -1})
			ok := w.value()
			w.path = w.path[:len(w.path)-1]
			return ok
		})
	case '[':
		return p.array(func(i int) bool {
			w.path = append(w.path, step{index: i})
			ok := w.value()
			w.path = w.path[:len(w.path)-1]
			return ok
		})
	default:
		return p.value()
	}
}

// render formats the current path followed by last.
func (w *secretWalker) render(last step) string {
	var b []byte
	for _, s := range append(w.path, last) {
		if s.index >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
			continue
		}
		raw := w.p.data[s.key.start:s.key.end]
		if !s.key.esc && len(raw) <= maxPathKey && isPlainKey(raw) {
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, raw...)
			continue
		}
		// Other keys are quoted the Go way, which escapes anything unprintable, so that a path
		// is safe to log and unambiguous ("a.b" is not two keys).
		b = append(b, '[')
		b = append(b, quoteMax(w.p.stringAt(s.key.start, s.key.end, s.key.esc), maxPathKey)...)
		b = append(b, ']')
	}
	return string(b)
}

// maxPathKey is the longest key written in full in a path: a key can be most of a megabyte,
// and the path goes into logs and dead-letter headers.
const maxPathKey = 64

// isPlainKey reports whether a key can be written in a path without quotes.
func isPlainKey(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	for _, c := range raw {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$') {
			return false
		}
	}
	return true
}
