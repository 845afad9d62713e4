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
        ["bench", "--queries", "many"], USAGE, "argument --queries: 'many' is not a whole number"),
    "bad option value (bench)": (
        ["bench", "--backend", "null", "--repeats", "0", "-o", "{tmp}"], USAGE,
        "argument --repeats: 0 is not in [1, 1000]"),
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


# Misuse found by trying every verb with odd values (issue 16): each was a traceback, a hang,
# a busy loop, a dead evaluator or "could not run" (3). Each must be exit 2 and one error line
# naming the option. (argv, what the error line says); {bl} is a directory with one baseline,
# {damaged} a window store with damaged pages.
SERVE = ["drift", "serve", "--baselines", "{bl}", "--port", "0", "--ingest-port", "0"]
CLOSED = "http://127.0.0.1:9"
REPLAY = ["replay", "--canary", CLOSED, "--primary", CLOSED, "-o", "{tmp}", "--no-progress"]
BUILD = ["baseline", "build", "--from", "{csv}", "--model", "m", "--version", "v",
         "-o", "{tmp}/m-v.json"]
BENCH = ["bench", "--backend", "null", "-o", "{tmp}", "--no-progress"]
MISUSE = {
    "interval nan (busy loop)": ([*SERVE, "--interval", "nan"], "argument --interval: 'nan'"),
    "interval inf (dead evaluator)": ([*SERVE, "--interval", "inf"], "argument --interval: 'inf'"),
    "interval 1e300 (Event.wait overflow)": ([*SERVE, "--interval", "1e300"], "argument --interval"),
    "empty baselines path (served the cwd)": (
        ["drift", "serve", "--baselines", "", "--port", "0"], "argument --baselines: must not be empty"),
    "ingest port out of range": ([*SERVE[:-1], "70000"], "argument --ingest-port: 70000 is not in"),
    "damaged store (drift serve)": (
        [*SERVE, "--state", "{damaged}"], "window store {damaged} is not a usable SQLite database"),
    "damaged store (collector windows)": (
        ["collector", "windows", "--state", "{damaged}"], "window store {damaged} is not a usable"),
    "token file missing": ([*SERVE, "--token-file", "{tmp}/nope"], "--token-file {tmp}/nope: not a"),
    "token twice": ([*SERVE, "--token", "a", "--token-file", "{csv}"], "give --token or --token-file"),
    "collector port out of range": (
        ["collector", "serve", "--state", "{tmp}/w.db", "--port", "70000"], "argument --port: 70000"),
    "collector model spec": (
        ["collector", "serve", "--state", "{tmp}/w.db", "--model", "a/b/c"], "argument --model: 'a/b/c'"),
    "negative max reference": ([*BUILD, "--max-reference", "-1"], "argument --max-reference: -1"),
    "bins that allocate 745 GiB": ([*BUILD, "--bins", "100000000000"], "argument --bins"),
    "negative seed (baseline)": ([*BUILD, "--seed", "-1"], "argument --seed: -1 is not in"),
    "negative seed (bench)": ([*BENCH, "--seed", "-1"], "argument --seed: -1 is not in"),
    "rate near zero (time_t overflow)": ([*BENCH, "--rate", "1e-300"], "argument --rate: '1e-300'"),
    "a trillion queries": ([*BENCH, "--queries", "1000000000000"], "argument --queries"),
    "timeout nan (bench)": ([*BENCH, "--timeout-s", "nan"], "argument --timeout-s: 'nan'"),
    "timeout inf (replay, time_t overflow)": ([*REPLAY, "--timeout-s", "inf"], "argument --timeout-s"),
    "metrics port out of range (replay)": ([*REPLAY, "--metrics-port", "70000"], "argument --metrics-port"),
    "margin nan (replay)": ([*REPLAY, "--latency-margin", "nan"], "argument --latency-margin"),
    "canary not a URL": (["replay", "--canary", "notaurl", "-o", "{tmp}"], "argument --canary: 'notaurl'"),
    "demo rate nan": (["demo", "--rate", "nan"], "--rate must be > 0 requests/s"),
    "demo rate inf": (["demo", "--rate", "inf"], "--rate must be > 0 requests/s"),
    "demo interval nan (hang)": (["demo", "--interval", "nan"], "argument --interval: 'nan'"),
    "demo duration inf (hang)": (["demo", "--duration", "inf"], "--duration must be > 0"),
    "report step nan": (["report", "--prometheus", CLOSED, "--step", "nan"], "argument --step: 'nan'"),
    "report rate interval": (
        ["report", "--prometheus", CLOSED, "--rate-interval", "soon"], "argument --rate-interval"),
    "report URL": (["report", "--prometheus", "notaurl"], "argument --prometheus: 'notaurl'"),
    "report into a directory": (
        ["report", "--prometheus", CLOSED, "-o", "{tmp}"], "-o {tmp} is a directory"),
    "kafka partitions 0 (hung connecting)": (
        ["kafka", "topics", "--bootstrap", "127.0.0.1:9", "--partitions", "0"], "argument --partitions: 0"),
    "kafka stats interval nan": (
        ["kafka", "consume", "--bootstrap", "127.0.0.1:9", "--state", "{tmp}/k.db",
         "--stats-interval", "nan"], "argument --stats-interval: 'nan'"),
    "kafka store is a directory (was: cannot reach Kafka, 3)": (
        ["kafka", "consume", "--bootstrap", "127.0.0.1:9", "--state", "{tmp}"],
        "window store {tmp} is not a usable SQLite database"),
    "grafana URL": (["grafana", "push", "--url", "notaurl"], "--url: 'notaurl' is not an http(s) URL"),
}


@pytest.fixture
def misuse_files(tmp_path: Path) -> dict[str, str]:
    from tests.service.conftest import build_baseline
    from tests.support.stores import damaged_store

    bl = tmp_path / "bl"
    bl.mkdir()
    build_baseline(bl)
    csv = tmp_path / "ref.csv"
    csv.write_text("x\n" + "\n".join(str(i / 10) for i in range(50)) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    return {"tmp": str(work), "bl": str(bl), "csv": str(csv),
            "damaged": str(damaged_store(tmp_path / "damaged.db"))}


@pytest.mark.parametrize("case", sorted(MISUSE))
def test_misuse_is_one_line_and_exit_2(case: str, misuse_files: dict[str, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = MISUSE[case]
    argv = [a.format(**misuse_files) for a in argv]
    assert main(argv) == USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err  # one line: no usage block, no traceback
    assert err.startswith(f"benchwatch {argv[0]}"), err
    assert expected.format(**misuse_files) in err, err


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
