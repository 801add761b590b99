package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/internal/clock"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// publishBatch is how many events one publisher has in flight at once when it is not paced:
// enough to keep the connections busy, few enough that the pieces of one event reach the stream
// close together, as they would from services publishing one event.
const publishBatch = 64

// asyncMaxPending bounds the unacknowledged publishes per connection.
const asyncMaxPending = 4096

// workload is the messages of one phase: events [first, first+keys) each made of a track, W
// workflows and, when commits, a commit published once the others are stored.
type workload struct {
	keys      int
	workflows int
	bodySize  int
	rate      float64 // events per second; 0 = as fast as possible
	commits   func(k int) bool
}

// pubTimes are the publish times of each event, in unix nanoseconds: when its first piece and
// when its commit was handed to the connection. Each entry is written by the one publisher that
// owns the event and read once publishing is over.
type pubTimes struct {
	first  []int64
	commit []int64
}

func newPubTimes(keys int) *pubTimes {
	return &pubTimes{first: make([]int64, keys), commit: make([]int64, keys)}
}

// eventKey is the subject token of event k.
func eventKey(k int) string { return "ev-" + strconv.Itoa(k) }

// eventNumber is the inverse of eventKey.
func eventNumber(key string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(key, "ev-"))
	return n, err == nil
}

// trackBody is the track of event k: its number as a property (for the stand-in API) and
// padding up to size bytes.
func trackBody(k, size int) []byte {
	b := make([]byte, 0, max(size, 96))
	b = append(b, `{"eventName":"load_event","properties":{"loadKey":`...)
	b = strconv.AppendInt(b, int64(k), 10)
	b = pad(b, `,"pad":"`, size, len(`}}`))
	return append(b, `}}`...)
}

// workflowBody is workflow i of event k. Padding goes into a custom recipient key, which the
// bridge carries to the API as real recipient data would be.
func workflowBody(k, i, size int) []byte {
	b := make([]byte, 0, max(size, 128))
	b = append(b, `{"campaignId":"campaign-`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","recipients":[{"id":"user-`...)
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","email":"user`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `@example.com"`...)
	b = pad(b, `,"pad":"`, size, len(`}]}`))
	return append(b, `}]}`...)
}

// pad appends a string field filling b up to size bytes, leaving room for tail more bytes; it
// adds nothing when the body is already that long.
func pad(b []byte, open string, size, tail int) []byte {
	n := size - len(b) - len(open) - 1 - tail
	if n <= 0 {
		return b
	}
	b = append(b, open...)
	for range n {
		b = append(b, 'x')
	}
	return append(b, '"')
}

// newMsg is a message of kind for event key, on the subject the schema producer would use.
func newMsg(kind schema.Kind, key, id string, data []byte) (*nats.Msg, error) {
	subject, err := schema.Subject(subjectPref, kind, key)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = data
	// Like the schema producer, every message carries a Nats-Msg-Id, so the server does the
	// de-duplication work it does in production.
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m, nil
}

// publishers are the publisher connections of a run.
type publishers struct {
	conns []*nats.Conn
	js    []jetstream.JetStream
}

func (e *env) newPublishers(n int) (*publishers, error) {
	p := &publishers{}
	for i := range n {
		nc, js, err := e.connect(fmt.Sprintf("notifizz-load publisher %d", i), false,
			jetstream.WithPublishAsyncMaxPending(asyncMaxPending))
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, nc)
		p.js = append(p.js, js)
	}
	return p, nil
}

func (p *publishers) close() {
	for _, nc := range p.conns {
		closeConn(nc)
	}
}

// pending is one published message waiting for its acknowledgement.
type pending struct {
	f   jetstream.PubAckFuture
	js  jetstream.JetStream
	msg *nats.Msg
}

// publish publishes the workload: publisher g owns the events k with k % P == g, and sends the
// pieces of each through different connections, so that the pieces of one event come from
// several connections as they would from several services. A commit goes out only once every
// piece of its event is stored, because a piece stored after the commit would open a window of
// its own. It returns when every message is acknowledged by the stream.
func (p *publishers) publish(ctx context.Context, wl workload, times *pubTimes) error {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(p.js))
	for g := range p.js {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = p.run(ctx, g, wl, times, start)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (p *publishers) run(ctx context.Context, g int, wl workload, times *pubTimes, start time.Time) error {
	nconn := len(p.js)
	var batch []int
	var acks []pending
	for next := g; next < wl.keys; {
		// Gather the events that are due: all of the batch when unpaced, otherwise those whose
		// time has come, waiting for the first one.
		batch = batch[:0]
		for next < wl.keys && len(batch) < publishBatch {
			if wl.rate > 0 {
				due := start.Add(time.Duration(float64(next) / wl.rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					if len(batch) > 0 {
						break
					}
					if err := clock.Sleep(ctx, d); err != nil {
						return err
					}
				}
			}
			batch = append(batch, next)
			next += nconn
		}
		acks = acks[:0]
		for _, k := range batch {
			key := eventKey(k)
			if times != nil {
				times.first[k] = time.Now().UnixNano()
			}
			m, err := newMsg(schema.KindTrack, key, "t-"+key, trackBody(k, wl.bodySize))
			if err != nil {
				return err
			}
			a, err := p.async(p.js[k%nconn], m)
			if err != nil {
				return err
			}
			acks = append(acks, a)
			for i := range wl.workflows {
				m, err := newMsg(schema.KindWorkflow, key, "w-"+key+"-"+strconv.Itoa(i), workflowBody(k, i, wl.bodySize))
				if err != nil {
					return err
				}
				a, err := p.async(p.js[(k+1+i)%nconn], m)
				if err != nil {
					return err
				}
				acks = append(acks, a)
			}
		}
		if err := p.wait(ctx, acks); err != nil {
			return err
		}
		acks = acks[:0]
		for _, k := range batch {
			if wl.commits == nil || !wl.commits(k) {
				continue
			}
			key := eventKey(k)
			if times != nil {
				times.commit[k] = time.Now().UnixNano()
			}
			m, err := newMsg(schema.KindCommit, key, "c-"+key, nil)
			if err != nil {
				return err
			}
			a, err := p.async(p.js[k%nconn], m)
			if err != nil {
				return err
			}
			acks = append(acks, a)
		}
		if err := p.wait(ctx, acks); err != nil {
			return err
		}
	}
	return nil
}

func (p *publishers) async(js jetstream.JetStream, m *nats.Msg) (pending, error) {
	f, err := js.PublishMsgAsync(m)
	if err != nil {
		return pending{}, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return pending{f: f, js: js, msg: m}, nil
}

// wait waits for every acknowledgement; a message whose publish failed is published again
// synchronously, under the same Nats-Msg-Id so that the stream keeps one copy.
func (p *publishers) wait(ctx context.Context, acks []pending) error {
	for _, a := range acks {
		select {
		case <-a.f.Ok():
			continue
		case err := <-a.f.Err():
			var last error = err
			for range 3 {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, last = a.js.PublishMsg(pctx, a.msg)
				cancel()
				if last == nil {
					break
				}
			}
			if last != nil {
				return fmt.Errorf("publish %s: %w", a.msg.Subject, last)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
