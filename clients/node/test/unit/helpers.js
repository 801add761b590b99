// Shared helpers of the unit tests: a JetStream stand-in that records what would be published.
// The end-to-end test (test/e2e) publishes to a real JetStream server, that of the Go daemon.

/**
 * @typedef {{ subject: string, body: string, msgId: string | undefined, headers: Record<string, string> }} Published
 */

/**
 * A fake of the JetStream client's publish: records each message and acknowledges it, or
 * throws the errors of `failures` first, one per attempt.
 * @param {Error[]} [failures]
 */
export function fakeJetStream(failures = []) {
  /** @type {Published[]} */
  const published = [];
  /** @type {Published[]} */
  const attempts = [];
  const queue = [...failures];
  return {
    published,
    attempts,
    /**
     * @param {string} subject
     * @param {Uint8Array | string | undefined} data
     * @param {Partial<import("@nats-io/jetstream").JetStreamPublishOptions>} [opts]
     */
    async publish(subject, data, opts = {}) {
      /** @type {Record<string, string>} */
      const headers = {};
      if (opts.headers) for (const [k] of opts.headers) headers[k] = opts.headers.get(k);
      const msg = {
        subject,
        body: Buffer.from(data ?? new Uint8Array()).toString("utf8"),
        msgId: opts.msgID,
        headers,
      };
      attempts.push(msg);
      const err = queue.shift();
      if (err) throw err;
      const duplicate = opts.msgID !== undefined && published.some((p) => p.msgId === opts.msgID);
      if (!duplicate) published.push(msg);
      return { stream: "NOTIFIZZ", seq: published.length, duplicate };
    },
  };
}

/** An error shaped like those of @nats-io/nats-core, by name. */
export function natsError(/** @type {string} */ name, message = name) {
  const err = new Error(message);
  err.name = name;
  return err;
}

/**
 * Resolves once cond() is true, checking between turns of the event loop (setImmediate, which
 * the tests' mocked timers leave alone); rejects once `ms` of real time have passed (Date, which
 * the tests do not mock). A bound in turns would not do: the first publish loads
 * @opentelemetry/api with a dynamic import, real I/O that a loaded machine makes take many turns.
 */
export async function until(/** @type {() => boolean} */ cond, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (cond()) return;
    if (Date.now() >= deadline) throw new Error("condition not reached");
    await new Promise((r) => setImmediate(r));
  }
}
