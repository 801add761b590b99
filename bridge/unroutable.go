package bridge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Outcome labels of notifizz_bridge_unroutable_messages_total.
const (
	unroutableDeadLettered = "dead_lettered"
	unroutableRefused      = "refused"
	unroutableLost         = "lost"
)

// unroutableBuffer bounds the unroutable messages waiting for their dead-letter copy; beyond it
// (the dead-letter stream refusing writes for long) they are counted lost.
const unroutableBuffer = 1024

// unroutableQueue is the buffer of the subscription on <prefix>.>, which sees every message
// published under the prefix, those the stream captures included: the filter drains it at once.
const unroutableQueue = 8192

// unroutableRefresh is how often the watcher re-reads which streams capture subjects under the
// prefix, besides doing so on every stream advisory: a safety net for advisories it may not
// receive (a user without permission for $JS.EVENT.>).
const unroutableRefresh = 30 * time.Second

// streamAdvisories are the server's notices of streams created, updated and deleted.
const streamAdvisories = "$JS.EVENT.ADVISORY.STREAM.>"

// unroutable records the messages published under the subject prefix that no stream captures:
// a mistyped kind, an extra token, a published core message that would otherwise go nowhere.
// Its queue-group subscription on <prefix>.> is shared by every replica of one deployment, so
// that the server hands each message to exactly one of them. See docs/CONTRACT.md.
//
// Four goroutines, started by watchUnroutable and ended before wait returns: filter drains the
// subscription and passes on what the captured subjects do not match; answer answers a request
// no stream captures as the server would have without this subscription (no responders);
// record dead-letters the rest as unknown_subject; refresh re-reads the captured subjects when a
// stream changes. Each owns the fields it names.
type unroutable struct {
	b       *Bridge
	sub     *nats.Subscription // filter
	advice  *nats.Subscription // refresh
	msgs    chan *nats.Msg     // the subscription's buffer; filter reads it
	reqs    chan *nats.Msg     // filter → answer; filter closes it
	cand    chan *nats.Msg     // filter → record; filter closes it
	known   chan []string      // refresh → filter: the subject filters of the streams under the prefix
	changed chan struct{}      // a stream changed, or a lookup named one: refresh
	ended   sync.WaitGroup
}

// unroutableGroup is the queue group of the subscription: the same for every replica of one
// deployment (one stream, one durable or one partitioned group), and different across
// deployments, so that each deployment records what it cannot route.
func (b *Bridge) unroutableGroup() string {
	id := b.cfg.Consumer.Durable
	if b.cfg.Partitions.Count > 0 {
		id = b.cfg.Partitions.Group
	}
	return "notifizz-bridge-unroutable-" + b.cfg.Stream.Name + "-" + id
}

// watchUnroutable subscribes to <prefix>.> in the deployment's queue group and starts the
// goroutines that record what no stream captures, until ctx is done. It reads the subjects the
// streams capture first, so it runs once they are provisioned.
func (b *Bridge) watchUnroutable(ctx context.Context) (*unroutable, error) {
	u := &unroutable{
		b: b, msgs: make(chan *nats.Msg, unroutableQueue), reqs: make(chan *nats.Msg, unroutableBuffer),
		cand: make(chan *nats.Msg, unroutableBuffer), known: make(chan []string, 1), changed: make(chan struct{}, 1),
	}
	captured, err := u.capturedSubjects(ctx)
	if err != nil {
		return nil, err
	}
	nc := b.js.Conn()
	u.advice, err = nc.Subscribe(streamAdvisories, func(*nats.Msg) { u.refreshSoon() })
	if err != nil {
		b.log.Warn("cannot watch stream advisories; re-reading streams periodically instead", "interval", unroutableRefresh, "error", err)
	}
	u.sub, err = nc.ChanQueueSubscribe(b.cfg.Stream.SubjectPrefix+".>", b.unroutableGroup(), u.msgs)
	if err != nil {
		if u.advice != nil {
			_ = u.advice.Unsubscribe()
		}
		return nil, fmt.Errorf("subscribe to %s.> for unroutable messages: %w", b.cfg.Stream.SubjectPrefix, err)
	}
	// The server has the subscriptions once it answers a flush: a message published after the
	// bridge is ready reaches the watcher (and, with replicas, each replica's share of the
	// queue group).
	if err := nc.FlushTimeout(deadLetterTimeout); err != nil {
		b.log.Warn("the watch for unroutable messages may start late", "error", err)
	}
	u.ended.Add(4)
	go u.filter(ctx, captured)
	go u.answer(ctx)
	go u.record(ctx)
	go u.refresh(ctx)
	return u, nil
}

