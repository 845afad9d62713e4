"""Inline SVG plots and unit formatting for the static report (no JavaScript, no CDN).

Pure functions from numbers to markup; every label that comes from Prometheus is escaped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MAPPING_COLORS = {"green": "#2ca02c", "red": "#d62728", "yellow": "#e0b400", "orange": "#ff7f0e"}
W, H = 560, 220
PAD_L, PAD_R, PAD_T, PAD_B = 64, 12, 10, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]  # (unix seconds, value), NaN dropped
    reference: bool = False


# --- units ----------------------------------------------------------------------------------
_SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def _si(v: float, suffix: str) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v:g}{' ' + suffix if suffix else ''}"
    a = abs(v)
    for scale, prefix in _SI:
        if a >= scale:
            return f"{v / scale:.3g} {prefix}{suffix}".rstrip()
    return f"{v:.3g} {suffix}".rstrip()


def fmt(v: float, unit: str) -> str:
    """A value with a Grafana unit id, readable (the subset the dashboards use)."""
    if not math.isfinite(v):
        return str(v)
    if unit == "s":
        return _si(v, "s")
    if unit == "dateTimeAsIso":  # Grafana's unit: milliseconds since the epoch
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(v / 1000))
    if unit == "percentunit":
        return f"{v * 100:.3g}%"
    if unit == "reqps":
        return _si(v, "req/s")
    if unit == "watt":
        return _si(v, "W")
    if unit == "joule":
        return _si(v, "J")
    if unit == "bytes":
        for scale, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(v) >= scale:
                return f"{v / scale:.3g} {name}"
        return f"{v:.0f} B"
    return _si(v, "")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


# --- plots ----------------------------------------------------------------------------------
def _frame(t0: float, t1: float, y0: float, y1: float, unit: str, W: int = W) -> list[str]:  # noqa: N803
    parts = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
             f'height="{H - PAD_T - PAD_B}" fill="#fff" stroke="#ccc"/>']
    for i in range(5):
        fy = i / 4
        y = PAD_T + (1 - fy) * (H - PAD_T - PAD_B)
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="10">{escape(fmt(y0 + fy * (y1 - y0), unit))}</text>')
    for i in range(4):
        fx = i / 3
        x = PAD_L + fx * (W - PAD_L - PAD_R)
        parts.append(f'<text x="{x:.1f}" y="{H - 10}" text-anchor="middle" font-size="10">'
                     f'{_clock(t0 + fx * (t1 - t0))} UTC</text>')
    return parts


def _bounds(series: Sequence[Series], lo: float | None,
            hi: float | None) -> tuple[float, float, float, float]:
    ts = [t for s in series for t, _ in s.points]
    vs = [v for s in series for _, v in s.points]
    t0, t1 = min(ts), max(ts)
    if t1 <= t0:
        t0, t1 = t0 - 30, t1 + 30
    y0 = lo if lo is not None else min(0.0, min(vs))
    y1 = hi if hi is not None else max(vs)
    if y1 <= y0:
        y1 = y0 + (abs(y0) or 1.0)
    else:
        y1 += (y1 - y0) * 0.05
    return t0, t1, y0, y1


def line_chart(series: Sequence[Series], unit: str, lo: float | None = None,
               hi: float | None = None, W: int = W) -> str:  # noqa: N803
    t0, t1, y0, y1 = _bounds(series, lo, hi)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    parts = _frame(t0, t1, y0, y1, unit, W)
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = " ".join(
            f"{PAD_L + (t - t0) / (t1 - t0) * pw:.1f},"
            f"{PAD_T + (1 - (min(max(v, y0), y1) - y0) / (y1 - y0)) * ph:.1f}"
            for t, v in s.points)
        dash = ' stroke-dasharray="6 4"' if s.reference else ""
        if len(s.points) == 1:
            x, y = pts.split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>')
        else:
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                         f'stroke-width="1.6"{dash}/>')
    return _svg(parts, W=W) + legend(series)


def heatmap(buckets: Sequence[Series], unit: str, W: int = W) -> str:  # noqa: N803
    """`buckets`: one series per cumulative `le` bound (name = the bound); cells show each
    bucket's own rate (difference of adjacent cumulative buckets)."""
    def bound(s: Series) -> float:
        return math.inf if s.name in ("+Inf", "inf") else float(s.name)

    rows = sorted(buckets, key=bound)
    times = sorted({t for s in rows for t, _ in s.points})
    if not times:
        return "<p class=nodata>no data</p>"
    values = [dict(s.points) for s in rows]
    cells: list[list[float]] = []
    for j, _ in enumerate(rows):
        cells.append([max(0.0, values[j].get(t, 0.0) - (values[j - 1].get(t, 0.0) if j else 0.0))
                      for t in times])
    # keep the rows that ever hold data (plus one either side) so the picture is readable
    used = [j for j, r in enumerate(cells) if any(v > 0 for v in r)] or [0]
    lo_j, hi_j = max(0, used[0] - 1), min(len(rows) - 1, used[-1] + 1)
    rows, cells = rows[lo_j:hi_j + 1], cells[lo_j:hi_j + 1]
    vmax = max((v for r in cells for v in r), default=0.0) or 1.0
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    cw, ch = pw / len(times), ph / len(rows)
    t0, t1 = times[0], times[-1] if times[-1] > times[0] else times[0] + 1
    parts = _frame(t0, t1, 0, 1, "", W)[:1]
    for j, row in enumerate(cells):
        y = PAD_T + ph - (j + 1) * ch
        for i, v in enumerate(row):
            if v <= 0:
                continue
            a = 0.15 + 0.85 * v / vmax
            parts.append(f'<rect x="{PAD_L + i * cw:.1f}" y="{y:.1f}" width="{cw + 0.5:.1f}" '
                         f'height="{ch:.1f}" fill="#e6550d" fill-opacity="{a:.2f}"/>')
        label = rows[j].name if rows[j].name in ("+Inf", "inf") else fmt(bound(rows[j]), unit)
        parts.append(f'<text x="{PAD_L - 4}" y="{y + ch / 2 + 3:.1f}" text-anchor="end" '
                     f'font-size="9">≤ {escape(label)}</text>')
    for i in range(4):
        fx = i / 3
        parts.append(f'<text x="{PAD_L + fx * pw:.1f}" y="{H - 10}" text-anchor="middle" '
                     f'font-size="10">{_clock(t0 + fx * (t1 - t0))} UTC</text>')
    return _svg(parts, W=W)


