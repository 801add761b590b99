package schema

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/goccy/go-json"
)

// The bodies of the kinds of KindsV2 are the bodies of the Notifizz API's v2 calls, with
// resourceId in the body for the subscription kinds (the API has it in the URL).

// Identity is one identity of a person in the v2 identity calls, e.g. an email or a user id in
// one system: {"type", "identifier"}, both non-empty.
type Identity struct {
	Type       string `json:"type"`
	Identifier string `json:"identifier"`
}

// Identify is the body of an identify message: link two identities to the same audience.
type Identify struct {
	EnvironmentID string   `json:"environmentId"`
	SubjectA      Identity `json:"subjectA"`
	SubjectB      Identity `json:"subjectB"`
	ConsentBasis  string   `json:"consentBasis"`
	// ExpiresAt is when the link expires, zero for never (no expiresAt in the body).
	ExpiresAt time.Time `json:"-"`
}

// MarshalJSON writes a non-zero ExpiresAt as expiresAt in the SDKs' form: RFC 3339 in UTC with
// milliseconds.
func (m Identify) MarshalJSON() ([]byte, error) {
	// plain has Identify's fields but not its methods, so that Marshal does not call this again.
	type plain Identify
	if m.ExpiresAt.IsZero() {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		plain
		ExpiresAt string `json:"expiresAt"`
	}{plain(m), isoTime(m.ExpiresAt)})
}

// Detach is the body of a detach message: move an identity out of its audience.
type Detach struct {
	EnvironmentID string   `json:"environmentId"`
	Subject       Identity `json:"subject"`
}

// Subscribe is the body of a subscribe message: subscribe subscriberId to resourceId.
type Subscribe struct {
	ResourceID   string
	SubscriberID string
	// Meta holds every other key of the body, sent to the API beside subscriberId; nil when there
	// are none. Decoders of this package give numbers as json.Number.
	Meta map[string]any
}

// MarshalJSON writes resourceId, subscriberId, then the keys of Meta in sorted order, so that the
// same message always encodes to the same bytes (the default Nats-Msg-Id is a hash of the body).
// A key of Meta named resourceId or subscriberId is left out: the fields win.
func (s Subscribe) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, `{"resourceId":`...)
	b = appendJSON(b, s.ResourceID)
	b = append(b, `,"subscriberId":`...)
	b = appendJSON(b, s.SubscriberID)
	for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
		if k == "resourceId" || k == "subscriberId" {
			continue
		}
		v, err := json.Marshal(s.Meta[k])
		if err != nil {
			return nil, fmt.Errorf("schema: encode subscribe key %s: %w", quote(k), err)
		}
		b = append(b, ',')
		b = appendJSON(b, k)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// Unsubscribe is the body of an unsubscribe message: unsubscribe subscriberId from resourceId.
type Unsubscribe struct {
	ResourceID   string `json:"resourceId"`
	SubscriberID string `json:"subscriberId"`
}
