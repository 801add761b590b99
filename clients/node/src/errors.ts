/**
 * Why the bridge would refuse a message, as in the dead-letter header Notifizz-Dlq-Reason. The
 * producer refuses such a message before publishing it, with the same reason.
 */
export type Reason =
  | "unknown_subject"
  | "invalid_json"
  | "too_large"
  | "secret_in_message"
  | "invalid_message";

/** One problem of a refused message: the field's path and what is wrong, never its value. */
export interface Problem {
  /** The field, e.g. `recipients[0].email`; `key`, `prefix` or `kind` for the subject's parts; "" for the whole body. */
  path: string;
  message: string;
}

/** Base class of every error this package throws or rejects with. */
export class NotifizzProducerError extends Error {
  override name = "NotifizzProducerError";
}

/**
 * A message the bridge would dead-letter: nothing was published. `reason` is the dead-letter
 * reason the bridge would give it, `problems` every problem found, in document order.
 */
export class ValidationError extends NotifizzProducerError {
  override name = "ValidationError";
  readonly reason: Reason;
  readonly problems: readonly Problem[];

  constructor(reason: Reason, problems: Problem[]) {
    super(
      reason +
        ": " +
        problems.map((p) => (p.path === "" ? p.message : `${p.path}: ${p.message}`)).join("; "),
    );
    this.reason = reason;
    this.problems = problems;
  }
}

/**
 * A publish that JetStream did not acknowledge: no stream captures the subject, the
 * acknowledgement did not come in time, the connection failed or the server refused the message.
 * `retryable` says whether publishing the same message again may succeed; it is safe, as the
 * message keeps its Nats-Msg-Id.
 */
export class PublishError extends NotifizzProducerError {
  override name = "PublishError";
  readonly subject: string;
  readonly msgId: string | undefined;
  readonly retryable: boolean;

  constructor(subject: string, msgId: string | undefined, retryable: boolean, cause: unknown) {
    super(`publish to ${subject}: ${describe(cause)}`, { cause });
    this.subject = subject;
    this.msgId = msgId;
    this.retryable = retryable;
  }
}

/**
 * `.workflow()` on a track context that was already sent (awaited or auto-sent), as the
 * Notifizz SDK throws: publish the workflow with `producer.workflow(key, ...)` instead, before the
 * bridge's coalescing delay ends.
 */
export class ContextSentError extends NotifizzProducerError {
  override name = "ContextSentError";
  readonly key: string;

  constructor(key: string) {
    super(`track context ${key}: workflow added after the event was sent`);
    this.key = key;
  }
}

/** A call on a producer after close(). */
export class ClosedError extends NotifizzProducerError {
  override name = "ClosedError";
  constructor() {
    super("producer is closed");
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
