// The schemas this package validates with are copies of those the Go module ships; a copy that
// differs from its original fails here (fix: npm run sync-schemas).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("../../scripts/sync-schemas.mjs", import.meta.url));
const original = fileURLToPath(new URL("../../../../schema/jsonschema/", import.meta.url));
const copies = fileURLToPath(new URL("../../schemas/", import.meta.url));

test("schemas/ holds exactly the Go module's schemas, byte for byte", () => {
  const want = readdirSync(original).filter((f) => f.endsWith(".schema.json")).sort();
  const have = readdirSync(copies).filter((f) => f.endsWith(".schema.json")).sort();
  assert.deepEqual(have, want);
  assert.equal(want.length, 8);
  for (const name of want) {
    assert.ok(readFileSync(join(copies, name)).equals(readFileSync(join(original, name))), `${name} drifted`);
  }
  const r = spawnSync(process.execPath, [script, "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("the drift check fails on a changed, missing or extra schema, and the sync repairs it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "notifizz-schemas-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(copies, dir, { recursive: true });
  writeFileSync(join(dir, "track.schema.json"), "{}\n");
  rmSync(join(dir, "send.schema.json"));
  writeFileSync(join(dir, "old.schema.json"), "{}\n");

  const check = spawnSync(process.execPath, [script, "--check", "--dst", dir], { encoding: "utf8" });
  assert.equal(check.status, 1);
  assert.match(check.stderr, /track\.schema\.json: differs/);
  assert.match(check.stderr, /send\.schema\.json: missing/);
  assert.match(check.stderr, /old\.schema\.json: no longer/);

  const sync = spawnSync(process.execPath, [script, "--dst", dir], { encoding: "utf8" });
  assert.equal(sync.status, 0, sync.stderr);
  const again = spawnSync(process.execPath, [script, "--check", "--dst", dir], { encoding: "utf8" });
  assert.equal(again.status, 0, again.stderr);
});
