"""Pre-aggregated, lock-free probe state: per-thread shards merged when an exporter collects.

Each (model, version) has a `ProbeState`; each thread that calls a probe gets its own `Shard`
(via `threading.local`), so the hot path is plain attribute/list increments that only the
owning thread ever writes — no lock per call and no increment lost between threads (two
threads doing `x += 1` on one object *can* lose updates even with the GIL). A lock is taken
only when a thread's shard is created and at export. Shards of threads that have ended are
folded into one retired shard at export, so thread-pool churn does not grow memory.

The module-level `DEFAULT_REGISTRY` is the one piece of process state besides the meter
provider: decorators are applied at import time, before `configure()` runs, and must find
the same state the exporter later reads (the same reason prometheus_client has `REGISTRY`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from probes import metric_names
from probes.buckets import (
    BATCH_GRID,
    CONFIDENCE_GRID,
    ENTROPY_GRID,
    LATENCY_GRID_NS,
    VALUE_GRID,
)
from probes.exemplars import Noted
from probes.exemplars import latest as latest_exemplar
from probes.genai import GenAIShard
from probes.genai import merge as merge_genai

__all__ = [
    "DEFAULT_REGISTRY",
    "FAULT_KINDS",
    "OVERFLOW",
    "Faults",
    "LabelGuard",
    "ProbeState",
    "Registry",
    "Shard",
    "ProbeSnapshot",
]

log = logging.getLogger("probes")

OVERFLOW = "_overflow"  # label value that stands for every value past a guard's limit
MAX_LABEL_LEN = 64
# Where a probe can fail without the caller noticing; bounded, used as the `fault` label.
FAULT_KINDS = ("output_stats", "inputs", "batch_size", "sampling", "sink", "export", "sampler", "tokens",
               "slice")

# counts per recording-grid cell: classic and base-2 bounds (probes/exponential.py)
_N_LAT = len(LATENCY_GRID_NS) + 1
_N_BATCH = len(BATCH_GRID) + 1
_N_CONF = len(CONFIDENCE_GRID) + 1
_N_ENT = len(ENTROPY_GRID) + 1
_N_VAL = len(VALUE_GRID) + 1


class SampleQueueLike(Protocol):
    def offer(self, samples: list[Any]) -> bool: ...


class LabelGuard:
    """At most `limit` distinct label values; later new values become `OVERFLOW`.

    `get` is a lock-free dict lookup for known values; the lock is taken only to admit a new
    one. Overflowing values are not stored, so memory stays bounded whatever callers send."""

    __slots__ = ("_allowed", "_limit", "_lock", "overflowed")

    def __init__(self, limit: int) -> None:
        self._allowed: dict[str, str] = {}
        self._limit = limit
        self._lock = threading.Lock()
        self.overflowed = 0

    def get(self, value: str) -> str:
        v = self._allowed.get(value)
        return v if v is not None else self._admit(value)

    def _admit(self, value: str) -> str:
        with self._lock:
            v = self._allowed.get(value)
            if v is not None:
                return v
            if len(self._allowed) >= self._limit:
                self.overflowed += 1
                return OVERFLOW
            v = str(value)[:MAX_LABEL_LEN]
            self._allowed[value] = v
            return v

    def __len__(self) -> int:
        return len(self._allowed)


class Shard:
    """One thread's counters for one ProbeState. Only the owning thread writes it."""

    __slots__ = (
        "ok", "ok_sum", "err", "err_sum", "in_flight", "t0_sum", "errors",
        "batch", "batch_sum", "classes", "conf", "conf_sum", "ent", "ent_sum",
        "values", "invalid", "thread", "genai", "exemplar",
    )

    def __init__(self, thread: threading.Thread | None) -> None:
        self.thread = weakref.ref(thread) if thread is not None else None
        self.clear()

    def clear(self) -> None:
        self.ok = [0] * _N_LAT  # latency counts per LATENCY_GRID_NS cell, outcome=ok
        self.ok_sum = 0  # ns
        self.err = [0] * _N_LAT
        self.err_sum = 0
        self.in_flight = 0
        self.t0_sum = 0  # sum of start times (ns) of the calls in flight: for busy time
        self.errors: dict[str, int] = {}
        self.batch = [0] * _N_BATCH
        self.batch_sum = 0
        self.classes: dict[str, int] = {}
        self.conf = [0] * _N_CONF
        self.conf_sum = 0.0
        self.ent = [0] * _N_ENT
        self.ent_sum = 0.0
        self.values: dict[str, list[Any]] = {}  # feature -> [bucket counts, sum]
        self.invalid: dict[str, int] = {}  # reason -> count of unusable outputs
        self.genai: dict[str, GenAIShard] = {}  # operation -> streamed requests (probes.genai)
        self.exemplar: Noted | None = None  # latest ok call inside a span (probes.exemplars)

    def alive(self) -> bool:
        t = self.thread() if self.thread is not None else None
        return t is not None and t.is_alive()

    def add_into(self, acc: Shard) -> None:
        """Add this shard's counters to `acc` (export time; reads are racy-by-design but each
        value read is a whole int/float, so a merge sees a consistent-enough prefix)."""
        _add_list(acc.ok, self.ok)
        acc.ok_sum += self.ok_sum
        _add_list(acc.err, self.err)
        acc.err_sum += self.err_sum
        acc.in_flight += self.in_flight
        acc.t0_sum += self.t0_sum
        _add_dict(acc.errors, self.errors)
        _add_list(acc.batch, self.batch)
        acc.batch_sum += self.batch_sum
        _add_dict(acc.classes, self.classes)
        _add_list(acc.conf, self.conf)
        acc.conf_sum += self.conf_sum
        _add_list(acc.ent, self.ent)
        acc.ent_sum += self.ent_sum
        for name, (counts, total) in list(self.values.items()):
            slot = acc.values.get(name)
            if slot is None:
                acc.values[name] = [list(counts), total]
            else:
                _add_list(slot[0], counts)
                slot[1] += total
        _add_dict(acc.invalid, self.invalid)
        merge_genai(acc.genai, self.genai)
        acc.exemplar = latest_exemplar(acc.exemplar, self.exemplar)


