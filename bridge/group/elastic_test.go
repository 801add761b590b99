package group

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
)

// holdingSink keeps every message delivered to it, settling none, as the bridge does with the
// pieces of an open window.
type holdingSink struct{ got chan jetstream.Msg }

func (s *holdingSink) Deliver(m jetstream.Msg)                     { s.got <- m }
func (s *holdingSink) Ready(bool)                                  {}
func (s *holdingSink) HoldUntil(time.Time)                         {}
func (s *holdingSink) HoldRedelivered(time.Time)                   {}
func (s *holdingSink) Rebound()                                    {}
func (s *holdingSink) ReleaseKeys(func(key string) bool, bool) int { return 0 }

// next returns the next message delivered for key, skipping the others.
func (s *holdingSink) next(t *testing.T, key string) jetstream.Msg {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case m := <-s.got:
			if strings.HasSuffix(m.Subject(), "."+key) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message for key %s", key)
		}
	}
}

// TestElasticAckOfReplacedConsumerIsNotSent: a replica acks a message after a membership change
// has moved its partition away, once pcgroups has created the member's consumer again under the
// same name. The ack must not reach the new consumer: while the partition's next owner has no
// consumer yet, the server would remove the message on it, and the next owner would get the
// rest of that event without this piece (workflows without their track, dead-lettered as
// missing_track although the event was sent). The message stays, and comes again once the
// partition is back.
func TestElasticAckOfReplacedConsumerIsNotSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := natstest.Run(t, natstest.Options(t.TempDir()))
	_, js := natstest.Connect(t, srv.ClientURL())
	const count = 2
	streams := layout.Streams{Name: "N", SubjectPrefix: "notifizz", Storage: jetstream.MemoryStorage, Replicas: 1, Partitions: count}
	_, err := js.CreateStream(ctx, streams.Stream())
	require.NoError(t, err)
	cfg := Config{
		Stream: "N", SubjectPrefix: "notifizz", Manage: true, Replicas: 1,
		AckWait: 2 * time.Second, MaxDeliver: 10, MaxAckPending: 100,
		Count: count, Mode: Elastic, Group: "g", Member: "m",
	}
	s, err := New(ctx, js, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	sink := &holdingSink{got: make(chan jetstream.Msg, 100)}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Consume(cctx, sink) }()
	defer func() {
		stop()
		assert.NoError(t, <-done)
	}()

	// The key whose partition goes to x when x joins, and the key whose partition m keeps.
	gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, js, "N", "g")
	require.NoError(t, err)
	after := *gc
	after.Members = []string{"m", "x"}
	kept := map[string]bool{}
	for _, f := range pcgroups.ElasticGetPartitionFilters(after, "m") {
		p, _, _ := strings.Cut(f, ".")
		kept[p] = true
	}
	require.Len(t, kept, 1)
	var moving, staying string
	for i := 0; moving == "" || staying == ""; i++ {
		key := "k" + strconv.Itoa(i)
		if kept[strconv.Itoa(PartitionOf(key, count))] {
			staying = key
		} else {
			moving = key
		}
	}

	_, err = js.Publish(ctx, "notifizz.track."+moving, []byte("{}"))
	require.NoError(t, err)
	held := sink.next(t, moving) // delivered by the consumer as it is before x joins
	wq := held.(*msg).Msg        // as delivered from the work-queue stream
	meta, err := wq.Metadata()
	require.NoError(t, err)
	heldSeq := meta.Sequence.Stream

	// x joins and never consumes: pcgroups creates m's consumer again, with m's new share, and
	// the moving key's partition has no consumer.
	_, err = pcgroups.AddMembers(ctx, js, "N", "g", []string{"x"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, err := js.Consumer(ctx, ElasticStreamName("N", "g"), "m")
		return err == nil && slices.Equal(c.CachedInfo().Config.FilterSubjects, pcgroups.ElasticGetPartitionFilters(after, "m"))
	}, time.Minute, 10*time.Millisecond, "m's consumer created again with its new share")
	_, err = js.Publish(ctx, "notifizz.track."+staying, []byte("{}"))
	require.NoError(t, err)
	fresh := sink.next(t, staying) // delivered by the new consumer, past the held message
	meta, err = fresh.(*msg).Msg.Metadata()
	require.NoError(t, err)
	freshSeq := meta.Sequence.Stream
	require.Greater(t, freshSeq, heldSeq)

	// The bridge settles both, the held one first; the server applies acks in order, so once
	// the fresh one is gone, the held one's ack has been dealt with.
	require.NoError(t, held.Ack())
	require.NoError(t, fresh.Ack())
	wqs, err := js.Stream(ctx, ElasticStreamName("N", "g"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := wqs.GetMsg(ctx, freshSeq)
		return err != nil
	}, time.Minute, 10*time.Millisecond, "the new consumer's ack removes its message")
	_, err = wqs.GetMsg(ctx, heldSeq)
	require.NoError(t, err, "the replaced consumer's ack must not remove the message")

	// x leaves: the partition is back, and its message comes again.
	_, err = pcgroups.DeleteMembers(ctx, js, "N", "g", []string{"x"})
	require.NoError(t, err)
	again := sink.next(t, moving)
	meta, err = again.(*msg).Msg.Metadata()
	require.NoError(t, err)
	assert.Equal(t, heldSeq, meta.Sequence.Stream)
	require.NoError(t, again.Ack())
	require.Eventually(t, func() bool {
		_, err := wqs.GetMsg(ctx, heldSeq)
		return err != nil
	}, time.Minute, 10*time.Millisecond, "acked by the consumer that delivered it, it is removed")
}
