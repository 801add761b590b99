import { createHash, randomUUID } from "node:crypto";
import { connect, headers as natsHeaders, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { jetstream, type JetStreamPublishOptions, type PubAck } from "@nats-io/jetstream";
import {
  encodeDetach,
  encodeIdentify,
  encodeSend,
  encodeSubscribe,
  encodeTrack,
  encodeUnsubscribe,
  encodeWorkflow,
  type DateInput,
  type DetachBody,
  type IdentifyBody,
  type Properties,
  type Recipient,
  type SendBody,
} from "./bodies.js";
import { ClosedError, PublishError } from "./errors.js";
import { DEFAULT_PREFIX, subjectFor, validatePrefix, type Kind } from "./subject.js";
import { traceHeaders } from "./trace.js";
import { TrackContext, type TrackProps } from "./context.js";
import { validateBody } from "./validate.js";

/** The part of a JetStream client the producer uses: @nats-io/jetstream's JetStreamClient has it. */
export interface Publisher {
  publish(subject: string, data?: Uint8Array | string, opts?: Partial<JetStreamPublishOptions>): Promise<PubAck>;
}

export interface ProducerOptions {
  /** NATS servers to connect to (the producer connects on its first publish and owns the connection). */
  servers?: string | string[];
  /** Other connection options (token, user and password, authenticator, tls, name...), used with `servers`. */
  connectOptions?: Omit<NodeConnectionOptions, "servers">;
  /** A connection the application owns; close() leaves it open. */
  connection?: NatsConnection;
  /** A JetStream client to publish with instead of a connection (tests, or a client with its own options). */
  jetstream?: Publisher;
  /** The bridge's stream.subjectPrefix (default "notifizz"). */
  subjectPrefix?: string;
  /** How long a track context waits before it is sent by itself, as the SDK's option (default 1000). */
  autoSendDelayMs?: number;
  /** How long to wait for the stream's acknowledgement of one publish (default 5000). */
  timeoutMs?: number;
  /** Further attempts after a publish that may succeed when repeated (timeout, no stream yet, connection lost), with the same Nats-Msg-Id (default 2). */
  retries?: number;
  /**
   * Called with the error of a track context that was sent by its timer and that nobody awaited.
   * Without it, such an error is an unhandled promise rejection, as with the SDK.
   */
  onError?: (err: Error, ctx: TrackContext) => void;
}

/** Per-call options of every publish. */
export interface PublishOptions {
  /** The subject's key: the event key for track, workflow and commit, the request's name for the others. Default: a random UUID. */
  key?: string;
  /** Nats-Msg-Id to use instead of the default (`<kind>-<key>-<hash of the body>`); null publishes without one. */
  msgId?: string | null;
}

/** What JetStream acknowledged. */
export interface PublishResult {
  subject: string;
  /** The Nats-Msg-Id sent, if any. */
  msgId: string | undefined;
  stream: string;
  seq: number;
  /** True when the stream already held a message with this Nats-Msg-Id (a retry): it stored nothing. */
  duplicate: boolean;
}

export interface TrackEventOptions extends PublishOptions {
  /** Replaces the idempotency key the bridge derives (1 to 255 printable ASCII characters). */
  idempotencyKey?: string;
  /** When the event happened; sent in UTC with milliseconds. */
  occurredAt?: DateInput;
}

/**
 * The default Nats-Msg-Id of a message, as the Go producer forms it (schema.MsgID):
 * `<kind>-<key>-` and the first 32 hex digits of the SHA-256 of the body.
 */
export function msgIdFor(kind: Kind, key: string, body: string | Uint8Array): string {
  return `${kind}-${key}-${createHash("sha256").update(body).digest("hex").slice(0, 32)}`;
}

const EMPTY = new Uint8Array(0);

/**
 * Publishes the messages of notifizz-bridge's contract to JetStream, with the API of the
 * Notifizz Node SDK. Every publish validates its body as the bridge would (a ValidationError,
 * and nothing published), sets a deterministic Nats-Msg-Id, and waits for the stream's
 * acknowledgement (a PublishError otherwise). It holds no Notifizz secret: the bridge does.
 */
export class NotifizzProducer {
  readonly subjectPrefix: string;
  readonly autoSendDelayMs: number;
  readonly #opts: ProducerOptions;
  #js: Publisher | Promise<Publisher> | undefined;
  #owned: NatsConnection | undefined;
  #closed = false;
  /** Track contexts not yet sent; close() and flush() send them. */
  readonly #pending = new Set<TrackContext>();

  constructor(opts: ProducerOptions) {
    const sources = [opts.servers, opts.connection, opts.jetstream].filter((s) => s !== undefined);
    if (sources.length !== 1) {
      throw new TypeError("NotifizzProducer: give exactly one of servers, connection or jetstream");
    }
    this.subjectPrefix = opts.subjectPrefix ?? DEFAULT_PREFIX;
    validatePrefix(this.subjectPrefix);
    this.autoSendDelayMs = opts.autoSendDelayMs ?? 1000;
    if (!(this.autoSendDelayMs >= 0)) throw new TypeError("NotifizzProducer: autoSendDelayMs must be >= 0");
    this.#opts = opts;
    if (opts.jetstream !== undefined) this.#js = opts.jetstream;
    else if (opts.connection !== undefined) this.#js = jetstream(opts.connection);
  }

  /**
   * Starts an event, as the SDK's client.track: returns a context to chain `.workflow()` calls on,
   * published (the track, each workflow, then a commit) when it is awaited or after
   * autoSendDelayMs. `sdkSecretKey`, which the SDK takes here, is ignored: secrets stay with the bridge.
   */
  track(props: TrackProps): TrackContext {
    this.#checkOpen();
    const ctx = new TrackContext(this, props, this.#opts.onError);
    return ctx;
  }

  /** Adds a workflow to the event `key` that another service tracks (fan-in), as `.workflow()` would. */
  async workflow(key: string, campaignId: string, recipients: Recipient[], opts: Omit<PublishOptions, "key"> = {}): Promise<PublishResult> {
    return this.publish("workflow", key, encodeWorkflow({ campaignId, recipients }), opts.msgId);
  }

  /** Says the event `key` is complete, so that the bridge sends it without waiting for its delay (awaiting the SDK's context). */
  async commit(key: string, opts: Omit<PublishOptions, "key"> = {}): Promise<PublishResult> {
    return this.publish("commit", key, EMPTY, opts.msgId);
  }

  /** Sends to the Notification Center, as the SDK's client.send (notifizz.api: v1). */
  async send(request: SendBody & PublishOptions): Promise<PublishResult> {
    return this.publish("send", request.key ?? randomUUID(), encodeSend(request), request.msgId);
  }

  /** Tracks an event as the SDKs 2.x do: sent at once by a bridge with notifizz.api: v2, with no workflows. */
  async trackEvent(eventName: string, properties: Properties = {}, opts: TrackEventOptions = {}): Promise<PublishResult> {
    return this.publish(
      "track",
      opts.key ?? randomUUID(),
      encodeTrack({ eventName, properties, idempotencyKey: opts.idempotencyKey, occurredAt: opts.occurredAt }),
      opts.msgId,
    );
  }

  /** Links two identities to the same audience (notifizz.api: v2). */
  async identify(request: IdentifyBody, opts: PublishOptions = {}): Promise<PublishResult> {
    return this.publish("identify", opts.key ?? randomUUID(), encodeIdentify(request), opts.msgId);
  }

  /** Moves an identity out of its audience (notifizz.api: v2). */
  async detach(request: DetachBody, opts: PublishOptions = {}): Promise<PublishResult> {
    return this.publish("detach", opts.key ?? randomUUID(), encodeDetach(request), opts.msgId);
  }

  /**
   * Subscribes subscriberId to resourceId with optional meta (notifizz.api: v2). Give a subscribe
   * and the unsubscribe that may follow it the same key: a v2 bridge makes the calls of one key
   * in the order they were published.
   */
  async subscribe(resourceId: string, subscriberId: string, meta?: Properties, opts: PublishOptions = {}): Promise<PublishResult> {
    return this.publish("subscribe", opts.key ?? randomUUID(), encodeSubscribe({ resourceId, subscriberId, meta }), opts.msgId);
  }

  /** Unsubscribes subscriberId from resourceId (notifizz.api: v2). */
  async unsubscribe(resourceId: string, subscriberId: string, opts: PublishOptions = {}): Promise<PublishResult> {
    return this.publish("unsubscribe", opts.key ?? randomUUID(), encodeUnsubscribe({ resourceId, subscriberId }), opts.msgId);
  }

  /**
   * Publishes a body built by the caller on `<prefix>.<kind>.<key>`, after validating it. msgId:
   * undefined for the default Nats-Msg-Id, null or "" for none.
   */
  async publish(kind: Kind, key: string, body: string | Uint8Array, msgId?: string | null): Promise<PublishResult> {
    this.#checkOpen();
    const subject = subjectFor(this.subjectPrefix, kind, key);
    validateBody(kind, body);
    const id = msgId === undefined ? msgIdFor(kind, key, body) : msgId || undefined;
    const data = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const trace = await traceHeaders();
    const retries = this.#opts.retries ?? 2;
    for (let attempt = 0; ; attempt++) {
      const opts: Partial<JetStreamPublishOptions> = { timeout: this.#opts.timeoutMs ?? 5000 };
      if (id !== undefined) opts.msgID = id;
      const names = Object.keys(trace);
      if (names.length > 0) {
        const h = natsHeaders();
        for (const n of names) h.set(n, trace[n]!);
        opts.headers = h;
      }
      try {
        const js = await this.#jetstream();
        const ack = await js.publish(subject, data, opts);
        return { subject, msgId: id, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
      } catch (err) {
        const retryable = isRetryable(err);
        if (!retryable || attempt >= retries || this.#closed) {
          throw new PublishError(subject, id, retryable, err);
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  /**
   * Sends every track context not sent yet, at once, and waits for them. Rejects with an
   * AggregateError of their PublishErrors if any failed (each context also rejects for its own
   * awaiters).
   */
  async flush(): Promise<void> {
    const results = await Promise.allSettled([...this.#pending].map((c) => c.send()));
    const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} track context(s) failed to publish`);
  }

  /**
   * Sends the contexts not sent yet, then closes the connection if the producer opened it, even
   * when some failed (the AggregateError of flush is then rethrown). Later calls reject with
   * ClosedError.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      const owned = this.#owned;
      this.#owned = undefined;
      if (owned !== undefined) await owned.drain();
    }
  }

  /** @internal Used by TrackContext. */
  _pending(ctx: TrackContext, open: boolean): void {
    if (open) this.#pending.add(ctx);
    else this.#pending.delete(ctx);
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError();
  }

  async #jetstream(): Promise<Publisher> {
    if (this.#js === undefined) {
      const { servers, connectOptions } = this.#opts;
      this.#js = connect({ ...connectOptions, servers: servers! }).then(
        (nc) => {
          this.#owned = nc;
          const js = jetstream(nc);
          this.#js = js;
          return js;
        },
        (err: unknown) => {
          this.#js = undefined; // the next publish tries again
          throw err;
        },
      );
    }
    return this.#js;
  }
}

function isRetryable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  switch (err.name) {
    case "TimeoutError":
    case "NoRespondersError":
    case "ConnectionError":
      return true;
    case "RequestError":
      return (err as { isNoResponders?: () => boolean }).isNoResponders?.() === true;
    case "JetStreamStatusError":
      return (err as { code?: number }).code === 503;
  }
  return err.cause instanceof Error && err.cause !== err ? isRetryable(err.cause) : false;
}
