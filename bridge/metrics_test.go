package bridge

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestMetricMessagesSeries checks that the cached children of notifizz_bridge_messages_total
// count what counting through the vector did, and that every kind and outcome has its series
// from the start, at 0: the labels are a documented contract, and rate() needs a series before
// the first occurrence.
func TestMetricMessagesSeries(t *testing.T) {
	if len(schema.Kinds) != numKinds {
		t.Fatalf("%d kinds, numKinds is %d", len(schema.Kinds), numKinds)
	}
	for i, k := range schema.Kinds {
		if kindIndex(k) != i {
			t.Fatalf("kindIndex(%s) = %d, want %d", k, kindIndex(k), i)
		}
	}
	for i, o := range outcomes {
		if outcomeIndex(o) != i {
			t.Fatalf("outcomeIndex(%s) = %d, want %d", o, outcomeIndex(o), i)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	m, err := newMetrics(reg, APIv1, false)
	if err != nil {
		t.Fatal(err)
	}
	counts := []struct {
		kind    schema.Kind
		outcome string
		n       int
	}{
		{schema.KindTrack, outcomeAcked, 3},
		{schema.KindWorkflow, outcomeAcked, 30},
		{schema.KindWorkflow, outcomeNaked, 2},
		{schema.KindCommit, outcomeIgnored, 1},
		{schema.KindTrack, outcomeDuplicate, 1},
		{schema.KindSend, outcomeDeadLettered, 1},
		{"", outcomeDeadLettered, 2}, // a subject that did not parse
	}
	// Concurrently, as the coordinator and the workers do, so that the race detector sees the
	// first resolution of each child.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, c := range counts {
				for range c.n {
					m.message(c.kind, c.outcome)
				}
			}
		})
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "notifizz_bridge_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+strconv.Quote(lp.GetValue()))
			}
			got = append(got, "{"+strings.Join(labels, ",")+"} "+strconv.FormatFloat(m.GetCounter().GetValue(), 'g', -1, 64))
		}
	}
	counted := map[string]string{
		`{kind="",outcome="dead_lettered"}`:     "8",
		`{kind="commit",outcome="ignored"}`:     "4",
		`{kind="send",outcome="dead_lettered"}`: "4",
		`{kind="track",outcome="acked"}`:        "12",
		`{kind="track",outcome="duplicate"}`:    "4",
		`{kind="workflow",outcome="acked"}`:     "120",
		`{kind="workflow",outcome="naked"}`:     "8",
	}
	want := []string{`{kind="",outcome="dead_lettered"} 8`}
	for _, k := range schema.AllKinds {
		for _, o := range outcomes {
			series := `{kind="` + string(k) + `",outcome="` + o + `"}`
			n, ok := counted[series]
			if !ok {
				n = "0"
			}
			want = append(want, series+" "+n)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
