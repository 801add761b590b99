#!/usr/bin/env bash
# Builds the notifizz-bridge binary exactly as the Dockerfile's build stage does (same
# environment, same flags), so that CI catches a change that would break the image, then
# smoke-tests it.
#
# Usage: .ci/build-static.sh [OUTPUT]   (default: bin/notifizz-bridge, which git ignores)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bin/notifizz-bridge}"

# What the binary says it is (the Dockerfile takes the same two as build arguments).
if [ -z "${REVISION:-}" ] && git rev-parse --git-dir >/dev/null 2>&1; then
	REVISION="$(git rev-parse HEAD)"
	git diff --quiet HEAD || REVISION="$REVISION-dirty"
fi
REVISION="${REVISION:-}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo "(devel)")}"

# Keep this line identical to the RUN go build line of the Dockerfile.
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.stampedVersion=${VERSION} -X main.stampedRevision=${REVISION}" -o "$out" ./cmd/notifizz-bridge

# The final image has no libc, so the binary must not need a dynamic loader.
if command -v file >/dev/null 2>&1 && file "$out" | grep -q 'dynamically linked'; then
	echo "build-static: $out is dynamically linked" >&2
	exit 1
fi

# The image must tell what it is: the stamped revision shows in the version line.
version_line=$("$out" --version)
echo "$version_line"
if [ -n "$REVISION" ] && [[ "$version_line" != *"${REVISION%-dirty}"* ]]; then
	echo "build-static: the version line does not show revision $REVISION" >&2
	exit 1
fi
# The image ships config.example.yaml as its default config; it must stay valid. NATS_URL is
# unset so that a server named in the caller's environment does not change the check.
env -u NATS_URL "$out" check --dry-run --config config.example.yaml >/dev/null
echo "build-static: $out OK"
