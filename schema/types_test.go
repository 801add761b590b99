package schema

import (
	stdjson "encoding/json"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecipientJSON(t *testing.T) {
	tests := []struct {
		name string
		r    Recipient
		want string
	}{
		{name: "plain", r: Recipient{ID: "u", Email: "u@example.com"}, want: `{"id":"u","email":"u@example.com"}`},
		{name: "extra sorted", r: Recipient{ID: "u", Email: "e", Extra: map[string]any{"z": 1, "a": "x", "m": []any{true}}},
			want: `{"id":"u","email":"e","a":"x","m":[true],"z":1}`},
		{name: "fields win over extra", r: Recipient{ID: "u", Email: "e", Extra: map[string]any{"id": "other", "email": "other"}},
			want: `{"id":"u","email":"e"}`},
		{name: "number kept exactly", r: Recipient{ID: "u", Email: "e", Extra: map[string]any{"n": json.Number("9007199254740993")}},
			want: `{"id":"u","email":"e","n":9007199254740993}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, marshal := range map[string]func(any) ([]byte, error){"go-json": json.Marshal, "encoding/json": stdjson.Marshal} {
				got, err := marshal(tt.r)
				require.NoError(t, err, name)
				assert.JSONEq(t, tt.want, string(got), name)
			}
			// The order of keys is part of the contract (stable message IDs), not only the content.
			got, err := tt.r.MarshalJSON()
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestRecipientUnmarshalJSON(t *testing.T) {
	var r Recipient
	require.NoError(t, json.Unmarshal([]byte(`{"email":"e","id":"u","lang":"fr","n":1.50}`), &r))
	assert.Equal(t, Recipient{ID: "u", Email: "e", Extra: map[string]any{"lang": "fr", "n": json.Number("1.50")}}, r)

	var w Workflow
	require.NoError(t, stdjson.Unmarshal([]byte(`{"campaignId":"c","recipients":[{"id":"u","email":"e"}]}`), &w))
	assert.Equal(t, Workflow{CampaignID: "c", Recipients: []Recipient{{ID: "u", Email: "e"}}}, w)

	assert.Error(t, json.Unmarshal([]byte(`{"id":1}`), &r))
	assert.Error(t, json.Unmarshal([]byte(`[]`), &r))
}

func TestTrackMarshalJSON(t *testing.T) {
	got, err := json.Marshal(Track{EventName: "e"})
	require.NoError(t, err)
	assert.Equal(t, `{"eventName":"e","properties":{}}`, string(got))

	got, err = json.Marshal(&Track{
		EventName:      "e",
		Properties:     map[string]any{"b": 2, "a": 1},
		Workflows:      []Workflow{{CampaignID: "c", Recipients: []Recipient{{ID: "u", Email: "m", Extra: map[string]any{"x": 1}}}}},
		IdempotencyKey: "k",
	})
	require.NoError(t, err)
	assert.Equal(t, `{"eventName":"e","properties":{"a":1,"b":2},"workflows":[{"campaignId":"c","recipients":[{"id":"u","email":"m","x":1}]}],"idempotencyKey":"k"}`, string(got))
}

func TestSendMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		s    Send
		want string
	}{
		{name: "nil properties", s: Send{NotifID: "n"}, want: `{"notifId":"n","properties":{}}`},
		{name: "recipients in properties", s: Send{NotifID: "n", Properties: map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "e"}}}},
			want: `{"notifId":"n","properties":{"recipients":[{"email":"e","id":"u"}]}}`},
		{name: "recipients field", s: Send{NotifID: "n", Properties: map[string]any{"title": "t"}, Recipients: []Recipient{{ID: "u", Email: "e"}}},
			want: `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}],"title":"t"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := tt.s.Properties
			got, err := json.Marshal(tt.s)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, props, tt.s.Properties, "Properties must not be modified")
		})
	}
}

