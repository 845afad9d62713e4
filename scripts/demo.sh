#!/usr/bin/env bash
# The README's main command: set up, then run `benchwatch demo` on embedded defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh --no-go   # the demo runs on Debian's Prometheus 2.42
exec .venv/bin/benchwatch demo "$@"
