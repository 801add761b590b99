package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

// embeddedReadyTimeout bounds how long the embedded server may take to listen; JetStream
// recovering a large store is the slow part.
const embeddedReadyTimeout = 30 * time.Second

// embeddedServer is the running embedded server and the lock on its store directory, which it
// holds until the server has shut down.
type embeddedServer struct {
	*server.Server
	lock *os.File
}

// startEmbedded starts the in-process JetStream server that stands in for an external one when
// nats.url is empty. Its client port is a real TCP listener, so that the publish command and the
// nats CLI can talk to it; the daemon itself connects in-process. It refuses to start when
// another process holds the store directory (see lockStore).
func startEmbedded(cfg config.Embedded, log *slog.Logger) (*embeddedServer, error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen: bad port %q", portText)
	}
	lock, err := lockStore(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := startNATS(host, port, cfg, log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &embeddedServer{Server: srv, lock: lock}, nil
}

// startNATS starts the embedded server on host:port with its store in cfg.StoreDir.
func startNATS(host string, port int, cfg config.Embedded, log *slog.Logger) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		// A fixed name keeps the JetStream store's identity stable across restarts.
		ServerName: "notifizz-bridge",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		// The daemon owns signal handling; the server must not exit on SIGTERM by itself
		// before the bridge has flushed and acked.
		NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	sl := &serverLogger{log: log.With("component", "nats-server")}
	srv.SetLogger(sl, log.Enabled(context.Background(), slog.LevelDebug), false)
	// Start returns once the client listener is set up or has failed; failures are reported
	// through Fatalf, which serverLogger records instead of exiting.
	srv.Start()
	if m, failed := sl.fatalError(); failed {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server on %s: %s%s", cfg.Listen, m, inUseHint(m, "nats.embedded.listen", "NOTIFIZZ_BRIDGE_NATS_LISTEN"))
	}
	if !srv.ReadyForConnections(embeddedReadyTimeout) {
		srv.Shutdown()
		if m, failed := sl.fatalError(); failed {
			return nil, fmt.Errorf("embedded NATS server on %s: %s", cfg.Listen, m)
		}
		return nil, fmt.Errorf("embedded NATS server on %s: not ready after %s", cfg.Listen, embeddedReadyTimeout)
	}
	sl.started.Store(true)
	return srv, nil
}

// inUseHint is what to do about a listen address in use, when msg says that is the problem.
func inUseHint(msg, key, envVar string) string {
	if !strings.Contains(msg, "address already in use") {
		return ""
	}
	return "; another notifizz-bridge (or another server) may be running there: stop it, or set " + key +
		" to another address (config.example.yaml reads it from " + envVar + ")"
}

// stopEmbedded shuts the embedded server down and waits until its store is closed, so that the
// next start finds it consistent, and only then lets go of the store directory.
func stopEmbedded(srv *embeddedServer) {
	srv.Shutdown()
	srv.WaitForShutdown()
	srv.lock.Close()
}

// embeddedClientURL is the address another process uses to reach the embedded server: a
// wildcard listen address is reached on loopback.
func embeddedClientURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "nats://" + listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::": // SplitHostPort has taken the brackets off
		host = "::1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// clientOptions turns the config's client settings for an external server into nats.go options.
// They carry the credentials, so none of them is ever logged.
func clientOptions(cfg config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.URL == "" {
		return opts, nil
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NkeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			// The nkeys error text names neither the seed nor the file's content.
			return nil, fmt.Errorf("nats.nkeySeedFile: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	return opts, nil
}

// connectError explains a failed first connection. Credentials are never part of it: nats.go's
// errors do not quote them, and the URL is redacted.
func connectError(target string, err error) error {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
		return fmt.Errorf("connect to NATS at %s: %w (check nats.credsFile, nats.nkeySeedFile, nats.token or nats.user/nats.password)", target, err)
	}
	var (
		certErr *tls.CertificateVerificationError
		opErr   *net.OpError
	)
	if errors.Is(err, nats.ErrTLS) || errors.As(err, &certErr) || (errors.As(err, &opErr) && opErr.Op == "remote error") {
		// A server that requires client certificates refuses ours with a TLS alert (which
		// crypto/tls reports as a "remote error"), or closes the connection right after the
		// handshake, which nats.go reports as a bare TLS error.
		return fmt.Errorf("connect to NATS at %s: %w (check nats.tls.caFile for the server's certificate, and nats.tls.certFile/nats.tls.keyFile for a client certificate the server accepts)", target, err)
	}
	return fmt.Errorf("connect to NATS at %s: %w", target, err)
}
