"""deploy/k8s/prometheusrule.generated.yaml: the Prometheus Operator's PrometheusRule carries
every packaged rule group unchanged, and its groups pass `promtool check rules` as they stand
(the Operator hands `spec.groups` to Prometheus as a rule file)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from benchwatch import deploy, rules

ROOT = Path(__file__).resolve().parents[2]


def test_the_object_holds_every_packaged_group() -> None:
    obj = yaml.safe_load((ROOT / deploy.K8S_PROMETHEUSRULE).read_text())
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    packaged = [g for f in rules.rule_files() for g in yaml.safe_load(f.read_text())["groups"]]
    assert obj["spec"]["groups"] == packaged
    assert {r.get("alert") for g in packaged for r in g["rules"]} - {None}  # alerts included


@pytest.mark.prometheus
def test_its_groups_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed: scripts/bootstrap.sh installs it"
    obj = yaml.safe_load(deploy.render_prometheusrule())
    path = tmp_path / "groups.yml"
    path.write_text(yaml.safe_dump({"groups": obj["spec"]["groups"]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,  # noqa: S603
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
