"""GPU (NVML) and CPU package (Intel RAPL) energy, read off the request path, and joules per
inference attributed to models the way Kepler does it: only the energy above idle.

A background thread reads each device's cumulative energy counter every `interval_s`. Per
device and interval:

- The device's **idle power** is configured (`configure(idle_power_w=...)`) or learned: the
  median power of the last `IDLE_WINDOW` blocks of `IDLE_BLOCK_S` of intervals in which none of
  the models that may use the device had a call in flight, leaving out the `IDLE_SETTLE_S` after
  the last call (clocks stay up after a burst). Blocks, not single intervals: NVML's energy
  counter advances in steps, so one 0.25 s interval's power is noisy (on an H200 the 10th
  percentile of interval powers read 74 W for a 120 W idle); the median of whole seconds is
  not, and a spike from another process does not move it. Until `IDLE_MIN_BLOCKS` blocks were
  seen, the lowest power of any interval so far stands in for it.
- The energy **above idle** (`max(0, energy - idle power x interval)`) is split over the
  models that may use the device by their *busy time* in the interval (the integral of their
  in-flight calls, kept exactly by `ProbeState.busy_ns` without per-call timestamps).
- The rest is **idle energy**, exported apart: the idle draw, an interval's energy below the
  idle estimate (never a negative attribution), and intervals in which none of those models
  ran. So attributed + idle = the device's counter, exactly.

A model may use a device when its probe declared it (`probe(..., devices="cpu")`, a hw_type,
or `devices=["gpu0"]`, hw_ids), when a probed PyTorch module's parameters live on it or an ONNX
Runtime session's providers include a GPU; an undeclared plain function may use every device.

All models in the process share the devices it sees. NVML has no per-process energy: energy
drawn on the same GPU by *other* processes while a model of this one runs is attributed to it
(under MIG there is no per-instance power at all); while none runs it counts as idle.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Protocol, runtime_checkable

from probes.errors import ConfigError
from probes.state import ProbeState, Registry

__all__ = [
    "DeviceReading",
    "EnergySampler",
    "EnergySnapshot",
    "EnergySource",
    "IdlePower",
    "NvmlSource",
    "RaplSource",
    "discover_sources",
    "module_devices",
    "parse_devices",
    "parse_idle_power",
    "session_devices",
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


IDLE_BLOCK_S = 1.0  # idle time per block: enough counter steps for a steady power
IDLE_SETTLE_S = 1.0  # idle intervals this soon after a call are left out (clocks still up)
IDLE_WINDOW = 60  # idle blocks kept: the last minute of idle time
IDLE_MIN_BLOCKS = 3  # before this many, the lowest interval power stands in (see module doc)

_DEVICE_NAME = re.compile(r"[a-z]+[0-9]*")


def parse_devices(devices: str | Iterable[str] | None) -> frozenset[str] | None:
    """`probe(devices=...)`: None (every device), a hw_type ("cpu", "gpu") or hw_id ("gpu0"),
    or several. Raises ConfigError for anything else."""
    if devices is None:
        return None
    items = [devices] if isinstance(devices, str) else list(devices) if isinstance(devices, Iterable) else None
    if not items or not all(isinstance(d, str) and _DEVICE_NAME.fullmatch(d.strip().lower()) for d in items):
        raise ConfigError(f"devices must be a device type (\"cpu\", \"gpu\"), a device id (\"gpu0\", "
                          f"\"cpu0\") or a list of them, got {devices!r}: @probe(..., devices=\"cpu\")")
    return frozenset(d.strip().lower() for d in items)


def parse_idle_power(value: float | str | Mapping[str, float] | None) -> dict[str, float]:
    """`configure(idle_power_w=...)`: watts for every device (`60`), or per hw_id/hw_type
    (`{"gpu0": 60, "cpu": 12}`, in the environment `"gpu0=60,cpu=12"`). Key "*" = every device."""
    if value is None or value == "":
        return {}
    raw: dict[str, Any]
    if isinstance(value, Mapping):
        raw = dict(value)
    elif isinstance(value, str):
        raw = {}
        for part in value.split(","):
            key, sep, watts = part.partition("=")
            raw[key.strip().lower() if sep else "*"] = watts if sep else key
    else:
        raw = {"*": value}
    out: dict[str, float] = {}
    for key, watts in raw.items():
        try:
            w = float(watts)
        except (TypeError, ValueError):
            w = math.nan
        if isinstance(watts, bool) or not math.isfinite(w) or w < 0 or \
                not (key == "*" or _DEVICE_NAME.fullmatch(str(key))):
            raise ConfigError(f"idle_power_w must be watts >= 0 for every device (60) or per device "
                              f"({{\"gpu0\": 60, \"cpu\": 12}}; BENCHWATCH_IDLE_POWER_W=\"gpu0=60,cpu=12\"), "
                              f"got {value!r}")
        out[str(key)] = w
    return out


def module_devices(module: Any) -> frozenset[str] | None:
    """The devices a PyTorch module computes on, from its parameters and buffers: "cpu", plus
    "gpu" when any lives on an accelerator (the host side of a CUDA model runs on the CPU too;
    a CUDA index need not be NVML's, so every GPU: declare devices=["gpu1"] to pin one).
    None (every device) for a module without tensors."""
    kinds = {t.device.type for t in (*module.parameters(), *module.buffers())}
    if not kinds:
        return None
    return frozenset({"cpu", "gpu"}) if kinds - {"cpu"} else frozenset({"cpu"})


def session_devices(session: Any) -> frozenset[str] | None:
    """The devices an ONNX Runtime session computes on, from its execution providers."""
    providers = list(session.get_providers())
    if not providers:
        return None
    cpu_only = all(p == "CPUExecutionProvider" for p in providers)
    return frozenset({"cpu"}) if cpu_only else frozenset({"cpu", "gpu"})


def _uses(state: ProbeState, reading: DeviceReading, cache: dict[int, frozenset[str] | None]) -> bool:
    if state.devices is None:
        return True
    key = id(state)
    if key not in cache:
        try:
            cache[key] = state.devices()
        except Exception:  # e.g. a module being torn down: charge every device, as undeclared
            cache[key] = None
    devices = cache[key]
    return devices is None or reading.hw_id in devices or reading.hw_type in devices


class IdlePower:
    """One device's idle power: configured, or learned from intervals with nothing in flight
    (see the module docstring)."""

    def __init__(self, configured_w: float | None = None) -> None:
        self.configured_w = configured_w
        self._blocks: deque[float] = deque(maxlen=IDLE_WINDOW)  # watts per block
        self._block = [0.0, 0.0]  # joules, seconds of the block being filled
        self._since_busy_s: float | None = None  # None: no call seen yet (all idle is settled)
        self._floor: float | None = None

    def observe(self, joules: float, dt_s: float, idle: bool) -> None:
        watts = joules / dt_s
        self._floor = watts if self._floor is None else min(self._floor, watts)
        if not idle:
            self._since_busy_s = 0.0
            return
        if self._since_busy_s is not None:
            self._since_busy_s += dt_s
            if self._since_busy_s <= IDLE_SETTLE_S:
                return
        self._block[0] += joules
        self._block[1] += dt_s
        if self._block[1] >= IDLE_BLOCK_S:
            self._blocks.append(self._block[0] / self._block[1])
            self._block = [0.0, 0.0]

    @property
    def source(self) -> str:
        """"configured", "learned", "floor" (the lowest interval so far) or "none" yet."""
        if self.configured_w is not None:
            return "configured"
        if len(self._blocks) >= IDLE_MIN_BLOCKS:
            return "learned"
        return "floor" if self._floor is not None else "none"

    def watts(self) -> float | None:
        if self.configured_w is not None:
            return self.configured_w
        if len(self._blocks) >= IDLE_MIN_BLOCKS:
            return statistics.median(self._blocks)
        return self._floor


@dataclass(frozen=True)
class EnergySnapshot:
    """Cumulative joules since the sampler started (or was reset): per device (`hw_id`), per
    (model, version, hw_id, hw_type) attributed, and per device idle; the latest readings."""

    device: dict[str, float] = field(default_factory=dict)
    attributed: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    idle: dict[str, float] = field(default_factory=dict)
    latest: dict[str, DeviceReading] = field(default_factory=dict)


class EnergySampler:
    """Reads `sources` every `interval_s` on a daemon thread and attributes the energy above
    idle to the models of `registry`. `idle_power_w` ({hw_id or hw_type or "*": watts}, see
    `parse_idle_power`) fixes a device's idle power instead of learning it. `step()` does one
    reading (tests and benchmarks call it directly with an injected source and clock)."""

    def __init__(self, registry: Registry, sources: Sequence[EnergySource], interval_s: float = 0.25,
                 clock: Callable[[], int] = perf_counter_ns,
                 idle_power_w: Mapping[str, float] | None = None) -> None:
        self.registry = registry
        self.sources = list(sources)
        self.interval_s = interval_s
        self._clock = clock
        self._idle_config = dict(idle_power_w or {})
        self._lock = threading.Lock()  # guards the exported state below
        self._step_lock = threading.Lock()  # one step at a time, in clock order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_t: int | None = None
        self._last_energy: dict[str, float] = {}
        self._last_busy: dict[tuple[str, str], int] = {}
        self.idle_power: dict[str, IdlePower] = {}  # per hw_id
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

    def _configured_idle(self, r: DeviceReading) -> float | None:
        for key in (r.hw_id, r.hw_type, "*"):
            if key in self._idle_config:
                return self._idle_config[key]
        return None

    def step(self) -> None:
        """Read every source once and attribute the energy since the previous reading."""
        with self._step_lock:
            try:
                now = self._clock()
                readings: list[DeviceReading] = []
                for src in self.sources:
                    readings.extend(src.read())
                # a model's slices (probes/slices.py) are states of their own: its busy time
                # is theirs summed; they share the model's devices
                states: dict[tuple[str, str], ProbeState] = {}
                busy: dict[tuple[str, str], int] = {}
                for st in self.registry.states():
                    k = (st.model, st.version)
                    states.setdefault(k, st)
                    busy[k] = busy.get(k, 0) + st.busy_ns(now)
                devices_cache: dict[int, frozenset[str] | None] = {}
                users = {r.hw_id: [k for k, st in states.items() if _uses(st, r, devices_cache)]
                         for r in readings}
            except Exception as e:
                self.registry.faults.record("sampler", e, "energy sampler:")
                return
            with self._lock:
                self._account(now, readings, busy, users)

    def _account(self, now: int, readings: list[DeviceReading], busy: dict[tuple[str, str], int],
                 users: dict[str, list[tuple[str, str]]]) -> None:
        first = self._last_t is None
        dt_s = 0.0 if self._last_t is None else (now - self._last_t) / 1e9
        deltas = {} if first else {k: max(0, v - self._last_busy.get(k, 0)) for k, v in busy.items()}
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
            self.idle_energy.setdefault(r.hw_id, 0.0)
            if dt_s <= 0.0:
                self.idle_energy[r.hw_id] += joules
                continue
            busy_here = {k: deltas[k] for k in users.get(r.hw_id, ()) if deltas.get(k, 0) > 0}
            idle = self.idle_power.get(r.hw_id)
            if idle is None:
                idle = self.idle_power[r.hw_id] = IdlePower(self._configured_idle(r))
            idle.observe(joules, dt_s, idle=not busy_here)
            idle_w = idle.watts()
            above = max(0.0, joules - idle_w * dt_s) if busy_here and idle_w is not None else 0.0
            self.idle_energy[r.hw_id] += joules - above
            if above > 0.0:  # an interval the counter did not step in attributes nothing
                total_busy = sum(busy_here.values())
                for (model, version), b in busy_here.items():
                    key = (model, version, r.hw_id, r.hw_type)
                    self.attributed[key] = self.attributed.get(key, 0.0) + above * b / total_busy
        self._last_t = now
        self._last_busy = busy

    def idle_watts(self) -> dict[str, tuple[float | None, str]]:
        """Per hw_id: the idle power in use and where it comes from (`IdlePower.source`)."""
        with self._lock:
            return {hw: (p.watts(), p.source) for hw, p in self.idle_power.items()}

    def snapshot(self) -> EnergySnapshot:
        with self._lock:
            return EnergySnapshot(dict(self.device_energy), dict(self.attributed), dict(self.idle_energy),
                                  dict(self.latest))

    def reset(self) -> None:
        """Zero the exported joules (the learned idle power is kept)."""
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
