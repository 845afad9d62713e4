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
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from grafana_stack import ROOT, Stack

from benchwatch.grafana import boards as dashboards
from benchwatch.report import dashboards as report

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
    assert html.count("<svg") >= n_panels - 4  # stat/table panels have no plot
    # nothing fetched when opened: no scripts, links, external sources
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|\ssrc=|\shref=", html)
    assert "no data" not in html


def test_label_values_are_escaped() -> None:
    from benchwatch.report.svg import Series

    panel = dashboards.overview().panels[0]
    evil = Series('<script>alert("x")</script>', ((1.0, 2.0), (2.0, 3.0)))
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
    assert bad.returncode == 1
    assert "cannot query Prometheus at http://127.0.0.1:9" in bad.stderr
    assert not (tmp_path / "x.html").exists()


def test_report_renders_in_headless_chromium(stack: Stack, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: run scripts/bootstrap.sh (apt-get install "
                    "chromium)")
    out = tmp_path / "report.html"
    _report_with_data(stack, out)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    profile = tempfile.mkdtemp(prefix="benchwatch-chromium-")
    try:
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run",
             f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1400,2000",
             out.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.exists(), f"no screenshot (exit {run.returncode}):\n{run.stderr[-2000:]}"
    shutil.copy(out, ARTIFACTS / "report.html")
    width, height, raw = _png_pixels(shot)
    assert (width, height) == (1400, 2000)
    # a rendered page, not a blank one: many distinct byte values across the image
    assert len(set(raw[:: max(1, len(raw) // 200_000)])) > 50
