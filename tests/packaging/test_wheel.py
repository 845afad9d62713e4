"""The wheel, installed with the `demo` extra into a fresh virtual environment outside the
checkout, runs `benchwatch demo`, `grafana generate` and `baseline build` without PyTorch and
without writing into its own site-packages.

First run: pip downloads ONNX Runtime, SciPy and the rest (a minute or two); pip's normal cache
makes later runs take well under a minute plus the 30 s demo. Timings are printed (`-s`).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from tests.support.wheel import Timings, build_wheel, install


def _listing(site: Path) -> dict[str, tuple[int, int]]:
    """Every file under site-packages with its size and mtime. Bytecode caches are left out:
    Python may write them for any module it imports; they are not benchwatch's files."""
    return {str(p.relative_to(site)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in site.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _write_reference(path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["confidence", "predicted_class", "latency_ms"])
        for i in range(400):
            w.writerow([0.5 + (i % 50) / 100, str(i % 10), 2.0 + (i % 7) * 0.25])


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_wheel_with_the_demo_extra_runs_outside_the_checkout(tmp_path: Path) -> None:
    timings = Timings()
    t_start = time.monotonic()
    venv = install(tmp_path, build_wheel(tmp_path, timings), "demo", timings)
    py, benchwatch = venv.python, venv.bin("benchwatch")

    work = tmp_path / "work"  # every command runs here: no checkout on sys.path
    work.mkdir()
    probe = timings.run([py, "-c", "import importlib.util as u, json, sysconfig, benchwatch, "
                         "drift; print(json.dumps({'torch': u.find_spec('torch') is not None, "
                         "'site': sysconfig.get_paths()['purelib'], "
                         "'files': [benchwatch.__file__, drift.__file__]}))"],
                        work, 120, "import check")
    found = json.loads(probe.stdout)
    assert not found["torch"], "the demo extra pulled in PyTorch"
    site = Path(found["site"])
    assert all(Path(f).is_relative_to(site) for f in found["files"]), found
    before = _listing(site)

    demo_dir = work / "demo"
    demo = timings.run([benchwatch, "demo", "--no-prometheus", "--duration", "30", "--drift-at",
                        "10", "--plain", "--port", "0", "--metrics-port", "0", "--drift-port",
                        "0", "--workdir", demo_dir], work, 300, "benchwatch demo")
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["missing"] == [], demo.stdout[-3000:]
    assert summary["requests"] > 0 and summary["drift_detected_at"] is not None, \
        demo.stdout[-3000:]
    assert (demo_dir / "report.html").is_file()
    assert list((demo_dir / "baselines").glob("digits-*.json"))

    boards = work / "dashboards"
    timings.run([benchwatch, "grafana", "generate", "-o", boards], work, 120, "grafana generate")
    generated = sorted(boards.glob("*.json"))
    assert generated and all(json.loads(p.read_text()).get("panels") for p in generated)

    reference = work / "reference.csv"
    _write_reference(reference)
    out = work / "baselines" / "digits-v1.json"
    timings.run([benchwatch, "baseline", "build", "--from", reference, "--model", "digits",
                 "--version", "v1", "-o", out, "--kind", "predicted_class=categorical",
                 "--figure", "latency_p99_s=0.004"], work, 120, "baseline build")
    shown = json.loads(timings.run([benchwatch, "baseline", "show", out, "--json"], work, 120,
                                   "baseline show").stdout)
    assert set(shown["features"]) == {"confidence", "predicted_class", "latency_ms"}
    assert shown["features"]["predicted_class"]["kind"] == "categorical"
    assert out.with_suffix(".npz").is_file()

    after = _listing(site)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"written into site-packages: {changed[:20]}"
    timings.steps["total"] = round(time.monotonic() - t_start, 1)
    print(f"\nwheel test timings (s): {json.dumps(timings.steps)}")
