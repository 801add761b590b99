// Copies the JSON Schemas the Go module ships (schema/jsonschema/) into this package (schemas/),
// so that the Node producer validates with the same documents as the bridge. With --check it
// changes nothing and exits 1 when the copies have drifted from the originals.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

// --src and --dst name other directories (the tests use them to show that drift is caught).
/** @param {string} name @param {string} def @returns {string} */
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  return v ?? fileURLToPath(new URL(def, import.meta.url));
};
const src = arg("--src", "../../../schema/jsonschema/");
const dst = arg("--dst", "../schemas/");
const check = process.argv.includes("--check");

const wanted = readdirSync(src).filter((f) => f.endsWith(".schema.json")).sort();
const have = readdirSync(dst, { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith(".schema.json"))
  .map((e) => e.name)
  .sort();
/** @type {string[]} */
const problems = [];
for (const name of wanted) {
  const data = readFileSync(join(src, name));
  let copy;
  try {
    copy = readFileSync(join(dst, name));
  } catch {
    copy = undefined;
  }
  if (copy !== undefined && copy.equals(data)) continue;
  if (check) {
    problems.push(`${name}: ${copy === undefined ? "missing" : "differs from schema/jsonschema/" + name}`);
  } else {
    mkdirSync(dst, { recursive: true });
    writeFileSync(join(dst, name), data);
    console.log(`copied ${name}`);
  }
}
for (const name of have) {
  if (wanted.includes(name)) continue;
  if (check) problems.push(`${name}: no longer in schema/jsonschema/`);
  else {
    rmSync(join(dst, name));
    console.log(`removed ${name}`);
  }
}
if (problems.length > 0) {
  console.error("schemas/ has drifted from schema/jsonschema/ (run npm run sync-schemas):");
  for (const p of problems) console.error("  " + p);
  process.exit(1);
}
