"""The stack's Prometheus and Collector are the versions the project builds and tests.

scripts/build_prometheus3.sh and scripts/build_otelcol.sh pin the Go module versions (one source
of truth); deploy/compose.yaml and deploy/k8s must run the matching official images, and the
stack's Prometheus command line and config (deploy/prometheus.yml with the packaged rules) must
load in that very build: Prometheus 3 with the OTLP and remote-write receivers on.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchwatch import assets, rules
from tests.support.deploy_ports import DEPLOY, ROOT
from tests.support.prometheus3 import prometheus3

SCRIPTS = ROOT / "scripts"
# flags start_prometheus sets itself (paths, listen address, lifecycle, retention)
OWN_FLAGS = ("--config.file", "--storage.tsdb.path", "--storage.tsdb.retention.time",
             "--web.enable-lifecycle")


def _pinned(script: str, var: str) -> str:
    """The default of `VAR="${OVERRIDE:-vX.Y.Z}"` in scripts/<script>."""
    m = re.search(rf'^{var}="\$\{{\w+:-(v[\d.]+)\}}"', (SCRIPTS / script).read_text(), re.MULTILINE)
    assert m, f"scripts/{script} pins no {var}"
    return m.group(1)


def prometheus_release(module_version: str) -> str:
    """Go module v0.3XX.Y is Prometheus release v3.XX.Y (v0.316.0 -> v3.16.0)."""
    m = re.fullmatch(r"v0\.3(\d\d)\.(\d+)", module_version)
    assert m, f"{module_version} is not a Prometheus 3 module version"
    return f"v3.{int(m.group(1))}.{m.group(2)}"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _k8s_container(name: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / f"{name}.yaml").read_text())
    pod = next(d for d in docs if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]
    return dict(pod["containers"][0])


def test_release_mapping() -> None:
    assert prometheus_release("v0.316.0") == "v3.16.0"
    assert prometheus_release("v0.305.2") == "v3.5.2"


def test_images_are_the_built_versions() -> None:
    prom = f"prom/prometheus:{prometheus_release(_pinned('build_prometheus3.sh', 'VERSION'))}"
    otelcol = ("otel/opentelemetry-collector-contrib:"
               + _pinned("build_otelcol.sh", "CONTRIB").removeprefix("v"))
    services = _compose()["services"]
    assert services["prometheus"]["image"] == prom
    assert services["otel-collector"]["image"] == otelcol
    assert _k8s_container("prometheus")["image"] == prom
    assert _k8s_container("otel-collector")["image"] == otelcol


def test_k8s_runs_the_compose_prometheus_command() -> None:
    command = _compose()["services"]["prometheus"]["command"]
    assert _k8s_container("prometheus")["args"] == command
    assert {"--web.enable-otlp-receiver", "--web.enable-remote-write-receiver"} <= set(command)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.prometheus
def test_stack_prometheus_loads_in_the_built_prometheus3(prometheus: Any, tmp_path: Path) -> None:
    """deploy/prometheus.yml (native histograms scraped from the Collector), every packaged rule
    file, and the stack's flags: Prometheus 3 exits at start on anything it does not accept."""
    cfg = yaml.safe_load(assets.read_text("deploy/prometheus.yml"))
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    rules_dir = assets.copy(rules.RULES, tmp_path)
    cfg["rule_files"] = [str(rules_dir / "*.rules.yml")]
    command = _compose()["services"]["prometheus"]["command"]
    flags = [f for f in command if not f.startswith(OWN_FLAGS)]
    prom = prometheus({}, binary=prometheus3(), flags=flags, config=cfg)

    with urllib.request.urlopen(f"{prom.url}/api/v1/rules", timeout=10) as resp:  # noqa: S310
        groups = json.load(resp)["data"]["groups"]  # loaded before Prometheus reports ready
    assert {Path(g["file"]).name for g in groups} == {f.name for f in rules.rule_files()}
    # the receivers the OTLP path and the Collector's remote write post to (404 when off)
    assert _post(f"{prom.url}/api/v1/otlp/v1/metrics", b"",
                 {"Content-Type": "application/x-protobuf"}) == 200
    assert _post(f"{prom.url}/api/v1/write", b"\x00",  # snappy of an empty WriteRequest
                 {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                  "X-Prometheus-Remote-Write-Version": "0.1.0"}) == 204
