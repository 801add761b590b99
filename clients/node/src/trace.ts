/**
 * W3C trace context from @opentelemetry/api, when the application has it installed (an optional
 * peer dependency): the headers are taken from the active context, so that the bridge's span for
 * the message continues the producer's trace.
 */

type OtelAPI = typeof import("@opentelemetry/api");

let otel: Promise<OtelAPI | undefined> | undefined;

function load(): Promise<OtelAPI | undefined> {
  otel ??= import("@opentelemetry/api").then(
    (m) => m,
    () => undefined,
  );
  return otel;
}

/**
 * Returns the traceparent (and tracestate) of the active span, or an empty object when
 * @opentelemetry/api is not installed or no span is active. The registered propagator is used
 * when there is one; otherwise traceparent is formed from the active span context.
 */
export async function traceHeaders(): Promise<Record<string, string>> {
  const api = await load();
  if (api === undefined) return {};
  const carrier: Record<string, string> = {};
  const ctx = api.context.active();
  api.propagation.inject(ctx, carrier);
  if (carrier.traceparent !== undefined) return pick(carrier);
  const sc = api.trace.getSpanContext(ctx);
  if (sc === undefined || !api.isSpanContextValid(sc)) return {};
  const out: Record<string, string> = {
    traceparent: `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`,
  };
  const state = sc.traceState?.serialize();
  if (state) out.tracestate = state;
  return out;
}

function pick(carrier: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  if (carrier.traceparent !== undefined) out.traceparent = carrier.traceparent;
  if (carrier.tracestate) out.tracestate = carrier.tracestate;
  return out;
}
