#!/usr/bin/env bash
# The Node producer (clients/node): install from the lock file, type-check, run the unit tests
# and the end-to-end test against the Go daemon, and check what npm would pack.
# Needs Node >= 20 with npm, and Go (the end-to-end test builds the daemon).
set -euo pipefail
cd "$(dirname "$0")/../clients/node"

echo "== node $(node --version), npm $(npm --version)"
npm ci --no-audit --no-fund
echo "== build"
npm run --silent build
# After the build: the tests import the built package (dist/), which the type check reads too.
echo "== type check"
npm run --silent typecheck
echo "== schemas in sync with schema/jsonschema"
npm run --silent check-schemas
echo "== tests"
node --test test/unit/ test/e2e/
echo "== npm pack --dry-run"
npm pack --dry-run
