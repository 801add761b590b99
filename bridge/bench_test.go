package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// instantAPI answers every call at once.
type instantAPI struct {
	v1Only
	calls atomic.Int64
}

func (a *instantAPI) TrackEvent(context.Context, notifizz.TrackRequest) error {
	a.calls.Add(1)
	return nil
}

func (a *instantAPI) Send(context.Context, string, map[string]any, ...notifizz.CallOption) (json.RawMessage, error) {
	a.calls.Add(1)
	return nil, nil
}

// BenchmarkWindowPath measures decode → window → flush → settle per message, with 10 workflows,
// one track and one commit per event key, against an API that answers at once.
func BenchmarkWindowPath(b *testing.B) { benchWindowPath(b, false) }

// benchWindowPath runs the window path of BenchmarkWindowPath on a bridge made with opts; with
// traced, every message carries a traceparent of its own trace, as from a producer of its own.
func benchWindowPath(b *testing.B, traced bool, opts ...Option) {
	const perKey = 12
	cfg := DefaultConfig()
	cfg.Coalesce.Delay = time.Hour
	cfg.Coalesce.OrphanTimeout = 2 * time.Hour
	api := &instantAPI{}
	br, err := New(cfg, stubJS{}, api, opts...)
	if err != nil {
		b.Fatal(err)
	}
	acks := &ackCounter{done: make(chan struct{})}
	keys := max(1, b.N/perKey)
	msgs := make([]jetstream.Msg, 0, keys*perKey)
	seq := uint64(0)
	add := func(kind, key, body string) {
		seq++
		m := &memMsg{
			subject: "notifizz." + kind + "." + key, data: []byte(body), acks: acks,
			meta: jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: 1, Stream: "NOTIFIZZ"},
		}
		if traced {
			m.hdr = nats.Header{"traceparent": {fmt.Sprintf("00-%032x-%016x-01", seq, seq)}}
		}
		msgs = append(msgs, m)
	}
	for k := range keys {
		key := fmt.Sprintf("order-%d", k)
		add("track", key, `{"eventName":"order_shipped","properties":{"orderId":"ORD-4521","carrier":"FedEx"}}`)
		for w := range perKey - 2 {
			add("workflow", key, fmt.Sprintf(`{"campaignId":"campaign-%d","recipients":[{"id":"user_42","email":"alice@example.com"}]}`, w))
		}
		add("commit", key, "")
	}
	acks.want.Store(int64(len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	in := make(chan inbound, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br.coordinator().run(context.Background(), in)
	}()
	for _, m := range msgs {
		in <- br.decode(m)
	}
	<-acks.done
	b.StopTimer()
	cpu := cpuTime() - cpu0
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	close(in)
	<-done
	b.ReportMetric(float64(len(msgs))/b.Elapsed().Seconds(), "msgs/s")
	// CPU time (every thread, the collector's included) varies less than wall time on a
	// machine shared with other work.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(msgs)), "cpu-ns/msg")
	// allocs/op is rounded down to a whole number; per message with decimals shows changes
	// that save an allocation per event rather than per message.
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(len(msgs)), "allocs/msg")
	if got := api.calls.Load(); got != int64(keys) {
		b.Fatalf("%d calls for %d keys", got, keys)
	}
}

// cpuTime is the CPU time the process has used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSettleAck measures the settling of one flushed event (one track, ten workflows and a
// commit, all acked), which counts every message in notifizz_bridge_messages_total.
func BenchmarkSettleAck(b *testing.B) {
	br, err := New(DefaultConfig(), stubJS{}, &instantAPI{})
	if err != nil {
		b.Fatal(err)
	}
	acks := &ackCounter{done: make(chan struct{})}
	var members []*heldMsg
	add := func(kind schema.Kind) {
		members = append(members, &heldMsg{decoded: decoded{msg: &memMsg{acks: acks}, kind: kind, key: "order-1",
			stream: DefaultConfig().Stream.Name, seq: uint64(len(members) + 1)}})
	}
	add(schema.KindTrack)
	for range 10 {
		add(schema.KindWorkflow)
	}
	add(schema.KindCommit)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		br.settler.settle(ctx, members, decision{action: actAck})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(members)), "ns/msg")
}
