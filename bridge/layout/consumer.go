package layout

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Consumer holds the settings of the bridge's consumers.
type Consumer struct {
	Durable       string // the single consumer's name; group members' consumers are named by the group
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int // bounds the messages held in memory
}

// DurableConfig returns the config of the durable consumer of the single-replica mode. It delivers
// from stream sequence start, or from the stream's first message when start is at most 1.
// No BackOff: it would silently replace AckWait with its first step. Delays come from
// NakWithDelay instead, chosen per message.
func (c Consumer) DurableConfig(start uint64) jetstream.ConsumerConfig {
	cc := c.config("notifizz-bridge")
	cc.Durable = c.Durable
	if start > 1 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	return cc
}

// MemberConfig returns the template from which a consumer group creates a member's consumer: the
// group fills in the name, the filters and the pinned priority group, and derives the pin TTL
// and the pull expiry from AckWait. No BackOff, as for the durable consumer.
func (c Consumer) MemberConfig() jetstream.ConsumerConfig {
	return c.config("notifizz-bridge partition member")
}

func (c Consumer) config(description string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Description:   description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// PullExpiry is how long one pull request waits. It is short: when the consumer sits at
// MaxAckPending, a pull waits for its whole expiry before the next one is issued, so a long one
// stalls the bridge after a burst.
const PullExpiry = 5 * time.Second

// MaxPullBatch bounds the messages of one pull request.
const MaxPullBatch = 1000

// PullBatch is the messages one pull request asks for: MaxAckPending, at most MaxPullBatch.
func PullBatch(maxAckPending int) int { return min(maxAckPending, MaxPullBatch) }

// PullBytes bounds the bytes of one pull request, and so what the client buffers (about two
// requests' worth): a batch of large messages would otherwise buffer batch × the server's max
// payload (1,000 × 64 MB at worst). It never goes below twice the max payload, under which a
// message the size of the max payload would stall the consumer.
func PullBytes(maxPayload int64) int {
	return max(16<<20, 2*int(maxPayload)+64<<10)
}

// Pull returns the options with which the durable consumer is pulled, for a connection whose
// server accepts payloads of maxPayload bytes.
func (c Consumer) Pull(maxPayload int64) []jetstream.PullConsumeOpt {
	return []jetstream.PullConsumeOpt{
		jetstream.PullExpiry(PullExpiry),
		jetstream.PullMaxMessagesWithBytesLimit(PullBatch(c.MaxAckPending), PullBytes(maxPayload)),
	}
}
