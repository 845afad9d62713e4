"""`benchwatch bench` and `benchwatch replay` on a text suite (generative models): the verbs hand
over here when `--suite` names one (`benchwatch.bench.text_suite.is_text_suite`), with the same
options, run directory layout and exit codes as for a classifier suite."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any

import numpy as np

from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError
from probes.errors import BenchwatchError, require

log = logging.getLogger(__name__)


def _combine(runs: list[Any]) -> Any:
    """One backend's repeats: per-request arrays pooled, walls and joules added."""
    first = runs[0]
    if len(runs) == 1:
        return first
    energy = [r.energy_j for r in runs]
    windows = [r.model_call for r in runs]
    pooled = None
    if all(w is not None for w in windows):
        pooled = windows[0]
        for w in windows[1:]:
            pooled = pooled + w
    return dataclasses.replace(
        first, ttft_s=np.concatenate([r.ttft_s for r in runs]),
        tpot_s=np.concatenate([r.tpot_s for r in runs]),
        tokens=np.concatenate([r.tokens for r in runs]),
        duration_s=np.concatenate([r.duration_s for r in runs]),
        wall_s=sum(r.wall_s for r in runs),
        energy_j=None if any(e is None for e in energy) else sum(e for e in energy if e),
        error=next((r.error for r in runs if r.error), None), model_call=pooled)


def run_text_bench(args: argparse.Namespace) -> ExitCode:
    """`benchwatch bench --suite text [--backend onnxruntime --backend torch]`."""
    require("rich", "bench", "benchwatch bench")
    from rich.console import Console

    from benchwatch.bench.artifacts import new_run_dir
    from benchwatch.bench.energy import attribute_energy, energy_meter, with_model_call
    from benchwatch.bench.generative import (
        GenSettings,
        ProbedLm,
        ScrapedStreams,
        make_gen_backend,
        run_generative,
        write_gen_run,
    )
    from benchwatch.bench.progress import rich_progress
    from benchwatch.bench.text_suite import load_text_suite
    from benchwatch.cli.bench import _bounded, read_as_prometheus

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    suite = load_text_suite(args.suite)
    kinds = args.backend or ["onnxruntime"]
    if args.probe_metrics and "http" not in kinds:
        raise UsageError("--probe-metrics is for --backend http (in-process backends are "
                         "probed by the bench itself)")
    meter, meter_desc = energy_meter(args.energy)
    settings = GenSettings(seed=args.seed, warmup_queries=args.warmup, queries=args.queries)
    backends: dict[str, Any] = {}
    meters: dict[str, Any] = {}  # the model_call point: the probe's own histograms
    try:
        for kind in kinds:
            b = make_gen_backend(kind, args.model, args.url, args.timeout_s, args.threads,
                                 args.device)
            if kind != "http":
                b = ProbedLm(b)
                meters[kind] = b.read
            elif args.probe_metrics:
                scraped = ScrapedStreams(args.probe_metrics, b.info.model, b.info.version or None)
                if scraped.read() is None:
                    b.close()
                    raise UsageError(f"--probe-metrics {' + '.join(args.probe_metrics)}: no readable "
                                     f"gen_ai_server_time_to_first_token_seconds series of "
                                     f"{b.info.model} {b.info.version}: pass the /metrics URL "
                                     "of the probes in the server behind --url")
                meters[kind] = scraped.read
            else:
                console.print("http: no model_call figures (pass --probe-metrics URL, the "
                              "server's probe /metrics)")
            backends[kind] = b
        attributed = attribute_energy(backends.values(), meter, console.print)
        meter_desc = with_model_call(meter_desc, attributed)
        per_kind: dict[str, list[Any]] = {k: [] for k in kinds}
        for rep in range(args.repeats):  # rotated order: a busy machine hits every backend alike
            for kind in kinds[rep % len(kinds):] + kinds[: rep % len(kinds)]:
                label = f"{kind} " if args.repeats == 1 else f"{kind} #{rep + 1} "
                with rich_progress(label, enabled=not args.no_progress) as progress, \
                        read_as_prometheus(args, kind):
                    bounded = _bounded(progress, args.max_duration_s, "fewer --queries")
                    per_kind[kind].append(run_generative(backends[kind], suite, settings,
                                                         bounded, meter, meters.get(kind)))
    finally:
        for b in backends.values():
            b.close()
    results = [_combine(per_kind[k]) for k in kinds]
    out_dir = new_run_dir(args.output, results[0].backend.model)
    doc = write_gen_run(out_dir, suite, results,
                        {**dataclasses.asdict(settings), "repeats": args.repeats,
                         "energy": meter_desc, "max_tokens": suite.max_tokens,
                         "temperature": suite.temperature}, args.baseline_version, args.seed)
    _print(doc, suite, results, meter is not None, console)
    console.print(f"wrote {out_dir}/results.json, latencies.npz, baselines: "
                  f"{', '.join(doc['baselines'].values()) or 'none'}")
    from benchwatch.cli.bench import finished

    return finished(results, out_dir)


