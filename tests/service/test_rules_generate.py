"""`benchwatch rules generate --for D -o DIR`: the drift page's `for:` set to D, promtool tests
moved to match, and the real `promtool test rules` passes on the pair (and fails when the
packaged, unmoved tests are run against the generated rules, so the moving matters)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchwatch import assets
from benchwatch.cli import main
from benchwatch.cli.rules import PAGE_ALERTS
from benchwatch.rules import RULES, for_durations, rule_files

pytestmark = pytest.mark.prometheus


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is not installed: run scripts/bootstrap.sh (Debian prometheus)")
    return subprocess.run([tool, "test", "rules", *args], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("duration", "seconds"), [("1s", 1), ("30s", 30), ("10m", 600),
                                                   ("1h", 3600)])
def test_generated_rules_and_tests_pass_promtool(
        duration: str, seconds: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rules"
    code = main(["rules", "generate", "--for", duration, "-o", str(out)])
    printed = capsys.readouterr()
    if code != 0:  # another area's test file failing as packaged too; ours must pass
        assert re.search(r"rules_test\.yml\s+SUCCESS", printed.err), printed.err
    else:
        assert "promtool test rules: SUCCESS" in printed.out, printed.out
    generated = for_durations(sorted(out.glob("*.rules.yml")))
    shipped = for_durations(rule_files())
    assert set(generated) == set(shipped)
    for alert, s in shipped.items():
        assert generated[alert] == (seconds if alert in PAGE_ALERTS else s), alert
    packaged = {n.name: n.read_text() for n in assets.asset(f"{RULES}/tests").iterdir()
                if n.name.endswith(".yml")}
    tests = {t.name: t.read_text() for t in (out / "tests").glob("*.yml")}
    assert set(tests) == set(packaged)
    for name, text in tests.items():  # files without drift-page checks are copied as they are
        if not any(f"alertname: {a}" in packaged[name] for a in PAGE_ALERTS):
            assert text == packaged[name], name
    # the drift page's checks (rules_test.yml) pass promtool: checked here, not only by the CLI
    done = _promtool(str(out / "tests" / "rules_test.yml"))
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr

def test_the_packaged_tests_do_not_fit_other_durations(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    main(["rules", "generate", "--for", "10m", "-o", str(out)])
    packaged = out / "tests" / "packaged_test.yml"
    packaged.write_text(assets.read_text(f"{RULES}/tests/rules_test.yml"))
    done = _promtool(str(packaged))
    assert done.returncode != 0
    assert re.search(r"BenchwatchModelDrift|BenchwatchFeatureDrift", done.stdout + done.stderr)


@pytest.mark.parametrize("bad", ["0s", "2h", "90", "abc", "1.5m"])
def test_bad_durations_are_one_line_and_exit_2(
        bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "generate", "--for", bad, "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--for" in err[0], err
    assert not (tmp_path / "r").exists()
