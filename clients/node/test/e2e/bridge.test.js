// End to end across languages: the Go daemon, built from this repository, runs in dry run with
// its embedded NATS server on a free port and a temporary store; the Node producer publishes to
// it; the test reads the requests the daemon prints on stdout (one JSON line per request it would
// make to Notifizz) and checks them. Needs Go on PATH.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { NotifizzProducer, PublishError } from "../../dist/index.js";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "notifizz-node-e2e-"));
const bin = join(work, "notifizz-bridge");

before(() => {
  execFileSync("go", ["build", "-o", bin, "./cmd/notifizz-bridge"], { cwd: repo, stdio: "inherit" });
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A TCP port nothing listens on now. */
async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

/**
 * Starts the daemon with config.example.yaml (under api, when given, another profile) in dry
 * run, and resolves once it consumes. The daemon is stopped with SIGTERM when the test ends.
 * @param {import("node:test").TestContext} t
 * @param {"v1" | "v2"} api
 */
async function startBridge(t, api) {
  const dir = mkdtempSync(join(work, `${api}-`));
  const example = readFileSync(join(repo, "config.example.yaml"), "utf8");
  const config = example.replace(/^  api: v1$/m, `  api: ${api}`);
  assert.ok(config.includes(`  api: ${api}\n`), "config.example.yaml has no notifizz.api line to change");
  writeFileSync(join(dir, "config.yaml"), config);
  const natsPort = await freePort();
  const httpPort = await freePort();
  const child = spawn(bin, ["run", "--config", join(dir, "config.yaml"), "--dry-run"], {
    env: {
      ...process.env,
      NATS_URL: "",
      NOTIFIZZ_BRIDGE_NATS_LISTEN: `127.0.0.1:${natsPort}`,
      NOTIFIZZ_BRIDGE_STORE_DIR: join(dir, "store"),
      NOTIFIZZ_BRIDGE_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      NOTIFIZZ_SDK_SECRET_KEY: "sdk-secret-e2e",
      NOTIFIZZ_AUTH_SECRET_KEY: "auth-secret-e2e",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  /** @type {any[]} */
  const lines = [];
  let out = "";
  let errText = "";
  child.stdout.setEncoding("utf8").on("data", (/** @type {string} */ chunk) => {
    out += chunk;
    let i;
    while ((i = out.indexOf("\n")) >= 0) {
      lines.push(JSON.parse(out.slice(0, i)));
      out = out.slice(i + 1);
    }
  });
  child.stderr.setEncoding("utf8").on("data", (/** @type {string} */ chunk) => (errText += chunk));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  t.after(async () => {
    child.kill("SIGTERM");
    await exited;
  });
  await poll(() => errText.includes("notifizz-bridge started"), 30_000, () => `daemon did not start:\n${errText}`);
  return { lines, servers: `127.0.0.1:${natsPort}`, stderr: () => errText };
}

/**
 * @param {() => boolean} cond
 * @param {number} ms
 * @param {() => string} what
 */
async function poll(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The printed request on path, waiting for it. @param {any[]} lines @param {string} method @param {string} path */
async function request(lines, method, path, ms = 10_000) {
  await poll(() => lines.some((l) => l.method === method && l.path === path), ms, () => `no ${method} ${path} in ${JSON.stringify(lines)}`);
  return lines.find((l) => l.method === method && l.path === path);
}

const alice = { id: "user_42", email: "alice@example.com" };
const bob = { id: "user_7", email: "bob@example.com", firstName: "Bob" };

test("v1: a chained track, a fan-in event and a send reach the API as the SDK would call it", async (t) => {
  const bridge = await startBridge(t, "v1");
  const orders = new NotifizzProducer({ servers: bridge.servers });
  const billing = new NotifizzProducer({ servers: bridge.servers });
  // Hooks run in the order they were added, after the daemon's: close quietly on failure paths.
  t.after(() => Promise.all([orders.close(), billing.close()]).catch(() => {}));

  // Chained, as client.track(...).workflow(...).workflow(...) awaited.
  const chained = await orders
    .track({ key: "order-4521-shipped", eventName: "order_shipped", properties: { orderId: "ORD-4521", carrier: "FedEx" } })
    .workflow("shipping_notification", [alice])
    .workflow("ops_digest", [bob]);
  assert.deepEqual(chained.messages.map((m) => m.subject), [
    "notifizz.track.order-4521-shipped",
    "notifizz.workflow.order-4521-shipped",
    "notifizz.workflow.order-4521-shipped",
    "notifizz.commit.order-4521-shipped",
  ]);
  const line = await request(bridge.lines, "POST", "/v1/events/track");
  const key = line.headers["X-Idempotency-Key"];
  assert.equal(typeof key, "string");
  assert.deepEqual(line.body, {
    eventName: "order_shipped",
    properties: { carrier: "FedEx", orderId: "ORD-4521" },
    workflows: [
      { campaignId: "shipping_notification", recipients: [alice] },
      { campaignId: "ops_digest", recipients: [bob] },
    ],
    sdkSecretKey: "[REDACTED]",
    idempotencyKey: key,
  });

  // Fan-in: one service tracks the event (no commit), another adds its workflow and commits.
  await orders.trackEvent("order_paid", { orderId: "ORD-9" }, { key: "order-9-paid", idempotencyKey: "order-9-paid" });
  await billing.workflow("order-9-paid", "receipt", [alice]);
  await billing.commit("order-9-paid");
  await poll(() => bridge.lines.length >= 2, 10_000, () => `no second request: ${JSON.stringify(bridge.lines)}`);
  assert.deepEqual(bridge.lines[1], {
    method: "POST",
    path: "/v1/events/track",
    headers: { "X-Idempotency-Key": "order-9-paid" },
    body: {
      eventName: "order_paid",
      properties: { orderId: "ORD-9" },
      workflows: [{ campaignId: "receipt", recipients: [alice] }],
      sdkSecretKey: "[REDACTED]",
      idempotencyKey: "order-9-paid",
    },
  });

  // A track context sent by its timer (autoSendDelayMs), never awaited.
  const quick = new NotifizzProducer({ servers: bridge.servers, autoSendDelayMs: 50 });
  t.after(() => quick.close().catch(() => {}));
  quick.track({ key: "signup-7", eventName: "signup", idempotencyKey: "signup-7" }).workflow("welcome", [bob]);
  await poll(() => bridge.lines.length >= 3, 10_000, () => `no auto-sent request: ${JSON.stringify(bridge.lines)}`);
  assert.deepEqual(bridge.lines[2].body.workflows, [{ campaignId: "welcome", recipients: [bob] }]);
  assert.equal(bridge.lines[2].body.idempotencyKey, "signup-7");

  // A Notification Center request; the message's Nats-Msg-Id is its idempotency key.
  const sent = await orders.send({ key: "welcome-user-42", notifId: "notif_123", properties: { title: "Welcome", recipients: [alice] } });
  const send = await request(bridge.lines, "POST", "/v1/notification/channel/notificationcenter/config/notif_123/track");
  assert.deepEqual(send, {
    method: "POST",
    path: "/v1/notification/channel/notificationcenter/config/notif_123/track",
    headers: { "X-Idempotency-Key": sent.msgId },
    body: { properties: { title: "Welcome" }, recipients: [alice] },
  });

  // Publishing the same event again is de-duplicated by the stream: no second call.
  const again = await orders
    .track({ key: "order-4521-shipped", eventName: "order_shipped", properties: { orderId: "ORD-4521", carrier: "FedEx" } })
    .workflow("shipping_notification", [alice])
    .workflow("ops_digest", [bob]);
  assert.ok(again.messages.every((m) => m.duplicate));
  assert.equal(bridge.lines.length, 4);
  assert.ok(!bridge.stderr().includes("sdk-secret-e2e"));

  // A prefix no stream captures: JetStream answers "no responders", a retryable PublishError.
  const astray = new NotifizzProducer({ servers: bridge.servers, subjectPrefix: "elsewhere", retries: 0 });
  t.after(() => astray.close().catch(() => {}));
  await assert.rejects(astray.commit("k"), (err) => {
    assert.ok(err instanceof PublishError, String(err));
    assert.equal(err.retryable, true, String(err.cause));
    assert.equal(err.subject, "elsewhere.commit.k");
    return true;
  });
  await Promise.all([orders.close(), billing.close(), quick.close(), astray.close()]);
});

test("v2: trackEvent, identify, subscribe and unsubscribe reach the API of the SDKs 2.x", async (t) => {
  const bridge = await startBridge(t, "v2");
  // A connection the service owns: the producer publishes on it and leaves it open.
  const nc = await connect({ servers: bridge.servers });
  t.after(() => nc.close());
  const p = new NotifizzProducer({ connection: nc });

  await p.trackEvent("order_shipped", { orderId: "ORD-4521" }, {
    key: "order-4521-shipped",
    idempotencyKey: "order-4521-shipped",
    occurredAt: "2026-03-01T14:00:00+02:00",
  });
  const track = await request(bridge.lines, "POST", "/v1/events/track");
  assert.deepEqual(track.body, {
    eventName: "order_shipped",
    properties: { orderId: "ORD-4521" },
    sdkSecretKey: "[REDACTED]",
    idempotencyKey: "order-4521-shipped",
    occurredAt: "2026-03-01T12:00:00.000Z",
  });

  await p.identify(
    {
      environmentId: "env_1",
      subjectA: { type: "email", identifier: "ada@example.com" },
      subjectB: { type: "user_id", identifier: "user_42" },
      consentBasis: "contract",
      expiresAt: new Date(Date.UTC(2027, 0, 1)),
    },
    { key: "link-user-42" },
  );
  const identify = await request(bridge.lines, "POST", "/v1/identity/identify");
  assert.deepEqual(identify.body, {
    environmentId: "env_1",
    subjectA: { type: "email", identifier: "ada@example.com" },
    subjectB: { type: "user_id", identifier: "user_42" },
    consentBasis: "contract",
    expiresAt: "2027-01-01T00:00:00.000Z",
  });

  // One key for the subscription, so that the bridge makes the two calls in this order.
  await p.subscribe("order-4521", "user_42", { role: "buyer" }, { key: "order-4521-user-42" });
  await p.unsubscribe("order-4521", "user_42", { key: "order-4521-user-42" });
  await request(bridge.lines, "DELETE", "/v1/subscriptions/order-4521/unsubscribe");
  const subs = bridge.lines.filter((l) => l.path.startsWith("/v1/subscriptions/"));
  assert.deepEqual(subs, [
    { method: "POST", path: "/v1/subscriptions/order-4521/subscribe", body: { role: "buyer", subscriberId: "user_42" } },
    { method: "DELETE", path: "/v1/subscriptions/order-4521/unsubscribe", body: { subscriberId: "user_42" } },
  ]);
  await p.close();
  assert.equal(nc.isClosed(), false);
});
