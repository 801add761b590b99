#!/usr/bin/env bash
# Checks deploy/monitoring: the alert rules with promtool (check rules, and the unit tests of
# alerts_test.yaml), and, in that directory's own Go module, that every metric the dashboard and
# the rules name is one the bridge exports (metrics.txt, which the main module's
# TestMetricsListMatchesScrape keeps equal to a real scrape).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"

if ! command -v promtool >/dev/null 2>&1; then
	echo "== installing promtool (Debian package prometheus)"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo=sudo
	fi
	# The package would start its Prometheus service; only promtool is wanted.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod +x "$policy"
		trap '$sudo rm -f "$policy"' EXIT
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version | head -1

echo "== promtool check rules"
promtool check rules deploy/monitoring/alerts.yaml

echo "== promtool test rules"
(cd deploy/monitoring && promtool test rules alerts_test.yaml)

echo "== deploy/monitoring: dashboard and rules against the exported metrics"
(
	cd deploy/monitoring
	go mod download
	go mod verify
	go vet ./...
	if command -v staticcheck >/dev/null 2>&1; then
		staticcheck ./...
	fi
	go test -count=1 ./...
)
