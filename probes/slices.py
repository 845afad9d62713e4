"""Fairness slices: `probe(..., slice=callable(*args, **kwargs) -> str)` names a slice (a user
group, a region, a device class) for each call, and the call's latency, errors and output
statistics are counted for that slice: its series carry a `slice` label. Summed over `slice`,
the series are the model's totals (every call is counted in exactly one slice), so the
queries that sum by (model, model_version) read the same with or without slices.

Bounded: at most `max_slices` distinct values per probe (default 20); later values are counted
as `OVERFLOW_SLICE`. A slice callable that raises or returns something other than a non-empty
string is a probe fault (`fault="slice"`): that call is counted without a slice label, and the
caller never sees the exception.
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from probes.buckets import LATENCY_GRID_NS
from probes.errors import ConfigError
from probes.state import MAX_LABEL_LEN, ProbeState

if TYPE_CHECKING:
    from probes.decorator import Probe

__all__ = ["DEFAULT_MAX_SLICES", "OVERFLOW_SLICE", "Slicer", "wrap_sliced"]

DEFAULT_MAX_SLICES = 20
OVERFLOW_SLICE = "_other"  # every slice value past `max_slices`


class Slicer:
    """Maps a call to its slice's ProbeState: a lock-free dict lookup for known values, the
    lock only to admit a new one."""

    def __init__(self, probe_: Probe, fn: Callable[..., str], max_slices: int) -> None:
        if not callable(fn):
            raise ConfigError(f"slice must be a callable(*args, **kwargs) -> str, got {fn!r}")
        if isinstance(max_slices, bool) or not isinstance(max_slices, int) or not \
                1 <= max_slices <= 1000:
            raise ConfigError(f"max_slices must be an integer in [1, 1000], got {max_slices!r}")
        self.probe = probe_
        self.fn = fn
        self.max_slices = max_slices
        self._states: dict[str, ProbeState] = {}
        self._lock = threading.Lock()

    def state(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ProbeState:
        try:
            value = self.fn(*args, **kwargs)
            st = self._states.get(value)
            if st is not None:
                return st
            if not isinstance(value, str) or not value:
                raise TypeError(f"slice returned {type(value).__name__} {str(value)[:40]!r}, "
                                "not a non-empty str")
            return self._admit(value)
        except Exception as e:
            p = self.probe
            p.registry.faults.record("slice", e, f"{p.model}/{p.version}:")
            return p.state

    def _admit(self, value: str) -> ProbeState:
        p = self.probe
        with self._lock:
            st = self._states.get(value)
            if st is not None:
                return st
            label = value[:MAX_LABEL_LEN]
            if len(self._states) >= self.max_slices:  # only the overflow key is added from now
                label = OVERFLOW_SLICE
                st = self._states.get(OVERFLOW_SLICE)
            if st is None:
                st = p.registry.state(p.model, p.version, slice_=label)
                st.devices = p.state.devices
                self._states[label] = st
            if label != OVERFLOW_SLICE:
                self._states[value] = st
            return st

    def slices(self) -> list[str]:
        with self._lock:
            return sorted({st.slice for st in self._states.values() if st.slice})


def wrap_sliced(p: Probe, fn: Callable[..., Any], slicer: Slicer, is_async: bool) -> Callable[..., Any]:
    """`fn` measured into the shard of its call's slice (the same bookkeeping as the probe's
    own wrappers; outputs, batch size and sampling via `Probe._after`)."""
    bounds = LATENCY_GRID_NS
    after = p._after
    error = p._error
    faults = p.registry.faults
    pick = slicer.state

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, int]:
        sh = pick(args, kwargs).local.shard
        t0 = perf_counter_ns()
        sh.in_flight += 1
        sh.t0_sum += t0
        return sh, t0

    def failed(sh: Any, t0: int, e: BaseException) -> None:
        dt = perf_counter_ns() - t0
        sh.in_flight -= 1
        sh.t0_sum -= t0
        sh.err[bisect_left(bounds, dt)] += 1
        sh.err_sum += dt
        error(sh, e)

    def done(sh: Any, t0: int, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        dt = perf_counter_ns() - t0
        sh.in_flight -= 1
        sh.t0_sum -= t0
        sh.ok[bisect_left(bounds, dt)] += 1
        sh.ok_sum += dt
        try:
            after(sh, out, args, kwargs, dt)
        except Exception as e:
            faults.record("output_stats", e)

    if is_async:
        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            sh, t0 = begin(args, kwargs)
            try:
                out = await fn(*args, **kwargs)
            except BaseException as e:
                failed(sh, t0, e)
                raise
            done(sh, t0, out, args, kwargs)
            return out

        async_wrapper.__benchwatch_probe__ = p  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sh, t0 = begin(args, kwargs)
        try:
            out = fn(*args, **kwargs)
        except BaseException as e:
            failed(sh, t0, e)
            raise
        done(sh, t0, out, args, kwargs)
        return out

    wrapper.__benchwatch_probe__ = p  # type: ignore[attr-defined]
    return wrapper
