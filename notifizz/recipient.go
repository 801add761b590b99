package notifizz

import (
	"bytes"
	"fmt"

	"github.com/goccy/go-json"
)

// Recipient is one addressee of a workflow or notification. On the wire it is
// {"id":..,"email":..} plus any custom keys, which templates can use.
type Recipient struct {
	ID    string
	Email string
	// Extra holds the custom keys. Keys named "id" or "email" are ignored
	// when encoding, so they can never override ID and Email. Values decoded
	// by UnmarshalJSON keep numbers as json.Number, so that they survive a
	// round trip exactly.
	Extra map[string]any
}

// Workflow attaches a campaign (a workflow of the Notifizz dashboard) and its
// recipients to a tracked event.
type Workflow struct {
	CampaignID string      `json:"campaignId"`
	Recipients []Recipient `json:"recipients"`
}

// MarshalJSON writes id, email, then the custom keys in sorted order.
func (r Recipient) MarshalJSON() ([]byte, error) {
	e := getEncodeState()
	defer putEncodeState(e)
	if err := e.recipient(&r); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

// UnmarshalJSON reads id and email, which must be strings (or null), and
// keeps every other key in Extra. JSON null leaves r unchanged, as
// encoding/json does for other types.
func (r *Recipient) UnmarshalJSON(data []byte) error {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	// Numbers stay as written (json.Number) instead of becoming float64,
	// which would change large IDs and amounts on the way back out.
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	id, err := recipientString(m, "id")
	if err != nil {
		return err
	}
	email, err := recipientString(m, "email")
	if err != nil {
		return err
	}
	delete(m, "id")
	delete(m, "email")
	*r = Recipient{ID: id, Email: email}
	if len(m) > 0 {
		r.Extra = m
	}
	return nil
}

// recipientString returns the string under key, "" when missing or null.
func recipientString(m map[string]any, key string) (string, error) {
	switch v := m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("notifizz: recipient %q must be a string, not %s", key, jsonKind(v))
	}
}

// jsonKind names the JSON type of a decoded value for error messages; the
// value itself is not printed.
func jsonKind(v any) string {
	switch v.(type) {
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("%T", v)
	}
}
