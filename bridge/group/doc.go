// Package group is a bridge replica's membership in a github.com/synadia-io/orbit.go/pcgroups
// consumer group: it consumes this replica's share of the stream's partitions and delivers each
// message into a Sink, which the bridge implements.
//
// A Member runs in one of two modes, each in its own file: static (a fixed list of members,
// their standbys pinned by the server, a dead member's partitions covered by the next live one)
// and elastic (replicas join and leave, the partitions rebalanced over the current members, dead
// members reaped). Replicas beat in a key-value bucket so that the others can tell a dead member
// from a live one (liveness.go). The names pcgroups and the bridge give the group's streams,
// consumers and buckets are in names.go.
//
// The package knows nothing of windows: when partitions move, it asks the Sink to release the
// windows of their keys, and to hold or resume flushing when a consumer changes hands. See
// docs/SCALING.md for the failover stories.
package group
