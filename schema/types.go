package schema

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/goccy/go-json"
)

// Recipient is one recipient of a notification, with the JSON shape of the Notifizz API's:
// {"id", "email", ...custom keys kept as given}.
type Recipient struct {
	ID    string
	Email string
	// Extra holds the custom keys, nil when there are none. Decoders of this package give
	// numbers as json.Number, so that they are forwarded exactly as the producer wrote them.
	Extra map[string]any
}

// MarshalJSON writes id, email, then the keys of Extra in sorted order, so that the same recipient
// always encodes to the same bytes (the default Nats-Msg-Id is a hash of the body). A key of Extra
// named id or email is left out: the fields win.
func (r Recipient) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, `{"id":`...)
	b = appendJSON(b, r.ID)
	b = append(b, `,"email":`...)
	b = appendJSON(b, r.Email)
	keys := slices.Sorted(maps.Keys(r.Extra))
	for _, k := range keys {
		if k == "id" || k == "email" {
			continue
		}
		v, err := json.Marshal(r.Extra[k])
		if err != nil {
			return nil, fmt.Errorf("schema: encode recipient key %s: %w", quote(k), err)
		}
		b = append(b, ',')
		b = appendJSON(b, k)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// appendJSON appends s as a JSON string; encoding a string cannot fail.
func appendJSON(b []byte, s string) []byte {
	enc, _ := json.Marshal(s)
	return append(b, enc...)
}

// UnmarshalJSON reads a recipient object: id and email, if present, must be strings, and every
// other key goes to Extra. It checks the representation only; whether a recipient is complete is
// for the decoders of this package to say, with a field path.
// As with the standard library, null leaves the recipient unchanged.
func (r *Recipient) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	var rec Recipient
	for _, f := range []struct {
		name string
		dst  *string
	}{{"id", &rec.ID}, {"email", &rec.Email}} {
		v, ok := m[f.name]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("schema: recipient %s must be a string", f.name)
		}
		*f.dst = s
		delete(m, f.name)
	}
	if len(m) > 0 {
		rec.Extra = m
	}
	*r = rec
	return nil
}

// Workflow asks for one campaign to be sent to recipients as part of an event: the body of a
// workflow message, and an element of Track.Workflows.
type Workflow struct {
	CampaignID string      `json:"campaignId"`
	Recipients []Recipient `json:"recipients"`
}

// MarshalJSON encodes nil Recipients as [], so that a workflow without recipients is refused as
// such ("must not be empty") rather than as a null.
func (w Workflow) MarshalJSON() ([]byte, error) {
	// plain has Workflow's fields but not its methods, so that Marshal does not call this again.
	type plain Workflow
	if w.Recipients == nil {
		w.Recipients = []Recipient{}
	}
	return json.Marshal(plain(w))
}

// Track is the body of a track message: the event itself, as given to the SDK's client.track.
type Track struct {
	EventName  string         `json:"eventName"`
	Properties map[string]any `json:"properties"`
	// Workflows are inline workflows, sent before those of workflow messages with the same key.
	Workflows []Workflow `json:"workflows,omitempty"`
	// IdempotencyKey, when set, replaces the key the bridge derives from the stream, for producers
	// that already have one (at most 255 bytes of printable ASCII, as it becomes an HTTP header).
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// OccurredAt is when the business event happened, zero when the body has no occurredAt. It is
	// part of the API's v2 surface (notifizz.api: v2); whether it is too far in the future depends
	// on when the message is received, which CheckOccurredAt judges.
	OccurredAt time.Time `json:"-"`
}

// MarshalJSON encodes nil Properties as {}, never null, as the SDK does and the contract requires,
// and a non-zero OccurredAt as occurredAt in the SDKs' form: RFC 3339 in UTC with milliseconds.
func (t Track) MarshalJSON() ([]byte, error) {
	// plain has Track's fields but not its methods, so that Marshal does not call this again.
	type plain Track
	if t.Properties == nil {
		t.Properties = map[string]any{}
	}
	if t.OccurredAt.IsZero() {
		return json.Marshal(plain(t))
	}
	return json.Marshal(struct {
		plain
		OccurredAt string `json:"occurredAt"`
	}{plain(t), isoTime(t.OccurredAt)})
}

// Send is the body of a send message: a request to the Notification Center API.
type Send struct {
	NotifID string `json:"notifId"`
	// Properties still contains "recipients" as the producer gave it; the bridge takes it out
	// when it builds the API request.
	Properties map[string]any `json:"properties"`
	// Recipients is properties.recipients, decoded and validated.
	Recipients []Recipient `json:"-"`
}

// MarshalJSON writes Recipients, when not nil, as properties.recipients (replacing any
// "recipients" in Properties), so that a Send can be built from either field; nil Properties
// are written as {}.
func (s Send) MarshalJSON() ([]byte, error) {
	props := s.Properties
	if s.Recipients != nil {
		props = make(map[string]any, len(s.Properties)+1)
		maps.Copy(props, s.Properties)
		props["recipients"] = s.Recipients
	} else if props == nil {
		props = map[string]any{}
	}
	return json.Marshal(struct {
		NotifID    string         `json:"notifId"`
		Properties map[string]any `json:"properties"`
	}{s.NotifID, props})
}

// decodeObject decodes a JSON object with go-json, giving numbers as json.Number: a bridge must
// not round 9007199254740993 to a float64 on the way through.
func decodeObject(data []byte) (map[string]any, error) {
	if useNumber == nil {
		return decodeObjectSlow(data)
	}
	var m map[string]any
	// UnmarshalOf, unlike Unmarshal, lets m stay on the stack.
	err := json.UnmarshalOf(data, &m, useNumber)
	return m, err
}

func decodeObjectSlow(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	return m, err
}

// useNumber is the go-json decode option equivalent to Decoder.UseNumber, or nil if it could not
// be derived. go-json exposes UseNumber only on its Decoder, which costs about seven allocations
// and a buffer per call, a quarter of the cost of decoding a typical message, which has several
// objects to decode. The option's flag is internal, so it is read from a Decoder once, through
// DecodeWithOption, which hands its options to option functions. If a go-json release changed
// that, useNumber would be nil and decodeObject would use a Decoder: slower, never wrong.
var useNumber = func() json.DecodeOptionFunc {
	flagsOf := func(numbers bool) (opt json.DecodeOption) {
		dec := json.NewDecoder(bytes.NewReader(nil))
		if numbers {
			dec.UseNumber()
		}
		// Decoding nothing fails with io.EOF, after the option function has run.
		_ = dec.DecodeWithOption(new(any), func(o *json.DecodeOption) { opt = *o })
		return opt
	}
	flag := flagsOf(true).Flags &^ flagsOf(false).Flags
	if flag == 0 {
		return nil
	}
	return func(o *json.DecodeOption) { o.Flags |= flag }
}()