func TestDecodedBodiesRoundTrip(t *testing.T) {
	// What a decoder returns, marshalled again, is a valid body that decodes to the same value
	// (unknown fields excepted, which decoders drop).
	for _, f := range corpusFiles(t, "valid") {
		if f.kind == KindCommit {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			first, err := decode(f.kind, f.data)
			require.NoError(t, err)
			again, err := json.Marshal(first)
			require.NoError(t, err)
			second, err := decode(f.kind, again)
			require.NoError(t, err, "%s", again)
			assert.Equal(t, inSDKForm(first), second)
		})
	}
}

// inSDKForm returns a decoded body with its dates as marshalling writes them, which is the form
// the SDKs send: in UTC, to the millisecond.
func inSDKForm(v any) any {
	sdk := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.UTC().Truncate(time.Millisecond)
	}
	switch b := v.(type) {
	case *Track:
		c := *b
		c.OccurredAt = sdk(c.OccurredAt)
		return &c
	case *Identify:
		c := *b
		c.ExpiresAt = sdk(c.ExpiresAt)
		return &c
	}
	return v
}

func TestV2MarshalJSON(t *testing.T) {
	ada := Identity{Type: "email", Identifier: "a"}
	at := time.Date(2026, 3, 1, 14, 0, 0, 999999999, time.FixedZone("", 2*60*60))
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{name: "track occurredAt", v: Track{EventName: "e", OccurredAt: at},
			want: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01T12:00:00.999Z"}`},
		{name: "identify", v: Identify{EnvironmentID: "e", SubjectA: ada, SubjectB: ada, ConsentBasis: "c"},
			want: `{"environmentId":"e","subjectA":{"type":"email","identifier":"a"},"subjectB":{"type":"email","identifier":"a"},"consentBasis":"c"}`},
		{name: "identify expiresAt", v: &Identify{EnvironmentID: "e", ConsentBasis: "c", ExpiresAt: at},
			want: `{"environmentId":"e","subjectA":{"type":"","identifier":""},"subjectB":{"type":"","identifier":""},"consentBasis":"c","expiresAt":"2026-03-01T12:00:00.999Z"}`},
		{name: "detach", v: Detach{EnvironmentID: "e", Subject: ada},
			want: `{"environmentId":"e","subject":{"type":"email","identifier":"a"}}`},
		{name: "subscribe meta sorted, fields win", v: Subscribe{ResourceID: "r", SubscriberID: "s",
			Meta: map[string]any{"z": 1, "a": []int{1}, "resourceId": "x", "subscriberId": "y"}},
			want: `{"resourceId":"r","subscriberId":"s","a":[1],"z":1}`},
		{name: "unsubscribe", v: Unsubscribe{ResourceID: "r", SubscriberID: "s"},
			want: `{"resourceId":"r","subscriberId":"s"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
	_, err := json.Marshal(Subscribe{ResourceID: "r", SubscriberID: "s", Meta: map[string]any{"c": make(chan int)}})
	assert.ErrorContains(t, err, `encode subscribe key "c"`)
}

func TestDecodeObjectKeepsNumbers(t *testing.T) {
	// useNumber is derived from go-json's internals; if that stops working the decoder falls back
	// to a slower path, which this test notices so that someone can look.
	require.NotNil(t, useNumber, "go-json's UseNumber flag could not be derived")
	m, err := decodeObject([]byte(`{"a":9007199254740993,"b":[1.50,{"c":-2e400}]}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"a": json.Number("9007199254740993"),
		"b": []any{json.Number("1.50"), map[string]any{"c": json.Number("-2e400")}},
	}, m)
}

func TestDecodeObjectSlowPath(t *testing.T) {
	body := []byte(`{"a":9007199254740993,"b":"c"}`)
	slow, err := decodeObjectSlow(body)
	require.NoError(t, err)
	fast, err := decodeObject(body)
	require.NoError(t, err)
	assert.Equal(t, fast, slow)
}
