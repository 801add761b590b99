package group

import "hash/fnv"

// The names pcgroups and the bridge give a group's streams, consumers, buckets and keys, and the
// headers the server puts on the messages a group reads.

// ElasticBucket is the key-value bucket where pcgroups keeps the elastic groups' configs, under
// <stream>.<group>.
const ElasticBucket = "elastic-consumer-groups"

// LivenessBucket is the key-value bucket where the replicas of consumer groups beat, under
// <stream>.<group>.<member>. It keeps one value per key: a beat is worth nothing once the next
// one is due. It is on file storage, so that a lone server's restart does not lose it.
const LivenessBucket = "notifizz-bridge-liveness"

// pinHeader is the header the server puts on messages of a consumer with a pinned priority
// group: the id of the pinned client.
const pinHeader = "Nats-Pin-Id"

// sourceHeader is the header a sourced stream puts on each message it copies:
// "<origin stream> <origin sequence> ...".
const sourceHeader = "Nats-Stream-Source"

// StaticConsumerName is the name pcgroups gives a static member's consumer.
func StaticConsumerName(group, member string) string { return group + "-" + member }

// ElasticStreamName is the name pcgroups gives an elastic group's work-queue stream.
func ElasticStreamName(stream, group string) string { return stream + "-" + group }

// livenessKey is the key member of group beats under in LivenessBucket.
func livenessKey(stream, group, member string) string { return stream + "." + group + "." + member }

// PartitionOf is the partition the server's {{partition(n,...)}} transform gives a key: FNV-1a
// over the key's bytes, modulo n.
func PartitionOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
