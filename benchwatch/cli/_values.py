"""argparse types for option values: every number, port and URL a verb takes is checked when
the command line is read, so a bad value is one line (`benchwatch VERB: error: argument
--interval: ...`) and exit 2, before anything starts.

Floats are finite and within a stated range: `nan` would make a loop spin or a comparison
always false, `inf` (or 1e300) overflows `Event.wait`, `time.sleep` and timestamps.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from urllib.parse import urlsplit

DAY_S = 86_400.0


def number(low: float, high: float, *, low_inclusive: bool = False,
           unit: str = "") -> Callable[[str], float]:
    """A finite float in (low, high] ([low, high] with `low_inclusive`)."""
    span = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
    what = f"a number{' of ' + unit if unit else ''} in {span}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value >= low if low_inclusive else value > low
        if not (math.isfinite(value) and above and value <= high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    """An int in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in [{low}, {high}]")
        return value

    return parse


seconds = number(0, DAY_S, unit="seconds")  # a timeout, an interval, a duration
port = whole(0, 65535)  # 0: any free port


def http_url(text: str) -> str:
    """An http(s) URL with a host, e.g. http://127.0.0.1:9090."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:9090")
    return text


_PROM_DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")


def prometheus_duration(text: str) -> str:
    """A Prometheus duration such as 1m, 30s or 1h30m."""
    if not _PROM_DURATION.fullmatch(text) or not any(c in "123456789" for c in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Prometheus duration such as 30s, 1m or 1h30m")
    return text


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


__all__ = ["DAY_S", "http_url", "non_empty", "number", "port", "prometheus_duration",
           "seconds", "whole"]
