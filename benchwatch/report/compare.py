"""The comparison report of a bench run (`compare.html`): the scorecard per backend, a radar
chart of normalised metrics per backend, a heatmap of throughput over backend x threads x batch
size, and line charts of each metric across the model's recorded versions (the baselines found
under the run's output directory). Static HTML with inline SVG, like the other reports.

Normalising for the radar: on each axis the best backend scores 1; higher-is-better metrics
(accuracy, throughput) as value / best, lower-is-better ones (p99 latency, J/inference, mCE,
$ per 1 000 inferences) as best / value. A metric a backend lacks is drawn at 0 and named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from benchwatch.report.html import esc, page, table
from benchwatch.report.svg import Axes, Series, _svg, fmt, legend, series_color

# (scorecard key, label, unit, higher is better)
RADAR = (("accuracy", "accuracy", "percentunit", True),
         ("latency_p99_s", "p99 latency", "s", False),
         ("throughput_qps", "throughput", "short", True),
         ("energy_per_inference_j", "J/inference", "joule", False),
         ("robustness", "robustness (mCE)", "short", False),
         ("cost_per_1k_inferences_usd", "$/1k inferences", "currencyUSD", False))
# baseline figures drawn across versions: (name, points tried in order, scenario, label, unit)
HISTORY = (("accuracy", ("outputs",), "accuracy", "accuracy", "percentunit"),
           ("latency_p99_s", ("harness", "http_client"), "single_stream", "p99 latency", "s"),
           ("throughput_qps", ("harness", "http_client"), "offline", "throughput", "short"),
           ("energy_per_inference_j", ("device",), "offline", "J/inference", "joule"),
           ("mce", ("outputs",), "corruptions", "mCE", "short"),
           ("flip_rate", ("outputs",), "tiny_noise", "flip rate", "percentunit"),
           ("cost_per_1k_inferences_usd", ("harness", "http_client"), "offline",
            "$/1k inferences", "currencyUSD"))


def _fmt(v: float | None, unit: str) -> str:
    """`svg.fmt`, and dollars as $ with 3 significant digits (no SI prefix on money)."""
    if unit == "currencyUSD":
        return "–" if v is None or not math.isfinite(v) else f"${v:.3g}"
    return fmt(v, unit)


def _value(card: Mapping[str, Any], key: str) -> float | None:
    v = (card.get("mce") if card.get("mce") is not None else card.get("mean_corruption_error")) \
        if key == "robustness" else card.get(key)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def normalised(cards: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """{backend: {axis: score in [0, 1] or None when not measured}}; the best scores 1."""
    out: dict[str, dict[str, float | None]] = {c["backend"]: {} for c in cards}
    for key, _label, _unit, higher in RADAR:
        vals = {c["backend"]: _value(c, key) for c in cards}
        have = [v for v in vals.values() if v is not None]
        for b, v in vals.items():
            if v is None or not have:
                out[b][key] = None
            elif higher:
                best = max(have)
                out[b][key] = v / best if best > 0 else 1.0
            else:
                best = min(have)
                out[b][key] = 1.0 if v <= 0 or best >= v else max(best, 0.0) / v
    return out


def radar(cards: Sequence[Mapping[str, Any]], size: int = 420) -> str:
    scores = normalised(cards)
    cx = cy = size / 2
    r = size / 2 - 70
    n = len(RADAR)

    def at(i: int, f: float) -> tuple[float, float]:
        a = -math.pi / 2 + 2 * math.pi * i / n
        return cx + f * r * math.cos(a), cy + f * r * math.sin(a)

    parts = [f'<rect width="{size}" height="{size}" fill="#fff"/>']
    for ring in (0.25, 0.5, 0.75, 1.0):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(i, ring) for i in range(n)))
        parts.append(f'<polygon points="{pts}" fill="none" stroke="#ddd"/>')
    for i, (key, label, _u, _h) in enumerate(RADAR):
        x, y = at(i, 1.0)
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}" stroke="#ccc"/>')
        lx, ly = at(i, 1.18)
        missing = [b for b, s in scores.items() if s[key] is None]
        text = label + (" (not measured)" if missing and len(missing) == len(scores) else "")
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11" text-anchor="middle">'
                     f"{escape(text)}</text>")
    series = []
    for j, (backend, s) in enumerate(scores.items()):
        c = series_color(j)
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in
                       (at(i, s[key] or 0.0) for i, (key, *_r) in enumerate(RADAR)))
        parts.append(f'<polygon class="radar-series" points="{pts}" fill="{c}" '
                     f'fill-opacity="0.15" stroke="{c}" stroke-width="2"/>')
        series.append(Series(backend, ()))
    return _svg(parts, size, size) + legend(series)


def _heat(f: float) -> str:
    """White to orange by f in [0, 1]."""
    r0, g0, b0, r1, g1, b1 = 255, 255, 255, 0xe6, 0x55, 0x0d
    r, g, b = (round(c0 + (c1 - c0) * f) for c0, c1 in ((r0, r1), (g0, g1), (b0, b1)))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(cells: Sequence[Mapping[str, Any]]) -> str:
    """Throughput per (backend, threads) row and batch-size column; colour on a log scale."""
    rows = sorted({(c["backend"], c["threads"] or 0) for c in cells})
    cols = sorted({int(c["batch_size"]) for c in cells})
    value = {(c["backend"], c["threads"] or 0, int(c["batch_size"])): float(c["throughput_qps"])
             for c in cells}
    logs = [math.log10(v) for v in value.values() if v > 0]
    lo, hi = (min(logs), max(logs)) if logs else (0.0, 1.0)
    left, top, cw, ch = 150, 30, 90, 30
    width, height = left + cw * len(cols) + 10, top + ch * len(rows) + 30
    parts = [f'<rect width="{width}" height="{height}" fill="#fff"/>']
    for j, bs in enumerate(cols):
        parts.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 8}" font-size="11" '
                     f'text-anchor="middle">batch {bs}</text>')
    for i, (backend, threads) in enumerate(rows):
        y = top + i * ch
        name = f"{backend}" + (f", {threads} thread{'s' if threads > 1 else ''}" if threads else "")
        parts.append(f'<text x="{left - 6}" y="{y + ch / 2 + 4}" font-size="11" '
                     f'text-anchor="end">{escape(name)}</text>')
        for j, bs in enumerate(cols):
            v = value.get((backend, threads, bs))
            x = left + j * cw
            if v is None:
                parts.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                             'fill="#f0f0f0"/>')
                continue
            f = (math.log10(v) - lo) / (hi - lo) if v > 0 and hi > lo else 1.0
            parts.append(f'<rect class="heat-cell" x="{x}" y="{y}" width="{cw - 2}" '
                         f'height="{ch - 2}" fill="{_heat(f)}"/>')
            parts.append(f'<text x="{x + cw / 2 - 1}" y="{y + ch / 2 + 4}" font-size="11" '
                         f'text-anchor="middle">{escape(fmt(v, "short"))}/s</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="10" fill="#666">samples per '
                 "second, offline scenario (colour: log scale)</text>")
    return _svg(parts, width, height)


@dataclass(frozen=True)
class Recorded:
    """One baseline in the model's history."""

    created_at: str
    version: str
    backend: str
    figures: Mapping[str, float]  # HISTORY name -> value


