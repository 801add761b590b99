package group

import (
	"context"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// wrap presents a message of the group as the bridge expects it, meta being its metadata as
// the bridge should see it. pcgroups strips the first token of the subject it reads. A static
// member reads the stream itself, so the stripped token is the partition, which wrap puts back:
// the subject as stored, for dead-letter headers. An elastic member reads the group's
// work-queue copy, where the stripped token is the copy's own partition and the rest is already
// the stream's subject; its metadata is the stream's (see originMetadata), so that idempotency
// keys and dead-letter headers name the stream and sequence where the message is stored, as in
// the other modes, and survive the work-queue stream being recreated.
func (s *Member) wrap(m jetstream.Msg, meta *jetstream.MsgMetadata) *msg {
	// The delivery headers describe this delivery, not the message: the dead-letter copy
	// keeps the original's headers, and the server refuses a publish that carries
	// Nats-Stream-Source (it is for sourcing alone).
	h := m.Headers()
	h.Del(pinHeader)
	h.Del(sourceHeader)
	pm := &msg{Msg: m, subject: m.Subject(), meta: meta}
	if s.cfg.Mode == Static {
		key := pm.subject[strings.LastIndexByte(pm.subject, '.')+1:]
		pm.subject = strconv.Itoa(PartitionOf(key, s.cfg.Count)) + "." + pm.subject
	}
	return pm
}

// originMetadata returns a sourced message's metadata with the stream and sequence it was
// copied from, or nil when the message carries no usable Nats-Stream-Source header.
func originMetadata(m jetstream.Msg) *jetstream.MsgMetadata {
	name, rest, ok := strings.Cut(m.Headers().Get(sourceHeader), " ")
	if !ok || name == "" {
		return nil
	}
	seqText, _, _ := strings.Cut(rest, " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 {
		return nil
	}
	meta, err := m.Metadata()
	if err != nil {
		return nil
	}
	origin := *meta
	origin.Stream = name
	origin.Sequence.Stream = seq
	return &origin
}

// msg is a message of a consumer group with the subject and metadata the bridge should see.
// Acks and the rest go to the message as delivered, but for the acks of an elastic member's
// message whose consumer has been replaced since it delivered it (see consumerJS).
type msg struct {
	jetstream.Msg
	subject string
	meta    *jetstream.MsgMetadata // nil when the delivered message had none

	gens *consumerGens // an elastic member's: the generations of its consumer
	gen  int64         // the generation that delivered the message (see consumerGens)
}

// Ack acks the message, unless the consumer that delivered it has been replaced: then the ack
// is not sent, and it reports success all the same. The partition's consumer delivers the
// message again: here, where the bridge acks it as a copy of a message it settled, or at the
// partition's next owner, which replays the event under the same idempotency key.
func (m *msg) Ack() error {
	if m.replaced() {
		return nil
	}
	return m.Msg.Ack()
}

// DoubleAck is Ack, waiting for the server's answer.
func (m *msg) DoubleAck(ctx context.Context) error {
	if m.replaced() {
		return nil
	}
	return m.Msg.DoubleAck(ctx)
}

func (m *msg) replaced() bool { return m.gens != nil && m.gens.replaced(m.gen) }

func (m *msg) Subject() string { return m.subject }

func (m *msg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta != nil {
		return m.meta, nil
	}
	return m.Msg.Metadata()
}
