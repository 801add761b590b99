package bridge

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
)

// logBuffer collects the bridge's log lines; the bridge writes from its workers while the test
// reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestRedirectDeadLettersAPIRejected: an API that answers 301 (or 307) is not followed. Followed,
// the 301 became a GET whose 200 acked an event never POSTed, and the 307 carried the body and
// its sdkSecretKey to the other server. Each event is dead-lettered api_rejected after one call,
// with the status and where the API pointed, and the other server sees nothing.
func TestRedirectDeadLettersAPIRejected(t *testing.T) {
	var elsewhere atomic.Int32
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(moved.Close)

	e := newEnv(t)
	tr := e.watchTerminations()
	e.api.setRespond(func(_ int, c apiCall) (int, map[string]string, string) {
		status := http.StatusMovedPermanently
		if strings.HasPrefix(c.Path, "/notification/") {
			status = http.StatusTemporaryRedirect
		}
		return status, map[string]string{"Location": moved.URL + "/v2" + c.Path}, `{"moved":true}`
	})
	e.start(nil)

	tAck, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	cAck, err := e.prod.Commit(ctx, "k1")
	require.NoError(t, err)
	sAck, err := e.prod.Send(ctx, "s1", "n1", map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "e"}}})
	require.NoError(t, err)

	for _, seq := range []uint64{tAck.Sequence, cAck.Sequence, sAck.Sequence} {
		e.waitTerminated(tr, seq, string(deadletter.ReasonAPIRejected))
	}
	dls := e.deadLetters(3)
	wantStatus := map[string]string{
		"notifizz.track": "301", "notifizz.commit": "301", "notifizz.send": "307",
	}
	wantPath := map[string]string{
		"notifizz.track": "/v2/events/track", "notifizz.commit": "/v2/events/track",
		"notifizz.send": "/v2/notification/channel/notificationcenter/config/n1/track",
	}
	for _, d := range dls {
		subject := d.Header.Get(deadletter.HeaderOriginalSubject)
		kind := subject[:strings.LastIndexByte(subject, '.')]
		assert.Equal(t, string(deadletter.ReasonAPIRejected), d.Header.Get(deadletter.HeaderReason), subject)
		assert.Equal(t, wantStatus[kind], d.Header.Get(deadletter.HeaderAPIStatus), subject)
		detail := d.Header.Get(deadletter.HeaderError)
		assert.Contains(t, detail, `"`+moved.URL+wantPath[kind]+`"`, "where the API pointed")
		assert.Contains(t, detail, "notifizz.baseUrl", "what to change")
		assert.NotContains(t, detail, testSDKKey)
	}
	e.settled(e.cfg)
	assert.Len(t, e.api.snapshot(), 2, "one call per event: a redirect is never retried")
	assert.Zero(t, elsewhere.Load(), "no request reached the redirect target")
}

// TestJunk2xxAckedAfterOneCall: a send answered 200 with a body that is not JSON, or 10 MB
// long, was accepted by the API. It used to be naked and POSTed again on every delivery, then
// dead-lettered max_deliveries; it is acked after one call, with an excerpt of the body logged.
func TestJunk2xxAckedAfterOneCall(t *testing.T) {
	tests := []struct {
		name, body, logged string
	}{
		{"not json", "<html>accepted, thanks</html>", "<html>accepted, thanks</html>"},
		{"10 MB", `{"pad":"` + strings.Repeat("z", 10<<20), `{"pad":"zzzz`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.api.setRespond(func(int, apiCall) (int, map[string]string, string) { return http.StatusOK, nil, tt.body })
			var logs logBuffer
			r := e.start(nil, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

			_, err := e.prod.Send(ctx, "s1", "n1", map[string]any{"recipients": []any{map[string]any{"id": "u", "email": "e"}}})
			require.NoError(t, err)
			e.settled(e.cfg)
			r.stop(t)

			assert.Len(t, e.api.snapshot(), 1, "an accepted send is never sent again")
			assert.Zero(t, e.dlqCount())
			assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_messages_total", map[string]string{"outcome": outcomeAcked}))
			out := logs.String()
			assert.Contains(t, out, "response body is unreadable; messages acked")
			assert.Contains(t, out, strings.ReplaceAll(tt.logged, `"`, `\"`), "an excerpt of what came back")
			assert.Less(t, len(out), 64<<10, "only an excerpt is logged")
		})
	}
}
