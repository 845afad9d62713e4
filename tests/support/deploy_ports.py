"""Helpers for the deploy tests: the default ports, as docs/architecture.md pins them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# docs/architecture.md "Default ports" names -> service names in compose/k8s
PORT_NAMES = {
    "probe metrics": ("model", 9464),
    "drift service metrics": ("drift", 9462),
    "collector HTTP ingest": ("drift", 9463),
    "example model server": ("model", 8000),
    "Prometheus": ("prometheus", 9090),
    "Alertmanager": ("alertmanager", 9093),
    "Kafka": ("kafka", 9092),
}


def documented_ports() -> dict[str, int]:
    """name -> port from the architecture doc's one-line port list (so the doc is checked too)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = " ".join(text.split("## Default ports", 1)[1].split("##", 1)[0].split())
    out = {}
    for name in PORT_NAMES:
        m = re.search(re.escape(name) + r"\s+(\d+)", section)
        assert m, f"docs/architecture.md lists no port for {name!r}"
        out[name] = int(m.group(1))
    return out
