package schema

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v2Test is a row of the tables of the v2 kinds.
type v2Test struct {
	name   string
	body   string
	reason Reason
	want   []Problem
}

// runV2Tests checks each body with the decoder of kind and with Validate, which must agree.
func runV2Tests(t *testing.T, kind Kind, tests []v2Test) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(kind, []byte(tt.body))
			assertSchemaError(t, err, tt.reason, tt.want)
			if tt.reason != "" {
				assert.Nil(t, got)
			} else {
				assert.NotNil(t, got)
			}
			assert.Equal(t, err, Validate(kind, []byte(tt.body)))
		})
	}
}

const (
	identityA = `{"type":"email","identifier":"ada@example.com"}`
	identityB = `{"type":"crm","identifier":"c-42"}`
)

func TestDecodeIdentify(t *testing.T) {
	body := func(fields string) string {
		return `{"environmentId":"env_1","subjectA":` + identityA + `,"subjectB":` + identityB + fields + `}`
	}
	runV2Tests(t, KindIdentify, []v2Test{
		{name: "minimal", body: body(`,"consentBasis":"contract"`)},
		{name: "expiresAt", body: body(`,"consentBasis":"contract","expiresAt":"2027-01-01T00:00:00.000Z"`)},
		{name: "unknown fields ignored", body: body(`,"consentBasis":"c","note":{"a":[1]}`)},
		{name: "unknown fields in a subject ignored", body: `{"environmentId":"e","subjectA":{"type":"t","identifier":"i","x":1},"subjectB":` + identityB + `,"consentBasis":"c"}`},
		{name: "empty object", body: `{}`, reason: ReasonInvalidMessage, want: problems(
			"environmentId", "required", "subjectA", "required", "subjectB", "required", "consentBasis", "required")},
		{name: "empty consentBasis", body: body(`,"consentBasis":""`), reason: ReasonInvalidMessage,
			want: problems("consentBasis", "must not be empty")},
		{name: "environmentId number", body: `{"environmentId":1,"subjectA":` + identityA + `,"subjectB":` + identityB + `,"consentBasis":"c"}`,
			reason: ReasonInvalidMessage, want: problems("environmentId", "must be a string")},
		{name: "subject not object", body: `{"environmentId":"e","subjectA":"ada","subjectB":null,"consentBasis":"c"}`,
			reason: ReasonInvalidMessage, want: problems("subjectA", "must be an object", "subjectB", "must be an object")},
		{name: "subject fields", body: `{"environmentId":"e","subjectA":{"identifier":""},"subjectB":{"type":7,"identifier":"i","type":"t"},"consentBasis":"c"}`,
			reason: ReasonInvalidMessage, want: problems("subjectA.identifier", "must not be empty", "subjectA.type", "required",
				"subjectB.type", "must be a string", "subjectB.type", "duplicate key")},
		{name: "expiresAt invalid", body: body(`,"consentBasis":"c","expiresAt":"2027-01-01 00:00:00Z"`),
			reason: ReasonInvalidMessage, want: problems("expiresAt", msgDateTime)},
		{name: "expiresAt number", body: body(`,"consentBasis":"c","expiresAt":0`),
			reason: ReasonInvalidMessage, want: problems("expiresAt", "must be a string")},
		{name: "duplicate subjectA", body: body(`,"consentBasis":"c","subjectA":` + identityA),
			reason: ReasonInvalidMessage, want: problems("subjectA", "duplicate key")},
		{name: "secret in subject", body: `{"environmentId":"e","subjectA":{"type":"t","identifier":"i","authSecretKey":"x"},"subjectB":` + identityB + `,"consentBasis":"c"}`,
			reason: ReasonSecretInMessage, want: problems("subjectA.authSecretKey", secretMsg)},
		{name: "top-level array", body: `[]`, reason: ReasonInvalidJSON, want: problems("", "body must be a JSON object")},
		{name: "empty body", body: ``, reason: ReasonInvalidJSON, want: problems("", "body is empty")},
		{name: "truncated", body: `{"environmentId":"e","subjectA":{`, reason: ReasonInvalidJSON, want: problems("", "unexpected end of input")},
		{name: "too large", body: body(`,"consentBasis":"` + strings.Repeat("x", MaxBodySize) + `"`), reason: ReasonTooLarge},
	})
}

