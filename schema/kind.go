package schema

// Kind is the kind of a message, the second token of its subject.
type Kind string

// The four kinds of the v1 profile. track, workflow and commit are the pieces of one event that
// the bridge coalesces; send is a request of its own (the Notification Center API).
const (
	KindTrack    Kind = "track"
	KindWorkflow Kind = "workflow"
	KindCommit   Kind = "commit"
	KindSend     Kind = "send"
)

// The kinds of the Notifizz API's v2 surface (notifizz.api: v2): each is one request of its own,
// the subject key naming it. Kinds, Valid and ParseKind leave them out (they name the v1
// surface); KindsV2, AllKinds, Known, ParseKindAny, StreamSubjects and ParseSubject include them.
const (
	KindIdentify    Kind = "identify"
	KindDetach      Kind = "detach"
	KindSubscribe   Kind = "subscribe"
	KindUnsubscribe Kind = "unsubscribe"
)

// Kinds lists the four kinds of the v1 profile, in the order the documentation presents them.
// It does not include KindsV2.
var Kinds = []Kind{KindTrack, KindWorkflow, KindCommit, KindSend}

// KindsV2 lists the kinds of the v2 surface, in the order the documentation presents them.
var KindsV2 = []Kind{KindIdentify, KindDetach, KindSubscribe, KindUnsubscribe}

// AllKinds lists every kind this package can decode: Kinds, then KindsV2.
var AllKinds = []Kind{KindTrack, KindWorkflow, KindCommit, KindSend,
	KindIdentify, KindDetach, KindSubscribe, KindUnsubscribe}

// Valid reports whether k is one of the four kinds of Kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindTrack, KindWorkflow, KindCommit, KindSend:
		return true
	}
	return false
}

// Known reports whether k is one of AllKinds: a kind of Kinds or of KindsV2.
func (k Kind) Known() bool {
	switch k {
	case KindIdentify, KindDetach, KindSubscribe, KindUnsubscribe:
		return true
	}
	return k.Valid()
}

// ParseKind returns the kind named s, one of Kinds. Names are matched exactly: subjects are
// case-sensitive in NATS, so "Track" would never match the stream's subjects either. The error is
// an *Error with ReasonUnknownSubject.
func ParseKind(s string) (Kind, error) {
	if k := Kind(s); k.Valid() {
		return k, nil
	}
	return "", newError(ReasonUnknownSubject, "kind", unknownKind(s))
}

// ParseKindAny is ParseKind for every kind of AllKinds, the v2 kinds included. The error's text
// lists all of them.
func ParseKindAny(s string) (Kind, error) {
	if k := Kind(s); k.Known() {
		return k, nil
	}
	return "", newError(ReasonUnknownSubject, "kind", unknownKindAny(s))
}

func unknownKind(s string) string {
	return "unknown kind " + quote(s) + " (want track, workflow, commit or send)"
}

func unknownKindAny(s string) string {
	return "unknown kind " + quote(s) +
		" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)"
}
