package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/internal/faultapi"
)

// TestDLQListAndReplay is the operator's path: the API rejects an event (api_rejected), the API
// is fixed, the event is replayed, delivered once and gone from the dead-letter stream; a
// redacted copy is not replayed unless asked for by its reason.
func TestDLQListAndReplay(t *testing.T) {
	t.Parallel()
	const sdkKey = "sdk-dlq-secret-61f0"
	api := faultapi.New(faultapi.Faults{Reject: 1}, faultapi.WithBearer(sdkKey))
	apiSrv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		apiSrv.Close()
	})
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  embedded:
    listen: %s
    storeDir: %s
coalesce:
  delay: 10s
notifizz:
  baseUrl: %s
  sdkSecretKey: %s
http:
  listen: %s
shutdownTimeout: 5s
`, natsAddr, filepath.Join(t.TempDir(), "nats"), apiSrv.URL, sdkKey, httpAddr))
	d := startDaemon(t, nil, "run", "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)

	_, js := testConn(t, "nats://"+natsAddr)
	pub := func(subject, body string, hdr nats.Header) {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = []byte(body)
		for k, v := range hdr {
			m.Header[k] = v
		}
		_, err := js.PublishMsg(context.Background(), m)
		require.NoError(t, err)
	}
	pub("notifizz.track.order-1", `{"eventName":"order_shipped","properties":{"orderId":"ORD-1"}}`,
		nats.Header{"X-Trace": {"trace-1"}, jetstream.MsgIDHeader: {"producer-id-1"}})
	pub("notifizz.workflow.order-1", `{"campaignId":"c1","recipients":[{"id":"u1","email":"u1@example.com"}]}`, nil)
	pub("notifizz.commit.order-1", ``, nil)
	pub("notifizz.track.leaky", `{"eventName":"e","properties":{},"sdkSecretKey":"leaked-value-2b7c"}`, nil)
	pub("notifizz.track.nameless", `{"eventName":"","properties":{"note":"sdk-dlq-secret-61f0 pasted"}}`, nil)

	dlqLen := func() uint64 {
		s, err := js.Stream(context.Background(), "NOTIFIZZ_DLQ")
		if err != nil {
			return 0
		}
		return s.CachedInfo().State.Msgs
	}
	require.Eventually(t, func() bool { return dlqLen() == 5 }, 10*time.Second, 20*time.Millisecond,
		"the rejected event's 3 messages, the leaky track and the nameless one are dead-lettered")

	// list: every dead letter, one row each; filters by reason and by key.
	code, out, stderr := runBinary(t, nil, "dlq", "list", "--config", config)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 7, out)
	assert.Regexp(t, `^SEQ\s+TIME\s+REASON\s+SUBJECT\s+KEY\s+ERROR$`, lines[0])
	assert.Equal(t, "5 dead letters", lines[6])
	row := regexp.MustCompile(`^\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+api_rejected\s+notifizz\.workflow\.order-1\s+order-1\s+.*400`)
	// Workers dead-letter concurrently, so the rows come in no fixed order.
	assert.True(t, slices.ContainsFunc(lines[1:6], row.MatchString), "no row for the rejected workflow in\n%s", out)
	assert.Contains(t, out, "secret_in_message  notifizz.track.leaky")
	assert.NotContains(t, out, "leaked-value-2b7c")

	code, out, _ = runBinary(t, nil, "dlq", "list", "--config", config, "--reason", "api_rejected")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "\n3 dead letters\n")
	assert.NotContains(t, out, "secret_in_message")

	// show: one dead letter whole, by the sequence list gives, secrets redacted.
	code, out, _ = runBinary(t, nil, "dlq", "list", "--config", config, "--key", "nameless")
	require.Equal(t, 0, code)
	seq := regexp.MustCompile(`(?m)^(\d+)\s+\S+\s+invalid_message\s+notifizz\.track\.nameless`).FindStringSubmatch(out)
	require.NotNil(t, seq, out)
	code, out, stderr = runBinary(t, nil, "dlq", "show", "--config", config, seq[1])
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "dead letter "+seq[1]+" of NOTIFIZZ_DLQ, stored ")
	assert.Contains(t, out, "\nsubject: notifizz.dlq.track.nameless\n")
	assert.Contains(t, out, "\nreason: invalid_message\n")
	assert.Contains(t, out, "\nerror: invalid_message: eventName: must not be empty")
	assert.Contains(t, out, "\n  Notifizz-Original-Subject: notifizz.track.nameless\n")
	assert.Contains(t, out, `{"eventName":"","properties":{"note":"[REDACTED] pasted"}}`, "the configured secret is scrubbed from the body")
	assert.NotContains(t, out, sdkKey)
	code, _, stderr = runBinary(t, nil, "dlq", "show", "--config", config, "99999")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "dead-letter stream NOTIFIZZ_DLQ has no message 99999")
	code, out, _ = runBinary(t, nil, "dlq", "list", "--config", config, "--key", "leaky")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "\n1 dead letter\n")

	// The API is fixed. A dry run changes nothing.
	api.SetFaults(faultapi.Faults{})
	code, out, stderr = runBinary(t, nil, "dlq", "replay", "--config", config, "--dry-run")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 3, strings.Count(out, "would replay dead letter"), out)
	assert.Contains(t, out, "would replay 3 dead letters")
	assert.Contains(t, stderr, "skipped 1 dead letter with reason secret_in_message")
	assert.Contains(t, stderr, "--reason secret_in_message")
	assert.Contains(t, stderr, "skipped 1 dead letter with reason invalid_message: the message itself is at fault, "+
		"so replaying it unchanged would only dead-letter it again", "a letter that fails unchanged is skipped, and said")
	assert.Equal(t, uint64(5), dlqLen())
	_, successes := api.Count()
	assert.Zero(t, successes)

	// The replay: republished, re-coalesced into one call, acked, deleted from the DLQ.
	code, out, stderr = runBinary(t, nil, "dlq", "replay", "--config", config)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "replayed 3 dead letters")
	assert.Contains(t, stderr, "skipped 1 dead letter with reason secret_in_message", "the redacted copy is refused")
	event := "/events/track order_shipped " + `{"orderId":"ORD-1"}`
	require.Eventually(t, func() bool {
		return api.ByEvent()[event].Successes == 1 && drained(consumerInfo(js))
	}, 15*time.Second, 20*time.Millisecond, "the replayed event is delivered")
	assert.Equal(t, uint64(2), dlqLen(), "only the refused copy and the invalid message are left")
	s := api.ByEvent()[event]
	assert.Equal(t, 2, s.Attempts, "one rejected call, one after the replay")
	assert.Equal(t, 1, s.Successes, "delivered once")
	assert.Equal(t, map[string]bool{"c1": true}, s.Workflows, "with its workflow")
	require.Len(t, s.Keys, 1, "the replay reaches the API under the first call's key")

	// The replayed track carries the original headers and none of the dead letter's.
	stream, err := js.Stream(context.Background(), "NOTIFIZZ")
	require.NoError(t, err)
	last, err := stream.GetLastMsgForSubject(context.Background(), "notifizz.track.order-1")
	require.NoError(t, err)
	assert.Equal(t, "trace-1", last.Header.Get("X-Trace"))
	assert.Regexp(t, `^replay-NOTIFIZZ_DLQ-\d+$`, last.Header.Get(jetstream.MsgIDHeader))
	assert.Equal(t, s.Keys[0], last.Header.Get(deadletter.HeaderIdempotencyKey), "the key of the first call is replayed")
	for k := range last.Header {
		assert.False(t, strings.HasPrefix(k, "Notifizz-") && k != deadletter.HeaderIdempotencyKey, "header %s replayed", k)
	}

	// Nothing left to replay but the refused copy; asking for it by reason replays it, and the
	// bridge dead-letters it again, since it still names a secret key.
	code, out, _ = runBinary(t, nil, "dlq", "replay", "--config", config)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "replayed 0 dead letters")
	code, out, stderr = runBinary(t, nil, "dlq", "replay", "--config", config, "--reason", "secret_in_message")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "replayed 1 dead letter\n")
	assert.Empty(t, stderr)
	require.Eventually(t, func() bool { return dlqLen() == 2 && drained(consumerInfo(js)) }, 10*time.Second, 20*time.Millisecond)
	_, successes = api.Count()
	assert.Equal(t, 1, successes, "nothing else reached the API")

	require.Equal(t, 0, d.stop(t))
}

func TestDLQUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dlq"}, exitUsage, "dlq needs a subcommand"},
		{[]string{"dlq", "purge"}, exitUsage, `unknown dlq subcommand "purge"`},
		{[]string{"dlq", "list", "--reason", "nope"}, exitUsage, `--reason "nope" is not a dead-letter reason`},
		{[]string{"dlq", "replay", "--key", "a.b"}, exitUsage, `--key "a.b"`},
		{[]string{"dlq", "list", "extra"}, exitUsage, "takes no arguments"},
		{[]string{"dlq", "--help"}, exitOK, "Usage: notifizz-bridge dlq list|show|replay"},
		{[]string{"dlq", "show"}, exitUsage, "dlq show takes one SEQ"},
		{[]string{"dlq", "show", "x1"}, exitUsage, `SEQ must be a positive integer, not "x1"`},
		{[]string{"dlq", "show", "--help"}, exitOK, "Usage: notifizz-bridge dlq show [--config FILE] SEQ"},
		{[]string{"dlq", "replay", "--help"}, exitOK, "-dry-run"},
		{[]string{"help", "dlq"}, exitOK, "dlq replay [--config FILE]"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := cli(context.Background(), c.args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
			assert.Equal(t, c.code, code)
			assert.Contains(t, out.String()+errOut.String(), c.want)
		})
	}
}

func TestDLQListNeedsTheServer(t *testing.T) {
	t.Parallel()
	config := writeFile(t, "config.yaml", fmt.Sprintf("nats:\n  embedded:\n    listen: %s\n", freeAddr(t)))
	var out, errOut strings.Builder
	code := cli(context.Background(), []string{"dlq", "list", "--config", config}, stdio{out: &out, err: &errOut})
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut.String(), "is notifizz-bridge running with this config?")
}

// TestDLQReplayKeepsIdempotencyKeys dead-letters a track without its own idempotencyKey and a
// send (api_rejected), fixes the API and replays them: each reaches the API under the key of its
// first attempt, so that an API that had accepted the first one de-duplicates the replay.
func TestDLQReplayKeepsIdempotencyKeys(t *testing.T) {
	t.Parallel()
	const sdkKey = "sdk-dlq-secret-83c2"
	api := faultapi.New(faultapi.Faults{Reject: 1}, faultapi.WithBearer(sdkKey))
	apiSrv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		apiSrv.Close()
	})
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  embedded:
    listen: %s
    storeDir: %s
coalesce:
  delay: 100ms
notifizz:
  baseUrl: %s
  sdkSecretKey: %s
http:
  listen: %s
shutdownTimeout: 5s
`, natsAddr, filepath.Join(t.TempDir(), "nats"), apiSrv.URL, sdkKey, httpAddr))
	d := startDaemon(t, nil, "run", "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)

	_, js := testConn(t, "nats://"+natsAddr)
	for _, m := range []struct{ subject, body string }{
		{"notifizz.track.order-2", `{"eventName":"order_shipped","properties":{},"workflows":[{"campaignId":"c1","recipients":[{"id":"u1","email":"u1@example.com"}]}]}`},
		{"notifizz.send.welcome-2", `{"notifId":"n1","properties":{"recipients":[{"id":"u1","email":"u1@example.com"}]}}`},
	} {
		_, err := js.Publish(context.Background(), m.subject, []byte(m.body))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s, err := js.Stream(context.Background(), "NOTIFIZZ_DLQ")
		return err == nil && s.CachedInfo().State.Msgs == 2
	}, 10*time.Second, 20*time.Millisecond, "the track and the send are dead-lettered")

	api.SetFaults(faultapi.Faults{})
	code, out, stderr := runBinary(t, nil, "dlq", "replay", "--config", config)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "replayed 2 dead letters")
	require.Eventually(t, func() bool {
		_, successes := api.Count()
		return successes == 2 && drained(consumerInfo(js))
	}, 15*time.Second, 20*time.Millisecond, "the replayed track and send are delivered")

	keys := map[string][]string{} // path → keys of its attempts
	for _, at := range api.Attempts() {
		keys[at.Path] = append(keys[at.Path], at.Key)
	}
	require.Len(t, keys, 2, "a track path and a send path: %v", keys)
	for path, ks := range keys {
		require.Len(t, ks, 2, "%s: one rejected attempt, one after the replay", path)
		assert.NotEmpty(t, ks[0], path)
		assert.Equal(t, ks[0], ks[1], "%s: the replay is sent under the first attempt's key", path)
	}
	require.Equal(t, 0, d.stop(t))
}
