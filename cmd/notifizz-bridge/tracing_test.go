package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

// exportedSpan is a span an OTLP collector received, with the service.name of its resource.
type exportedSpan struct {
	service string
	span    *tracepb.Span
}

// newCollector is an OTLP/HTTP collector that checks each export request and hands over its
// spans.
func newCollector(t *testing.T) (*httptest.Server, <-chan exportedSpan) {
	spans := make(chan exportedSpan, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// assert, not require: this runs on the server's goroutine.
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/v1/traces", r.URL.Path)
		assert.Equal(t, "application/x-protobuf", r.Header.Get("Content-Type"))
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		var req collectorpb.ExportTraceServiceRequest
		if !assert.NoError(t, proto.Unmarshal(body, &req)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					select {
					case spans <- exportedSpan{service: service, span: s}:
					default:
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv, spans
}

// otelEnv is the environment of a daemon that exports to endpoint, every other OTEL_ variable
// of the machine emptied.
func otelEnv(endpoint string) []string {
	return []string{
		"OTEL_SDK_DISABLED=", "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_PROTOCOL=",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_SERVICE_NAME=bridge-under-test", "OTEL_TRACES_SAMPLER=always_on",
		"OTEL_BSP_SCHEDULE_DELAY=50",
	}
}

func TestE2ETracingExportsToCollector(t *testing.T) {
	t.Parallel()
	collector, spans := newCollector(t)
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfgPath := embeddedConfig(t, natsAddr, httpAddr, "  sdkSecretKey: sdk-trace-secret")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("tracing:\n  enabled: true\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	d := startDaemon(t, otelEnv(collector.URL), "--config", cfgPath, "--dry-run")
	d.waitReadyz(t, httpAddr, http.StatusOK)

	// A producer in another language: its track carries a traceparent of its own making.
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	nc, err := nats.Connect("nats://" + natsAddr)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	m := nats.NewMsg("notifizz.track.order-9")
	m.Data = []byte(trackBody)
	m.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	_, err = js.PublishMsg(context.Background(), m)
	require.NoError(t, err)
	publish(t, cfgPath, "commit", "order-9")
	d.nextLine(t, commitFlushTimeout)

	var call, attempt *tracepb.Span
	deadline := time.After(10 * time.Second)
	for call == nil || attempt == nil {
		select {
		case s := <-spans:
			assert.Equal(t, "bridge-under-test", s.service, "OTEL_SERVICE_NAME names the service")
			switch {
			case s.span.GetName() == "notifizz.track":
				call = s.span
			case s.span.GetKind() == tracepb.Span_SPAN_KIND_CLIENT:
				attempt = s.span
			}
		case <-deadline:
			t.Fatalf("the collector did not receive the call's span and its HTTP attempt (call %v, attempt %v)", call, attempt)
		}
	}
	assert.Equal(t, traceID, hex.EncodeToString(call.GetTraceId()), "in the producer's trace")
	assert.Equal(t, parentID, hex.EncodeToString(call.GetParentSpanId()), "a child of the producer's span")
	assert.Equal(t, call.GetSpanId(), attempt.GetParentSpanId(), "the HTTP attempt is a child of the call")
	require.Equal(t, 0, d.stop(t))
	assert.Contains(t, d.stderr.String(), `msg="tracing on" exporter=otlp endpoint=`+collector.URL)
}

func TestStartTracing(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		env     map[string]string
		on      bool
		err     string
	}{
		{"off", false, nil, false, ""},
		{"otlp over http", true, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, ""},
		{"otlp over grpc", true, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, ""},
		{"no exporter", true, map[string]string{"OTEL_TRACES_EXPORTER": "none"}, true, ""},
		{"disabled by the environment", true, map[string]string{"OTEL_SDK_DISABLED": "true"}, false, ""},
		{"unknown exporter", true, map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, `OTEL_TRACES_EXPORTER "zipkin" is not supported`},
		{"unknown protocol", true, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, false, `OTLP protocol "http/json" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
				t.Setenv(v, tt.env[v])
			}
			tp, stop, err := startTracing(context.Background(), config.Tracing{Enabled: tt.enabled}, discardLogger())
			require.NotNil(t, stop)
			defer stop()
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.on, tp != nil)
		})
	}
}
