package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	"github.com/notifizz-bridge/notifizz-bridge/internal/loopback"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Helpers for the partitioned tests: bridge replicas that each have their own connection and
// their own stand-in API, so that a test can tell which replica sent what, and a three-node
// JetStream cluster.

// scaleWait bounds the waits of the partitioned tests, which move thousands of events and wait
// for pins and AckWait to expire on a busy machine.
const scaleWait = 3 * time.Minute // a deadline only: a busy machine is slow

// partitioned returns the env's config in partitioned mode. AckWait and FailoverAfter are short
// so that pins and redeliveries move within the test, and not below 2s, under which pcgroups' pinned consumers
// flap (see its README). The events of these tests end with a commit, which flushes them as soon
// as they are whole; the delay is a backstop, long enough that neither a machine busy with
// other tests nor a cluster electing a leader closes a window between two pieces of one event.
func (e *env) partitioned(mode group.Mode, count int, members ...string) Config {
	cfg := e.cfg
	cfg.Consumer.AckWait = 2 * time.Second
	cfg.Coalesce.Delay = 2 * time.Minute
	cfg.Coalesce.OrphanTimeout = 4 * time.Minute
	cfg.Partitions = PartitionsConfig{Count: count, Mode: mode, Group: "bridges", Members: members, FailoverAfter: 2 * time.Second}
	return cfg
}

// replica is one bridge of a partitioned group.
type replica struct {
	name   string
	api    *fakeAPI
	client *abandons // its Notifizz client's transport
	nc     *nats.Conn
	b      *Bridge
	reg    *prometheus.Registry
	logs   logBuffer // what it logged, at info and above

	cancel context.CancelFunc
	errc   chan error
	once   sync.Once
}

// apiClient is a Notifizz client for one stand-in API, with fast retries, through tr.
func apiClient(api *fakeAPI, tr *abandons) *notifizz.Client {
	return notifizz.NewClient(testAuthKey, testSDKKey,
		notifizz.WithBaseURL(api.srv.URL),
		notifizz.WithHTTPClient(&http.Client{Transport: tr}),
		notifizz.WithTimeout(2*time.Second),
		notifizz.WithRetry(notifizz.RetryPolicy{Attempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
	)
}

// startReplica runs a bridge as member name of cfg's group, on its own connection to urls (the
// env's server when empty) and with its own API, until the test ends or stop. It waits until
// the replica has joined the group.
// launchReplica starts a replica of a partitioned group named name, connected to urls (the env's
// server by default), without waiting for it to join.
func (e *env) launchReplica(name string, cfg Config, urls ...string) *replica {
	e.t.Helper()
	if len(urls) == 0 {
		urls = []string{e.srv.ClientURL()}
	}
	nc, js := natstest.Connect(e.t, strings.Join(urls, ","), nats.Name("replica-"+name),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))

	if cfg.Partitions.Member == "" {
		cfg.Partitions.Member = name
	}
	r := &replica{name: name, api: newFakeAPI(e.t), client: newAbandons(), nc: nc, reg: prometheus.NewRegistry(), errc: make(chan error, 1)}
	var out io.Writer = &r.logs
	if testing.Verbose() {
		out = io.MultiWriter(&r.logs, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", name)
	var err error
	r.b, err = New(cfg, js, apiClient(r.api, r.client), WithLogger(logger), WithRegisterer(r.reg))
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.errc <- r.b.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// startReplica launches a replica and waits until it has joined its group.
func (e *env) startReplica(name string, cfg Config, urls ...string) *replica {
	e.t.Helper()
	r := e.launchReplica(name, cfg, urls...)
	e.waitJoined(r)
	return r
}

// waitJoined waits until r consumes; it fails if r's Run returned first.
func (e *env) waitJoined(r *replica) {
	e.t.Helper()
	name := r.name
	require.Eventually(e.t, func() bool {
		select {
		case err := <-r.errc:
			r.errc <- err // keep it for stop
			return true
		default:
			return r.b.Ready()
		}
	}, scaleWait, pollEvery, "replica %s did not join", name)
	require.True(e.t, r.b.Ready(), "replica %s stopped before joining", name)
}

// stop shuts the replica down as a signal would and waits for Run to return.
func (r *replica) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.errc:
			assert.NoError(t, err, "Run of replica %s", r.name)
		case <-time.After(scaleWait):
			t.Errorf("Run of replica %s did not return after cancel", r.name)
		}
	})
}

// gauge reads one gauge or counter of the replica's registry (summed over its series), 0 when
// it has none. It uses no testing.T, so that a polled condition may call it.
func (r *replica) gauge(name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// crash stops the replica as a killed process would: its connection goes first, so that no
// ack, nak or step-down of its reaches the server, and only then is its bridge stopped.
func (r *replica) crash(t *testing.T) {
	r.nc.Close()
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.errc: // whatever it says: it could not settle anything
		case <-time.After(scaleWait):
			t.Errorf("Run of replica %s did not return after cancel", r.name)
		}
	})
}

