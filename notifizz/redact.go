package notifizz

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// redacted replaces secrets wherever text might otherwise carry them.
const redacted = "[redacted]"

// maxUnit is the longest text one byte of a secret can take in an echo: an
// escape such as \uD83D\uDE00 or &#x0001F600; stands for up to 4 bytes.
const maxUnit = 12

// secretForms returns what text is searched for to find secrets: each one as
// it is, and as it sits inside a JSON string with and without HTML escaping
// (this client's encoder escapes <, > and & like encoding/json; other
// encoders do not). Each form is matched in any one level of escaping (see
// matchEnd), so an API that echoes the request body inside a JSON string,
// escaping it a second time, is covered as well. Empty secrets are skipped,
// since they would match everywhere.
func secretForms(secrets ...string) []string {
	var forms []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		forms = append(forms, s)
		html, _ := json.Marshal(s)
		var plain bytes.Buffer
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		for _, q := range [][]byte{html, bytes.TrimSuffix(plain.Bytes(), []byte("\n"))} {
			if f := string(q[1 : len(q)-1]); !slices.Contains(forms, f) {
				forms = append(forms, f)
			}
		}
	}
	return forms
}

// Redact returns text with every occurrence of each secret replaced by mark,
// whatever form the occurrence takes: the secret as it is, or with any of its
// bytes escaped the way JSON (\" \\ \/ \n \u003c \u003C, surrogate pairs), HTML
// (&lt; &quot; &#34; &#x22;) or URLs (%3C, + for a space) escape them, also
// when the JSON escaping is applied twice. It is what the client applies to
// every piece of API text it quotes in an error, and what a tool that prints
// the client's requests (the bridge's dry run) applies to them.
func Redact(text, mark string, secrets ...string) string {
	return scrub(text, len(text), mark, secretForms(secrets...))
}

// scrub copies text, replacing with mark every match of a form (see
// matchEnd) that starts before limit; text past limit is dropped, except the
// rest of a match that starts before it. Where several forms match, the
// longest span is replaced.
func scrub(text string, limit int, mark string, forms []string) string {
	var b strings.Builder
	for i := 0; i < len(text) && i < limit; {
		end := -1
		for _, f := range forms {
			end = max(end, matchEnd(text, i, f))
		}
		if end > i {
			b.WriteString(mark)
			i = end
			continue
		}
		b.WriteByte(text[i])
		i++
	}
	return b.String()
}

// matchEnd returns the end of the longest span of text starting at i that
// spells form, each byte written as itself or through one escape (see
// unescape), or -1 if there is none.
func matchEnd(text string, i int, form string) int {
	if form == "" || i >= len(text) {
		return -1
	}
	// Most positions cannot start a match; they are passed over at once.
	if c := text[i]; c != form[0] && c != '\\' && c != '&' && c != '%' && c != '+' {
		return -1
	}
	// A walk over (position in text, bytes of form spelled so far). A byte
	// such as \ can be read as itself or as the start of an escape, so the
	// walk may branch; seen keeps it linear in the length of the span.
	type state struct{ j, k int }
	best := -1
	var seen map[state]bool
	stack := []state{{i, 0}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.k == len(form) {
			best = max(best, s.j)
			continue
		}
		if s.j >= len(text) || seen[s] {
			continue
		}
		n := len(stack)
		if text[s.j] == form[s.k] {
			stack = append(stack, state{s.j + 1, s.k + 1})
		}
		if dec, size := unescape(text[s.j:]); size > 0 && strings.HasPrefix(form[s.k:], dec) {
			stack = append(stack, state{s.j + size, s.k + len(dec)})
		}
		// Until the first branch the walk is one path and cannot meet a
		// state twice; from there on every state is noted.
		if seen == nil && len(stack) > n+1 {
			seen = make(map[state]bool)
		}
		if seen != nil {
			seen[s] = true
		}
	}
	return best
}

// unescape decodes the escape that s starts with, if any: a JSON escape, an
// HTML character reference or a percent-escape. It returns the bytes the
// escape stands for and its length in s, or a length of 0.
func unescape(s string) (string, int) {
	switch s[0] {
	case '\\':
		return unescapeJSON(s)
	case '&':
		return unescapeHTML(s)
	case '%':
		if len(s) >= 3 {
			if v, err := strconv.ParseUint(s[1:3], 16, 8); err == nil {
				return string([]byte{byte(v)}), 3
			}
		}
	case '+':
		return " ", 1
	}
	return "", 0
}

func unescapeJSON(s string) (string, int) {
	if len(s) < 2 {
		return "", 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return s[1:2], 2
	case 'b':
		return "\b", 2
	case 'f':
		return "\f", 2
	case 'n':
		return "\n", 2
	case 'r':
		return "\r", 2
	case 't':
		return "\t", 2
	case 'u':
		r, ok := hex4(s[2:])
		if !ok {
			return "", 0
		}
		if !utf16.IsSurrogate(r) {
			return string(r), 6
		}
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if r2, ok := hex4(s[8:]); ok {
				if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
					return string(r), 12
				}
			}
		}
	}
	return "", 0
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(s[:4], 16, 16)
	return rune(v), err == nil
}

var htmlEntities = map[string]string{"lt": "<", "gt": ">", "amp": "&", "quot": `"`, "apos": "'"}

func unescapeHTML(s string) (string, int) {
	semi := strings.IndexByte(s[:min(len(s), maxUnit)], ';')
	if semi < 2 {
		return "", 0
	}
	name := s[1:semi]
	if name[0] != '#' {
		if v, ok := htmlEntities[strings.ToLower(name)]; ok {
			return v, semi + 1
		}
		return "", 0
	}
	base, digits := 10, name[1:]
	if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
		base, digits = 16, digits[1:]
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil || v == 0 || v > utf8.MaxRune {
		return "", 0
	}
	return string(rune(v)), semi + 1
}
