"""Fairness slices on the probe: `slice=` counts each call in its slice (a `slice` label on
latency, errors and output statistics), bounded with an overflow slice, never raising into the
caller; the slices of a model are charged energy together as the model."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest

from benchwatch import promtext
from benchwatch.services import free_port
from probes import ConfigError, configure, probe, shutdown
from probes import metric_names as m
from probes.energy import EnergySampler
from probes.slices import OVERFLOW_SLICE
from probes.state import Registry
from tests.probes.test_probe_energy import FakeGpu

S = 1_000_000_000


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def _calls(reg: Registry) -> dict[str | None, int]:
    return {st.slice: sum(st.snapshot().totals.ok) + sum(st.snapshot().totals.err)
            for st in reg.states() if st.model == "credit"}


def test_each_call_is_counted_in_its_slice_and_the_slices_are_capped() -> None:
    reg = Registry()

    @probe(model="credit", version="v1", registry=reg, slice=lambda x, region: region,
           max_slices=2)
    def predict(x: np.ndarray, region: object) -> np.ndarray:
        if x[0, 0] < 0:
            raise ValueError("bad row")
        return np.array([[0.2, 0.8]])

    for region in ("north", "south", "north", "east", "west"):
        predict(np.ones((1, 2)), region)
    with pytest.raises(ValueError):
        predict(-np.ones((1, 2)), "south")
    assert predict(np.ones((1, 2)), 7).shape == (1, 2)  # not a str: a probe fault, not an error
    assert predict(np.ones((1, 2)), ["unhashable"]).shape == (1, 2)
    assert _calls(reg) == {None: 2, "north": 2, "south": 2, OVERFLOW_SLICE: 2}
    south = next(st for st in reg.states() if st.slice == "south").snapshot().totals
    assert sum(south.err) == 1 and south.errors == {"ValueError": 1}
    assert south.classes == {"1": 1}  # output statistics per slice
    assert reg.faults.counts()["slice"] == 2


def test_async_functions_and_what_cannot_be_sliced() -> None:
    reg = Registry()

    @probe(model="credit", version="v1", registry=reg, slice=lambda x: "all")
    async def predict(x: int) -> int:
        await asyncio.sleep(0)
        return x

    assert asyncio.run(predict(3)) == 3
    assert _calls(reg)["all"] == 1

    def gen(x: int) -> Iterator[int]:
        yield x

    with pytest.raises(ConfigError, match="functions and async functions"):
        probe(model="credit", version="v1", registry=reg, slice=lambda x: "a")(gen)
    with pytest.raises(ConfigError, match="slice must be a callable"):
        probe(model="credit", version="v1", registry=reg, slice="region")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_slices"):
        probe(model="credit", version="v1", registry=reg, slice=lambda x: "a", max_slices=0)


def test_slices_are_exported_with_a_slice_label_that_sums_to_the_model() -> None:
    reg = Registry()
    rt = configure("svc", prometheus_port=free_port(), gpu="off", registry=reg)

    @probe(model="credit", version="v1", registry=reg, slice=lambda x, g: g)
    def predict(x: np.ndarray, g: str) -> np.ndarray:
        return np.array([[0.3, 0.7]])

    for g in ("a", "a", "b"):
        predict(np.zeros((1, 2)), g)
    assert rt.prometheus_url is not None
    text = promtext.fetch(rt.prometheus_url)
    s = promtext.parse(text)
    assert s.values(m.REQUESTS, model="credit", slice="a") == [2.0]
    assert s.values(m.REQUESTS, model="credit", slice="b") == [1.0]
    assert sum(s.values(m.REQUESTS, model="credit")) == 3.0
    assert s.values(m.OUTPUT_CLASS, model="credit", slice="a", predicted_class="1") == [2.0]
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_sliced_model_is_charged_energy_like_an_unsliced_one() -> None:
    """Busy time of a model's slices adds up: a sliced and an unsliced model with the same
    calls get the same share of the device's energy above idle."""
    reg = Registry()
    gpu = FakeGpu()
    now = [0]
    s = EnergySampler(reg, [gpu], clock=lambda: now[0], idle_power_w={"gpu0": 10.0})
    s.step()
    for model, slice_ in (("plain", None), ("sliced", "a"), ("sliced", "b")):
        sh = reg.state(model, "v", slice_).local.shard
        sh.ok_sum += (4 if slice_ is None else 2) * S  # 4 s busy each model, sliced 2 + 2
    reg.state("sliced", "v")  # the unsliced parent state every sliced probe has
    now[0] = 10 * S
    gpu.energy_j += 300.0
    s.step()
    snap = s.snapshot()
    assert snap.attributed[("plain", "v", "gpu0", "gpu")] == pytest.approx(100.0)
    assert snap.attributed[("sliced", "v", "gpu0", "gpu")] == pytest.approx(100.0)
