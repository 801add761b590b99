package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricsList is the list of metric names the bridge exports, which the dashboard and the alert
// rules of deploy/monitoring are checked against (by the test of that directory's own module).
const metricsList = "../../deploy/monitoring/metrics.txt"

// metricsListHeader opens metricsList.
const metricsListHeader = `# Every metric name a running notifizz-bridge exports, one per line (histograms with their
# _bucket, _sum and _count series). Written from a real scrape by TestMetricsListMatchesScrape
# (cmd/notifizz-bridge): run it with UPDATE_METRICS_LIST=1 after adding or renaming a metric.
# deploy/monitoring's test checks every name the dashboard and the alert rules use against it.
`

// scrapedFamily is a metric family of a scrape, by the # TYPE lines.
var typeLine = regexp.MustCompile(`(?m)^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)

// scrapedNames returns the names a PromQL expression may use for the families of a scrape in the
// text format: a histogram's and a summary's series have their own names.
func scrapedNames(text string) []string {
	var names []string
	for _, m := range typeLine.FindAllStringSubmatch(text, -1) {
		name, typ := m[1], m[2]
		switch typ {
		case "histogram":
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
		case "summary":
			names = append(names, name, name+"_sum", name+"_count")
		default:
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestMetricsListMatchesScrape scrapes a running daemon that has made an API call and checks that
// deploy/monitoring/metrics.txt lists exactly the bridge's metric names (notifizz_bridge_*), and
// that every Go or process metric it lists is exported too (those depend on the Go release).
func TestMetricsListMatchesScrape(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := embeddedConfig(t, natsAddr, httpAddr, "  sdkSecretKey: sdk-metrics-list")
	d := startDaemon(t, nil, "--config", config, "--dry-run")
	d.waitReadyz(t, httpAddr, http.StatusOK)
	publishEvent(t, config, "order-1")
	d.nextLine(t, commitFlushTimeout) // the dry run's request: a call was made

	var names []string
	require.Eventually(t, func() bool {
		_, text := get(t, "http://"+httpAddr+"/metrics")
		names = scrapedNames(text)
		// The lag gauges come with the first read of the consumer's info.
		return slices.Contains(names, "notifizz_bridge_consumer_pending_messages") &&
			slices.Contains(names, "notifizz_bridge_api_call_duration_seconds_bucket")
	}, 10*time.Second, 50*time.Millisecond)
	var wanted []string
	for _, n := range names {
		if strings.HasPrefix(n, "notifizz_bridge_") || strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
			wanted = append(wanted, n)
		}
	}
	if os.Getenv("UPDATE_METRICS_LIST") != "" {
		require.NoError(t, os.WriteFile(metricsList, []byte(metricsListHeader+strings.Join(wanted, "\n")+"\n"), 0o644))
	}
	data, err := os.ReadFile(metricsList)
	require.NoError(t, err)
	var listed []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			listed = append(listed, l)
		}
	}
	bridgeOnly := func(ns []string) []string {
		return slices.DeleteFunc(slices.Clone(ns), func(n string) bool { return !strings.HasPrefix(n, "notifizz_bridge_") })
	}
	assert.Equal(t, bridgeOnly(wanted), bridgeOnly(listed),
		"%s is stale: run this test with UPDATE_METRICS_LIST=1, then check the dashboard and the alert rules (deploy/monitoring)", metricsList)
	for _, n := range listed {
		assert.Contains(t, names, n, "%s lists a metric the bridge does not export", metricsList)
	}
	require.Equal(t, 0, d.stop(t))
}

// seriesValue returns the value of the first series of name in a scrape whose labels include
// every pair of labels, and whether there is one.
func seriesValue(text, name string, labels map[string]string) (float64, bool) {
	labelPair := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		var got map[string]string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			got = map[string]string{}
			for _, m := range labelPair.FindAllStringSubmatch(rest[1:end], -1) {
				got[m[1]] = m[2]
			}
			rest = rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric whose name starts with name
		}
		match := true
		for k, v := range labels {
			match = match && got[k] == v
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}

// TestE2EStallWatchdog stops the API (503) under a pending event and shows the watchdog at work:
// the lag gauges move, the bridge is stalled (gauge, /readyz 503 with the reason, a warning),
// and once the API answers again it settles the event and recovers.
func TestE2EStallWatchdog(t *testing.T) {
	t.Parallel()
	const sdkKey = "sdk-stall-secret-4e2a"
	var down atomic.Bool
	down.Store(true)
	var accepted atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req trackRequest
		if err != nil || json.Unmarshal(body, &req) != nil || r.Method != http.MethodPost ||
			r.URL.Path != "/v1/events/track" || r.Header.Get("Authorization") != "Bearer "+sdkKey ||
			r.Header.Get("X-Idempotency-Key") == "" || r.Header.Get("X-Idempotency-Key") != req.IdempotencyKey ||
			req.EventName != "order_shipped" || len(req.Workflows) != 1 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		accepted.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(api.Close)

	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	config := writeFile(t, "config.yaml", fmt.Sprintf(`
nats:
  embedded:
    listen: %s
    storeDir: %s
consumer:
  ackWait: 1s
  maxDeliver: 10000
coalesce:
  delay: 100ms
  orphanTimeout: 1s
notifizz:
  baseUrl: %s/v1
  sdkSecretKey: %s
  timeout: 1s
retry:
  attempts: 1
  nakInitial: 100ms
  nakMax: 200ms
health:
  stallAfter: 2s
http:
  listen: %s
shutdownTimeout: 5s
`, natsAddr, filepath.Join(t.TempDir(), "nats"), api.URL, sdkKey, httpAddr))

	d := startDaemon(t, nil, "run", "--config", config)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	scrape := func() string {
		_, text := get(t, "http://"+httpAddr+"/metrics")
		return text
	}
	consumer := map[string]string{"stream": "NOTIFIZZ", "consumer": "notifizz-bridge"}
	// The first reading of the consumer can come a poll after readiness (the consumer is bound
	// as the watcher starts): before any traffic, in any case.
	var v float64
	require.Eventually(t, func() bool {
		resp, err := probeClient.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		text, err := io.ReadAll(resp.Body)
		if err != nil {
			return false
		}
		var ok bool
		v, ok = seriesValue(string(text), "notifizz_bridge_consumer_redelivered_messages", consumer)
		return ok
	}, 10*time.Second, 50*time.Millisecond, "the lag gauges are there before any traffic")
	assert.Zero(t, v)
	v, _ = seriesValue(scrape(), "notifizz_bridge_stalled", nil)
	assert.Zero(t, v)

	publish(t, config, "track", "order-9", `{"eventName":"order_shipped","properties":{"orderId":"9"},"workflows":[{"campaignId":"c","recipients":[{"id":"u","email":"u@example.com"}]}]}`)
	publish(t, config, "commit", "order-9")

	// Down: the event is naked again and again; nothing is settled.
	require.Eventually(t, func() bool {
		code, body := readyz(httpAddr)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "bridge: stalled: ")
	}, 20*time.Second, 50*time.Millisecond, "/readyz turns 503 with the stall")
	_, body := readyz(httpAddr)
	assert.Regexp(t, `^bridge: stalled: [12] messages pending and none settled for [2-9]s$`, body)
	text := scrape()
	for name, want := range map[string]float64{"notifizz_bridge_stalled": 1, "notifizz_bridge_ready": 0} {
		v, ok := seriesValue(text, name, nil)
		assert.True(t, ok, name)
		assert.Equal(t, want, v, name)
	}
	v, _ = seriesValue(text, "notifizz_bridge_no_progress_seconds", nil)
	assert.GreaterOrEqual(t, v, 2.0)
	v, _ = seriesValue(text, "notifizz_bridge_api_calls_total", map[string]string{"endpoint": "track", "code": "5xx", "outcome": "transient", "dry_run": "false"})
	assert.Positive(t, v, "the failed calls are counted as 5xx, transient")
	assert.Eventually(t, func() bool {
		text := scrape()
		redelivered, _ := seriesValue(text, "notifizz_bridge_consumer_redelivered_messages", consumer)
		pending, _ := seriesValue(text, "notifizz_bridge_consumer_pending_messages", consumer)
		ackPending, _ := seriesValue(text, "notifizz_bridge_consumer_ack_pending_messages", consumer)
		return redelivered > 0 && pending+ackPending > 0
	}, 10*time.Second, 50*time.Millisecond, "the lag gauges show the event's messages, redelivered")
	assert.Contains(t, d.stderr.String(), `msg="the bridge is stalled: messages are pending and none was settled; not ready until one is"`)
	assert.Zero(t, accepted.Load())

	// Up again: the next delivery is sent and acked, and the stall clears.
	down.Store(false)
	d.waitReadyz(t, httpAddr, http.StatusOK)
	require.Eventually(t, func() bool {
		text := scrape()
		stalled, _ := seriesValue(text, "notifizz_bridge_stalled", nil)
		idle, _ := seriesValue(text, "notifizz_bridge_no_progress_seconds", nil)
		pending, _ := seriesValue(text, "notifizz_bridge_consumer_pending_messages", consumer)
		ackPending, _ := seriesValue(text, "notifizz_bridge_consumer_ack_pending_messages", consumer)
		redelivered, _ := seriesValue(text, "notifizz_bridge_consumer_redelivered_messages", consumer)
		return stalled == 0 && idle == 0 && pending+ackPending+redelivered == 0
	}, 10*time.Second, 50*time.Millisecond, "the gauges come back to 0")
	assert.Equal(t, int32(1), accepted.Load(), "one accepted call for the event")
	v, _ = seriesValue(scrape(), "notifizz_bridge_ready", nil)
	assert.Equal(t, 1.0, v)
	assert.Contains(t, d.stderr.String(), `msg="the bridge is no longer stalled"`)
	require.Equal(t, 0, d.stop(t))
	assert.NotContains(t, d.stderr.String(), sdkKey)
}
