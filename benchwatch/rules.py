"""The packaged Prometheus rule files, and copies of them with short `for:` durations and rate
windows for tests and the demo (which need an alert within seconds, not minutes); the rules
themselves stay in one place (benchwatch/assets/deploy/prometheus/)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

from benchwatch import assets

RULES = "deploy/prometheus"
_FOR = re.compile(r"^(\s*for:\s*)\S+\s*$", re.MULTILINE)
_ALERT = re.compile(r"^\s*- alert:\s*(\S+)\s*$", re.MULTILINE)
_RANGE = re.compile(r"\[(\d+[smhd])\]")


def rule_files() -> list[Traversable]:
    """The alerting and recording rule files (`*.rules.yml`; their promtool tests excluded).
    Read them with `.read_text()`; Prometheus needs real paths: `shorten_for` writes them."""
    return sorted((f for f in assets.asset(RULES).iterdir() if f.name.endswith(".rules.yml")),
                  key=lambda f: f.name)


def shorten_for(files: Iterable[Traversable | Path], out_dir: Path, for_duration: str = "1s",
                range_window: str | None = None, scale: float | None = None,
                alerts: Collection[str] | None = None) -> list[Path]:
    """Write each rule file to `out_dir` with every `for:` set to `for_duration` (and every
    range selector `[5m]` set to `range_window` when given); returns the new paths.

    With `scale`, every `for:` becomes the larger of `for_duration` and its own value times
    `scale` instead, so the rules keep their relative patience (the demo: 1/20 turns a
    latency rule's 10m into 30 s and the drift rule's 2m into 6 s). With `alerts`, only the
    `for:` of those alerting rules changes (`benchwatch rules generate`: the drift page's)."""
    if scale is not None and not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    if not re.fullmatch(r"\d+[smhd]", for_duration):
        raise ValueError(f"for_duration must look like 5s or 1m, got {for_duration!r}")
    if range_window is not None and not re.fullmatch(r"\d+[smhd]", range_window):
        raise ValueError(f"range_window must look like 30s or 1m, got {range_window!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        if alerts is None:
            text = _FOR.sub(lambda m: f"{m.group(1)}{_scaled(m.group(0), for_duration, scale)}",
                            text)
        else:
            text = "".join(_FOR.sub(lambda m: f"{m.group(1)}{for_duration}", part)
                           if _alert_name(part) in alerts else part for part in _by_rule(text))
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


def _by_rule(text: str) -> list[str]:
    """`text` cut before each `- alert:` / `- record:` line (joined, the pieces are `text`)."""
    starts = [m.start() for m in re.finditer(r"^\s*- (?:alert|record):", text, re.MULTILINE)]
    cuts = [0, *starts, len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _alert_name(rule: str) -> str | None:
    found = _ALERT.search(rule)
    return None if found is None else found.group(1)


def for_durations(files: Iterable[Traversable | Path]) -> dict[str, int]:
    """alert name -> its `for:` in seconds (0 when it has none), over the rule files."""
    out: dict[str, int] = {}
    for f in files:
        for part in _by_rule(f.read_text(encoding="utf-8")):
            name = _alert_name(part)
            if name is not None:
                found = re.search(r"^\s*for:\s*(\d+[smhd])\s*$", part, re.MULTILINE)
                out[name] = 0 if found is None else seconds(found.group(1))
    return out


def seconds(duration: str) -> int:
    """A Prometheus duration of one number and unit (`90s`, `2m`, `1h`) in seconds."""
    found = re.fullmatch(r"(\d+)([smhd])", duration)
    if found is None:
        raise ValueError(f"a duration looks like 30s, 2m or 1h, got {duration!r}")
    return int(found.group(1)) * _SECONDS[found.group(2)]


_CHECK = re.compile(r"^(\s*- eval_time:\s*)(\S+)(\s*\n\s*alertname:\s*(\S+)\s*\n\s*exp_alerts:"
                    r"[ \t]*(\[\])?)", re.MULTILINE)


def shift_alert_checks(test_text: str, shift_s: Mapping[str, int]) -> str:
    """A promtool test file whose alert checks match rules whose `for:` changed by `shift_s`
    seconds (alert name -> new minus old). A check that the alert fires moves later by a
    longer `for:` (and stays put for a shorter one: the alert fires sooner, and still fires
    then); a check that it does not fire (`exp_alerts: []`, still pending) moves earlier by a
    shorter `for:` (and stays put for a longer one). Checks of other alerts are untouched."""
    def move(m: re.Match[str]) -> str:
        delta = shift_s.get(m.group(4), 0)
        if not delta:
            return m.group(0)
        at = seconds(m.group(2)) if re.fullmatch(r"\d+[smhd]", m.group(2)) else None
        if at is None:
            raise ValueError(f"eval_time {m.group(2)!r}: expected one number and unit")
        at = max(0, at + min(delta, 0)) if m.group(5) else at + max(delta, 0)
        return f"{m.group(1)}{at}s{m.group(3)}"
    return _CHECK.sub(move, test_text)
