"""A static HTML report of the benchwatch dashboards, rendered from Prometheus's HTTP API.

For people without Grafana: the same panels (`benchwatch.grafana.boards`), the same PromQL with the
template variables substituted, drawn as inline SVG in one self-contained HTML file (no
JavaScript, no CDN, nothing fetched when it is opened).

    summary = write_report("http://127.0.0.1:9090", "report.html", minutes=30)
    summary.empty   # panels that returned no data, by "dashboard / panel"
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchwatch import __version__
from benchwatch.errors import UsageError
from benchwatch.grafana import boards as dashboards
from benchwatch.grafana.boards import Dashboard, Panel, Query
from benchwatch.report import svg
from benchwatch.report.html import esc, page, table
from probes.errors import BenchwatchError

log = logging.getLogger(__name__)

__all__ = ["PanelData", "ReportError", "ReportSummary", "render_html", "fetch", "write_report"]

MAX_SERIES = 20  # per panel: a readable plot, and a bounded page


class ReportError(BenchwatchError, RuntimeError):
    """Prometheus could not be reached or answered garbage; the message says which URL."""


@dataclass(frozen=True)
class PanelData:
    dashboard: str
    panel: Panel
    series: tuple[svg.Series, ...]
    errors: tuple[str, ...] = ()
    truncated: int = 0
    notes: tuple[str, ...] = ()  # a query's `missing` text, for each query that found nothing
    no_data: str = ""  # why the panel can be empty with nothing broken (Panel/Dashboard.no_data)

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel.title}"


@dataclass(frozen=True)
class ReportSummary:
    path: Path
    panels: int
    with_data: int
    empty: tuple[str, ...]
    errors: tuple[str, ...]


def _get(base: str, path: str, params: Mapping[str, str], timeout: float) -> Any:
    url = f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (user's URL)
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # PromQL errors come back as 400 with a JSON body
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise ReportError(f"{url}: HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot query Prometheus at {base}: {exc}; check --prometheus "
                          "(e.g. http://127.0.0.1:9090)") from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error", body) if isinstance(body, dict) else body
        raise ValueError(str(err))
    return body["data"]


_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend_name(fmt: str, labels: Mapping[str, str]) -> str:
    if not fmt:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return f"{{{inner}}}"
    return _LEGEND.sub(lambda mt: labels.get(mt.group(1), ""), fmt).strip()


def _points(values: Sequence[Sequence[Any]]) -> tuple[tuple[float, float], ...]:
    out = []
    for t, v in values:
        f = float(v)
        if math.isfinite(f):
            out.append((float(t), f))
    return tuple(out)


def _query(base: str, q: Query, expr: str, start: float, end: float, step: float,
           timeout: float) -> list[svg.Series]:
    if q.instant:
        data = _get(base, "/api/v1/query", {"query": expr, "time": f"{end:.3f}"}, timeout)
        return [svg.Series(legend_name(q.legend, r["metric"]),
                           _points([r["value"]]), q.reference) for r in data["result"]]
    data = _get(base, "/api/v1/query_range",
                {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                 "step": f"{step:g}"}, timeout)
    out = []
    for r in data["result"]:
        pts = _points(r["values"])
        if pts:
            out.append(svg.Series(legend_name(q.legend, r["metric"]), pts, q.reference))
    return out


def fetch(prometheus_url: str, *, start: float, end: float, step: float,
          variables: Mapping[str, str] | None = None, rate_interval: str = "1m",
          board_list: Sequence[Dashboard] | None = None,
          timeout: float = 10.0) -> list[PanelData]:
    """Run every panel's queries over [start, end]; PromQL errors are kept per panel."""
    out = []
    for d in board_list or dashboards.all_dashboards():
        for p in d.panels:
            series: list[svg.Series] = []
            errors: list[str] = []
            notes: list[str] = []
            for q in p.queries:
                expr = dashboards.substitute(q.expr, variables, rate_interval)
                try:
                    got = _query(prometheus_url, q, expr, start, end, step, timeout)
                except ValueError as exc:
                    errors.append(f"{expr}: {exc}")
                    continue
                series.extend(got)
                if not got and q.missing:
                    notes.append(q.missing)
            series.sort(key=lambda s: (s.reference, s.name))
            keep = len(series) if p.kind == "heatmap" else MAX_SERIES  # buckets are bounded
            out.append(PanelData(d.title, p, tuple(series[:keep]), tuple(errors),
                                 max(0, len(series) - keep), tuple(notes),
                                 p.no_data or d.no_data))
    return out


# --- HTML -----------------------------------------------------------------------------------
def _mapped(p: Panel, v: float) -> tuple[str, str]:
    for value, text, color in p.mappings:
        if v == value:
            return text, svg.color(color)
    return svg.fmt(v, p.unit), svg.PALETTE[0]


