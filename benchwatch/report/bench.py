"""The bench and replay reports: one self-contained HTML file per run (`report.html`).

`bench_html` is the side-by-side table of backends with their latency CDFs and output
distributions; `verdict_html` is the replay verdict with each ratio's interval against its
margin. Charts, colours, number formats and the page come from `benchwatch.report.svg` and
`benchwatch.report.html`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchwatch.report.html import esc, page, table
from benchwatch.report.svg import Interval, cdf, color, fmt, interval_plot

__all__ = ["OUTCOME_COLORS", "bench_html", "verdict_html", "outputs_table", "intervals",
           "fmt_s"]

OUTCOME_COLORS = {"pass": color("green"), "fail": color("red"),
                  "inconclusive": color("orange"), "not_measured": color("gray"),
                  "error": color("dark-red")}


def fmt_s(v: float | None) -> str:
    """Seconds, readable (12.3 ms): what the bench table and the CLI print for latencies."""
    return fmt(v, "s")


def _latency_figure(latencies: Mapping[str, np.ndarray]) -> str:
    return ('<div class="panel figure"><p class="caption">Latency CDF (log scale)</p>'
            f"{cdf(latencies)}</div>")


def bench_html(doc: Mapping[str, Any], latencies: Mapping[str, np.ndarray]) -> str:
    """The side-by-side bench report. `doc` is the run's results.json content."""
    rows = []
    for r in doc["runs"]:
        ss = r.get("single_stream") or {}
        notes = [f"{k} not significant" for k, ok in ss.get("significant", {}).items() if not ok]
        if r.get("error"):
            notes.append(f"stopped: {r['error']}")
        rows.append([
            f"{esc(r['backend'])}<div class='muted'>{esc(r.get('detail', ''))}</div>",
            fmt_s(ss.get("p50_s")), fmt_s(ss.get("p90_s")), fmt_s(ss.get("p99_s")),
            fmt((r.get("offline") or {}).get("throughput_qps"), "locale"),
            fmt((r.get("server") or {}).get("best_qps"), "locale"),
            fmt((r.get("accuracy") or {}).get("accuracy"), digits=4),
            fmt(r.get("energy_per_inference_j"), "joule"),
            f"<span class='note warn'>{esc('; '.join(notes))}</span>"])
    runs = table(["backend", "p50", "p90", "p99", "offline samples/s",
                  "server QPS @ p99 ≤ bound", "accuracy", "energy / inference", "notes"], rows)
    s = doc.get("settings", {})
    body = (f"<h1>benchwatch bench: {esc(doc.get('model'))} on suite {esc(doc.get('suite'))}</h1>"
            f"<p class='meta'>suite hash {esc(doc.get('suite_hash'))} · seed {esc(s.get('seed'))}"
            f" · {esc(s.get('single_stream_queries'))} single-stream queries after "
            f"{esc(s.get('warmup_queries'))} warm-up · offline batch "
            f"{esc(s.get('offline_batch_size'))} · server bound p99 ≤ "
            f"{fmt_s(s.get('server_latency_bound_s'))} · {esc(doc.get('host', ''))}</p>"
            f"{runs}<h2>Single-stream latency</h2>{_latency_figure(latencies)}"
            f"<h2>Output distributions (accuracy pass)</h2>{outputs_table(doc.get('outputs', {}))}"
            "<p class='muted'>Percentiles need ≥ 64 queries (p90) and ≥ 662 (p99) to be "
            "significant at 99% confidence; warm-up queries are excluded.</p>")
    return page("benchwatch bench", body)


