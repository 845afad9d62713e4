"""Throughput over backend x intra-op threads x batch size: the grid the comparison report draws
as a heatmap. Each cell is the runner's offline scenario (`run_offline`) on a backend opened
with that thread count, at that batch size, for at least `min_duration_s`. In-process backends
only: an HTTP endpoint's threads and batching are set by its server, not by the bench."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from benchwatch.bench.runner import RunSettings, run_offline
from benchwatch.bench.suites import Suite

DEFAULT_THREADS = (1, 2)
DEFAULT_BATCH_SIZES = (1, 16, 64)


@dataclass(frozen=True)
class Cell:
    backend: str
    threads: int | None
    batch_size: int
    throughput_qps: float
    samples: int
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_grid(kinds: Sequence[str], model: str, suite: Suite, threads: Sequence[int],
             batch_sizes: Sequence[int], settings: RunSettings, device: str = "cpu",
             min_duration_s: float = 0.3) -> list[Cell]:
    """One offline run per (backend, threads, batch size); each backend is opened once per
    thread count and closed before the next."""
    from benchwatch.bench.backends import make_backend

    cells = []
    for kind in kinds:
        if kind in ("null", "http"):  # an endpoint's threads and batching are its server's
            continue
        for t in threads:
            backend = make_backend(kind, model, None, 5.0, t, device)
            try:
                for bs in batch_sizes:
                    s = replace(settings, offline_batch_size=bs,
                                offline_samples=max(bs * 20, 1000),
                                offline_min_duration_s=min_duration_s)
                    r = run_offline(backend, suite, s)
                    cells.append(Cell(kind, t, bs, r.throughput_qps, r.samples, r.duration_s))
            finally:
                backend.close()
    return cells
