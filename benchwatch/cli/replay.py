"""`benchwatch replay`: replay a suite against a canary (and, as shadow, the primary), judge it.

Exit codes (the table in `benchwatch.cli.errors`): 0 PASS, 1 FAIL, 4 INCONCLUSIVE, 2 bad input
(an option, the suite, the baseline file, a suite that does not fit the served model), 3 could not
run (unreachable canary, timeouts, malformed responses). Once the run directory exists a
verdict.json is always written, with partial results when the replay stopped early.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchwatch.cli import _endpoint
from benchwatch.cli._values import DAY_S, http_url, number, port, seconds, whole
from benchwatch.cli.errors import ExitCode, exit_code_for, message
from benchwatch.errors import UsageError
from probes.errors import BenchwatchError, ConfigError, require

if TYPE_CHECKING:
    from benchwatch.bench.judge import JudgeSettings

HELP = "replay a suite against a canary (and the primary) and judge it"
log = logging.getLogger(__name__)
_QUANTILE_NAMES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
_margin = number(1, 1000, low_inclusive=True)


def latency_margin(text: str) -> tuple[float | None, float]:
    """`M` (every latency quantile) or `pQ=M` (one of p50, p90, p99): (quantile or None, M)."""
    name, _, value = text.rpartition("=")
    if name and name not in _QUANTILE_NAMES:
        raise argparse.ArgumentTypeError(f"{name!r} is not a judged quantile: give p50=M, "
                                         "p90=M or p99=M, or M alone for all three")
    return (_QUANTILE_NAMES[name] if name else None), _margin(value)


def judge_settings(args: argparse.Namespace) -> JudgeSettings:
    """The judge's settings from the options (classifier and text replays alike), each
    `--latency-margin` applied in order over the defaults (`judge.LATENCY_MARGINS`)."""
    from benchwatch.bench.judge import LATENCY_MARGINS, JudgeSettings

    margins = dict(LATENCY_MARGINS)
    for q, m in args.latency_margin or ():
        margins.update(dict.fromkeys(margins, m) if q is None else {q: m})
    return JudgeSettings(alpha=args.alpha, latency_margins=tuple(margins.items()),
                         accuracy_margin=args.accuracy_margin, flip_margin=args.flip_margin,
                         seed=args.seed)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="digits", help="built-in name (digits; text: "
                   "the generative example, TTFT/TPOT) or path to SUITE.json")
    p.add_argument("--canary", required=True, type=http_url,
                   help="canary URL, e.g. http://127.0.0.1:8001")
    p.add_argument("--primary", type=http_url,
                   help="primary URL, replayed as shadow and paired by request")
    p.add_argument("--baseline", help="drift baseline JSON (from `benchwatch bench`): the "
                   "reference when there is no --primary, extra figures otherwise")
    p.add_argument("--queries", type=whole(1, 10_000_000), default=5000,
                   help="timed queries per arm (>= 662 for a p99 verdict; at the default 5000 "
                        "two identical servers PASSed 19 of 20 replays on a quiet host)")
    p.add_argument("--warmup", type=whole(0, 10_000_000), default=200,
                   help="untimed queries per arm first, interleaved like the timed ones")
    p.add_argument("--timeout-s", type=seconds, default=5.0, help="per request")
    p.add_argument("--alpha", type=float, default=0.05)  # JudgeSettings checks it
    p.add_argument("--latency-margin", type=latency_margin, action="append", metavar="[pQ=]M",
                   help="canary latency quantile must be <= M x the reference's: M for all, "
                        "or p50=M, p90=M, p99=M (repeatable); default p50=1.1 p90=1.25 "
                        "p99=1.5, wider in the tails, where identical servers differ more")
    p.add_argument("--accuracy-margin", type=number(0, 1, low_inclusive=True), default=0.01,
                   help="canary accuracy may be at most this much lower (default 0.01)")
    p.add_argument("--flip-margin", type=number(0, 1, low_inclusive=True), default=0.01,
                   help="canary flip rate under tiny noise may be at most this much higher "
                        "(default 0.01)")
    p.add_argument("--seed", type=whole(0, 2**64 - 1), default=0)
    p.add_argument("-o", "--out", "--output", dest="output", default="runs",
                   help="directory for verdict.json/report.html (default ./runs)")
    p.add_argument("--json", action="store_true", help="print the verdict JSON on stdout")
    p.add_argument("--metrics-port", type=port, default=0,
                   help="serve benchwatch_canary_verdict on 127.0.0.1:PORT after the verdict")
    p.add_argument("--metrics-hold-s", type=number(0, DAY_S, low_inclusive=True), default=30.0,
                   help="how long to keep that endpoint up (>= 2 scrape intervals)")
    p.add_argument("--canary-metrics", type=http_url,
                   help="the canary's probe /metrics URL: energy per "
                   "inference from benchwatch_inference_energy_joules_total (GPU serving)")
    p.add_argument("--primary-metrics", type=http_url, help="the primary's probe /metrics URL")
    p.add_argument("--energy-window-s", type=seconds, default=1.0,
                   help="one energy sample per window (NVML's counter moves every ~100 ms)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar: a one-line status every 10 s instead")
    p.add_argument("--name", default=None,
                   help="the model's name for the verdict gauge and annotation (default: the "
                        "canary's GET /info)")
    p.add_argument("--version", default=None,
                   help="the canary's version, likewise (default: its GET /info)")
    _endpoint.add_arguments(p)


def _error_doc(args: argparse.Namespace, exc: BaseException) -> dict[str, Any]:
    """The verdict.json of a replay that could not start: why, and the exit code it ends with."""
    if isinstance(exc, ConfigError):
        reason = f"bad input: {exc}"
    else:
        reason = f"could not run ({getattr(exc, 'kind', 'setup')}): {message(exc)}"
    return {"format": "benchwatch-verdict/1", "suite": args.suite, "canary": args.canary,
            "reference": args.primary or args.baseline, "queries": args.queries,
            "errors": [reason], "verdict": {"outcome": "error", "exit_code": exit_code_for(exc),
                                            "reason": reason, "metrics": [], "settings": {}}}


def run(args: argparse.Namespace) -> ExitCode:
    from benchwatch.bench.text_suite import is_text_suite

    if is_text_suite(args.suite):  # a generative model: TTFT/TPOT (benchwatch.bench.gen_cli)
        from benchwatch.bench.gen_cli import run_text_replay

        return run_text_replay(args)
    for module in ("rich", "scipy"):
        require(module, "bench", "benchwatch replay")
    from rich.console import Console

    from benchwatch.bench.artifacts import new_run_dir

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    settings = judge_settings(args)
    if args.queries < 1 or args.warmup < 0 or args.timeout_s <= 0:
        raise UsageError("--queries must be >= 1, --warmup >= 0 and --timeout-s > 0")
    if not args.primary and not args.baseline:
        raise UsageError("nothing to compare the canary with: pass --primary URL and/or "
                         "--baseline FILE")
    out_dir = new_run_dir(args.output, "replay")
    try:
        suite, baseline, arms = _connect(args)
    except (BenchwatchError, OSError) as exc:  # a verdict.json says why there is no verdict
        _finish(_error_doc(args, exc), out_dir, {}, args, "unknown", "unknown", console)
        raise
    doc, latencies = _replay(args, suite, baseline, arms, settings)
    code = _finish(doc, out_dir, latencies, args, doc["model"], doc["canary_version"], console)
    if doc["verdict"]["outcome"] == "error":  # partial results are written, never judged
        raise BenchwatchError(doc["verdict"]["reason"])
    return code


def _connect(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """The suite, the baseline (or None) and a backend per arm, each arm checked against the
    suite; no backend is left open on an error."""
    from benchwatch.bench.backends import HttpBackend
    from benchwatch.bench.suites import SuiteError, check_fits, load_suite
    from drift.baseline import Baseline

    suite = load_suite(args.suite)
    baseline = Baseline.load(args.baseline) if args.baseline else None
    endpoint = _endpoint.options(args, suite)
    arms: dict[str, Any] = {}
    try:
        for name, url in (("canary", args.canary), ("primary", args.primary)):
            if url:
                b = arms[name] = HttpBackend(url, args.timeout_s, model=args.name,
                                             version=args.version if name == "canary" else None,
                                             **endpoint)
                check_fits(suite, b.info.input_shape, b.info.num_outputs)
                _endpoint.check_accepts(b, suite, url, classes=False)
                suite_model = suite.metadata.get("model")
                if suite_model and b.info.model not in ("unknown", suite_model):
                    raise SuiteError(f"suite {suite.name!r} is for model {suite_model!r} but "
                                     f"{url} serves {b.info.model!r}: pick its suite")
    except BaseException:
        for b in arms.values():
            b.close()
        raise
    return suite, baseline, arms


def _replay(args: argparse.Namespace, suite: Any, baseline: Any, arms: dict[str, Any],
            settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay the suite on every arm and judge it: (verdict document, latencies per arm)."""
    from benchwatch.bench.energy_scrape import EnergyWindows
    from benchwatch.bench.progress import rich_progress
    from benchwatch.bench.replay import judge_replay, replay

    model, version = arms["canary"].info.model, arms["canary"].info.version
    energy = {name: EnergyWindows(url, model) for name, url in
              (("canary", args.canary_metrics), ("primary", args.primary_metrics))
              if url and name in arms}
    try:
        with rich_progress(enabled=not args.no_progress) as progress:
            result = replay(arms, suite, args.queries, args.warmup, args.seed, progress,
                            energy, args.energy_window_s)
        result, flips = _flips(arms, suite, result, args.seed)
    finally:
        for b in arms.values():
            b.close()
    verdict = judged(lambda: judge_replay(result, suite, baseline, settings, flips), result)
    doc = {"format": "benchwatch-verdict/1", "suite": suite.name,
           "suite_hash": suite.content_hash, "canary": args.canary,
           "reference": args.primary or args.baseline, "queries": result.queries_done,
           "queries_planned": result.queries_planned, "model": model, "canary_version": version,
           "primary_version": arms["primary"].info.version if "primary" in arms else None,
           "errors": list(result.errors), "verdict": verdict}
    return doc, {n: r.latencies_s for n, r in result.arms.items()}


