package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// publishMsg is what the publish command sends.
type publishMsg struct {
	kind      schema.Kind
	key       string
	body      []byte
	fromStdin bool // the body is to be read from stdin
	opts      []schema.PublishOption
}

// parsePublishArgs checks KIND KEY [JSON|-] before anything connects, so that a typo is a
// usage error rather than a failed publish.
func parsePublishArgs(args []string) (publishMsg, error) {
	kind, err := schema.ParseKindAny(args[0])
	if err != nil {
		return publishMsg{}, usagef("KIND: %s", problemText(err))
	}
	if err := schema.ValidateKey(args[1]); err != nil {
		return publishMsg{}, usagef("KEY %q: %s", args[1], problemText(err))
	}
	m := publishMsg{kind: kind, key: args[1]}
	switch {
	case len(args) == 3 && args[2] != "-":
		m.body = []byte(args[2])
	case len(args) == 3 || kind != schema.KindCommit:
		// A commit is complete without a body, so reading stdin for one would only make a
		// script hang; any other kind without JSON reads it from stdin.
		m.fromStdin = true
	}
	return m, nil
}

// profileMismatch says why the bridge would dead-letter every message of kind under profile
// api (reason unsupported), or "" when it handles them. A track with inline workflows is
// unsupported under v2 too, but that is the body's business, not the kind's.
func profileMismatch(kind schema.Kind, api bridge.APIProfile) string {
	switch {
	case api == bridge.APIv2 && (kind == schema.KindWorkflow || kind == schema.KindSend):
		return fmt.Sprintf("notifizz.api is v2, whose API has no %s: the bridge dead-letters %s messages (unsupported)", kind, kind)
	case api != bridge.APIv2 && slices.Contains(schema.KindsV2, kind):
		return fmt.Sprintf("notifizz.api is %s: the bridge dead-letters %s messages (unsupported) unless it runs with notifizz.api: v2", api, kind)
	}
	return ""
}

// problemText is the human part of a schema error, without its machine-readable reason code.
func problemText(err error) string {
	var se *schema.Error
	if !errors.As(err, &se) || len(se.Problems) == 0 {
		return err.Error()
	}
	msgs := make([]string, len(se.Problems))
	for i, p := range se.Problems {
		msgs[i] = p.Message
	}
	return strings.Join(msgs, "; ")
}

// publishOne connects with the config's NATS settings and publishes m through the schema
// producer, which validates the body and sets Nats-Msg-Id.
func publishOne(ctx context.Context, cfg config.Config, m publishMsg) (*jetstream.PubAck, error) {
	opts := []nats.Option{nats.Name("notifizz-bridge publish")}
	if deadline, ok := ctx.Deadline(); ok {
		// The connect timeout is the only part of connecting ctx cannot bound.
		opts = append(opts, nats.Timeout(max(time.Millisecond, time.Until(deadline))))
	}
	nc, js, err := connectTool(cfg, opts...)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	p := schema.NewProducer(js, schema.WithPrefix(cfg.Bridge.Stream.SubjectPrefix))
	ack, err := p.Publish(ctx, m.kind, m.key, m.body, m.opts...)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return nil, fmt.Errorf("publish %s %s: no stream answered: notifizz-bridge run creates stream %s at start (unless stream.create is false); is it running? (%w)",
				m.kind, m.key, cfg.Bridge.Stream.Name, err)
		}
		return nil, fmt.Errorf("publish %s %s: %w", m.kind, m.key, err)
	}
	return ack, nil
}
