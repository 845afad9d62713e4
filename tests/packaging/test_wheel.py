"""The wheel, installed with the `demo` extra into a fresh virtual environment outside the
checkout, runs `benchwatch demo`, `grafana generate` and `baseline build` without PyTorch and
without writing into its own site-packages.

First run: pip downloads ONNX Runtime, SciPy and the rest (a minute or two); pip's normal cache
makes later runs take well under a minute plus the 30 s demo. Timings are printed (`-s`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _source_copy(dest: Path) -> Path:
    """The files git would commit (tracked plus new, not ignored), copied: building in the
    checkout would reuse a stale build/ directory and write into the working tree."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is not listed as a file
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _env() -> dict[str, str]:
    """The caller's environment without anything that would put the checkout or another
    environment on the path."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PIP_NO_CACHE_DIR"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(cmd: Sequence[str | Path], cwd: Path, timeout_s: float,
         timings: dict[str, float], label: str) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    run = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True,
                         text=True, timeout=timeout_s)
    timings[label] = round(time.monotonic() - t0, 1)
    assert run.returncode == 0, (f"{label} exited {run.returncode}\n"
                                 f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
    return run


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
    timings: dict[str, float] = {}
    t_start = time.monotonic()
    src = _source_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
          "-q", ".", "-w", wheels], src, 600, timings, "pip wheel")
    (wheel,) = wheels.glob("benchwatch-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path, 300, timings, "venv")
    py, benchwatch = venv / "bin" / "python", venv / "bin" / "benchwatch"
    _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q",
          f"{wheel}[demo]"], tmp_path, 900, timings, "pip install [demo]")

    work = tmp_path / "work"  # every command runs here: no checkout on sys.path
    work.mkdir()
    probe = _run([py, "-c", "import importlib.util as u, json, sysconfig, benchwatch, drift; "
                  "print(json.dumps({'torch': u.find_spec('torch') is not None, "
                  "'site': sysconfig.get_paths()['purelib'], "
                  "'files': [benchwatch.__file__, drift.__file__]}))"],
                 work, 120, timings, "import check")
    found = json.loads(probe.stdout)
    assert not found["torch"], "the demo extra pulled in PyTorch"
    site = Path(found["site"])
    assert all(Path(f).is_relative_to(site) for f in found["files"]), found
    before = _listing(site)

    demo_dir = work / "demo"
    demo = _run([benchwatch, "demo", "--no-prometheus", "--duration", "30", "--drift-at", "10",
                 "--plain", "--port", "0", "--metrics-port", "0", "--drift-port", "0",
                 "--workdir", demo_dir], work, 300, timings, "benchwatch demo")
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["missing"] == [], demo.stdout[-3000:]
    assert summary["requests"] > 0 and summary["drift_detected_at"] is not None, \
        demo.stdout[-3000:]
    assert (demo_dir / "report.html").is_file()
    assert list((demo_dir / "baselines").glob("digits-*.json"))

    boards = work / "dashboards"
    _run([benchwatch, "grafana", "generate", "-o", boards], work, 120, timings,
         "grafana generate")
    generated = sorted(boards.glob("*.json"))
    assert generated and all(json.loads(p.read_text()).get("panels") for p in generated)

    reference = work / "reference.csv"
    _write_reference(reference)
    out = work / "baselines" / "digits-v1.json"
    _run([benchwatch, "baseline", "build", "--from", reference, "--model", "digits",
          "--version", "v1", "-o", out, "--kind", "predicted_class=categorical",
          "--figure", "latency_p99_s=0.004"], work, 120, timings, "baseline build")
    shown = json.loads(_run([benchwatch, "baseline", "show", out, "--json"], work, 120, timings,
                            "baseline show").stdout)
    assert set(shown["features"]) == {"confidence", "predicted_class", "latency_ms"}
    assert shown["features"]["predicted_class"]["kind"] == "categorical"
    assert out.with_suffix(".npz").is_file()

    after = _listing(site)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"written into site-packages: {changed[:20]}"
    timings["total"] = round(time.monotonic() - t_start, 1)
    print(f"\nwheel test timings (s): {json.dumps(timings)}")
