#!/usr/bin/env bash
# Builds a pinned Prometheus 3 (with the OTLP receiver and native histograms) from the Go
# module proxy, once. The binary is cached outside the checkout, keyed by version, so a clean
# CI checkout reuses it. Prints the binary's path on stdout; progress goes to stderr.
# Built with static, file and HTTP service discovery only (build tag remove_all_sd: the cloud
# and Kubernetes discovery SDKs are most of the compile time); for Kubernetes run the official
# image. Go toolchain required; the first build's time is printed.
set -euo pipefail
VERSION="${BENCHWATCH_PROMETHEUS3_VERSION:-v0.316.0}"   # Go module version of Prometheus 3
CACHE="${BENCHWATCH_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/benchwatch/bin}"
TAGS="remove_all_sd"
OUT="$CACHE/prometheus-$VERSION-$TAGS"
if [ -x "$OUT" ]; then
    echo "$OUT"
    exit 0
fi
command -v go >/dev/null || { echo "build_prometheus3: Go is required (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$CACHE"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "build_prometheus3: building Prometheus $VERSION (first time only, several minutes)" >&2
GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
    go install -tags "$TAGS" "github.com/prometheus/prometheus/cmd/prometheus@$VERSION" >&2
mv "$tmp/prometheus" "$OUT.partial" && mv "$OUT.partial" "$OUT"   # atomic: no half-built binary
echo "build_prometheus3: built in $(( $(date +%s) - start )) s -> $OUT" >&2
echo "$OUT"