def state_timeline(series: Sequence[Series], mappings: Sequence[tuple[float, str, str]],
                   W: int = W) -> str:  # noqa: N803
    t0, t1, _, _ = _bounds(series, 0, 1)
    band = 22
    height = PAD_T + band * len(series) + PAD_B
    pw = W - PAD_L - PAD_R
    by_value = {v: (text, MAPPING_COLORS.get(c, c)) for v, text, c in mappings}
    parts = []
    for j, s in enumerate(series):
        y = PAD_T + j * band
        pts = list(s.points)
        for k, (t, v) in enumerate(pts):
            t_next = pts[k + 1][0] if k + 1 < len(pts) else t1
            color = by_value.get(v, ("", "#999"))[1]
            parts.append(f'<rect x="{PAD_L + (t - t0) / (t1 - t0) * pw:.1f}" y="{y}" '
                         f'width="{max(1.0, (t_next - t) / (t1 - t0) * pw):.1f}" '
                         f'height="{band - 4}" fill="{color}"/>')
        parts.append(f'<text x="{PAD_L - 4}" y="{y + 14}" text-anchor="end" font-size="9">'
                     f'{escape(s.name[:14])}</text>')
    for i in range(4):
        fx = i / 3
        parts.append(f'<text x="{PAD_L + fx * pw:.1f}" y="{height - 10}" '
                     f'text-anchor="middle" font-size="10">{_clock(t0 + fx * (t1 - t0))} UTC'
                     '</text>')
    keys = " ".join(f'<span style="color:{MAPPING_COLORS.get(c, c)}">■ {escape(text)}</span>'
                    for _, text, c in mappings)
    return _svg(parts, height, W) + f'<div class="legend">{keys}</div>' + legend(series)


def legend(series: Sequence[Series]) -> str:
    items = []
    for i, s in enumerate(series):
        style = "border-top:2px dashed" if s.reference else "border-top:2px solid"
        items.append(f'<span><i style="{style} {PALETTE[i % len(PALETTE)]}"></i>'
                     f"{escape(s.name)}</span>")
    return f'<div class="legend">{"".join(items)}</div>'


def _svg(parts: Sequence[str], height: int = H, W: int = W) -> str:  # noqa: N803
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" '
            f'width="100%" role="img">{"".join(parts)}</svg>')
