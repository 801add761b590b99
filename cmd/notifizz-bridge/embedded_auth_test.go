package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// embeddedAuthCase is one way of securing the embedded server: the lines under nats: that set
// it, options of a client that presents it, and of one that presents a wrong credential.
type embeddedAuthCase struct {
	name        string
	nats        string
	right       []nats.Option
	wrong       []nats.Option
	secrets     []string // never in the daemon's output
	wrongConfig string   // lines under nats: of a publish that presents the wrong credential
}

func embeddedAuthCases(t *testing.T) []embeddedAuthCase {
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	seedFile, otherFile := writeFile(t, "user.nk", string(seed)), writeFile(t, "other.nk", string(otherSeed))
	right, err := nats.NkeyOptionFromSeed(seedFile)
	require.NoError(t, err)
	wrong, err := nats.NkeyOptionFromSeed(otherFile)
	require.NoError(t, err)
	return []embeddedAuthCase{
		{
			name:        "token",
			nats:        "  token: embedded-token-6b0e\n",
			right:       []nats.Option{nats.Token("embedded-token-6b0e")},
			wrong:       []nats.Option{nats.Token("wrong-token-c4d2")},
			secrets:     []string{"embedded-token-6b0e", "wrong-token-c4d2"},
			wrongConfig: "  token: wrong-token-c4d2\n",
		},
		{
			name:        "user and password",
			nats:        "  user: bridge\n  password: embedded-pw-19fa\n",
			right:       []nats.Option{nats.UserInfo("bridge", "embedded-pw-19fa")},
			wrong:       []nats.Option{nats.UserInfo("bridge", "wrong-pw-7e31")},
			secrets:     []string{"embedded-pw-19fa", "wrong-pw-7e31"},
			wrongConfig: "  user: bridge\n  password: wrong-pw-7e31\n",
		},
		{
			name:        "nkey",
			nats:        "  nkeySeedFile: " + seedFile + "\n",
			right:       []nats.Option{right},
			wrong:       []nats.Option{wrong},
			secrets:     []string{string(seed), string(otherSeed)},
			wrongConfig: "  nkeySeedFile: " + otherFile + "\n",
		},
	}
}

