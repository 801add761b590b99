import { ValidationError } from "./errors.js";

/**
 * An object whose keys are written in the given order. Every other object is written with its
 * keys sorted, as Go's encoding/json writes maps: the Go producer's structs have a fixed field
 * order and its maps are sorted, and bodies must be byte-identical to the Go producer's for the
 * Nats-Msg-Id (a hash of the body) to be.
 */
export class Ordered {
  constructor(readonly entries: ReadonlyArray<readonly [string, unknown]>) {}
}

/** The deepest nesting of objects and arrays the bridge accepts, the body itself being the first level. */
export const MAX_DEPTH = 64;

/**
 * Encodes v as JSON exactly as the Go producer does (github.com/goccy/go-json with its defaults,
 * which are those of encoding/json): object keys sorted by their UTF-8 bytes; `<`, `>`, `&`,
 * U+2028 and U+2029 escaped as \u003c...; numbers in the shortest form that round-trips, with
 * -0 kept. As JSON.stringify, `toJSON` is called and undefined object values are left out;
 * unlike it, a number that is not finite, a function or a symbol is refused, and a bigint is
 * written as its digits.
 */
export function encodeJSON(v: unknown): string {
  const out: string[] = [];
  write(out, v, 0, "");
  return out.join("");
}

function fail(path: string, message: string): never {
  throw new ValidationError("invalid_message", [{ path, message }]);
}

function write(out: string[], v: unknown, depth: number, path: string): void {
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON: (key: string) => unknown }).toJSON("");
  }
  switch (typeof v) {
    case "string":
      out.push(quote(v));
      return;
    case "number":
      if (!Number.isFinite(v)) fail(path, "must be a finite number");
      out.push(Object.is(v, -0) ? "-0" : String(v));
      return;
    case "bigint":
      out.push(v.toString());
      return;
    case "boolean":
      out.push(v ? "true" : "false");
      return;
    case "undefined":
      out.push("null");
      return;
    case "function":
    case "symbol":
      fail(path, `a ${typeof v} cannot be sent`);
  }
  if (v === null) {
    out.push("null");
    return;
  }
  // depth counts the containers around v; v itself is one more level.
  if (depth >= MAX_DEPTH) {
    throw new ValidationError("invalid_json", [
      { path, message: `nesting deeper than ${MAX_DEPTH} levels` },
    ]);
  }
  if (Array.isArray(v)) {
    out.push("[");
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.push(",");
      write(out, v[i], depth + 1, `${path}[${i}]`);
    }
    out.push("]");
    return;
  }
  const entries =
    v instanceof Ordered
      ? v.entries
      : Object.keys(v as object)
          .sort(compareUTF8)
          .map((k) => [k, (v as Record<string, unknown>)[k]] as const);
  out.push("{");
  let first = true;
  for (const [k, val] of entries) {
    if (val === undefined) continue;
    if (!first) out.push(",");
    first = false;
    out.push(quote(k), ":");
    write(out, val, depth + 1, path === "" ? k : `${path}.${k}`);
  }
  out.push("}");
}

/** Orders strings by their UTF-8 bytes, that is by code point (not by UTF-16 unit, as sort does). */
export function compareUTF8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

const HEX = "0123456789abcdef";

function quote(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20) {
      switch (c) {
        case 0x08: esc = "\\b"; break;
        case 0x0c: esc = "\\f"; break;
        case 0x0a: esc = "\\n"; break;
        case 0x0d: esc = "\\r"; break;
        case 0x09: esc = "\\t"; break;
        default: esc = "\\u00" + HEX[c >> 4]! + HEX[c & 0xf]!;
      }
    } else if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = "\\\\";
    else if (c === 0x3c) esc = "\\u003c";
    else if (c === 0x3e) esc = "\\u003e";
    else if (c === 0x26) esc = "\\u0026";
    else if (c === 0x2028) esc = "\\u2028";
    else if (c === 0x2029) esc = "\\u2029";
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair, written as is
        continue;
      }
      // A lone surrogate cannot be encoded in UTF-8; Go writes invalid UTF-8 as U+FFFD.
      esc = "\\ufffd";
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}