func TestDecodeIdentifyValues(t *testing.T) {
	got, err := DecodeIdentify([]byte(`{"environmentId":"env_1","subjectA":{"type":"email","identifier":"ada@example.com"},` +
		`"subjectB":{"identifier":"c\u002d42","type":"crm"},"consentBasis":"contract","expiresAt":"2027-01-01T00:00:00.5Z","x":1}`))
	require.NoError(t, err)
	assert.Equal(t, &Identify{
		EnvironmentID: "env_1",
		SubjectA:      Identity{Type: "email", Identifier: "ada@example.com"},
		SubjectB:      Identity{Type: "crm", Identifier: "c-42"},
		ConsentBasis:  "contract",
		ExpiresAt:     time.Date(2027, 1, 1, 0, 0, 0, 5e8, time.UTC),
	}, got)

	got, err = DecodeIdentify([]byte(`{"environmentId":"e","subjectA":` + identityA + `,"subjectB":` + identityB + `,"consentBasis":"c"}`))
	require.NoError(t, err)
	assert.True(t, got.ExpiresAt.IsZero())
}

func TestDecodeDetach(t *testing.T) {
	runV2Tests(t, KindDetach, []v2Test{
		{name: "minimal", body: `{"environmentId":"env_1","subject":` + identityA + `}`},
		{name: "unknown fields ignored", body: `{"environmentId":"env_1","subject":` + identityA + `,"reason":"gdpr"}`},
		{name: "empty object", body: `{}`, reason: ReasonInvalidMessage,
			want: problems("environmentId", "required", "subject", "required")},
		{name: "subject array", body: `{"environmentId":"e","subject":[]}`, reason: ReasonInvalidMessage,
			want: problems("subject", "must be an object")},
		{name: "subject empty", body: `{"environmentId":"e","subject":{}}`, reason: ReasonInvalidMessage,
			want: problems("subject.type", "required", "subject.identifier", "required")},
		{name: "empty environmentId", body: `{"environmentId":"","subject":` + identityA + `}`, reason: ReasonInvalidMessage,
			want: problems("environmentId", "must not be empty")},
		{name: "secret", body: `{"sdkSecretKey":"s","environmentId":"e","subject":` + identityA + `}`, reason: ReasonSecretInMessage,
			want: problems("sdkSecretKey", secretMsg)},
		{name: "trailing data", body: `{"environmentId":"e","subject":` + identityA + `}x`, reason: ReasonInvalidJSON},
	})
	got, err := DecodeDetach([]byte(`{"environmentId":"env_1","subject":{"type":"email","identifier":"ada@example.com"}}`))
	require.NoError(t, err)
	assert.Equal(t, &Detach{EnvironmentID: "env_1", Subject: Identity{Type: "email", Identifier: "ada@example.com"}}, got)
}

func TestDecodeSubscribe(t *testing.T) {
	runV2Tests(t, KindSubscribe, []v2Test{
		{name: "minimal", body: `{"resourceId":"order-1","subscriberId":"user_42"}`},
		{name: "meta", body: `{"resourceId":"order-1","subscriberId":"user_42","channel":"email","n":[1,{"a":null}]}`},
		{name: "duplicate meta key", body: `{"resourceId":"r","subscriberId":"s","m":1,"m":2}`},
		{name: "empty object", body: `{}`, reason: ReasonInvalidMessage,
			want: problems("resourceId", "required", "subscriberId", "required")},
		{name: "resourceId number", body: `{"resourceId":1,"subscriberId":"s"}`, reason: ReasonInvalidMessage,
			want: problems("resourceId", "must be a string")},
		{name: "empty subscriberId", body: `{"resourceId":"r","subscriberId":""}`, reason: ReasonInvalidMessage,
			want: problems("subscriberId", "must not be empty")},
		{name: "duplicate resourceId", body: `{"resourceId":"r","subscriberId":"s","resourceId":"q"}`, reason: ReasonInvalidMessage,
			want: problems("resourceId", "duplicate key")},
		{name: "escaped duplicate", body: `{"resourceId":"r","subscriberId":"s","resource\u0049d":"q"}`, reason: ReasonInvalidMessage,
			want: problems("resourceId", "duplicate key")},
		{name: "secret in meta", body: `{"resourceId":"r","subscriberId":"s","prefs":{"authSecretKey":"a"}}`, reason: ReasonSecretInMessage,
			want: problems("prefs.authSecretKey", secretMsg)},
		{name: "nesting over the limit", body: `{"resourceId":"r","subscriberId":"s","m":` + nested(64) + `}`, reason: ReasonInvalidJSON},
		{name: "not JSON", body: `resourceId=r`, reason: ReasonInvalidJSON},
	})
	got, err := DecodeSubscribe([]byte(`{"resourceId":"order-1","subscriberId":"user_42","n":9007199254740993,"m":1,"m":"two","tags":["a"]}`))
	require.NoError(t, err)
	assert.Equal(t, &Subscribe{ResourceID: "order-1", SubscriberID: "user_42", Meta: map[string]any{
		"n": json.Number("9007199254740993"), "m": "two", "tags": []any{"a"},
	}}, got)
	got, err = DecodeSubscribe([]byte(`{"resourceId":"r","subscriberId":"s"}`))
	require.NoError(t, err)
	assert.Nil(t, got.Meta)
}

