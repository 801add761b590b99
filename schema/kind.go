package schema

// Kind is the kind of a message, the second token of its subject.
type Kind string

// The four kinds. track, workflow and commit are the pieces of one event that the bridge
// coalesces; send is a request of its own (the Notification Center API).
const (
	KindTrack    Kind = "track"
	KindWorkflow Kind = "workflow"
	KindCommit   Kind = "commit"
	KindSend     Kind = "send"
)

// Kinds lists every kind, in the order the documentation presents them.
var Kinds = []Kind{KindTrack, KindWorkflow, KindCommit, KindSend}

// Valid reports whether k is one of the four kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindTrack, KindWorkflow, KindCommit, KindSend:
		return true
	}
	return false
}

// ParseKind returns the kind named s. Names are matched exactly: subjects are case-sensitive in
// NATS, so "Track" would never match the stream's subjects either. The error is an *Error with
// ReasonUnknownSubject.
func ParseKind(s string) (Kind, error) {
	if k := Kind(s); k.Valid() {
		return k, nil
	}
	return "", newError(ReasonUnknownSubject, "kind", unknownKind(s))
}

func unknownKind(s string) string {
	return "unknown kind " + quote(s) + " (want track, workflow, commit or send)"
}
