package bridge

import (
	"log/slog"

	"github.com/nats-io/nats.go"
)

// ClientOptions are the options of a NATS connection the bridge consumes through, named name.
// It reconnects forever: JetStream keeps the messages during an outage and the consumer resumes
// after it, so the bridge waits for NATS rather than exiting. Every change of connection state
// and every asynchronous error is logged to log.
func ClientOptions(name string, log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close at exit
			}
			log.Warn("nats disconnected; reconnecting", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats error", "error", err)
		}),
	}
}

// Connect connects to url with ClientOptions(name, log) followed by extra (credentials, an
// in-process server), which may override them.
func Connect(url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append(ClientOptions(name, log), extra...)...)
}
