import { randomUUID } from "node:crypto";
import { encodeTrack, encodeWorkflow, type DateInput, type Properties, type Recipient } from "./bodies.js";
import { ContextSentError, type NotifizzProducerError } from "./errors.js";
import { subjectFor } from "./subject.js";
import { validateBody } from "./validate.js";
import type { NotifizzProducer, PublishResult } from "./producer.js";

/** What producer.track takes: the SDK's TrackProps, plus the event key. */
export interface TrackProps {
  eventName: string;
  properties?: Properties;
  /**
   * The event key that ties the track, its workflows and its commit together (and names the
   * event in the bridge's logs and dead letters). Give one to add workflows from another service,
   * or to make a repeated track (a retry) publish the same messages; default: a random UUID.
   */
  key?: string;
  /** Replaces the idempotency key the bridge derives (1 to 255 printable ASCII characters). */
  idempotencyKey?: string;
  /** When the event happened; sent under notifizz.api: v2. */
  occurredAt?: DateInput;
  /** Accepted for compatibility with the SDK and ignored: secrets never travel on the bus. */
  sdkSecretKey?: string;
}

/** What an awaited track context gives: its key and the messages published, in order. */
export interface TrackResult {
  key: string;
  messages: PublishResult[];
}

type State = "open" | "sending" | "sent" | "failed";

/**
 * A tracked event with its workflows, like the SDK's TrackContext: chain `.workflow()` calls,
 * then await it to publish at once, or let it publish by itself after the producer's
 * autoSendDelayMs. Publishing sends the track, each workflow in order, then a commit, each
 * waiting for the stream's acknowledgement. Bodies are validated when given, so that
 * `track()` and `.workflow()` throw a ValidationError at the call that is wrong.
 */
export class TrackContext implements PromiseLike<TrackResult> {
  /** The event key. */
  readonly key: string;
  readonly #producer: NotifizzProducer;
  readonly #onError: ((err: Error, ctx: TrackContext) => void) | undefined;
  readonly #bodies: string[];
  #state: State = "open";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #promise: Promise<TrackResult> | undefined;

  /** Made by producer.track. */
  constructor(
    producer: NotifizzProducer,
    props: TrackProps,
    onError: ((err: Error, ctx: TrackContext) => void) | undefined,
  ) {
    this.key = props.key ?? randomUUID();
    subjectFor(producer.subjectPrefix, "track", this.key);
    const body = encodeTrack({
      eventName: props.eventName,
      properties: props.properties,
      idempotencyKey: props.idempotencyKey,
      occurredAt: props.occurredAt,
    });
    validateBody("track", body);
    this.#bodies = [body];
    this.#producer = producer;
    this.#onError = onError;
    this.#timer = setTimeout(() => this.#autoSend(), producer.autoSendDelayMs);
    producer._pending(this, true);
  }

  /** Adds a workflow to the event. Throws ContextSentError once the event was sent, as the SDK does. */
  workflow(campaignId: string, recipients: Recipient[]): this {
    if (this.#state !== "open") throw new ContextSentError(this.key);
    const body = encodeWorkflow({ campaignId, recipients });
    validateBody("workflow", body);
    this.#bodies.push(body);
    return this;
  }

  /** True until the context is sent (awaited, auto-sent, or flushed). */
  get open(): boolean {
    return this.#state === "open";
  }

  /**
   * Publishes the event now, if not done yet, and returns its result. After a failure it
   * publishes it again: every message keeps its Nats-Msg-Id, so those already stored are not
   * stored twice.
   */
  send(): Promise<TrackResult> {
    if (this.#state === "open" || this.#state === "failed") {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#producer._pending(this, false);
      this.#state = "sending";
      this.#promise = this.#publishAll().then(
        (r) => {
          this.#state = "sent";
          return r;
        },
        (err: unknown) => {
          this.#state = "failed";
          throw err;
        },
      );
    }
    return this.#promise!;
  }

  then<A = TrackResult, B = never>(
    onfulfilled?: ((value: TrackResult) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: NotifizzProducerError | Error) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    const p = this.#state === "open" ? this.send() : this.#promise!;
    return p.then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: NotifizzProducerError | Error) => B | PromiseLike<B>) | null): Promise<TrackResult | B> {
    return this.then(undefined, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<TrackResult> {
    return this.then().finally(onfinally);
  }

  #autoSend(): void {
    const p = this.send();
    // Without onError, a failure nobody awaits is an unhandled rejection, as with a Promise.
    if (this.#onError !== undefined) p.catch((err: Error) => this.#onError!(err, this));
  }

  async #publishAll(): Promise<TrackResult> {
    const messages: PublishResult[] = [];
    messages.push(await this.#producer.publish("track", this.key, this.#bodies[0]!));
    for (const body of this.#bodies.slice(1)) {
      messages.push(await this.#producer.publish("workflow", this.key, body));
    }
    messages.push(await this.#producer.commit(this.key));
    return { key: this.key, messages };
  }
}
