"""promtool/amtool (Debian's, Prometheus 2.42) accept the packaged configs the stack mounts
(deploy/prometheus.yml with the rules of deploy/prometheus/, and deploy/alertmanager/), laid out
as the containers see them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from benchwatch import assets, deploy, rules
from tests.support.deploy_ports import DEPLOY

pytestmark = pytest.mark.prometheus


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap.sh (Debian prometheus / "
                    "prometheus-alertmanager packages)")
    return path


def test_promtool_checks_config_with_rules(tmp_path: Path) -> None:
    cfg = yaml.safe_load(assets.read_text("deploy/prometheus.yml"))
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    rules_dir = assets.copy(rules.RULES, tmp_path)  # real paths for promtool
    files = sorted(p for p in rules_dir.iterdir() if p.is_file())
    assert files, "the package holds no rule files"
    assert [p.name for p in files] == [f.name for f in rules.rule_files()]
    for path in files:
        assert re.fullmatch(r"[\w.-]+\.rules\.yml", path.name), \
            f"{path.name}: the stack loads *.rules.yml only"
    cfg["rule_files"] = [str(rules_dir / "*.rules.yml")]
    # as docs/deploy.md tells a Prometheus 2 user to run it: without the Prometheus 3 setting (the
    # file as shipped loads in the stack's Prometheus 3: tests/deploy/test_stack_versions.py)
    for job in cfg["scrape_configs"]:
        job.pop("scrape_native_histograms", None)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([_tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for path in files:
        assert path.name in out.stdout, f"promtool did not load {path.name}:\n{out.stdout}"


def test_promtool_unit_tests_of_every_rule_file_pass(tmp_path: Path) -> None:
    """Every promtool test file the package ships (deploy/prometheus/tests/*.yml) runs."""
    prom = assets.copy(rules.RULES, tmp_path)
    tests = sorted((prom / "tests").glob("*.yml"))
    assert {"rules_test.yml", "scorecard_test.yml", "genai_test.yml"} <= {p.name for p in tests}
    for path in tests:
        out = subprocess.run([_tool("promtool"), "test", "rules", str(path)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "SUCCESS" in out.stdout, f"{path.name}:\n{out.stdout}{out.stderr}"


def test_amtool_checks_alertmanager_configs(tmp_path: Path) -> None:
    local = assets.copy(deploy.ALERTMANAGER, tmp_path)
    stack = tmp_path / "stack.yml"
    stack.write_text(deploy.stack_alertmanager())
    for path in (local, stack):
        out = subprocess.run([_tool("amtool"), "check-config", str(path)], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, f"{path.name}:\n{out.stdout}{out.stderr}"


def test_stack_alertmanager_reaches_the_drift_service() -> None:
    """compose/k8s mount the generated stack config; its webhook goes to the `drift` service
    with the token where compose's secret and k8s's Secret put it."""
    cfg = yaml.safe_load(deploy.stack_alertmanager())
    hooks = [w for r in cfg["receivers"] for w in r.get("webhook_configs", [])]
    assert hooks and all(w["url"] == deploy.STACK_WEBHOOK for w in hooks)
    token_files = {w["http_config"]["authorization"]["credentials_file"] for w in hooks}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    am = compose["services"]["alertmanager"]
    assert {s["target"] for s in am["secrets"]} == token_files
    mounted = {v.split(":")[1]: v.split(":")[0] for v in am["volumes"]}
    assert mounted["/etc/alertmanager/alertmanager.yml"] == "./stack/alertmanager.yml"
    k8s = list(yaml.safe_load_all((DEPLOY / "k8s" / "alertmanager.yaml").read_text()))
    pod = next(d for d in k8s if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "token"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "token"]
    paths = {f"{mount['mountPath']}/{i['path']}" for i in vol["secret"]["items"]}
    assert paths == token_files
