package notifizz_test

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// escapedSecret holds every character that JSON or HTML escapes, a slash and a non-ASCII
// letter; "SECRET" is what must never be seen again, in any form.
const escapedSecret = "sk<live>&\"q'\\/é_SECRET_x"

// stdJSON is s as encoding/json writes it inside a string, with HTML escaping or without.
func stdJSON(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := stdjson.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s)
	out := strings.TrimSpace(b.String())
	return out[1 : len(out)-1]
}

func TestRedactEveryForm(t *testing.T) {
	s := escapedSecret
	forms := map[string]string{
		"raw":                    s,
		"json, html escaped":     stdJSON(s, true),
		"json, not html escaped": stdJSON(s, false),
		"json, uppercase hex":    `sk\u003Clive\u003E\u0026\u0022q\u0027\\\/\u00E9_SECRET_x`,
		"json, ascii only":       strings.ReplaceAll(stdJSON(s, false), "é", `\u00e9`),
		"json escaped twice":     stdJSON(stdJSON(s, true), true),
		"json twice, not html":   stdJSON(stdJSON(s, false), false),
		"html, go style":         html.EscapeString(s),
		"html, named":            `sk&lt;live&gt;&amp;&quot;q&#x27;\/é_SECRET_x`,
		"html of the json":       html.EscapeString(stdJSON(s, true)),
		"url query":              url.QueryEscape(s),
		"url path":               url.PathEscape(s),
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			text := `{"error":"bad key ` + form + ` given"}`
			got := notifizz.Redact(text, "[x]", "other", s)
			assert.NotContains(t, got, "SECRET", "from %s", text)
			assert.Contains(t, got, "[x]")
			assert.True(t, strings.HasPrefix(got, `{"error":"bad key `), got)
			assert.True(t, strings.HasSuffix(got, ` given"}`), got)
		})
	}

	t.Run("other text untouched", func(t *testing.T) {
		text := `a \" b &amp; c %41 + \u0041 &#65; \\ ` + "\xff"
		assert.Equal(t, text, notifizz.Redact(text, "[x]", s, ""))
	})
	t.Run("empty secrets match nothing", func(t *testing.T) {
		assert.Equal(t, "abc", notifizz.Redact("abc", "[x]", "", ""))
	})
	t.Run("backslashes branch without blowing up", func(t *testing.T) {
		secret := strings.Repeat(`\`, 40)
		text := strings.Repeat(`\`, 4000)
		got := notifizz.Redact(text, "[x]", secret)
		assert.NotContains(t, got, secret)
	})
}

// TestAPIEchoOfEscapedSecretIsRedacted: an API that echoes the request in its 4xx, in any of
// the ways servers do, must not get the secret into the error text (which the bridge logs and
// copies into Notifizz-Dlq-Error) when the secret holds characters JSON and HTML escape.
func TestAPIEchoOfEscapedSecretIsRedacted(t *testing.T) {
	echoes := map[string]func(auth string, body []byte) string{
		"body as is":           func(_ string, body []byte) string { return `{"error":"bad","request":` + string(body) + `}` },
		"body inside a string": func(_ string, body []byte) string { return fmt.Sprintf(`{"error":%q}`, body) },
		"body re-encoded": func(_ string, body []byte) string {
			var v any
			_ = stdjson.Unmarshal(body, &v)
			var b bytes.Buffer
			enc := stdjson.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(map[string]any{"error": "bad", "request": v})
			return b.String()
		},
		"html page":     func(_ string, body []byte) string { return "<pre>" + html.EscapeString(string(body)) + "</pre>" },
		"authorization": func(auth string, _ []byte) string { return "bad header: " + auth },
		"authorization html": func(auth string, _ []byte) string {
			return "<p>bad header: " + html.EscapeString(auth) + "</p>"
		},
	}
	for name, echo := range echoes {
		t.Run(name, func(t *testing.T) {
			var api *fakeAPI
			api = newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
				// The fake API has read the body already.
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, echo(r.Header.Get("Authorization"), api.all()[n-1].body))
			})
			client := notifizz.NewClient("", escapedSecret, notifizz.WithBaseURL(api.URL), notifizz.WithoutRetry())
			err := client.TrackEvent(context.Background(), notifizz.TrackRequest{
				EventName: "e", Properties: map[string]any{"pasted": escapedSecret}, IdempotencyKey: "k",
			})
			apiErr, ok := asAPIError(err)
			require.True(t, ok, "got %v", err)
			// The echo did carry the secret: the request held it, and the excerpt is not empty.
			require.Contains(t, string(api.only(t).body), "SECRET")
			assert.Contains(t, apiErr.Body, "[redacted]")
			assert.NotContains(t, apiErr.Body, "SECRET")
			assert.NotContains(t, err.Error(), "SECRET")
		})
	}
}
