"""Energy for the bench, read through the probes' own device sources (one NVML implementation in
the codebase), at the two points a baseline records it:

- `device`: the whole device counter over a window (`DeviceCounter`, a callable returning
  cumulative joules): what the device costs while dedicated to the model, idle draw included
  (the cost figures use it);
- `model_call`: what live monitoring exports (`benchwatch_inference_energy_joules_total`), the
  probe's own `EnergySampler` attributing only the energy above the device's idle power to the
  model, by busy time (`ModelCallEnergy` on a probed in-process backend's private registry;
  `attribute_energy` wires it, after `learn_idle`). Live figures are compared with this one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from benchwatch.errors import UsageError
from probes.energy import IDLE_BLOCK_S, IDLE_MIN_BLOCKS, IDLE_SETTLE_S, EnergySampler, EnergySource
from probes.errors import BenchwatchError
from probes.state import Registry

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.25  # the probe sampler's default
# the probe's own learning needs IDLE_MIN_BLOCKS blocks of idle; a few more for a busy machine
IDLE_LEARN_TIMEOUT_S = IDLE_SETTLE_S + (IDLE_MIN_BLOCKS + 3) * IDLE_BLOCK_S


class EnergyUnavailable(BenchwatchError, RuntimeError):
    """The energy counter that was asked for is not on this machine."""


class DeviceCounter:
    """The cumulative joules of every device of one type ("gpu" or "cpu") that `open_source()`'s
    source reads; calling it reads the counter. `open_source` also gives each probe sampler a
    source of its own (NVML's init/shutdown are reference-counted)."""

    def __init__(self, open_source: Callable[[], EnergySource], hw_type: str) -> None:
        self.open_source, self.hw_type = open_source, hw_type
        self._src = open_source()

    def names(self) -> list[str]:
        """The devices with an energy counter (empty: none)."""
        return sorted({r.name for r in self._src.read()
                       if r.hw_type == self.hw_type and r.energy_j is not None})

    def __call__(self) -> float:
        return sum(r.energy_j or 0.0 for r in self._src.read() if r.hw_type == self.hw_type)

    def close(self) -> None:
        self._src.close()


def energy_meter(kind: str = "auto") -> tuple[DeviceCounter | None, str]:
    """(meter, description). kind: "auto" (GPU when NVML sees one, else none), "gpu" (required),
    "cpu" (RAPL package energy, required), "off"."""
    if kind == "off":
        return None, "off"
    from probes.energy import NvmlSource, RaplSource

    try:
        if kind in ("auto", "gpu"):
            try:
                meter = DeviceCounter(NvmlSource, "gpu")
            except RuntimeError as e:
                if kind == "gpu":
                    raise EnergyUnavailable(f"--energy gpu: {e}") from e
                return None, f"not measured ({e})"
        elif kind == "cpu":
            meter = DeviceCounter(RaplSource, "cpu")
        else:
            raise UsageError(f"--energy must be auto, gpu, cpu or off, got {kind!r}")
    except RuntimeError as e:
        raise EnergyUnavailable(f"--energy {kind}: {e}") from e
    names = meter.names()
    if not names:
        meter.close()
        msg = f"no {meter.hw_type} energy counter (NVML total energy needs Volta or newer)"
        if kind == "auto":
            return None, f"not measured ({msg})"
        raise EnergyUnavailable(msg)
    return meter, f"{meter.hw_type}: {', '.join(names)}"


def learn_idle(counter: DeviceCounter, timeout_s: float = IDLE_LEARN_TIMEOUT_S,
               interval_s: float = SAMPLE_INTERVAL_S) -> tuple[dict[str, float] | None, str]:
    """Each device's idle power, learned by the probe's own `EnergySampler` (median of 1 s
    blocks) while nothing runs: ({hw_id: watts}, description), or (None, why not) when it is
    not learned within `timeout_s`. Waits `IDLE_SETTLE_S` first: clocks stay up after loading a
    model, as after a call."""
    time.sleep(IDLE_SETTLE_S)
    sampler = EnergySampler(Registry(), [counter.open_source()], interval_s)  # no model: all idle
    sampler.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            idle = sampler.idle_watts()
            if idle and all(source == "learned" and w is not None for w, source in idle.values()):
                watts = {hw: w for hw, (w, _) in idle.items() if w is not None}
                return watts, "above idle (idle power learned: " + ", ".join(
                    f"{hw} {w:.1f} W" for hw, w in sorted(watts.items())) + ")"
            if time.monotonic() >= deadline:
                got = ", ".join(f"{hw} {src}" for hw, (_, src) in sorted(idle.items())) or "no reading"
                return None, (f"not measured: the idle power was not learned within {timeout_s:g} s "
                              f"({got}), so no energy above idle can be attributed")
            time.sleep(interval_s)
    finally:
        sampler.close()


class ModelCallEnergy:
    """The joules live monitoring would attribute to the model of a probed in-process backend:
    the probe's own `EnergySampler` on the backend's private registry, above the idle power
    `learn_idle` learned. The idle power is fixed, not learned on: a private registry sees only
    its own backend's calls, so a sampler still learning would take another backend's run (or
    the bench's robustness pass) for idle."""

    def __init__(self, registry: Registry, counter: DeviceCounter, idle_w: Mapping[str, float],
                 interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.sampler = EnergySampler(registry, [counter.open_source()], interval_s,
                                     idle_power_w=idle_w)
        self.sampler.start()

    def joules(self) -> float:
        """Attributed joules so far; one reading first, so a scenario's window ends when it does."""
        self.sampler.step()
        return sum(self.sampler.snapshot().attributed.values())

    def close(self) -> None:
        self.sampler.close()


@runtime_checkable
class Probed(Protocol):
    """A probed in-process backend (`ProbedBackend`, `ProbedLm`): its private registry, and its
    model-call energy once `attribute_energy` set it."""

    registry: Registry
    energy: ModelCallEnergy | None


def with_model_call(meter_desc: str, attributed: str | None) -> str:
    """A run's energy description: the device meter's, and the model_call attribution's
    (`attribute_energy`'s answer) when there is one."""
    return f"{meter_desc}; model_call: {attributed}" if attributed else meter_desc


def attribute_energy(backends: Iterable[object], counter: DeviceCounter | None,
                     say: Callable[[str], None],
                     timeout_s: float = IDLE_LEARN_TIMEOUT_S) -> str | None:
    """With an energy counter, learn the idle power once (nothing runs yet) and give every probed
    in-process backend among `backends` its `ModelCallEnergy`, so its `read()` has the joules
    above idle: the model_call energy figures. Returns what the model_call energy is (said with
    `say` too), or None without a counter or probed backend. When the idle power is not learned,
    no backend gets one: no model_call energy rather than a wrong one."""
    probed = [b for b in backends if isinstance(b, Probed)]
    if counter is None or not probed:
        return None
    idle, desc = learn_idle(counter, timeout_s)
    say(f"model_call energy: {desc}")
    if idle is not None:
        for b in probed:
            b.energy = ModelCallEnergy(b.registry, counter, idle)
    return desc
