"""GPU (NVML) and CPU package (Intel RAPL) energy, read off the request path, and joules per
inference attributed to models.

A background thread reads each device's cumulative energy counter every `interval_s`. The
energy of one interval is split over the models by their *busy time* in that interval (the
integral of their in-flight calls, kept exactly by `ProbeState.busy_ns` without any per-call
timestamps): concurrent requests share the interval's energy instead of each claiming the whole
counter delta (which would double count). Energy of intervals with no request in flight is
idle energy: it stays in `hw.energy` but is attributed to no model.

All models in the process share the devices it sees; energy used on the same GPU by *other*
processes in an interval is attributed to this process's models too (NVML has no per-process
energy; under MIG there is no per-instance power at all).
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Protocol, runtime_checkable

from probes.state import Registry

__all__ = [
    "DeviceReading",
    "EnergySampler",
    "EnergySource",
    "NvmlSource",
    "RaplSource",
    "discover_sources",
]

log = logging.getLogger("probes")


@dataclass(frozen=True)
class DeviceReading:
    """One device at one instant. `energy_j` is a cumulative counter (any origin); None where
    the device has none (then power × interval stands in)."""

    hw_id: str
    hw_type: str  # "gpu" or "cpu"
    name: str
    energy_j: float | None = None
    power_w: float | None = None
    utilization: float | None = None  # 0..1
    memory_used_bytes: int | None = None
    memory_limit_bytes: int | None = None


@runtime_checkable
class EnergySource(Protocol):
    def read(self) -> Sequence[DeviceReading]: ...

    def close(self) -> None: ...


class NvmlSource:
    """NVIDIA GPUs through nvidia-ml-py. Raises RuntimeError at construction when there is no
    NVML library, no driver or no GPU."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as e:
            raise RuntimeError("nvidia-ml-py is not installed (pip install benchwatch[gpu])") from e
        self._nv: Any = pynvml
        try:
            pynvml.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound / DriverNotLoaded ...
            raise RuntimeError(f"NVML unavailable: {e}") from e
        n = pynvml.nvmlDeviceGetCount()
        if n == 0:
            pynvml.nvmlShutdown()
            raise RuntimeError("NVML found no GPU")
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
        self._names = [_decode(pynvml.nvmlDeviceGetName(h)) for h in self._handles]
        self._has_energy = [True] * n

    def read(self) -> list[DeviceReading]:
        nv = self._nv
        out = []
        for i, h in enumerate(self._handles):
            energy = power = util = None
            used = limit = None
            if self._has_energy[i]:
                try:
                    energy = nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0  # mJ -> J
                except nv.NVMLError:  # pre-Volta: fall back to power x interval
                    self._has_energy[i] = False
            try:
                power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0  # mW -> W (averaged over ~1 s)
            except nv.NVMLError:
                pass
            try:
                util = nv.nvmlDeviceGetUtilizationRates(h).gpu / 100.0
            except nv.NVMLError:
                pass
            try:
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                used, limit = int(mem.used), int(mem.total)
            except nv.NVMLError:
                pass
            out.append(DeviceReading(f"gpu{i}", "gpu", self._names[i], energy, power, util, used, limit))
        return out

    def close(self) -> None:
        try:
            self._nv.nvmlShutdown()
        except Exception:  # noqa: S110 - shutting down a library that may be half-initialised
            pass


