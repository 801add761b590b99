package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCopyOfSettledMessageIsAcked: the server redelivers a message whose AckWait ran out while
// the bridge held it (a process starved of CPU). When the copies come after the bridge has
// settled the originals and forgotten them, they are acked as duplicates: the event is not sent
// a second time, and the workflow's copy is not dead-lettered as missing its track.
func TestCopyOfSettledMessageIsAcked(t *testing.T) {
	e := newEnv(t)
	src := &copySource{js: e.js, stream: e.cfg.Stream.Name, n: 3, resend: make(chan struct{})}
	r := e.start(nil, WithSource(src))
	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	e.api.waitCalls(t, 1)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_messages_total", map[string]string{"outcome": outcomeAcked}) == 3 &&
			r.counter(t, "notifizz_bridge_held_messages", nil) == 0
	}, waitFor, pollEvery, "the event was not settled")

	close(src.resend)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_messages_total", nil) == 6
	}, waitFor, pollEvery, "the copies were not settled: %v", r.counter(t, "notifizz_bridge_messages_total", nil))
	assert.Equal(t, 3.0, r.counter(t, "notifizz_bridge_messages_total", map[string]string{"outcome": outcomeDuplicate}),
		"the copies acked as duplicates")
	r.stop(t)
	assert.Len(t, e.api.snapshot(), 1, "the event sent once")
	assert.Zero(t, e.dlqCount(), "no dead letter")
}

// copySource delivers the first n messages of a consumer of its own (published within 5s of
// its start), then, once resend is closed, hands the bridge a redelivered copy of each, as the server would.
type copySource struct {
	js     jetstream.JetStream
	stream string
	n      int
	resend chan struct{}
}

func (s *copySource) Bound() *jetstream.ConsumerInfo { return nil }

func (s *copySource) Leave() {}

func (s *copySource) Consume(ctx context.Context, sink Sink) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{
		Durable: "copies", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	if err != nil {
		return err
	}
	sink.Ready(true)
	batch, err := cons.Fetch(s.n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return err
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
		sink.Deliver(m)
	}
	if err := batch.Error(); err != nil {
		return err
	}
	select {
	case <-s.resend:
		for _, m := range got {
			sink.Deliver(redelivered{Msg: m, nc: s.js.Conn()})
		}
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

// redelivered is a message as the server delivers it again: a new delivery, whose ack the
// client library has not seen yet, and which goes to the same reply subject.
type redelivered struct {
	jetstream.Msg
	nc *nats.Conn
}

func (m redelivered) Ack() error { return m.nc.Publish(m.Reply(), []byte("+ACK")) }

func (m redelivered) Metadata() (*jetstream.MsgMetadata, error) {
	meta, err := m.Msg.Metadata()
	if err != nil {
		return nil, err
	}
	again := *meta
	again.NumDelivered++
	return &again, nil
}
