"""Every verb maps bad input and unreachable services to the one exit-code table
(`benchwatch.cli.errors`) and prints one line, `benchwatch VERB: error: MESSAGE`, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchwatch.cli import main
from benchwatch.cli.errors import ExitCode, report_error
from benchwatch.errors import UsageError
from benchwatch.services import free_port

USAGE, COULD_NOT_RUN = ExitCode.USAGE, ExitCode.COULD_NOT_RUN

# (argv, exit code, the message after "benchwatch VERB: error: "); {tmp} is a fresh directory,
# {closed} the URL of a loopback port nobody listens on
CASES = {
    "missing input file": (
        ["drift", "compare", "{tmp}/nope.csv", "{tmp}/nope.csv"], USAGE, "cannot read {tmp}/nope.csv"),
    "missing baseline file": (
        ["baseline", "show", "{tmp}/nope.json"], USAGE, "{tmp}/nope.json: no such baseline file"),
    "missing window store": (
        ["collector", "windows", "--state", "{tmp}/nope.db"], USAGE, "no window store at {tmp}/nope.db"),
    "missing baselines directory": (
        ["drift", "serve", "--baselines", "{tmp}/nope", "--port", "0", "--ingest-port", "-1"], USAGE,
        "baselines directory {tmp}/nope does not exist"),
    "bad option value (argparse)": (
        ["bench", "--queries", "many"], USAGE, "argument --queries: invalid int value: 'many'"),
    "bad option value (bench)": (
        ["bench", "--backend", "null", "--repeats", "0", "-o", "{tmp}"], USAGE,
        "--queries, --batch-size, --offline-samples and --repeats must be >= 1"),
    "bad option value (replay)": (
        ["replay", "--canary", "{closed}", "--primary", "{closed}", "--alpha", "0.7", "-o", "{tmp}"],
        USAGE, "--alpha must be in (0, 0.5)"),
    "bad option value (demo)": (["demo", "--rate", "0"], USAGE, "--rate must be > 0"),
    "missing option": (["grafana", "push", "--url", ""], USAGE, "give --url"),
    "missing subcommand": (["collector"], USAGE, "the following arguments are required: COMMAND"),
    "unknown suite (bench)": (
        ["bench", "--suite", "no-such-suite", "--backend", "null", "-o", "{tmp}"], USAGE,
        "no suite at 'no-such-suite'"),
    "unknown suite (replay)": (
        ["replay", "--suite", "no-such-suite", "--canary", "{closed}", "--primary", "{closed}",
         "-o", "{tmp}"], USAGE, "no suite at 'no-such-suite'"),
    "unreachable canary": (
        ["replay", "--canary", "{closed}", "--primary", "{closed}", "-o", "{tmp}", "--no-progress"],
        COULD_NOT_RUN, "{closed}/info: "),
    "unreachable endpoint": (
        ["bench", "--backend", "http", "--url", "{closed}", "-o", "{tmp}", "--no-progress"],
        COULD_NOT_RUN, "{closed}/info: "),
    "unreachable Prometheus": (
        ["report", "--prometheus", "{closed}", "-o", "{tmp}/report.html"], COULD_NOT_RUN,
        "cannot query Prometheus at {closed}"),
    "unreachable Grafana": (
        ["grafana", "push", "--url", "{closed}", "--token", "t"], COULD_NOT_RUN,
        "push to {closed} failed"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_and_unreachable_services_use_the_table(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, code, expected = CASES[case]
    where = {"tmp": str(tmp_path), "closed": f"http://127.0.0.1:{free_port()}"}
    argv = [a.format(**where) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(error_lines) == 1, err  # printed once, by main
    assert error_lines[0].startswith(f"benchwatch {argv[0]}: error: {expected.format(**where)}"), err
    assert "Traceback" not in err


def test_no_verb_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE
    assert "usage: benchwatch" in capsys.readouterr().err


def test_a_real_process_exits_with_the_code_and_the_traceback_only_at_debug(
        tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "benchwatch"]
    verb = ["baseline", "show", str(tmp_path / "nope.json")]
    plain = subprocess.run([*argv, *verb], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2
    assert plain.stderr == f"benchwatch baseline: error: {tmp_path}/nope.json: no such baseline file\n"
    debug = subprocess.run([*argv, "--log-level", "DEBUG", *verb], capture_output=True, text=True,
                           timeout=60)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


def test_an_unexpected_exception_exits_3_with_its_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    def fails() -> None:
        raise KeyError("oops")

    try:
        fails()
    except KeyError as exc:  # a bug must never exit 1, which reads as a finding
        assert report_error(exc, "benchwatch x") == ExitCode.COULD_NOT_RUN
    err = capsys.readouterr().err
    assert "Traceback" in err and "in fails" in err
    assert err.splitlines()[-1].startswith("benchwatch x: error: unexpected KeyError: 'oops'")


def test_the_table_keeps_inconclusive_apart_from_usage_and_fail() -> None:
    from benchwatch.bench.judge import EXIT_CODES

    assert {k: int(v) for k, v in EXIT_CODES.items()} == {
        "pass": 0, "fail": 1, "inconclusive": 4, "error": 3}
    assert len(set(ExitCode)) == len(ExitCode.__members__)  # no two names share a code
    try:
        raise UsageError("x")
    except UsageError as exc:
        assert report_error(exc, "benchwatch x") == ExitCode.USAGE
    try:
        raise FileNotFoundError(2, "No such file or directory", "a.csv")
    except OSError as exc:
        assert report_error(exc, "benchwatch x") == ExitCode.USAGE
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError as exc:
        assert report_error(exc, "benchwatch x") == ExitCode.COULD_NOT_RUN
