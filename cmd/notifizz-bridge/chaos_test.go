package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/internal/faultapi"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Sizes of the chaos test. The CI size fits well within 90 s with the race detector; a larger
// run is asked for with NOTIFIZZ_CHAOS_EVENTS (and NOTIFIZZ_CHAOS_RATE, events per second), and
// its figures are recorded in docs/RELIABILITY.md.
const (
	chaosCIEvents     = 2000
	chaosDefaultRate  = 80 // events per second, over all publishers
	chaosPublishers   = 4
	chaosSettleWithin = 60 * time.Second
	chaosSDKKey       = "sdk-chaos-secret-4d1a"
)

// chaosEvent is one event the publishers send: a track, its workflows and a commit.
type chaosEvent struct {
	key       string
	campaigns []string
}

// chaosFigures are what the chaos test reports.
type chaosFigures struct {
	events, messages          int
	kills, natsRestarts       int
	apiBursts                 int
	publishRetries            atomic.Int64
	apiAttempts, api2xx       int
	keysWithDuplicate2xx      int
	byOutcome                 map[faultapi.Outcome]int
	deadLetters               map[string]int
	spuriousDeadLetters       int
	maxDeliveriesAdvisories   atomic.Int64
	terminatedWithoutCopy     int
	terminationsObserved      int
	lostEvents, lostWorkflows int
}