def outputs_table(outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """Per backend: confidence percentiles, mean entropy and predicted-class counts."""
    if not outputs:
        return "<p class='muted'>no outputs recorded</p>"
    classes = sorted({c for o in outputs.values() for c in o.get("predicted_class_counts", {})},
                     key=lambda c: (len(c), c))
    rows = []
    for name, o in outputs.items():
        counts = o.get("predicted_class_counts", {})
        conf = " / ".join(fmt(o.get(k)) for k in ("confidence_p05", "confidence_p50",
                                                  "confidence_p95"))
        rows.append([esc(name), conf, fmt(o.get("entropy_mean")),
                     *(str(counts.get(c, 0)) for c in classes)])
    return table(["backend", "confidence p5 / p50 / p95", "mean entropy",
                  *(f"class {c}" for c in classes)], rows)


def intervals(metrics: Sequence[Mapping[str, Any]]) -> list[Interval]:
    """The ratio metrics of a verdict as `interval_plot` rows, coloured by outcome."""
    return [Interval(m["metric"], m["lower"], m["upper"], m.get("estimate"), m.get("margin"),
                     OUTCOME_COLORS.get(m["outcome"], "#333"), m["outcome"][:4])
            for m in metrics
            if m.get("lower") is not None and m.get("upper") is not None
            and str(m.get("direction", "")).startswith("ratio")]


def _margins(settings: Mapping[str, Any]) -> str:
    """`p50 ×1.1, p90 ×1.25, p99 ×1.5`: the judge's latency margins."""
    return ", ".join(f"{q} ×{m:g}" for q, m in settings.get("latency_margins", {}).items())


def verdict_html(doc: Mapping[str, Any], latencies: Mapping[str, np.ndarray]) -> str:
    """The replay report: verdict, per-metric intervals vs margins, CDFs, errors."""
    v = doc["verdict"]
    rows = []
    for m in v["metrics"]:
        unit = "s" if m["metric"].startswith("latency") else "none"
        interval = (f"[{fmt(m.get('lower'), digits=4)}, {fmt(m.get('upper'), digits=4)}]"
                    if m.get("lower") is not None else "–")
        outcome = m["outcome"]
        rows.append([
            esc(m["metric"]) + ("" if m["gating"] else " <span class='muted'>(info)</span>"),
            f"<b style='color:{OUTCOME_COLORS.get(outcome, '#333')}'>{esc(outcome.upper())}</b>",
            fmt(m.get("canary_value"), unit, 4), fmt(m.get("reference_value"), unit, 4),
            fmt(m.get("estimate"), digits=4), interval, fmt(m.get("margin"), digits=4),
            fmt(m.get("p_fail_holm")), f"{m.get('n_canary', 0)} / {m.get('n_reference', 0)}",
            f"<span class='note'>{esc(m.get('reason', ''))}</span>"])
    metrics = table(["metric", "outcome", "canary", "reference", "estimate", "interval",
                     "margin", "p fail (Holm)", "n canary / ref", "why"], rows)
    errors = doc.get("errors") or []
    err_html = ("<h2>Errors</h2><ul>" + "".join(f"<li>{esc(e)}</li>" for e in errors) + "</ul>"
                if errors else "")
    s = v.get("settings", {})
    plot = ('<div class="panel figure"><p class="caption">canary / reference ratio (log scale): '
            f"interval vs margin (dashed), dot = estimate</p>{interval_plot(intervals(v['metrics']))}"
            "</div>")
    body = (f"<h1>benchwatch replay: {esc(doc.get('suite'))}</h1>"
            f"<div class='banner' style='background:{OUTCOME_COLORS.get(v['outcome'], '#333')}'>"
            f"{esc(v['outcome'].upper())}</div><p>{esc(v.get('reason', ''))}</p>"
            f"<p class='meta'>canary {esc(doc.get('canary'))} · reference "
            f"{esc(doc.get('reference'))} · α = {esc(s.get('alpha'))} (Holm across gating "
            f"metrics) · latency margins {esc(_margins(s))} · accuracy margin "
            f"{esc(s.get('accuracy_margin'))} · {esc(doc.get('queries'))} queries per arm</p>"
            f"{err_html}{metrics}<h2>Intervals against margins</h2>{plot}"
            f"<h2>Latency</h2>{_latency_figure(latencies)}")
    return page("benchwatch replay", body)