def _add_list(acc: list[Any], src: list[Any]) -> None:
    for i, v in enumerate(list(src)):
        if v:
            acc[i] += v


def _add_dict(acc: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in list(src.items()):
        acc[k] = acc.get(k, 0) + v


def new_value_slot() -> list[Any]:
    return [[0] * _N_VAL, 0.0]


@dataclass(frozen=True)
class ProbeSnapshot:
    """Merged, cumulative counters of one ProbeState at one instant (export side)."""

    model: str
    version: str
    start_time_ns: int
    totals: Shard = field(repr=False)


class ProbeState:
    """Everything measured for one (model, version), or for one slice of it (`slice`, see
    probes/slices.py: the model's calls in that slice, exported with a `slice` label)."""

    def __init__(self, model: str, version: str, *, max_error_types: int = 50,
                 max_classes: int = 1000, max_features: int = 100,
                 slice_: str | None = None) -> None:
        self.model = model
        self.version = version
        self.slice = slice_
        self.start_time_ns = time.time_ns()
        self.error_types = LabelGuard(max_error_types)
        self.class_labels = LabelGuard(max_classes)
        self.feature_names = LabelGuard(max_features)
        # Which energy devices the model may use, read by the energy sampler (off the request
        # path): None = every device; else a callable returning hw_ids/hw_types, or None for all
        # (set by `probe(devices=...)` or detected from a PyTorch module / ORT session).
        self.devices: Callable[[], frozenset[str] | None] | None = None
        self._lock = threading.Lock()
        self._shards: list[Shard] = []
        self._retired = Shard(None)
        state = self

        class _Local(threading.local):
            def __init__(self) -> None:
                self.shard = state._new_shard()

        self.local = _Local()  # hot path: `state.local.shard`

    def _new_shard(self) -> Shard:
        sh = Shard(threading.current_thread())
        with self._lock:
            self._shards.append(sh)
        return sh

    def snapshot(self) -> ProbeSnapshot:
        acc = Shard(None)
        with self._lock:
            live = []
            for sh in self._shards:
                if sh.alive():
                    live.append(sh)
                else:  # its thread ended: it can no longer be written, fold it in for good
                    sh.add_into(self._retired)
            self._shards = live
            self._retired.add_into(acc)
            for sh in live:
                sh.add_into(acc)
        return ProbeSnapshot(self.model, self.version, self.start_time_ns, acc)

    def busy_ns(self, now_ns: int) -> int:
        """Integral of in-flight calls over time (perf_counter_ns clock) up to `now_ns`:
        completed durations plus, for calls still running, `now - start`."""
        total = 0
        with self._lock:  # held so a shard being folded into `_retired` is not counted twice
            for sh in (*self._shards, self._retired):
                total += sh.ok_sum + sh.err_sum + sh.in_flight * now_ns - sh.t0_sum
        return total

    def shard_count(self) -> int:
        with self._lock:
            return len(self._shards)

    def reset(self) -> None:
        """Zero all counters (tests; call when no probe is running)."""
        with self._lock:
            for sh in self._shards:
                sh.clear()
            self._retired.clear()
        self.start_time_ns = time.time_ns()


class Faults:
    """Faults inside the probe: counted per kind, logged once per kind, never raised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._logged: set[str] = set()

    def record(self, kind: str, exc: BaseException | None = None, detail: str = "") -> None:
        try:
            with self._lock:
                self._counts[kind] = self._counts.get(kind, 0) + 1
                first = kind not in self._logged
                self._logged.add(kind)
            if first:
                log.warning(
                    "benchwatch probe fault (%s): %s%s — counted in %s{fault=%r}; logged once",
                    kind, detail, f" {type(exc).__name__}: {exc}" if exc else "", metric_names.FAULTS,
                    kind,
                )
        except Exception:  # noqa: S110 - a fault counter must not become a fault
            pass

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(FAULT_KINDS, 0)
            self._logged.clear()


class Registry:
    """All ProbeStates of a process (bounded), the fault counter and the dropped counter."""

    def __init__(self, max_models: int = 200) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str, str | None], ProbeState] = {}
        self._max_models = max_models
        self.faults = Faults()
        # Sampling for the drift pipeline, set by configure(): rate 0 costs one attribute read.
        self.sample_rate = 0.0
        self.sample_queue: SampleQueueLike | None = None
        self.exemplars = False  # configure(exemplars=True): note the active span's trace per call
        self.rng = random.Random()  # seed it (`registry.rng.seed(n)`) for reproducible sampling

    def state(self, model: str, version: str, slice_: str | None = None) -> ProbeState:
        """The state of (model, version), or of one slice of it (probes/slices.py)."""
        key = (model, version, slice_)
        st = self._states.get(key)
        if st is not None:
            return st
        with self._lock:
            st = self._states.get(key)
            if st is None:
                if len(self._states) >= self._max_models:
                    log.warning("more than %d (model, version) pairs probed; %s/%s counted as %s",
                                self._max_models, model, version, OVERFLOW)
                    key = (OVERFLOW, OVERFLOW, None)
                    st = self._states.get(key)
                if st is None:
                    st = ProbeState(key[0], key[1], slice_=key[2])
                    self._states[key] = st
            return st

    def states(self) -> list[ProbeState]:
        with self._lock:
            return list(self._states.values())

    def __iter__(self) -> Iterator[ProbeState]:
        return iter(self.states())

    def reset(self) -> None:
        """Zero every counter (tests). States stay registered: decorated functions hold them."""
        for st in self.states():
            st.reset()
        self.faults.reset()


DEFAULT_REGISTRY = Registry()
