import { readFileSync } from "node:fs";
import { Ajv2020, type ValidateFunction, type ErrorObject } from "ajv/dist/2020.js";
import { ValidationError, type Problem } from "./errors.js";
import type { Kind } from "./subject.js";
import { MAX_DEPTH } from "./json.js";

/** The largest body the bridge accepts, in bytes. */
export const MAX_BODY_BYTES = 1 << 20;

const SECRET_KEYS = new Set(["sdkSecretKey", "authSecretKey"]);

const ajv = new Ajv2020({
  allErrors: true,
  // Ajv's strict mode refuses valid draft 2020-12 that the schemas use on purpose: noSecrets
  // applies additionalProperties and items to values of any type, and requires keys it does not
  // declare.
  strict: false,
  // Dates carry a pattern as well as their format, so that formats need not be asserted.
  validateFormats: false,
});
const validators = new Map<Kind, ValidateFunction>();

/**
 * The validator of kind, compiled on first use from the JSON Schema the Go module ships
 * (copied into schemas/ by scripts/sync-schemas.mjs).
 */
function validatorOf(kind: Kind): ValidateFunction {
  let v = validators.get(kind);
  if (v === undefined) {
    const url = new URL(`../schemas/${kind}.schema.json`, import.meta.url);
    v = ajv.compile(JSON.parse(readFileSync(url, "utf8")) as object);
    validators.set(kind, v);
  }
  return v;
}

/**
 * Throws a ValidationError if the bridge would dead-letter body as a message of kind, with the
 * reason the bridge would give: too_large, invalid_json, secret_in_message or invalid_message.
 * An empty commit body is valid. The checks are the JSON Schema's plus the size and nesting
 * limits; what the bridge judges on reception (an occurredAt too far in the future) is left to it.
 */
export function validateBody(kind: Kind, body: string | Uint8Array): void {
  const text = typeof body === "string" ? body : new TextDecoder("utf-8", { fatal: false }).decode(body);
  const size = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength;
  if (size > MAX_BODY_BYTES) {
    throw new ValidationError("too_large", [
      { path: "", message: `body is ${size} bytes, more than the limit of ${MAX_BODY_BYTES}` },
    ]);
  }
  if (kind === "commit" && text.trim() === "") return;
  if (nesting(text) > MAX_DEPTH) {
    throw new ValidationError("invalid_json", [{ path: "", message: `nesting deeper than ${MAX_DEPTH} levels` }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError("invalid_json", [{ path: "", message: (err as Error).message }]);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("invalid_json", [{ path: "", message: "body must be a JSON object" }]);
  }
  const secrets: Problem[] = [];
  findSecrets(value, "", secrets);
  if (secrets.length > 0) throw new ValidationError("secret_in_message", secrets);
  const validate = validatorOf(kind);
  if (!validate(value)) {
    throw new ValidationError("invalid_message", problemsOf(validate.errors ?? []));
  }
}

/** The deepest nesting of objects and arrays in text, counting the outermost as 1. */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

function findSecrets(v: unknown, path: string, out: Problem[]): void {
  if (v === null || typeof v !== "object") return;
  if (Array.isArray(v)) {
    v.forEach((item, i) => findSecrets(item, `${path}[${i}]`, out));
    return;
  }
  for (const [k, item] of Object.entries(v)) {
    const p = path === "" ? k : `${path}.${k}`;
    if (SECRET_KEYS.has(k)) out.push({ path: p, message: "secret must not be sent on the bus" });
    else findSecrets(item, p, out);
  }
}

/** Ajv's errors as problems with Go-style paths (workflows[1].recipients[0].email), one per field. */
function problemsOf(errors: ErrorObject[]): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // Branches of a combinator repeat the error that matters; keep the leaf errors.
    if (e.keyword === "allOf" || e.keyword === "anyOf" || e.keyword === "if") continue;
    let path = pointerToPath(e.instancePath);
    let message = e.message ?? e.keyword;
    if (e.keyword === "required") {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      path = path === "" ? missing : `${path}.${missing}`;
      message = "required";
    }
    const id = `${path}\u0000${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ path, message });
  }
  return out;
}

function pointerToPath(pointer: string): string {
  if (pointer === "") return "";
  let out = "";
  for (const raw of pointer.slice(1).split("/")) {
    const tok = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^(0|[1-9][0-9]*)$/.test(tok)) out += `[${tok}]`;
    else out += out === "" ? tok : `.${tok}`;
  }
  return out;
}
