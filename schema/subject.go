package schema

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPrefix is the first part of every subject unless configured otherwise.
const DefaultPrefix = "notifizz"

// MaxKeyLen is the longest event key, in bytes. The key is also part of dead-letter subjects and of
// the default Nats-Msg-Id, so it is kept well below NATS's control-line limit.
const MaxKeyLen = 255

// ValidateKey reports whether key can be the last token of a subject: non-empty, at most
// MaxKeyLen bytes of valid UTF-8, and free of '.', the wildcards '*' and '>', whitespace and
// control characters. A '.' would make the key two tokens, so the message would match no stream
// subject (<prefix>.<kind>.*), and a wildcard would make a publish fail or a subscription match
// other keys. The error is an *Error with ReasonUnknownSubject.
func ValidateKey(key string) error {
	// The length is checked first so that an oversized key is rejected without scanning it.
	if len(key) > MaxKeyLen {
		return newError(ReasonUnknownSubject, "key", "must be at most "+strconv.Itoa(MaxKeyLen)+" bytes")
	}
	if msg := tokenProblem(key); msg != "" {
		return newError(ReasonUnknownSubject, "key", msg)
	}
	return nil
}

// ValidatePrefix reports whether prefix can start a subject. It may have several tokens
// ("acme.notifizz"), each of which must be a valid token as for ValidateKey (but without the
// length limit). The error is an *Error with ReasonUnknownSubject.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return newError(ReasonUnknownSubject, "prefix", "must not be empty")
	}
	// strings.SplitSeq walks the tokens without allocating: ParseSubject runs this for every
	// message the bridge receives.
	i := 0
	for tok := range strings.SplitSeq(prefix, ".") {
		i++
		if msg := tokenProblem(tok); msg != "" {
			return newError(ReasonUnknownSubject, "prefix", "token "+strconv.Itoa(i)+" "+msg)
		}
	}
	return nil
}

// tokenProblem returns what is wrong with tok as a single subject token, or "".
func tokenProblem(tok string) string {
	if tok == "" {
		return "must not be empty"
	}
	for i := 0; i < len(tok); {
		c := tok[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '.':
				return "must be a single subject token (no '.')"
			case c == '*' || c == '>':
				return "must not contain the wildcards '*' or '>'"
			case c <= ' ' || c == 0x7f:
				return "must not contain whitespace or control characters"
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(tok[i:])
		if r == utf8.RuneError && n == 1 {
			return "must be valid UTF-8"
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "must not contain whitespace or control characters"
		}
		i += n
	}
	return ""
}

// Subject returns <prefix>.<kind>.<key> after validating each part; kind may be any of AllKinds.
func Subject(prefix string, kind Kind, key string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	if _, err := ParseKindAny(string(kind)); err != nil {
		return "", err
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return prefix + "." + string(kind) + "." + key, nil
}

// ParseSubject splits a subject of the form <prefix>.<kind>.<key> into its kind, one of AllKinds
// (the bridge consumes every kind, and dead-letters those its API profile cannot express), and
// its key. The
// error is an *Error with ReasonUnknownSubject: a message on such a subject cannot be processed,
// whatever its body.
func ParseSubject(prefix, subject string) (Kind, string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", "", err
	}
	// Cut the prefix and its dot separately, so that no prefix+"." is built per message.
	rest, ok := strings.CutPrefix(subject, prefix)
	if ok {
		rest, ok = strings.CutPrefix(rest, ".")
	}
	if !ok {
		return "", "", newError(ReasonUnknownSubject, "subject",
			quote(subject)+" does not start with "+quote(prefix+"."))
	}
	kindTok, key, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", newError(ReasonUnknownSubject, "subject", quote(subject)+" has no key token")
	}
	kind, err := ParseKindAny(kindTok)
	if err != nil {
		return "", "", err
	}
	if err := ValidateKey(key); err != nil {
		return "", "", err
	}
	return kind, key, nil
}

// StreamSubjects returns the subjects a stream must capture to receive every kind of AllKinds
// under prefix, one per kind (<prefix>.<kind>.*), rather than <prefix>.>, so that the stream does not also
// capture unrelated subjects that share the prefix, such as the default dead-letter prefix
// notifizz.dlq.
func StreamSubjects(prefix string) []string {
	subjects := make([]string, len(AllKinds))
	for i, k := range AllKinds {
		subjects[i] = prefix + "." + string(k) + ".*"
	}
	return subjects
}

// quote quotes s for an error message, escaping anything unprintable, and shortens long inputs so
// that an error stays readable in a log line.
func quote(s string) string { return quoteMax(s, 300) }

// quoteMax quotes s, cut to at most max bytes (at a rune boundary) and followed by "..." when longer.
func quoteMax(s string, max int) string {
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
