package group

import (
	"hash/fnv"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
)

// The names pcgroups and the bridge give a group's streams, consumers, buckets and keys, and the
// headers the server puts on the messages a group reads.

// ElasticBucket is the key-value bucket where pcgroups keeps the elastic groups' configs (see
// bridge/layout, where the group's names are defined for every user of the stream).
const ElasticBucket = layout.ElasticBucket

// LivenessBucket is the key-value bucket where the replicas of consumer groups beat. It keeps
// one value per key: a beat is worth nothing once the next one is due. It is on file storage, so
// that a lone server's restart does not lose it.
const LivenessBucket = layout.LivenessBucket

// pinHeader is the header the server puts on messages of a consumer with a pinned priority
// group: the id of the pinned client.
const pinHeader = "Nats-Pin-Id"

// sourceHeader is the header a sourced stream puts on each message it copies:
// "<origin stream> <origin sequence> ...".
const sourceHeader = "Nats-Stream-Source"

// StaticConsumerName is the name pcgroups gives a static member's consumer.
func StaticConsumerName(group, member string) string { return layout.StaticConsumerName(group, member) }

// ElasticStreamName is the name pcgroups gives an elastic group's work-queue stream.
func ElasticStreamName(stream, group string) string { return layout.ElasticStreamName(stream, group) }

// livenessKey is the key member of group beats under in LivenessBucket.
func livenessKey(stream, group, member string) string {
	return layout.LivenessKey(stream, group, member)
}

// PartitionOf is the partition the server's {{partition(n,...)}} transform gives a key: FNV-1a
// over the key's bytes, modulo n.
func PartitionOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
