package deadletter

import (
	"slices"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Reason is the value of a dead letter's Notifizz-Dlq-Reason header: why the message was
// dead-lettered. It is schema.Reason, so that the decoder's reasons need no conversion; this
// package lists every reason, the decoder's and the bridge's own.
type Reason = schema.Reason

// The reasons a message is refused while it is decoded (see schema).
const (
	ReasonInvalidJSON     = schema.ReasonInvalidJSON
	ReasonInvalidMessage  = schema.ReasonInvalidMessage
	ReasonSecretInMessage = schema.ReasonSecretInMessage
	ReasonTooLarge        = schema.ReasonTooLarge
	ReasonUnknownSubject  = schema.ReasonUnknownSubject
)

// The reasons the bridge decides while it processes a valid message.
const (
	// ReasonAPIRejected: the API refused the call for good (a 4xx other than 408, 425 and 429,
	// a 3xx), or the client refused to make it.
	ReasonAPIRejected Reason = "api_rejected"
	// ReasonMaxDeliveries: the call still failed on the message's last delivery.
	ReasonMaxDeliveries Reason = "max_deliveries"
	// ReasonMissingTrack: workflow or commit messages whose event's track did not come in time.
	ReasonMissingTrack Reason = "missing_track"
	// ReasonDuplicateTrack: a second, different track for an event whose window is open.
	ReasonDuplicateTrack Reason = "duplicate_track"
	// ReasonTooManyWorkflows: workflows beyond coalesce.maxWorkflows for one event.
	ReasonTooManyWorkflows Reason = "too_many_workflows"
	// ReasonUnsupported: the message cannot be expressed in the configured API profile
	// (notifizz.api): a workflow, an inline workflow or a send under v2, a v2 kind under v1.
	ReasonUnsupported Reason = "unsupported"
	// ReasonSchemaMismatch: a track that names an undeclared event or fails its event's schema,
	// in the event catalog's strict mode.
	ReasonSchemaMismatch Reason = "schema_mismatch"
)

// reasons is every reason, in the order the documentation lists them.
var reasons = []Reason{
	ReasonInvalidJSON, ReasonInvalidMessage, ReasonSecretInMessage, ReasonTooLarge, ReasonUnknownSubject,
	ReasonAPIRejected, ReasonMaxDeliveries, ReasonMissingTrack, ReasonDuplicateTrack, ReasonTooManyWorkflows,
	ReasonUnsupported, ReasonSchemaMismatch,
}

// Reasons returns every reason a dead letter may carry, in the order the documentation lists
// them.
func Reasons() []Reason { return slices.Clone(reasons) }

// Known reports whether r is one of Reasons.
func Known(r Reason) bool { return slices.Contains(reasons, r) }

// FailsUnchanged reports whether a dead letter of reason r fails the same way when replayed as
// it is: its body itself is at fault (not JSON, or not a valid message), so only a corrected
// message, published again by its producer, can succeed.
func FailsUnchanged(r Reason) bool {
	return r == ReasonInvalidJSON || r == ReasonInvalidMessage
}
