// A message the bridge would dead-letter is refused before publishing, with the reason and the
// field path the bridge would give; JetStream failures are PublishErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  NotifizzProducer,
  ValidationError,
  PublishError,
  ContextSentError,
  ClosedError,
  NotifizzProducerError,
} from "../../dist/index.js";
import { fakeJetStream, natsError } from "./helpers.js";

const ada = { id: "user_42", email: "ada@example.com" };

/**
 * @param {unknown} err
 * @param {string} reason
 * @param {{path: string, message: RegExp}[]} problems
 */
function assertRefused(err, reason, problems) {
  assert.ok(err instanceof ValidationError, String(err));
  assert.ok(err instanceof NotifizzProducerError);
  assert.equal(err.reason, reason);
  assert.equal(err.problems.length, problems.length, JSON.stringify(err.problems));
  problems.forEach((p, i) => {
    assert.equal(err.problems[i]?.path, p.path);
    assert.match(err.problems[i]?.message ?? "", p.message);
  });
  assert.ok(err.message.startsWith(reason + ": "), err.message);
  return true;
}

/** @type {{name: string, call: (p: NotifizzProducer) => unknown, reason: string, problems: {path: string, message: RegExp}[]}[]} */
const cases = [
  { name: "key with a dot", call: (p) => p.commit("a.b"), reason: "unknown_subject", problems: [{ path: "key", message: /single subject token/ }] },
  { name: "empty key", call: (p) => p.commit(""), reason: "unknown_subject", problems: [{ path: "key", message: /must not be empty/ }] },
  { name: "key with a space", call: (p) => p.commit("a b"), reason: "unknown_subject", problems: [{ path: "key", message: /whitespace/ }] },
  { name: "key with a wildcard", call: (p) => p.commit("a>"), reason: "unknown_subject", problems: [{ path: "key", message: /wildcards/ }] },
  { name: "key of 256 bytes", call: (p) => p.commit("é".repeat(128)), reason: "unknown_subject", problems: [{ path: "key", message: /at most 255 bytes/ }] },
  { name: "empty event name", call: (p) => p.trackEvent("", {}, { key: "k" }), reason: "invalid_message", problems: [{ path: "eventName", message: /fewer than 1/ }] },
  { name: "properties not an object", call: (p) => p.trackEvent("e", /** @type {any} */ ([1]), { key: "k" }), reason: "invalid_message", problems: [{ path: "properties", message: /must be object/ }] },
  {
    name: "secret in properties",
    call: (p) => p.trackEvent("e", { config: { sdkSecretKey: "s3cret" }, list: [{ authSecretKey: "x" }] }, { key: "k" }),
    reason: "secret_in_message",
    problems: [
      { path: "properties.config.sdkSecretKey", message: /must not be sent/ },
      { path: "properties.list[0].authSecretKey", message: /must not be sent/ },
    ],
  },
  {
    name: "recipients without email, workflow without campaign",
    call: (p) => p.workflow("k", "", [ada, /** @type {any} */ ({ id: "u2" })]),
    reason: "invalid_message",
    problems: [
      { path: "campaignId", message: /fewer than 1/ },
      { path: "recipients[1].email", message: /fewer than 1/ },
    ],
  },
  { name: "workflow with no recipients", call: (p) => p.workflow("k", "c", []), reason: "invalid_message", problems: [{ path: "recipients", message: /fewer than 1/ }] },
  { name: "send without recipients", call: (p) => p.send({ key: "k", notifId: "n", properties: /** @type {any} */ ({ title: "t" }) }), reason: "invalid_message", problems: [{ path: "properties.recipients", message: /required/ }] },
  { name: "idempotency key with a newline", call: (p) => p.trackEvent("e", {}, { key: "k", idempotencyKey: "a\nb" }), reason: "invalid_message", problems: [{ path: "idempotencyKey", message: /pattern/ }] },
  { name: "occurredAt without a zone", call: (p) => p.trackEvent("e", {}, { key: "k", occurredAt: "2026-03-01T12:00:00" }), reason: "invalid_message", problems: [{ path: "occurredAt", message: /time zone/ }] },
  { name: "occurredAt on a leap second", call: (p) => p.trackEvent("e", {}, { key: "k", occurredAt: "2026-06-30T23:59:60Z" }), reason: "invalid_message", problems: [{ path: "occurredAt", message: /not a valid/ }] },
  { name: "occurredAt on February 30", call: (p) => p.trackEvent("e", {}, { key: "k", occurredAt: "2026-02-30T00:00:00Z" }), reason: "invalid_message", problems: [{ path: "occurredAt", message: /not a valid/ }] },
  { name: "invalid Date", call: (p) => p.identify({ environmentId: "e", subjectA: { type: "t", identifier: "i" }, subjectB: { type: "t", identifier: "j" }, consentBasis: "c", expiresAt: new Date(NaN) }, { key: "k" }), reason: "invalid_message", problems: [{ path: "expiresAt", message: /valid date/ }] },
  { name: "identify without subjectB's identifier", call: (p) => p.identify(/** @type {any} */ ({ environmentId: "e", subjectA: { type: "t", identifier: "i" }, subjectB: { type: "t" }, consentBasis: "c" }), { key: "k" }), reason: "invalid_message", problems: [{ path: "subjectB.identifier", message: /fewer than 1/ }] },
  { name: "number that is not finite", call: (p) => p.trackEvent("e", { x: NaN }, { key: "k" }), reason: "invalid_message", problems: [{ path: "properties.x", message: /finite/ }] },
  { name: "too large", call: (p) => p.trackEvent("e", { blob: "x".repeat(1 << 20) }, { key: "k" }), reason: "too_large", problems: [{ path: "", message: /more than the limit of 1048576/ }] },
  { name: "raw body that is not JSON", call: (p) => p.publish("track", "k", "{nope"), reason: "invalid_json", problems: [{ path: "", message: /JSON/ }] },
  {
    name: "too deep",
    call: (p) => {
      /** @type {any} */
      let v = {};
      for (let i = 0; i < 70; i++) v = { v };
      return p.trackEvent("e", v, { key: "k" });
    },
    reason: "invalid_json",
    problems: [{ path: /** @type {any} */ (undefined), message: /nesting deeper than 64 levels/ }],
  },
];

