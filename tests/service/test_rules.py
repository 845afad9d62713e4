"""The packaged Prometheus rules pass their promtool unit tests; the configs are valid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchwatch import assets
from benchwatch.rules import rule_files, shorten_for

pytestmark = pytest.mark.prometheus


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap.sh (Debian prometheus and "
                    "prometheus-alertmanager packages)")
    return path


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_rules_pass_promtool_unit_tests(tmp_path: Path) -> None:
    prom = assets.copy("deploy/prometheus", tmp_path)  # promtool needs files on disk
    assert sorted(p.name for p in prom.glob("*.rules.yml")) == [f.name for f in rule_files()]
    out = run(tool("promtool"), "test", "rules", str(prom / "tests" / "rules_test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_rule_files_check(tmp_path: Path) -> None:
    files = sorted(assets.copy("deploy/prometheus", tmp_path).glob("*.rules.yml"))
    assert [f.name for f in files] == [f.name for f in rule_files()]
    assert {"alerts.rules.yml", "recording.rules.yml", "scorecard.rules.yml", "genai.rules.yml"} <= {f.name for f in files}
    out = run(tool("promtool"), "check", "rules", *map(str, files))
    assert out.returncode == 0, out.stdout + out.stderr


def test_alertmanager_config_checks(tmp_path: Path) -> None:
    am = assets.copy("deploy/alertmanager/alertmanager.yml", tmp_path)
    out = run(tool("amtool"), "check-config", str(am))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "benchwatch-webhook" in am.read_text()


def test_shortened_rules_still_check(tmp_path: Path) -> None:
    files = shorten_for(rule_files(), tmp_path, for_duration="1s", range_window="30s")
    text = "".join(f.read_text() for f in files)
    assert "for: 1s" in text and "for: 2m" not in text and "[30s]" in text
    out = run(tool("promtool"), "check", "rules", *map(str, files))
    assert out.returncode == 0, out.stdout + out.stderr