def load_history(root: str | Path, model: str) -> list[Recorded]:
    """The baselines of `model` written by earlier bench runs under `root` (run directories
    holding `baseline-BACKEND.json`), oldest first; unreadable files are skipped."""
    from drift.baseline import Baseline, BaselineError

    out = []
    for path in sorted(Path(root).glob("*/baseline-*.json")):
        try:
            b = Baseline.load(path)
        except BaselineError:
            continue
        if b.model != model:
            continue
        figs = {}
        for name, points, scenario, *_ in HISTORY:
            for point in points:
                f = b.figure(name, point, scenario)
                if f is not None:
                    figs[name] = f.value
                    break
        out.append(Recorded(b.provenance.created_at, b.version,
                            path.stem.removeprefix("baseline-"), figs))
    return sorted(out, key=lambda r: (r.created_at, r.backend))


def version_lines(history: Sequence[Recorded]) -> str:
    """One small chart per metric: x = the model's versions in the order they were recorded,
    one line per backend."""
    versions: list[str] = []
    for r in history:
        if r.version not in versions:
            versions.append(r.version)
    backends = sorted({r.backend for r in history})
    charts = []
    for name, _points, _scenario, label, unit in HISTORY:
        series = []
        for b in backends:
            last: dict[int, float] = {}  # the latest baseline per version of this backend
            for r in history:
                if r.backend == b and name in r.figures:
                    last[versions.index(r.version)] = r.figures[name]
            if last:
                series.append(Series(b, tuple(sorted(last.items()))))
        if not series:
            charts.append(f'<div class="figure" style="width:420px"><p class="caption">'
                          f'{esc(label)}</p><p class="nodata">not recorded in any baseline</p>'
                          "</div>")
            continue
        vs = [v for s in series for _, v in s.points]
        y0, y1 = min(0.0, min(vs)), max(vs) * 1.05 or 1.0
        ax = Axes(-0.5, len(versions) - 0.5, y0, y1, width=420, height=180)
        ticks = [(y0 + f * (y1 - y0), _fmt(y0 + f * (y1 - y0), unit)) for f in (0, .5, 1)]
        xt = [(i, v[:12]) for i, v in enumerate(versions)]
        parts = [ax.frame(), *ax.y_ticks(ticks), *ax.x_ticks(xt), *ax.lines(series)]
        charts.append(f'<div class="figure version-line" style="width:420px">'
                      f'<p class="caption">{esc(label)}</p>'
                      f"{_svg(parts, 420, 180)}{legend(series)}</div>")
    return ('<div style="display:flex;flex-wrap:wrap;gap:12px">' + "".join(charts)
            + "</div>")


