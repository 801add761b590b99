package bridge

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardExporter drops the spans it is given, so that the benchmark measures making them and
// not where they go.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkWindowPathTracing is BenchmarkWindowPath with every message carrying a traceparent,
// tracing off (what tracing.enabled: false costs: nothing) and on (every call sampled, its
// span batched to an exporter that drops it). Compare the two with benchstat.
func BenchmarkWindowPathTracing(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchWindowPathTraced(b, nil) })
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardExporter{}))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		benchWindowPathTraced(b, tp)
	})
}

// benchWindowPathTraced runs the window path of BenchmarkWindowPath (one track, ten workflows
// and one commit per key, each from a producer of its own trace) with tp, or without tracing
// when tp is nil.
func benchWindowPathTraced(b *testing.B, tp *sdktrace.TracerProvider) {
	const perKey = 12
	cfg := DefaultConfig()
	cfg.Coalesce.Delay = time.Hour
	cfg.Coalesce.OrphanTimeout = 2 * time.Hour
	api := &instantAPI{}
	var opts []Option
	if tp != nil {
		opts = append(opts, WithTracerProvider(tp))
	}
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
		msgs = append(msgs, &memMsg{
			subject: "notifizz." + kind + "." + key, data: []byte(body), acks: acks,
			hdr:  nats.Header{"traceparent": {fmt.Sprintf("00-%032x-%016x-01", seq, seq)}},
			meta: jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: 1, Stream: "NOTIFIZZ"},
		})
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
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(msgs)), "cpu-ns/msg")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(len(msgs)), "allocs/msg")
	if got := api.calls.Load(); got != int64(keys) {
		b.Fatalf("%d calls for %d keys", got, keys)
	}
}
