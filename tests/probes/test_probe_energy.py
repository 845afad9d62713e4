"""Energy attribution with an injected energy source and clock; no NVML here → no GPU series."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from probes import DeviceReading, configure, probe, shutdown
from probes import metric_names as m
from probes.energy import EnergySampler, NvmlSource, discover_sources
from probes.state import Registry


class FakeGpu:
    """Stands in for NVML, so the tests run without a GPU: a settable cumulative energy counter."""

    def __init__(self) -> None:
        self.energy_j = 1000.0
        self.closed = False

    def read(self) -> list[DeviceReading]:
        return [DeviceReading("gpu0", "gpu", "FakeGPU", energy_j=self.energy_j, power_w=300.0,
                              utilization=0.5, memory_used_bytes=2**30, memory_limit_bytes=2**34)]

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def _enter(reg: Registry, model: str, t0: int) -> None:
    """Open an in-flight call started at `t0` (ns) on this thread's shard."""
    sh = reg.state(model, "v").local.shard
    sh.in_flight += 1
    sh.t0_sum += t0


def _leave(reg: Registry, model: str, t0: int, t1: int) -> None:
    sh = reg.state(model, "v").local.shard
    sh.in_flight -= 1
    sh.t0_sum -= t0
    sh.ok[0] += 1
    sh.ok_sum += t1 - t0


def test_interval_energy_is_split_by_busy_time() -> None:
    reg = Registry()
    gpu = FakeGpu()
    now = [0]
    s = EnergySampler(reg, [gpu], clock=lambda: now[0])
    reg.state("a", "v")
    reg.state("b", "v")
    s.step()  # baseline at t=0
    # interval 1 (0..10 s): a busy 0..10 s (still in flight), b busy 2..7 s (done); 150 J used
    _enter(reg, "a", 0)
    _enter(reg, "b", 2 * 10**9)
    _leave(reg, "b", 2 * 10**9, 7 * 10**9)
    now[0] = 10 * 10**9
    gpu.energy_j += 150.0
    s.step()
    _, attributed, _ = s.snapshot()
    assert attributed[("a", "v", "gpu0", "gpu")] == pytest.approx(100.0)  # 10 of 15 busy seconds
    assert attributed[("b", "v", "gpu0", "gpu")] == pytest.approx(50.0)
    # interval 2 (10..20 s): only a, finishing at 15 s; 60 J -> all to a
    _leave(reg, "a", 0, 15 * 10**9)
    now[0] = 20 * 10**9
    gpu.energy_j += 60.0
    s.step()
    # interval 3: nobody in flight: idle energy, attributed to no model
    now[0] = 30 * 10**9
    gpu.energy_j += 40.0
    s.step()
    device, attributed, latest = s.snapshot()
    assert attributed[("a", "v", "gpu0", "gpu")] == pytest.approx(160.0)
    assert attributed[("b", "v", "gpu0", "gpu")] == pytest.approx(50.0)
    assert device["gpu0"] == pytest.approx(250.0) and s.idle_energy["gpu0"] == pytest.approx(40.0)
    assert sum(attributed.values()) + s.idle_energy["gpu0"] == pytest.approx(device["gpu0"])
    assert latest["gpu0"].power_w == 300.0


def test_counter_reset_and_power_only_devices() -> None:
    reg = Registry()
    now = [0]

    class PowerOnly:
        def read(self) -> list[DeviceReading]:
            return [DeviceReading("gpu1", "gpu", "old", energy_j=None, power_w=100.0)]

        def close(self) -> None:
            pass

    gpu = FakeGpu()
    s = EnergySampler(reg, [gpu, PowerOnly()], clock=lambda: now[0])
    s.step()
    now[0] = 2 * 10**9
    gpu.energy_j = 5.0  # driver reload: the counter went backwards; that interval is skipped
    s.step()
    device, _, _ = s.snapshot()
    assert device["gpu0"] == 0.0 and device["gpu1"] == pytest.approx(200.0)  # 100 W x 2 s


