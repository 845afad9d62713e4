#!/usr/bin/env bash
# Builds a pinned OpenTelemetry Collector (otelcol) with the collector builder from the Go module
# proxy, once: OTLP receiver, batch and memory-limiter processors, Prometheus exporter,
# Prometheus remote-write exporter, health-check extension (what
# benchwatch/assets/deploy/otel-collector.yaml uses). The binary is cached outside
# the checkout, keyed by version, so a clean CI checkout reuses it. Prints the binary's path on
# stdout; progress goes to stderr. First build: about 6-12 minutes on 2 cores (Go required).
set -euo pipefail
CORE="${BENCHWATCH_OTELCOL_VERSION:-v0.165.0}"      # go.opentelemetry.io/collector components
CONTRIB="${BENCHWATCH_OTELCOL_CONTRIB_VERSION:-v0.165.1}"
source "$(dirname "${BASH_SOURCE[0]}")/go_build.sh"   # CACHE, go_build_start, go_build_install
OUT="$CACHE/otelcol-$CORE-contrib-$CONTRIB"
go_build_start build_otelcol "$OUT"
echo "build_otelcol: building otelcol $CORE / contrib $CONTRIB (first time only, about 6-12 min on 2 cores)" >&2
GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
    go install "go.opentelemetry.io/collector/cmd/builder@$CORE" >&2
CONTRIB_MOD=github.com/open-telemetry/opentelemetry-collector-contrib
cat > "$tmp/builder.yaml" <<YAML
dist:
  name: otelcol-benchwatch
  description: OpenTelemetry Collector for benchwatch (OTLP in; Prometheus scrape and remote write out)
  output_path: $tmp/dist
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver $CORE
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor $CORE
  - gomod: go.opentelemetry.io/collector/processor/memorylimiterprocessor $CORE
extensions:
  - gomod: $CONTRIB_MOD/extension/healthcheckextension $CONTRIB
exporters:
  - gomod: $CONTRIB_MOD/exporter/prometheusexporter $CONTRIB
  - gomod: $CONTRIB_MOD/exporter/prometheusremotewriteexporter $CONTRIB
YAML
"$tmp/builder" --config "$tmp/builder.yaml" >&2
go_build_install build_otelcol "$tmp/dist/otelcol-benchwatch" "$OUT"
