"""Prometheus 3 and the OpenTelemetry Collector for tests: real binaries built from the Go module
proxy by scripts/build_prometheus3.sh and scripts/build_otelcol.sh (pinned, cached outside the
checkout; scripts/bootstrap.sh builds both). Running a script again only prints the cached
binary's path, so the tests find the very binaries CI built.

Export paths the dashboard/rule tests run (`EXPORTS`):
- "pull-2.42": the Debian Prometheus 2.42 scrapes the probe's classic buckets (the quick demo),
- "pull-3": Prometheus 3 scrapes the same endpoint,
- "otlp-3": the probe pushes OTLP with exponential histograms to Prometheus 3's OTLP receiver
  (every histogram a native one, no `_bucket` series), the recommended production setup.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchwatch import services

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = ("pull-2.42", "pull-3", "otlp-3")
PROMETHEUS3_FLAGS = (
    "--web.enable-otlp-receiver",  # POST /api/v1/otlp/v1/metrics
    "--web.enable-remote-write-receiver",  # the Collector's prometheusremotewrite exporter
    "--enable-feature=exemplar-storage",
)
@functools.cache
def built(script: str) -> str:
    """The binary `scripts/<script>` built and cached (builds it on first use: minutes)."""
    done = subprocess.run([str(ROOT / "scripts" / script)], capture_output=True, text=True,  # noqa: S603
                          check=False, timeout=3600)
    if done.returncode != 0:
        raise services.ServiceError(f"scripts/{script} failed (Go needed; scripts/bootstrap.sh "
                                    f"installs what it can):\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def prometheus3() -> str:
    return built("build_prometheus3.sh")


def otelcol() -> str:
    return built("build_otelcol.sh")


def start_prometheus3(targets: Mapping[str, Sequence[str]], **kwargs: Any) -> services.Prometheus:
    return services.start_prometheus(targets, binary=prometheus3(), flags=PROMETHEUS3_FLAGS, **kwargs)


def otlp_url(prom: services.Prometheus) -> str:
    """Prometheus 3's OTLP receiver, as `configure(otlp_endpoint=...)` takes it."""
    return f"{prom.url}/api/v1/otlp"


def start_for(export: str, targets: Mapping[str, Sequence[str]], **kwargs: Any) -> services.Prometheus:
    """The Prometheus that `export` (one of EXPORTS) runs against."""
    if export not in EXPORTS:
        raise ValueError(f"export must be one of {EXPORTS}, got {export!r}")
    if export == "pull-2.42":
        return services.start_prometheus(targets, **kwargs)
    return start_prometheus3(targets, **kwargs)


def probe_export(export: str, probe_port: int, prometheus_url: str) -> dict[str, Any]:
    """`probes.configure` arguments for `export`: a pull endpoint, or OTLP exponential push."""
    if export == "otlp-3":
        return {"prometheus_port": 0, "otlp_endpoint": f"{prometheus_url}/api/v1/otlp",
                "histograms": "exponential"}
    return {"prometheus_port": probe_port}
