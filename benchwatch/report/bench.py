"""Self-contained HTML reports (inline SVG, no scripts, no network): bench runs and verdicts."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
OUTCOME_COLORS = {"pass": "#2ca02c", "fail": "#d62728", "inconclusive": "#ff7f0e",
                  "not_measured": "#888888", "error": "#7f0000"}
CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.banner{font-size:28px;font-weight:bold;padding:12px 18px;color:#fff;display:inline-block;
border-radius:6px}.muted{color:#777}.warn{color:#b35900}svg{background:#fff;border:1px solid #ddd}
code{background:#f5f5f5;padding:1px 4px}"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def fmt_s(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    if v < 1e-3:
        return f"{v * 1e6:.1f} µs"
    if v < 1:
        return f"{v * 1e3:.2f} ms"
    return f"{v:.2f} s"


def fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return _esc(v)


def _num(v: Any) -> str:
    return "–" if not isinstance(v, int | float) or not math.isfinite(v) else f"{v:,.0f}"


def cdf_svg(series: Mapping[str, np.ndarray], width: int = 720, height: int = 360,
            title: str = "Latency CDF (log scale)") -> str:
    """Empirical CDFs of latency samples, log-scaled x axis."""
    series = {k: np.sort(np.asarray(v, float)) for k, v in series.items() if len(v)}
    if not series:
        return "<p class='muted'>no latency samples</p>"
    lo = max(min(float(v[0]) for v in series.values()), 1e-9)
    hi = max(float(v[-1]) for v in series.values())
    lx0, lx1 = math.log10(lo), math.log10(hi) if hi > lo else math.log10(lo) + 1
    ml, mr, mt, mb = 60, 20, 30, 40
    pw, ph = width - ml - mr, height - mt - mb

    def x(v: float) -> float:
        return ml + pw * (math.log10(max(v, lo)) - lx0) / (lx1 - lx0)

    def y(p: float) -> float:
        return mt + ph * (1 - p)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>",
             f"<text x='{ml}' y='18' font-size='14'>{_esc(title)}</text>"]
    for p in (0, 0.5, 0.9, 0.99):
        parts.append(f"<line x1='{ml}' x2='{ml + pw}' y1='{y(p):.1f}' y2='{y(p):.1f}' "
                     "stroke='#eee'/>")
        parts.append(f"<text x='{ml - 6}' y='{y(p) + (8 if p == 0.99 else 4):.1f}' "
                     f"font-size='11' text-anchor='end'>{p:g}</text>")
    for e in range(math.floor(lx0), math.ceil(lx1) + 1):
        v = 10.0**e
        if lo <= v <= hi * 1.0001:
            parts.append(f"<line x1='{x(v):.1f}' x2='{x(v):.1f}' y1='{mt}' y2='{mt + ph}' "
                         "stroke='#eee'/>")
            parts.append(f"<text x='{x(v):.1f}' y='{mt + ph + 16}' font-size='11' "
                         f"text-anchor='middle'>{fmt_s(v)}</text>")
    for i, (name, arr) in enumerate(series.items()):
        n = len(arr)
        step = max(1, n // 800)  # at most ~800 points per curve
        pts = " ".join(f"{x(float(arr[j])):.1f},{y((j + 1) / n):.1f}"
                       for j in list(range(0, n, step)) + [n - 1])
        color = COLORS[i % len(COLORS)]
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='1.8' points='{pts}'/>")
        parts.append(f"<text x='{ml + 10}' y='{mt + 16 + 16 * i}' font-size='12' "
                     f"fill='{color}'>{_esc(name)} (n={n})</text>")
    parts.append(f"<rect x='{ml}' y='{mt}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>")
    parts.append("</svg>")
    return "".join(parts)


def intervals_svg(metrics: Sequence[Mapping[str, Any]], width: int = 720) -> str:
    """Each ratio metric's (1 − 2α) interval against its margin (dashed) and 1.0 (solid)."""
    rows = [m for m in metrics if m.get("lower") is not None and m.get("upper") is not None
            and str(m.get("direction", "")).startswith("ratio")]
    if not rows:
        return "<p class='muted'>no ratio intervals to draw</p>"
    vals = [v for m in rows for v in (m["lower"], m["upper"], m["margin"] or 1.0, 1.0) if v > 0]
    lo, hi = math.log(min(vals) / 1.05), math.log(max(vals) * 1.05)  # log scale: ratios
    ml, mr, row_h = 150, 30, 34
    height = 40 + row_h * len(rows)
    pw = width - ml - mr

    def x(v: float) -> float:
        return ml + pw * (math.log(max(v, 1e-12)) - lo) / (hi - lo)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>",
             "<text x='10' y='16' font-size='13'>canary / reference ratio (log scale): interval vs margin (dashed)"
             "</text>"]
    for i, m in enumerate(rows):
        cy = 40 + row_h * i
        color = OUTCOME_COLORS.get(m["outcome"], "#333")
        parts.append(f"<text x='10' y='{cy + 4}' font-size='12'>{_esc(m['metric'])}</text>")
        parts.append(f"<line x1='{x(m['lower']):.1f}' x2='{x(m['upper']):.1f}' y1='{cy}' "
                     f"y2='{cy}' stroke='{color}' stroke-width='5'/>")
        if m.get("estimate") is not None:
            parts.append(f"<circle cx='{x(m['estimate']):.1f}' cy='{cy}' r='5' fill='#000'/>")
        if m.get("margin"):
            mx = x(float(m["margin"]))
            parts.append(f"<line x1='{mx:.1f}' x2='{mx:.1f}' y1='{cy - 12}' y2='{cy + 12}' "
                         "stroke='#d62728' stroke-dasharray='4,3' stroke-width='2'/>")
        parts.append(f"<text x='{width - mr + 2}' y='{cy + 4}' font-size='10' "
                     f"fill='{color}'>{_esc(m['outcome'][:4])}</text>")
    one = x(1.0)
    parts.append(f"<line x1='{one:.1f}' x2='{one:.1f}' y1='26' y2='{height}' stroke='#999'/>")
    parts.append(f"<text x='{one + 3:.1f}' y='{height - 4}' font-size='10'>1.0</text></svg>")
    return "".join(parts)


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def bench_html(doc: Mapping[str, Any], latencies: Mapping[str, np.ndarray]) -> str:
    """The side-by-side bench report. `doc` is the run's results.json content."""
    runs = doc["runs"]
    head = ("<tr><th>backend</th><th>p50</th><th>p90</th><th>p99</th><th>offline samples/s"
            "</th><th>server QPS @ p99 ≤ bound</th><th>accuracy</th><th>J / inference</th>"
            "<th>notes</th></tr>")
    rows = []
    for r in runs:
        ss = r.get("single_stream") or {}
        sig = ss.get("significant", {})
        notes = [f"{k} not significant" for k, ok in sig.items() if not ok]
        if r.get("error"):
            notes.append(f"stopped: {r['error']}")
        server = r.get("server") or {}
        rows.append(
            f"<tr><td>{_esc(r['backend'])}<div class='muted'>{_esc(r.get('detail', ''))}</div>"
            f"</td><td>{fmt_s(ss.get('p50_s'))}</td><td>{fmt_s(ss.get('p90_s'))}</td>"
            f"<td>{fmt_s(ss.get('p99_s'))}</td>"
            f"<td>{_num((r.get('offline') or {}).get('throughput_qps'))}</td>"
            f"<td>{_num(server.get('best_qps'))}</td>"
            f"<td>{fmt((r.get('accuracy') or {}).get('accuracy'))}</td>"
            f"<td>{fmt(r.get('energy_per_inference_j'), 3)}</td>"
            f"<td class='warn'>{_esc('; '.join(notes))}</td></tr>")
    s = doc.get("settings", {})
    body = (f"<h1>benchwatch bench: {_esc(doc.get('model'))} on suite {_esc(doc.get('suite'))}</h1>"
            f"<p class='muted'>suite hash {_esc(doc.get('suite_hash'))} · seed {_esc(s.get('seed'))}"
            f" · {_esc(s.get('single_stream_queries'))} single-stream queries after "
            f"{_esc(s.get('warmup_queries'))} warm-up · offline batch {_esc(s.get('offline_batch_size'))}"
            f" · server bound p99 ≤ {fmt_s(s.get('server_latency_bound_s'))} · "
            f"{_esc(doc.get('host', ''))}</p>"
            f"<table>{head}{''.join(rows)}</table>"
            f"<h2>Single-stream latency</h2>{cdf_svg(latencies)}"
            f"<h2>Output distributions (accuracy pass)</h2>{outputs_table(doc.get('outputs', {}))}"
            "<p class='muted'>Percentiles need ≥ 64 queries (p90) and ≥ 662 (p99) to be "
            "significant at 99% confidence; warm-up queries are excluded.</p>")
    return page("benchwatch bench", body)