def _panel_body(pd: PanelData) -> str:
    p = pd.panel
    if not pd.series:  # a rate or ratio reads 0 when nothing happened: this is no series
        return f'<p class="nodata">no data: {esc(pd.no_data)}</p>' if pd.no_data else \
            '<p class="nodata">no data</p>'
    w = svg.W * p.width // 12  # same text size in half- and full-width panels
    if p.kind == "heatmap":
        return svg.heatmap(pd.series, p.unit, w)
    if p.kind == "stat":
        cells = []
        for s in pd.series:
            text, color = _mapped(p, s.points[-1][1])
            cells.append(f'<div style="background:{color}">{esc(s.name)}: {esc(text)}</div>')
        return f'<div class="stat">{"".join(cells)}</div>'
    if p.kind == "table":
        return table(["series", "value"],
                     [[esc(s.name), esc(svg.fmt(s.points[-1][1], p.unit))] for s in pd.series])
    if p.kind == "state-timeline" and p.mappings:
        return svg.state_timeline(pd.series, p.mappings, w)
    return svg.line_chart(pd.series, p.unit, p.min, p.max, w)


def _panel_html(pd: PanelData) -> str:
    p = pd.panel
    errors = "".join(f'<p class="err">{esc(e)}</p>' for e in pd.errors)
    more = f'<p class="desc">{pd.truncated} more series not shown</p>' if pd.truncated else ""
    more += "".join(f'<p class="desc">{esc(n)}</p>' for n in pd.notes)
    exprs = "".join(f"<div><code>{esc(q.expr)}</code></div>" for q in p.queries)
    return (f'<section class="panel" style="grid-column:span {p.width}">'
            f"<h3>{esc(p.title)} <small>({esc(p.unit)})</small></h3>"
            f'<p class="desc">{esc(p.description)}</p>{_panel_body(pd)}{more}{errors}'
            f"<details><summary>PromQL</summary>{exprs}</details></section>")


def _folded(title: str, pds: Sequence[PanelData]) -> str:
    """A dashboard none of whose panels has data: one line with the reasons, panels folded."""
    reasons = list(dict.fromkeys(pd.no_data for pd in pds if pd.no_data)) or ["no series"]
    return (f'<details class="folded"><summary><b>{esc(title)}</b>: no data on this host: '
            f'{esc("; ".join(reasons))}</summary>'
            f'<div class="grid">{"".join(_panel_html(pd) for pd in pds)}</div></details>')


def render_html(panels: Sequence[PanelData], *, prometheus_url: str, start: float, end: float,
                variables: Mapping[str, str] | None = None) -> str:
    by_board: dict[str, list[PanelData]] = {}
    for pd in panels:
        by_board.setdefault(pd.dashboard, []).append(pd)
    blank = [t for t, pds in by_board.items() if not any(pd.series for pd in pds)]
    # the empty panels of dashboards that are shown (a folded one gives its reason on its fold)
    empty = [pd.where + (f" ({pd.no_data})" if pd.no_data else "")
             for pd in panels if not pd.series and pd.dashboard not in blank]
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(end))
    span = f"{(end - start) / 60:.0f} min"
    sel = ", ".join(f"{k}={v}" for k, v in sorted((variables or {}).items())) or "all"
    with_data = sum(1 for pd in panels if pd.series)
    summary = (f'<div class="summary"><b>{with_data} of {len(panels)}</b> panels have data.'
               + (f" No data on this host, folded at the end: {esc(', '.join(blank))}."
                  if blank else "")
               + (f"<details><summary>{len(empty)} more panel(s) without data</summary>"
                  f"{esc('; '.join(empty))}.</details>" if empty else "") + "</div>")
    # a dashboard with no data at all on this host (no GPU, no canary run yet) goes to the end,
    # folded, with the reason on its fold: what is there comes first
    sections = "".join(
        f'<h2>{esc(title)}</h2><div class="grid">{"".join(_panel_html(pd) for pd in pds)}</div>'
        for title, pds in by_board.items() if title not in blank)
    sections += "".join(_folded(title, by_board[title]) for title in blank)
    return page(f"benchwatch report {when}",
                f'<h1>benchwatch report</h1><div class="meta">{esc(when)} · last {span} · '
                f"Prometheus {esc(prometheus_url)} · selection: {esc(sel)} · benchwatch "
                f"{esc(__version__)}</div>{summary}{sections}")


def write_report(prometheus_url: str, out: str | Path, *, minutes: float = 30.0,
                 end: float | None = None, step_s: float | None = None,
                 variables: Mapping[str, str] | None = None, rate_interval: str = "1m",
                 board_list: Sequence[Dashboard] | None = None) -> ReportSummary:
    """Query Prometheus for the last `minutes` and write one self-contained HTML file.

    Raises ReportError when Prometheus cannot be reached; PromQL errors and empty panels are
    shown in the page and listed in the returned summary.
    """
    if minutes <= 0:
        raise UsageError(f"--minutes must be > 0, got {minutes}")
    end = time.time() if end is None else end
    start = end - minutes * 60
    step = step_s or max(1.0, (end - start) / 240)
    _get(prometheus_url, "/api/v1/status/buildinfo", {}, 5.0)  # fail early on a bad URL
    panels = fetch(prometheus_url, start=start, end=end, step=step, variables=variables,
                   rate_interval=rate_interval, board_list=board_list)
    html = render_html(panels, prometheus_url=prometheus_url, start=start, end=end,
                       variables=variables)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    empty = tuple(pd.where for pd in panels if not pd.series)
    errors = tuple(e for pd in panels for e in pd.errors)
    log.info("report %s: %d/%d panels with data", path, len(panels) - len(empty), len(panels))
    return ReportSummary(path, len(panels), len(panels) - len(empty), empty, errors)
