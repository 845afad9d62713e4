#!/usr/bin/env bash
# The README's test command: set up what the tests need, then run the whole suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/mypy probes collector drift benchwatch
exec .venv/bin/python -m pytest -p no:cacheprovider -rsx "$@"
