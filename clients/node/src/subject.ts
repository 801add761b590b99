import { ValidationError } from "./errors.js";

/** The first part of every subject unless configured otherwise (the bridge's stream.subjectPrefix). */
export const DEFAULT_PREFIX = "notifizz";

/** The longest event key, in bytes of UTF-8. */
export const MAX_KEY_LEN = 255;

/** Kinds of the v1 profile: the SDK's track, workflow and send, and the commit that closes an event. */
export const KINDS_V1 = ["track", "workflow", "commit", "send"] as const;
/** Kinds only a bridge with notifizz.api: v2 sends; a v1 bridge dead-letters them (unsupported). */
export const KINDS_V2 = ["identify", "detach", "subscribe", "unsubscribe"] as const;
/** Every kind of message on the bus. */
export const ALL_KINDS = [...KINDS_V1, ...KINDS_V2] as const;

export type Kind = (typeof ALL_KINDS)[number];

// Whitespace as Go's unicode.IsSpace sees it, and control characters (unicode.IsControl: C0, DEL, C1).
const BAD = /[\u0000-\u0020\u007f-\u009f\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0085\u00a0]/u;

function tokenProblem(tok: string): string {
  if (tok === "") return "must not be empty";
  if (tok.includes(".")) return "must be a single subject token (no '.')";
  if (tok.includes("*") || tok.includes(">")) return "must not contain the wildcards '*' or '>'";
  if (BAD.test(tok)) return "must not contain whitespace or control characters";
  if (!tok.isWellFormed()) return "must be valid UTF-8";
  return "";
}

/** Throws a ValidationError (unknown_subject) unless key can be the last token of a subject. */
export function validateKey(key: string): void {
  if (typeof key !== "string") {
    throw new ValidationError("unknown_subject", [{ path: "key", message: "must be a string" }]);
  }
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_LEN) {
    throw new ValidationError("unknown_subject", [
      { path: "key", message: `must be at most ${MAX_KEY_LEN} bytes` },
    ]);
  }
  const p = tokenProblem(key);
  if (p !== "") throw new ValidationError("unknown_subject", [{ path: "key", message: p }]);
}

/** Throws a ValidationError (unknown_subject) unless prefix can start a subject (one or more tokens). */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== "string" || prefix === "") {
    throw new ValidationError("unknown_subject", [{ path: "prefix", message: "must not be empty" }]);
  }
  prefix.split(".").forEach((tok, i) => {
    const p = tokenProblem(tok);
    if (p !== "") {
      throw new ValidationError("unknown_subject", [
        { path: "prefix", message: `token ${i + 1} ${p}` },
      ]);
    }
  });
}

/** Returns `<prefix>.<kind>.<key>` after validating each part. */
export function subjectFor(prefix: string, kind: Kind, key: string): string {
  validatePrefix(prefix);
  if (!(ALL_KINDS as readonly string[]).includes(kind)) {
    throw new ValidationError("unknown_subject", [
      { path: "kind", message: `unknown kind ${JSON.stringify(kind)} (want ${ALL_KINDS.join(", ")})` },
    ]);
  }
  validateKey(key);
  return `${prefix}.${kind}.${key}`;
}
