// Package faultapi is a stand-in for the Notifizz HTTP API that fails on purpose, for tests that
// prove the bridge loses nothing when the API misbehaves. It answers 2xx, 5xx, 429 with
// Retry-After or a permanent 400, stalls past the client's timeout, or resets the connection, at
// rates the test sets and may change while traffic flows (bursts of failure). It records every
// attempt it receives, with its idempotency key and the event it carries, so that a test can
// check afterwards that each event was accepted under exactly one key.
//
// It is test support only: nothing outside tests imports it.
package faultapi

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Faults are the shares of attempts that fail, each way, drawn independently per attempt. Shares
// add up: with ServerError 0.2 and Reset 0.1, 70 % of attempts succeed. A sum above 1 leaves no
// success. The zero value always succeeds.
type Faults struct {
	Reject      float64       // a permanent 400, which the bridge must dead-letter
	ServerError float64       // 500, 502 or 503
	RateLimit   float64       // 429 with a Retry-After header of RetryAfter
	RetryAfter  time.Duration // rounded up to whole seconds; 0 means 1s
	Stall       float64       // no answer until the client gives up (or StallFor passes: then a 503)
	StallFor    time.Duration // 0 means 30s; set it above the client's timeout
	Reset       float64       // the body is read, then the TCP connection is reset without an answer
}

// Outcome is what the API did with one attempt.
type Outcome string

// The outcomes of an attempt.
const (
	OutcomeOK           Outcome = "ok"
	OutcomeReject       Outcome = "reject"
	OutcomeServerError  Outcome = "server_error"
	OutcomeRateLimit    Outcome = "rate_limit"
	OutcomeStall        Outcome = "stall"
	OutcomeReset        Outcome = "reset"
	OutcomeBadRequest   Outcome = "bad_request"  // the body was not a JSON object
	OutcomeAborted      Outcome = "aborted"      // the client went away before its body arrived whole
	OutcomeUnauthorized Outcome = "unauthorized" // the bearer token was not the expected one
)

// Attempt is one HTTP request the API received.
type Attempt struct {
	At        time.Time
	Path      string
	Key       string   // X-Idempotency-Key, empty when absent
	Event     string   // the event's identity (see WithEventID)
	Workflows []string // campaign ids of a track request, in order
	Outcome   Outcome
	Status    int // the HTTP status written; 0 for a stall or a reset
}

// Stats sums the attempts of one idempotency key or one event.
type Stats struct {
	Attempts  int
	Successes int      // attempts answered with a 2xx
	Keys      []string // distinct idempotency keys, in order of first attempt
	Events    []string // distinct event identities, in order of first attempt
	// Workflows are the campaign ids that reached the API in a 2xx answer.
	Workflows map[string]bool
}

// Option configures an API.
type Option func(*API)

// WithSeed makes the draws reproducible.
func WithSeed(seed uint64) Option {
	return func(a *API) { a.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithBearer makes the API answer 401 to a request whose Authorization header is not
// "Bearer <token>", as the real API would.
func WithBearer(token string) Option { return func(a *API) { a.bearer = "Bearer " + token } }

// WithEventID sets how an event is identified from a request's path and decoded body. The
// default is the path, the eventName and the properties in canonical JSON: two requests for
// the same event have the same identity whatever key they carry, so a test can catch one event
// sent under two keys (give each event a unique property).
func WithEventID(f func(path string, body map[string]any) string) Option {
	return func(a *API) { a.eventID = f }
}

// API is the fault-injecting stand-in; serve it with httptest.NewServer. It is safe for
// concurrent use.
type API struct {
	bearer  string
	eventID func(path string, body map[string]any) string
	closed  chan struct{}
	close   sync.Once

	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	attempts []Attempt
	byKey    map[string]*Stats
	byEvent  map[string]*Stats
}

// New returns an API that injects faults at the given rates.
func New(f Faults, opts ...Option) *API {
	a := &API{
		faults:  f,
		eventID: defaultEventID,
		closed:  make(chan struct{}),
		byKey:   map[string]*Stats{},
		byEvent: map[string]*Stats{},
	}
	for _, o := range opts {
		o(a)
	}
	if a.rng == nil {
		WithSeed(uint64(time.Now().UnixNano()))(a)
	}
	return a
}

// SetFaults changes the rates for the attempts that arrive from now on.
func (a *API) SetFaults(f Faults) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = f
}

// Close ends every stall at once, so that the HTTP server can close without waiting for them.
// The API still answers afterwards, without stalling.
func (a *API) Close() { a.close.Do(func() { close(a.closed) }) }

// maxBody bounds what one request may carry; the bridge's requests are far smaller.
const maxBody = 16 << 20

// ServeHTTP records the attempt and answers it as the drawn fault says.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody))
	err := readErr
	at := Attempt{At: time.Now(), Path: r.URL.EscapedPath(), Key: r.Header.Get("X-Idempotency-Key")}
	var body map[string]any
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		err = dec.Decode(&body)
	}
	switch {
	case a.bearer != "" && r.Header.Get("Authorization") != a.bearer:
		at.Outcome = OutcomeUnauthorized
	case readErr != nil:
		// Cut off mid-body: the client gave up (its timeout, on a busy machine) and never
		// sees the answer. What arrived is no event of its.
		at.Outcome = OutcomeAborted
	case err != nil || body == nil:
		at.Outcome = OutcomeBadRequest
	default:
		at.Event = a.eventID(at.Path, body)
		at.Workflows = campaigns(body)
	}

	a.mu.Lock()
	f := a.faults
	if at.Outcome == "" {
		at.Outcome = draw(f, a.rng.Float64())
	}
	var status int
	switch at.Outcome {
	case OutcomeOK:
		status = http.StatusOK
	case OutcomeReject, OutcomeBadRequest, OutcomeAborted:
		status = http.StatusBadRequest
	case OutcomeUnauthorized:
		status = http.StatusUnauthorized
	case OutcomeServerError:
		status = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[a.rng.IntN(3)]
	case OutcomeRateLimit:
		status = http.StatusTooManyRequests
	}
	at.Status = status
	a.record(at)
	a.mu.Unlock()

	switch at.Outcome {
	case OutcomeStall:
		a.stall(w, r, f.StallFor)
		return
	case OutcomeReset:
		reset(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if at.Outcome == OutcomeRateLimit {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(f.RetryAfter)))
	}
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = io.WriteString(w, `{"ok":true}`)
		return
	}
	_, _ = io.WriteString(w, `{"error":"`+string(at.Outcome)+`"}`)
}

