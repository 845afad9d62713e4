"""deploy/compose.yaml: parses, ports/images agree with the code, every mounted file exists.

Docker cannot run on these machines (client only, no daemon, no compose plugin), so the stack is
not started here; this checks its structure against the code and the files it mounts.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_ports import DEPLOY, PORT_NAMES, ROOT, documented_ports

COMPOSE = DEPLOY / "compose.yaml"
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}
SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "ports", "volumes", "secrets",
                "depends_on", "restart", "healthcheck", "profiles", "labels"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _ports(svc: dict[str, Any]) -> dict[int, str]:
    out = {}
    for spec in svc.get("ports", []):
        host_ip, host, container = str(spec).split(":")
        assert host == container, f"{spec}: keep host and container ports equal"
        out[int(container)] = host_ip
    return out


def test_structure(compose: dict[str, Any]) -> None:
    assert set(compose) - {k for k in compose if k.startswith("x-")} <= TOP_LEVEL
    services = compose["services"]
    assert {"kafka", "model", "drift", "prometheus", "alertmanager", "grafana",
            "otel-collector"} <= set(services)
    for name, svc in services.items():
        assert set(svc) <= SERVICE_KEYS, f"{name}: unknown keys {set(svc) - SERVICE_KEYS}"
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), f"{name}: mounts missing {src}"
            else:
                assert src in compose["volumes"], f"{name}: undeclared volume {src}"
        for host_ip in _ports(svc).values():
            assert host_ip == "127.0.0.1", f"{name}: publish on 127.0.0.1 only"
        env = svc.get("environment", {})
        assert isinstance(env, dict)
        for k, v in env.items():
            assert isinstance(v, str), f"{name}: env {k} must be a string in compose"


def test_ports_match_documented_defaults(compose: dict[str, Any]) -> None:
    documented = documented_ports()
    for name, (service, port) in PORT_NAMES.items():
        assert documented[name] == port, f"architecture.md changed {name}: update deploy/"
        assert port in _ports(compose["services"][service]), f"{service} does not publish {port}"


def _flag(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_ports_match_code_defaults(compose: dict[str, Any]) -> None:
    """The drift service's and the probes' own defaults, read from the code."""
    from drift.service.engine import ServiceConfig
    from probes.runtime import Settings

    fields = ServiceConfig.__dataclass_fields__
    drift_cmd = compose["services"]["drift"]["command"]
    assert _flag(drift_cmd, "--port") == str(fields["metrics_port"].default)
    assert _flag(drift_cmd, "--ingest-port") == str(fields["ingest_port"].default)
    model_cmd = compose["services"]["model"]["command"]
    probe_port = Settings.__dataclass_fields__["prometheus_port"].default
    assert _flag(model_cmd, "--metrics-port") == str(probe_port)


def _bench_args(shell: str) -> list[str]:
    words = shlex.split(shell)
    start = words.index("benchwatch")
    end = words.index("&&", start)
    return words[start + 1:end]


def test_commands_parse_with_the_real_clis(compose: dict[str, Any]) -> None:
    """Every benchwatch command in compose and k8s is accepted by the real argument parsers."""
    from benchwatch.cli import _build_parser

    services = compose["services"]
    k8s = {d["metadata"]["name"]: d for f in ("drift.yaml", "model.yaml")
           for d in yaml.safe_load_all((DEPLOY / "k8s" / f).read_text())
           if d and d["kind"] == "Deployment"}
    drift_cmds = [services["drift"]["command"],
                  k8s["drift"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    bench_cmds = [_bench_args(services["baseline"]["command"][0]),
                  _bench_args(k8s["drift"]["spec"]["template"]["spec"]["initContainers"][0]
                              ["args"][0])]
    for argv in drift_cmds + bench_cmds:
        args = _build_parser(argv[0]).parse_args(argv)
        assert args._run is not None
    assert drift_cmds[0] == drift_cmds[1]
    assert bench_cmds[0] == bench_cmds[1]
    # the example server builds its parser inside main(): check its --help lists every flag
    help_text = subprocess.run([sys.executable, "-m", "benchwatch.example.server", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    model_cmds = [services["model"]["command"],
                  k8s["model"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    assert model_cmds[0] == model_cmds[1]
    for flag in (w for w in model_cmds[0] if w.startswith("--")):
        assert flag in help_text, f"benchwatch.example.server has no {flag}"
    version = _flag(model_cmds[0], "--version")
    assert _flag(bench_cmds[0], "--baseline-version") == version, \
        "the model's version label and its baseline's version must agree"


def test_every_benchwatch_env_var_is_read_by_the_code(compose: dict[str, Any]) -> None:
    """A typo in an env var name would silently fall back to a default: catch it here."""
    from probes.runtime import Settings

    known = {f"BENCHWATCH_{f.upper()}" for f in Settings.__dataclass_fields__}
    source = "\n".join(p.read_text() for pkg in ("probes", "collector", "drift", "benchwatch")
                       for p in (ROOT / pkg).rglob("*.py"))
    k8s = "\n".join(p.read_text() for p in (DEPLOY / "k8s").glob("*.yaml"))
    names = set(re.findall(r"\b(BENCHWATCH_[A-Z_]+)\b", COMPOSE.read_text() + k8s))
    for name in names:
        assert name in known or f'"{name}"' in source, f"{name} is read by no code"


def test_prometheus_targets_are_compose_services(compose: dict[str, Any]) -> None:
    cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    services = compose["services"]
    for job in cfg["scrape_configs"]:
        for sc in job["static_configs"]:
            for target in sc["targets"]:
                host, port = target.rsplit(":", 1)
                if host == "localhost":
                    continue
                assert host in services, f"job {job['job_name']}: no service {host}"
                svc_ports = _ports(services[host]) or {}
                exposed = set(svc_ports)
                if host == "otel-collector":
                    exposed.add(8889)  # scraped inside the network only
                assert int(port) in exposed, f"{target}: {host} does not serve {port}"
    (am,) = cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == "alertmanager:9093"


def test_kafka_topics_match_deploy_kafka(compose: dict[str, Any]) -> None:
    topics = json.loads((DEPLOY / "kafka" / "topics.json").read_text())["topics"]
    cmd = " ".join(compose["services"]["kafka-topics"]["command"])
    for t in topics:
        m = re.search(rf"--topic {re.escape(t['name'])} --partitions (\d+)", cmd)
        assert m, f"topic {t['name']} is not created by kafka-topics"
        assert int(m.group(1)) == t["partitions"]
        if t["config"].get("cleanup.policy") == "compact":
            assert f"--topic {t['name']}" in cmd.split("cleanup.policy=compact")[0]
    sink = _flag(compose["services"]["model"]["command"], "--sink")
    assert sink == f"kafka://kafka:9092/{topics[0]['name']}"
    assert _flag(compose["services"]["drift"]["command"], "--kafka-topic") == topics[0]["name"]


def test_grafana_mounts_provisioning_and_dashboards(compose: dict[str, Any]) -> None:
    vols = compose["services"]["grafana"]["volumes"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in vols}
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == ROOT / "grafana" / "provisioning"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/benchwatch.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert (DEPLOY / mounts[path]).resolve() == ROOT / "grafana" / "dashboards"
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).exists()


def test_otel_collector_config_is_consistent() -> None:
    cfg = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    for name, pipe in cfg["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipe.get(kind, []):
                assert comp in cfg[kind], f"pipeline {name} uses undefined {kind[:-1]} {comp}"
    assert cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert cfg["exporters"]["prometheus"]["endpoint"].endswith(":8889")


def test_dockerfile_copies_what_exists_and_installs_known_extras() -> None:
    import tomllib

    text = (DEPLOY / "Dockerfile").read_text()
    for src in re.findall(r"(?m)^COPY\s+(\S+)\s", text):
        assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    (wanted,) = re.findall(r'pip install "\.\[([\w,]+)\]"', text)
    assert set(wanted.split(",")) <= extras, set(wanted.split(",")) - extras
    for pkg in ("probes", "collector", "drift", "benchwatch"):
        assert f"COPY {pkg} " in text, f"the image lacks package {pkg}"
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["x-benchwatch"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / compose["x-benchwatch"]["build"]["context"]).resolve() == ROOT