def _print(doc: dict[str, Any], suite: Any, results: list[Any], energy: bool,
           console: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from benchwatch.report.bench import fmt_s

    table = Table(title=f"{doc['model']} on {suite.name} ({len(suite)} prompts, max_tokens "
                        f"{suite.max_tokens}, temperature {suite.temperature:g})")
    cols = ["backend", "requests", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
            "output tokens/s", "stop / length"]
    # above idle (model_call: what live monitoring attributes) vs the whole device (idle included)
    for col in cols + (["J/output token (above idle)", "J/output token (device)"] if energy else []):
        table.add_column(col, justify="right")
    for r, run in zip(results, doc["runs"], strict=True):
        t, p = r.quantiles("ttft"), r.quantiles("tpot")
        stops = run["outputs"]["stop_reason_counts"]
        above = r.model_call.energy_per_output_token_j if r.model_call else None

        def f(d: dict[str, float], k: str) -> str:
            return fmt_s(d[k]) if k in d else "n.s."

        def j(v: float | None) -> str:
            return f"{v:.3g}" if v is not None else "–"

        table.add_row(r.backend.name, str(len(r.ttft_s)), f(t, "ttft_p50_s"),
                      f(t, "ttft_p99_s"), f(p, "tpot_p50_s"), f(p, "tpot_p99_s"),
                      f"{r.output_tokens_per_s:,.0f}",
                      f"{stops.get('stop', 0)} / {stops.get('length', 0)}",
                      *([j(above), j(r.energy_per_output_token_j)] if energy else []))
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    ref = results[0]
    def ratios(x: Any) -> dict[str, float]:
        q = {**x.quantiles("ttft"), **x.quantiles("tpot")}
        return {**{k.removesuffix("_s"): v for k, v in q.items()},
                "output tokens/s": x.output_tokens_per_s}

    for r in results[1:]:
        mine, theirs = ratios(r), ratios(ref)
        console.print(f"{r.backend.name} / {ref.backend.name}: " + ", ".join(
            f"{k} x{v / theirs[k]:.2f}" for k, v in mine.items() if theirs.get(k)))
    texts = {r.backend.name: tuple(g.text for g in r.outputs) for r in results if r.outputs}
    if len(set(texts.values())) > 1:
        console.print("note: the backends generated different text for some prompts "
                      f"({', '.join(texts)}); float rounding changed a pick")
    elif len(texts) > 1:
        console.print(f"identical text from {', '.join(texts)} on all {len(suite)} prompts")


def run_text_replay(args: argparse.Namespace) -> ExitCode:
    """`benchwatch replay --suite text --canary URL [--primary URL] [--baseline FILE]`."""
    for module in ("rich", "scipy"):
        require(module, "bench", "benchwatch replay")
    from rich.console import Console

    from benchwatch.bench.artifacts import new_run_dir
    from benchwatch.bench.gen_replay import gen_replay, judge_gen_replay, timing_summary
    from benchwatch.bench.generative import HttpLm
    from benchwatch.bench.progress import rich_progress
    from benchwatch.bench.suites import SuiteError
    from benchwatch.bench.text_suite import load_text_suite
    from benchwatch.cli.replay import _error_doc, _finish, judge_settings, judged
    from drift.baseline import Baseline

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    settings = judge_settings(args)
    if not args.primary and not args.baseline:
        raise UsageError("nothing to compare the canary with: pass --primary URL and/or "
                         "--baseline FILE")
    out_dir = new_run_dir(args.output, "replay")
    arms: dict[str, Any] = {}
    try:
        suite = load_text_suite(args.suite)
        baseline = Baseline.load(args.baseline) if args.baseline else None
        for name, url in (("canary", args.canary), ("primary", args.primary)):
            if url:
                b = arms[name] = HttpLm(url, args.timeout_s)
                want = suite.metadata.get("model")
                if want and b.info.model not in ("unknown", want):
                    raise SuiteError(f"suite {suite.name!r} is for model {want!r} but {url} "
                                     f"serves {b.info.model!r}: pick its suite")
    except (BenchwatchError, OSError) as exc:
        for b in arms.values():
            b.close()
        _finish(_error_doc(args, exc), out_dir, {}, args, "unknown", "unknown", console)
        raise
    try:
        with rich_progress(enabled=not args.no_progress) as progress:
            result = gen_replay(arms, suite, args.queries, args.warmup, args.seed, progress)
    finally:
        for b in arms.values():
            b.close()
    verdict = judged(lambda: judge_gen_replay(result, baseline, settings), result)
    canary = arms["canary"].info
    doc = {"format": "benchwatch-verdict/1", "task": "generation", "suite": suite.name,
           "suite_hash": suite.content_hash, "canary": args.canary,
           "reference": args.primary or args.baseline, "queries": result.queries_done,
           "queries_planned": result.queries_planned, "model": canary.model,
           "canary_version": canary.version,
           "primary_version": arms["primary"].info.version if "primary" in arms else None,
           "timings": timing_summary(result), "errors": list(result.errors), "verdict": verdict}
    # the report's latency panels show time to first token
    ttft = {n: r.ttft_s[np.isfinite(r.ttft_s)] for n, r in result.arms.items()}
    code = _finish(doc, out_dir, ttft, args, canary.model, canary.version, console)
    if verdict["outcome"] == "error":
        raise BenchwatchError(verdict["reason"])
    return code