// TestChaos runs the real daemon against an external JetStream server and a faulty API while
// several publishers send thousands of events, and meanwhile kills the daemon with SIGKILL,
// restarts the server on the same port and store, and makes the API fail in bursts. Then it
// checks what the bridge promises: every event reached the API with a 2xx under exactly one
// idempotency key (a replay reuses the key: the same event sent twice under one key is allowed
// after a SIGKILL, under two keys it is the bug this test exists to catch), with every workflow
// published for it; every message is acked or dead-lettered with a reason; nothing is pending.
func TestChaos(t *testing.T) {
	t.Parallel()
	events := chaosCIEvents
	if v := os.Getenv("NOTIFIZZ_CHAOS_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "NOTIFIZZ_CHAOS_EVENTS")
		events = n
	}
	rate := chaosDefaultRate
	if v := os.Getenv("NOTIFIZZ_CHAOS_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "NOTIFIZZ_CHAOS_RATE")
		rate = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("NOTIFIZZ_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "NOTIFIZZ_CHAOS_SEED")
		seed = n
	}
	t.Logf("chaos: %d events at %d/s, seed %d (NOTIFIZZ_CHAOS_SEED replays the draws)", events, rate, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// The API fails a little all the time, and a lot during bursts. Its timeout (below) is
	// shorter than a stall, so stalls end in the client's timeout.
	baseFaults := faultapi.Faults{ServerError: 0.04, RateLimit: 0.02, RetryAfter: time.Second, Stall: 0.01, StallFor: 5 * time.Second, Reset: 0.02}
	api := faultapi.New(baseFaults, faultapi.WithSeed(seed), faultapi.WithBearer(chaosSDKKey),
		faultapi.WithEventID(func(path string, body map[string]any) string {
			props, _ := body["properties"].(map[string]any)
			id, _ := props["eventId"].(string)
			return id
		}))
	apiSrv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		apiSrv.Close()
	})

	// The external server: a fixed port and store, so that a restart is the same server.
	storeDir := t.TempDir()
	natsOpts := server.Options{ServerName: "chaos", StoreDir: storeDir, Port: -1}
	srv := startServer(t, natsOpts)
	natsOpts.Port = serverPort(srv)
	natsURL := srv.ClientURL()

	httpAddr := freeAddr(t)
	config := externalConfig(t, natsURL, httpAddr, fmt.Sprintf(`
consumer:
  # Short, so that what a killed daemon held is redelivered quickly.
  ackWait: 2s
  # High, so that failures during bursts never exhaust an event's deliveries.
  maxDeliver: 10000
  maxAckPending: 5000
coalesce:
  # Commits close the windows. The delay is longer than any stall of a publisher between the
  # pieces of one event (a server restart): a workflow that comes after its track's delay has
  # passed is late by contract and dead-lettered (missing_track), which is not what this test
  # is about.
  delay: 20s
  orphanTimeout: 25s
notifizz:
  baseUrl: %s
  sdkSecretKey: %s
  timeout: 500ms
  maxInFlight: 16
retry:
  attempts: 2
  initialBackoff: 20ms
  maxBackoff: 200ms
  nakInitial: 200ms
  nakMax: 2s
log:
  # Info shows the holds and reconnects without a line per event.
  level: info
shutdownTimeout: 3s
`, apiSrv.URL, chaosSDKKey))

	start := func() *daemon {
		d := startDaemon(t, nil, "run", "--config", config)
		d.waitReadyz(t, httpAddr, http.StatusOK)
		return d
	}
	d := start()

	// Advisories on a connection of the test's: a message that exhausts its deliveries would be
	// dropped by the server without a copy; a terminated one must have its copy. Advisories
	// sent while this connection reconnects are missed, so these checks are a sample.
	nc, js := testConn(t, natsURL)
	figs := &chaosFigures{events: events}
	var termMu sync.Mutex
	terminated := map[uint64]string{}
	_, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", func(*nats.Msg) { figs.maxDeliveriesAdvisories.Add(1) })
	require.NoError(t, err)
	_, err = nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", func(m *nats.Msg) {
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
			Reason    string `json:"reason"`
		}
		if json.Unmarshal(m.Data, &adv) == nil {
			termMu.Lock()
			terminated[adv.StreamSeq] = adv.Reason
			termMu.Unlock()
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	// The publishers: each its own connection and producer, paced so that the chaos has time
	// to hit events in every state. A publish that fails (the server is restarting) is
	// retried with the same body, hence the same Nats-Msg-Id: the stream stores it once.
	all := make([]chaosEvent, events)
	var published atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	interval := time.Duration(float64(time.Second) * chaosPublishers / float64(rate))
	for p := range chaosPublishers {
		_, pjs := testConn(t, natsURL)
		prod := schema.NewProducer(pjs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, n := p, 0; i < events; i, n = i+chaosPublishers, n+1 {
				if wait := time.Until(begin.Add(time.Duration(n) * interval)); wait > 0 {
					time.Sleep(wait) // pacing the load, not waiting for a state
				}
				ev := chaosEvent{key: fmt.Sprintf("chaos-%d-%05d", p, i)}
				for w := range 1 + i%3 {
					ev.campaigns = append(ev.campaigns, "w"+strconv.Itoa(w))
				}
				all[i] = ev
				if !publishChaosEvent(t, prod, ev, i, figs) {
					return
				}
				published.Add(1)
			}
		}()
	}
	pubDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(pubDone)
	}()

	// The chaos: one action at a time, at random moments, until the publishers are done. The
	// first three actions are one of each kind, so that even a short run tries them all; then
	// kills come twice as often as the others, being the harshest.
	actions := []string{"kill", "nats", "burst", "kill"}
	pause := func(lo, hi time.Duration) <-chan time.Time {
		return time.After(lo + time.Duration(rng.Int64N(int64(hi-lo))))
	}
