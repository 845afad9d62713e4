"""Memory stays flat over 10 million probed calls with stable labels."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from probes import probe
from probes.state import Registry

psutil = pytest.importorskip("psutil")


@pytest.mark.slow
def test_memory_flat_over_ten_million_calls() -> None:
    reg = Registry()
    out = np.array([[0.2, 0.8]])

    @probe(model="mem", version="v", registry=reg)
    def f(x: int) -> int:
        return x

    @probe(model="mem", version="stats", registry=reg)
    def g(x: int) -> np.ndarray:
        return out

    proc = psutil.Process()
    for i in range(200_000):  # warm up: shards, label guards, allocator pools
        f(i)
        g(i)
    gc.collect()
    rss0 = proc.memory_info().rss
    for i in range(9_000_000):
        f(i)
    for i in range(800_000):
        g(i)
    gc.collect()
    grown = proc.memory_info().rss - rss0
    t = reg.state("mem", "v").snapshot().totals
    assert sum(t.ok) == 9_200_000
    assert sum(reg.state("mem", "stats").snapshot().totals.ok) == 1_000_000
    assert grown < 2 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 10 million calls"
