package bridge

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// withDefaultRecovery sets cfg's consumer and failover settings to their defaults: what these
// tests show is what a user who tuned nothing gets.
func withDefaultRecovery(cfg Config) Config {
	d := DefaultConfig()
	cfg.Consumer = d.Consumer
	cfg.Partitions.FailoverAfter = d.Partitions.FailoverAfter
	return cfg
}

// TestKilledReplicaRecoversWithDefaults: with the default consumer.ackWait and
// partitions.failoverAfter, a replica killed (its connection closed first, as for a killed
// process) while it holds pieces of events, under traffic, loses none of them: its events and
// those of its keys published after the crash reach the API whole, from a restarted bridge in
// single-replica mode, from the next live member (static) or the others (elastic). How long it
// takes is a figure for the logs and the load command, not an assertion.
func TestKilledReplicaRecoversWithDefaults(t *testing.T) {
	tests := []struct {
		name    string
		mode    group.Mode
		count   int
		members []string // static members
		names   []string // the replicas started
	}{
		{name: "single", names: []string{"a"}},
		{name: "static", mode: PartitionStatic, count: 3, members: []string{"m0", "m1", "m2"}, names: []string{"m0", "m1", "m2"}},
		{name: "elastic", mode: PartitionElastic, count: 3, names: []string{"r0", "r1", "r2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := withDefaultRecovery(e.partitioned(tt.mode, tt.count, tt.members...))
			if tt.count == 0 {
				cfg.Partitions = DefaultConfig().Partitions
			}
			replicas := make([]*replica, len(tt.names))
			for i, n := range tt.names {
				replicas[i] = e.startReplica(n, cfg)
			}
			if tt.mode == PartitionElastic {
				elasticStable(t, e.js, cfg, tt.names...)
			}
			victim := replicas[len(replicas)/2]
			prods := publishers(t, 4, e.srv.ClientURL())
			all := replicas

			// The victim dies holding tracks and workflows whose commits come after the crash;
			// a restarted bridge takes over in single-replica mode.
			var crashed time.Time
			events, err := publishEvents(prods, eventKeys("a", 600), func() {
				require.Eventually(t, func() bool { return victim.gauge("notifizz_bridge_held_messages") >= 100 },
					scaleWait, pollEvery, "the victim never held anything")
				crashed = time.Now()
				victim.crash(t)
				if tt.count == 0 {
					all = append(all, e.startReplica("b", cfg))
				}
			})
			require.NoError(t, err)
			// More traffic after the crash, for the victim's keys among others.
			pub := <-publishInBackground(prods, eventKeys("b", 300), nil)
			require.NoError(t, pub.err)
			events = append(events, pub.events...)
			published := time.Now()

			calls := waitDelivered(t, events, all...)
			switch tt.mode {
			case PartitionStatic:
				staticSettled(t, e.js, cfg)
			case PartitionElastic:
				elasticSettled(t, e.js, cfg)
			default:
				e.settled(cfg)
			}
			checkEvents(t, cfg.Stream.Name, events, callsByKey(all...))
			assert.Zero(t, e.dlqCount(), "no dead letters")
			if tt.mode == PartitionStatic {
				// The member covering for the victim counted what the victim held as it came
				// back, and ended its hold then rather than at the latest it could have come.
				cover := replicas[(len(replicas)/2+1)%len(replicas)]
				assert.Contains(t, cover.logs.String(), "the messages a dead member held are back: its hold ends",
					"the cover's hold ended when what the victim held was back")
			}
			last := time.Time{} // the last first call of an event, by whoever made it
			byReplica := map[string]time.Duration{}
			for _, ev := range events {
				c := calls[ev.key][0]
				if c.At.After(last) {
					last = c.At
				}
				byReplica[c.replica] = max(byReplica[c.replica], c.At.Sub(crashed).Round(time.Millisecond))
			}
			t.Logf("last first call by replica, after the crash: %v", byReplica)
			t.Logf("%s: every event delivered %s after the crash, the last published %s after it (ackWait %s, failoverAfter %s)", tt.name,
				last.Sub(crashed).Round(time.Millisecond), published.Sub(crashed).Round(time.Millisecond),
				cfg.Consumer.AckWait, cfg.Partitions.FailoverAfter)
		})
	}
}

