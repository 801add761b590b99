package bridge

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Partitioning modes: how the replicas of a partitioned bridge share the partitions.
const (
	// PartitionStatic is a fixed list of members, each reading its share of the partitions
	// straight from the stream. A second instance started under a member's name is its hot
	// standby: the server pins the member's consumer to one instance at a time.
	PartitionStatic = group.Static
	// PartitionElastic is a group that replicas join when they start and leave when they stop,
	// its partitions rebalanced over the current members. The group reads a work-queue copy of
	// the stream that pcgroups maintains.
	PartitionElastic = group.Elastic
)

// maxPartitions bounds partitions.count: each partition is one filter subject on a member's
// consumer, and far more partitions than replicas buys nothing.
const maxPartitions = 1024

// PartitionsConfig spreads the stream over several bridge replicas. The stream's subject
// transform stores each message under <partition>.<prefix>.<kind>.<key>, the partition a hash
// of the event key, so that every piece of one event lands in one partition; a
// github.com/synadia-io/orbit.go/pcgroups consumer group gives each partition to one replica
// at a time, so a window is never split over two replicas.
type PartitionsConfig struct {
	// Count is the number of partitions; 0 keeps the single-replica mode (one durable
	// consumer, no subject transform). It is fixed when the stream is created: the bridge
	// refuses to run against a stream partitioned differently.
	Count int
	// Mode is PartitionStatic or PartitionElastic.
	Mode group.Mode
	// Group names the consumer group.
	Group string
	// Member is this replica's name in the group.
	Member string
	// Members is the static group's membership, fixed when the group is created; elastic
	// groups ignore it (their members join by themselves).
	Members []string
	// FailoverAfter is how long a member's heartbeat may stand still before the others take it
	// for dead: a static member's partitions then get a standby on the next live member, an
	// elastic member is dropped from the group. Replicas beat every quarter of it. It does not
	// depend on Consumer.AckWait.
	FailoverAfter time.Duration
}

// Bounds of PartitionsConfig.FailoverAfter. Below the lower one a replica beats more often than
// every 500ms, and a pause of a second or two (a garbage collection, a server busy electing a
// leader) would have it taken for dead and its partitions moved, back and forth; the upper one
// keeps a dead member's partitions from waiting for longer than anyone would want.
const (
	MinFailoverAfter = 2 * time.Second
	MaxFailoverAfter = 10 * time.Minute
)

// validMemberName accepts the names pcgroups turns into consumer and stream names
// (<group>-<member>, <stream>-<group>), which allow no '.', wildcards or spaces.
func validMemberName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// partitionDest matches a transform destination that puts a partition number first, as
// layout.PartitionTransform and the pcgroups documentation write it.
var partitionDest = regexp.MustCompile(`^\{\{\s*[Pp]artition\(\s*(\d+)\s*[,)]`)

// streamPartitions returns the number of partitions a stream's subject transform makes, 0 when
// it has none.
func streamPartitions(t *jetstream.SubjectTransformConfig) int {
	if t == nil {
		return 0
	}
	m := partitionDest.FindStringSubmatch(t.Destination)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return n
}

// checkStreamPartitions refuses to run against an existing stream partitioned differently from
// partitions.count. Messages already stored keep the subjects they were stored under, so a new
// count would put one event key in two partitions (a split window), and a count of 0 would
// read every partitioned subject as unknown. A stream that does not exist yet passes: it is
// created with the configured transform.
func (b *Bridge) checkStreamPartitions(ctx context.Context) error {
	name, want := b.cfg.Stream.Name, b.cfg.Partitions.Count
	s, err := b.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	have := streamPartitions(s.CachedInfo().Config.SubjectTransform)
	switch {
	case have == want:
		return nil
	case want == 0:
		return fmt.Errorf("partitions.count: stream %s is partitioned into %d partitions, so partitions.count must be %d to read it, not 0", name, have, have)
	case have == 0:
		return fmt.Errorf("partitions.count: stream %s exists without partitions; partitioning an existing stream is not supported "+
			"(see docs/SCALING.md): drain it and delete it, or use a new stream.name", name)
	default:
		return fmt.Errorf("partitions.count: stream %s has %d partitions, not %d; repartitioning an existing stream is not supported (see docs/SCALING.md)",
			name, have, want)
	}
}

// parseSubject splits a message's subject into its kind and key. A partitioned stream stores
// <partition>.<prefix>.<kind>.<key>; the partition token goes first, so that schema sees the
// subject the producer published.
func (b *Bridge) parseSubject(subject string) (schema.Kind, string, error) {
	if b.cfg.Partitions.Count > 0 {
		_, subject, _ = schema.SplitPartition(subject)
	}
	return schema.ParseSubject(b.cfg.Stream.SubjectPrefix, subject)
}

// newGroupSource returns this replica's member of the consumer group, which New provisions
// (the streams must exist already).
func (b *Bridge) newGroupSource(ctx context.Context) (Source, error) {
	cfg := b.cfg
	p := cfg.Partitions
	m, err := group.New(ctx, b.js, group.Config{
		Stream:        cfg.Stream.Name,
		SubjectPrefix: cfg.Stream.SubjectPrefix,
		Manage:        cfg.Stream.Create,
		FileStorage:   cfg.Stream.Storage == StorageFile,
		Replicas:      cfg.Stream.Replicas,
		FailoverAfter: p.FailoverAfter,
		AckWait:       cfg.Consumer.AckWait,
		MaxDeliver:    cfg.Consumer.MaxDeliver,
		MaxAckPending: cfg.Consumer.MaxAckPending,
		Count:         p.Count,
		Mode:          p.Mode,
		Group:         p.Group,
		Member:        p.Member,
		Members:       p.Members,
	}, b.log)
	if err != nil {
		return nil, err
	}
	return groupSource{m}, nil
}

// groupSource is a group member as a Source: the member delivers into the part of the Sink it
// declares (group.Sink), which every Sink satisfies.
type groupSource struct{ *group.Member }

func (g groupSource) Consume(ctx context.Context, sink Sink) error {
	return g.Member.Consume(ctx, sink)
}
