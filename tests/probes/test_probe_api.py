"""The public surface: pinned `__all__`, light imports, the port range for workers."""

from __future__ import annotations

import subprocess
import sys

import pytest

import probes
from benchwatch.services import free_port
from probes import ConfigError, PrometheusEndpoint


def test_public_api_is_pinned() -> None:
    assert sorted(probes.__all__) == sorted([
        "DEFAULT_REGISTRY", "BenchwatchError", "ConfigError", "DeviceReading", "EnergySource", "Feature",
        "MissingExtraError", "Probe", "ProbeMiddleware", "ProbeSpan", "PrometheusEndpoint", "Registry",
        "Runtime", "Sample", "SampleError", "Sink", "SummarizeError", "configure", "current", "probe",
        "shutdown", "summarize_output",
    ])
    for name in probes.__all__:
        assert getattr(probes, name) is not None


def test_import_pulls_in_no_heavy_optional_dependency() -> None:
    code = ("import sys, probes, probes.sinks; "
            "print(','.join(m for m in ('torch', 'onnxruntime', 'starlette', 'fastapi', 'pynvml', 'kafka', "
            "'requests', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_port_span_takes_the_next_free_port_and_fails_clearly_when_all_taken() -> None:
    base = free_port()
    a = PrometheusEndpoint("127.0.0.1", base, port_span=3)
    try:
        b = PrometheusEndpoint("127.0.0.1", base, port_span=3)
        try:
            assert a.port == base and b.port != base and base <= b.port < base + 3
            with pytest.raises(ConfigError, match="prometheus_port_span"):
                PrometheusEndpoint("127.0.0.1", base, port_span=1)
        finally:
            b.close()
    finally:
        a.close()
    with pytest.raises(ConfigError, match="span"):
        PrometheusEndpoint("127.0.0.1", 65535, port_span=2)