// securedConfig is a dry-run config of a daemon whose embedded server listens on natsAddr and is
// secured by the lines auth under nats:.
func securedConfig(t *testing.T, natsAddr, httpAddr, storeDir, auth string) string {
	t.Helper()
	return writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
%s  embedded:
    listen: %s
    storeDir: %s
coalesce:
  delay: 10s
notifizz:
  dryRun: true
http:
  listen: %s
log:
  level: debug
shutdownTimeout: 5s
`, auth, natsAddr, storeDir, httpAddr))
}

// TestE2EEmbeddedServerAuth: with nats.url empty, a token, a user and password, or an nkey seed
// secure the embedded server. A client that presents nothing, or a wrong credential, is refused
// on the listen address; one that presents the credential connects; and the daemon's own
// connection, publish and dlq work with the config, while the daemon's output never shows
// the secret.
func TestE2EEmbeddedServerAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range embeddedAuthCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			natsAddr, httpAddr := freeAddr(t), freeAddr(t)
			storeDir := filepath.Join(t.TempDir(), "nats")
			config := securedConfig(t, natsAddr, httpAddr, storeDir, tc.nats)
			d := startDaemon(t, nil, "run", "--config", config)
			d.waitReadyz(t, httpAddr, http.StatusOK)

			url := "nats://" + natsAddr
			_, err := nats.Connect(url, nats.Timeout(5*time.Second))
			require.ErrorIs(t, err, nats.ErrAuthorization, "a client without credentials")
			_, err = nats.Connect(url, append(tc.wrong, nats.Timeout(5*time.Second))...)
			require.ErrorIs(t, err, nats.ErrAuthorization, "a client with a wrong credential")
			nc, err := nats.Connect(url, append(tc.right, nats.Timeout(5*time.Second))...)
			require.NoError(t, err, "a client with the credential")
			nc.Close()

			// The daemon consumes through its in-process connection what publish sends over TCP.
			publish(t, config, "track", "k1", `{"eventName":"over_secured_embedded","properties":{}}`)
			publish(t, config, "commit", "k1")
			assert.Contains(t, d.nextLine(t, commitFlushTimeout), `"eventName":"over_secured_embedded"`)

			code, stdout, stderr := runBinary(t, nil, "dlq", "list", "--config", config)
			assert.Equal(t, 0, code, stderr)
			assert.Contains(t, stdout, "0 dead letters")

			// publish without the credential, or with a wrong one, says what to give it.
			for _, auth := range []string{"", tc.wrongConfig} {
				other := securedConfig(t, natsAddr, freeAddr(t), storeDir, auth)
				code, stdout, stderr = runBinary(t, nil, "publish", "--config", other, "commit", "k2")
				assert.Equal(t, exitError, code)
				assert.Empty(t, stdout)
				assert.Contains(t, stderr, "notifizz-bridge: connect to NATS at embedded "+natsAddr+": nats: Authorization Violation "+
					"(the embedded server requires the nats.token, nats.user/nats.password or nats.nkeySeedFile the daemon runs with: give this command the same)\n")
				assert.NotContains(t, stderr, "is notifizz-bridge running", "it is, and it refused the client")
				for _, secret := range tc.secrets {
					assert.NotContains(t, stderr, secret)
				}
			}

			require.Equal(t, 0, d.stop(t))
			out := d.stdout.String() + d.stderr.String()
			assert.Contains(t, d.stderr.String(), "authentication error", "the server logs the refused clients")
			for _, secret := range tc.secrets {
				assert.NotContains(t, out, secret, "a credential in the daemon's output")
			}
		})
	}
}

// TestE2EEmbeddedServerTLS: nats.tls.certFile and keyFile give the embedded server's listener
// TLS; publish verifies the certificate with nats.tls.caFile, and a client that cannot verify it
// does not connect.
func TestE2EEmbeddedServerTLS(t *testing.T) {
	t.Parallel()
	ca, caKey := newCA(t, "notifizz test CA")
	cert, key := newLeaf(t, ca, caKey, "embedded nats", true) // for 127.0.0.1
	caFile := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})))
	certFile, keyFile := writeFile(t, "server.pem", string(cert)), writeFile(t, "server-key.pem", string(key))

	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	auth := fmt.Sprintf("  token: tls-token-0c5a\n  tls:\n    caFile: %s\n    certFile: %s\n    keyFile: %s\n", caFile, certFile, keyFile)
	config := securedConfig(t, natsAddr, httpAddr, filepath.Join(t.TempDir(), "nats"), auth)
	d := startDaemon(t, nil, "run", "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)

	// The server announces that it requires TLS before anything else is said.
	conn, err := net.DialTimeout("tcp", natsAddr, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	info, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	conn.Close()
	assert.Contains(t, info, `"tls_required":true`)

	_, err = nats.Connect("nats://"+natsAddr, nats.Token("tls-token-0c5a"), nats.Timeout(5*time.Second))
	var unknownAuthority x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknownAuthority, "a client that does not trust the certificate")
	nc, err := nats.Connect("tls://"+natsAddr, nats.Token("tls-token-0c5a"), nats.RootCAs(caFile), nats.Timeout(5*time.Second))
	require.NoError(t, err)
	assert.True(t, nc.TLSRequired())
	nc.Close()

	publish(t, config, "track", "k1", `{"eventName":"over_embedded_tls","properties":{}}`)
	publish(t, config, "commit", "k1")
	assert.Contains(t, d.nextLine(t, commitFlushTimeout), `"eventName":"over_embedded_tls"`)

	// Without the CA, publish cannot verify the server and says what to check.
	noCA := securedConfig(t, natsAddr, freeAddr(t), filepath.Join(t.TempDir(), "nats"),
		fmt.Sprintf("  token: tls-token-0c5a\n  tls:\n    certFile: %s\n    keyFile: %s\n", certFile, keyFile))
	code, _, stderr := runBinary(t, nil, "publish", "--config", noCA, "commit", "k2")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "check nats.tls.caFile: it must verify the embedded server's certificate")
	assert.NotContains(t, stderr, "is notifizz-bridge running")
	require.Equal(t, 0, d.stop(t))
	assert.NotContains(t, d.stdout.String()+d.stderr.String(), "tls-token-0c5a")
}

// TestE2EEmbeddedServerBeyondLoopback runs the image's configuration, config.example.yaml with
// the embedded server on all interfaces: without a token, run and check refuse it and say what
// to set; with NOTIFIZZ_BRIDGE_NATS_TOKEN, it runs and only clients with the token connect;
// with NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH=true, it runs without authentication.
func TestE2EEmbeddedServerBeyondLoopback(t *testing.T) {
	t.Parallel()
	env := func(natsAddr, httpAddr string, extra ...string) []string {
		_, port, err := net.SplitHostPort(natsAddr)
		require.NoError(t, err)
		return append([]string{
			"NATS_URL=", "NOTIFIZZ_BRIDGE_NATS_TOKEN=", "NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH=",
			"NOTIFIZZ_BRIDGE_NATS_LISTEN=0.0.0.0:" + port,
			"NOTIFIZZ_BRIDGE_HTTP_LISTEN=" + httpAddr,
			"NOTIFIZZ_BRIDGE_STORE_DIR=" + filepath.Join(t.TempDir(), "nats"),
			"NOTIFIZZ_BRIDGE_LOG_LEVEL=", "NOTIFIZZ_BRIDGE_LOG_FORMAT=",
		}, extra...)
	}
	const refusal = `nats.embedded.listen: "0.0.0.0:%s" is reachable from other hosts, and the embedded server has no authentication: ` +
		"anyone who reaches it could read the messages or delete the stream. " +
		"Secure it: export NOTIFIZZ_BRIDGE_NATS_TOKEN=… (the file reads nats.token from there), or set nats.user/nats.password or nats.nkeySeedFile; " +
		"or listen on loopback (127.0.0.1); or, on a network you trust, export NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH=true (the file reads nats.embedded.allowNoAuth from there)"

	t.Run("no authentication is refused", func(t *testing.T) {
		natsAddr, httpAddr := freeAddr(t), freeAddr(t)
		_, port, _ := net.SplitHostPort(natsAddr)
		for _, cmd := range []string{"run", "check"} {
			code, stdout, stderr := runBinary(t, env(natsAddr, httpAddr), cmd, "--dry-run", "--config", examplePath)
			assert.Equal(t, exitError, code, cmd)
			assert.Empty(t, stdout, cmd)
			assert.Contains(t, stderr, fmt.Sprintf(refusal, port), cmd)
		}
	})

	t.Run("a token secures it", func(t *testing.T) {
		natsAddr, httpAddr := freeAddr(t), freeAddr(t)
		e := env(natsAddr, httpAddr, "NOTIFIZZ_BRIDGE_NATS_TOKEN=image-token-8d3f")
		code, stdout, stderr := runBinary(t, e, "check", "--dry-run", "--config", examplePath)
		assert.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "token: '[REDACTED]'")
		assert.NotContains(t, stdout+stderr, "image-token-8d3f")

		d := startDaemon(t, e, "run", "--dry-run", "--config", examplePath)
		d.waitReadyz(t, httpAddr, http.StatusOK)
		_, err := nats.Connect("nats://"+natsAddr, nats.Timeout(5*time.Second))
		require.ErrorIs(t, err, nats.ErrAuthorization)
		// publish, run with the same environment, reaches it on loopback with the token.
		code, _, stderr = runBinary(t, e, "publish", "--config", examplePath, "track", "k1", `{"eventName":"from_the_image","properties":{}}`)
		require.Equal(t, exitOK, code, stderr)
		code, _, stderr = runBinary(t, e, "publish", "--config", examplePath, "commit", "k1")
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, d.nextLine(t, commitFlushTimeout), `"eventName":"from_the_image"`)
		require.Equal(t, 0, d.stop(t))
		assert.NotContains(t, d.stdout.String()+d.stderr.String(), "image-token-8d3f")
	})

	t.Run("the opt-out lets it run without authentication", func(t *testing.T) {
		natsAddr, httpAddr := freeAddr(t), freeAddr(t)
		d := startDaemon(t, env(natsAddr, httpAddr, "NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH=true"), "run", "--dry-run", "--config", examplePath)
		d.waitReadyz(t, httpAddr, http.StatusOK)
		_, js := testConn(t, "nats://"+natsAddr)
		_, err := js.Stream(context.Background(), "NOTIFIZZ")
		require.NoError(t, err, "a client without credentials reads the stream")
		require.Equal(t, 0, d.stop(t))
	})
}
