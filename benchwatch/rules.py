"""The packaged Prometheus rule files, and copies of them with short `for:` durations and rate
windows for tests and the demo (which need an alert within seconds, not minutes); the rules
themselves stay in one place (benchwatch/assets/deploy/prometheus/)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.resources.abc import Traversable
from pathlib import Path

from benchwatch import assets

RULES = "deploy/prometheus"
_FOR = re.compile(r"^(\s*for:\s*)\S+\s*$", re.MULTILINE)
_RANGE = re.compile(r"\[(\d+[smhd])\]")


def rule_files() -> list[Traversable]:
    """The alerting and recording rule files (`*.rules.yml`; their promtool tests excluded).
    Read them with `.read_text()`; Prometheus needs real paths: `shorten_for` writes them."""
    return sorted((f for f in assets.asset(RULES).iterdir() if f.name.endswith(".rules.yml")),
                  key=lambda f: f.name)


def shorten_for(files: Iterable[Traversable | Path], out_dir: Path, for_duration: str = "1s",
                range_window: str | None = None, scale: float | None = None) -> list[Path]:
    """Write each rule file to `out_dir` with every `for:` set to `for_duration` (and every
    range selector `[5m]` set to `range_window` when given); returns the new paths.

    With `scale`, every `for:` becomes the larger of `for_duration` and its own value times
    `scale` instead, so the rules keep their relative patience (the demo: 1/20 turns a
    latency rule's 10m into 30 s and the drift rule's 2m into 6 s)."""
    if scale is not None and not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    if not re.fullmatch(r"\d+[smhd]", for_duration):
        raise ValueError(f"for_duration must look like 5s or 1m, got {for_duration!r}")
    if range_window is not None and not re.fullmatch(r"\d+[smhd]", range_window):
        raise ValueError(f"range_window must look like 30s or 1m, got {range_window!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        text = _FOR.sub(lambda m: f"{m.group(1)}{_scaled(m.group(0), for_duration, scale)}",
                        f.read_text(encoding="utf-8"))
        if range_window is not None:
            text = _RANGE.sub(f"[{range_window}]", text)
        target = out_dir / f.name
        target.write_text(text)
        written.append(target)
    return written


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _scaled(line: str, floor: str, scale: float | None) -> str:
    """The `for:` duration of `line` times `scale`, at least `floor` (`floor` without scale or
    for a duration that is not one number and unit)."""
    found = re.search(r"for:\s*(\d+)([smhd])\s*$", line)
    if scale is None or found is None:
        return floor
    seconds = int(found.group(1)) * _SECONDS[found.group(2)] * scale
    return f"{max(round(seconds), int(floor[:-1]) * _SECONDS[floor[-1]])}s"
