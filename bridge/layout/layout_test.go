package layout_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
)

func TestPartitionTransform(t *testing.T) {
	assert.Nil(t, layout.PartitionTransform("notifizz", 0))
	assert.Equal(t, &jetstream.SubjectTransformConfig{
		Source:      "notifizz.*.*",
		Destination: "{{partition(8,2)}}.notifizz.{{wildcard(1)}}.{{wildcard(2)}}",
	}, layout.PartitionTransform("notifizz", 8))
}

func TestStreams(t *testing.T) {
	s := layout.Streams{
		Name: "N", SubjectPrefix: "p", DeadLetter: "D", DeadLetterPrefix: "p.dlq",
		Storage: layout.Storage("memory"), Replicas: 3, MaxAge: time.Hour, DuplicateWindow: time.Minute, Partitions: 4,
	}
	st := s.Stream()
	assert.Equal(t, "N", st.Name)
	assert.Equal(t, []string{"p.track.*", "p.workflow.*", "p.commit.*", "p.send.*", "p.identify.*", "p.detach.*", "p.subscribe.*", "p.unsubscribe.*"}, st.Subjects)
	assert.Equal(t, jetstream.MemoryStorage, st.Storage)
	assert.Equal(t, jetstream.LimitsPolicy, st.Retention)
	assert.Equal(t, 3, st.Replicas)
	assert.Equal(t, time.Hour, st.MaxAge)
	assert.Equal(t, time.Minute, st.Duplicates)
	assert.Equal(t, layout.PartitionTransform("p", 4), st.SubjectTransform)

	dl := s.DeadLetterStream()
	assert.Equal(t, "D", dl.Name)
	assert.Equal(t, []string{"p.dlq.*.*"}, dl.Subjects)
	assert.Zero(t, dl.MaxAge, "dead letters do not age out")
	assert.Nil(t, dl.SubjectTransform)
	assert.Equal(t, jetstream.FileStorage, layout.Storage("file"))
}

func TestConsumer(t *testing.T) {
	c := layout.Consumer{Durable: "d", AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 300}
	for _, start := range []uint64{0, 1} {
		cc := c.DurableConfig(start)
		assert.Equal(t, jetstream.DeliverAllPolicy, cc.DeliverPolicy)
		assert.Zero(t, cc.OptStartSeq)
	}
	cc := c.DurableConfig(42)
	assert.Equal(t, "d", cc.Durable)
	assert.Equal(t, jetstream.AckExplicitPolicy, cc.AckPolicy)
	assert.Equal(t, jetstream.DeliverByStartSequencePolicy, cc.DeliverPolicy)
	assert.Equal(t, uint64(42), cc.OptStartSeq)
	assert.Empty(t, cc.BackOff, "a BackOff would replace AckWait")

	m := c.MemberConfig()
	assert.Empty(t, m.Durable, "the group names its members' consumers")
	assert.Equal(t, time.Minute, m.AckWait)
	assert.Equal(t, 5, m.MaxDeliver)
	assert.Equal(t, 300, m.MaxAckPending)

	assert.Equal(t, 300, layout.PullBatch(300))
	assert.Equal(t, layout.MaxPullBatch, layout.PullBatch(100_000))
	assert.Equal(t, 16<<20, layout.PullBytes(1<<20))
	assert.Equal(t, 2*(64<<20)+64<<10, layout.PullBytes(64<<20))
	assert.Len(t, c.Pull(1<<20), 2)
}

func TestGroupNames(t *testing.T) {
	assert.Equal(t, "g-m1", layout.StaticConsumerName("g", "m1"))
	assert.Equal(t, "NOTIFIZZ-g", layout.ElasticStreamName("NOTIFIZZ", "g"))
	assert.Equal(t, "NOTIFIZZ.g.m1", layout.LivenessKey("NOTIFIZZ", "g", "m1"))
}
