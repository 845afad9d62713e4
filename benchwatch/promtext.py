"""Read the demo's live figures straight from Prometheus text endpoints (probe, drift service).

The demo's terminal view must work with `--no-prometheus` too, so it scrapes the exposition
itself instead of asking a Prometheus server. Latency quantiles are computed from the
difference of two scrapes of the cumulative histogram (what `histogram_quantile(rate(...))`
does), so they describe the last few seconds, not the whole run.
"""

from __future__ import annotations

import logging
import math
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    """One scrape: sample name -> {sorted label pairs -> value}."""

    at: float
    series: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)

    def get(self, name: str, **match: str) -> dict[Labels, float]:
        out: dict[Labels, float] = {}
        for labels, value in self.series.get(name, {}).items():
            d = dict(labels)
            if all(d.get(k) == v for k, v in match.items()):
                out[labels] = value
        return out

    def total(self, name: str, **match: str) -> float:
        return sum(self.get(name, **match).values())


def parse(text: str, at: float) -> Scrape:
    series: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            series.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = float(s.value)
    return Scrape(at, series)


def scrape(url: str, at: float, timeout_s: float = 2.0) -> Scrape | None:
    """Scrape `url` (a /metrics endpoint); None when it cannot be read (shown as 'n/a')."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (loopback)
            return parse(resp.read().decode("utf-8", "replace"), at)
    except (OSError, ValueError) as exc:
        log.debug("scrape of %s failed: %s", url, exc)
        return None


def buckets(s: Scrape, name: str, **match: str) -> dict[float, float]:
    """Cumulative bucket counts of histogram `name` summed over series matching `match`."""
    out: dict[float, float] = {}
    for labels, value in s.get(f"{name}_bucket", **match).items():
        le = dict(labels).get("le", "+Inf")
        bound = math.inf if le == "+Inf" else float(le)
        out[bound] = out.get(bound, 0.0) + value
    return out


def quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile on cumulative buckets (linear within a bucket)."""
    if not cumulative:
        return None
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for b in bounds:
        c = cumulative[b]
        if c >= rank:
            if math.isinf(b):
                return prev_bound  # as Prometheus does: the highest finite bound
            if c == prev_count:
                return b
            return prev_bound + (b - prev_bound) * (rank - prev_count) / (c - prev_count)
        prev_bound, prev_count = b, c
    return prev_bound


def delta(new: Mapping[float, float], old: Mapping[float, float] | None) -> dict[float, float]:
    """Bucket increase between two scrapes (a counter reset counts from zero)."""
    if not old:
        return dict(new)
    out = {b: v - old.get(b, 0.0) for b, v in new.items()}
    if any(v < 0 for v in out.values()):
        return dict(new)
    return out
