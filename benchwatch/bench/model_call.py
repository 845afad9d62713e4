"""The probe's own measurements during a benchmark: figures at the `model_call` point.

Live monitoring reads the `@probe` latency histogram around the model call in the serving
process; a baseline compared with it must come from that same histogram (same buckets, same
point), not from the bench client's end-to-end time. Two meters read it, cumulatively, before
and after each scenario; the bucket delta gives the scenario's model-call quantiles (what
`histogram_quantile` over the live series computes):

- `ScrapedProbe(metrics_urls, model, version)`: an HTTP endpoint served with probes; scrapes its
  `/metrics` (`benchwatch_inference_duration_seconds`, and the probe's attributed
  `benchwatch_inference_energy_joules_total` when it exports one) through `benchwatch.promtext`;
- `ProbedBackend(backend)`: an in-process backend whose `predict` is wrapped in a `@probe`
  registered in a private `probes.state.Registry` (no global state, nothing exported), read
  from its state; with an energy counter, its joules above idle come from the probe's own
  sampler on that registry (`benchwatch.bench.energy.attribute_energy`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from benchwatch import promtext
from benchwatch.bench.backends import Backend
from benchwatch.bench.energy import ModelCallEnergy
from probes import metric_names as m
from probes.buckets import LATENCY_GRID_S
from probes.decorator import probe
from probes.state import Registry

log = logging.getLogger(__name__)

QUANTILES = {"latency_p50_s": 0.5, "latency_p90_s": 0.9, "latency_p99_s": 0.99}


@dataclass(frozen=True)
class ProbeReading:
    """Cumulative counters of the probe at one instant."""

    buckets: dict[float, float]  # latency histogram: upper bound (s, inf last) -> calls, cumulative
    energy_j: float | None = None  # the probe's attributed energy counter, when exported


@dataclass(frozen=True)
class ProbeWindow:
    """What the probe counted during one scenario (the difference of two readings)."""

    buckets: dict[float, float]
    energy_j: float | None = None

    @property
    def calls(self) -> float:
        return max(self.buckets.values(), default=0.0)

    def quantiles(self) -> dict[str, float]:
        """latency_p50_s/p90_s/p99_s from the buckets (none when no call was counted)."""
        out = {}
        for name, q in QUANTILES.items():
            v = promtext.quantile(q, self.buckets)
            if v is not None and math.isfinite(v):
                out[name] = v
        return out

    def energy_per_call_j(self) -> float | None:
        if self.energy_j is None or self.calls <= 0 or self.energy_j <= 0:
            return None  # no counter, or it did not move (NVML updates about every 100 ms)
        return self.energy_j / self.calls

    def summary(self) -> dict[str, float | None]:
        return {"calls": self.calls, **self.quantiles(), "energy_per_call_j": self.energy_per_call_j()}

    def __add__(self, other: ProbeWindow) -> ProbeWindow:
        """Two windows pooled (repeats): histograms add bucket by bucket."""
        bounds = set(self.buckets) | set(other.buckets)
        energy = (None if self.energy_j is None and other.energy_j is None
                  else (self.energy_j or 0.0) + (other.energy_j or 0.0))
        return ProbeWindow({b: self.buckets.get(b, 0.0) + other.buckets.get(b, 0.0)
                            for b in sorted(bounds)}, energy)


def window(before: ProbeReading | None, after: ProbeReading | None) -> ProbeWindow | None:
    if before is None or after is None:
        return None
    energy = (None if before.energy_j is None or after.energy_j is None
              else max(after.energy_j - before.energy_j, 0.0))
    return ProbeWindow(promtext.delta(after.buckets, before.buckets), energy)


class ModelCallMeter(Protocol):
    def read(self) -> ProbeReading | None: ...


class ScrapedProbe:
    """The probe histogram of a served model, scraped from its Prometheus endpoint."""

    def __init__(self, metrics_urls: Sequence[str], model: str, version: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.urls = list(metrics_urls)  # one per worker of the server; their histograms add up
        self.url = " + ".join(self.urls)
        self._match = {"model": model, **({"model_version": version} if version else {})}
        self._timeout = timeout_s

    def read(self) -> ProbeReading | None:
        """None when an endpoint cannot be read or none has series of this model (logged)."""
        try:
            s = promtext.read_summed(self.urls, self._timeout)
        except (OSError, ValueError) as e:
            log.warning("probe metrics %s unreadable: %s", self.url, e)
            return None
        buckets = promtext.buckets(s, m.LATENCY, **self._match)
        if not buckets:
            log.warning("probe metrics %s have no %s series for %s", self.url, m.LATENCY,
                        self._match)
            return None
        energy = s.get(m.ENERGY, **self._match)
        return ProbeReading(buckets, sum(energy.values()) if energy else None)


class ProbedBackend:
    """`backend` with its `predict` wrapped in a `@probe` of a private registry: the bench
    records the in-process model-call histogram live monitoring would export."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.info = backend.info
        self.registry = Registry()
        self._state = self.registry.state(backend.info.model, backend.info.version or "unversioned")
        # a backend that knows its devices (torch, onnxruntime) declares them, as the live
        # probe on its module or session finds them: a CPU model is never charged a GPU
        self.predict = probe(model=self._state.model, version=self._state.version, outputs=None,
                             registry=self.registry,
                             devices=getattr(backend, "devices", None))(backend.predict)
        self.energy: ModelCallEnergy | None = None  # set by attribute_energy with a counter

    def read(self) -> ProbeReading:
        t = self._state.snapshot().totals
        counts = np.cumsum(np.add(t.ok, t.err))  # every outcome, as the live histogram sums them
        bounds = (*LATENCY_GRID_S, math.inf)  # the cells the probe counts in (finer than classic)
        return ProbeReading({b: float(c) for b, c in zip(bounds, counts, strict=True)},
                            self.energy.joules() if self.energy else None)

    def close(self) -> None:
        if self.energy:
            self.energy.close()
        self.backend.close()


@contextlib.contextmanager
def read_every(urls: str | Sequence[str], every_s: float) -> Iterator[None]:
    """Fetch each of `urls` every `every_s` s while the block runs, as Prometheus scrapes a
    served model: each read costs the server some ms of Python holding its GIL, and a model
    call ending meanwhile waits, so a baseline measured without the reads would have a shorter
    tail than production. Fetched, not parsed: the benchmark's client shares this process and
    its GIL. `every_s` 0: no reads."""
    targets = [urls] if isinstance(urls, str) else list(urls)
    if every_s <= 0 or not targets:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            for url in targets:
                with contextlib.suppress(OSError):
                    promtext.fetch(url)

    reader = threading.Thread(target=loop, name="bench-probe-scrape", daemon=True)
    reader.start()
    try:
        yield
    finally:
        stop.set()
        reader.join()