// draw picks the outcome of one attempt from u, uniform in [0, 1).
func draw(f Faults, u float64) Outcome {
	for _, c := range []struct {
		share float64
		o     Outcome
	}{
		{f.Reject, OutcomeReject},
		{f.ServerError, OutcomeServerError},
		{f.RateLimit, OutcomeRateLimit},
		{f.Stall, OutcomeStall},
		{f.Reset, OutcomeReset},
	} {
		if u < c.share {
			return c.o
		}
		u -= c.share
	}
	return OutcomeOK
}

func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		return 1
	}
	return int((d + time.Second - 1) / time.Second)
}

// stall holds the request until the client gives up, the API is closed, or d passes; only in
// the last case does the client get an answer (a 503), since nobody waits for the others.
func (a *API) stall(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if d <= 0 {
		d = 30 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return
	case <-a.closed:
	case <-t.C:
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// reset closes the connection with an RST and no answer: the request was received, so the
// client cannot know whether it took effect, which is exactly when a retry must reuse its key.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 cannot hijack; aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// Linger 0 makes Close send an RST rather than a FIN.
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// record adds one attempt to the log and the sums; a.mu is held.
func (a *API) record(at Attempt) {
	a.attempts = append(a.attempts, at)
	ok := at.Status >= 200 && at.Status < 300
	add := func(m map[string]*Stats, id string) {
		s := m[id]
		if s == nil {
			s = &Stats{Workflows: map[string]bool{}}
			m[id] = s
		}
		s.Attempts++
		if ok {
			s.Successes++
			for _, w := range at.Workflows {
				s.Workflows[w] = true
			}
		}
		if !slices.Contains(s.Keys, at.Key) {
			s.Keys = append(s.Keys, at.Key)
		}
		if at.Outcome != OutcomeAborted && !slices.Contains(s.Events, at.Event) {
			s.Events = append(s.Events, at.Event)
		}
	}
	if at.Key != "" {
		add(a.byKey, at.Key)
	}
	if at.Event != "" {
		add(a.byEvent, at.Event)
	}
}

// Attempts returns every attempt received so far, in order of arrival.
func (a *API) Attempts() []Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.attempts)
}

// Count returns how many attempts arrived so far, and how many of them got a 2xx.
func (a *API) Count() (attempts, successes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, at := range a.attempts {
		if at.Status >= 200 && at.Status < 300 {
			successes++
		}
	}
	return len(a.attempts), successes
}

// ByKey returns the sums per idempotency key.
func (a *API) ByKey() map[string]Stats {
	return a.snapshot(a.byKey)
}

// ByEvent returns the sums per event identity.
func (a *API) ByEvent() map[string]Stats {
	return a.snapshot(a.byEvent)
}

// snapshot copies src, one of the API's maps (never reassigned after New), under the lock.
func (a *API) snapshot(src map[string]*Stats) map[string]Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]Stats, len(src))
	for id, s := range src {
		c := *s
		c.Keys = slices.Clone(s.Keys)
		c.Events = slices.Clone(s.Events)
		c.Workflows = maps.Clone(s.Workflows)
		out[id] = c
	}
	return out
}

// defaultEventID is the path, the eventName and the properties in canonical JSON (encoding/json
// writes map keys sorted, and numbers were kept as written).
func defaultEventID(path string, body map[string]any) string {
	props, _ := json.Marshal(body["properties"])
	name, _ := body["eventName"].(string)
	return path + " " + name + " " + string(props)
}

// campaigns lists the campaign ids of a track request's workflows.
func campaigns(body map[string]any) []string {
	wfs, _ := body["workflows"].([]any)
	var ids []string
	for _, w := range wfs {
		if m, ok := w.(map[string]any); ok {
			if id, ok := m["campaignId"].(string); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
