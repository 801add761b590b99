// The Node producer must form the same subjects, bodies and Nats-Msg-Ids as the Go producer, so
// that a message retried from either language is de-duplicated alike. The Go module's
// TestProducerFixtures writes what its producer published for each input into
// schema/testdata/producer-fixtures.json (and fails when the Go producer drifts from it); here
// the same inputs go through the Node producer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { NotifizzProducer, msgIdFor } from "../../dist/index.js";
import { fakeJetStream } from "./helpers.js";

/** @type {{name: string, kind: string, prefix?: string, key: string, input: any, subject: string, body: string, msgId: string}[]} */
const fixtures = JSON.parse(
  readFileSync(new URL("../../../../schema/testdata/producer-fixtures.json", import.meta.url), "utf8"),
);

test("the fixtures cover every kind", () => {
  const kinds = new Set(fixtures.map((f) => f.kind));
  for (const k of ["track", "workflow", "commit", "send", "identify", "detach", "subscribe", "unsubscribe"]) {
    assert.ok(kinds.has(k), k);
  }
});

for (const f of fixtures) {
  test(`same message as the Go producer: ${f.name}`, async () => {
    const js = fakeJetStream();
    const p = new NotifizzProducer({ jetstream: js, subjectPrefix: f.prefix || undefined });
    const key = f.key;
    const i = f.input;
    switch (f.kind) {
      case "track":
        await p.trackEvent(i.eventName, i.properties, { key, idempotencyKey: i.idempotencyKey, occurredAt: i.occurredAt });
        break;
      case "workflow":
        await p.workflow(key, i.campaignId, i.recipients);
        break;
      case "commit":
        await p.commit(key);
        break;
      case "send":
        await p.send({ ...i, key });
        break;
      case "identify":
        await p.identify(i, { key });
        break;
      case "detach":
        await p.detach(i, { key });
        break;
      case "subscribe":
        await p.subscribe(i.resourceId, i.subscriberId, i.meta, { key });
        break;
      case "unsubscribe":
        await p.unsubscribe(i.resourceId, i.subscriberId, { key });
        break;
      default:
        assert.fail(`no case for kind ${f.kind}`);
    }
    assert.equal(js.published.length, 1);
    const m = js.published[0];
    assert.equal(m?.subject, f.subject);
    assert.equal(m?.body, f.body);
    assert.equal(m?.msgId, f.msgId);
    assert.equal(msgIdFor(/** @type {any} */ (f.kind), key, f.body), f.msgId);
  });
}

test("a chained track context publishes the Go producer's track, workflow and commit", async () => {
  const track = fixtures.find((f) => f.name === "track");
  const workflow = fixtures.find((f) => f.name === "workflow");
  const commit = fixtures.find((f) => f.name === "commit");
  assert.ok(track && workflow && commit);
  const js = fakeJetStream();
  const p = new NotifizzProducer({ jetstream: js });
  const res = await p
    .track({ key: track.key, eventName: track.input.eventName, properties: track.input.properties })
    .workflow(workflow.input.campaignId, workflow.input.recipients);
  assert.deepEqual(
    js.published.map((m) => [m.subject, m.body, m.msgId]),
    [track, workflow, commit].map((f) => [f.subject, f.body, f.msgId]),
  );
  assert.equal(res.key, track.key);
  assert.deepEqual(res.messages.map((m) => m.seq), [1, 2, 3]);
});
