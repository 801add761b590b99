package notifizz

import (
	stdjson "encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0},
		{"9223372037", 0}, // would overflow time.Duration
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"Sun, 01 Jun 2025 12:01:00 GMT", time.Minute},
		{"Sunday, 01-Jun-25 12:00:10 GMT", 10 * time.Second}, // RFC 850, still allowed
		{"Sun Jun  1 12:00:05 2025", 5 * time.Second},        // asctime
		{"Sun, 01 Jun 2025 12:01:00", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, parseRetryAfter(tt.in, now))
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name   string
		policy RetryPolicy
		want   []time.Duration // waits before attempts 2, 3, ...
	}{
		{"default, like the SDK", DefaultRetryPolicy, []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}},
		{"doubling under a high cap", RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}},
		{"no cap", RetryPolicy{InitialBackoff: time.Millisecond}, []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}},
		{"zero", RetryPolicy{}, []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				assert.Equal(t, want, tt.policy.backoff(i+1), "retry %d", i+1)
			}
		})
	}
	t.Run("no overflow", func(t *testing.T) {
		assert.Positive(t, RetryPolicy{InitialBackoff: time.Hour}.backoff(200))
	})
}

func TestRetryBudget(t *testing.T) {
	o := options{timeout: 10 * time.Second, retry: DefaultRetryPolicy}
	assert.Equal(t, 3*10*time.Second+time.Second+2*time.Second, retryBudget(o))
	o.timeout = 0
	assert.Zero(t, retryBudget(o), "no per-attempt timeout, no bound")
}

func TestOptionsNormalise(t *testing.T) {
	c := NewClient("a", "s",
		WithBaseURL("https://example.test/v9///"),
		WithRetry(RetryPolicy{Attempts: -2, InitialBackoff: -time.Second, MaxBackoff: -1}),
		WithAutoSendDelay(-time.Second),
		WithTimeout(-1),
		WithUserAgent(""),
		WithHTTPClient(nil),
	)
	o := c.settings()
	assert.Equal(t, "https://example.test/v9", o.baseURL)
	assert.Equal(t, RetryPolicy{Attempts: 1}, o.retry)
	assert.Zero(t, o.autoSendDelay)
	assert.Zero(t, o.timeout)
	assert.Equal(t, DefaultUserAgent, o.userAgent)
	assert.Same(t, defaultHTTPClient(), o.httpClient)
	assert.Same(t, defaultHTTPClient().Transport, DefaultTransport(), "a wrapper keeps the default's pool")

	c.Config(WithBaseURL(""))
	assert.Equal(t, DefaultBaseURL, c.settings().baseURL)
	assert.Equal(t, RetryPolicy{Attempts: 1}, c.settings().retry, "Config changes only what it is given")
}

func TestExcerpt(t *testing.T) {
	const secret = "SECRET_0123456789_0123456789_xyz" // longer than "[redacted]"
	tests := []struct {
		name  string
		raw   string
		limit int
		want  string
	}{
		{"short", "hello", 512, "hello"},
		{"cut", "abcdef", 3, "abc"},
		{"redacted", "a" + secret + "b", 512, "a[redacted]b"},
		{"secret starting inside the limit", "abcd" + secret, 6, "abcd[r"},
		// Redacting the first secret shortens the text; the second one,
		// which starts past the limit and was read only in part, must not
		// slide into the excerpt.
		{"no partial secret after a shift", secret + strings.Repeat("x", 18) + secret[:26], 44, "[redacted]" + strings.Repeat("x", 12)},
		{"secret at the limit", secret + strings.Repeat("x", 10) + secret, 44, "[redacted]" + strings.Repeat("x", 10) + "[redacted]"},
		{"invalid utf-8", "a\xffb", 512, "a\uFFFDb"},
		{"rune not split", "aé", 2, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewClient("", secret).excerpt([]byte(tt.raw), tt.limit)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), tt.limit)
			assert.True(t, utf8.ValidString(got))
			assert.NotContains(t, got, secret[:8])
		})
	}
}

func TestAppendString(t *testing.T) {
	var all strings.Builder
	for b := range 128 {
		all.WriteByte(byte(b))
	}
	inputs := []string{
		"", "plain", all.String(), "é ü 日本", "\u2028\u2029", "bad \xff\xfe utf-8", "<script>&amp;</script>",
		"emoji 😀", "\x00\x1f\x7f", string([]byte{0xed, 0xa0, 0x80}), // a UTF-16 surrogate, invalid in UTF-8
	}
	for _, in := range inputs {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			got := appendString(nil, in)
			want, err := json.Marshal(in)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "same escaping as the JSON encoder")

			var back, wantBack string
			require.NoError(t, stdjson.Unmarshal(got, &back), "valid JSON")
			require.NoError(t, stdjson.Unmarshal(want, &wantBack))
			assert.Equal(t, wantBack, back)
			if utf8.ValidString(in) {
				assert.Equal(t, in, back, "valid text round-trips")
			}
		})
	}
}

// benchRequest is a typical bridge flush: ten workflows of one recipient.
func benchRequest() TrackRequest {
	req := TrackRequest{
		EventName:      "order_shipped",
		Properties:     map[string]any{"orderId": "ORD-4521", "carrier": "FedEx", "amount": 99.99},
		IdempotencyKey: "NOTIFIZZ:order-4521-shipped:1234567",
	}
	for i := range 10 {
		req.Workflows = append(req.Workflows, Workflow{
			CampaignID: fmt.Sprintf("campaign_%d", i),
			Recipients: []Recipient{{ID: fmt.Sprintf("user_%d", i), Email: fmt.Sprintf("user%d@example.com", i)}},
		})
	}
	return req
}

func TestTrackEncodeMatchesStructEncoding(t *testing.T) {
	req := benchRequest()
	req.Workflows[0].Recipients[0].Extra = map[string]any{"locale": "fr"}
	e := getEncodeState()
	defer putEncodeState(e)
	require.NoError(t, e.trackBody(&req, "sk", req.IdempotencyKey))

	// The same body through plain struct encoding, as a reference.
	want, err := stdjson.Marshal(struct {
		EventName      string         `json:"eventName"`
		Properties     map[string]any `json:"properties"`
		Workflows      []Workflow     `json:"workflows"`
		SDKSecretKey   string         `json:"sdkSecretKey"`
		IdempotencyKey string         `json:"idempotencyKey"`
	}{req.EventName, req.Properties, req.Workflows, "sk", req.IdempotencyKey})
	require.NoError(t, err)
	assert.Equal(t, string(want), e.buf.String())
}

func BenchmarkTrackEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		req := benchRequest()
		e := getEncodeState()
		if err := e.trackBody(&req, "sk_live_benchmark", req.IdempotencyKey); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(e.buf.Len()))
		putEncodeState(e)
	}
}

// BenchmarkTrackEncodeOnly leaves out building the request, to show what the
// encoding itself costs.
func BenchmarkTrackEncodeOnly(b *testing.B) {
	req := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		e := getEncodeState()
		if err := e.trackBody(&req, "sk_live_benchmark", req.IdempotencyKey); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(e.buf.Len()))
		putEncodeState(e)
	}
}
