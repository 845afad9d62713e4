"""Headless Debian chromium for the HTML report tests: a screenshot, and the text layout as the
browser laid it out (labels cut by their chart's edge, labels printed over each other).

The layout check opens a copy of the page with a small script added (the report itself has
none) that reads every SVG label's box with the browser's own fonts, and dumps the DOM.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Runs in the page: every rendered <text> of every <svg>, its own text (not its <title>), and
# the chart's box. A label whose box leaves the chart's box is cut (inline SVG clips at its
# edge); two labels of one chart whose boxes overlap by more than a pixel each way overprint.
_LAYOUT_JS = r"""
const out = {clipped: [], overprinted: [], shown: []};
const own = t => Array.from(t.childNodes).filter(n => n.nodeType === 3)
  .map(n => n.textContent).join('').trim();
const where = el => { const p = el.closest('section, details'); const h = p && p.querySelector('h3, summary');
  return h ? h.textContent.trim().slice(0, 80) : ''; };
for (const svg of document.querySelectorAll('svg')) {
  const box = svg.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) continue;  // folded away: not on screen
  const texts = [];
  for (const t of svg.querySelectorAll('text')) {
    const r = t.getBoundingClientRect();
    if (r.width === 0) continue;
    out.shown.push(own(t));
    texts.push([own(t), r]);
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5
        || r.bottom > box.bottom + 0.5) out.clipped.push([where(svg), own(t)]);
  }
  for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
    const a = texts[i][1], b = texts[j][1];
    const dx = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const dy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (dx > 1 && dy > 1) out.overprinted.push([where(svg), texts[i][0], texts[j][0]]);
  }
}
const pre = document.createElement('pre');
pre.id = 'benchwatch-layout';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
"""


@dataclass(frozen=True)
class Layout:
    shown: list[str]  # every SVG label on screen, as drawn
    clipped: list[list[str]]  # [panel, label]
    overprinted: list[list[str]]  # [panel, label, label]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: run scripts/bootstrap.sh (apt-get install "
                    "chromium)")
    return found


def _run(args: list[str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="benchwatch-chromium-")
    try:
        return subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
             *args], capture_output=True, text=True, timeout=timeout_s)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 2000) -> None:
    """`page` rendered at width x height into `png`; fails the test without a picture."""
    png.unlink(missing_ok=True)
    run = _run([f"--screenshot={png}", f"--window-size={width},{height}", page.as_uri()])
    assert png.exists(), f"no screenshot (exit {run.returncode}):\n{run.stderr[-2000:]}"


def layout(page: Path, width: int = 1400, height: int = 2000) -> Layout:
    """The page's SVG labels as chromium lays them out at `width` x `height`."""
    with tempfile.TemporaryDirectory(prefix="benchwatch-layout-") as tmp:
        probe = Path(tmp) / "page.html"
        probe.write_text(page.read_text(encoding="utf-8").replace(
            "</body>", f"<script>{_LAYOUT_JS}</script></body>"), encoding="utf-8")
        run = _run(["--dump-dom", f"--window-size={width},{height}", probe.as_uri()])
    found = re.search(r'<pre id="benchwatch-layout">(.*?)</pre>', run.stdout, flags=re.S)
    assert found, f"chromium gave no layout (exit {run.returncode}):\n{run.stderr[-2000:]}"
    import html

    data = json.loads(html.unescape(found.group(1)))
    return Layout(data["shown"], data["clipped"], data["overprinted"])
