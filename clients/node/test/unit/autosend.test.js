// A track context is sent after autoSendDelayMs, or at once when awaited, as the SDK's context.
// Time is a fake clock (node:test's mocked setTimeout); the publishes themselves are awaited
// turn by turn of the event loop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NotifizzProducer } from "../../dist/index.js";
import { fakeJetStream, natsError, until } from "./helpers.js";

const ada = { id: "user_42", email: "ada@example.com" };

/** Lets every pending publish run, so that "nothing published" means nothing was going to be. */
async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

test("sent by itself after the default 1000 ms: track, workflows in order, then commit", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  const ctx = p.track({ key: "order-1", eventName: "order_shipped", properties: { orderId: "1" } })
    .workflow("first", [ada])
    .workflow("second", [ada]);
  t.mock.timers.tick(999);
  await settle();
  assert.equal(js.attempts.length, 0);
  assert.equal(ctx.open, true);
  ctx.workflow("third", [ada]); // still open: chained before the delay ends
  t.mock.timers.tick(1);
  await until(() => js.published.length === 5);
  assert.deepEqual(
    js.published.map((m) => [m.subject, m.body]),
    [
      ["notifizz.track.order-1", '{"eventName":"order_shipped","properties":{"orderId":"1"}}'],
      ["notifizz.workflow.order-1", '{"campaignId":"first","recipients":[{"id":"user_42","email":"ada@example.com"}]}'],
      ["notifizz.workflow.order-1", '{"campaignId":"second","recipients":[{"id":"user_42","email":"ada@example.com"}]}'],
      ["notifizz.workflow.order-1", '{"campaignId":"third","recipients":[{"id":"user_42","email":"ada@example.com"}]}'],
      ["notifizz.commit.order-1", ""],
    ],
  );
  assert.equal(ctx.open, false);
  const res = await ctx; // awaiting a sent context gives its result without sending again
  assert.equal(res.messages.length, 5);
  assert.equal(js.attempts.length, 5);
});

test("autoSendDelayMs sets the delay", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js, autoSendDelayMs: 2000 });
  p.track({ key: "k", eventName: "e" });
  t.mock.timers.tick(1999);
  await settle();
  assert.equal(js.attempts.length, 0);
  t.mock.timers.tick(1);
  await until(() => js.published.length === 2);
});

test("awaiting sends at once, and the timer then sends nothing more", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  const res = await p.track({ key: "k", eventName: "e" }).workflow("c", [ada]);
  assert.equal(js.published.length, 3);
  assert.deepEqual(res.messages.map((m) => m.seq), [1, 2, 3]);
  t.mock.timers.tick(5000);
  await settle();
  assert.equal(js.attempts.length, 3);
});

test("an auto-sent context that fails reports to onError", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const js = fakeJetStream([natsError("JetStreamApiError", "refused")]);
  /** @type {[Error, import("../../dist/index.js").TrackContext][]} */
  const reported = [];
  const p = new NotifizzProducer({ jetstream: js, onError: (err, ctx) => reported.push([err, ctx]) });
  const ctx = p.track({ key: "k", eventName: "e" });
  t.mock.timers.tick(1000);
  await until(() => reported.length === 1);
  assert.equal(reported[0]?.[0].name, "PublishError");
  assert.equal(reported[0]?.[1], ctx);
});

test("flush sends every pending context at once", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  p.track({ key: "a", eventName: "e" });
  p.track({ key: "b", eventName: "e" });
  await p.flush();
  assert.equal(js.published.length, 4);
  t.mock.timers.tick(1000);
  await settle();
  assert.equal(js.attempts.length, 4);
});

test("flush and close reject with the failures of the contexts they sent, and close still closes", async () => {
  const js = fakeJetStream([natsError("JetStreamApiError", "refused")]);
  const p = new NotifizzProducer({ jetstream: js, retries: 0 });
  const failing = p.track({ key: "a", eventName: "e" });
  const rejected = assert.rejects(Promise.resolve(failing), /refused/); // its own awaiter sees it too
  await assert.rejects(p.close(), (err) => err instanceof AggregateError && err.errors.length === 1);
  await rejected;
  await assert.rejects(p.commit("b"), { name: "ClosedError" });
});
