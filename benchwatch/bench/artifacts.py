"""What a bench run writes: results JSON, latency arrays (.npz), drift baselines, HTML report."""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.bench.runner import BenchResult
from benchwatch.bench.suites import Suite

log = logging.getLogger(__name__)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


def new_run_dir(parent: str | Path, prefix: str) -> Path:
    """A fresh `parent/PREFIX-YYYYmmdd-HHMMSS[-k]` (two runs in one second never collide)."""
    base = Path(parent) / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    Path(parent).mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        d = base if k == 0 else base.with_name(f"{base.name}-{k}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a run directory under {parent}")


def result_dict(r: BenchResult) -> dict[str, Any]:
    ss = r.single_stream
    out: dict[str, Any] = _finite({
        "backend": r.backend.name, "detail": r.backend.detail, "model": r.backend.model,
        "version": r.backend.version, "error": r.error,
        "accuracy": {"n": r.accuracy.n, "accuracy": r.accuracy.accuracy} if r.accuracy else None,
        "single_stream": asdict(ss.summary) if ss else None,
        "offline": asdict(r.offline) if r.offline else None,
        "server": asdict(r.server) if r.server else None,
        "fixed_rate": [{"scenario": f.scenario, "target_qps": f.target_qps,
                        "achieved_qps": f.achieved_qps, "errors": f.errors,
                        **asdict(f.summary)} for f in r.fixed_rate],
        # what the probe counted per scenario (the model_call point), when it was read
        "model_call": {k: w.summary() for k, w in sorted(r.model_call.items())},
        "figures": [f.to_dict() for f in r.figures()],
        "energy_per_inference_j": r.energy_per_inference_j,
    })
    return out


def output_features(outputs: np.ndarray) -> dict[str, list[Any]]:
    """Per-row output features, built with the probes' own summarizer (same names live)."""
    from probes.summarize import summarize_output

    rows = summarize_output(outputs, kind="classifier")
    cols: dict[str, list[Any]] = {}
    for row in rows:
        for k, v in row.items():
            cols.setdefault(k, []).append(v)
    return cols


def output_summary(outputs: np.ndarray) -> dict[str, Any]:
    """What the report shows of a backend's output distribution."""
    feats = output_features(outputs)
    conf = np.array([v for v in feats.get("confidence", []) if v is not None], dtype=float)
    ent = np.array([v for v in feats.get("entropy", []) if v is not None], dtype=float)
    classes: dict[str, int] = {}
    for c in feats.get("predicted_class", []):
        classes[str(c)] = classes.get(str(c), 0) + 1
    out: dict[str, Any] = {"predicted_class_counts": dict(sorted(classes.items()))}
    if len(conf):
        out.update(confidence_p05=float(np.quantile(conf, 0.05)),
                   confidence_p50=float(np.quantile(conf, 0.5)),
                   confidence_p95=float(np.quantile(conf, 0.95)))
    if len(ent):
        out["entropy_mean"] = float(ent.mean())
    return out


def build_baseline(r: BenchResult, suite: Suite, version: str | None = None) -> Any:
    """A `drift.Baseline` from the accuracy pass's outputs and the run's figures."""
    from drift.baseline import Baseline

    if r.accuracy is None:
        raise ValueError("no accuracy pass: nothing to build a baseline from")
    from benchwatch.feature_kinds import feature_kind

    features = output_features(r.accuracy.outputs)
    return Baseline.build(
        r.backend.model, version or r.backend.version or "unversioned",
        features, r.figures(),
        source=f"benchwatch bench --backend {r.backend.name} --suite {suite.name} "
               f"({suite.content_hash})",
        # the same typing as `benchwatch baseline build`: one kind per column name
        kinds={n: feature_kind(n, v, typed=True) for n, v in features.items()})


def write_run(out_dir: Path, suite: Suite, results: Sequence[BenchResult],
              settings: Mapping[str, Any], baseline_version: str | None = None,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from benchwatch.report.bench import bench_html

    out_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "format": "benchwatch-bench/1", "suite": suite.name, "suite_hash": suite.content_hash,
        "model": results[0].backend.model if results else None, "settings": dict(settings),
        "host": f"{platform.node()} · {platform.processor() or platform.machine()} · "
                f"python {platform.python_version()}",
        "runs": [result_dict(r) for r in results], "baselines": {}, **(extra or {}),
    }
    doc["outputs"] = {r.backend.name: output_summary(r.accuracy.outputs)
                      for r in results if r.accuracy is not None}
    lat = {r.backend.name: r.single_stream.latencies_s for r in results if r.single_stream}
    np.savez_compressed(out_dir / "latencies.npz", **lat)  # type: ignore[arg-type]  # numpy stub: allow_pickle
    for r in results:
        if r.accuracy is None or r.backend.name == "null":
            continue
        try:
            b = build_baseline(r, suite, baseline_version)
            path = b.save(out_dir / f"baseline-{r.backend.name}.json")
            doc["baselines"][r.backend.name] = str(path)
        except Exception as e:  # noqa: BLE001 - a baseline failure must not lose the run
            log.error("could not build a baseline for %s: %s", r.backend.name, e)
            doc["baselines"][r.backend.name] = f"error: {e}"
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "report.html").write_text(bench_html(doc, lat))
    return doc
