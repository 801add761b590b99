package schema

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "no secret", in: `{"eventName":"e","properties":{"a":1}}`, want: `{"eventName":"e","properties":{"a":1}}`},
		{name: "top-level", in: `{"eventName":"e","sdkSecretKey":"sk_live_123","properties":{}}`,
			want: `{"eventName":"e","sdkSecretKey":"[REDACTED]","properties":{}}`},
		{name: "nested and formatting kept", in: "{\n  \"properties\": {\"cfg\": [ {\"authSecretKey\" :  \"a1\" } ]},\n  \"x\": 1\n}",
			want: "{\n  \"properties\": {\"cfg\": [ {\"authSecretKey\" :  \"[REDACTED]\" } ]},\n  \"x\": 1\n}"},
		{name: "non-string value", in: `{"sdkSecretKey":{"nested":["a",{"authSecretKey":"b"}]},"n":2}`,
			want: `{"sdkSecretKey":"[REDACTED]","n":2}`},
		{name: "number and null values", in: `{"sdkSecretKey":12345,"authSecretKey":null}`,
			want: `{"sdkSecretKey":"[REDACTED]","authSecretKey":"[REDACTED]"}`},
		{name: "escaped key", in: `{"sdk\u0053ecretKey":"x"}`, want: `{"sdk\u0053ecretKey":"[REDACTED]"}`},
		{name: "duplicates", in: `{"sdkSecretKey":"a","sdkSecretKey":"b"}`, want: `{"sdkSecretKey":"[REDACTED]","sdkSecretKey":"[REDACTED]"}`},
		{name: "top-level array", in: `[{"authSecretKey":"a"}]`, want: `[{"authSecretKey":"[REDACTED]"}]`},
		{name: "secret-like value is kept", in: `{"note":"sdkSecretKey"}`, want: `{"note":"sdkSecretKey"}`},
		{name: "empty", in: ``, want: ``},
		{name: "blank", in: " \n", want: " \n"},
		{name: "invalid JSON", in: `{"sdkSecretKey":"sk_live_123"`, want: `"[REDACTED]"`},
		{name: "trailing data", in: `{"a":1} {"sdkSecretKey":"x"}`, want: `"[REDACTED]"`},
		{name: "invalid UTF-8", in: "{\"sdkSecretKey\":\"\xff\"}", want: `"[REDACTED]"`},
		{name: "too deep", in: `{"sdkSecretKey":"x","a":` + nested(64) + `}`, want: `"[REDACTED]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got := Redact(in)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, tt.in, string(in), "input changed")
			if len(got) > 0 && len(in) > 0 {
				assert.NotSame(t, &in[0], &got[0], "result must be a copy")
			}
		})
	}
}

func TestRedactLarge(t *testing.T) {
	// Redact has no size limit: the bridge may have to redact a body refused as too large.
	body := `{"pad":"` + strings.Repeat("x", MaxBodySize) + `","sdkSecretKey":"s"}`
	got := string(Redact([]byte(body)))
	assert.True(t, strings.HasSuffix(got, `"sdkSecretKey":"[REDACTED]"}`))
}
