"""A FAKE GPU on a virtual clock, for checking energy attribution without a GPU or waiting.

There is no GPU here, so `FakeGpu` stands in for NVML: a cumulative energy counter that grows
at `idle_w`, plus `busy_w` while at least one call is on it. Time is virtual: the probe's own
clock (`probes.decorator.perf_counter_ns`) and the samplers' clock are one `Timeline`, and a
probed call "runs" by advancing it, so 25 s of traffic take milliseconds. Everything else is
the real code: `@probe` wrappers, `ProbeState.busy_ns`, `EnergySampler.step()`.

Used by tests/probes/test_probe_energy.py and benchmarks/energy_attribution.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from probes import DeviceReading, probe
from probes.energy import EnergySampler, IdlePower
from probes.state import Registry

NS = 1_000_000_000


class FakeGpu:
    """FAKE (no GPU here): stands in for one NVML GPU. Draws `idle_w`, plus `busy_w` while
    `on` > 0 calls use it; `energy_j` is the true cumulative counter."""

    def __init__(self, idle_w: float = 100.0, busy_w: float = 200.0) -> None:
        self.idle_w, self.busy_w = idle_w, busy_w
        self.energy_j = 1000.0  # any origin, as NVML's counter
        self.on = 0

    def run_for(self, seconds: float) -> None:
        self.energy_j += (self.idle_w + (self.busy_w if self.on else 0.0)) * seconds

    def read(self) -> list[DeviceReading]:
        return [DeviceReading("gpu0", "gpu", "FakeGPU", energy_j=self.energy_j,
                              power_w=self.idle_w + (self.busy_w if self.on else 0.0))]

    def close(self) -> None:
        pass


class Timeline:
    """Virtual nanoseconds shared by the probe, the fake GPU and the samplers; advancing it
    steps every sampler at each `interval_s` boundary it crosses (so steps fall mid-call)."""

    def __init__(self, gpu: FakeGpu, interval_s: float = 0.25) -> None:
        self.gpu = gpu
        self.now = 0
        self.interval_ns = int(interval_s * NS)
        self.next_step = 0
        self.samplers: list[EnergySampler] = []

    def __call__(self) -> int:
        return self.now

    def _move(self, t: int) -> None:
        self.gpu.run_for((t - self.now) / NS)
        self.now = t

    def advance(self, seconds: float) -> None:
        end = self.now + int(seconds * NS)
        while self.next_step <= end:
            self._move(self.next_step)
            for s in self.samplers:
                s.step()
            self.next_step += self.interval_ns
        self._move(end)


@contextmanager
def probe_clock(timeline: Timeline) -> Iterator[None]:
    """The probe's call timer reads the timeline while the block runs."""
    import probes.decorator as decorator

    saved = decorator.perf_counter_ns
    decorator.perf_counter_ns = timeline
    try:
        yield
    finally:
        decorator.perf_counter_ns = saved


@dataclass
class ScenarioResult:
    calls: int
    busy_s: float  # the GPU model's calls' total duration
    true_j_per_call: float  # busy_w x busy time per call: the energy above idle, the truth
    j_per_call: dict[str, float]  # sampler name -> attributed J per GPU-model call
    attributed_j: dict[str, float]  # sampler name -> all joules attributed to any model on gpu0
    idle_j: dict[str, float]
    device_j: dict[str, float]  # the sampler's device counter (hw.energy)
    counter_j: float  # the fake GPU's own counter over the same span
    cpu_model_gpu_j: dict[str, float]  # joules on gpu0 charged to the devices="cpu" model
    idle_power: dict[str, IdlePower]
    samplers: dict[str, EnergySampler]


def run_scenario(duty: float, *, idle_s: float = 5.0, active_s: float = 20.0, call_s: float = 0.010,
                 interval_s: float = 0.25, idle_w: float = 100.0, busy_w: float = 200.0,
                 samplers: Mapping[str, Mapping[str, float] | None] | None = None,
                 cpu_model: bool = True) -> ScenarioResult:
    """`idle_s` with no call, then `active_s` of GPU-model calls of `call_s` each at `duty`
    (busy fraction); with `cpu_model`, a `devices="cpu"` model runs in every gap (the GPU
    draws idle then). `samplers`: name -> idle_power_w for an EnergySampler (None = learn);
    all read the same fake GPU at the same instants."""
    gpu = FakeGpu(idle_w, busy_w)
    timeline = Timeline(gpu, interval_s)
    reg = Registry()
    configs = samplers if samplers is not None else {"new": None}
    built = {name: EnergySampler(reg, [gpu], interval_s, clock=timeline, idle_power_w=cfg)
             for name, cfg in configs.items()}
    timeline.samplers = list(built.values())

    @probe(model="gpu-model", version="v1", registry=reg, outputs=None)
    def on_gpu() -> None:
        gpu.on += 1
        timeline.advance(call_s)
        gpu.on -= 1

    @probe(model="cpu-model", version="v1", registry=reg, outputs=None, devices="cpu")
    def on_cpu(seconds: float) -> None:
        timeline.advance(seconds)

    period = call_s / duty
    calls = 0
    start_j = gpu.energy_j  # the samplers' first reading is at t=0, before any energy is used
    with probe_clock(timeline):
        timeline.advance(idle_s)
        while timeline.now < int((idle_s + active_s) * NS):
            on_gpu()
            calls += 1
            gap = period - call_s
            if cpu_model and gap > 0:
                on_cpu(gap / 2)
                timeline.advance(gap / 2)
            else:
                timeline.advance(gap)
        # close the last interval on a step boundary
        timeline.advance((timeline.next_step - timeline.now) / NS)
    out = ScenarioResult(calls=calls, busy_s=calls * call_s, true_j_per_call=busy_w * call_s,
                         j_per_call={}, attributed_j={}, idle_j={}, device_j={},
                         counter_j=gpu.energy_j - start_j, cpu_model_gpu_j={},
                         idle_power={}, samplers=built)
    for name, s in built.items():
        snap = s.snapshot()
        gpu_j = snap.attributed.get(("gpu-model", "v1", "gpu0", "gpu"), 0.0)
        out.j_per_call[name] = gpu_j / calls
        out.attributed_j[name] = sum(j for k, j in snap.attributed.items() if k[2] == "gpu0")
        out.idle_j[name] = snap.idle.get("gpu0", 0.0)
        out.device_j[name] = snap.device.get("gpu0", 0.0)
        out.cpu_model_gpu_j[name] = snap.attributed.get(("cpu-model", "v1", "gpu0", "gpu"), 0.0)
        out.idle_power[name] = s.idle_power["gpu0"]
    return out