def compare_html(doc: Mapping[str, Any], grid: Sequence[Mapping[str, Any]],
                 history: Sequence[Recorded]) -> str:
    cards = doc.get("scorecard") or []
    head = ["backend", "accuracy", "p50", "p99", "samples/s", "J/inference", "mCE",
            "mean corruption error", "flip rate", "$/1k inferences", "$ to target"]
    rows = [[esc(c["backend"]), fmt(c.get("accuracy"), "percentunit"),
             fmt(c.get("latency_p50_s"), "s"), fmt(c.get("latency_p99_s"), "s"),
             fmt(c.get("throughput_qps"), "short"), fmt(c.get("energy_per_inference_j"), "joule"),
             fmt(c.get("mce"), "short"), fmt(c.get("mean_corruption_error"), "percentunit"),
             fmt(c.get("flip_rate"), "percentunit"),
             _fmt(c.get("cost_per_1k_inferences_usd"), "currencyUSD"),
             _fmt(c.get("cost_to_target_usd"), "currencyUSD")] for c in cards]
    body = [f"<h1>{esc(doc.get('model'))} on {esc(doc.get('suite'))}: backends side by side</h1>",
            f'<p class="meta">{esc(doc.get("host", ""))}</p>',
            "<h2>Scorecard</h2>", table(head, rows),
            "<h2>Normalised metrics (best backend = 1 on each axis)</h2>",
            f'<div class="figure" id="radar" style="max-width:460px">{radar(cards)}</div>'
            if cards else
            '<p class="nodata">no backend finished</p>',
            "<h2>Throughput: backend x threads x batch size</h2>",
            f'<div class="figure" id="heatmap" style="max-width:560px">{heatmap(grid)}</div>'
            if grid else
            '<p class="nodata">no grid measured (--no-grid, or no in-process backend: an '
            "endpoint's threads and batching are its server's)</p>",
            f"<h2>Across the model's recorded versions ({len(history)} baselines)</h2>",
            f'<div id="versions">{version_lines(history)}</div>' if history else
            '<p class="nodata">no baselines of this model under the output directory</p>']
    return page(f"benchwatch comparison: {doc.get('model')}", "".join(body))