def _decode(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RaplSource:
    """CPU package energy from Linux powercap (intel-rapl:N), where readable. The counters
    wrap at `max_energy_range_uj`; the wrap is undone here so `energy_j` only grows."""

    def __init__(self, root: str = "/sys/class/powercap") -> None:
        self._zones: list[tuple[str, str, Path, float]] = []
        for zone in sorted(glob.glob(os.path.join(root, "intel-rapl:[0-9]*"))):
            if zone.count(":") != 1:  # sub-zones (core, dram) are inside the package
                continue
            p = Path(zone)
            try:
                name = (p / "name").read_text().strip()
                int((p / "energy_uj").read_text())
                wrap = float((p / "max_energy_range_uj").read_text()) / 1e6
            except (OSError, ValueError):
                continue  # not readable (often root-only since CVE-2020-8694)
            self._zones.append((f"cpu{len(self._zones)}", name, p / "energy_uj", wrap))
        if not self._zones:
            raise RuntimeError(f"no readable RAPL package zone under {root}")
        self._last = [0.0] * len(self._zones)
        self._offset = [0.0] * len(self._zones)

    def read(self) -> list[DeviceReading]:
        out = []
        for i, (hw_id, name, path, wrap) in enumerate(self._zones):
            try:
                raw = int(path.read_text()) / 1e6
            except (OSError, ValueError):
                continue
            if raw < self._last[i]:
                self._offset[i] += wrap
            self._last[i] = raw
            out.append(DeviceReading(hw_id, "cpu", name, energy_j=raw + self._offset[i]))
        return out

    def close(self) -> None:
        pass


def discover_sources(gpu: str = "auto", rapl: bool = True) -> list[EnergySource]:
    """NVML (gpu="auto": when present; "required": or raise; "off": never) and RAPL."""
    sources: list[EnergySource] = []
    if gpu != "off":
        try:
            sources.append(NvmlSource())
        except RuntimeError as e:
            if gpu == "required":
                raise
            log.info("no GPU telemetry (%s): exporting no GPU series", e)
    if rapl:
        try:
            sources.append(RaplSource())
        except RuntimeError as e:
            log.debug("no CPU package energy: %s", e)
    return sources


class EnergySampler:
    """Reads `sources` every `interval_s` on a daemon thread and attributes energy to the
    models of `registry`. `step()` does one reading (tests call it directly with an
    injected source and clock)."""

    def __init__(self, registry: Registry, sources: Sequence[EnergySource], interval_s: float = 0.25,
                 clock: Callable[[], int] = perf_counter_ns) -> None:
        self.registry = registry
        self.sources = list(sources)
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_t: int | None = None
        self._last_energy: dict[str, float] = {}
        self._last_busy: dict[tuple[str, str], int] = {}
        # exported state (cumulative since start), written by the sampler, copied at export
        self.device_energy: dict[str, float] = {}
        self.idle_energy: dict[str, float] = {}
        self.attributed: dict[tuple[str, str, str, str], float] = {}  # (model, version, hw_id, hw_type)
        self.latest: dict[str, DeviceReading] = {}

    def start(self) -> None:
        if self._thread is not None or not self.sources:
            return
        self.step()  # baseline reading
        self._thread = threading.Thread(target=self._run, name="benchwatch-energy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()

    def step(self) -> None:
        """Read every source once and attribute the energy since the previous reading."""
        try:
            now = self._clock()
            readings: list[DeviceReading] = []
            for src in self.sources:
                readings.extend(src.read())
            busy = {(st.model, st.version): st.busy_ns(now) for st in self.registry.states()}
        except Exception as e:
            self.registry.faults.record("sampler", e, "energy sampler:")
            return
        with self._lock:
            dt_s = (now - self._last_t) / 1e9 if self._last_t is not None else 0.0
            deltas = {k: v - self._last_busy.get(k, 0) for k, v in busy.items()} if self._last_t is not None else {}
            total_busy = sum(d for d in deltas.values() if d > 0)
            for r in readings:
                self.latest[r.hw_id] = r
                if r.energy_j is not None:
                    prev = self._last_energy.get(r.hw_id)
                    self._last_energy[r.hw_id] = r.energy_j
                    joules = r.energy_j - prev if prev is not None else 0.0
                    if joules < 0:  # counter reset (driver reload): skip the interval
                        joules = 0.0
                elif r.power_w is not None:
                    joules = r.power_w * dt_s
                else:
                    continue
                self.device_energy[r.hw_id] = self.device_energy.get(r.hw_id, 0.0) + joules
                if joules <= 0.0:
                    continue
                if total_busy <= 0:
                    self.idle_energy[r.hw_id] = self.idle_energy.get(r.hw_id, 0.0) + joules
                    continue
                for (model, version), b in deltas.items():
                    if b > 0:
                        key = (model, version, r.hw_id, r.hw_type)
                        self.attributed[key] = self.attributed.get(key, 0.0) + joules * b / total_busy
            self._last_t = now
            self._last_busy = busy

    def snapshot(self) -> tuple[dict[str, float], dict[tuple[str, str, str, str], float], dict[str, DeviceReading]]:
        with self._lock:
            return dict(self.device_energy), dict(self.attributed), dict(self.latest)

    def reset(self) -> None:
        with self._lock:
            self.device_energy.clear()
            self.idle_energy.clear()
            self.attributed.clear()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for src in self.sources:
            try:
                src.close()
            except Exception as e:
                log.debug("closing energy source failed: %s", e)