// event is what a test published for one event key.
type event struct {
	key      string
	trackSeq uint64 // stream sequence of the track message
}

// publishEvents publishes one event per key, in four rounds, each from another of the
// publishers: every track, then every first workflow ("c1"), every second one ("c2"), and every
// commit. The rounds are asynchronous publishes, so that thousands of events take little time,
// and each waits for the stream's acks before the next starts, so that the pieces of an event
// are stored in order while the windows of all of them are open at once. beforeCommits, when
// not nil, runs before the last round. A publish that fails (a cluster electing a leader) is
// retried under the same Nats-Msg-Id, which the stream de-duplicates. It uses no testing.T, so
// that a test may run it on another goroutine.
func publishEvents(pubs []jetstream.JetStream, keys []string, beforeCommits func()) ([]event, error) {
	round := func(r int, subject func(key string) string, body func(key string) []byte) ([]uint64, error) {
		msgs := make([]*nats.Msg, len(keys))
		for i, key := range keys {
			m := nats.NewMsg(subject(key))
			m.Data = body(key)
			m.Header.Set(jetstream.MsgIDHeader, schema.MsgID("test", key, []byte(strconv.Itoa(r))))
			msgs[i] = m
		}
		return publishAll(pubs[r%len(pubs)], msgs)
	}
	seqs, err := round(0, func(k string) string { return "notifizz.track." + k },
		func(k string) []byte { return []byte(`{"eventName":"ev","properties":{"k":"` + k + `"}}`) })
	if err != nil {
		return nil, err
	}
	for r, c := range []string{"c1", "c2"} {
		if _, err := round(r+1, func(k string) string { return "notifizz.workflow." + k }, func(k string) []byte {
			return []byte(`{"campaignId":"` + c + `","recipients":[{"id":"u-` + k + `","email":"u-` + k + `@example.com"}]}`)
		}); err != nil {
			return nil, err
		}
	}
	if beforeCommits != nil {
		beforeCommits()
	}
	if _, err := round(3, func(k string) string { return "notifizz.commit." + k }, func(string) []byte { return nil }); err != nil {
		return nil, err
	}
	events := make([]event, len(keys))
	for i, key := range keys {
		events[i] = event{key: key, trackSeq: seqs[i]}
	}
	return events, nil
}

// published is what publishEvents returned, for a test that publishes on another goroutine.
type published struct {
	events []event
	err    error
}

// publishInBackground runs publishEvents on another goroutine.
func publishInBackground(pubs []jetstream.JetStream, keys []string, beforeCommits func()) <-chan published {
	out := make(chan published, 1)
	go func() {
		events, err := publishEvents(pubs, keys, beforeCommits)
		out <- published{events, err}
	}()
	return out
}

// publishAll publishes msgs asynchronously and returns their stream sequences, retrying each
// failed publish synchronously.
func publishAll(js jetstream.JetStream, msgs []*nats.Msg) ([]uint64, error) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		futures[i], _ = js.PublishMsgAsync(m) // a failure is retried below
	}
	seqs := make([]uint64, len(msgs))
	for i, f := range futures {
		if f != nil {
			select {
			case ack := <-f.Ok():
				seqs[i] = ack.Sequence
				continue
			case <-f.Err():
			}
		}
		ack, err := retryPublish(func() (*jetstream.PubAck, error) {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return js.PublishMsg(pctx, msgs[i])
		})
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", msgs[i].Subject, err)
		}
		seqs[i] = ack.Sequence
	}
	return seqs, nil
}

func retryPublish(f func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error) {
	var err error
	for range 100 {
		var ack *jetstream.PubAck
		if ack, err = f(); err == nil {
			return ack, nil
		}
		time.Sleep(100 * time.Millisecond) // the pace of retries, not a wait for a state
	}
	return nil, err
}

// publishers opens n connections to urls for publishing.
func publishers(t *testing.T, n int, urls ...string) []jetstream.JetStream {
	t.Helper()
	out := make([]jetstream.JetStream, n)
	for i := range out {
		nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1000), jetstream.WithPublishAsyncTimeout(5*time.Second))
		require.NoError(t, err)
		out[i] = js
	}
	return out
}

func eventKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + "-" + strconv.Itoa(i)
	}
	return keys
}

// replicaCall is an API call with the replica that made it.
type replicaCall struct {
	apiCall
	replica string
}

// attemptHeader numbers the HTTP attempts of a replica's Notifizz client (see abandons).
const attemptHeader = "X-Test-Attempt"

