package schema

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The custom keys of a recipient are built by the parser as it reads them. What it builds must be
// what go-json gives for the same JSON (decodeObject, which Recipient.UnmarshalJSON uses): the tests
// below decode each accepted body a second time with decodeObject, take the recipients' objects
// out of it, remove id and email, and compare.

// recipientBodies are bodies whose custom recipient keys exercise what go-json could decode
// differently: escapes in keys and values, surrogates (paired, lone, reversed), duplicate keys at
// every depth, empty containers, numbers as written, and nesting.
var recipientBodies = []struct {
	kind Kind
	body string
}{
	{KindWorkflow, `{"campaignId":"c","recipients":[{"id":"u","email":"e","a":1,"b":-0.0e+00,"c":9007199254740993,"d":1E400,"e":-12.50}]}`},
	{KindWorkflow, `{"campaignId":"c","recipients":[{"id":"u","email":"e","s":"plain","t":"tab\tq\"b\\s\/u\u00e9\ud83d\ude00"}]}`},
	{KindWorkflow, `{"campaignId":"c","recipients":[{"id":"u","email":"e","lone":"\ud800","low":"\udc00x","rev":"\ude00\ud83d","nul":"\u0000","hi":"\ud800\u0041"}]}`},
	{KindWorkflow, `{"campaignId":"c","recipients":[{"id":"u","email":"e","k\u00e9y":1,"\ud800k":2,"\u0061":3,"a":4,"":5}]}`},
	{KindWorkflow, `{"campaignId":"c","recipients":[{"id":"u","x":1,"email":"e","x":{"y":1},"x":[1,{"z":2,"z":3}]}]}`},
	{KindWorkflow, `{"campaignId":"c","recipients":[{"id":"u","email":"e","o":{},"a":[],"n":null,"t":true,"f":false,"deep":[[[{"a":[{}]}]]]}]}`},
	{KindWorkflow, "{ \"campaignId\" : \"c\" , \"recipients\" : [ { \"x\" : [ 1 , 2 ] , \"id\" : \"u\" , \"email\" : \"e\" , \"y\" : { \"z\" : \"é\" } } ] }"},
	{KindWorkflow, `{"campaignId":"c","recipients":[{"\u0069d":"u","em\u0061il":"e","idx":"not id","Email":"not email"},{"id":"v","email":"f"}]}`},
	{KindTrack, `{"eventName":"e","properties":{},"workflows":[{"campaignId":"c","recipients":[{"id":"u","email":"e","w":[1,"2",{"3":null}]}]}]}`},
	{KindSend, `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e","lang":"fr","n":1.0}],"other":1}}`},
}

// expectedExtras decodes data with decodeObject and returns the custom keys of each recipient,
// in document order: nil for a recipient without any.
func expectedExtras(t testing.TB, kind Kind, data []byte) []map[string]any {
	t.Helper()
	doc, err := decodeObject(data)
	require.NoError(t, err)
	var lists []any
	switch kind {
	case KindWorkflow:
		lists = append(lists, doc["recipients"])
	case KindTrack:
		workflows, _ := doc["workflows"].([]any)
		for _, w := range workflows {
			lists = append(lists, w.(map[string]any)["recipients"])
		}
	case KindSend:
		lists = append(lists, doc["properties"].(map[string]any)["recipients"])
	}
	var extras []map[string]any
	for _, l := range lists {
		for _, r := range l.([]any) {
			m := r.(map[string]any)
			delete(m, "id")
			delete(m, "email")
			if len(m) == 0 {
				m = nil
			}
			extras = append(extras, m)
		}
	}
	return extras
}

// decodedExtras decodes data with the decoder of kind and returns the Extra of each recipient, in
// document order, or the decoder's error.
func decodedExtras(kind Kind, data []byte) ([]map[string]any, error) {
	var recipients []Recipient
	switch kind {
	case KindWorkflow:
		w, err := DecodeWorkflow(data)
		if err != nil {
			return nil, err
		}
		recipients = w.Recipients
	case KindTrack:
		tr, err := DecodeTrack(data)
		if err != nil {
			return nil, err
		}
		for _, w := range tr.Workflows {
			recipients = append(recipients, w.Recipients...)
		}
	case KindSend:
		s, err := DecodeSend(data)
		if err != nil {
			return nil, err
		}
		recipients = s.Recipients
	default:
		return nil, DecodeCommit(data)
	}
	var extras []map[string]any
	for _, r := range recipients {
		extras = append(extras, r.Extra)
	}
	return extras, nil
}

