package bridge

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestDeriveKeyStable pins derived idempotency keys: a change would make the API run again
// every event replayed after an upgrade.
func TestDeriveKeyStable(t *testing.T) {
	tests := []struct {
		domain, stream, key string
		seq                 uint64
		want                string
	}{
		{"track", "NOTIFIZZ", "order-4521-shipped", 42, "5453a0835668f7b6f5a2bec30aa211c3"},
		{"send", "NOTIFIZZ", "k", 18446744073709551615, "5174d6de6d18b3d041c6b90ab7fe407f"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			assert.Equal(t, tt.want, deriveKey(tt.domain, tt.stream, tt.key, tt.seq))
		})
	}
	// Longer than the stack buffer: still the same hash as a fresh computation would give.
	long := strings.Repeat("k", 255)
	assert.Len(t, deriveKey("track", strings.Repeat("S", 64), long, 1), 32)
}

// TestTrackRequestRecipients checks that workflows sharing one recipients array do not see
// each other's recipients.
func TestTrackRequestRecipients(t *testing.T) {
	r := func(id string) schema.Recipient { return schema.Recipient{ID: id, Email: id + "@example.com"} }
	track := &heldMsg{decoded: decoded{stream: "NOTIFIZZ", key: "k", seq: 1, track: &schema.Track{
		EventName: "e",
		Workflows: []schema.Workflow{{CampaignID: "inline", Recipients: []schema.Recipient{r("a"), r("b")}}},
	}}}
	w1 := &heldMsg{decoded: decoded{workflow: &schema.Workflow{CampaignID: "w1", Recipients: []schema.Recipient{r("c")}}}}
	w2 := &heldMsg{decoded: decoded{workflow: &schema.Workflow{CampaignID: "w2", Recipients: []schema.Recipient{r("d"), r("e")}}}}
	commit := &heldMsg{}

	req := trackRequest([]*heldMsg{w1, w2, commit, track})
	ids := func(w notifizz.Workflow) []string {
		var out []string
		for _, r := range w.Recipients {
			out = append(out, r.ID)
		}
		return out
	}
	if assert.Len(t, req.Workflows, 3) {
		assert.Equal(t, []string{"a", "b"}, ids(req.Workflows[0]))
		assert.Equal(t, []string{"c"}, ids(req.Workflows[1]))
		assert.Equal(t, []string{"d", "e"}, ids(req.Workflows[2]))
		// Appending to one workflow's recipients must not overwrite the next one's.
		req.Workflows[0].Recipients = append(req.Workflows[0].Recipients, notifizz.Recipient{ID: "x"})
		assert.Equal(t, []string{"c"}, ids(req.Workflows[1]))
	}
	assert.Equal(t, deriveKey("track", "NOTIFIZZ", "k", 1), req.IdempotencyKey)
}

// BenchmarkTrackRequest measures building the request of one flushed window: a track and ten
// workflow messages of one recipient each.
func BenchmarkTrackRequest(b *testing.B) {
	members := make([]*heldMsg, 0, 12)
	for i := range 10 {
		members = append(members, &heldMsg{decoded: decoded{workflow: &schema.Workflow{
			CampaignID: "campaign-" + strings.Repeat("x", i),
			Recipients: []schema.Recipient{{ID: "user_42", Email: "alice@example.com"}},
		}}})
	}
	members = append(members, &heldMsg{}, &heldMsg{decoded: decoded{stream: "NOTIFIZZ", key: "order-4521-shipped", seq: 42,
		track: &schema.Track{EventName: "order_shipped", Properties: map[string]any{"orderId": "ORD-4521"}}}})
	b.ReportAllocs()
	for b.Loop() {
		req := trackRequest(members)
		if len(req.Workflows) != 10 {
			b.Fatal(len(req.Workflows))
		}
	}
}

// TestTimerHeapOrder checks that entries come out of the heap in time order, and only once due,
// whatever the order they went in.
func TestTimerHeapOrder(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	r := rand.New(rand.NewPCG(1, 2))
	var h timerHeap
	var want []time.Time
	for i := range 1000 {
		at := base.Add(time.Duration(r.IntN(500)) * time.Millisecond)
		h.add(timerEntry{at: at, gen: uint64(i)})
		want = append(want, at)
	}
	slices.SortFunc(want, func(a, b time.Time) int { return a.Compare(b) })

	next, ok := h.next()
	assert.True(t, ok)
	assert.Equal(t, want[0], next)
	_, ok = h.popDue(want[0].Add(-time.Nanosecond))
	assert.False(t, ok, "nothing is due before the earliest entry")

	var got []time.Time
	for {
		e, ok := h.popDue(base.Add(time.Hour))
		if !ok {
			break
		}
		got = append(got, e.at)
	}
	assert.Equal(t, want, got)
	_, ok = h.next()
	assert.False(t, ok)
}

// BenchmarkTimerHeap measures one window's worth of timer work in a heap holding the orphan
// entries of the last 10 000 windows: two entries added, then the due ones popped.
func BenchmarkTimerHeap(b *testing.B) {
	base := time.Unix(1_700_000_000, 0)
	var h timerHeap
	i := 0
	add := func() {
		at := base.Add(time.Duration(i) * time.Microsecond)
		h.add(timerEntry{at: at.Add(time.Second), key: "order-4521-shipped", gen: uint64(i), kind: timerDue})
		h.add(timerEntry{at: at.Add(30 * time.Second), key: "order-4521-shipped", gen: uint64(i), kind: timerOrphan})
		i++
	}
	for range 10_000 {
		add()
	}
	b.ReportAllocs()
	for b.Loop() {
		add()
		now := base.Add(time.Duration(i-10_000) * time.Microsecond).Add(30 * time.Second)
		for {
			if _, ok := h.popDue(now); !ok {
				break
			}
		}
	}
}
