package group

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMsg is a delivered message with a subject, headers and metadata; nothing else is called.
type fakeMsg struct {
	jetstream.Msg
	subject string
	hdr     nats.Header
	meta    *jetstream.MsgMetadata
}

func (m *fakeMsg) Subject() string                           { return m.subject }
func (m *fakeMsg) Headers() nats.Header                      { return m.hdr }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.meta, nil }

// TestWrap: a static member puts the partition the transform gave the key back in front of the
// subject pcgroups stripped; an elastic member's message names the stream and sequence it was
// copied from; the delivery headers are dropped in both.
func TestWrap(t *testing.T) {
	delivered := &jetstream.MsgMetadata{Stream: "NOTIFIZZ-bridges", Sequence: jetstream.SequencePair{Stream: 3}, NumDelivered: 2}
	t.Run("static", func(t *testing.T) {
		s := &Member{cfg: Config{Mode: Static, Count: 7}}
		m := &fakeMsg{subject: "notifizz.track.order-1", hdr: nats.Header{pinHeader: {"p1"}}, meta: delivered}
		got := s.wrap(m, delivered)
		// The server puts order-1 in partition 1 of 7 (bridge.TestPartitionTransform checks
		// PartitionOf against the server).
		assert.Equal(t, "1.notifizz.track.order-1", got.Subject())
		assert.Empty(t, got.Headers().Get(pinHeader))
	})
	t.Run("elastic", func(t *testing.T) {
		s := &Member{cfg: Config{Mode: Elastic, Count: 7}}
		m := &fakeMsg{subject: "4.notifizz.track.order-1", hdr: nats.Header{sourceHeader: {"NOTIFIZZ 42 > >"}}, meta: delivered}
		origin := originMetadata(m)
		require.NotNil(t, origin)
		got := s.wrap(m, origin)
		assert.Equal(t, "4.notifizz.track.order-1", got.Subject())
		assert.Empty(t, got.Headers().Get(sourceHeader))
		meta, err := got.Metadata()
		require.NoError(t, err)
		assert.Equal(t, "NOTIFIZZ", meta.Stream)
		assert.Equal(t, uint64(42), meta.Sequence.Stream)
		assert.Equal(t, uint64(2), meta.NumDelivered, "the delivery count is the delivered message's")
	})
	t.Run("no usable source header", func(t *testing.T) {
		for _, h := range []string{"", "NOTIFIZZ", "NOTIFIZZ x", "NOTIFIZZ 0", " 5"} {
			m := &fakeMsg{hdr: nats.Header{sourceHeader: {h}}, meta: delivered}
			assert.Nil(t, originMetadata(m), "header %q", h)
		}
	})
}
