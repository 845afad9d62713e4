"""`benchwatch replay`: replay a suite against a canary (and, as shadow, the primary), judge it.

Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 could not run (unreachable canary, timeouts,
malformed responses, a suite that does not fit the model) — partial results are still written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

HELP = "replay a suite against a canary (and the primary) and judge it"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="digits", help="built-in name or path to SUITE.json")
    p.add_argument("--canary", required=True, help="canary URL, e.g. http://127.0.0.1:8001")
    p.add_argument("--primary", help="primary URL, replayed as shadow and paired by request")
    p.add_argument("--baseline", help="drift baseline JSON (from `benchwatch bench`): the "
                   "reference when there is no --primary, extra figures otherwise")
    p.add_argument("--queries", type=int, default=2000,
                   help="timed queries per arm (>= 662 for a p99 verdict)")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--timeout-s", type=float, default=5.0, help="per request")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--latency-margin", type=float, default=1.10,
                   help="canary quantile must be <= this x reference (default 1.10)")
    p.add_argument("--accuracy-margin", type=float, default=0.01,
                   help="canary accuracy may be at most this much lower (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="runs", help="directory for verdict.json/report.html")
    p.add_argument("--json", action="store_true", help="print the verdict JSON on stdout")
    p.add_argument("--metrics-port", type=int, default=0,
                   help="serve benchwatch_canary_verdict on 127.0.0.1:PORT after the verdict")
    p.add_argument("--metrics-hold-s", type=float, default=30.0,
                   help="how long to keep that endpoint up (>= 2 scrape intervals)")
    p.add_argument("--canary-metrics", help="the canary's probe /metrics URL: energy per "
                   "inference from benchwatch_inference_energy_joules_total (GPU serving)")
    p.add_argument("--primary-metrics", help="the primary's probe /metrics URL")
    p.add_argument("--energy-window-s", type=float, default=1.0,
                   help="one energy sample per window (NVML's counter moves every ~100 ms)")
    p.add_argument("--no-progress", action="store_true")


def _error_doc(out_dir: Path, args: argparse.Namespace, message: str,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"format": "benchwatch-verdict/1", "suite": args.suite, "canary": args.canary,
            "reference": args.primary or args.baseline, "queries": args.queries,
            "errors": [message], "verdict": {"outcome": "error", "exit_code": 3,
                                             "reason": message, "metrics": [], "settings": {}},
            **(extra or {})}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from benchwatch.bench.artifacts import new_run_dir
    from benchwatch.bench.backends import BackendError, HttpBackend
    from benchwatch.bench.judge import JudgeSettings
    from benchwatch.bench.progress import rich_progress
    from benchwatch.bench.replay import judge_replay, replay
    from benchwatch.bench.suites import SuiteError, check_fits, load_suite

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    out_dir = new_run_dir(args.output, "replay")
    arms: dict[str, Any] = {}
    doc: dict[str, Any]
    latencies: dict[str, Any] = {}
    model, version = "unknown", "unknown"
    try:
        settings = JudgeSettings(alpha=args.alpha, latency_margin=args.latency_margin,
                                 accuracy_margin=args.accuracy_margin, seed=args.seed)
        if args.queries < 1 or args.warmup < 0 or args.timeout_s <= 0:
            raise ValueError("--queries must be >= 1, --warmup >= 0 and --timeout-s > 0")
        if not args.primary and not args.baseline:
            raise ValueError("nothing to compare the canary with: pass --primary URL "
                             "and/or --baseline FILE")
        suite = load_suite(args.suite)
        baseline = None
        if args.baseline:
            from drift.baseline import Baseline

            baseline = Baseline.load(args.baseline)
        for name, url in (("canary", args.canary), ("primary", args.primary)):
            if url:
                b = HttpBackend(url, args.timeout_s)
                arms[name] = b
                check_fits(suite, b.info.input_shape, b.info.num_outputs)
                suite_model = suite.metadata.get("model")
                if suite_model and b.info.model not in ("unknown", suite_model):
                    raise SuiteError(f"suite {suite.name!r} is for model {suite_model!r} but "
                                     f"{url} serves {b.info.model!r}: pick its suite")
        model, version = arms["canary"].info.model, arms["canary"].info.version
    except (BackendError, SuiteError, ValueError, OSError) as e:
        kind = getattr(e, "kind", "setup")
        msg = f"could not run ({kind}): {e}"
        console.print(f"[red]{msg}[/red]")
        doc = _error_doc(out_dir, args, msg)
        return _finish(doc, out_dir, latencies, args, model, version, console)
    except Exception as e:  # BaselineError and friends: report, never a PASS
        msg = f"could not run: {type(e).__name__}: {e}"
        console.print(f"[red]{msg}[/red]")
        doc = _error_doc(out_dir, args, msg)
        return _finish(doc, out_dir, latencies, args, model, version, console)
    from benchwatch.bench.energy_scrape import EnergyWindows

    energy = {name: EnergyWindows(url, model) for name, url in
              (("canary", args.canary_metrics), ("primary", args.primary_metrics))
              if url and name in arms}
    try:
        with rich_progress(enabled=not args.no_progress) as progress:
            result = replay(arms, suite, args.queries, args.warmup, args.seed, progress,
                            energy, args.energy_window_s)
    finally:
        for b in arms.values():
            b.close()
    latencies = {n: r.latencies_s for n, r in result.arms.items()}
    base = {"format": "benchwatch-verdict/1", "suite": suite.name,
            "suite_hash": suite.content_hash, "canary": args.canary,
            "reference": args.primary or args.baseline, "queries": result.queries_done,
            "queries_planned": result.queries_planned, "model": model, "canary_version": version,
            "primary_version": arms["primary"].info.version if "primary" in arms else None}
    try:
        verdict = judge_replay(result, suite, baseline, settings).to_dict()
    except Exception as e:  # noqa: BLE001 - partial data may not be judgeable
        verdict = {"outcome": "error", "exit_code": 3, "reason": f"could not judge: {e}",
                   "metrics": [], "settings": {}}
    if result.errors:
        # keep the per-metric figures of what was measured, but never let them pass
        verdict = {**verdict, "outcome": "error", "exit_code": 3,
                   "reason": f"could not run to the end: {result.errors[0]}; partial results "
                             f"({result.queries_done}/{result.queries_planned} queries) shown"}
    doc = {**base, "errors": list(result.errors), "verdict": verdict}
    return _finish(doc, out_dir, latencies, args, model, version, console)


def _finish(doc: dict[str, Any], out_dir: Path, latencies: dict[str, Any],
            args: argparse.Namespace, model: str, version: str, console: Any) -> int:
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
    table = Table(title=f"replay {doc.get('suite')}: {v['outcome'].upper()}")
    for col in ("metric", "outcome", "estimate", "interval", "margin", "why"):
        table.add_column(col)
    for m in v["metrics"]:
        interval = (f"[{m['lower']:.4g}, {m['upper']:.4g}]" if m.get("lower") is not None else "–")
        table.add_row(m["metric"], m["outcome"].upper(),
                      "–" if m.get("estimate") is None else f"{m['estimate']:.4g}", interval,
                      "–" if m.get("margin") is None else f"{m['margin']:g}", m.get("reason", ""))
    console.print(table)
    console.print(f"{v['outcome'].upper()}: {v.get('reason', '')}")
    console.print(f"wrote {out_dir}/verdict.json and report.html")
    grafana_annotation(v["outcome"], f"canary {doc.get('canary')}: {v['outcome'].upper()} "
                       f"({v.get('reason', '')})", [f"model:{model}", f"version:{version}"])
    if args.metrics_port:
        serve_verdict_gauge(v["outcome"], model, version, str(doc.get("canary")),
                            args.metrics_port, args.metrics_hold_s)
    return int(v["exit_code"])
