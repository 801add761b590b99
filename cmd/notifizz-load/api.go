package main

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// loadKeyField is the property every workload track carries with the event's number, so that
// the stand-in API can tell which event a call belongs to whatever its idempotency key.
const loadKeyField = `"loadKey":`

// keyStat is what the API saw of one event.
type keyStat struct {
	calls     atomic.Uint32
	workflows atomic.Uint32
	firstAt   atomic.Int64 // unix nanoseconds of the first call
}

// countingAPI is the instant stand-in for the Notifizz API: a plain net/http server on
// 127.0.0.1 that answers every request with 200 {} at once and counts calls and workflows per
// event. It is the only fake in a load run, and it shares the machine with the bridge, so it
// does as little as it can: no JSON parsing, pooled buffers, counters in a slice sized up front
// (so that its memory does not grow during a soak).
type countingAPI struct {
	URL   string
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}
	stats []keyStat

	calls     atomic.Int64
	conns     atomic.Int64 // TCP connections accepted: few, if keep-alive works
	open      atomic.Int64 // TCP connections open now
	workflows atomic.Int64
	unknown   atomic.Int64 // calls whose event could not be told
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// startAPI starts the stand-in API with room for events numbered below keys.
func startAPI(keys int) (*countingAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &countingAPI{URL: "http://" + ln.Addr().String(), ln: ln, done: make(chan struct{}), stats: make([]keyStat, keys)}
	a.srv = &http.Server{Handler: http.HandlerFunc(a.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				a.conns.Add(1)
				a.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				a.open.Add(-1)
			}
		}}
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(ln)
	}()
	return a, nil
}

// close stops the server and closes every connection at once, so that the client's keep-alive
// connections (and their goroutines) end with it. It is called once every expected call has
// been answered; Shutdown would wait up to 5s for a connection the client dialled but never
// used.
func (a *countingAPI) close() {
	_ = a.srv.Close()
	<-a.done
}

var okBody = []byte("{}")

func (a *countingAPI) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(r.Body)
	body := buf.Bytes()
	nw := int64(bytes.Count(body, []byte(`{"campaignId":`)))
	k, ok := loadKeyOf(body)
	bodyPool.Put(buf)

	a.workflows.Add(nw)
	if ok && k < len(a.stats) {
		s := &a.stats[k]
		s.firstAt.CompareAndSwap(0, now)
		s.workflows.Add(uint32(nw))
		s.calls.Add(1)
	} else {
		a.unknown.Add(1)
	}
	// Counted last: once calls reaches what a phase waits for, the per-event figures are in.
	a.calls.Add(1)
	w.Header()["Content-Type"] = []string{"application/json"}
	_, _ = w.Write(okBody)
}

// loadKeyOf finds the event number in a track body without parsing the JSON.
func loadKeyOf(body []byte) (int, bool) {
	i := bytes.Index(body, []byte(loadKeyField))
	if i < 0 {
		return 0, false
	}
	n, digits := 0, 0
	for _, c := range body[i+len(loadKeyField):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return n, digits > 0
}

// tally is the API's view of a phase: calls, events and whether each event came whole.
type tally struct {
	Calls             int64 `json:"calls"`
	Connections       int64 `json:"connections"`
	Events            int   `json:"events"`
	EventsCalled      int   `json:"eventsCalled"`
	Duplicates        int64 `json:"duplicates"`
	Missing           int   `json:"missing"`
	WorkflowsExpected int64 `json:"workflowsExpected"`
	WorkflowsReceived int64 `json:"workflowsReceived"`
	IncompleteEvents  int   `json:"incompleteEvents"`
	UnknownCalls      int64 `json:"unknownCalls"`
}

// tally checks events [0, events): each must have been called callsPerEvent times in all,
// carrying workflows workflows. A call beyond that is a duplicate; an event with fewer
// workflows was split or lost some.
func (a *countingAPI) tally(events, callsPerEvent, workflows int) tally {
	t := tally{Calls: a.calls.Load(), Connections: a.conns.Load(), Events: events, UnknownCalls: a.unknown.Load(),
		WorkflowsExpected: int64(events) * int64(workflows), WorkflowsReceived: a.workflows.Load()}
	for k := range min(events, len(a.stats)) {
		s := &a.stats[k]
		n := int(s.calls.Load())
		switch {
		case n == 0:
			t.Missing++
		case n > callsPerEvent:
			t.Duplicates += int64(n - callsPerEvent)
		}
		if n > 0 {
			t.EventsCalled++
		}
		if int(s.workflows.Load()) != workflows {
			t.IncompleteEvents++
		}
	}
	return t
}

// callsPerEvent is the figure that must be 1.0 for the bridge.
func (t tally) callsPerEvent() float64 {
	if t.Events == 0 {
		return 0
	}
	return float64(t.Calls) / float64(t.Events)
}

// ok reports whether every event was called exactly callsPerEvent times with all its
// workflows, and nothing else was called.
func (t tally) ok(callsPerEvent int) bool {
	return t.Missing == 0 && t.Duplicates == 0 && t.IncompleteEvents == 0 && t.UnknownCalls == 0 &&
		t.Calls == int64(t.Events)*int64(callsPerEvent) && t.WorkflowsReceived == t.WorkflowsExpected
}