def outputs_table(outputs: Mapping[str, Mapping[str, Any]]) -> str:
    if not outputs:
        return "<p class='muted'>no outputs recorded</p>"
    classes = sorted({c for o in outputs.values() for c in o.get("predicted_class_counts", {})},
                     key=lambda c: (len(c), c))
    head = ("<tr><th>backend</th><th>confidence p5 / p50 / p95</th><th>mean entropy</th>"
            + "".join(f"<th>class {_esc(c)}</th>" for c in classes) + "</tr>")
    rows = []
    for name, o in outputs.items():
        counts = o.get("predicted_class_counts", {})
        conf = " / ".join(fmt(o.get(k), 3) for k in ("confidence_p05", "confidence_p50",
                                                    "confidence_p95"))
        rows.append(f"<tr><td>{_esc(name)}</td><td>{conf}</td><td>{fmt(o.get('entropy_mean'), 3)}"
                    "</td>" + "".join(f"<td>{counts.get(c, 0)}</td>" for c in classes) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def verdict_html(doc: Mapping[str, Any], latencies: Mapping[str, np.ndarray]) -> str:
    """The replay report: verdict, per-metric intervals vs margins, CDFs, errors."""
    v = doc["verdict"]
    color = OUTCOME_COLORS.get(v["outcome"], "#333")
    head = ("<tr><th>metric</th><th>outcome</th><th>canary</th><th>reference</th>"
            "<th>estimate</th><th>interval</th><th>margin</th><th>p fail (Holm)</th>"
            "<th>n canary / ref</th><th>why</th></tr>")
    rows = []
    for m in v["metrics"]:
        is_lat = m["metric"].startswith("latency")
        cv = fmt_s(m.get("canary_value")) if is_lat else fmt(m.get("canary_value"))
        rv = fmt_s(m.get("reference_value")) if is_lat else fmt(m.get("reference_value"))
        interval = (f"[{fmt(m.get('lower'))}, {fmt(m.get('upper'))}]"
                    if m.get("lower") is not None else "–")
        rows.append(
            f"<tr><td>{_esc(m['metric'])}{'' if m['gating'] else ' <span class=muted>(info)</span>'}"
            f"</td><td style='color:{OUTCOME_COLORS.get(m['outcome'], '#333')};font-weight:bold'>"
            f"{_esc(m['outcome'].upper())}</td><td>{cv}</td><td>{rv}</td>"
            f"<td>{fmt(m.get('estimate'))}</td><td>{interval}</td><td>{fmt(m.get('margin'))}</td>"
            f"<td>{fmt(m.get('p_fail_holm'), 3)}</td>"
            f"<td>{m.get('n_canary', 0)} / {m.get('n_reference', 0)}</td>"
            f"<td>{_esc(m.get('reason', ''))}</td></tr>")
    errors = doc.get("errors") or []
    err_html = ("<h2>Errors</h2><ul>" + "".join(f"<li>{_esc(e)}</li>" for e in errors) + "</ul>"
                if errors else "")
    s = v.get("settings", {})
    body = (f"<h1>benchwatch replay: {_esc(doc.get('suite'))}</h1>"
            f"<div class='banner' style='background:{color}'>{_esc(v['outcome'].upper())}</div>"
            f"<p>{_esc(v.get('reason', ''))}</p>"
            f"<p class='muted'>canary {_esc(doc.get('canary'))} · reference "
            f"{_esc(doc.get('reference'))} · α = {_esc(s.get('alpha'))} (Holm across gating "
            f"metrics) · latency margin ×{_esc(s.get('latency_margin'))} · accuracy margin "
            f"{_esc(s.get('accuracy_margin'))} · {_esc(doc.get('queries'))} queries per arm</p>"
            f"{err_html}<table>{head}{''.join(rows)}</table>"
            f"<h2>Intervals against margins</h2>{intervals_svg(v['metrics'])}"
            f"<h2>Latency</h2>{cdf_svg(latencies)}")
    return page("benchwatch replay", body)
