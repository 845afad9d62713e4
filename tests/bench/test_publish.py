"""Grafana annotation: never raises, and reaches a real Grafana when GRAFANA_URL is set (no
Grafana server can be installed here, so that test only runs where one is configured)."""

from __future__ import annotations

import os
import time

import pytest

from benchwatch.bench.publish import grafana_annotation
from benchwatch.services import free_port


def test_no_grafana_configured_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    assert grafana_annotation("pass", "x", []) is False


def test_unreachable_grafana_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_URL", f"http://127.0.0.1:{free_port()}")
    assert grafana_annotation("fail", "canary failed", ["model:digits"]) is False


@pytest.mark.skipif(not os.environ.get("GRAFANA_URL"), reason="GRAFANA_URL not set")
def test_annotation_reaches_a_real_grafana() -> None:
    from grafana_client import GrafanaApi

    tag = f"test-{time.time_ns()}"
    assert grafana_annotation("pass", "benchwatch test annotation", [tag])
    api = GrafanaApi.from_url(os.environ["GRAFANA_URL"],
                              credential=os.environ.get("GRAFANA_TOKEN") or None)
    found = api.annotations.get_annotation(tags=[tag])
    assert found and "benchwatch test annotation" in found[0]["text"]
