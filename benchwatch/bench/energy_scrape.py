"""Energy per inference of a served model, from its probes' Prometheus endpoint.

The probe attributes each sampler interval's energy above the device's idle power to the
requests that ran in it (docs/probes.md, "GPU and CPU energy") and exports `benchwatch_inference_energy_joules_total` beside the request count
(`benchwatch_inference_duration_seconds_count`). A replay reads both at window boundaries
(every `window_s`, between queries, never inside a timed call): each window gives one sample of
joules per inference, and the judge bootstraps their mean. Give primary and canary their own
GPUs: NVML counts a whole device, so two servers on one GPU share its energy.
"""

from __future__ import annotations

import logging

import numpy as np

from benchwatch import promtext
from probes import metric_names as m

log = logging.getLogger(__name__)


def scrape_totals(url: str, model: str | None = None, timeout_s: float = 2.0) -> tuple[float, float]:
    """(joules, inferences) summed over the model's series at `url` (a /metrics endpoint)."""
    s = promtext.read(url, timeout_s)
    match = {} if model is None else {"model": model}
    return s.total(m.ENERGY, **match), s.total(m.REQUESTS, **match)


class EnergyWindows:
    """Bounded per-window joules-per-inference samples from one metrics endpoint."""

    def __init__(self, url: str, model: str | None = None, max_windows: int = 10_000) -> None:
        self.url, self.model, self.max_windows = url, model, max_windows
        self._last: tuple[float, float] | None = None
        self._samples: list[float] = []
        self.errors = 0

    def mark(self) -> None:
        try:
            now = scrape_totals(self.url, self.model)
        except (OSError, ValueError) as e:
            self.errors += 1
            if self.errors == 1:
                log.warning("cannot read energy from %s: %s", self.url, e)
            return
        if self._last is not None:
            d_joules, d_count = now[0] - self._last[0], now[1] - self._last[1]
            if d_count > 0 and d_joules > 0 and len(self._samples) < self.max_windows:
                self._samples.append(d_joules / d_count)
        self._last = now

    @property
    def samples(self) -> np.ndarray:
        return np.asarray(self._samples, dtype=float)

    def reset(self) -> None:
        self._last, self._samples, self.errors = None, [], 0
