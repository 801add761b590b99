package schema

import (
	"errors"
	"strconv"
	"strings"
)

// Reason is the machine-readable class of a rejected message. The bridge writes the same codes into
// the Notifizz-Dlq-Reason header of dead letters, so they are part of the contract and never change.
type Reason string

// The reasons this package reports. The bridge has further reasons of its own (api_rejected,
// missing_track, ...) that concern processing rather than the message itself.
const (
	ReasonInvalidJSON     Reason = "invalid_json"
	ReasonInvalidMessage  Reason = "invalid_message"
	ReasonSecretInMessage Reason = "secret_in_message"
	ReasonTooLarge        Reason = "too_large"
	ReasonUnknownSubject  Reason = "unknown_subject"
)

// Problem is one thing wrong with a message. Path names the field in the JSON document, in the form
// workflows[1].recipients[0].email (keys that are not plain identifiers are written ["like.this"]);
// it is empty when the problem concerns the body as a whole. Message never quotes a value of the
// body, so that errors can be logged without leaking what a producer put there by mistake.
type Problem struct {
	Path    string
	Message string
}

// String formats the problem as "path: message", or as the bare message when there is no path.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// MaxProblems bounds the problems an Error lists. A hostile megabyte of [7,7,7,...] would
// otherwise turn into hundreds of thousands of problems, tens of megabytes of memory and an error
// text too long for a log line or a dead-letter header. When there are more, the last problem
// (with no path) says how many were left out.
const MaxProblems = 100

// Error is the error of every decoder, validator and subject function of this package. A decoder
// reports every problem it finds, in document order, so that a producer fixes them all at once
// rather than one dead letter at a time.
type Error struct {
	Reason   Reason
	Problems []Problem
}

// Error returns the reason followed by the problems, e.g.
// "invalid_message: workflows[1].recipients[0].email: required; properties: must be an object".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Reason))
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ReasonOf returns the reason of the first *Error in err's chain, or "" if there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// moreProblems is the problem that stands for n problems left out.
func moreProblems(n int) Problem {
	return Problem{Message: strconv.Itoa(n) + " more problems not listed"}
}

// newError returns an *Error with a single problem.
func newError(reason Reason, path, message string) *Error {
	return &Error{Reason: reason, Problems: []Problem{{Path: path, Message: message}}}
}