chaos:
	for n := 0; ; n++ {
		select {
		case <-pubDone:
			break chaos
		case <-pause(time.Second, 3*time.Second):
		}
		if d.exited() {
			require.FailNow(t, "the daemon exited by itself", "%v", d.err)
		}
		action := actions[rng.IntN(len(actions))]
		if n < 3 {
			action = actions[n]
		}
		if testing.Verbose() {
			t.Logf("%s chaos: %s", time.Now().UTC().Format("15:04:05.000"), action)
		}
		switch action {
		case "kill":
			// SIGKILL: no shutdown, no flush, no nak; what it held is redelivered after AckWait.
			require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
			<-d.done
			figs.kills++
			<-pause(0, 500*time.Millisecond)
			d = start()
		case "nats":
			natstest.Stop(srv)
			<-pause(0, time.Second)
			srv = startServer(t, natsOpts)
			figs.natsRestarts++
		case "burst":
			api.SetFaults(faultapi.Faults{ServerError: 0.6, RateLimit: 0.3, RetryAfter: time.Second, Reset: 0.1})
			<-pause(time.Second, 3*time.Second)
			api.SetFaults(baseFaults)
			figs.apiBursts++
		}
	}
	require.Equal(t, int64(events), published.Load(), "every event was published")
	publishTime := time.Since(begin)

	// Let it settle: the daemon keeps running, the API keeps its background faults.
	var info *jetstream.ConsumerInfo
	delivered := func() bool {
		byEvent := api.ByEvent()
		for _, ev := range all {
			if byEvent[ev.key].Successes == 0 {
				return false
			}
		}
		return true
	}
	require.Eventually(t, func() bool {
		info = consumerInfo(js)
		return drained(info) && delivered()
	}, chaosSettleWithin, 100*time.Millisecond, "not settled: %+v", &info)
	if d.exited() {
		require.FailNow(t, "the daemon exited by itself", "%v", d.err)
	}
	require.Equal(t, 0, d.stop(t), "a clean stop after the chaos")

	// Every event: a 2xx, one key, every workflow delivered.
	byEvent := api.ByEvent()
	known := map[string]bool{}
	var oneKeyViolations []string
	for _, ev := range all {
		known[ev.key] = true
		s := byEvent[ev.key]
		if !assert.Positive(t, s.Successes, "event %s never got a 2xx", ev.key) {
			figs.lostEvents++
		}
		if len(s.Keys) != 1 {
			oneKeyViolations = append(oneKeyViolations, fmt.Sprintf("%s: %v", ev.key, s.Keys))
		}
		for _, c := range ev.campaigns {
			if !assert.True(t, s.Workflows[c], "event %s: workflow %s never reached the API in a 2xx call (got %v)", ev.key, c, s.Workflows) {
				figs.lostWorkflows++
			}
		}
	}
	assert.Empty(t, oneKeyViolations, "events sent under more than one idempotency key")
	for id := range byEvent {
		assert.True(t, known[id], "the API got an event nobody published: %q", id)
	}
	for k, s := range api.ByKey() {
		assert.Len(t, s.Events, 1, "key %s carried several events: %v", k, s.Events)
		if s.Successes > 1 {
			figs.keysWithDuplicate2xx++
		}
	}

	// Every message: stored once, acked or dead-lettered with a reason.
	figs.messages = 0
	for _, ev := range all {
		figs.messages += 2 + len(ev.campaigns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "NOTIFIZZ")
	require.NoError(t, err)
	sinfo, err := stream.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(figs.messages), sinfo.State.Msgs, "each message stored once despite publish retries")
	info = consumerInfo(js)
	require.NotNil(t, info)
	assert.True(t, drained(info), "nothing pending: %+v", info)
	assert.Equal(t, sinfo.State.LastSeq, info.AckFloor.Stream, "the ack floor is the last message")

	dlq := readDLQ(t, js)
	copies := map[uint64]bool{}
	figs.deadLetters = map[string]int{}
	for _, m := range dlq {
		reason := m.Header.Get(deadletter.HeaderReason)
		assert.NotEmpty(t, reason, "dead letter %d has a reason", m.Seq)
		figs.deadLetters[reason]++
		seq, err := strconv.ParseUint(m.Header.Get(deadletter.HeaderOriginalSequence), 10, 64)
		assert.NoError(t, err, "dead letter %d has its original sequence", m.Seq)
		copies[seq] = true
		// A workflow whose ack was lost in a crash comes back after its event was sent and
		// ends as missing_track. It was delivered, so nothing is lost; any other dead letter
		// in this run is a loss.
		kind, key, _ := schema.ParseSubject("notifizz", m.Header.Get(deadletter.HeaderOriginalSubject))
		switch {
		case reason == string(deadletter.ReasonMissingTrack) && kind == schema.KindWorkflow:
			var w schema.Workflow
			require.NoError(t, json.Unmarshal(m.Data, &w))
			if assert.True(t, byEvent[key].Workflows[w.CampaignID],
				"dead-lettered workflow %s of %s was never delivered: lost", w.CampaignID, key) {
				figs.spuriousDeadLetters++
			}
		case reason == string(deadletter.ReasonMissingTrack) && kind == schema.KindCommit:
			figs.spuriousDeadLetters++ // a commit carries nothing to lose
		default:
			assert.Fail(t, "unexpected dead letter", "reason %s, subject %s, error %s",
				reason, m.Subject, m.Header.Get(deadletter.HeaderError))
		}
	}
	termMu.Lock()
	for seq := range terminated {
		figs.terminationsObserved++
		if !copies[seq] {
			figs.terminatedWithoutCopy++
		}
	}
	termMu.Unlock()
	assert.Zero(t, figs.terminatedWithoutCopy, "terminated without a dead-letter copy")
	assert.Zero(t, figs.maxDeliveriesAdvisories.Load(), "messages exhausted their deliveries")

	attempts := api.Attempts()
	figs.apiAttempts = len(attempts)
	figs.byOutcome = map[faultapi.Outcome]int{}
	for _, a := range attempts {
		figs.byOutcome[a.Outcome]++
		if a.Status >= 200 && a.Status < 300 {
			figs.api2xx++
		}
	}
	t.Logf("chaos figures (published in %s, total %s):\n%s", publishTime.Round(time.Second),
		time.Since(begin).Round(time.Second), figs.String())
}