// abandons is the transport of a replica's Notifizz client. It numbers each attempt in
// attemptHeader and notes those the client gave up on before it had the whole answer: on a
// machine starved of CPU, an answer can take longer than the client's per-attempt timeout
// although the stand-in API got the call and answered. The client then tries again under the
// same idempotency key (which Notifizz de-duplicates), so the API records one call of the
// bridge twice, from the same replica, a second or two apart. That is the client's retry, not a
// replay by the bridge: answered leaves the attempts given up on out.
type abandons struct {
	next http.RoundTripper
	n    atomic.Int64
	mu   sync.Mutex
	gave map[string]bool // attempt numbers given up on
}

func newAbandons() *abandons {
	return &abandons{next: notifizz.DefaultTransport(), gave: map[string]bool{}}
}

func (a *abandons) RoundTrip(req *http.Request) (*http.Response, error) {
	id := strconv.FormatInt(a.n.Add(1), 10)
	req = req.Clone(req.Context())
	req.Header.Set(attemptHeader, id)
	resp, err := a.next.RoundTrip(req)
	if err != nil {
		a.giveUp(id)
		return nil, err
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, failed: func() { a.giveUp(id) }}
	return resp, nil
}

// giveUp notes attempt id as given up on. It runs before the client sees the error, so before
// it tries again.
func (a *abandons) giveUp(id string) {
	a.mu.Lock()
	a.gave[id] = true
	a.mu.Unlock()
}

// given returns how many attempts the client gave up on.
func (a *abandons) given() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.gave)
}

// answered returns the calls of calls whose answer the client read whole.
func (a *abandons) answered(calls []apiCall) []apiCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.DeleteFunc(calls, func(c apiCall) bool { return a.gave[c.Header.Get(attemptHeader)] })
}

// watchedBody is an answer's body that reports a read that fails (the attempt's timeout ran
// out while it was read).
type watchedBody struct {
	io.ReadCloser
	failed func()
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.failed()
	}
	return n, err
}

// calls returns the calls the replica's API got whose answer its client read (see abandons).
func (r *replica) calls() []apiCall { return r.client.answered(r.api.snapshot()) }

// callsByKey gathers every replica's track calls by event key (the "k" property), earliest
// first: the calls whose answer the replica's client read (see abandons).
func callsByKey(replicas ...*replica) map[string][]replicaCall {
	out := map[string][]replicaCall{}
	for _, r := range replicas {
		for _, c := range r.calls() {
			props, _ := c.Body["properties"].(map[string]any)
			key, _ := props["k"].(string)
			out[key] = append(out[key], replicaCall{apiCall: c, replica: r.name})
		}
	}
	for _, cs := range out {
		slices.SortFunc(cs, func(a, b replicaCall) int { return a.At.Compare(b.At) })
	}
	return out
}

// waitDelivered waits until every event has reached one of the replicas' APIs.
func waitDelivered(t *testing.T, events []event, replicas ...*replica) map[string][]replicaCall {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		calls := callsByKey(replicas...)
		missing := 0
		for _, ev := range events {
			if len(calls[ev.key]) == 0 {
				missing++
			}
		}
		assert.Zero(c, missing, "events not delivered yet")
	}, scaleWait, 50*time.Millisecond, "events never delivered")
	return callsByKey(replicas...)
}

// checkEvents asserts that every event reached the API with both workflows in its first call,
// and that every call for it, whichever replica made it, carried the one idempotency key derived
// from its track's sequence in the stream: a replay after a partition moved is de-duplicated
// by Notifizz instead of sending the event twice. It returns the number of replays.
func checkEvents(t *testing.T, stream string, events []event, calls map[string][]replicaCall) (replays int) {
	t.Helper()
	for _, ev := range events {
		cs := calls[ev.key]
		if !assert.NotEmpty(t, cs, "event %s never sent", ev.key) {
			continue
		}
		if !assert.Equal(t, []string{"c1", "c2"}, workflowIDs(cs[0].apiCall), "event %s: first call, by %s at %s (of %d)",
			ev.key, cs[0].replica, cs[0].At.Format(time.StampMilli), len(cs)) {
			for _, c := range cs {
				t.Logf("event %s: call by %s at %s with workflows %v", ev.key, c.replica, c.At.Format(time.StampMilli), workflowIDs(c.apiCall))
			}
		}
		want := deriveKey("track", stream, ev.key, ev.trackSeq)
		for _, c := range cs {
			assert.Equal(t, want, c.idempotencyKey(), "event %s: call by %s under another idempotency key", ev.key, c.replica)
		}
		replays += len(cs) - 1
	}
	return replays
}

