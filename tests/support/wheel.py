"""benchwatch as a user gets it: the wheel built from the files git would commit, installed with
some extras into a fresh virtual environment outside the checkout, and commands run there
with nothing of the checkout on the path. Used by tests/packaging and tests/own_model.

First run: pip downloads ONNX Runtime, SciPy and the rest (a minute or two); pip's normal cache
makes later runs take well under a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def source_copy(dest: Path) -> Path:
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


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that would put the checkout or another
    environment on the path (plus `extra`)."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PIP_NO_CACHE_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("BENCHWATCH_")}
    env.update(extra or {})
    return env


@dataclass
class Timings:
    """Seconds per labelled step, printed by the tests (`-s`)."""
    steps: dict[str, float] = field(default_factory=dict)

    def run(self, cmd: Sequence[str | Path], cwd: Path, timeout_s: float, label: str,
            env: Mapping[str, str] | None = None, ok: Sequence[int] = (0,)
            ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` to the end; the test fails (with its output) on an exit code not in `ok`."""
        t0 = time.monotonic()
        run = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(env),
                             capture_output=True, text=True, timeout=timeout_s)
        self.steps[label] = round(time.monotonic() - t0, 1)
        assert run.returncode in ok, (f"{label} exited {run.returncode}\n"
                                      f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
        return run


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name


def build_wheel(tmp: Path, timings: Timings) -> Path:
    """The benchwatch wheel, built from a copy of the sources under `tmp`."""
    src = source_copy(tmp / "src")
    wheels = tmp / "wheels"
    timings.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                 "-q", ".", "-w", wheels], src, 600, "pip wheel")
    (wheel,) = wheels.glob("benchwatch-*.whl")
    return wheel


def install(tmp: Path, wheel: Path, extras: str, timings: Timings,
            also: Sequence[str] = ()) -> Venv:
    """A fresh venv under `tmp` with `wheel[extras]` and the packages `also` installed."""
    venv = Venv(tmp / "venv")
    timings.run([sys.executable, "-m", "venv", venv.root], tmp, 300, "venv")
    timings.run([venv.python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                 f"{wheel}[{extras}]", *also], tmp, 900, f"pip install [{extras}]")
    return venv