// wait returns once every goroutine of the watcher has ended: after ctx is done and what was
// buffered has been recorded, or given up on after the shutdown timeout.
func (u *unroutable) wait() { u.ended.Wait() }

// capturedSubjects returns the subject filters of every stream that captures subjects under the
// prefix: the notification stream as it exists, the dead-letter stream, any other.
func (u *unroutable) capturedSubjects(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	var out []string
	l := u.b.js.ListStreams(ctx, jetstream.WithStreamListSubject(u.b.cfg.Stream.SubjectPrefix+".>"))
	for info := range l.Info() {
		out = append(out, info.Config.Subjects...)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list the streams under %s: %w", u.b.cfg.Stream.SubjectPrefix, err)
	}
	return out, nil
}

// refreshSoon asks refresh to re-read the captured subjects; requests coalesce.
func (u *unroutable) refreshSoon() {
	select {
	case u.changed <- struct{}{}:
	default:
	}
}

// refresh re-reads the captured subjects on every change and every unroutableRefresh, and hands
// them to filter, until ctx is done.
func (u *unroutable) refresh(ctx context.Context) {
	defer u.ended.Done()
	t := time.NewTicker(unroutableRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if u.advice != nil {
				if err := u.advice.Unsubscribe(); err != nil {
					u.b.log.Warn("unsubscribe from stream advisories failed", "error", err)
				}
			}
			return
		case <-u.changed:
		case <-t.C:
		}
		captured, err := u.capturedSubjects(ctx)
		if err != nil {
			continue // the filter keeps what it has; a lookup still settles each message
		}
		// filter is the only receiver and known holds one list: replace what it has not taken.
		select {
		case <-u.known:
		default:
		}
		u.known <- captured
	}
}

// filter passes on the messages that no captured subject matches: requests to answer, the rest
// (but dead letters) to record. When ctx is done it unsubscribes (another replica of the group
// receives what comes next), filters what the subscription buffered, and closes reqs and cand.
func (u *unroutable) filter(ctx context.Context, captured []string) {
	defer u.ended.Done()
	defer close(u.cand)
	defer close(u.reqs)
	dlqPrefix := u.b.cfg.DeadLetter.SubjectPrefix + "."
	pass := func(m *nats.Msg) {
		switch {
		case capturedBy(captured, m.Subject):
		case m.Reply != "":
			select {
			case u.reqs <- m:
			default: // the requester times out, as it would without an answer
			}
		case strings.HasPrefix(m.Subject, dlqPrefix):
			// Not a producer's message: a dead letter is not dead-lettered again.
		default:
			select {
			case u.cand <- m:
			default:
				u.b.log.Error("unroutable message lost: too many wait for their dead-letter copy",
					"subject", m.Subject, "buffer", unroutableBuffer)
				u.b.m.unroutable.WithLabelValues(unroutableLost).Inc()
			}
		}
	}
	for {
		select {
		case m := <-u.msgs:
			pass(m)
		case captured = <-u.known:
		case <-ctx.Done():
			if err := u.sub.Unsubscribe(); err != nil {
				u.b.log.Warn("unsubscribe from unroutable subjects failed", "error", err)
			}
			// Once Unsubscribe has returned, the client puts nothing more in msgs.
			for {
				select {
				case m := <-u.msgs:
					pass(m)
				default:
					return
				}
			}
		}
	}
}

// captures asks the server whether a stream captures subject: it knows streams created or
// changed since the last refresh. A stream it names makes refresh re-read them all.
func (u *unroutable) captures(ctx context.Context, subject string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	_, err := u.b.js.StreamNameBySubject(ctx, subject)
	switch {
	case err == nil:
		u.refreshSoon()
		return true, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	default:
		return false, err
	}
}