for (const c of cases) {
  test(`refused before publishing: ${c.name}`, async () => {
    const js = fakeJetStream();
    const p = new NotifizzProducer({ jetstream: js });
    // A rejection, not a synchronous throw: assert.rejects fails on the latter.
    await assert.rejects(() => /** @type {Promise<unknown>} */ (c.call(p)), (err) => {
      if (c.problems[0]?.path === undefined) {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.reason, c.reason);
        assert.match(err.message, c.problems[0]?.message ?? /./);
        return true;
      }
      return assertRefused(err, c.reason, c.problems);
    });
    assert.equal(js.attempts.length, 0);
  });
}

test("64 levels of nesting are accepted, 65 refused, as the bridge counts them", async () => {
  /** @param {number} depth the body's levels, the body being the first */
  const nested = (depth) =>
    '{"eventName":"e","properties":' + '{"a":'.repeat(depth - 2) + "{}" + "}".repeat(depth - 2) + "}";
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  await p.publish("track", "k", nested(64));
  await assert.rejects(p.publish("track", "k", nested(65)), (err) =>
    assertRefused(err, "invalid_json", [{ path: "", message: /nesting deeper than 64 levels/ }]),
  );
  // The same bounds when the producer encodes the properties.
  /** @param {number} levels */
  const props = (levels) => {
    /** @type {any} */
    let v = {};
    for (let i = 1; i < levels; i++) v = { a: v };
    return v;
  };
  await p.trackEvent("e", props(63), { key: "k2" });
  await assert.rejects(p.trackEvent("e", props(64), { key: "k3" }), ValidationError);
  assert.equal(js.published.length, 2);
  // A bracket inside a string is not nesting.
  await p.trackEvent("e", { s: "[[[[".repeat(100) }, { key: "k4" });
});

test("track and .workflow() throw at the call that is wrong, and nothing is sent", async () => {
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  assert.throws(() => p.track({ key: "k", eventName: "" }), (err) => assertRefused(err, "invalid_message", [{ path: "eventName", message: /fewer/ }]));
  assert.throws(() => p.track({ key: "a.b", eventName: "e" }), (err) => assertRefused(err, "unknown_subject", [{ path: "key", message: /token/ }]));
  const ctx = p.track({ key: "k2", eventName: "e" });
  assert.throws(() => ctx.workflow("c", [{ id: "", email: "x@example.com" }]), (err) =>
    assertRefused(err, "invalid_message", [{ path: "recipients[0].id", message: /fewer/ }]),
  );
  await ctx; // the valid part is still sent
  assert.deepEqual(js.published.map((m) => m.subject), ["notifizz.track.k2", "notifizz.commit.k2"]);
});

