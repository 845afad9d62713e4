"""Benchmark figures tagged with where and under which load they were measured.

A live figure may only be held against a baseline figure measured the same way: the probe's
model-call latency against the model-call latency the benchmark recorded, not against the bench
client's end-to-end HTTP time. So every figure says

- `point`: where it was measured (`POINTS`): `model_call` = the `@probe` latency histogram
  around the model call in the serving process (what live monitoring measures);
  `http_client` = the bench client's end-to-end time of an HTTP request; `harness` = the bench
  harness's timer around an in-process backend call; `device` = a device energy counter over
  the scenario's window divided by its inferences (idle draw included); `outputs` = computed
  from the model's outputs on the suite (accuracy: the same wherever the outputs are read);
  `unknown` = a figure from a schema-1 file or given without a point (never paired);
- `scenario`: the bench scenario (`single_stream`, `offline`, `server` = the QPS search's
  highest passing rate, `server_<R>qps` = a Poisson run at a fixed rate R, `accuracy`,
  `unknown`);
- `rate_qps`: the request rate the scenario held (achieved), None when not meaningful.

`select(figures, name, point, scenario=None, rate_qps=None)` is the one lookup; it returns None
when no figure was measured at that point, and callers then say so instead of comparing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drift.result import DriftError

__all__ = ["POINTS", "Figure", "as_figures", "legacy_figures", "select"]

POINTS = ("model_call", "http_client", "harness", "device", "outputs", "unknown")
# without a scenario or a rate, `select` prefers these, in order (then the rest by name)
SCENARIO_PREFERENCE = ("single_stream", "server", "offline", "accuracy")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Figure:
    """One benchmark figure: `name` (latency_p99_s, ...) = `value`, measured at `point` in
    `scenario`, which held `rate_qps` requests/s (None when not meaningful)."""

    name: str
    value: float
    point: str
    scenario: str
    rate_qps: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.point, self.scenario)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "point": self.point,
                "scenario": self.scenario, "rate_qps": self.rate_qps}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Figure:
        if not isinstance(d, Mapping):
            raise DriftError(f"a figure must be an object with name, value, point, scenario; "
                             f"got {d!r}")
        extra = set(d) - {"name", "value", "point", "scenario", "rate_qps"}
        if extra:
            raise DriftError(f"figure {d.get('name')!r} has unknown fields {sorted(extra)}")
        get: Any = d.get  # types are checked by `check`, with a message saying what is wrong
        return check(cls(get("name"), get("value"), get("point"), get("scenario"),
                         get("rate_qps")))


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def check(f: Figure) -> Figure:
    """`f` with a float value and rate, or DriftError saying what is wrong."""
    if not isinstance(f.name, str) or not _SNAKE.match(f.name):
        raise DriftError(f"figure name {f.name!r} must be snake_case, like latency_p99_s")
    if not _finite(f.value):
        raise DriftError(f"figure {f.name} must be a finite number, got {f.value!r} "
                         "(omit it if unknown)")
    if f.point not in POINTS:
        raise DriftError(f"figure {f.name}: point {f.point!r} is unknown; use one of {POINTS}")
    if not isinstance(f.scenario, str) or not _SNAKE.match(f.scenario):
        raise DriftError(f"figure {f.name}: scenario {f.scenario!r} must be snake_case, like "
                         "single_stream")
    if f.rate_qps is not None and not (_finite(f.rate_qps) and f.rate_qps >= 0):
        raise DriftError(f"figure {f.name}: rate_qps must be a finite number >= 0 or null, "
                         f"got {f.rate_qps!r}")
    rate = None if f.rate_qps is None else float(f.rate_qps)
    return Figure(f.name, float(f.value), f.point, f.scenario, rate)


def legacy_figures(flat: Mapping[str, Any]) -> list[Figure]:
    """Figures given as {name: value} (schema-1 files, `baseline build --figure k=v`): where
    they were measured is not known, so they get point `unknown` and are never paired with a
    live figure; accuracy is computed from outputs, which are the same wherever read."""
    out = []
    for name, value in flat.items():
        if name == "accuracy":
            out.append(Figure(name, value, "outputs", "accuracy"))
        else:
            out.append(Figure(name, value, "unknown", "unknown"))
    return out


def as_figures(figures: Iterable[Figure] | Mapping[str, Any] | None) -> tuple[Figure, ...]:
    """Checked figures, sorted by key; a {name: value} mapping is taken as `legacy_figures`.
    Raises DriftError on a bad figure or two figures with the same (name, point, scenario)."""
    if figures is None:
        return ()
    items = legacy_figures(figures) if isinstance(figures, Mapping) else list(figures)
    seen: dict[tuple[str, str, str], Figure] = {}
    for f in items:
        if not isinstance(f, Figure):
            raise DriftError(f"figures must be drift.Figure objects or a {{name: value}} "
                             f"mapping, got {f!r}")
        f = check(f)
        if f.key in seen:
            raise DriftError(f"two figures {f.name} at point {f.point}, scenario {f.scenario}: "
                             "keep one")
        seen[f.key] = f
    return tuple(seen[k] for k in sorted(seen))


def select(figures: Iterable[Figure], name: str, point: str, scenario: str | None = None,
           rate_qps: float | None = None) -> Figure | None:
    """The figure `name` measured at `point`, or None when there is none (never one measured
    elsewhere). With `scenario`, that scenario's only. Else with `rate_qps`, the scenario whose
    rate is nearest on a log scale (figures without a rate only when none has one). Else the
    first of `SCENARIO_PREFERENCE` present, then the rest by scenario name."""
    if point not in POINTS:
        raise DriftError(f"point {point!r} is unknown; use one of {POINTS}")
    found = [f for f in figures if f.name == name and f.point == point]
    if scenario is not None:
        return next((f for f in found if f.scenario == scenario), None)
    if rate_qps is not None and rate_qps > 0:
        rated = [f for f in found if f.rate_qps]
        if rated:
            return min(rated, key=lambda f: (abs(math.log(f.rate_qps / rate_qps)),  # type: ignore[operator]
                                              f.scenario))
    order = {s: i for i, s in enumerate(SCENARIO_PREFERENCE)}
    return min(found, key=lambda f: (order.get(f.scenario, len(order)), f.scenario), default=None)