// answer refuses each request filter passes on that no stream captures, until filter closes
// reqs. A request is answered at once, never behind a dead letter being stored; after ctx is
// done none is, and their publishers time out as they would without the bridge's subscription.
func (u *unroutable) answer(ctx context.Context) {
	defer u.ended.Done()
	for m := range u.reqs {
		captured, err := u.captures(ctx, m.Subject)
		if err == nil && !captured {
			u.refuse(m)
		}
		// On an error it is unknown whether a stream answers: leave the requester to its timeout.
	}
}

// record dead-letters each message filter passes on that no stream captures, until filter
// closes cand. After ctx is done it keeps trying to store the copies it holds for up to the
// shutdown timeout.
func (u *unroutable) record(ctx context.Context) {
	defer u.ended.Done()
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(u.b.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-work.Done():
		}
	})
	defer stop()
	for m := range u.cand {
		captured, err := u.captures(work, m.Subject)
		if err != nil {
			// Rather a spurious dead letter than a message lost without a trace.
			u.b.log.Warn("could not ask which stream captures a subject; recording it as unroutable", "subject", m.Subject, "error", err)
		}
		if !captured {
			u.deadLetter(work, m)
		}
	}
}

// refuse answers a request (a JetStream publish) as the server answers one that reaches no
// subscriber: a 503 status without a body, which a JetStream client reports as "no responders"
// at once rather than after its timeout. The subscription of this watcher must not turn a fast
// failure at the publisher into a slow one.
func (u *unroutable) refuse(m *nats.Msg) {
	r := &nats.Msg{Subject: m.Reply, Header: nats.Header{"Status": []string{"503"}}}
	if err := u.b.js.Conn().PublishMsg(r); err != nil {
		u.b.log.Warn("could not answer a request on an unroutable subject", "subject", m.Subject, "error", err)
		return
	}
	u.b.m.unroutable.WithLabelValues(unroutableRefused).Inc()
}

// deadLetter stores the copy of an unroutable message, retrying with backoff until ctx ends:
// the message has no stream to come back from.
func (u *unroutable) deadLetter(ctx context.Context, m *nats.Msg) {
	b := u.b
	detail := "no stream captures the subject"
	if _, _, err := schema.ParseSubject(b.cfg.Stream.SubjectPrefix, m.Subject); err != nil {
		detail = err.Error()
	}
	// The copy's id is drawn once, so a retry of a publish whose ack was lost is stored once.
	id := rand.Text()
	// No OriginalSequence: it was never in a stream.
	l := deadletter.Letter{
		Subject: deadletter.UnknownSubject(b.cfg.DeadLetter.SubjectPrefix, id), ID: deadletter.UnknownMsgID(id),
		Reason: deadletter.ReasonUnknownSubject, Error: detail, OriginalSubject: m.Subject, Deliveries: 1,
		Header: m.Header, Data: m.Data,
	}
	cp := l.Msg()
	wait := b.cfg.Retry.NakInitial
	for attempt := 1; ; attempt++ {
		err := b.settler.publishDeadLetter(ctx, cp)
		if err == nil {
			break
		}
		if errors.Is(err, nats.ErrMaxPayload) || ctx.Err() != nil {
			b.log.Error("unroutable message lost: its dead-letter copy could not be stored",
				"subject", m.Subject, "attempts", attempt, "error", err)
			b.m.unroutable.WithLabelValues(unroutableLost).Inc()
			return
		}
		if attempt == 1 {
			b.log.Error("dead-letter publish of an unroutable message failed; retrying", "subject", m.Subject, "error", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(wait*2, b.cfg.Retry.NakMax)
	}
	b.log.Warn("message dead-lettered", "subject", m.Subject, "reason", l.Reason, "error", l.Error)
	b.m.deadLetters.WithLabelValues(string(l.Reason)).Inc()
	b.m.unroutable.WithLabelValues(unroutableDeadLettered).Inc()
}

// capturedBy reports whether one of the stream subject filters matches subject.
func capturedBy(filters []string, subject string) bool {
	for _, f := range filters {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether a literal subject matches a subject filter, where '*' stands for
// one token and a last '>' for one or more.
func subjectMatches(filter, subject string) bool {
	for {
		ft, frest, fmore := strings.Cut(filter, ".")
		st, srest, smore := strings.Cut(subject, ".")
		if ft == ">" && !fmore {
			return true
		}
		if ft != "*" && ft != st {
			return false
		}
		if !fmore || !smore {
			return fmore == smore
		}
		filter, subject = frest, srest
	}
}
