package layout

import (
	"context"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"
)

// ElasticBucket is the key-value bucket where pcgroups keeps the elastic groups' configs, under
// <stream>.<group>.
const ElasticBucket = "elastic-consumer-groups"

// LivenessBucket is the key-value bucket where the replicas of consumer groups beat, under
// <stream>.<group>.<member> (see LivenessKey).
const LivenessBucket = "notifizz-bridge-liveness"

// StaticConsumerName is the name pcgroups gives a static member's consumer on the stream.
func StaticConsumerName(group, member string) string { return group + "-" + member }

// ElasticStreamName is the name of an elastic group's work-queue stream, on which each member's
// consumer is named after the member.
func ElasticStreamName(stream, group string) string { return stream + "-" + group }

// LivenessKey is the key under which member of group on stream beats in LivenessBucket.
func LivenessKey(stream, group, member string) string { return stream + "." + group + "." + member }

// CreateStaticGroup creates the static consumer group of stream with count partitions and
// members, or checks that the one that exists is the same. pcgroups compares member lists in
// order; sorted, every replica writes the same one.
func CreateStaticGroup(ctx context.Context, js jetstream.JetStream, stream, group string, count int, members []string) error {
	_, err := pcgroups.CreateStatic(ctx, js, stream, group, uint(count), nil, slices.Sorted(slices.Values(members)), nil)
	return err
}

// CreateElasticGroup creates the elastic consumer group of stream, whose subject prefix is
// prefix, with count partitions, or checks that the one that exists is the same. The group's
// work-queue stream re-partitions the stream's subjects (<partition>.<prefix>.<kind>.<key>) on
// the same key token, with the same count, so its partitions are the stream's.
func CreateElasticGroup(ctx context.Context, js jetstream.JetStream, stream, prefix, group string, count int) error {
	filters := []pcgroups.PartitioningFilter{{
		Filter:                "*." + prefix + ".*.*",
		PartitioningWildcards: []int{3},
	}}
	_, err := pcgroups.CreateElastic(ctx, js, stream, group, uint(count), filters, 0, 0)
	return err
}
