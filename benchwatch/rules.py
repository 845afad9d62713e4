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
                range_window: str | None = None) -> list[Path]:
    """Write each rule file to `out_dir` with every `for:` set to `for_duration` (and every
    range selector `[5m]` set to `range_window` when given); returns the new paths."""
    if not re.fullmatch(r"\d+[smhd]", for_duration):
        raise ValueError(f"for_duration must look like 5s or 1m, got {for_duration!r}")
    if range_window is not None and not re.fullmatch(r"\d+[smhd]", range_window):
        raise ValueError(f"range_window must look like 30s or 1m, got {range_window!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        text = _FOR.sub(lambda m: f"{m.group(1)}{for_duration}", f.read_text(encoding="utf-8"))
        if range_window is not None:
            text = _RANGE.sub(f"[{range_window}]", text)
        target = out_dir / f.name
        target.write_text(text)
        written.append(target)
    return written