def test_probe_export_carries_energy_per_model_with_real_calls() -> None:
    reg = Registry()
    gpu = FakeGpu()
    rt = configure("energy", prometheus_port=0, gpu=gpu, registry=reg, energy_interval_s=0.05)
    gate = threading.Event()

    @probe(model="e", version="v", registry=reg)
    def infer() -> None:
        gate.wait(1.0)

    th = threading.Thread(target=infer)
    th.start()
    while reg.state("e", "v").snapshot().totals.in_flight != 1:
        time.sleep(0.001)
    assert rt.energy is not None
    rt.energy.step()
    gpu.energy_j += 10.0  # used while the call is in flight
    rt.energy.step()
    gate.set()
    th.join()
    metrics = {x.name: x for x in rt.collect()}
    [pt] = metrics[m.OTEL_ENERGY].data.data_points
    assert pt.attributes["model"] == "e" and pt.value == pytest.approx(10.0)
    assert metrics[m.OTEL_HW_ENERGY].data.data_points[0].value == pytest.approx(10.0)
    assert {m.OTEL_HW_POWER, m.OTEL_HW_UTILIZATION, m.OTEL_HW_MEMORY} <= set(metrics)
    shutdown()
    assert gpu.closed


def test_no_nvml_means_no_gpu_series_and_one_log_line(caplog: Any) -> None:
    try:
        NvmlSource().close()
        pytest.skip("this machine has a GPU with NVML: the GPU path is checked by benchmarks/gpu_energy.py")
    except RuntimeError:
        pass
    reg = Registry()
    with caplog.at_level(logging.INFO, logger="probes"):
        rt = configure("cpu-only", prometheus_port=0, registry=reg)
    gpu_lines = [r for r in caplog.records if "GPU" in r.getMessage()]
    assert len(gpu_lines) == 1 and "no GPU series" in gpu_lines[0].getMessage()

    @probe(model="cpu", version="v", registry=reg)
    def f() -> int:
        return 1

    f()
    names = {x.name for x in rt.collect()}
    assert not {n for n in names if n.startswith("hw.gpu")} and m.OTEL_LATENCY in names
    assert not [s for s in discover_sources("auto", rapl=False)]


def test_rapl_package_energy_with_counter_wrap(tmp_path: Any) -> None:
    from probes.energy import RaplSource

    zone = tmp_path / "intel-rapl:0"
    sub = tmp_path / "intel-rapl:0:0"  # a sub-zone (core): must not be counted twice
    for d in (zone, sub):
        d.mkdir()
        (d / "name").write_text("package-0\n" if d == zone else "core\n")
        (d / "max_energy_range_uj").write_text("1000000000\n")  # wraps at 1000 J
        (d / "energy_uj").write_text("999000000\n")
    src = RaplSource(str(tmp_path))
    [r0] = src.read()
    assert (r0.hw_id, r0.hw_type, r0.name, r0.energy_j) == ("cpu0", "cpu", "package-0", pytest.approx(999.0))
    (zone / "energy_uj").write_text("2000000\n")  # wrapped: 999 J -> 1000 J -> 2 J
    [r1] = src.read()
    assert r1.energy_j == pytest.approx(1002.0)
    with pytest.raises(RuntimeError, match="no readable RAPL"):
        RaplSource(str(tmp_path / "nothing"))


@pytest.mark.gpu
def test_nvml_path_on_a_real_gpu() -> None:
    """Runs where NVML and a CUDA GPU exist (`benchmarks/device_check.sh`); skipped elsewhere, where
    `test_no_nvml_means_no_gpu_series_and_one_log_line` checks the CPU-only behaviour."""
    try:
        NvmlSource().close()
    except RuntimeError as e:
        pytest.skip(f"no NVML here: {e}")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("NVML but no CUDA device visible to PyTorch")
    reg = Registry()
    rt = configure("gpu-test", prometheus_port=0, gpu="required", registry=reg, energy_interval_s=0.1)
    net = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 10)).cuda()
    x = torch.randn(512, 4096, device="cuda")

    @probe(model="cuda", version="v", registry=reg)
    def infer(x: Any) -> Any:
        with torch.no_grad():
            return net(x).cpu()

    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        infer(x)
    assert rt.energy is not None
    rt.energy.step()
    metrics = {x.name: x for x in rt.collect()}
    assert {m.OTEL_HW_ENERGY, m.OTEL_HW_POWER, m.OTEL_HW_UTILIZATION, m.OTEL_HW_MEMORY} <= set(metrics)
    [pt] = [p for p in metrics[m.OTEL_ENERGY].data.data_points if p.attributes["model"] == "cuda"]
    assert pt.value > 0
