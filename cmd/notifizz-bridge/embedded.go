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
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

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
// nats CLI can talk to it; the daemon itself connects in-process. It requires the way to
// authenticate nc sets, and serves TLS when nc names a certificate (see embeddedSecurity). It
// refuses to start when another process holds the store directory (see lockStore).
func startEmbedded(nc config.NATS, log *slog.Logger) (*embeddedServer, error) {
	cfg := nc.Embedded
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen: bad port %q", portText)
	}
	opts := &server.Options{
		// A fixed name keeps the JetStream store's identity stable across restarts.
		ServerName: "notifizz-bridge",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		// The daemon owns signal handling; the server must not exit on SIGTERM by itself
		// before the bridge has flushed and acked.
		NoSigs: true,
	}
	if err := embeddedSecurity(opts, nc); err != nil {
		return nil, err
	}
	lock, err := lockStore(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := startNATS(opts, cfg.Listen, log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &embeddedServer{Server: srv, lock: lock}, nil
}

// embeddedSecurity sets, in the embedded server's options, the authentication it requires and
// TLS on its listener, from the settings that are a client's for an external server (see
// config.NATS). Nothing it sets is ever logged: the server's log names a refused client's user
// or nkey, never a token or a password.
func embeddedSecurity(o *server.Options, cfg config.NATS) error {
	switch {
	case cfg.Token != "":
		o.Authorization = cfg.Token
	case cfg.User != "":
		// The server holds a bcrypt hash rather than the password, as it asks a configuration
		// to (it warns of a plain one). Cost is the lowest: the password is in the process's
		// memory anyway, and each connection checks it.
		hash, err := bcrypt.GenerateFromPassword([]byte(cfg.Password), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("nats.password: %w", err) // bcrypt's errors never quote it
		}
		o.Username, o.Password = cfg.User, string(hash)
	case cfg.NkeySeedFile != "":
		pub, err := seedPublicKey(cfg.NkeySeedFile)
		if err != nil {
			return fmt.Errorf("nats.nkeySeedFile: %w", err)
		}
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	}
	if cfg.TLS.CertFile != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile})
		if err != nil {
			return fmt.Errorf("nats.tls.certFile, nats.tls.keyFile: %w", err)
		}
		o.TLS, o.TLSConfig = true, tc
	}
	return nil
}

// seedPublicKey returns the public key of the user nkey seed in the file at path, which the
// embedded server then accepts. Its errors never quote the file's content.
func seedPublicKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	defer clear(data)
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return "", err
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", errors.New("not a user seed (one that starts with SU)")
	}
	return pub, nil
}

// startNATS starts the embedded server with opts; listen is the configured address, for errors.
func startNATS(opts *server.Options, listen string, log *slog.Logger) (*server.Server, error) {
	srv, err := server.NewServer(opts)
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
		return nil, fmt.Errorf("embedded NATS server on %s: %s%s", listen, m, inUseHint(m, "nats.embedded.listen", "NOTIFIZZ_BRIDGE_NATS_LISTEN"))
	}
	if !srv.ReadyForConnections(embeddedReadyTimeout) {
		srv.Shutdown()
		if m, failed := sl.fatalError(); failed {
			return nil, fmt.Errorf("embedded NATS server on %s: %s", listen, m)
		}
		return nil, fmt.Errorf("embedded NATS server on %s: not ready after %s", listen, embeddedReadyTimeout)
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
// wildcard listen address is reached on loopback, with TLS when the server serves it.
func embeddedClientURL(listen string, tls bool) string {
	scheme := "nats://"
	if tls {
		scheme = "tls://"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return scheme + listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::": // SplitHostPort has taken the brackets off
		host = "::1"
	}
	return scheme + net.JoinHostPort(host, port)
}

// authOptions turns the way to authenticate the config sets into nats.go options: what an
// external server checks, or what the embedded server requires of every client, the daemon's
// in-process connection included. They carry the credentials, so none of them is ever logged.
func authOptions(cfg config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
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
	return opts, nil
}

// clientOptions are the nats.go options of a TCP connection with the config's settings: to an
// external server, or, when nats.url is empty, to the embedded server's listen address, where
// the certificate and key are the server's own and only the CA file is the client's.
func clientOptions(cfg config.NATS) ([]nats.Option, error) {
	opts, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" && cfg.URL != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	return opts, nil
}

// connectError explains a failed first connection to target: the embedded server when embedded
// is true. Credentials are never part of it: nats.go's errors do not quote them, and the URL is
// redacted.
func connectError(target string, embedded bool, err error) error {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
		hint := "check nats.credsFile, nats.nkeySeedFile, nats.token or nats.user/nats.password"
		if embedded {
			hint = "the embedded server requires the nats.token, nats.user/nats.password or nats.nkeySeedFile the daemon runs with: give this command the same"
		}
		return fmt.Errorf("connect to NATS at %s: %w (%s)", target, err, hint)
	}
	var (
		certErr *tls.CertificateVerificationError
		opErr   *net.OpError
	)
	if errors.Is(err, nats.ErrTLS) || errors.As(err, &certErr) || (errors.As(err, &opErr) && opErr.Op == "remote error") {
		// A server that requires client certificates refuses ours with a TLS alert (which
		// crypto/tls reports as a "remote error"), or closes the connection right after the
		// handshake, which nats.go reports as a bare TLS error.
		hint := "check nats.tls.caFile for the server's certificate, and nats.tls.certFile/nats.tls.keyFile for a client certificate the server accepts"
		if embedded {
			hint = "check nats.tls.caFile: it must verify the embedded server's certificate (nats.tls.certFile), which must name the address connected to"
		}
		return fmt.Errorf("connect to NATS at %s: %w (%s)", target, err, hint)
	}
	return fmt.Errorf("connect to NATS at %s: %w", target, err)
}
