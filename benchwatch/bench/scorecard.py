"""The scorecard of a bench run: per backend accuracy, p50/p99, throughput, J/inference (where
measured), robustness (benchwatch.bench.robustness) and cost (benchwatch.bench.cost), as one
row each; robustness and cost also become the backend's baseline figures."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from benchwatch.bench.cost import Cost, Prices, cost
from benchwatch.bench.robustness import Robustness
from benchwatch.bench.runner import BenchResult
from benchwatch.bench.slices import slice_columns, slice_figures, slice_report
from benchwatch.bench.suites import Suite


@dataclass(frozen=True)
class Card:
    backend: str
    detail: str
    accuracy: float | None
    p50_s: float | None
    p99_s: float | None
    throughput_qps: float | None
    energy_per_inference_j: float | None
    robustness: Robustness | None
    cost: Cost | None
    # per declared slice column and value: accuracy and parity (benchwatch.bench.slices)
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        rob, c = self.robustness, self.cost
        return {"backend": self.backend, "detail": self.detail, "accuracy": self.accuracy,
                "latency_p50_s": self.p50_s, "latency_p99_s": self.p99_s,
                "throughput_qps": self.throughput_qps,
                "energy_per_inference_j": self.energy_per_inference_j,
                "mce": rob.mce if rob else None,
                "mean_corruption_error": rob.mean_error if rob else None,
                "flip_rate": rob.flip_rate if rob else None,
                "cost_per_1k_inferences_usd": c.per_1k_usd if c else None,
                "cost_to_target_usd": c.to_target_usd if c else None,
                "robustness": rob.to_dict() if rob else None, "cost": c.to_dict() if c else None,
                "slices": self.slices}


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def card(r: BenchResult, suite: Suite, robustness: Robustness | None, prices: Prices,
         accuracy_target: float | None) -> Card:
    s = r.single_stream.summary if r.single_stream else None
    acc = _finite(r.accuracy.accuracy) if r.accuracy else None
    c = None
    if prices.configured and r.offline is not None:
        target = accuracy_target if accuracy_target is not None else suite.metadata.get(
            "accuracy_target")
        c = cost(prices, r.offline.throughput_qps, r.energy_per_inference_j, acc,
                 None if target is None else float(target), len(suite))
    sliced = (slice_report(r.accuracy.outputs, suite)
              if r.accuracy is not None and slice_columns(suite) else None)
    return Card(r.backend.name, r.backend.detail, acc, _finite(s.p50_s) if s else None,
                _finite(s.p99_s) if s else None,
                r.offline.throughput_qps if r.offline else None, r.energy_per_inference_j,
                robustness, c, sliced)


def with_scorecard(r: BenchResult, c: Card) -> BenchResult:
    """`r` with the card's robustness and cost as baseline figures."""
    extra = list(c.robustness.figures()) if c.robustness else []
    if c.cost:
        extra += c.cost.figures(r.client_point)
    if c.slices:
        extra += slice_figures(c.slices)
    return replace(r, extra_figures=tuple(extra))


def scorecards(results: Sequence[BenchResult], suite: Suite,
               robustness: Mapping[str, Robustness | None], prices: Prices,
               accuracy_target: float | None) -> tuple[list[BenchResult], list[Card]]:
    cards = [card(r, suite, robustness.get(r.backend.name), prices, accuracy_target)
             for r in results]
    return [with_scorecard(r, c) for r, c in zip(results, cards, strict=True)], cards


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def print_scorecard(cards: Sequence[Card], title: str, energy: bool) -> None:
    """The scorecard table on stdout."""
    from rich.console import Console
    from rich.table import Table

    from benchwatch.report.bench import fmt_s

    table = Table(title=title)
    cols = ["backend", "accuracy", "p50", "p99", "samples/s", *(["J/inference (device)"] if energy else []),
            "mCE", "corruption err", "flip rate", "$/1k inf", "$ to target"]
    for col in cols:
        table.add_column(col, justify="right")
    for c in cards:
        rob = c.robustness
        table.add_row(
            c.backend, _fmt(c.accuracy, ".4f"), fmt_s(c.p50_s) if c.p50_s else "–",
            fmt_s(c.p99_s) if c.p99_s else "–", _fmt(c.throughput_qps, ",.0f"),
            *([_fmt(c.energy_per_inference_j, ".3g")] if energy else []),
            _fmt(rob.mce if rob else None, ".3f"), _fmt(rob.mean_error if rob else None, ".3f"),
            _fmt(rob.flip_rate if rob else None, ".4f"),
            _fmt(c.cost.per_1k_usd if c.cost else None, ".3g"),
            _fmt(c.cost.to_target_usd if c.cost else None, ".3g"))
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for c in cards:
        for col, values in (c.slices or {}).items():
            parts = []
            for v, e in values.items():
                flags = [k.removesuffix("_parity") for k in ("accuracy_parity",
                         "positive_rate_parity") if e.get(k, {}).get("disparity")]
                parts.append(f"{v} {e['accuracy']:.3f} (n {e['n']})"
                             + (f" DISPARITY: {', '.join(flags)}" if flags else ""))
            console.print(f"{c.backend} accuracy by {col}: " + "; ".join(parts))