// staticSettled waits until the static group's member consumers hold nothing.
func staticSettled(t *testing.T, js jetstream.JetStream, cfg Config) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, m := range cfg.Partitions.Members {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			cons, err := js.Consumer(rctx, cfg.Stream.Name, group.StaticConsumerName(cfg.Partitions.Group, m))
			cancel()
			if !assert.NoError(c, err, "member %s", m) {
				continue
			}
			info := cons.CachedInfo()
			assert.Zero(c, info.NumPending, "member %s: pending", m)
			assert.Zero(c, info.NumAckPending, "member %s: unacked", m)
		}
	}, scaleWait, 100*time.Millisecond, "static group still holds messages")
}

// elasticSettled waits until the elastic group's work-queue stream is empty: every message
// acked or terminated. When it is not, it says which member consumers still hold or have to
// deliver messages.
func elasticSettled(t *testing.T, js jetstream.JetStream, cfg Config) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := js.Stream(rctx, group.ElasticStreamName(cfg.Stream.Name, cfg.Partitions.Group))
		if !assert.NoError(c, err) || s.CachedInfo().State.Msgs == 0 {
			return
		}
		var held []string
		for ci := range s.ListConsumers(rctx).Info() {
			held = append(held, fmt.Sprintf("%s: %d unacked, %d to deliver", ci.Name, ci.NumAckPending, ci.NumPending))
		}
		assert.Zero(c, s.CachedInfo().State.Msgs, "messages in the work-queue stream; member consumers %v", held)
	}, scaleWait, 100*time.Millisecond, "elastic group still holds messages")
}

// elasticStable waits until the elastic group has exactly members, each with its consumer
// filtering its share of the partitions, so that a test publishes after the rebalance.
func elasticStable(t *testing.T, js jetstream.JetStream, cfg Config, members ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		gc, err := pcgroups.GetElasticConsumerGroupConfig(rctx, js, cfg.Stream.Name, cfg.Partitions.Group)
		if !assert.NoError(c, err) {
			return
		}
		assert.ElementsMatch(c, members, gc.Members)
		for _, m := range members {
			cons, err := js.Consumer(rctx, group.ElasticStreamName(cfg.Stream.Name, cfg.Partitions.Group), m)
			if assert.NoError(c, err, "member %s", m) {
				assert.Equal(c, pcgroups.ElasticGetPartitionFilters(*gc, m), cons.CachedInfo().Config.FilterSubjects, "member %s", m)
			}
		}
	}, scaleWait, 100*time.Millisecond, "elastic group not rebalanced")
}

// startCluster starts a three-node JetStream cluster on loopback and returns its servers.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	const n = 3
	ports := make([]int, n)
	for i := range ports {
		// A port free a moment ago, outside the range other test servers are given.
		addr, err := loopback.FreeAddr()
		require.NoError(t, err)
		_, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		ports[i], err = strconv.Atoi(port)
		require.NoError(t, err)
	}
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))}
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		opts := natstest.Options(t.TempDir())
		opts.ServerName = "n" + strconv.Itoa(i)
		opts.Cluster = server.ClusterOpts{Name: "notifizz", Host: "127.0.0.1", Port: ports[i]}
		opts.Routes = routes
		servers[i] = natstest.Run(t, opts)
	}
	require.Eventually(t, func() bool {
		for _, srv := range servers {
			if !srv.JetStreamIsCurrent() || srv.NumRoutes() < n-1 {
				return false
			}
		}
		return servers[0].JetStreamIsLeader() || servers[1].JetStreamIsLeader() || servers[2].JetStreamIsLeader()
	}, 30*time.Second, 50*time.Millisecond, "cluster did not form")
	// The JetStream API answers on every node only once the meta group has its leader
	// everywhere; a request before then finds no responders.
	for _, srv := range servers {
		nc, err := nats.Connect(srv.ClientURL())
		require.NoError(t, err)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := js.AccountInfo(c)
			return err == nil
		}, 30*time.Second, 50*time.Millisecond, "JetStream API not available on %s", srv.Name())
		nc.Close()
	}
	return servers
}

// connectURLs opens a connection to any of urls, closed at the end of the test.
func connectURLs(t *testing.T, urls []string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, _ := natstest.Connect(t, strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(5*time.Second))
	require.NoError(t, err)
	return nc, js
}

// clientURLs lists the servers' client URLs.
func clientURLs(servers ...*server.Server) []string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return urls
}

// cutProxy is a TCP proxy to a NATS server that can cut a client off: cut closes every
// connection through it and refuses new ones until restore, as a network partition between one
// replica and NATS would.
type cutProxy struct {
	url   string
	ln    net.Listener
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newCutProxy listens on loopback and forwards to the server at target (a nats:// URL) until
// the test ends.
func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{url: "nats://" + ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener is closed
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				_ = c.Close()
				continue
			}
			s, err := net.Dial("tcp", u.Host)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.track(c, s)
			p.wg.Add(2)
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

// pipe copies from one side to the other until either is closed, then closes both.
func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// cut closes every connection through the proxy and refuses new ones.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// restore lets connections through again.
func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
