// Package bridge owns the JetStream consumer of notifizz-bridge: it gathers the pieces of one
// notification event (a track, workflows, a commit) that many producers publish separately,
// calls the Notifizz API once per event, and then acks, naks or dead-letters the messages.
//
// State lives in the stream: a message is acked only after the API call that carried it
// succeeded, so a crash leaves every held message to be redelivered, and the idempotency key of
// an event is derived from the stream sequence of its track message, so a replayed event reaches
// the API under the key of its first attempt.
//
// One goroutine (the coordinator) owns every window, the timer heap and the set of held
// messages. A Source (the durable consumer, a consumer group's member, or one given with
// WithSource) delivers into a Sink: the bridge decodes each message on the source's goroutine and
// hands it to the coordinator, and turns the source's other requests (hold, release, rebound) into
// work the coordinator does between two messages. A fixed pool of workers makes the API calls and
// settles the messages. Besides what travels on channels, the goroutines share only the
// settler's memory of recent settlements (behind a mutex), and counters read by other goroutines
// through atomics: readiness, the health of dead-letter copies, the stall watchdog's verdict
// (health.go), and the metrics.
//
// Several bridges can share one stream (Config.Partitions): the stream's subject transform puts
// a partition, a hash of the event key, in front of each subject, and a pcgroups consumer group
// gives each partition to one bridge at a time, so that the pieces of an event still meet in
// one coordinator (package bridge/group, docs/SCALING.md).
package bridge
