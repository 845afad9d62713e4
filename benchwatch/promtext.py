"""Read Prometheus text endpoints (probe, drift service) without a Prometheus server.

The one scraper of the exposition format: the demo's terminal view (which must work with
`--no-prometheus`), a replay's energy windows and the tests all read series through it.
Latency quantiles are computed from the difference of two scrapes of the cumulative histogram
(what `histogram_quantile(rate(...))` does), so they describe the last few seconds, not the
whole run.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.request
from collections.abc import Mapping, Sequence
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

    def values(self, name: str, **match: str) -> list[float]:
        """The values of the series matching `match` (empty when there is none)."""
        return list(self.get(name, **match).values())

    def total(self, name: str, **match: str) -> float:
        return sum(self.get(name, **match).values())


def parse(text: str, at: float = 0.0) -> Scrape:
    """Parse exposition text; raises ValueError when it is not the Prometheus text format."""
    series: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            series.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = float(s.value)
    return Scrape(at, series)


def fetch(url: str, timeout_s: float = 2.0) -> str:
    """The exposition text at `url` (a /metrics endpoint); raises OSError when unreachable."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (operator's URL)
        return str(resp.read().decode("utf-8", "replace"))


def read(url: str, timeout_s: float = 2.0) -> Scrape:
    """Scrape `url` now; raises OSError (unreachable) or ValueError (not the text format)."""
    return parse(fetch(url, timeout_s), time.time())


def read_summed(urls: Sequence[str], timeout_s: float = 2.0) -> Scrape:
    """Scrape every worker endpoint of one server (`uvicorn --workers N`: each worker has its
    own /metrics) and add the same series together, as `sum` in PromQL would; raises like
    `read` when any of them cannot be read (a missing worker would skew the sums)."""
    series: dict[str, dict[Labels, float]] = {}
    for url in urls:
        for name, by_labels in read(url, timeout_s).series.items():
            into = series.setdefault(name, {})
            for labels, value in by_labels.items():
                into[labels] = into.get(labels, 0.0) + value
    return Scrape(time.time(), series)


def scrape(url: str, at: float, timeout_s: float = 2.0) -> Scrape | None:
    """Scrape `url`, stamped `at`; None when it cannot be read (the demo shows 'n/a')."""
    try:
        return parse(fetch(url, timeout_s), at)
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