func TestRecipientExtraAsGoJSON(t *testing.T) {
	for _, b := range recipientBodies {
		got, err := decodedExtras(b.kind, []byte(b.body))
		require.NoError(t, err, b.body)
		assert.Equal(t, expectedExtras(t, b.kind, []byte(b.body)), got, b.body)
	}
	for _, f := range corpusFiles(t, "valid") {
		if f.kind == KindCommit {
			continue
		}
		got, err := decodedExtras(f.kind, f.data)
		require.NoError(t, err, f.name)
		assert.Equal(t, expectedExtras(t, f.kind, f.data), got, f.name)
	}
}

// TestDecodeRecipientExtraValues pins the values of the benchmark's recipient, numbers included.
func TestDecodeRecipientExtraValues(t *testing.T) {
	got, err := DecodeWorkflow([]byte(`{"campaignId":"c","recipients":[{"id":"u","email":"e","firstName":"Ada",` +
		`"prefs":{"channels":["email","push"]},"score":12.50,"vip":true,"manager":null,"empty":[]}]}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"firstName": "Ada",
		"prefs":     map[string]any{"channels": []any{"email", "push"}},
		"score":     json.Number("12.50"),
		"vip":       true,
		"manager":   nil,
		"empty":     []any{},
	}, got.Recipients[0].Extra)
}

// FuzzRecipientExtra checks, for any body a decoder accepts, that the custom recipient keys are
// what go-json decodes from the same body.
// Run it with: go test -run '^$' -fuzz FuzzRecipientExtra -fuzztime 30s ./schema/
func FuzzRecipientExtra(f *testing.F) {
	kinds := []Kind{KindWorkflow, KindTrack, KindSend}
	for _, b := range recipientBodies {
		f.Add(uint8(slices.Index(kinds, b.kind)), []byte(b.body))
	}
	for _, file := range corpusFiles(f, "valid") {
		if i := slices.Index(kinds, file.kind); i >= 0 {
			f.Add(uint8(i), file.data)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := kinds[int(k)%len(kinds)]
		got, err := decodedExtras(kind, data)
		if err != nil {
			return
		}
		require.Equal(t, expectedExtras(t, kind, data), got)
	})
}

// TestPropertiesAsGoJSON: the properties of a track and of a send are built by the parser too,
// and must be what go-json gives for them (decodeObject), recipients of a send included.
func TestPropertiesAsGoJSON(t *testing.T) {
	props := []string{
		`{}`,
		`{"a":1,"b":-0.0e+00,"c":9007199254740993,"d":1E400,"e":-12.50}`,
		`{"t":"tab\tq\"b\\s\/u\u00e9\ud83d\ude00","lone":"\ud800","rev":"\ude00\ud83d","nul":"\u0000"}`,
		`{"k\u00e9y":1,"\ud800k":2,"\u0061":3,"a":4,"":5}`,
		`{"x":1,"x":{"y":1},"x":[1,{"z":2,"z":3}]}`,
		`{"o":{},"a":[],"n":null,"t":true,"f":false,"deep":[[[{"a":[{}]}]]]}`,
		"{ \"x\" : [ 1 , 2 ] , \"y\" : { \"z\" : \"é\" } }",
	}
	for _, p := range props {
		for _, kind := range []Kind{KindTrack, KindSend} {
			var body string
			var got map[string]any
			if kind == KindTrack {
				body = `{"eventName":"e","properties":` + p + `}`
				tr, err := DecodeTrack([]byte(body))
				require.NoError(t, err, body)
				got = tr.Properties
			} else {
				// A send's properties need their recipients, which stay in them as sent.
				body = `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e","w":[1,{"2":null}]}],"p":` + p + `}}`
				s, err := DecodeSend([]byte(body))
				require.NoError(t, err, body)
				got = s.Properties
			}
			doc, err := decodeObject([]byte(body))
			require.NoError(t, err)
			assert.Equal(t, doc["properties"], got, "%s", body)
		}
	}
}
