"""`benchwatch report`: the dashboards rendered from the real Prometheus into static HTML,
opened in headless Debian chromium; the screenshot is kept as a test artifact
(`$BENCHWATCH_ARTIFACTS` or runs/test-artifacts/report.png)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from benchwatch.grafana import boards as dashboards
from benchwatch.report import dashboards as report
from tests.support.grafana_stack import ROOT, Stack

pytestmark = pytest.mark.prometheus
ARTIFACTS = Path(os.environ.get("BENCHWATCH_ARTIFACTS", ROOT / "runs" / "test-artifacts"))


def _report_with_data(stack: Stack, out: Path) -> report.ReportSummary:
    deadline = time.monotonic() + 60
    while True:
        summary = report.write_report(stack.prometheus.url, out, minutes=2, step_s=2,
                                      rate_interval="15s")
        if not summary.empty or time.monotonic() > deadline:
            return summary
        time.sleep(2)


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_report_has_every_panel_and_is_self_contained(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    summary = _report_with_data(stack, out)
    n_panels = sum(len(d.panels) for d in dashboards.all_dashboards())
    assert summary.panels == n_panels
    assert not summary.errors, summary.errors
    assert not summary.empty, f"panels without data: {summary.empty}"
    html = out.read_text()
    for d in dashboards.all_dashboards():
        assert d.title in html
    plots = sum(p.kind not in ("stat", "table") for d in dashboards.all_dashboards()
                for p in d.panels)
    assert html.count("<svg") >= plots  # stat/table panels have no plot
    # nothing fetched when opened: no scripts, links, external sources
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|\ssrc=|\shref=", html)
    assert "no data" not in html


def _panel_section(html: str, title: str) -> str:
    found = re.search(rf'<section class="panel"[^>]*><h3>{re.escape(title)} <small>.*?</section>',
                      html, flags=re.S)
    assert found, f"no panel {title!r} in the report"
    return found.group(0)


def test_an_empty_panel_says_why(stack: Stack, tmp_path: Path) -> None:
    """"no data" only where there is no series, and then the panel says why: on a host
    without a GPU (here: an instance selection no GPU series has) the GPU panels name it."""
    from benchwatch.report.html import esc

    out = tmp_path / "no-gpu.html"
    summary = report.write_report(stack.prometheus.url, out, minutes=2, step_s=2,
                                  rate_interval="15s", variables={"instance": "no-gpu.host:9464"},
                                  board_list=[dashboards.gpu_energy()])
    html = out.read_text()
    assert not summary.errors, summary.errors
    assert "benchwatch / GPU and energy / GPU power" in summary.empty
    gpu_power = _panel_section(html, "GPU power")
    assert f'<p class="nodata">no data: {esc(dashboards.NO_GPU)}</p>' in gpu_power
    assert "no GPU on the probed hosts" in gpu_power
    # the same panel with its series has no such line
    with_gpu = tmp_path / "gpu.html"
    report.write_report(stack.prometheus.url, with_gpu, minutes=2, step_s=2, rate_interval="15s",
                        board_list=[dashboards.gpu_energy()])
    assert "no data" not in _panel_section(with_gpu.read_text(), "GPU power")


def test_label_values_are_escaped() -> None:
    from benchwatch.report.svg import Series

    panel = dashboards.overview().panels[0]
    evil = Series(EVIL, ((1.0, 2.0), (2.0, 3.0)))
    html = report.render_html([report.PanelData("d", panel, (evil,))],
                              prometheus_url="http://127.0.0.1:9090", start=0.0, end=10.0)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_units_format_readably() -> None:
    from benchwatch.report.svg import fmt

    assert fmt(0.0123, "s") == "12.3 ms"
    assert fmt(0.25, "percentunit") == "25%"
    assert fmt(3 * 2**30, "bytes") == "3 GiB"
    assert fmt(412.0, "watt") == "412 W"
    assert fmt(1500.0, "reqps") == "1.5 kreq/s"
    assert fmt(1795874400500.0, "dateTimeAsIso") == "2026-11-28 14:00:00 UTC"
    # the bench and replay reports use the same formatter
    assert fmt(None, "s") == fmt(float("nan")) == "–"
    assert fmt(4.5e-6, "s") == "4.5 µs" and fmt(1500.0, "s") == "1,500 s"
    assert fmt(0.968819, digits=4) == "0.9688" and fmt(12345.0) == "12,345"
    assert fmt(5.3e6, "locale") == "5,300,000" and fmt(0.000337, "joule") == "337 µJ"


EVIL = '<script>alert("x")</script>'


def _svgs(markup: str) -> list[ET.Element]:
    """Every <svg> in `markup`, parsed as XML: a malformed chart fails here."""
    found = re.findall(r"<svg\b.*?</svg>", markup, flags=re.S)
    assert found, markup[:500]
    return [ET.fromstring(x) for x in found]


def test_every_chart_is_well_formed_and_escapes_labels() -> None:
    from benchwatch.report import svg

    t = 1_700_000_000.0
    line = svg.Series(EVIL, tuple((t + 10 * i, float(i % 5)) for i in range(30)))
    ref = svg.Series("baseline", ((t, 2.0), (t + 290, 2.0)), reference=True)
    buckets = [svg.Series(le, tuple((t + 10 * i, k * 2.0 + i) for i in range(30)))
               for k, le in enumerate(("0.01", "0.1", "+Inf"))]
    rng = np.random.default_rng(0)
    charts = {
        "line": svg.line_chart([line, ref], "s"),
        "single point": svg.line_chart([svg.Series(EVIL, ((t, 1.0),))], "short"),
        "heatmap": svg.heatmap(buckets, "s"),
        "timeline": svg.state_timeline([line], [(0.0, EVIL, "green"), (1.0, "bad", "red")]),
        "cdf": svg.cdf({EVIL: rng.lognormal(-9, 0.3, 900), "b": rng.lognormal(-8, 0.3, 50)}),
        "intervals": svg.interval_plot([svg.Interval(EVIL, 0.9, 1.3, 1.1, 1.1, note="fail"),
                                        svg.Interval("p50", 0.95, 1.02, 0.99, 1.1)]),
    }
    for name, markup in charts.items():
        assert "<script>" not in markup, name
        assert name == "heatmap" or "&lt;script&gt;" in markup, name  # bucket names are numbers
        for root in _svgs(markup):
            assert root.tag.endswith("svg") and len(root) > 3, name
    # the CDF: one curve per sample set, ending at probability 1, labels on the log axis
    cdf = _svgs(charts["cdf"])[0]
    assert len([e for e in cdf.iter() if e.tag.endswith("polyline")]) == 2
    assert sum(e.text is not None and e.text.endswith("µs") for e in cdf.iter()) >= 2
    assert "(n=900)" in charts["cdf"] and "(n=50)" in charts["cdf"]
    assert svg.cdf({}) == '<p class="muted">no samples</p>'
    assert svg.interval_plot([]) == '<p class="muted">no intervals to draw</p>'


def test_bench_and_replay_pages_are_self_contained_and_escaped() -> None:
    from benchwatch.report.bench import bench_html, verdict_html

    lat = {EVIL: np.full(10, 2e-5)}
    run = {"backend": EVIL, "single_stream": {"p50_s": 2e-5}, "accuracy": {"accuracy": 0.96881}}
    bench = bench_html({"runs": [run], "model": EVIL, "suite": "s"}, lat)
    metric = {"metric": "latency_p99", "outcome": "fail", "gating": True, "lower": 1.2,
              "upper": 1.5, "estimate": 1.3, "margin": 1.1, "direction": "ratio_upper",
              "canary_value": 0.012, "reason": EVIL}
    replay = verdict_html({"suite": EVIL, "errors": [EVIL],
                           "verdict": {"outcome": "fail", "metrics": [metric]}}, lat)
    for page in (bench, replay):
        assert page.startswith("<!DOCTYPE html>") and "<script>" not in page
        assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|\ssrc=|\shref=", page)
        _svgs(page)
    assert "20 µs" in bench and "0.9688" in bench
    assert "12 ms" in replay and "FAIL" in replay and "interval vs margin" in replay


def test_report_cli_and_bad_url(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    ok = subprocess.run([sys.executable, "-m", "benchwatch", "report", "--prometheus",
                         stack.prometheus.url, "-o", str(out), "--minutes", "2",
                         "--rate-interval", "15s", "--model", "digits"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert f"report: {out}" in ok.stdout and out.exists()
    bad = subprocess.run([sys.executable, "-m", "benchwatch", "report", "--prometheus",
                          "http://127.0.0.1:9", "-o", str(tmp_path / "x.html")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3  # could not run: Prometheus unreachable
    assert "benchwatch report: error: cannot query Prometheus at http://127.0.0.1:9" in bad.stderr
    assert not (tmp_path / "x.html").exists()


def test_report_renders_in_headless_chromium(stack: Stack, tmp_path: Path) -> None:
    from tests.support.chromium import layout, screenshot

    out = tmp_path / "report.html"
    _report_with_data(stack, out)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    screenshot(out, shot)
    shutil.copy(out, ARTIFACTS / "report.html")
    got = layout(out)  # every label whole and apart, as the browser lays them out
    assert not got.clipped, f"labels cut at their chart's edge: {got.clipped[:10]}"
    assert not got.overprinted, f"labels printed over each other: {got.overprinted[:10]}"
    width, height, raw = _png_pixels(shot)
    assert (width, height) == (1400, 2000)
    # a rendered page, not a blank one: many distinct byte values across the image
    assert len(set(raw[:: max(1, len(raw) // 200_000)])) > 50
