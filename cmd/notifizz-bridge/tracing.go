package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// tracingStopTimeout bounds the export of the last spans at exit.
const tracingStopTimeout = 5 * time.Second

// tracingErrorEvery spaces the warnings of a failing export: a collector out of reach fails
// every batch.
const tracingErrorEvery = time.Minute

// startTracing sets up OpenTelemetry when tracing.enabled is set, the way every OpenTelemetry
// SDK is set up: from the standard environment variables. OTEL_TRACES_EXPORTER is otlp (the
// default) or none (spans are made and their trace goes to the API, but nothing is exported);
// the OTLP exporter speaks OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, http/protobuf (the default) or
// grpc, and reads OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT, HEADERS, TIMEOUT, COMPRESSION,
// CERTIFICATE, INSECURE...}; OTEL_TRACES_SAMPLER[_ARG] choose the sampler
// (parent-based, always on, by default), OTEL_BSP_* the batching, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES the resource (service.name defaults to notifizz-bridge), and
// OTEL_SDK_DISABLED=true turns it off whatever the config says.
//
// It returns a nil provider when tracing is off. stop exports what is left, within
// tracingStopTimeout; it is never nil.
func startTracing(ctx context.Context, cfg config.Tracing, log *slog.Logger) (tp trace.TracerProvider, stop func(), err error) {
	stop = func() {}
	if !cfg.Enabled {
		return nil, stop, nil
	}
	if off, _ := strconv.ParseBool(os.Getenv("OTEL_SDK_DISABLED")); off {
		log.Info("tracing.enabled is set, but OTEL_SDK_DISABLED is true: no spans")
		return nil, stop, nil
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", "notifizz-bridge"),
			attribute.String("service.version", buildVersion().short())),
		// Last, so that the environment's service name and attributes win.
		resource.WithFromEnv())
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: what could be read is kept.
		log.Warn("tracing: resource attributes", "error", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporter := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	switch exporter {
	case "", "otlp":
		exporter = "otlp"
		protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if protocol == "" {
			protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		var exp sdktrace.SpanExporter
		switch protocol {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			return nil, stop, fmt.Errorf("tracing: OTLP protocol %q is not supported; use http/protobuf (a collector's port 4318) or grpc (4317)", protocol)
		}
		if err != nil {
			return nil, stop, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	case "none":
	default:
		return nil, stop, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER %q is not supported; use otlp or none", exporter)
	}
	warn := rate.Sometimes{First: 1, Interval: tracingErrorEvery}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		warn.Do(func() { log.Warn("tracing: export failed; spans are dropped meanwhile", "error", err) })
	}))
	// The sampler is the SDK's default, which reads OTEL_TRACES_SAMPLER.
	sdk := sdktrace.NewTracerProvider(opts...)
	log.Info("tracing on", "exporter", exporter, "endpoint", config.RedactURL(otlpEndpoint()),
		"sampler", os.Getenv("OTEL_TRACES_SAMPLER"))
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingStopTimeout)
		defer cancel()
		if err := sdk.Shutdown(ctx); err != nil {
			log.Warn("tracing: the last spans were not exported", "error", err)
		}
	}
	return sdk, stop, nil
}

// otlpEndpoint is where the OTLP exporter sends spans, as the environment says, for the log;
// "" for the exporter's default (localhost).
func otlpEndpoint() string {
	if e := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
}

// traceAPIClient makes each HTTP attempt of c a span that the request carries on as its W3C
// traceparent, over the transport newAPIClient gave c (the package default's, or the dry-run
// printer).
func traceAPIClient(c *notifizz.Client, cfg config.Config, stdout io.Writer, tp trace.TracerProvider) {
	n := cfg.Notifizz
	base := notifizz.DefaultTransport()
	if n.DryRun {
		base = newDryRunTransport(stdout, n.SDKSecretKey, n.AuthSecretKey)
	}
	c.Config(notifizz.WithHTTPClient(&http.Client{Transport: bridge.TraceTransport(base, tp)}))
}
