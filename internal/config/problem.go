package config

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the dotted key the problem concerns, e.g. "coalesce.delay". It is empty when the
	// problem is the file's shape rather than one key's value (a syntax error, an unknown or
	// repeated key), whose message then says where.
	Key string
	// Line is the line of Key in the file, or of the offending node; 0 when the key is not in
	// the file (a default) or there is no file.
	Line int
	// Msg says what is wrong, without the line and the key.
	Msg string

	err error // a sentinel the problem stands for, for errors.Is
}

// Error returns "line <Line>: <Key>: <Msg>", leaving out what is not known.
func (p Problem) Error() string {
	var sb strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&sb, "line %d: ", p.Line)
	}
	if p.Key != "" {
		sb.WriteString(p.Key)
		sb.WriteString(": ")
	}
	sb.WriteString(p.Msg)
	return sb.String()
}

// Unwrap gives errors.Is access to the sentinel a problem stands for, such as ErrNoSDKKey.
func (p Problem) Unwrap() error { return p.err }

// Problems is every problem found in a configuration, reported together.
type Problems []Problem

// Error lists the problems, one per line after the first when there are several.
func (ps Problems) Error() string {
	var sb strings.Builder
	if len(ps) == 1 {
		sb.WriteString("invalid configuration: ")
		sb.WriteString(ps[0].Error())
		return sb.String()
	}
	fmt.Fprintf(&sb, "invalid configuration, %d problems:", len(ps))
	for _, p := range ps {
		sb.WriteString("\n  ")
		sb.WriteString(p.Error())
	}
	return sb.String()
}

// Unwrap gives errors.Is and errors.As access to each problem.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// ErrNoSDKKey is why run refuses to start without notifizz.sdkSecretKey: every API call would
// be rejected, and each rejection would dead-letter an event. RequireSDKKey returns it as the
// Problem of that key.
var ErrNoSDKKey = errors.New("is empty, and run needs it to call the Notifizz API: " +
	"set it (e.g. sdkSecretKey: ${NOTIFIZZ_SDK_SECRET_KEY}) or run with --dry-run to print the calls instead")

// ErrEmbeddedNoAuth is why run refuses an embedded server that listens beyond loopback without
// authentication, unless nats.embedded.allowNoAuth is true. RequireEmbeddedAuth returns it as the
// Problem of nats.embedded.listen.
var ErrEmbeddedNoAuth = errors.New("the embedded server listens beyond loopback without authentication")
