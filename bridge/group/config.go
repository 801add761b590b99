package group

import "time"

// Mode is how the replicas of a group share the partitions.
type Mode string

// The two modes of a group.
const (
	// Static is a fixed list of members, each reading its share of the partitions straight
	// from the stream. A second instance started under a member's name is its hot standby: the
	// server pins the member's consumer to one instance at a time.
	Static Mode = "static"
	// Elastic is a group that replicas join when they start and leave when they stop, its
	// partitions rebalanced over the current members. The group reads a work-queue copy of the
	// stream that pcgroups maintains.
	Elastic Mode = "elastic"
)

// Config is what a Member needs to know of the stream, the consumer settings and the group.
// The bridge fills it from its own config, which validates it.
type Config struct {
	Stream        string // the name of the stream the group reads
	SubjectPrefix string // the stream's subject prefix, after the partition token
	Manage        bool   // create the group and the heartbeat bucket (the bridge's stream.create)
	FileStorage   bool   // the stream is on file storage
	Replicas      int    // replicas of the heartbeat bucket

	// FailoverAfter is how long a member's beat may stand still before the others take it for
	// dead (DeadAfter); the beats come every quarter of it (BeatEvery). It does not depend on
	// AckWait.
	FailoverAfter time.Duration

	// The member's consumer: pcgroups creates it from these (see New).
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int

	Count   int      // the number of partitions, fixed with the stream's subject transform
	Mode    Mode     // Static or Elastic
	Group   string   // the group's name
	Member  string   // this replica's name in the group
	Members []string // the static group's members; elastic groups ignore it
}
