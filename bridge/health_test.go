package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// TestWatchdog walks the watchdog through idle, busy, stalled and recovered readings.
func TestWatchdog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := &watchdog{after: 10 * time.Second}
	steps := []struct {
		name        string
		now         time.Time
		pending     uint64
		finals      uint64
		wantIdle    time.Duration
		wantStalled bool
	}{
		{"idle at start", at(0), 0, 0, 0, false},
		{"idle a long time", at(100), 0, 0, 0, false},
		{"work arrives: the idle time before it is no stall", at(101), 5, 0, 0, false},
		{"work waits", at(105), 5, 0, 4 * time.Second, false},
		{"settled some: progress", at(106), 3, 2, 0, false},
		{"no progress since", at(115), 3, 2, 9 * time.Second, false},
		{"stalled", at(116), 3, 2, 10 * time.Second, true},
		{"still stalled", at(130), 4, 2, 24 * time.Second, true},
		{"one settled: recovered", at(131), 4, 3, 0, false},
		{"drained", at(200), 0, 3, 0, false},
		{"new work after a long idle", at(300), 1, 3, 0, false},
	}
	for _, s := range steps {
		idle, stalled := w.observe(s.now, s.pending, s.finals)
		assert.Equal(t, s.wantIdle, idle, s.name)
		assert.Equal(t, s.wantStalled, stalled, s.name)
	}

	off := &watchdog{}
	off.observe(at(0), 1, 0)
	_, stalled := off.observe(at(1000), 1, 0)
	assert.False(t, stalled, "StallAfter 0 turns the watchdog off")
}

func TestAPIAnswerLabels(t *testing.T) {
	apiErr := func(status int) error {
		return fmt.Errorf("call: %w", &notifizz.APIError{StatusCode: status, Endpoint: "track"})
	}
	for _, tc := range []struct {
		err           error
		code, outcome string
	}{
		{nil, "2xx", "success"},
		{notifizz.ErrInvalidResponse, "2xx", "success"},
		{apiErr(301), "3xx", "permanent"},
		{apiErr(400), "4xx", "permanent"},
		{apiErr(404), "4xx", "permanent"},
		{apiErr(401), "4xx", "auth"},
		{apiErr(403), "4xx", "auth"},
		{apiErr(408), "4xx", "transient"},
		{apiErr(425), "4xx", "transient"},
		{apiErr(429), "4xx", "transient"},
		{apiErr(http.StatusInternalServerError), "5xx", "transient"},
		{apiErr(503), "5xx", "transient"},
		{errors.New("connection reset by peer"), "none", "transient"},
	} {
		code, outcome := apiAnswer(tc.err)
		assert.Equal(t, tc.code, code, "%v", tc.err)
		assert.Equal(t, tc.outcome, outcome, "%v", tc.err)
		found := false
		for _, a := range apiAnswers {
			found = found || a.code == code && a.outcome == outcome
		}
		assert.True(t, found, "%s/%s is pre-created", code, outcome)
	}
}

// TestMetricsPrecreated checks that every known series of the labelled counters exists at 0
// before anything happened, for the endpoints of each profile.
func TestMetricsPrecreated(t *testing.T) {
	for _, tc := range []struct {
		api       APIProfile
		dryRun    bool
		endpoints []string
	}{
		{APIv1, false, []string{"track", "send"}},
		{APIv2, true, []string{"track", "identify", "detach", "subscribe", "unsubscribe"}},
	} {
		reg := prometheus.NewPedanticRegistry()
		_, err := newMetrics(reg, tc.api, tc.dryRun)
		require.NoError(t, err)
		mfs, err := reg.Gather()
		require.NoError(t, err)
		series := map[string]map[string]bool{}
		for _, mf := range mfs {
			series[mf.GetName()] = map[string]bool{}
			for _, m := range mf.GetMetric() {
				s := ""
				for _, lp := range m.GetLabel() {
					s += lp.GetName() + "=" + lp.GetValue() + ","
				}
				series[mf.GetName()][s] = true
				if c := m.GetCounter(); c != nil {
					assert.Zero(t, c.GetValue(), mf.GetName())
				}
			}
		}
		for _, r := range deadletter.Reasons() {
			assert.True(t, series["notifizz_bridge_dead_letters_total"]["reason="+string(r)+","], r)
		}
		assert.True(t, series["notifizz_bridge_redeliveries_total"]["kind=workflow,"])
		assert.True(t, series["notifizz_bridge_redeliveries_total"]["kind=identify,"])
		assert.True(t, series["notifizz_bridge_messages_total"]["kind=send,outcome=naked,"])
		assert.True(t, series["notifizz_bridge_unroutable_messages_total"]["outcome=lost,"])
		assert.True(t, series["notifizz_bridge_catalog_violations_total"]["action=dead_lettered,problem=schema,"])
		dry := fmt.Sprint(tc.dryRun)
		for _, e := range tc.endpoints {
			for _, s := range []string{"code=2xx,dry_run=" + dry + ",endpoint=" + e + ",outcome=success,",
				"code=4xx,dry_run=" + dry + ",endpoint=" + e + ",outcome=auth,",
				"code=none,dry_run=" + dry + ",endpoint=" + e + ",outcome=transient,"} {
				assert.True(t, series["notifizz_bridge_api_calls_total"][s], s)
			}
		}
		assert.Len(t, series["notifizz_bridge_api_calls_total"], len(tc.endpoints)*len(apiAnswers), tc.api)
		assert.Len(t, series["notifizz_bridge_stalled"], 1)
		assert.Len(t, series["notifizz_bridge_no_progress_seconds"], 1)
	}
}

