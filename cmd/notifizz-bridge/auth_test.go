package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// authCase is one way of authenticating to a server: the server's options, the daemon's nats
// settings that must connect, settings that must be refused, and the test's own connection.
type authCase struct {
	server   server.Options
	scheme   string // "nats" or "tls"
	good     string // YAML lines under nats:
	bad      string
	badError string // what the refusal says, besides "connect to NATS at"
	conn     []nats.Option
}

func tokenAuth(t *testing.T) authCase {
	return authCase{
		server:   server.Options{Authorization: "right-token-41ac"},
		good:     "  token: right-token-41ac\n",
		bad:      "  token: wrong-token-0d6e\n",
		badError: "authorization violation (check nats.credsfile",
		conn:     []nats.Option{nats.Token("right-token-41ac")},
	}
}

func nkeyAuth(t *testing.T) authCase {
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	good := writeFile(t, "user.nk", string(seed))
	bad := writeFile(t, "other.nk", string(otherSeed))
	opt, err := nats.NkeyOptionFromSeed(good)
	require.NoError(t, err)
	return authCase{
		server:   server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
		good:     "  nkeySeedFile: " + good + "\n",
		bad:      "  nkeySeedFile: " + bad + "\n",
		badError: "authorization violation (check nats.credsfile",
		conn:     []nats.Option{opt},
	}
}

