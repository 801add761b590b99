package schema

import (
	"strconv"
	"time"
)

// MaxOccurredAtSkew is how far in the future a track's occurredAt may be, for the clock skew
// between a producer and the bridge; the Notifizz API refuses dates further ahead.
const MaxOccurredAtSkew = 5 * time.Minute

// CheckOccurredAt checks a track's occurredAt against the time now the message was received: a
// date more than MaxOccurredAtSkew after now is an *Error with ReasonInvalidMessage at field
// occurredAt. A zero t (no occurredAt) is accepted. The decoders do not apply this rule, because
// it depends on when the message is judged rather than on its body.
func CheckOccurredAt(t, now time.Time) error {
	if t.IsZero() || !t.After(now.Add(MaxOccurredAtSkew)) {
		return nil
	}
	return newError(ReasonInvalidMessage, "occurredAt",
		"must not be more than "+strconv.Itoa(int(MaxOccurredAtSkew/time.Minute))+" minutes in the future")
}

// msgDateTime is the problem of a date that is not in the syntax parseDateTime accepts.
const msgDateTime = "must be an RFC 3339 date-time with a time zone, e.g. 2026-03-01T12:00:00.000Z"

// parseDateTime parses an RFC 3339 date-time as time.RFC3339Nano does, in the strict form the
// JSON Schemas' pattern describes: YYYY-MM-DDTHH:MM:SS, an optional fraction of any number of
// digits, then Z or ±HH:MM, with an uppercase T and Z (time.Parse refuses lowercase ones) and
// no leap second (time.Parse refuses second 60). A date without a zone is refused: it would mean
// a different instant on every machine. An offset of +00:00 is UTC; other offsets keep a fixed
// zone, independent of the machine's local zone.
func parseDateTime[T string | []byte](s T) (time.Time, bool) {
	if !dateTimeShape(s) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(time.RFC3339Nano, string(s), time.UTC)
	return t, err == nil
}

// dateTimeShape reports whether s has the shape
// ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$
// with an offset of at most 23:59; time.Parse checks the ranges of the other fields.
func dateTimeShape[T string | []byte](s T) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(layout)+1 {
		return false
	}
	if !shapeIs(s[:len(layout)], layout) {
		return false
	}
	rest := s[len(layout):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && shapeIs(rest[1:], "dd:dd"):
		return (rest[1]-'0')*10+(rest[2]-'0') <= 23 && (rest[4]-'0')*10+(rest[5]-'0') <= 59
	}
	return false
}

// shapeIs reports whether s matches layout, where 'd' stands for any digit and every other
// byte for itself.
func shapeIs[T string | []byte](s T, layout string) bool {
	if len(s) != len(layout) {
		return false
	}
	for i := 0; i < len(layout); i++ {
		if layout[i] == 'd' {
			if !isDigit(s[i]) {
				return false
			}
		} else if s[i] != layout[i] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isoTime formats t as the SDKs send a date (JavaScript's Date.toISOString): UTC, milliseconds, Z.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
