#!/usr/bin/env bash
# Checks the Helm chart (deploy/helm/notifizz-bridge): installs helm from the Go module proxy
# when the pinned version is not installed yet, lints the chart with each of its ci/ values
# files, and runs the chart's tests (deploy/helm/test, a Go module of its own), which render
# the chart with helm for a matrix of values and decode every object into the Kubernetes types.
set -euo pipefail
cd "$(dirname "$0")/.."
gobin="$(go env GOPATH)/bin"
export PATH="$PATH:/usr/local/go/bin:$gobin"

# helm v4 from its module: Debian packages no helm, and nothing but package registries can be
# reached. A fresh build takes a few minutes; later runs reuse the binary.
HELM_VERSION=v4.3.2
if ! go version -m "$gobin/helm" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+helm\.sh/helm/v4[[:space:]]+${HELM_VERSION}[[:space:]]"; then
	echo "== installing helm $HELM_VERSION"
	go install "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"
fi
export HELM="$gobin/helm"

echo "== helm: the chart's copy of the alert rules"
deploy/helm/sync-alerts.sh --check

echo "== helm lint"
for values in deploy/helm/notifizz-bridge/ci/*-values.yaml; do
	"$HELM" lint --strict deploy/helm/notifizz-bridge -f "$values"
done

echo "== helm: chart tests"
# The tests run `notifizz-bridge check` on the rendered config: use the binary the static build
# made, or let them build one.
if [ -x bin/notifizz-bridge ]; then
	export NOTIFIZZ_BRIDGE_BIN="$PWD/bin/notifizz-bridge"
fi
cd deploy/helm/test
go mod verify
go vet ./...
if command -v staticcheck >/dev/null 2>&1; then
	staticcheck ./...
fi
go test -count=1 ./...
