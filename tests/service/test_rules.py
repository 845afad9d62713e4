"""deploy/: the Prometheus rules pass their promtool unit tests; configs are valid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchwatch.rules import shorten_for

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
AM = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

pytestmark = pytest.mark.prometheus


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap.sh (Debian prometheus and "
                    "prometheus-alertmanager packages)")
    return path


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_rules_pass_promtool_unit_tests() -> None:
    out = run(tool("promtool"), "test", "rules", str(PROM / "tests" / "rules_test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_rule_files_check() -> None:
    out = run(tool("promtool"), "check", "rules", *map(str, sorted(PROM.glob("*.rules.yml"))))
    assert out.returncode == 0, out.stdout + out.stderr


def test_alertmanager_config_checks() -> None:
    out = run(tool("amtool"), "check-config", str(AM))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "benchwatch-webhook" in AM.read_text()


def test_shortened_rules_still_check(tmp_path: Path) -> None:
    files = shorten_for(sorted(PROM.glob("*.rules.yml")), tmp_path, for_duration="1s",
                        range_window="30s")
    text = "".join(f.read_text() for f in files)
    assert "for: 1s" in text and "for: 2m" not in text and "[30s]" in text
    out = run(tool("promtool"), "check", "rules", *map(str, files))
    assert out.returncode == 0, out.stdout + out.stderr
