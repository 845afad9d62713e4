#!/usr/bin/env bash
# Idempotent set-up shared by the README's two commands: system packages, .venv, Kafka jars.
# Fast when everything is already there (each step checks before it acts).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Prometheus 3 (OTLP receiver, native histograms) and the OpenTelemetry Collector, built once
# from the Go module proxy and cached outside the checkout (scripts/build_*.sh print how long
# the first build took). The OTLP and Prometheus 3 tests need them; the quick demo runs on
# Debian's Prometheus 2.42. Started first and in the background (they need neither apt nor
# pip): on a fresh machine they are the longest step (about 9 min on 2 cores) and compile
# while apt and pip install.
# `--no-go` (scripts/demo.sh): the demo needs neither, so it does not wait for them.
go_builds=()
if [ "${1:-}" = "--no-go" ]; then
    :
elif command -v go >/dev/null; then
    scripts/build_prometheus3.sh >/dev/null & go_builds+=($!)
    scripts/build_otelcol.sh >/dev/null & go_builds+=($!)
else
    echo "bootstrap: Go not found (https://go.dev/dl/; 1.21+ fetches the 1.26 toolchain these modules need): Prometheus 3 and otelcol are not" \
         "built, so tests/prometheus3, tests/deploy/test_stack_versions.py and the Prometheus 3 runs of" \
         "tests/grafana/test_promql.py will fail" >&2
fi

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || [ -x /usr/bin/prometheus-alertmanager ] || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v mvn >/dev/null || need_apt+=(maven)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.benchwatch-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing Python packages into .venv (first run downloads PyTorch, a few GB)"
    .venv/bin/pip install -q --upgrade pip wheel setuptools
    .venv/bin/pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
fi

# Kafka broker jars from Maven Central (only for the Kafka transport and its tests).
if [ -x scripts/kafka.sh ]; then
    scripts/kafka.sh install
fi

for pid in "${go_builds[@]}"; do
    wait "$pid"   # a failed build fails the bootstrap (set -e), with the build's own message
done
