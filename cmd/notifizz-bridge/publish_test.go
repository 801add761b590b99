package main

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestPublishV2Kinds: publish takes the kinds of the v2 profile, validates their bodies before
// connecting, and stores them under <prefix>.<kind>.<key> with the producer's Nats-Msg-Id; a
// kind the config's profile does not handle is published with a warning.
func TestPublishV2Kinds(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t, natstest.Options(t.TempDir()))
	_, js := natstest.Connect(t, srv.ClientURL())
	// The stream a v2 bridge consumes: every kind of the contract.
	var subjects []string
	for _, k := range schema.AllKinds {
		subjects = append(subjects, "notifizz."+string(k)+".*")
	}
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "NOTIFIZZ", Subjects: subjects})
	require.NoError(t, err)
	v2 := writeFile(t, "v2.yaml", fmt.Sprintf("nats:\n  url: %s\nnotifizz:\n  api: v2\n", srv.ClientURL()))
	v1 := writeFile(t, "v1.yaml", fmt.Sprintf("nats:\n  url: %s\n", srv.ClientURL()))

	for _, tc := range []struct {
		kind, key, body string
	}{
		{"identify", "link-alice", `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"alice@example.com"},` +
			`"subjectB":{"type":"user_id","identifier":"user_42"},"consentBasis":"contract","expiresAt":"2027-01-01T00:00:00Z"}`},
		{"detach", "unlink-alice", `{"environmentId":"env_1","subject":{"type":"email","identifier":"alice@example.com"}}`},
		{"subscribe", "doc-7-user_42", `{"resourceId":"doc/7","subscriberId":"user_42","role":"owner"}`},
		{"unsubscribe", "doc-7-user_42", `{"resourceId":"doc/7","subscriberId":"user_42"}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", "publish", "--config", v2, tc.kind, tc.key, tc.body)
			require.Equal(t, exitOK, code, stderr)
			assert.Empty(t, stderr, "the v2 profile handles it: no warning")
			m := regexp.MustCompile(`^stream=NOTIFIZZ seq=(\d+)\n$`).FindStringSubmatch(stdout)
			require.NotNil(t, m, stdout)
			got, err := stream.GetLastMsgForSubject(context.Background(), "notifizz."+tc.kind+"."+tc.key)
			require.NoError(t, err)
			assert.Equal(t, m[1], fmt.Sprint(got.Sequence))
			assert.Equal(t, tc.body, string(got.Data), "the body as given")
			assert.Equal(t, schema.MsgID(schema.Kind(tc.kind), tc.key, []byte(tc.body)), got.Header.Get(jetstream.MsgIDHeader))

			// The same message under a v1 config: stored again only with another id, and warned of.
			code, _, stderr = runCLI(t, "", "publish", "--config", v1, "--msg-id", "v1-"+tc.kind, tc.kind, tc.key, tc.body)
			require.Equal(t, exitOK, code, stderr)
			assert.Equal(t, "notifizz-bridge: warning: notifizz.api is v1: the bridge dead-letters "+tc.kind+
				" messages (unsupported) unless it runs with notifizz.api: v2\n", stderr)
		})
	}

	t.Run("v1 kinds under v2", func(t *testing.T) {
		code, _, stderr := runCLI(t, "", "publish", "--config", v2, "send", "s-1", `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"u@example.com"}]}}`)
		require.Equal(t, exitOK, code, stderr)
		assert.Equal(t, "notifizz-bridge: warning: notifizz.api is v2, whose API has no send: the bridge dead-letters send messages (unsupported)\n", stderr)
		code, _, stderr = runCLI(t, "", "publish", "--config", v2, "track", "t-1", `{"eventName":"e","properties":{},"occurredAt":"2026-11-30T10:00:00Z"}`)
		require.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stderr)
	})

	t.Run("invalid bodies are refused before connecting", func(t *testing.T) {
		info, err := stream.Info(context.Background())
		require.NoError(t, err)
		before := info.State.Msgs
		for _, tc := range []struct{ kind, body, want string }{
			{"identify", `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"a@example.com"},"consentBasis":"contract"}`,
				"invalid identify body: invalid_message: subjectB"},
			{"detach", `{"environmentId":"env_1","subject":{"type":"","identifier":"a"}}`, "invalid detach body: invalid_message: subject.type"},
			{"subscribe", `{"resourceId":"doc/7"}`, "invalid subscribe body: invalid_message: subscriberId"},
			{"unsubscribe", `{"subscriberId":"user_42"}`, "invalid unsubscribe body: invalid_message: resourceId"},
			{"subscribe", `{"resourceId":"doc/7","subscriberId":"u","sdkSecretKey":"x"}`, "invalid subscribe body: secret_in_message"},
			{"unsubscribe", `[1]`, "invalid unsubscribe body: invalid_json: body must be a JSON object"},
		} {
			code, stdout, stderr := runCLI(t, "", "publish", "--config", v2, tc.kind, "k", tc.body)
			assert.Equal(t, exitError, code, tc.body)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
		}
		info, err = stream.Info(context.Background())
		require.NoError(t, err)
		assert.Equal(t, before, info.State.Msgs, "nothing was stored")
	})
}
