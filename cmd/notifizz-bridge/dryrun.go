package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// dryRunTransport stands in for the Notifizz API in a dry run: it writes each request as one
// JSON line, {"method","path","headers"?,"body"}, and answers 200 with {}, so that the bridge
// acks as after a real call. Of the headers, only those that say something about the request
// are shown (the idempotency key); Authorization would only show the redacted secret. The lines are the only thing the daemon writes to stdout, so a script can
// read them as JSON Lines.
type dryRunTransport struct {
	mu      sync.Mutex // one line at a time: calls run concurrently
	w       io.Writer
	secrets []string // configured secret values, scrubbed wherever and however they appear
}

// dryRunLine is one request as printed.
type dryRunLine struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// dryRunHeaders are the request headers a dry-run line shows.
var dryRunHeaders = []string{"X-Idempotency-Key"}

func newDryRunTransport(w io.Writer, secrets ...string) *dryRunTransport {
	return &dryRunTransport{w: w, secrets: secrets}
}

// RoundTrip prints req and answers it. It fails only when stdout cannot be written, which the
// bridge then treats like a network error, so nothing is acked that was not printed.
func (t *dryRunTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	var headers map[string]string
	for _, h := range dryRunHeaders {
		if v := req.Header.Get(h); v != "" {
			if headers == nil {
				headers = make(map[string]string, len(dryRunHeaders))
			}
			headers[h] = notifizz.Redact(v, schema.Redacted, t.secrets...)
		}
	}
	line, err := marshalJSONLine(dryRunLine{
		Method:  req.Method,
		Path:    req.URL.EscapedPath(),
		Headers: headers,
		Body:    t.redact(body),
	})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	_, err = t.w.Write(line)
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader("{}")),
		ContentLength: 2,
		Request:       req,
	}, nil
}

// redact returns body with the value of every secret key replaced at any depth (by
// schema.Redact, which keeps everything else byte for byte, so the line shows the request as
// sent) and every configured secret value scrubbed wherever else it appears, e.g. pasted into
// a property by mistake, in whatever form the client escaped it (notifizz.Redact). A body
// that is not JSON, or no longer is after scrubbing, is hidden whole.
func (t *dryRunTransport) redact(body []byte) json.RawMessage {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	out := []byte(notifizz.Redact(string(schema.Redact(body)), schema.Redacted, t.secrets...))
	if !json.Valid(out) {
		// Only a secret holding a quote, matched across the end of a string, gets here.
		return json.RawMessage(strconv.Quote(schema.Redacted))
	}
	return out
}

// marshalJSONLine encodes v followed by a newline, without escaping <, > and &, which is for
// HTML and would only make the lines harder to read.
func marshalJSONLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
