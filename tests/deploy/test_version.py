"""The version lives in probes/_version.py only: packaging reads it, the deploy files' image
tags and the OTel scopes must agree with it."""

from __future__ import annotations

import re
import tomllib

import yaml

import benchwatch
from benchwatch import promtext
from collector import IngestReport
from drift.service.metrics import ServiceMetrics
from probes import metric_names as m
from probes._version import __version__
from probes.export import SCOPE
from tests.support.deploy_ports import DEPLOY, ROOT


def test_packaging_reads_the_version_from_probes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "probes._version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_code_reports_the_one_version() -> None:
    assert benchwatch.__version__ == __version__
    assert SCOPE.version == __version__


def test_drift_meter_carries_the_version() -> None:
    sm = ServiceMetrics("127.0.0.1", 0, totals=lambda: IngestReport(0, 0), alert_counts=dict)
    try:
        s = promtext.read(sm.url)
    finally:
        sm.close()
    [labels] = s.get(m.BASELINE_REFUSED)
    assert dict(labels)["otel_scope_version"] == __version__


def test_image_tags_are_the_version() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    ours = [s["image"] for s in compose["services"].values()
            if s["image"].split(":")[0] == "benchwatch"]
    assert ours and set(ours) == {f"benchwatch:{__version__}"}
    kust = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    tags = {i["newTag"] for i in kust["images"] if i["name"] == "benchwatch"}
    assert tags == {__version__}
    built = re.findall(r"-t benchwatch:(\S+)", (DEPLOY / "Dockerfile").read_text())
    assert built == [__version__]
