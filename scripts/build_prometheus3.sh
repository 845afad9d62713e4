#!/usr/bin/env bash
# Builds a pinned Prometheus 3 (with the OTLP receiver and native histograms) from the Go
# module proxy, once. The binary is cached outside the checkout, keyed by version, so a clean
# CI checkout reuses it. Prints the binary's path on stdout; progress goes to stderr.
# Built with static, file and HTTP service discovery only (build tag remove_all_sd: the cloud
# and Kubernetes discovery SDKs are most of the compile time); for Kubernetes run the official
# image. Go toolchain required; the first build's time is printed.
set -euo pipefail
VERSION="${BENCHWATCH_PROMETHEUS3_VERSION:-v0.316.0}"   # Go module version of Prometheus 3
source "$(dirname "${BASH_SOURCE[0]}")/go_build.sh"   # CACHE, go_build_start, go_build_install
TAGS="remove_all_sd"
OUT="$CACHE/prometheus-$VERSION-$TAGS"
go_build_start build_prometheus3 "$OUT"
echo "build_prometheus3: building Prometheus $VERSION (first time only, several minutes)" >&2
GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
    go install -tags "$TAGS" "github.com/prometheus/prometheus/cmd/prometheus@$VERSION" >&2
go_build_install build_prometheus3 "$tmp/prometheus" "$OUT"