// publishChaosEvent publishes the track, workflows and commit of one event, each retried
// until stored. It reports false (after recording the failure) when a piece could not be
// stored within a minute.
func publishChaosEvent(t *testing.T, prod *schema.Producer, ev chaosEvent, i int, figs *chaosFigures) bool {
	pieces := []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := prod.Track(ctx, ev.key, "chaos_event", map[string]any{"eventId": ev.key, "n": i})
			return err
		},
	}
	for _, c := range ev.campaigns {
		pieces = append(pieces, func(ctx context.Context) error {
			_, err := prod.Workflow(ctx, ev.key, c, schema.Recipient{ID: "u-" + c, Email: c + "@example.com"})
			return err
		})
	}
	pieces = append(pieces, func(ctx context.Context) error {
		_, err := prod.Commit(ctx, ev.key)
		return err
	})
	for _, publish := range pieces {
		deadline := time.Now().Add(time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := publish(ctx)
			cancel()
			if err == nil {
				break
			}
			var se *schema.Error
			if errors.As(err, &se) || time.Now().After(deadline) {
				// assert, not require: this runs on a publisher's goroutine.
				assert.NoError(t, err, "publish a piece of %s", ev.key)
				return false
			}
			figs.publishRetries.Add(1)
			time.Sleep(50 * time.Millisecond) // a retry interval, not waiting for a state
		}
	}
	return true
}

func (f *chaosFigures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  events published           %d (%d messages, %d publish retries)\n", f.events, f.messages, f.publishRetries.Load())
	fmt.Fprintf(&b, "  daemon SIGKILLs            %d\n", f.kills)
	fmt.Fprintf(&b, "  NATS server restarts       %d\n", f.natsRestarts)
	fmt.Fprintf(&b, "  API failure bursts         %d\n", f.apiBursts)
	fmt.Fprintf(&b, "  API attempts               %d (%d answered 2xx)\n", f.apiAttempts, f.api2xx)
	outcomes := make([]string, 0, len(f.byOutcome))
	for o, n := range f.byOutcome {
		outcomes = append(outcomes, fmt.Sprintf("%s=%d", o, n))
	}
	sort.Strings(outcomes)
	fmt.Fprintf(&b, "  API attempts by outcome    %s\n", strings.Join(outcomes, " "))
	fmt.Fprintf(&b, "  keys with several 2xx      %d (one event replayed under its one key)\n", f.keysWithDuplicate2xx)
	reasons := make([]string, 0, len(f.deadLetters))
	total := 0
	for r, n := range f.deadLetters {
		reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		total += n
	}
	slices.Sort(reasons)
	fmt.Fprintf(&b, "  dead letters               %d %s (of which already delivered: %d)\n", total, strings.Join(reasons, " "), f.spuriousDeadLetters)
	fmt.Fprintf(&b, "  terminations observed      %d (without a copy: %d)\n", f.terminationsObserved, f.terminatedWithoutCopy)
	fmt.Fprintf(&b, "  max-deliveries advisories  %d\n", f.maxDeliveriesAdvisories.Load())
	fmt.Fprintf(&b, "  lost                       %d events, %d workflows\n", f.lostEvents, f.lostWorkflows)
	return b.String()
}
