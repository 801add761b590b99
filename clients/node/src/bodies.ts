import { Ordered, compareUTF8, encodeJSON } from "./json.js";
import { ValidationError } from "./errors.js";

/** A recipient, as in the Notifizz API: id and email, plus custom keys kept as given. */
export interface Recipient {
  id: string;
  email: string;
  [custom: string]: unknown;
}

/** Properties of an event: any JSON-encodable values. */
export type Properties = Record<string, unknown>;

/** An identity for identify and detach, e.g. `{ type: "email", identifier: "ada@example.com" }`. */
export interface Identity {
  type: string;
  identifier: string;
}

/** A date as the bus carries it: a Date, or an RFC 3339 date-time string with a time zone. */
export type DateInput = Date | string;

export interface TrackBody {
  eventName: string;
  properties?: Properties | undefined;
  workflows?: WorkflowBody[] | undefined;
  idempotencyKey?: string | undefined;
  occurredAt?: DateInput | undefined;
}

export interface WorkflowBody {
  campaignId: string;
  recipients: Recipient[];
}

export interface SendBody {
  notifId: string;
  /** Must include `recipients`. */
  properties: Properties & { recipients: Recipient[] };
}

export interface IdentifyBody {
  environmentId: string;
  subjectA: Identity;
  subjectB: Identity;
  consentBasis: string;
  expiresAt?: DateInput | undefined;
}

export interface DetachBody {
  environmentId: string;
  subject: Identity;
}

export interface SubscribeBody {
  resourceId: string;
  subscriberId: string;
  meta?: Properties | undefined;
}

export interface UnsubscribeBody {
  resourceId: string;
  subscriberId: string;
}

// The encoders below write the fields in the order of the Go producer's types (schema.Track,
// schema.Recipient...), and maps sorted, so that a body is byte-identical to the Go producer's.

function recipient(r: Recipient): Ordered {
  if (r === null || typeof r !== "object") return r as never; // left for the schema to refuse
  const extra = Object.keys(r)
    .filter((k) => k !== "id" && k !== "email")
    .map((k) => [k, r[k]] as const);
  return new Ordered([["id", r.id ?? ""], ["email", r.email ?? ""], ...sortUTF8(extra)]);
}

function sortUTF8(entries: (readonly [string, unknown])[]): (readonly [string, unknown])[] {
  return entries.sort((a, b) => compareUTF8(a[0], b[0]));
}

function recipients(rs: Recipient[] | undefined | null): unknown {
  if (rs === undefined || rs === null) return [];
  if (!Array.isArray(rs)) return rs;
  return rs.map(recipient);
}

function workflow(w: WorkflowBody): Ordered {
  return new Ordered([
    ["campaignId", w.campaignId],
    ["recipients", recipients(w.recipients)],
  ]);
}

/** Formats a date as the SDKs send it: UTC with milliseconds, 2026-03-01T12:00:00.000Z. */
export function isoDate(d: DateInput, path: string): string {
  if (d instanceof Date) {
    if (Number.isNaN(d.getTime())) throw invalid(path, "must be a valid date");
    return d.toISOString();
  }
  if (typeof d !== "string") throw invalid(path, "must be a Date or an RFC 3339 date-time string");
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/.exec(d);
  if (m === null) {
    throw invalid(path, "must be an RFC 3339 date-time with a time zone, e.g. 2026-03-01T12:00:00.000Z");
  }
  const [y, mo, day, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // Fractions beyond milliseconds are cut, not rounded, as Go's time formatting does.
  const ms = Number(((m[7] ?? "") + "000").slice(0, 3));
  const offset = m[8] === undefined ? 0 : (m[8] === "-" ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10]));
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, day);
  t.setUTCHours(h, mi, s, ms);
  if (
    t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== day ||
    h > 23 || mi > 59 || s > 59 || Number(m[9] ?? 0) > 23 || Number(m[10] ?? 0) > 59
  ) {
    throw invalid(path, "is not a valid date-time");
  }
  return new Date(t.getTime() - offset * 60_000).toISOString();
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError("invalid_message", [{ path, message }]);
}

function identity(i: Identity): unknown {
  if (i === null || typeof i !== "object") return i;
  return new Ordered([
    ["type", i.type ?? ""],
    ["identifier", i.identifier ?? ""],
  ]);
}

/** Encodes a track body: eventName, properties ({} when absent), workflows, idempotencyKey, occurredAt. */
export function encodeTrack(t: TrackBody): string {
  return encodeJSON(
    new Ordered([
      ["eventName", t.eventName ?? ""],
      ["properties", t.properties ?? {}],
      ["workflows", t.workflows && t.workflows.length > 0 ? t.workflows.map(workflow) : undefined],
      ["idempotencyKey", t.idempotencyKey ? t.idempotencyKey : undefined],
      ["occurredAt", t.occurredAt === undefined ? undefined : isoDate(t.occurredAt, "occurredAt")],
    ]),
  );
}

export function encodeWorkflow(w: WorkflowBody): string {
  return encodeJSON(workflow(w));
}

/** Encodes a send body; properties.recipients are written as recipients (id, email, then the rest). */
export function encodeSend(s: SendBody): string {
  let props: unknown = s.properties ?? {};
  if (props !== null && typeof props === "object" && !Array.isArray(props)) {
    const p = props as Properties;
    if (Array.isArray(p.recipients)) props = { ...p, recipients: recipients(p.recipients as Recipient[]) };
  }
  return encodeJSON(
    new Ordered([
      ["notifId", s.notifId ?? ""],
      ["properties", props],
    ]),
  );
}

export function encodeIdentify(b: IdentifyBody): string {
  return encodeJSON(
    new Ordered([
      ["environmentId", b.environmentId ?? ""],
      ["subjectA", identity(b.subjectA)],
      ["subjectB", identity(b.subjectB)],
      ["consentBasis", b.consentBasis ?? ""],
      ["expiresAt", b.expiresAt === undefined ? undefined : isoDate(b.expiresAt, "expiresAt")],
    ]),
  );
}

export function encodeDetach(b: DetachBody): string {
  return encodeJSON(
    new Ordered([
      ["environmentId", b.environmentId ?? ""],
      ["subject", identity(b.subject)],
    ]),
  );
}

/** Encodes a subscribe body: resourceId, subscriberId, then the meta keys sorted (a meta key of the same name is dropped). */
export function encodeSubscribe(b: SubscribeBody): string {
  const meta = Object.entries(b.meta ?? {}).filter(([k]) => k !== "resourceId" && k !== "subscriberId");
  return encodeJSON(
    new Ordered([
      ["resourceId", b.resourceId ?? ""],
      ["subscriberId", b.subscriberId ?? ""],
      ...sortUTF8(meta),
    ]),
  );
}

export function encodeUnsubscribe(b: UnsubscribeBody): string {
  return encodeJSON(
    new Ordered([
      ["resourceId", b.resourceId ?? ""],
      ["subscriberId", b.subscriberId ?? ""],
    ]),
  );
}
