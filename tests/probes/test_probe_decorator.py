"""The decorator on every kind of callable, exact counts across threads, fault isolation."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

import numpy as np
import pytest

from probes import ConfigError, Probe, probe
from probes.state import OVERFLOW, ProbeState, Registry


def totals(st: ProbeState) -> Any:
    return st.snapshot().totals


@pytest.fixture
def reg() -> Registry:
    return Registry()


def test_sync_counts_latency_batch_and_returns_unchanged(reg: Registry) -> None:
    marker = object()

    @probe(model="m", version="v", registry=reg)
    def f(x: Any) -> Any:
        return marker

    assert f.__name__ == "f"
    for _ in range(10):
        assert f(np.zeros((4, 3))) is marker
    t = totals(reg.state("m", "v"))
    assert sum(t.ok) == 10 and sum(t.err) == 0 and t.in_flight == 0
    assert t.batch_sum == 40 and sum(t.batch) == 10


def test_user_exception_passes_through_unchanged_and_is_counted(reg: Registry) -> None:
    err = ValueError("bad input")

    @probe(model="m", version="v", registry=reg)
    def f() -> None:
        raise err

    for _ in range(3):
        with pytest.raises(ValueError) as e:
            f()
        assert e.value is err
    t = totals(reg.state("m", "v"))
    assert sum(t.err) == 3 and t.errors == {"ValueError": 3} and t.in_flight == 0


def test_async_function(reg: Registry) -> None:
    @probe(model="m", version="async", registry=reg)
    async def f(x: float) -> np.ndarray:
        await asyncio.sleep(0.01)
        if x < 0:
            raise KeyError("neg")
        return np.array([[0.1, 0.9]])

    async def main() -> None:
        await asyncio.gather(*(f(1.0) for _ in range(5)))
        with pytest.raises(KeyError):
            await f(-1.0)

    asyncio.run(main())
    t = totals(reg.state("m", "async"))
    assert sum(t.ok) == 5 and t.errors == {"KeyError": 1}
    assert t.ok_sum >= 5 * 0.009e9  # each call slept 10 ms
    assert t.classes == {"1": 5}


def test_generator_and_async_generator(reg: Registry) -> None:
    @probe(model="g", version="v", registry=reg)
    def gen(n: int) -> Any:
        yield from range(n)
        return "done"

    assert list(gen(3)) == [0, 1, 2]
    g = gen(10)
    next(g)
    g.close()  # consumer stopped early: not an error

    @probe(model="ag", version="v", registry=reg)
    async def agen(n: int) -> Any:
        for i in range(n):
            yield i
        raise RuntimeError("boom")

    async def consume() -> list[int]:
        out = []
        with pytest.raises(RuntimeError):
            async for i in agen(2):
                out.append(i)
        return out

    assert asyncio.run(consume()) == [0, 1]
    assert sum(totals(reg.state("g", "v")).ok) == 2
    t = totals(reg.state("ag", "v"))
    assert t.errors == {"RuntimeError": 1} and t.in_flight == 0


def test_context_manager_with_observe(reg: Registry) -> None:
    p = probe(model="cm", version="v", registry=reg)
    with p as span:
        span.observe(np.array([[5.0, 0.0, 0.0]]))
    with pytest.raises(ZeroDivisionError), p:
        _ = 1 / 0
    t = totals(reg.state("cm", "v"))
    assert sum(t.ok) == 1 and t.errors == {"ZeroDivisionError": 1} and t.classes == {"0": 1}


def test_torch_module_wrapped_in_place(reg: Registry) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(4, 3)
    same = probe(model="torch", version="v", registry=reg)(model)
    assert same is model and isinstance(same, torch.nn.Module)
    with torch.no_grad():
        out = model(torch.zeros(5, 4))
    assert out.shape == (5, 3)
    t = totals(reg.state("torch", "v"))
    assert sum(t.ok) == 1 and sum(t.classes.values()) == 5
    with pytest.raises(ConfigError, match="already probed"):
        probe(model="torch", version="v", registry=reg)(model)


def test_onnxruntime_session(reg: Registry, tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, (torch.zeros(1, 4),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    sess = probe(model="onnx", version="v", registry=reg)(ort.InferenceSession(str(path)))
    [y] = sess.run(None, {"x": np.zeros((7, 4), dtype=np.float32)})
    assert y.shape == (7, 3)
    t = totals(reg.state("onnx", "v"))
    assert sum(t.ok) == 1 and sum(t.classes.values()) == 7


def test_no_increment_lost_across_threads(reg: Registry) -> None:
    @probe(model="t", version="v", registry=reg)
    def f(i: int) -> int:
        if i % 100 == 0:
            raise ValueError
        return i

    n_threads, n_calls = 8, 5000

    def work() -> None:
        for i in range(1, n_calls + 1):
            try:
                f(i)
            except ValueError:
                pass

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t = totals(reg.state("t", "v"))
    assert sum(t.ok) + sum(t.err) == n_threads * n_calls
    assert t.errors["ValueError"] == n_threads * (n_calls // 100)
    assert t.in_flight == 0 and t.t0_sum == 0


def test_dead_threads_shards_are_folded(reg: Registry) -> None:
    @probe(model="churn", version="v", registry=reg)
    def f() -> None:
        return None

    for _ in range(50):
        th = threading.Thread(target=lambda: [f() for _ in range(10)])
        th.start()
        th.join()
    gc.collect()
    st = reg.state("churn", "v")
    assert sum(totals(st).ok) == 500
    assert st.shard_count() <= 2  # 50 dead threads left no shards behind
    assert sum(totals(st).ok) == 500  # and their counts survived the folding


def test_faults_never_reach_the_caller_and_are_logged_once(reg: Registry, caplog: Any) -> None:
    def bad_stats(out: Any) -> dict[str, float]:
        raise RuntimeError("stats broke")

    @probe(model="f", version="v", registry=reg, outputs=bad_stats, batch_size=lambda *a: 1 // 0)
    def f() -> str:
        return "result"

    @probe(model="f", version="unreadable", registry=reg, outputs="classifier")
    def g() -> dict[str, str]:
        return {"not": "an array"}

    with caplog.at_level(logging.WARNING, logger="probes"):
        for _ in range(5):
            assert f() == "result"
            assert g() == {"not": "an array"}
    counts = reg.faults.counts()
    assert counts["output_stats"] == 10 and counts["batch_size"] == 5
    fault_logs = [r for r in caplog.records if "probe fault" in r.getMessage()]
    assert len(fault_logs) == 2  # once per kind


def test_nan_outputs_are_counted_not_crashes(reg: Registry) -> None:
    @probe(model="nan", version="v", registry=reg)
    def f(x: np.ndarray) -> np.ndarray:
        return x

    f(np.array([[np.nan, 1.0], [0.2, 0.8]]))
    f(np.array([np.inf, 1.0]))  # regression
    t = totals(reg.state("nan", "v"))
    assert t.invalid == {"not_finite": 2} and t.classes == {"1": 1}
    assert sum(t.values["value"][0]) == 1


def test_outputs_callable_and_cardinality_guard(reg: Registry) -> None:
    @probe(model="c", version="v", registry=reg, outputs=lambda out: {f"feat{out}": 1.0})
    def f(i: int) -> int:
        return i

    @probe(model="c", version="labels", registry=reg)
    def g(i: int) -> np.ndarray:
        return np.array([i])

    @probe(model="c", version="errs", registry=reg)
    def h(i: int) -> None:
        raise type(f"Err{i}", (Exception,), {})()

    for i in range(2000):
        f(i)
        g(i)
        with pytest.raises(Exception):  # noqa: B017
            h(i)
    st = reg.state("c", "v")
    assert len(totals(st).values) == 101 and OVERFLOW in totals(st).values  # 100 + overflow
    assert len(totals(reg.state("c", "labels")).classes) == 1001
    errs = totals(reg.state("c", "errs")).errors
    assert len(errs) == 51 and errs[OVERFLOW] == 2000 - 50


def test_bad_declarations_fail_at_decoration_time(reg: Registry) -> None:
    with pytest.raises(ConfigError, match="model must be a non-empty string"):
        probe(model="", version="v", registry=reg)
    with pytest.raises(ConfigError, match="outputs must be one of"):
        probe(model="m", version="v", outputs="ranking", registry=reg)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cannot wrap"):
        probe(model="m", version="v", registry=reg)(42)
    assert isinstance(probe(model="m", version="v", registry=reg), Probe)


def test_registry_is_bounded() -> None:
    reg = Registry(max_models=3)
    for i in range(10):
        reg.state(f"m{i}", "v")
    assert len(reg.states()) == 4  # 3 + the overflow state
