package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestDLQV2Kinds: dlq list, show and replay treat the dead letters of the v2 kinds like any
// other: their key is found, they are shown whole and replayed to their original subject.
func TestDLQV2Kinds(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t, natstest.Options(t.TempDir()))
	_, js := natstest.Connect(t, srv.ClientURL())
	ctx := context.Background()
	var subjects []string
	for _, k := range schema.AllKinds {
		subjects = append(subjects, "notifizz."+string(k)+".*")
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NOTIFIZZ", Subjects: subjects})
	require.NoError(t, err)
	dlq, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NOTIFIZZ_DLQ", Subjects: []string{deadletter.Filter("notifizz.dlq")}})
	require.NoError(t, err)
	cfgPath := writeFile(t, "c.yaml", fmt.Sprintf("nats:\n  url: %s\nnotifizz:\n  api: v2\n", srv.ClientURL()))

	letters := []struct {
		kind   schema.Kind
		key    string
		reason deadletter.Reason
		body   string
	}{
		{schema.KindSubscribe, "doc-7-user_42", deadletter.ReasonUnsupported, `{"resourceId":"doc/7","subscriberId":"user_42"}`},
		{schema.KindIdentify, "link-alice", deadletter.ReasonAPIRejected, `{"environmentId":"env_1","subjectA":{"type":"email","identifier":"a@example.com"},"subjectB":{"type":"user_id","identifier":"u1"},"consentBasis":"contract"}`},
		{schema.KindTrack, "order-1", deadletter.ReasonSchemaMismatch, `{"eventName":"order_shipped","properties":{}}`},
	}
	for i, l := range letters {
		_, err := js.PublishMsg(ctx, deadletter.Letter{
			Subject:          deadletter.Subject("notifizz.dlq", l.kind, l.key),
			ID:               deadletter.MsgID("NOTIFIZZ", uint64(100+i)),
			Reason:           l.reason,
			Error:            string(l.reason) + ": refused for the test",
			OriginalSubject:  "notifizz." + string(l.kind) + "." + l.key,
			OriginalSequence: uint64(100 + i),
			Deliveries:       1,
			Data:             []byte(l.body),
		}.Msg())
		require.NoError(t, err)
	}

	code, out, stderr := runCLI(t, "", "dlq", "list", "--config", cfgPath)
	require.Equal(t, exitOK, code, stderr)
	for _, l := range letters {
		assert.Regexp(t, fmt.Sprintf(`(?m)^\d+\s+\S+\s+%s\s+notifizz\.%s\.%s\s+%s\s+%s: refused for the test$`,
			l.reason, l.kind, l.key, l.key, l.reason), out, "the key column is filled for every kind")
	}
	assert.Contains(t, out, "\n3 dead letters\n")

	for _, reason := range []deadletter.Reason{deadletter.ReasonUnsupported, deadletter.ReasonSchemaMismatch} {
		code, out, stderr = runCLI(t, "", "dlq", "list", "--config", cfgPath, "--reason", string(reason))
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, out, "\n1 dead letter\n", "--reason %s", reason)
	}

	code, out, stderr = runCLI(t, "", "dlq", "list", "--config", cfgPath, "--key", "doc-7-user_42")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "\n1 dead letter\n")
	seq := regexp.MustCompile(`(?m)^(\d+)\s`).FindStringSubmatch(strings.SplitN(out, "\n", 2)[1])
	require.NotNil(t, seq, out)

	code, out, stderr = runCLI(t, "", "dlq", "show", "--config", cfgPath, seq[1])
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "\nsubject: notifizz.dlq.subscribe.doc-7-user_42\n")
	assert.Contains(t, out, "\nreason: unsupported\n")
	assert.Contains(t, out, "\n  Notifizz-Original-Subject: notifizz.subscribe.doc-7-user_42\n")
	assert.Contains(t, out, letters[0].body)

	code, out, stderr = runCLI(t, "", "dlq", "replay", "--config", cfgPath)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "replayed 3 dead letters\n")
	assert.Empty(t, stderr, "nothing skipped")
	for _, l := range letters {
		got, err := stream.GetLastMsgForSubject(ctx, "notifizz."+string(l.kind)+"."+l.key)
		require.NoError(t, err, "%s replayed to its original subject", l.kind)
		assert.Equal(t, l.body, string(got.Data))
		assert.Empty(t, got.Header.Get(deadletter.HeaderReason), "without the dead-letter headers")
	}
	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.State.Msgs, "replayed dead letters are deleted")
}
