// Package layout is the one place that knows the shape of what the bridge reads on NATS: the
// notification stream and its partition transform, the dead-letter stream, the durable consumer
// and how it is pulled, and the names a consumer group gives its consumers, streams and buckets.
//
// The daemon, the load command and the tests build their streams and consumers from these
// constructors, so that a change of shape reaches all of them at once. The package imports
// nothing of the bridge's; it takes its settings as explicit values.
package layout
