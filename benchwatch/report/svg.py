"""Inline SVG charts, the palette and unit formatting shared by the static reports.

Pure functions from numbers to markup: no JavaScript, nothing fetched, every label escaped.
Charts: `line_chart` (over time), `heatmap` (histogram buckets over time), `state_timeline`,
`cdf` (empirical CDFs on a log axis), `interval_plot` (intervals against a bound), `legend`.
Numbers: `fmt(value, unit)` with Grafana's unit ids, so a panel's unit reads the same here as in
Grafana.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

__all__ = ["PALETTE", "W", "H", "Series", "Interval", "Axes", "color", "fmt", "line_chart",
           "heatmap", "state_timeline", "cdf", "interval_plot", "legend"]

# one palette for every report: series by index, named colours as Grafana's value mappings and
# the replay outcomes use them
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
NAMED = {"green": "#2ca02c", "red": "#d62728", "yellow": "#e0b400", "orange": "#ff7f0e",
         "blue": "#1f77b4", "purple": "#9467bd", "gray": "#888888", "dark-red": "#7f0000"}
HEAT = "#e6550d"
W, H = 560, 220
PAD_L, PAD_R, PAD_T, PAD_B = 64, 12, 10, 28
# 9-unit label text: a generous average glyph width (wide glyphs, bold fallbacks) and the
# vertical room one line needs
CHAR_W, LABEL_GAP = 5.6, 12.0


def color(name: str) -> str:
    """A Grafana colour name ("green", "dark-red", ...) or any CSS colour, as CSS."""
    return NAMED.get(name, name)


def series_color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]  # (x, y), finite; x is unix seconds on time charts
    reference: bool = False  # drawn dashed: a baseline to compare the others with


@dataclass(frozen=True)
class Interval:
    """One row of `interval_plot`: [lower, upper] with an optional point estimate, and the
    `bound` (drawn dashed) the interval is judged against."""
    label: str
    lower: float
    upper: float
    estimate: float | None = None
    bound: float | None = None
    color: str = PALETTE[0]
    note: str = ""


# --- units ----------------------------------------------------------------------------------
_SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def _digits(v: float, digits: int) -> str:
    text = f"{v:.{digits}g}"
    return f"{v:,.0f}" if "e+" in text else text  # 12345 reads better than 1.23e+04


def _si(v: float, suffix: str, digits: int, largest: float = 1e9) -> str:
    a = abs(v)
    if a == 0:
        return f"0 {suffix}".rstrip()
    for scale, prefix in _SI:
        if scale <= largest and a >= scale:
            return f"{_digits(v / scale, digits)} {prefix}{suffix}".rstrip()
    return f"{_digits(v / 1e-9, digits)} n{suffix}".rstrip()


def fmt(v: float | None, unit: str = "none", digits: int = 3) -> str:
    """`v` readable in a Grafana unit id, "–" when missing or not finite.

    "s" (12.3 ms), "percentunit" (25%), "reqps", "watt", "joule" (SI prefixes), "bytes" (3 GiB),
    "dateTimeAsIso" (milliseconds since the epoch), "locale" (1,234), "none" (plain, `digits`
    significant digits); any other id, "short" included, gets SI prefixes and no suffix.
    """
    if v is None or not math.isfinite(v):
        return "–"
    if unit == "none":
        return _digits(v, digits)
    if unit == "locale":
        return f"{v:,.0f}"
    if unit == "s":
        return _si(v, "s", digits, largest=1.0)  # 1500 s, not 1.5 ks
    if unit == "dateTimeAsIso":
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(v / 1000))
    if unit == "percentunit":
        return f"{_digits(v * 100, digits)}%"
    if unit == "bytes":
        for scale, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(v) >= scale:
                return f"{_digits(v / scale, digits)} {name}"
        return f"{v:.0f} B"
    suffix = {"reqps": "req/s", "watt": "W", "joule": "J"}.get(unit, "")
    return _si(v, suffix, digits)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(t))


# --- axes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axes:
    """A chart's plot area (pixels, inside margins) and the data ranges it maps onto."""
    x0: float
    x1: float
    y0: float
    y1: float
    width: int = W
    height: int = H
    left: int = PAD_L
    right: int = PAD_R
    top: int = PAD_T
    bottom: int = PAD_B
    log_x: bool = False  # x0, x1 > 0; drawn on a log10 scale

    @property
    def pw(self) -> float:
        return self.width - self.left - self.right

    @property
    def ph(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, v: float) -> float:
        if self.log_x:
            lo, hi = math.log10(self.x0), math.log10(self.x1)
            f = (math.log10(max(v, self.x0)) - lo) / (hi - lo)
        else:
            f = (v - self.x0) / (self.x1 - self.x0)
        return self.left + f * self.pw

    def y(self, v: float) -> float:
        v = min(max(v, self.y0), self.y1)
        return self.top + (1 - (v - self.y0) / (self.y1 - self.y0)) * self.ph

    def frame(self) -> str:
        return (f'<rect x="{self.left}" y="{self.top}" width="{self.pw}" height="{self.ph}" '
                'fill="#fff" stroke="#ccc"/>')

    def y_ticks(self, ticks: Iterable[tuple[float, str]], grid: bool = True) -> list[str]:
        out = []
        for v, label in ticks:
            y = self.y(v)
            if grid:
                out.append(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{y:.1f}" '
                           f'y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end" '
                       f'font-size="10">{escape(label)}</text>')
        return out

    def x_ticks(self, ticks: Iterable[tuple[float, str]], grid: bool = False) -> list[str]:
        out = []
        for v, label in ticks:
            x = self.x(v)
            if grid:
                out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" '
                           f'y2="{self.height - self.bottom}" stroke="#eee"/>')
            anchor = "end" if x + 3 * len(label) > self.width else "middle"  # stay inside
            out.append(f'<text x="{x:.1f}" y="{self.height - self.bottom + 16}" '
                       f'text-anchor="{anchor}" font-size="10">{escape(label)}</text>')
        return out

    def time_ticks(self) -> list[str]:
        ts = [self.x0 + f * (self.x1 - self.x0) for f in (0, 1 / 3, 2 / 3, 1)]
        return self.x_ticks((t, _clock(t)) for t in ts)

    def lines(self, series: Sequence[Series]) -> list[str]:
        """Each series as a polyline (a dot when it has one point), coloured by index."""
        out = []
        for i, s in enumerate(series):
            c = series_color(i)
            if len(s.points) == 1:
                (x, y), = s.points
                out.append(f'<circle cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="3" '
                           f'fill="{c}"/>')
                continue
            pts = " ".join(f"{self.x(x):.1f},{self.y(y):.1f}" for x, y in s.points)
            dash = ' stroke-dasharray="6 4"' if s.reference else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" '
                       f'stroke-width="1.6"{dash}/>')
        return out