// TestStaticCoverIgnoresAckWait: with a consumer.ackWait far longer than
// partitions.failoverAfter, a dead static member's partition is served again without waiting
// for its pin to expire (its TTL is AckWait): the member covering for it unpins it. The events
// published after the crash in the dead member's partition reach the API well before one
// AckWait has passed, which bounds the scenario, not a timing of the machine.
func TestStaticCoverIgnoresAckWait(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 3, "m0", "m1", "m2")
	cfg.Consumer.AckWait = 2 * time.Minute
	m0, m1, m2 := e.startReplica("m0", cfg), e.startReplica("m1", cfg), e.startReplica("m2", cfg)
	filters := pcgroups.GeneratePartitionFilters([]string{"m0", "m1", "m2"}, 3, nil, "m1", ">")
	require.Len(t, filters, 1)
	m1Part, _, _ := strings.Cut(filters[0], ".")
	ofM1 := func(key string) bool { return strconv.Itoa(group.PartitionOf(key, cfg.Partitions.Count)) == m1Part }
	prods := publishers(t, 2, e.srv.ClientURL())

	// m1 has served its partition, so its pin is set.
	pub := <-publishInBackground(prods, eventKeys("a", 60), nil)
	require.NoError(t, pub.err)
	waitDelivered(t, pub.events, m0, m1, m2)
	staticSettled(t, e.js, cfg)
	require.NotEmpty(t, m1.api.snapshot(), "m1 served its partition")

	crashed := time.Now()
	m1.crash(t)
	pub = <-publishInBackground(prods, eventKeys("b", 60), nil)
	require.NoError(t, pub.err)
	var mine []event
	for _, ev := range pub.events {
		if ofM1(ev.key) {
			mine = append(mine, ev)
		}
	}
	require.NotEmpty(t, mine)
	// Half of AckWait: the pin would still be m1's had nobody unpinned it.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		calls := callsByKey(m2)
		for _, ev := range mine {
			assert.NotEmpty(c, calls[ev.key], "event %s of m1's partition", ev.key)
		}
	}, cfg.Consumer.AckWait/2, 50*time.Millisecond, "m2 did not serve m1's partition before m1's pin would have expired")
	t.Logf("m1's partition served by m2 %s after the crash (failoverAfter %s, ackWait %s)",
		time.Since(crashed).Round(time.Millisecond), cfg.Partitions.FailoverAfter, cfg.Consumer.AckWait)
	checkEvents(t, cfg.Stream.Name, pub.events, callsByKey(m0, m1, m2))
}

// TestLongCallIsNotRedelivered: an API call that outlives consumer.ackWait (its default) several
// times over, and the calls of its key waiting behind it under the v2 profile, are kept alive by
// in-progress pings: the server redelivers none of them, so no other replica could make the call
// again while it runs, and each goes out once.
func TestLongCallIsNotRedelivered(t *testing.T) {
	tests := []struct {
		name    string
		api     APIProfile
		client  notifizz.API
		publish func(t *testing.T, e *env)
		calls   int
	}{
		{"v1 event", APIv1, notifizz.APIv1, func(t *testing.T, e *env) {
			_, err := e.prod.Track(ctx, "k1", "ev", nil)
			require.NoError(t, err)
			_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u")...)
			require.NoError(t, err)
			_, err = e.prod.Commit(ctx, "k1")
			require.NoError(t, err)
		}, 1},
		{"v2 lane", APIv2, notifizz.APIv2, func(t *testing.T, e *env) {
			e.publishRaw("notifizz.subscribe.k1", []byte(`{"resourceId":"doc-1","subscriberId":"u_1"}`), nil)
			e.publishRaw("notifizz.unsubscribe.k1", []byte(`{"resourceId":"doc-1","subscriberId":"u_1"}`), nil)
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cfg = withDefaultRecovery(e.cfg)
			e.cfg.API = tt.api
			ackWait := e.cfg.Consumer.AckWait
			stall := 3 * ackWait
			client := notifizz.NewClient(testAuthKey, testSDKKey,
				notifizz.WithAPI(tt.client),
				notifizz.WithBaseURL(e.api.srv.URL),
				notifizz.WithTimeout(stall+time.Minute), // the call waits for the API, however long
				notifizz.WithRetry(notifizz.RetryPolicy{Attempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}),
			)
			release := make(chan struct{})
			e.api.mu.Lock()
			e.api.release = release
			e.api.mu.Unlock()
			r := e.startWithClient(client)

			tt.publish(t, e)
			e.api.waitCalls(t, 1)
			// The length of the scenario: the call runs for three AckWaits.
			<-time.After(stall)
			assert.Len(t, e.api.snapshot(), 1, "no other call while the first one runs")
			cons, err := e.js.Consumer(ctx, e.cfg.Stream.Name, e.cfg.Consumer.Durable)
			require.NoError(t, err)
			info, err := cons.Info(ctx)
			require.NoError(t, err)
			assert.Zero(t, info.NumRedelivered, "the server redelivered nothing while the call ran")
			assert.Zero(t, r.counter(t, "notifizz_bridge_redeliveries_total", nil), "the bridge saw no redelivery")
			assert.NotZero(t, r.counter(t, "notifizz_bridge_in_progress_total", nil), "kept alive with in-progress pings")

			close(release)
			e.api.waitCalls(t, tt.calls)
			e.settled(e.cfg)
			assert.Len(t, e.api.snapshot(), tt.calls, "each call once")
			assert.Zero(t, r.counter(t, "notifizz_bridge_redeliveries_total", nil))
			assert.Zero(t, e.dlqCount(), "no dead letters")
		})
	}
}

// startWithClient runs a bridge with the env's config and the given API client, on a connection
// of its own, until the test ends.
func (e *env) startWithClient(client *notifizz.Client) *running {
	e.t.Helper()
	_, js := natstest.Connect(e.t, e.srv.ClientURL())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	reg := prometheus.NewRegistry()
	b, err := New(e.cfg, js, client, WithLogger(logger), WithRegisterer(reg))
	require.NoError(e.t, err)
	c, cancel := context.WithCancel(context.Background())
	r := &running{b: b, reg: reg, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- b.Run(c) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	require.Eventually(e.t, b.Ready, waitFor, pollEvery, "bridge not ready")
	return r
}
