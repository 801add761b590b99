package deadletter

import (
	"strconv"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Subject is the subject of the dead letter of a message of kind with event key key:
// <prefix>.<kind>.<key>.
func Subject(prefix string, kind schema.Kind, key string) string {
	return prefix + "." + string(kind) + "." + key
}

// UnknownSubject is the subject of the dead letter of a message whose subject names no kind and
// key (it could not be parsed, or no stream captured it): <prefix>.unknown.<id>, id being the
// message's stream sequence, or a random token when it was never in a stream.
func UnknownSubject(prefix, id string) string {
	return prefix + ".unknown." + id
}

// Filter is the subject filter of every dead letter under prefix: the dead-letter stream's.
func Filter(prefix string) string {
	return prefix + ".*.*"
}

// KeyFilter is the subject filter of every dead letter of the event key key.
func KeyFilter(prefix, key string) string {
	return prefix + ".*." + key
}

// MsgID is the Nats-Msg-Id of the dead letter of the message at seq in stream, so that a copy
// published twice (an ack lost, a redelivery) is stored once.
func MsgID(stream string, seq uint64) string {
	return "dlq-" + stream + "-" + strconv.FormatUint(seq, 10)
}

// UnknownMsgID is the Nats-Msg-Id of a dead letter stored under UnknownSubject(prefix, id) for a
// message that was never in a stream.
func UnknownMsgID(id string) string {
	return "dlq-unknown-" + id
}

// ReplayMsgID is the Nats-Msg-Id of the replay of the dead letter at seq in the dead-letter
// stream dlqStream, so that a dead letter replayed twice within the duplicate window is stored
// once.
func ReplayMsgID(dlqStream string, seq uint64) string {
	return "replay-" + dlqStream + "-" + strconv.FormatUint(seq, 10)
}
