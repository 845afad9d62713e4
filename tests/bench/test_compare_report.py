"""`benchwatch bench` over two backends writes compare.html: radar, throughput heatmap and
the model's versions as lines; headless chromium draws each chart (shapes with a size on the
rendered page, and a screenshot kept under runs/test-artifacts/bench/)."""

from __future__ import annotations

import html
import json
import re
import tempfile
from pathlib import Path

import pytest

from benchwatch.cli import main
from benchwatch.report.compare import HISTORY, RADAR, load_history, normalised
from tests.support.chromium import _run, screenshot

# Runs in the page: what each chart drew, measured by the browser (zero-size shapes excluded)
_DRAWN_JS = r"""
const size = el => { const r = el.getBoundingClientRect(); return r.width > 1 && r.height > 1; };
const out = {
  radar: Array.from(document.querySelectorAll('#radar polygon.radar-series')).filter(size).length,
  heat: Array.from(document.querySelectorAll('#heatmap rect.heat-cell')).filter(size).length,
  lines: Array.from(document.querySelectorAll('.version-line')).map(
    d => d.querySelectorAll('polyline').length),
};
const pre = document.createElement('pre'); pre.id = 'drawn';
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
"""


def _drawn(page: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "page.html"
        probe.write_text(page.read_text().replace("</body>", f"<script>{_DRAWN_JS}</script></body>"))
        run = _run(["--dump-dom", "--window-size=1400,2400", probe.as_uri()])
    found = re.search(r'<pre id="drawn">(.*?)</pre>', run.stdout, flags=re.S)
    assert found, run.stderr[-2000:]
    return dict(json.loads(html.unescape(found.group(1))))


def test_two_backends_two_versions_make_one_comparison(tmp_path: Path,
                                                       artifacts_dir: Path) -> None:
    for version in ("v1", "v2"):
        assert main(["bench", "--backend", "onnxruntime", "--backend", "torch", "--threads", "1",
                     "--queries", "200", "--warmup", "10", "--offline-samples", "1000",
                     "--no-server", "--no-progress", "--grid-threads", "1,2",
                     "--grid-batch-sizes", "1,16", "--price-usd-per-hour", "0.2",
                     "--baseline-version", version, "-o", str(tmp_path)]) == 0
    latest = sorted(tmp_path.iterdir())[-1]
    doc = json.loads((latest / "results.json").read_text())
    assert {(c["backend"], c["threads"], c["batch_size"]) for c in doc["grid"]} == {
        (b, t, bs) for b in ("onnxruntime", "torch") for t in (1, 2) for bs in (1, 16)}
    assert all(c["throughput_qps"] > 0 for c in doc["grid"])
    history = load_history(tmp_path, "digits")
    assert [(r.version, r.backend) for r in history] == [
        ("v1", "onnxruntime"), ("v1", "torch"), ("v2", "onnxruntime"), ("v2", "torch")]
    page = latest / "compare.html"
    drawn = _drawn(page)
    assert drawn["radar"] == 2  # one polygon per backend
    assert drawn["heat"] == 8  # 2 backends x 2 thread counts x 2 batch sizes
    lines = drawn["lines"]
    assert isinstance(lines, list) and len(lines) == len(HISTORY) - 1  # no J/inference here
    assert all(n == 2 for n in lines)  # a line per backend across v1 -> v2
    png = artifacts_dir / "compare-report.png"
    screenshot(page, png, 1400, 2400)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "J/inference (not measured)" in page.read_text()


def test_radar_normalisation() -> None:
    cards = [{"backend": "a", "accuracy": 0.9, "latency_p99_s": 0.002, "throughput_qps": 100.0,
              "mce": 1.0, "cost_per_1k_inferences_usd": 2e-4},
             {"backend": "b", "accuracy": 0.6, "latency_p99_s": 0.001, "throughput_qps": 400.0,
              "mce": 0.5, "cost_per_1k_inferences_usd": 1e-4}]
    s = normalised(cards)
    assert s["a"]["accuracy"] == 1.0 and s["b"]["accuracy"] == pytest.approx(2 / 3)
    assert s["b"]["latency_p99_s"] == 1.0 and s["a"]["latency_p99_s"] == pytest.approx(0.5)
    assert s["a"]["throughput_qps"] == pytest.approx(0.25)
    assert s["b"]["robustness"] == 1.0 and s["a"]["robustness"] == pytest.approx(0.5)
    assert s["a"]["energy_per_inference_j"] is None  # not measured: drawn at 0 and named
    assert {k for k, *_ in RADAR} == set(s["a"])