func TestStallAfter(t *testing.T) {
	for _, tc := range []struct {
		after, orphan, ackWait time.Duration
		want                   time.Duration
		ok                     bool
	}{
		{0, 30 * time.Second, 30 * time.Second, 0, true},
		{2 * time.Minute, 30 * time.Second, 30 * time.Second, 2 * time.Minute, true},
		{10 * time.Second, 30 * time.Second, 20 * time.Second, 30 * time.Second, true}, // raised to the orphan timeout
		{2 * time.Minute, 30 * time.Second, 5 * time.Minute, 5 * time.Minute, true},    // and to AckWait
		{-time.Second, 30 * time.Second, 30 * time.Second, 0, false},
	} {
		cfg := DefaultConfig()
		cfg.Health.StallAfter, cfg.Coalesce.OrphanTimeout, cfg.Consumer.AckWait = tc.after, tc.orphan, tc.ackWait
		err := cfg.Validate()
		if !tc.ok {
			var fe *FieldError
			if assert.ErrorAs(t, err, &fe, tc.after) {
				assert.Equal(t, "Health.StallAfter", fe.Field)
			}
			continue
		}
		assert.NoError(t, err, tc.after)
		assert.Equal(t, tc.want, cfg.stallAfter(), tc.after)
	}
}

// gauge sums the gauges name of reg whose labels include labels.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (sum float64, n int) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			sum += m.GetGauge().GetValue()
			n++
		}
	}
	return sum, n
}

// TestGroupLagPerMember runs a static group of two replicas and checks that each reports the lag
// of both members' consumers, labelled by member, with the messages the group holds in its
// windows, and the replicas the group expects.
func TestGroupLagPerMember(t *testing.T) {
	e := newEnv(t)
	members := []string{"r0", "r1"}
	cfg := e.partitioned(PartitionStatic, 4, members...) // windows stay open for minutes
	var replicas []*replica
	for _, m := range members {
		replicas = append(replicas, e.startReplica(m, cfg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const tracks = 40
	for i := range tracks {
		_, err := e.js.Publish(ctx, fmt.Sprintf("notifizz.track.lag-%d", i), []byte(`{"eventName":"e","properties":{}}`))
		require.NoError(t, err)
	}

	for _, r := range replicas {
		v, _ := gauge(t, r.reg, "notifizz_bridge_expected_replicas", nil)
		assert.Equal(t, 2.0, v, r.name)
		assert.Eventually(t, func() bool {
			total := 0.0
			for _, m := range members {
				labels := map[string]string{"stream": cfg.Stream.Name, "consumer": group.StaticConsumerName("bridges", m), "member": m}
				ackPending, n := gauge(t, r.reg, "notifizz_bridge_consumer_ack_pending_messages", labels)
				waiting, _ := gauge(t, r.reg, "notifizz_bridge_consumer_waiting_pulls", labels)
				pending, _ := gauge(t, r.reg, "notifizz_bridge_consumer_pending_messages", labels)
				if n != 1 || pending != 0 || waiting == 0 {
					return false
				}
				total += ackPending
			}
			return total == tracks
		}, scaleWait, pollEvery, "replica %s: both members' consumers show a waiting pull, and %d held tracks between them", r.name, tracks)
		// Held in windows is no stall: the time without progress grows, below health.stallAfter.
		stalled, _ := gauge(t, r.reg, "notifizz_bridge_stalled", nil)
		assert.Zero(t, stalled)
	}
}