// credsAuth sets up decentralized auth as an operator would with nsc: an operator that the
// server trusts, an account with JetStream signed by it (served from memory), and a user of
// that account whose JWT and seed make the creds file. The wrong creds are a user of an
// account the server does not know.
func credsAuth(t *testing.T) authCase {
	op, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, err := op.PublicKey()
	require.NoError(t, err)
	opClaims := jwt.NewOperatorClaims(opPub)

	account := func(signer nkeys.KeyPair, jetStream bool) (nkeys.KeyPair, string) {
		acc, err := nkeys.CreateAccount()
		require.NoError(t, err)
		pub, err := acc.PublicKey()
		require.NoError(t, err)
		claims := jwt.NewAccountClaims(pub)
		if jetStream {
			claims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := claims.Encode(signer)
		require.NoError(t, err)
		return acc, token
	}
	creds := func(acc nkeys.KeyPair, name string) (string, nats.Option) {
		user, err := nkeys.CreateUser()
		require.NoError(t, err)
		pub, err := user.PublicKey()
		require.NoError(t, err)
		token, err := jwt.NewUserClaims(pub).Encode(acc)
		require.NoError(t, err)
		seed, err := user.Seed()
		require.NoError(t, err)
		data, err := jwt.FormatUserConfig(token, seed)
		require.NoError(t, err)
		path := writeFile(t, name, string(data))
		return path, nats.UserCredentials(path)
	}
	acc, accJWT := account(op, true)
	accPub, err := acc.PublicKey()
	require.NoError(t, err)
	resolver := &server.MemAccResolver{}
	require.NoError(t, resolver.Store(accPub, accJWT))
	// Operator mode needs a system account, which must not have JetStream.
	sys, sysJWT := account(op, false)
	sysPub, err := sys.PublicKey()
	require.NoError(t, err)
	require.NoError(t, resolver.Store(sysPub, sysJWT))
	stranger, _ := account(op, true) // signed by the operator, but never given to the resolver
	good, opt := creds(acc, "user.creds")
	bad, _ := creds(stranger, "stranger.creds")
	return authCase{
		server:   server.Options{TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver, SystemAccount: sysPub},
		good:     "  credsFile: " + good + "\n",
		bad:      "  credsFile: " + bad + "\n",
		badError: "authorization violation (check nats.credsfile",
		conn:     []nats.Option{opt},
	}
}

// tlsAuth makes a CA, a server certificate for 127.0.0.1 and a client certificate, and a
// server that requires and verifies client certificates. The wrong client certificate is
// signed by another CA.
func tlsAuth(t *testing.T) authCase {
	ca, caKey := newCA(t, "notifizz test CA")
	other, otherKey := newCA(t, "someone else's CA")
	serverCert, serverKey := newLeaf(t, ca, caKey, "nats server", true)
	clientCert, clientKey := newLeaf(t, ca, caKey, "notifizz-bridge", false)
	badCert, badKey := newLeaf(t, other, otherKey, "notifizz-bridge", false)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	caFile := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})))
	certFile, keyFile := writeFile(t, "client.pem", string(clientCert)), writeFile(t, "client-key.pem", string(clientKey))
	badCertFile, badKeyFile := writeFile(t, "bad.pem", string(badCert)), writeFile(t, "bad-key.pem", string(badKey))
	files := func(cert, key string) string {
		return fmt.Sprintf("  tls:\n    caFile: %s\n    certFile: %s\n    keyFile: %s\n", caFile, cert, key)
	}
	return authCase{
		server: server.Options{
			TLS: true, TLSVerify: true, TLSTimeout: 5,
			TLSConfig: &tls.Config{
				Certificates: []tls.Certificate{pair},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
				MinVersion:   tls.VersionTLS12,
			},
		},
		scheme:   "tls",
		good:     files(certFile, keyFile),
		bad:      files(badCertFile, badKeyFile),
		badError: "check nats.tls.cafile",
		conn:     []nats.Option{nats.RootCAs(caFile), nats.ClientCert(certFile, keyFile)},
	}
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// newLeaf returns a PEM certificate and key signed by ca: for 127.0.0.1 when it is a server's.
func newLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, isServer bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if isServer {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestAuthAndTransport runs the daemon against servers that require a token, an nkey, a creds
// file (JWT accounts) and TLS with a client certificate: it connects and delivers with the
// right credentials, and with wrong ones exits 1 with a message that says what failed, without
// printing the credential.
func TestAuthAndTransport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(*testing.T) authCase
	}{
		{"token", tokenAuth},
		{"nkey", nkeyAuth},
		{"creds", credsAuth},
		{"tls client certificate", tlsAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ac := tc.setup(t)
			opts := ac.server
			opts.Port = -1
			srv := startServer(t, opts)
			scheme := ac.scheme
			if scheme == "" {
				scheme = "nats"
			}
			url := scheme + "://127.0.0.1:" + strconv.Itoa(serverPort(srv))

			t.Run("right", func(t *testing.T) {
				httpAddr := freeAddr(t)
				config := writeFile(t, "good.yaml", fmt.Sprintf("nats:\n  url: %s\n%shttp:\n  listen: %s\ncoalesce:\n  delay: 10s\n", url, ac.good, httpAddr))
				d := startDaemon(t, nil, "run", "--config", config, "--dry-run")
				d.waitReadyz(t, httpAddr, http.StatusOK)
				_, js := testConn(t, url, ac.conn...)
				prod := schema.NewProducer(js)
				_, err := prod.Track(context.Background(), "k1", "over_"+strings.ReplaceAll(tc.name, " ", "_"), nil)
				require.NoError(t, err)
				_, err = prod.Commit(context.Background(), "k1")
				require.NoError(t, err)
				line := d.nextLine(t, commitFlushTimeout)
				assert.Contains(t, line, `"eventName":"over_`)
				require.Equal(t, 0, d.stop(t))
			})
			t.Run("wrong", func(t *testing.T) {
				config := writeFile(t, "bad.yaml", fmt.Sprintf("nats:\n  url: %s\n%shttp:\n  listen: %s\n", url, ac.bad, freeAddr(t)))
				d := startDaemon(t, nil, "run", "--config", config, "--dry-run")
				assert.Equal(t, exitError, d.wait(t, 30*time.Second))
				stderr := d.stderr.String()
				assert.Contains(t, stderr, "notifizz-bridge: connect to NATS at "+url+": ")
				assert.Contains(t, strings.ToLower(stderr), ac.badError)
				for _, secret := range []string{"wrong-token-0d6e", "SUA", "-----BEGIN"} {
					assert.NotContains(t, stderr, secret, "a credential in the error")
				}
				assert.Empty(t, d.stdout.String())
			})
		})
	}
}
