// With @opentelemetry/api installed (a dev dependency here, an optional peer for users), the
// active span's W3C trace context travels in the message headers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { context, propagation, trace, ROOT_CONTEXT, createTraceState } from "@opentelemetry/api";
import { NotifizzProducer } from "../../dist/index.js";
import { fakeJetStream } from "./helpers.js";

/** The smallest context manager that carries a context across awaits. */
class ALSContextManager {
  als = new AsyncLocalStorage();
  active() {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  /** @param {any} ctx @param {any} fn @param {any} thisArg @param {any[]} args */
  with(ctx, fn, thisArg, ...args) {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  /** @param {any} _ctx @param {any} target */
  bind(_ctx, target) {
    return target;
  }
  enable() {
    return this;
  }
  disable() {
    return this;
  }
}

const traceId = "0af7651916cd43dd8448eb211c80319c";
const spanId = "b7ad6b7169203331";

test("traceparent and tracestate of the active span are sent; none without a span", async (t) => {
  assert.ok(context.setGlobalContextManager(/** @type {any} */ (new ALSContextManager())));
  t.after(() => context.disable());
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });

  await p.commit("none");
  const span = trace.wrapSpanContext({ traceId, spanId, traceFlags: 1, traceState: createTraceState("vendor=x") });
  await context.with(trace.setSpan(context.active(), span), async () => {
    await p.commit("traced");
    await p.track({ key: "ctx", eventName: "e" });
  });

  assert.deepEqual(js.published[0]?.headers, {});
  for (const m of js.published.slice(1)) {
    assert.deepEqual(m.headers, { traceparent: `00-${traceId}-${spanId}-01`, tracestate: "vendor=x" }, m.subject);
  }
  assert.equal(js.published.length, 4); // the commit, the commit, then the context's track and commit
});

test("a registered propagator is used when there is one", async (t) => {
  assert.ok(context.setGlobalContextManager(/** @type {any} */ (new ALSContextManager())));
  assert.ok(
    propagation.setGlobalPropagator({
      inject(_ctx, carrier, setter) {
        setter.set(carrier, "traceparent", "00-11111111111111111111111111111111-2222222222222222-00");
      },
      extract: (ctx) => ctx,
      fields: () => ["traceparent"],
    }),
  );
  t.after(() => {
    propagation.disable();
    context.disable();
  });
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  await p.commit("k");
  assert.deepEqual(js.published[0]?.headers, { traceparent: "00-11111111111111111111111111111111-2222222222222222-00" });
});
