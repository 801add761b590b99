// Package natstest starts embedded JetStream servers for the tests and the load command: on
// loopback, on a random port unless told otherwise, with their store in a directory of their
// own, and shut down at the end of a test. A test restarts a server on the same store by
// stopping it (Stop) and running one with the same options on its port (Port).
package natstest

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadyTimeout is how long Run waits for a server to accept connections.
const ReadyTimeout = 10 * time.Second

// Options returns what every embedded server shares: JetStream on loopback, a random client
// port, no logs, no signal handling, and its store in dir.
func Options(dir string) *server.Options {
	return &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	}
}

// Start starts a server with opts and waits up to ready until it accepts connections. The
// caller shuts it down.
func Start(opts *server.Options, ready time.Duration) (*server.Server, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(ready) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS server not ready")
	}
	return srv, nil
}

// Run starts a server with opts, fails tb when it does not accept connections within
// ReadyTimeout, and shuts it down at the end of the test, waiting until it has stopped.
func Run(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	srv, err := Start(opts, ReadyTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Stop(srv) })
	return srv
}

// Stop shuts srv down and waits until it has stopped.
func Stop(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Port is the client port srv listens on.
func Port(srv *server.Server) int { return srv.Addr().(*net.TCPAddr).Port }

// Connect connects tb to url with opts, and closes the connection at the end of the test.
func Connect(tb testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}
