package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// problems is shorthand for a list of problems in the tables below.
func problems(pathsAndMessages ...string) []Problem {
	var ps []Problem
	for i := 0; i < len(pathsAndMessages); i += 2 {
		ps = append(ps, Problem{Path: pathsAndMessages[i], Message: pathsAndMessages[i+1]})
	}
	return ps
}

const secretMsg = "secret must not be sent on the bus"

// assertSchemaError checks err against the reason and problems a table expects; a zero reason
// means the body must be accepted.
func assertSchemaError(t *testing.T, err error, reason Reason, want []Problem) {
	t.Helper()
	if reason == "" {
		require.NoError(t, err)
		return
	}
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, reason, e.Reason)
	assert.Equal(t, reason, ReasonOf(err))
	if want != nil {
		assert.Equal(t, want, e.Problems)
	}
}

func TestDecodeTrack(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason Reason
		want   []Problem
	}{
		{name: "minimal", body: `{"eventName":"order_shipped","properties":{"orderId":"ORD-4521"}}`},
		{name: "unknown fields ignored", body: `{"eventName":"e","properties":{},"version":2,"meta":{"a":[1]}}`},
		{name: "empty workflows", body: `{"eventName":"e","properties":{},"workflows":[]}`},
		{name: "missing eventName", body: `{"properties":{}}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "required")},
		{name: "missing properties", body: `{"eventName":"e"}`, reason: ReasonInvalidMessage,
			want: problems("properties", "required")},
		{name: "empty object", body: `{}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "required", "properties", "required")},
		{name: "empty eventName", body: `{"eventName":"","properties":{}}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "must not be empty")},
		{name: "eventName number", body: `{"eventName":1,"properties":{}}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "must be a string")},
		{name: "eventName null", body: `{"eventName":null,"properties":{}}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "must be a string")},
		{name: "properties null", body: `{"eventName":"e","properties":null}`, reason: ReasonInvalidMessage,
			want: problems("properties", "must be an object")},
		{name: "properties array", body: `{"eventName":"e","properties":[{}]}`, reason: ReasonInvalidMessage,
			want: problems("properties", "must be an object")},
		{name: "properties string", body: `{"eventName":"e","properties":"{}"}`, reason: ReasonInvalidMessage,
			want: problems("properties", "must be an object")},
		{name: "workflows object", body: `{"eventName":"e","properties":{},"workflows":{}}`, reason: ReasonInvalidMessage,
			want: problems("workflows", "must be an array")},
		{name: "workflow not object", body: `{"eventName":"e","properties":{},"workflows":[[]]}`, reason: ReasonInvalidMessage,
			want: problems("workflows[0]", "must be an object")},
		{name: "workflow empty recipients", body: `{"eventName":"e","properties":{},"workflows":[{"campaignId":"c","recipients":[]}]}`,
			reason: ReasonInvalidMessage, want: problems("workflows[0].recipients", "must not be empty")},
		{
			name:   "problems in document order",
			body:   `{"workflows":[{"campaignId":"a","recipients":[{"id":"1","email":"1@x"}]},{"campaignId":"b","recipients":[{"id":"2"}]}],"properties":5,"eventName":""}`,
			reason: ReasonInvalidMessage,
			want:   problems("workflows[1].recipients[0].email", "required", "properties", "must be an object", "eventName", "must not be empty"),
		},
		{name: "duplicate known key", body: `{"eventName":"a","properties":{},"eventName":"b"}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "duplicate key")},
		{name: "duplicate unknown key", body: `{"eventName":"a","properties":{},"x":1,"x":2}`},
		{name: "field names are case-sensitive", body: `{"EventName":"a","Properties":{}}`, reason: ReasonInvalidMessage,
			want: problems("eventName", "required", "properties", "required")},
		{name: "escaped field names", body: `{"event\u004eame":"a","\u0070roperties":{}}`},
		{name: "idempotencyKey", body: `{"eventName":"e","properties":{},"idempotencyKey":"order-1 #2"}`},
		{name: "idempotencyKey empty", body: `{"eventName":"e","properties":{},"idempotencyKey":""}`, reason: ReasonInvalidMessage,
			want: problems("idempotencyKey", "must not be empty")},
		{name: "idempotencyKey number", body: `{"eventName":"e","properties":{},"idempotencyKey":1}`, reason: ReasonInvalidMessage,
			want: problems("idempotencyKey", "must be a string")},
		{name: "idempotencyKey 255 bytes", body: `{"eventName":"e","properties":{},"idempotencyKey":"` + strings.Repeat("k", 255) + `"}`},
		{name: "idempotencyKey 256 bytes", body: `{"eventName":"e","properties":{},"idempotencyKey":"` + strings.Repeat("k", 256) + `"}`,
			reason: ReasonInvalidMessage, want: problems("idempotencyKey", "must be at most 255 bytes")},
		{name: "idempotencyKey escaped control", body: `{"eventName":"e","properties":{},"idempotencyKey":"a\u0007"}`,
			reason: ReasonInvalidMessage, want: problems("idempotencyKey", "must contain only printable ASCII characters")},
		{name: "idempotencyKey non-ASCII", body: `{"eventName":"e","properties":{},"idempotencyKey":"é"}`,
			reason: ReasonInvalidMessage, want: problems("idempotencyKey", "must contain only printable ASCII characters")},
		{name: "occurredAt", body: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01T12:00:00.123Z"}`},
		{name: "occurredAt with offset and nanoseconds", body: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01T14:00:00.123456789+02:00"}`},
		{name: "occurredAt escaped", body: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01\u005412:00:00Z"}`},
		{name: "occurredAt without zone", body: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01T12:00:00"}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", msgDateTime)},
		{name: "occurredAt date only", body: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01"}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", msgDateTime)},
		{name: "occurredAt month 13", body: `{"eventName":"e","properties":{},"occurredAt":"2026-13-01T12:00:00Z"}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", msgDateTime)},
		{name: "occurredAt empty", body: `{"eventName":"e","properties":{},"occurredAt":""}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", msgDateTime)},
		{name: "occurredAt number", body: `{"eventName":"e","properties":{},"occurredAt":1767225600000}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", "must be a string")},
		{name: "occurredAt null", body: `{"eventName":"e","properties":{},"occurredAt":null}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", "must be a string")},
		{name: "occurredAt duplicate", body: `{"eventName":"e","properties":{},"occurredAt":"2026-03-01T12:00:00Z","occurredAt":"2026-03-01T12:00:00Z"}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", "duplicate key")},
		{name: "occurredAt in document order", body: `{"occurredAt":"yesterday","eventName":"","properties":{}}`,
			reason: ReasonInvalidMessage, want: problems("occurredAt", msgDateTime, "eventName", "must not be empty")},
		{name: "secret top-level", body: `{"eventName":"e","properties":{},"sdkSecretKey":"sk"}`, reason: ReasonSecretInMessage,
			want: problems("sdkSecretKey", secretMsg)},
		{name: "secret nested", body: `{"eventName":"e","properties":{"a":[{"b":{"authSecretKey":"x"}}]}}`, reason: ReasonSecretInMessage,
			want: problems("properties.a[0].b.authSecretKey", secretMsg)},
		{name: "secret in recipient", body: `{"eventName":"e","properties":{},"workflows":[{"campaignId":"c","recipients":[{"id":"u","email":"e","sdkSecretKey":1}]}]}`,
			reason: ReasonSecretInMessage, want: problems("workflows[0].recipients[0].sdkSecretKey", secretMsg)},
		{name: "secret escaped", body: `{"eventName":"e","properties":{"sdk\u0053ecretKey":"x"}}`, reason: ReasonSecretInMessage,
			want: problems(`properties["sdkSecretKey"]`, secretMsg)},
		{name: "secrets all listed", body: `{"sdkSecretKey":{"authSecretKey":1},"properties":{"x.y":{"authSecretKey":2}}}`, reason: ReasonSecretInMessage,
			want: problems("sdkSecretKey", secretMsg, `properties["x.y"].authSecretKey`, secretMsg)},
		{name: "secret wins over invalid fields", body: `{"eventName":7,"authSecretKey":"x"}`, reason: ReasonSecretInMessage,
			want: problems("authSecretKey", secretMsg)},
		{name: "secret in overridden duplicate", body: `{"eventName":"e","properties":{"sdkSecretKey":"x"},"properties":{}}`,
			reason: ReasonSecretInMessage, want: problems("properties.sdkSecretKey", secretMsg)},
		{name: "similar keys are not secrets", body: `{"eventName":"e","properties":{"SdkSecretKey":1,"sdkSecretKeyId":2,"sdk_secret_key":3}}`},
		{name: "empty body", body: ``, reason: ReasonInvalidJSON, want: problems("", "body is empty")},
		{name: "blank body", body: " \n", reason: ReasonInvalidJSON, want: problems("", "body is empty")},
		{name: "top-level array", body: `[]`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
		{name: "top-level null", body: `null`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
		{name: "trailing data", body: `{"eventName":"e","properties":{}}x`, reason: ReasonInvalidJSON,
			want: problems("", "unexpected data after the top-level value at offset 33")},
		{name: "second value", body: `{"eventName":"e","properties":{}} {}`, reason: ReasonInvalidJSON,
			want: problems("", "unexpected data after the top-level value at offset 34")},
		{name: "truncated", body: `{"eventName":"e","properties":{`, reason: ReasonInvalidJSON,
			want: problems("", "unexpected end of input")},
		{name: "invalid UTF-8", body: "{\"eventName\":\"\xff\",\"properties\":{}}", reason: ReasonInvalidJSON,
			want: problems("", "body is not valid UTF-8")},
		{name: "syntax error wins over secret", body: `{"sdkSecretKey":"x",}`, reason: ReasonInvalidJSON,
			want: problems("", "unexpected character, expected a string key at offset 20")},
		{name: "syntax error wins over invalid fields", body: `{"eventName":1,"properties":[}`, reason: ReasonInvalidJSON},
		// The top-level object is the first level.
		{name: "nesting at the limit", body: `{"eventName":"e","properties":` + nested(63) + `}`},
		{name: "nesting over the limit", body: `{"eventName":"e","properties":` + nested(64) + `}`, reason: ReasonInvalidJSON,
			want: problems("", fmt.Sprintf("nesting deeper than 64 levels at offset %d", len(`{"eventName":"e","properties":`)+63*len(`{"a":`)))},
		{name: "just small enough", body: `{"eventName":"e","properties":{"pad":"` + strings.Repeat("x", MaxBodySize-41) + `"}}`},
		{name: "too large", body: `{"eventName":"e","properties":{"pad":"` + strings.Repeat("x", MaxBodySize-40) + `"}}`, reason: ReasonTooLarge,
			want: problems("", "body is 1048577 bytes, more than the limit of 1048576")},
		{name: "too large wins over secrets", body: `{"sdkSecretKey":"` + strings.Repeat("x", MaxBodySize) + `"}`, reason: ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTrack([]byte(tt.body))
			assertSchemaError(t, err, tt.reason, tt.want)
			if tt.reason != "" {
				assert.Nil(t, got)
			} else {
				assert.NotNil(t, got)
			}
			// Validate must judge exactly as the decoder does.
			assert.Equal(t, err, Validate(KindTrack, []byte(tt.body)))
		})
	}
}

// nested returns depth nested objects, e.g. nested(2) is {"a":{}}.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
}

// TestValidIdempotencyKeyAgreesWithDecoder checks that the rule the bridge applies to other keys
// (a send's Nats-Msg-Id) is the one a track's idempotencyKey is held to.
func TestValidIdempotencyKeyAgreesWithDecoder(t *testing.T) {
	for _, key := range []string{
		"order-1 #2", "k", strings.Repeat("k", 255), "", strings.Repeat("k", 256), strings.Repeat("k", 9000),
		"a\x01b", "tab\there", "del\x7f", "nl\n", "caf\u00e9",
	} {
		body, err := json.Marshal(map[string]any{"eventName": "e", "properties": map[string]any{}, "idempotencyKey": key})
		require.NoError(t, err)
		_, decodeErr := DecodeTrack(body)
		assert.Equal(t, decodeErr == nil, ValidIdempotencyKey(key), "key %q", key)
	}
	assert.True(t, ValidIdempotencyKey("order-1"))
	assert.False(t, ValidIdempotencyKey("a\x01b"))
}

func TestDecodeTrackValues(t *testing.T) {
	body := `{
		"eventName": "order_shipped",
		"properties": {"orderId": "ORD-4521", "total": 129.90, "id": 9007199254740993, "tags": ["a", "b"], "note": "caf\u00e9"},
		"workflows": [
			{"campaignId": "shipping-update", "recipients": [{"id": "user_42", "email": "ada@example.com", "firstName": "Ada", "score": 3}]},
			{"campaignId": "ops", "recipients": [{"email": "ops@example.com", "id": "ops"}]}
		],
		"idempotencyKey": "order-4521-shipped",
		"occurredAt": "2026-03-01T14:00:00.250+02:00",
		"ignored": {"deep": [1, 2, 3]}
	}`
	got, err := DecodeTrack([]byte(body))
	require.NoError(t, err)
	want := &Track{
		EventName: "order_shipped",
		Properties: map[string]any{
			"orderId": "ORD-4521",
			"total":   json.Number("129.90"),
			"id":      json.Number("9007199254740993"),
			"tags":    []any{"a", "b"},
			"note":    "café",
		},
		Workflows: []Workflow{
			{CampaignID: "shipping-update", Recipients: []Recipient{
				{ID: "user_42", Email: "ada@example.com", Extra: map[string]any{"firstName": "Ada", "score": json.Number("3")}},
			}},
			{CampaignID: "ops", Recipients: []Recipient{{ID: "ops", Email: "ops@example.com"}}},
		},
		IdempotencyKey: "order-4521-shipped",
		OccurredAt:     time.Date(2026, 3, 1, 14, 0, 0, 250e6, time.FixedZone("", 2*60*60)),
	}
	assert.Equal(t, want, got)
	assert.True(t, time.Date(2026, 3, 1, 12, 0, 0, 250e6, time.UTC).Equal(got.OccurredAt))
}

func TestDecodeTrackDoesNotKeepInput(t *testing.T) {
	// The bridge may reuse message buffers: decoded strings must be copies.
	data := []byte(`{"eventName":"abc","properties":{"k":"v"},"workflows":[{"campaignId":"c","recipients":[{"id":"i","email":"e","x":"y"}]}]}`)
	got, err := DecodeTrack(data)
	require.NoError(t, err)
	for i := range data {
		data[i] = 'Z'
	}
	assert.Equal(t, "abc", got.EventName)
	assert.Equal(t, map[string]any{"k": "v"}, got.Properties)
	assert.Equal(t, "c", got.Workflows[0].CampaignID)
	assert.Equal(t, Recipient{ID: "i", Email: "e", Extra: map[string]any{"x": "y"}}, got.Workflows[0].Recipients[0])
}

func TestDecodeWorkflow(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason Reason
		want   []Problem
	}{
		{name: "minimal", body: `{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com"}]}`},
		{name: "unknown fields ignored", body: `{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com"}],"note":1}`},
		{name: "missing campaignId", body: `{"recipients":[{"id":"u","email":"e"}]}`, reason: ReasonInvalidMessage,
			want: problems("campaignId", "required")},
		{name: "missing recipients", body: `{"campaignId":"c"}`, reason: ReasonInvalidMessage,
			want: problems("recipients", "required")},
		{name: "campaignId number", body: `{"campaignId":1,"recipients":[{"id":"u","email":"e"}]}`, reason: ReasonInvalidMessage,
			want: problems("campaignId", "must be a string")},
		{name: "empty recipients", body: `{"campaignId":"c","recipients":[]}`, reason: ReasonInvalidMessage,
			want: problems("recipients", "must not be empty")},
		{name: "recipients null", body: `{"campaignId":"c","recipients":null}`, reason: ReasonInvalidMessage,
			want: problems("recipients", "must be an array")},
		{name: "recipient not object", body: `{"campaignId":"c","recipients":["u"]}`, reason: ReasonInvalidMessage,
			want: problems("recipients[0]", "must be an object")},
		{name: "recipient missing id and email", body: `{"campaignId":"c","recipients":[{"name":"x"}]}`, reason: ReasonInvalidMessage,
			want: problems("recipients[0].id", "required", "recipients[0].email", "required")},
		{name: "recipient id number", body: `{"campaignId":"c","recipients":[{"id":42,"email":"e"}]}`, reason: ReasonInvalidMessage,
			want: problems("recipients[0].id", "must be a string")},
		{name: "recipient empty email", body: `{"campaignId":"c","recipients":[{"id":"u","email":""}]}`, reason: ReasonInvalidMessage,
			want: problems("recipients[0].email", "must not be empty")},
		{name: "recipient duplicate id", body: `{"campaignId":"c","recipients":[{"id":"u","email":"e","id":"v"}]}`, reason: ReasonInvalidMessage,
			want: problems("recipients[0].id", "duplicate key")},
		{
			name:   "every problem",
			body:   `{"recipients":[{"email":1},null,{"id":"","email":"e"}],"campaignId":""}`,
			reason: ReasonInvalidMessage,
			want: problems("recipients[0].email", "must be a string", "recipients[0].id", "required",
				"recipients[1]", "must be an object", "recipients[2].id", "must not be empty", "campaignId", "must not be empty"),
		},
		{name: "secret in recipient", body: `{"campaignId":"c","recipients":[{"id":"u","email":"e","authSecretKey":"a"}]}`,
			reason: ReasonSecretInMessage, want: problems("recipients[0].authSecretKey", secretMsg)},
		{name: "top-level array", body: `[{"campaignId":"c"}]`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeWorkflow([]byte(tt.body))
			assertSchemaError(t, err, tt.reason, tt.want)
			if tt.reason != "" {
				assert.Nil(t, got)
			}
			assert.Equal(t, err, Validate(KindWorkflow, []byte(tt.body)))
		})
	}
}

func TestDecodeWorkflowValues(t *testing.T) {
	got, err := DecodeWorkflow([]byte(`{"campaignId":"c\"1","recipients":[{"id":"u\u0031","email":"a@b","prefs":{"lang":"fr"},"id2":null},{"id":"v","email":"c@d"}]}`))
	require.NoError(t, err)
	assert.Equal(t, &Workflow{CampaignID: `c"1`, Recipients: []Recipient{
		{ID: "u1", Email: "a@b", Extra: map[string]any{"prefs": map[string]any{"lang": "fr"}, "id2": nil}},
		{ID: "v", Email: "c@d"},
	}}, got)
}

func TestDecodeCommit(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason Reason
		want   []Problem
	}{
		{name: "empty", body: ``},
		{name: "blank", body: " \t\r\n"},
		{name: "empty object", body: `{}`},
		{name: "object with content", body: `{"reason":"done","n":[1,{"a":null}]}`},
		{name: "array", body: `[]`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
		{name: "string", body: `"commit"`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
		{name: "null", body: `null`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
		{name: "garbage", body: `commit`, reason: ReasonInvalidJSON, want: problems("", "unexpected character, expected a value at offset 0")},
		{name: "broken object", body: `{"a":}`, reason: ReasonInvalidJSON, want: problems("", "unexpected character, expected a value at offset 5")},
		{name: "secret", body: `{"sdkSecretKey":"x"}`, reason: ReasonSecretInMessage, want: problems("sdkSecretKey", secretMsg)},
		{name: "nested secret", body: `{"a":[{"authSecretKey":"x"}]}`, reason: ReasonSecretInMessage, want: problems("a[0].authSecretKey", secretMsg)},
		{name: "too large", body: strings.Repeat(" ", MaxBodySize+1), reason: ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := DecodeCommit([]byte(tt.body))
			assertSchemaError(t, err, tt.reason, tt.want)
			assert.Equal(t, err, Validate(KindCommit, []byte(tt.body)))
		})
	}
}

func TestDecodeSend(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason Reason
		want   []Problem
	}{
		{name: "minimal", body: `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}]}}`},
		{name: "unknown fields ignored", body: `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}],"title":"t"},"x":1}`},
		{name: "missing notifId", body: `{"properties":{"recipients":[{"id":"u","email":"e"}]}}`, reason: ReasonInvalidMessage,
			want: problems("notifId", "required")},
		{name: "empty notifId", body: `{"notifId":"","properties":{"recipients":[{"id":"u","email":"e"}]}}`, reason: ReasonInvalidMessage,
			want: problems("notifId", "must not be empty")},
		{name: "notifId number", body: `{"notifId":1,"properties":{"recipients":[{"id":"u","email":"e"}]}}`, reason: ReasonInvalidMessage,
			want: problems("notifId", "must be a string")},
		{name: "missing properties", body: `{"notifId":"n"}`, reason: ReasonInvalidMessage, want: problems("properties", "required")},
		{name: "properties array", body: `{"notifId":"n","properties":[]}`, reason: ReasonInvalidMessage,
			want: problems("properties", "must be an object")},
		{name: "missing recipients", body: `{"notifId":"n","properties":{}}`, reason: ReasonInvalidMessage,
			want: problems("properties.recipients", "required")},
		{name: "recipients at top level", body: `{"notifId":"n","properties":{},"recipients":[{"id":"u","email":"e"}]}`, reason: ReasonInvalidMessage,
			want: problems("properties.recipients", "required")},
		{name: "empty recipients", body: `{"notifId":"n","properties":{"recipients":[]}}`, reason: ReasonInvalidMessage,
			want: problems("properties.recipients", "must not be empty")},
		{name: "recipients object", body: `{"notifId":"n","properties":{"recipients":{}}}`, reason: ReasonInvalidMessage,
			want: problems("properties.recipients", "must be an array")},
		{name: "recipient missing email", body: `{"notifId":"n","properties":{"recipients":[{"id":"u"}]}}`, reason: ReasonInvalidMessage,
			want: problems("properties.recipients[0].email", "required")},
		{name: "duplicate recipients", body: `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}],"recipients":[]}}`,
			reason: ReasonInvalidMessage, want: problems("properties.recipients", "duplicate key")},
		{name: "secret in properties", body: `{"notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}],"authSecretKey":"a"}}`,
			reason: ReasonSecretInMessage, want: problems("properties.authSecretKey", secretMsg)},
		{name: "secret top-level", body: `{"sdkSecretKey":"s","notifId":"n","properties":{"recipients":[{"id":"u","email":"e"}]}}`,
			reason: ReasonSecretInMessage, want: problems("sdkSecretKey", secretMsg)},
		{name: "not JSON", body: `notifId=n`, reason: ReasonInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSend([]byte(tt.body))
			assertSchemaError(t, err, tt.reason, tt.want)
			if tt.reason != "" {
				assert.Nil(t, got)
			}
			assert.Equal(t, err, Validate(KindSend, []byte(tt.body)))
		})
	}
}

func TestDecodeSendValues(t *testing.T) {
	got, err := DecodeSend([]byte(`{"notifId":"notif_1","properties":{"title":"Hi","recipients":[{"id":"u","email":"e","lang":"fr"}]}}`))
	require.NoError(t, err)
	assert.Equal(t, &Send{
		NotifID: "notif_1",
		Properties: map[string]any{
			"title":      "Hi",
			"recipients": []any{map[string]any{"id": "u", "email": "e", "lang": "fr"}},
		},
		Recipients: []Recipient{{ID: "u", Email: "e", Extra: map[string]any{"lang": "fr"}}},
	}, got)
}

func TestValidateUnknownKind(t *testing.T) {
	err := Validate(Kind("event"), []byte(`{}`))
	// Validate covers every kind of AllKinds, so its error lists them all.
	assertSchemaError(t, err, ReasonUnknownSubject,
		problems("kind", `unknown kind "event" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`))
}

func TestDeepNestingDoesNotOverflow(t *testing.T) {
	// A megabyte of '[' would recurse a million times without the depth bound.
	body := []byte(`{"eventName":"e","properties":{"a":` + strings.Repeat("[", MaxBodySize-100) + `}}`)
	for _, kind := range AllKinds {
		t.Run(string(kind), func(t *testing.T) {
			assert.Equal(t, ReasonInvalidJSON, ReasonOf(Validate(kind, body)))
		})
	}
	assert.Equal(t, []byte(`"[REDACTED]"`), Redact(body))
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "problems", err: &Error{Reason: ReasonInvalidMessage, Problems: problems(
			"workflows[1].recipients[0].email", "required", "properties", "must be an object")},
			want: "invalid_message: workflows[1].recipients[0].email: required; properties: must be an object"},
		{name: "no path", err: &Error{Reason: ReasonInvalidJSON, Problems: problems("", "body is empty")},
			want: "invalid_json: body is empty"},
		{name: "no problems", err: &Error{Reason: ReasonTooLarge}, want: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestReasonOf(t *testing.T) {
	_, err := DecodeTrack([]byte(`{}`))
	assert.Equal(t, ReasonInvalidMessage, ReasonOf(err))
	assert.Equal(t, ReasonInvalidMessage, ReasonOf(fmt.Errorf("consume: %w", err)))
	assert.Equal(t, Reason(""), ReasonOf(errors.New("other")))
	assert.Equal(t, Reason(""), ReasonOf(nil))
}

func TestErrorsDoNotQuoteValues(t *testing.T) {
	// Errors are logged: they must never carry what the producer wrote, least of all a secret.
	bodies := []string{
		`{"eventName":"e","properties":{},"sdkSecretKey":"sk_live_SECRET"}`,
		`{"eventName":"e","properties":{"authSecretKey":"SECRET"},}`,
		`{"eventName":SECRET}`,
		`{"eventName":"e","properties":{},"idempotencyKey":"SECRET` + strings.Repeat("x", 300) + `"}`,
	}
	for _, body := range bodies {
		err := Validate(KindTrack, []byte(body))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "SECRET")
	}
}

func TestProblemsAreBounded(t *testing.T) {
	t.Run("invalid fields", func(t *testing.T) {
		body := `{"campaignId":"c","recipients":[` + strings.TrimSuffix(strings.Repeat("7,", MaxProblems+50), ",") + `]}`
		err := Validate(KindWorkflow, []byte(body))
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Len(t, e.Problems, MaxProblems+1)
		assert.Equal(t, Problem{Path: "recipients[99]", Message: "must be an object"}, e.Problems[MaxProblems-1])
		assert.Equal(t, Problem{Message: "50 more problems not listed"}, e.Problems[MaxProblems])
	})
	t.Run("secrets", func(t *testing.T) {
		body := `{"a":[` + strings.TrimSuffix(strings.Repeat(`{"sdkSecretKey":1},`, MaxProblems+20), ",") + `]}`
		err := DecodeCommit([]byte(body))
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, ReasonSecretInMessage, e.Reason)
		require.Len(t, e.Problems, MaxProblems+1)
		assert.Equal(t, Problem{Path: "a[99].sdkSecretKey", Message: secretMsg}, e.Problems[MaxProblems-1])
		assert.Equal(t, Problem{Message: "20 more problems not listed"}, e.Problems[MaxProblems])
		assert.Equal(t, MaxProblems+20, strings.Count(string(Redact([]byte(body))), `"[REDACTED]"`))
	})
	t.Run("long keys", func(t *testing.T) {
		long := strings.Repeat("k", 1000)
		err := DecodeCommit([]byte(`{"` + long + `":{"authSecretKey":1}}`))
		assertSchemaError(t, err, ReasonSecretInMessage,
			problems(`["`+strings.Repeat("k", 64)+`"...].authSecretKey`, secretMsg))
	})
}

// decode decodes data with the decoder of kind; a commit decodes to nil.
func decode(kind Kind, data []byte) (any, error) {
	switch kind {
	case KindTrack:
		return DecodeTrack(data)
	case KindWorkflow:
		return DecodeWorkflow(data)
	case KindSend:
		return DecodeSend(data)
	case KindIdentify:
		return DecodeIdentify(data)
	case KindDetach:
		return DecodeDetach(data)
	case KindSubscribe:
		return DecodeSubscribe(data)
	case KindUnsubscribe:
		return DecodeUnsubscribe(data)
	default:
		return nil, DecodeCommit(data)
	}
}