test("sdkSecretKey given to track as the SDK takes it is not published", async () => {
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  await p.track({ key: "k", eventName: "e", sdkSecretKey: "s3cret", properties: { a: 1 } });
  assert.equal(js.published[0]?.body, '{"eventName":"e","properties":{"a":1}}');
  assert.ok(!js.attempts.some((m) => m.body.includes("s3cret")));
});

test(".workflow() after the context was sent throws ContextSentError", async () => {
  const p = new NotifizzProducer({ jetstream: fakeJetStream() });
  const ctx = p.track({ key: "k", eventName: "e" });
  await ctx;
  assert.equal(ctx.open, false);
  assert.throws(() => ctx.workflow("c", [ada]), (err) => err instanceof ContextSentError && err.key === "k");
});

test("a retryable failure is retried with the same Nats-Msg-Id", async () => {
  const js = fakeJetStream([natsError("TimeoutError"), natsError("NoRespondersError")]);
  const p = new NotifizzProducer({ jetstream: js, retries: 2 });
  const res = await p.commit("k");
  assert.equal(js.attempts.length, 3);
  assert.deepEqual(new Set(js.attempts.map((a) => a.msgId)), new Set([res.msgId]));
  assert.equal(res.msgId, "commit-k-e3b0c44298fc1c149afbf4c8996fb924");
});

test("a failure that outlasts the retries rejects with a retryable PublishError", async () => {
  const js = fakeJetStream([natsError("TimeoutError"), natsError("TimeoutError")]);
  const p = new NotifizzProducer({ jetstream: js, retries: 1 });
  await assert.rejects(p.commit("k"), (err) => {
    assert.ok(err instanceof PublishError);
    assert.equal(err.retryable, true);
    assert.equal(err.subject, "notifizz.commit.k");
    assert.equal(err.msgId, "commit-k-e3b0c44298fc1c149afbf4c8996fb924");
    assert.equal(/** @type {Error} */ (err.cause).name, "TimeoutError");
    return true;
  });
  assert.equal(js.attempts.length, 2);
});

test("a refusal by the server is not retried", async () => {
  const js = fakeJetStream([natsError("JetStreamApiError", "maximum messages exceeded")]);
  const p = new NotifizzProducer({ jetstream: js });
  await assert.rejects(p.commit("k"), (err) => err instanceof PublishError && !err.retryable && /maximum messages/.test(err.message));
  assert.equal(js.attempts.length, 1);
});

test("a failed context is published again by send(), de-duplicated by its ids", async () => {
  const js = fakeJetStream([natsError("ClosedConnectionError")]);
  const p = new NotifizzProducer({ jetstream: js });
  const ctx = p.track({ key: "k", eventName: "e" }).workflow("c", [ada]);
  await assert.rejects(Promise.resolve(ctx), PublishError);
  await assert.rejects(Promise.resolve(ctx), PublishError); // awaiting again does not resend
  assert.equal(js.attempts.length, 1);
  const res = await ctx.send();
  assert.deepEqual(res.messages.map((m) => m.subject), ["notifizz.track.k", "notifizz.workflow.k", "notifizz.commit.k"]);
});

test("msgId null publishes without Nats-Msg-Id; a given msgId replaces the default", async () => {
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  await p.commit("k", { msgId: null });
  await p.commit("k", { msgId: "mine" });
  assert.deepEqual(js.attempts.map((a) => a.msgId), [undefined, "mine"]);
});

test("options are checked when the producer is made", () => {
  assert.throws(() => new NotifizzProducer({}), TypeError);
  assert.throws(() => new NotifizzProducer({ servers: "nats://127.0.0.1:1", jetstream: fakeJetStream() }), TypeError);
  assert.throws(() => new NotifizzProducer({ jetstream: fakeJetStream(), subjectPrefix: "a..b" }), (err) =>
    assertRefused(err, "unknown_subject", [{ path: "prefix", message: /token 2 must not be empty/ }]),
  );
});

test("after close, calls are refused with ClosedError and pending contexts were sent", async () => {
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js, autoSendDelayMs: 60_000 });
  const ctx = p.track({ key: "k", eventName: "e" });
  await p.close();
  assert.equal(ctx.open, false);
  assert.equal(js.published.length, 2);
  assert.throws(() => p.track({ eventName: "e" }), ClosedError);
  await assert.rejects(p.commit("k"), ClosedError);
});
