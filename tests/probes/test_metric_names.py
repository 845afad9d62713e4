"""probes.metric_names is the one list of names: the probe creates exactly its OTel names, and
the documented table (docs/probes.md) pairs them with its Prometheus names."""

from __future__ import annotations

import re
from pathlib import Path

from probes import metric_names as m
from probes.metrics import METRICS

DOC = Path(__file__).resolve().parents[2] / "docs" / "probes.md"


def _constants(otel: bool) -> set[str]:
    return {v for k, v in vars(m).items()
            if k.isupper() and isinstance(v, str) and k.startswith("OTEL_") == otel}


def test_the_probe_creates_only_named_instruments() -> None:
    assert set(METRICS) <= _constants(otel=True)
    assert m.OTEL_PROBE_MODELS not in METRICS  # an SDK instrument of the runtime, not the producer


def test_the_documented_table_matches_the_module() -> None:
    section = DOC.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 15
    for row in rows:
        otel_cell, prom_cell = row.split("|")[1:3]
        otel = re.findall(r"`([a-z_.]+)`", otel_cell)[0]
        assert otel in _constants(otel=True), row
        for prom in re.findall(r"`([a-z_]+)", prom_cell):
            base = re.sub(r"_(bucket|sum|count)$", "", prom)
            assert prom in _constants(otel=False) or base in _constants(otel=False), row