def _flips(arms: dict[str, Any], suite: Any, result: Any,
           seed: int) -> tuple[Any, dict[str, Any]]:
    """After the timed queries: every arm gets the same perturbed queries (flip rate under
    tiny noise, benchwatch.bench.robustness); a failure stops the replay like any other."""
    from dataclasses import replace

    from benchwatch.bench.backends import BackendError
    from benchwatch.bench.robustness import flip_pass

    if result.errors or suite.task != "classification":
        return result, {}
    try:
        return result, {name: flip_pass(b.predict, suite, seed) for name, b in arms.items()}
    except BackendError as e:
        log.error("flip pass stopped: %s", e)
        return replace(result, errors=(*result.errors, f"{e.kind}: {e} (flip pass)")), {}


def _finish(doc: dict[str, Any], out_dir: Path, latencies: dict[str, Any],
            args: argparse.Namespace, model: str, version: str, console: Any) -> ExitCode:
    """Write verdict.json, report.html and latencies.npz; show the verdict; publish it as a
    Grafana annotation and (with --metrics-port) a gauge. Returns the verdict's exit code."""
    import numpy as np
    from rich.table import Table

    from benchwatch.bench.publish import grafana_annotation, serve_verdict_gauge
    from benchwatch.report.bench import verdict_html

    v = doc["verdict"]
    (out_dir / "verdict.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "report.html").write_text(verdict_html(doc, latencies))
    if latencies:
        np.savez_compressed(out_dir / "latencies.npz", **latencies)
    if args.json:
        print(json.dumps(doc, indent=2))
    if v["metrics"]:
        table = Table(title=f"replay {doc.get('suite')}: {v['outcome'].upper()}")
        for col in ("metric", "outcome", "estimate", "interval", "margin", "why"):
            table.add_column(col)
        for m in v["metrics"]:
            interval = (f"[{m['lower']:.4g}, {m['upper']:.4g}]" if m.get("lower") is not None
                        else "–")
            table.add_row(m["metric"], m["outcome"].upper(),
                          "–" if m.get("estimate") is None else f"{m['estimate']:.4g}", interval,
                          "–" if m.get("margin") is None else f"{m['margin']:g}",
                          m.get("reason", ""))
        console.print(table)
    if v["outcome"] != "error":  # an error is printed once, by benchwatch.cli.main
        console.print(f"{v['outcome'].upper()}: {v.get('reason', '')}")
    console.print(f"wrote {out_dir}/verdict.json and report.html")
    grafana_annotation(v["outcome"], f"canary {doc.get('canary')}: {v['outcome'].upper()} "
                       f"({v.get('reason', '')})", [f"model:{model}", f"version:{version}"])
    if args.metrics_port:
        serve_verdict_gauge(v["outcome"], model, version, str(doc.get("canary")),
                            args.metrics_port, args.metrics_hold_s)
    return ExitCode(v["exit_code"])


def judged(judge: Callable[[], Any], result: Any) -> dict[str, Any]:
    """`judge().to_dict()` for a replay's `result` (the classic and the generative one), an
    error verdict when it cannot judge, or when the replay did not run to the end."""
    could_not_run = int(ExitCode.COULD_NOT_RUN)
    try:
        verdict: dict[str, Any] = judge().to_dict()
    except Exception as e:  # noqa: BLE001 - partial data may not be judgeable
        verdict = {"outcome": "error", "exit_code": could_not_run,
                   "reason": f"could not judge: {e}", "metrics": [], "settings": {}}
    if result.errors:
        # keep the per-metric figures of what was measured, but never let them pass
        verdict = {**verdict, "outcome": "error", "exit_code": could_not_run,
                   "reason": f"could not run to the end: {result.errors[0]}; partial results "
                             f"({result.queries_done}/{result.queries_planned} queries) shown"}
    return verdict