def _svg(parts: Sequence[str], width: int = W, height: int = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img">{"".join(parts)}</svg>')


def legend(series: Sequence[Series], colors: Sequence[str] | None = None) -> str:
    """Swatch and name per series, in the colours `Axes.lines` draws them (or `colors`)."""
    items = []
    for i, s in enumerate(series):
        c = colors[i] if colors else series_color(i)
        style = f"border-top:2px {'dashed' if s.reference else 'solid'} {c}"
        items.append(f'<span><i style="{style}"></i>{escape(s.name)}</span>')
    return f'<div class="legend">{"".join(items)}</div>'


# --- charts ---------------------------------------------------------------------------------
def _time_range(series: Sequence[Series]) -> tuple[float, float]:
    ts = [t for s in series for t, _ in s.points]
    t0, t1 = min(ts), max(ts)
    return (t0 - 30, t1 + 30) if t1 <= t0 else (t0, t1)


def line_chart(series: Sequence[Series], unit: str, lo: float | None = None,
               hi: float | None = None, W: int = W) -> str:  # noqa: N803
    """Series over time (x: unix seconds) with `unit` on the y axis; `lo`/`hi` pin its range."""
    t0, t1 = _time_range(series)
    vs = [v for s in series for _, v in s.points]
    y0 = lo if lo is not None else min(0.0, min(vs))
    y1 = hi if hi is not None else max(vs)
    if y1 <= y0:
        y1 = y0 + (abs(y0) or 1.0)
    elif hi is None:
        y1 += (y1 - y0) * 0.05  # headroom: the top line stays visible
    ax = Axes(t0, t1, y0, y1, width=W)
    ticks = [(y0 + f * (y1 - y0), fmt(y0 + f * (y1 - y0), unit)) for f in (0, .25, .5, .75, 1)]
    parts = [ax.frame(), *ax.y_ticks(ticks), *ax.time_ticks(), *ax.lines(series)]
    return _svg(parts, W) + legend(series)


def heatmap(buckets: Sequence[Series], unit: str, W: int = W) -> str:  # noqa: N803
    """`buckets`: one series per cumulative `le` bound (name = the bound); cells show each
    bucket's own rate (difference of adjacent cumulative buckets)."""
    def bound(s: Series) -> float:
        return math.inf if s.name in ("+Inf", "inf") else float(s.name)

    rows = sorted(buckets, key=bound)
    times = sorted({t for s in rows for t, _ in s.points})
    if not times:
        return '<p class="nodata">no data</p>'
    values = [dict(s.points) for s in rows]
    cells = [[max(0.0, values[j].get(t, 0.0) - (values[j - 1].get(t, 0.0) if j else 0.0))
              for t in times] for j in range(len(rows))]
    # keep the rows that ever hold data (plus one either side) so the picture is readable
    used = [j for j, r in enumerate(cells) if any(v > 0 for v in r)] or [0]
    lo_j, hi_j = max(0, used[0] - 1), min(len(rows) - 1, used[-1] + 1)
    rows, cells = rows[lo_j:hi_j + 1], cells[lo_j:hi_j + 1]
    vmax = max((v for r in cells for v in r), default=0.0) or 1.0
    t0, t1 = times[0], times[-1] if times[-1] > times[0] else times[0] + 1
    ax = Axes(t0, t1, 0.0, 1.0, width=W)
    cw, ch = ax.pw / len(times), ax.ph / len(rows)
    # one label every `every` rows: 9-unit text needs LABEL_GAP units, or labels overprint
    every = max(1, math.ceil(LABEL_GAP / ch))
    parts = [ax.frame()]
    for j, row in enumerate(cells):
        y = ax.top + ax.ph - (j + 1) * ch
        for i, v in enumerate(row):
            if v > 0:
                parts.append(f'<rect x="{ax.left + i * cw:.1f}" y="{y:.1f}" '
                             f'width="{cw + 0.5:.1f}" height="{ch:.1f}" fill="{HEAT}" '
                             f'fill-opacity="{0.15 + 0.85 * v / vmax:.2f}"/>')
        if j % every:
            continue
        label = rows[j].name if rows[j].name in ("+Inf", "inf") else fmt(bound(rows[j]), unit)
        parts.append(f'<text x="{ax.left - 4}" y="{y + ch / 2 + 3:.1f}" text-anchor="end" '
                     f'font-size="9">≤ {escape(label)}</text>')
    parts += ax.time_ticks()
    return _svg(parts, W)


def state_timeline(series: Sequence[Series], mappings: Sequence[tuple[float, str, str]],
                   W: int = W) -> str:  # noqa: N803
    """One band per series, coloured by the state each value maps to (value, text, colour)."""
    t0, t1 = _time_range(series)
    band = 22
    # the label column is as wide as the longest name needs (up to 40% of the chart), so a
    # "model version feature" row is read whole; a longer name is cut at the end, marked "…"
    most = max(8, int(W * 0.4 / CHAR_W))
    labels = [s.name if len(s.name) <= most else s.name[:most - 1] + "…" for s in series]
    left = max(PAD_L, math.ceil(8 + CHAR_W * max(map(len, labels), default=0)))
    ax = Axes(t0, t1, 0.0, 1.0, width=W, height=PAD_T + band * len(series) + PAD_B, left=left)
    by_value = {v: color(c) for v, _, c in mappings}
    parts = []
    for j, (s, label) in enumerate(zip(series, labels, strict=True)):
        y = ax.top + j * band
        for k, (t, v) in enumerate(s.points):
            t_next = s.points[k + 1][0] if k + 1 < len(s.points) else t1
            parts.append(f'<rect x="{ax.x(t):.1f}" y="{y}" '
                         f'width="{max(1.0, ax.x(t_next) - ax.x(t)):.1f}" height="{band - 4}" '
                         f'fill="{by_value.get(v, "#999")}"/>')
        parts.append(f'<text x="{ax.left - 4}" y="{y + 14}" text-anchor="end" font-size="9">'
                     f'<title>{escape(s.name)}</title>{escape(label)}</text>')
    parts += ax.time_ticks()
    keys = "".join(f'<span style="color:{color(c)}">■ {escape(text)}</span>'
                   for _, text, c in mappings)
    return _svg(parts, W, ax.height) + f'<div class="legend">{keys}</div>'


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten in [lo, hi]; 1-2-5 steps as well when that gives fewer than three."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for steps in ((1,), (1, 2, 5)):
        ticks = [m * 10.0**e for e in decades for m in steps if lo <= m * 10.0**e <= hi * 1.0001]
        if len(ticks) >= 3:
            break
    return ticks


def cdf(samples: Mapping[str, Sequence[float] | np.ndarray], unit: str = "s", W: int = 720,  # noqa: N803
        H: int = 300, max_points: int = 800) -> str:  # noqa: N803
    """Empirical CDF per named sample set (latencies, say) on a log x axis, with a legend."""
    sorted_ = {k: np.sort(np.asarray(v, float)) for k, v in samples.items() if len(v)}
    if not sorted_:
        return '<p class="muted">no samples</p>'
    lo = max(min(float(v[0]) for v in sorted_.values()), 1e-9)
    hi = max(float(v[-1]) for v in sorted_.values())
    ax = Axes(lo, hi if hi > lo else lo * 10, 0.0, 1.0, width=W, height=H, log_x=True)
    series = []
    for name, arr in sorted_.items():
        n = len(arr)
        idx = list(range(0, n, max(1, n // max_points))) + [n - 1]  # bounded page size
        series.append(Series(f"{name} (n={n})",
                             tuple((float(arr[j]), (j + 1) / n) for j in idx)))
    parts = [ax.frame(), *ax.y_ticks((p, f"{p:g}") for p in (0, 0.5, 0.9, 0.99)),
             *ax.x_ticks(((v, fmt(v, unit)) for v in _log_ticks(ax.x0, ax.x1)), grid=True),
             *ax.lines(series)]
    return _svg(parts, W, H) + legend(series)


_RATIO_TICKS = (0.01, 0.1, 0.2, 0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0)


def interval_plot(rows: Sequence[Interval], reference: float = 1.0, W: int = 720,  # noqa: N803
                  label_width: int = 150) -> str:
    """Intervals on a log x axis (ratios), one row each: the bar is [lower, upper], the dot the
    estimate, the dashed tick the bound it is judged against, the grey line `reference`."""
    rows = [r for r in rows if r.lower > 0 and r.upper > 0]
    if not rows:
        return '<p class="muted">no intervals to draw</p>'
    vals = [v for r in rows for v in (r.lower, r.upper, r.bound or reference) if v > 0]
    vals.append(reference)
    row_h = 34
    ax = Axes(min(vals) / 1.05, max(vals) * 1.05, 0.0, 1.0, width=W,
              height=PAD_T + row_h * len(rows) + PAD_B, left=label_width, right=40, log_x=True)
    parts = [ax.frame()]
    ticks: list[float] = []
    for v in _RATIO_TICKS:  # labels at least 36 px apart
        if ax.x0 <= v <= ax.x1 and (not ticks or ax.x(v) - ax.x(ticks[-1]) >= 36):
            ticks.append(v)
    parts += ax.x_ticks(((v, f"{v:g}") for v in ticks), grid=True)
    one = ax.x(reference)
    parts.append(f'<line x1="{one:.1f}" x2="{one:.1f}" y1="{ax.top}" '
                 f'y2="{ax.height - ax.bottom}" stroke="#999"/>')
    for i, r in enumerate(rows):
        cy = ax.top + row_h * i + row_h / 2
        parts.append(f'<text x="6" y="{cy + 4:.1f}" font-size="12">{escape(r.label)}</text>')
        parts.append(f'<line x1="{ax.x(r.lower):.1f}" x2="{ax.x(r.upper):.1f}" y1="{cy:.1f}" '
                     f'y2="{cy:.1f}" stroke="{r.color}" stroke-width="5"/>')
        if r.estimate is not None and r.estimate > 0:
            parts.append(f'<circle cx="{ax.x(r.estimate):.1f}" cy="{cy:.1f}" r="5" '
                         'fill="#000"/>')
        if r.bound:
            bx = ax.x(r.bound)
            parts.append(f'<line x1="{bx:.1f}" x2="{bx:.1f}" y1="{cy - 12:.1f}" '
                         f'y2="{cy + 12:.1f}" stroke="{NAMED["red"]}" stroke-dasharray="4,3" '
                         'stroke-width="2"/>')
        if r.note:
            parts.append(f'<text x="{W - ax.right + 4}" y="{cy + 4:.1f}" font-size="10" '
                         f'fill="{r.color}">{escape(r.note)}</text>')
    return _svg(parts, W, ax.height)
