package notifizz_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// TestRedirectsAreNeverFollowed: a 3xx is the answer, never a hop. Followed, a 301, 302 or 303
// turns the POST into a GET without body whose 200 passes for success (the event is lost), and
// a 307 or 308 resends the body, which carries sdkSecretKey, and perhaps Authorization, to
// wherever the API pointed. The redirect target must see no request at all, whichever HTTP
// client the caller supplied.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	target := newFakeAPI(t, respond(http.StatusOK, `{"ok":true}`))
	tu, err := url.Parse(target.URL)
	require.NoError(t, err)
	// The target under another host name (a different host for net/http, which would then
	// drop Authorization but still resend the body) and under the API's own host on its
	// other port (for which net/http would keep Authorization too).
	otherHost := "http://localhost:" + tu.Port() + "/v2"
	otherPort := target.URL + "/v2"

	clients := map[string]func(api *fakeAPI) notifizz.Option{
		"default client": func(*fakeAPI) notifizz.Option { return notifizz.WithHTTPClient(nil) },
		"caller's client": func(api *fakeAPI) notifizz.Option {
			return notifizz.WithHTTPClient(&http.Client{Transport: api.Client().Transport})
		},
		"caller's client that follows": func(api *fakeAPI) notifizz.Option {
			return notifizz.WithHTTPClient(&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }})
		},
	}
	calls := map[string]func(c *notifizz.Client) (string, error){
		"track": func(c *notifizz.Client) (string, error) {
			return "/events/track", c.TrackEvent(context.Background(), ping)
		},
		"send": func(c *notifizz.Client) (string, error) {
			_, err := c.Send(context.Background(), "n", map[string]any{"recipients": alice()}, notifizz.WithIdempotencyKey("k"))
			return "/notification/channel/notificationcenter/config/n/track", err
		},
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for where, base := range map[string]string{"other host": otherHost, "other port": otherPort} {
			for cname, withClient := range clients {
				for call, do := range calls {
					t.Run(strings.Join([]string{http.StatusText(status), where, cname, call}, "/"), func(t *testing.T) {
						before := target.count()
						api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
							// Where the same path lives on the target: what a moved API answers.
							w.Header().Set("Location", base+strings.TrimPrefix(r.URL.Path, "/v1"))
							w.WriteHeader(status)
						})
						client := notifizz.NewClient(authSecret, sdkSecret, notifizz.WithBaseURL(api.URL+"/v1"),
							notifizz.WithRetry(fastRetry), withClient(api))
						path, err := do(client)

						apiErr, ok := asAPIError(err)
						require.True(t, ok, "a redirect is an APIError, got %v", err)
						assert.Equal(t, status, apiErr.StatusCode)
						assert.False(t, notifizz.IsRetryable(err), "a redirect is permanent")
						assert.Equal(t, base+path, apiErr.Location)
						assert.Contains(t, err.Error(), `redirect to "`+base+path+`" not followed`)
						assert.Contains(t, err.Error(), "base URL must change")
						assertNoSecrets(t, err)
						assert.Equal(t, 1, api.count(), "one request, not retried")
						// Do returns only after following a redirect, so nothing can still be
						// on its way to the target here.
						assert.Equal(t, before, target.count(), "no request reached the redirect target")
					})
				}
			}
		}
	}
}

// TestRedirectLocationCarriesNoSecret: the Location quoted in the error loses URL credentials
// and any secret of the client, in whichever form it was written.
func TestRedirectLocationCarriesNoSecret(t *testing.T) {
	client, _ := setup(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "https://user:pass@moved.example/v1/events/track?key="+url.QueryEscape(sdkSecret)+"&auth="+authSecret)
		w.WriteHeader(http.StatusMovedPermanently)
	})
	err := client.TrackEvent(context.Background(), ping)
	apiErr, ok := asAPIError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, "https://moved.example/v1/events/track?key=[redacted]&auth=[redacted]", apiErr.Location)
	assert.NotContains(t, err.Error(), "pass")
	assertNoSecrets(t, err)
}
