"""The report's layout as a reader sees it, in headless chromium: dashboards without data on
this host (GPU, canary) folded at the end with the reason, and every chart label whole and
apart (the heatmap's bucket labels used to overprint; drift rows named
"breast_cancer v1 mean radius" were cut to "ncer v1 mean").

The panels are every real dashboard panel with made-up series (no Prometheus needed); the
own-model end-to-end test (tests/own_model) runs the same check on a report from a real one.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchwatch.grafana import boards
from benchwatch.report import dashboards as report
from benchwatch.report.svg import Series
from probes.buckets import LATENCY_BOUNDS_S
from tests.support.chromium import layout

T0 = 1_800_000_000.0
FEATURES = ("mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness",
            "worst fractal dimension", "radius error", "texture error", "confidence",
            "predicted_class", "entropy", "worst concave points")
EMPTY_HERE = (boards.gpu_energy().title, boards.canary().title)


def _series(panel: boards.Panel) -> tuple[Series, ...]:
    times = [T0 + 15 * i for i in range(40)]
    if panel.kind == "heatmap":  # latency spread over many buckets: 40+ rows of labels
        return tuple(Series("+Inf" if b == LATENCY_BOUNDS_S[-1] else f"{b:g}",
                            tuple((t, float(k * (1 + i % 3))) for i, t in enumerate(times)))
                     for k, b in enumerate(LATENCY_BOUNDS_S[20:70]))
    if panel.kind == "state-timeline":
        return tuple(Series(f"breast_cancer v1 {f}",
                            tuple((t, float(i > 25 and k % 2 == 0)) for i, t in enumerate(times)))
                     for k, f in enumerate(FEATURES))
    if panel.kind in ("stat", "table"):
        return (Series(f"breast_cancer v1 {FEATURES[0]}", ((times[-1], 1.0),)),)
    return tuple(Series(f"breast_cancer v1 {f}",
                        tuple((t, 0.1 * k + 0.01 * (i % 7)) for i, t in enumerate(times)))
                 for k, f in enumerate(FEATURES[:6]))


def _page(tmp_path: Path) -> Path:
    panels = [report.PanelData(d.title, p, () if d.title in EMPTY_HERE else _series(p),
                               no_data=p.no_data or d.no_data)
              for d in boards.all_dashboards() for p in d.panels]
    out = tmp_path / "layout.html"
    out.write_text(report.render_html(panels, prometheus_url="http://127.0.0.1:9090",
                                      start=T0, end=T0 + 600), encoding="utf-8")
    return out


def test_dashboards_without_data_are_folded_at_the_end_with_the_reason(tmp_path: Path) -> None:
    html = _page(tmp_path).read_text()
    shown = re.findall(r"<h2>(.*?)</h2>", html)
    folded = re.findall(r'<details class="folded"><summary><b>(.*?)</b>: no data on this host: '
                        r"(.*?)</summary>", html)
    assert [t for t, _ in folded] == list(EMPTY_HERE)
    assert not set(shown) & set(EMPTY_HERE), shown
    assert html.index("<h2>") < html.index('<details class="folded">')
    assert html.rindex("</h2>") < html.index('<details class="folded">')  # after every shown one
    assert ("No data on this host, folded at the end: benchwatch / GPU and energy, "
            "benchwatch / canary verdicts.") in html
    reasons = dict(folded)
    assert "no GPU on the probed hosts" in reasons[boards.gpu_energy().title]
    assert "no canary run" in reasons[boards.canary().title]


def test_chart_labels_are_whole_and_do_not_overprint(tmp_path: Path) -> None:
    got = layout(_page(tmp_path))
    assert not got.clipped, f"labels cut at their chart's edge: {got.clipped[:10]}"
    assert not got.overprinted, f"labels printed over each other: {got.overprinted[:10]}"
    for f in FEATURES:  # each drift row reads whole, model and version included
        assert f"breast_cancer v1 {f}" in got.shown, f
    assert sum(s.startswith("≤ ") for s in got.shown) >= 10  # the heatmap is still labelled
