package main

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

// newLogger returns the daemon's logger. It writes to w (stderr), because stdout carries the
// dry-run output and nothing else.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel(), ReplaceAttr: durationText}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationText writes every duration as Go writes one ("810ms", "1m30s"), as the config file
// does: the JSON handler would write nanoseconds, beside settings written as text.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// routeStdLog sends what the standard library's default logger prints through l, so that it
// comes out in the daemon's format: github.com/synadia-io/orbit.go/pcgroups logs its warnings
// and errors that way. A line that starts with "Error" is logged at error level, any other at
// warn level (nothing else in the process prints there in normal operation).
func routeStdLog(l *slog.Logger) {
	stdlog.SetFlags(0)
	stdlog.SetOutput(stdLogWriter{l.With("component", "stdlog")})
}

// stdLogWriter logs each write of the standard logger (one line) as one record.
type stdLogWriter struct{ log *slog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasPrefix(line, "Error") {
		level = slog.LevelError
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}

// serverLogger routes the embedded NATS server's log through slog. The server's notices (its
// start-up banner among them) go to debug, so that the daemon's own start line is what an
// operator sees at info. A fatal error is kept so that start-up can report it: the server's
// own logger would end the process instead.
type serverLogger struct {
	log     *slog.Logger
	fatal   atomic.Pointer[string]
	started atomic.Bool // after start-up, nobody reads fatal, so a fatal error is logged
}

var _ server.Logger = (*serverLogger)(nil)

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(msg(format, v)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(msg(format, v)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(msg(format, v)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(msg(format, v)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(msg(format, v)) }

func (l *serverLogger) Fatalf(format string, v ...any) {
	m := msg(format, v)
	if !l.fatal.CompareAndSwap(nil, &m) || l.started.Load() {
		l.log.Error(m)
	}
}

// fatalError returns the first fatal message the server logged, if any.
func (l *serverLogger) fatalError() (string, bool) {
	if m := l.fatal.Load(); m != nil {
		return *m, true
	}
	return "", false
}

func msg(format string, v []any) string {
	return strings.TrimSpace(fmt.Sprintf(format, v...))
}