func TestDecodeUnsubscribe(t *testing.T) {
	runV2Tests(t, KindUnsubscribe, []v2Test{
		{name: "minimal", body: `{"resourceId":"order-1","subscriberId":"user_42"}`},
		{name: "unknown fields ignored", body: `{"resourceId":"order-1","subscriberId":"user_42","channel":"email"}`},
		{name: "missing subscriberId", body: `{"resourceId":"r"}`, reason: ReasonInvalidMessage,
			want: problems("subscriberId", "required")},
		{name: "subscriberId object", body: `{"resourceId":"r","subscriberId":{}}`, reason: ReasonInvalidMessage,
			want: problems("subscriberId", "must be a string")},
		{name: "secret", body: `{"resourceId":"r","subscriberId":"s","authSecretKey":"a"}`, reason: ReasonSecretInMessage,
			want: problems("authSecretKey", secretMsg)},
		{name: "invalid UTF-8", body: "{\"resourceId\":\"\xff\",\"subscriberId\":\"s\"}", reason: ReasonInvalidJSON,
			want: problems("", "body is not valid UTF-8")},
	})
	got, err := DecodeUnsubscribe([]byte(`{"resourceId":"order-1","subscriberId":"user_42"}`))
	require.NoError(t, err)
	assert.Equal(t, &Unsubscribe{ResourceID: "order-1", SubscriberID: "user_42"}, got)
}

func TestDecodeV2DoesNotKeepInput(t *testing.T) {
	data := []byte(`{"resourceId":"r","subscriberId":"s","m":"v"}`)
	got, err := DecodeSubscribe(data)
	require.NoError(t, err)
	for i := range data {
		data[i] = 'Z'
	}
	assert.Equal(t, &Subscribe{ResourceID: "r", SubscriberID: "s", Meta: map[string]any{"m": "v"}}, got)
}

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"2026-03-01T12:00:00Z", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"2026-03-01T12:00:00.123Z", time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)},
		{"2026-03-01T12:00:00.123456789Z", time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)},
		{"2026-03-01T12:00:00.1234567891Z", time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)},
		{"2026-03-01T12:00:00+00:00", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"2026-03-01T12:00:00-05:30", time.Date(2026, 3, 1, 17, 30, 0, 0, time.UTC)},
		{"2026-03-01T12:00:00+23:59", time.Date(2026, 2, 28, 12, 1, 0, 0, time.UTC)},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2026-03-01T12:00:00", time.Time{}},
		{"2026-03-01t12:00:00Z", time.Time{}},
		{"2026-03-01T12:00:00z", time.Time{}},
		{"2026-03-01 12:00:00Z", time.Time{}},
		{"2026-03-01T12:00:00.Z", time.Time{}},
		{"2026-03-01T12:00:00,5Z", time.Time{}},
		{"2026-03-01T12:00:00+24:00", time.Time{}},
		{"2026-03-01T12:00:00+01:60", time.Time{}},
		{"2026-03-01T12:00:00+0100", time.Time{}},
		{"2026-03-01T12:00Z", time.Time{}},
		{"2026-3-01T12:00:00Z", time.Time{}},
		{"2025-02-29T00:00:00Z", time.Time{}},
		{"2026-03-01T24:00:00Z", time.Time{}},
		{"2026-03-01T23:59:60Z", time.Time{}},
		{"+2026-03-01T12:00:00Z", time.Time{}},
		{"2026-03-01T12:00:00Z ", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := parseDateTime(tt.in)
		assert.Equal(t, !tt.want.IsZero(), ok, tt.in)
		if ok {
			assert.True(t, tt.want.Equal(got), "%s: %v", tt.in, got)
		}
		gotBytes, okBytes := parseDateTime([]byte(tt.in))
		assert.Equal(t, ok, okBytes, tt.in)
		assert.True(t, got.Equal(gotBytes), tt.in)
	}
}

func TestCheckOccurredAt(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"absent", time.Time{}, true},
		{"past", now.Add(-72 * time.Hour), true},
		{"now", now, true},
		{"at the limit", now.Add(MaxOccurredAtSkew), true},
		{"past the limit", now.Add(MaxOccurredAtSkew + time.Millisecond), false},
		{"far future", now.AddDate(1, 0, 0), false},
		{"other zone at the limit", now.Add(MaxOccurredAtSkew).In(time.FixedZone("", -5*3600)), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOccurredAt(tt.at, now)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assertSchemaError(t, err, ReasonInvalidMessage, problems("occurredAt", "must not be more than 5 minutes in the future"))
		})
	}
}
