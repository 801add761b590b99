package bridge

import (
	"context"
	"testing"

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
	b.Run("off", func(b *testing.B) { benchWindowPath(b, true) })
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardExporter{}))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		benchWindowPath(b, true, WithTracerProvider(tp))
	})
}
