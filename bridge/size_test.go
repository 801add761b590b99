package bridge

import (
	"testing"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestEncodedBound checks the size coalesce.maxBytes counts for a body against the bytes of the
// decoded workflow encoded again, with the request's escaping: never less, and exact for a
// compact body that nothing in the encoding changes.
func TestEncodedBound(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		exact bool
	}{
		{"compact", `{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com"}]}`, true},
		{"custom keys", `{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com","n":12.50,"t":true}]}`, true},
		{"html characters", `{"campaignId":"a<b>&c","recipients":[{"id":"<u>","email":"u&v@example.com","note":"<<&&>>"}]}`, true},
		{"line separators", "{\"campaignId\":\"c\u2028\u2029\",\"recipients\":[{\"id\":\"u\",\"email\":\"u@example.com\"}]}", true},
		{"whitespace and unknown fields", `{ "campaignId" : "c", "extra": [1, 2, 3],
			"recipients": [ {"id": "u", "email": "u@example.com"} ] }`, false},
		{"escapes", `{"campaignId":"\u00e9\ud83d\ude00\/","recipients":[{"id":"\u003c","email":"u@example.com"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := schema.DecodeWorkflow([]byte(tt.body))
			require.NoError(t, err)
			// go-json escapes as the API client does (HTML characters, U+2028 and U+2029).
			encoded, err := json.Marshal(w)
			require.NoError(t, err)
			bound := encodedBound([]byte(tt.body))
			assert.GreaterOrEqual(t, bound, len(encoded), "encoded as %s", encoded)
			if tt.exact {
				assert.Equal(t, len(encoded), bound, "encoded as %s", encoded)
			}
		})
	}
}
