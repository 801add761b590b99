package layout

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Streams describes the notification stream and its dead-letter stream.
type Streams struct {
	Name             string // the notification stream
	SubjectPrefix    string // producers publish on <SubjectPrefix>.<kind>.<key>
	DeadLetter       string // the dead-letter stream
	DeadLetterPrefix string // dead letters are stored on <DeadLetterPrefix>.<reason>.<key>
	Storage          jetstream.StorageType
	Replicas         int
	MaxAge           time.Duration // of the notification stream; 0 keeps messages until other limits
	DuplicateWindow  time.Duration
	// Partitions is the number of partitions the notification stream's subject transform
	// makes; 0 stores subjects as they are published.
	Partitions int
}

// Storage returns the storage type a config names: "memory" is memory storage, anything else
// file storage.
func Storage(name string) jetstream.StorageType {
	if name == "memory" {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Stream returns the config of the notification stream: every kind's subjects under the prefix,
// limits retention, and, when partitioned, the partition transform.
func (s Streams) Stream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.Name,
		Description: "notifizz-bridge: the messages of every kind (track, workflow, commit, send, identify, detach, subscribe, unsubscribe)",
		Subjects:    schema.StreamSubjects(s.SubjectPrefix),
		Retention:   jetstream.LimitsPolicy,
		Storage:     s.Storage,
		Replicas:    s.Replicas,
		MaxAge:      s.MaxAge,
		Duplicates:  s.DuplicateWindow,
		// In partitioned mode, stored subjects carry the partition of their event key.
		SubjectTransform: PartitionTransform(s.SubjectPrefix, s.Partitions),
	}
}

// DeadLetterStream returns the config of the dead-letter stream, which keeps its letters
// without age limit.
func (s Streams) DeadLetterStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.DeadLetter,
		Description: "notifizz-bridge: dead letters, with their reason in headers",
		Subjects:    []string{deadletter.Filter(s.DeadLetterPrefix)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     s.Storage,
		Replicas:    s.Replicas,
		Duplicates:  s.DuplicateWindow,
	}
}

// PartitionTransform returns the notification stream's subject transform for count partitions,
// nil when count is 0: <prefix>.<kind>.<key> is stored as <partition>.<prefix>.<kind>.<key>. It
// hashes the key token alone, so that the track, workflows and commit of one event, published
// on different kinds, land in the same partition.
func PartitionTransform(prefix string, count int) *jetstream.SubjectTransformConfig {
	if count <= 0 {
		return nil
	}
	return &jetstream.SubjectTransformConfig{
		Source:      prefix + ".*.*",
		Destination: fmt.Sprintf("{{partition(%d,2)}}.%s.{{wildcard(1)}}.{{wildcard(2)}}", count, prefix),
	}
}
