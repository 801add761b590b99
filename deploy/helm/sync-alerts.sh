#!/usr/bin/env bash
# Copies the project's alert rules (deploy/monitoring/alerts.yaml) into the chart, whose
# PrometheusRule serves them: a chart can read no file outside its own directory.
# Run it after every change to the rules; the chart's tests fail while the copy differs.
#
# Usage: deploy/helm/sync-alerts.sh [--check]   (--check: only report a difference, exit 1)
set -euo pipefail
cd "$(dirname "$0")"
src=../monitoring/alerts.yaml
dst=notifizz-bridge/files/alerts.yaml
if [ "${1:-}" = "--check" ]; then
	if ! cmp -s "$src" "$dst"; then
		echo "sync-alerts: $dst differs from $src: run deploy/helm/sync-alerts.sh" >&2
		exit 1
	fi
	exit 0
fi
cp "$src" "$dst"
echo "sync-alerts: copied $src to $dst"
