"""Cost: a configured price of the serving instance (`$ per hour`) and of energy (`$ per kWh`)
turned into dollars per 1 000 inferences (and per 1 000 000 tokens for generative models).

    $/1k inferences = 1000 * ($/h / 3600 / throughput)  +  1000 * J/inference / 3.6e6 * $/kWh

The instance term is what the machine costs while it serves at the measured throughput (the
bench's offline throughput: the cheapest the model can be served on it); the energy term counts
the energy measured per inference (the bench's `device` point, idle included: the bill pays for
idle too). Without a measured energy the energy term is left out and the result says so.

DAWNBench-style cost to reach the accuracy target: what one pass over the suite costs at the
measured throughput and energy, reported only when the run's accuracy meets the target (the
suite's `accuracy_target` or `--accuracy-target`), else `reached = False` and no dollar figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from drift.figures import Figure

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Prices:
    usd_per_hour: float | None = None  # the serving instance
    usd_per_kwh: float | None = None

    def __post_init__(self) -> None:
        for name, v in (("usd_per_hour", self.usd_per_hour), ("usd_per_kwh", self.usd_per_kwh)):
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"price {name} must be a finite number >= 0, got {v!r}")

    @property
    def configured(self) -> bool:
        return self.usd_per_hour is not None or self.usd_per_kwh is not None


def per_unit_usd(units_per_s: float, joules_per_unit: float | None, prices: Prices,
                 per: float) -> tuple[float | None, float | None]:
    """(instance $, energy $) per `per` units (inferences or tokens), each None when its price
    or measurement is missing."""
    instance = (prices.usd_per_hour / 3600 / units_per_s * per
                if prices.usd_per_hour is not None and units_per_s > 0 else None)
    energy = (joules_per_unit / J_PER_KWH * prices.usd_per_kwh * per
              if prices.usd_per_kwh is not None and joules_per_unit is not None else None)
    return instance, energy


def cost_per_1m_tokens(tokens_per_s: float, joules_per_token: float | None,
                       prices: Prices) -> float | None:
    """Dollars per 1 000 000 generated tokens (generative models), or None without a price."""
    parts = [p for p in per_unit_usd(tokens_per_s, joules_per_token, prices, 1e6) if p is not None]
    return sum(parts) if parts else None


@dataclass(frozen=True)
class Cost:
    prices: Prices
    throughput_qps: float
    energy_per_inference_j: float | None
    instance_per_1k_usd: float | None
    energy_per_1k_usd: float | None
    accuracy: float | None
    accuracy_target: float | None
    suite_rows: int

    @property
    def per_1k_usd(self) -> float | None:
        parts = [p for p in (self.instance_per_1k_usd, self.energy_per_1k_usd) if p is not None]
        return sum(parts) if parts else None

    @property
    def reached(self) -> bool | None:
        """Whether the accuracy target was met (None: no target)."""
        if self.accuracy_target is None or self.accuracy is None:
            return None
        return self.accuracy >= self.accuracy_target

    @property
    def to_target_usd(self) -> float | None:
        """One pass over the suite at the measured throughput and energy, when the target was
        reached (DAWNBench's inference cost)."""
        per = self.per_1k_usd
        return per * self.suite_rows / 1000 if per is not None and self.reached else None

    @property
    def note(self) -> str:
        missing = []
        if self.prices.usd_per_kwh is not None and self.energy_per_inference_j is None:
            missing.append("no energy measured: the $/kWh term is left out")
        if self.prices.usd_per_hour is None:
            missing.append("no $/hour configured: the instance term is left out")
        if self.reached is False:
            missing.append(f"accuracy {self.accuracy:.4f} is below the target "
                           f"{self.accuracy_target}: no cost to target")
        return "; ".join(missing)

    def figures(self, point: str) -> list[Figure]:
        """`cost_per_1k_inferences_usd` (offline scenario, at the bench's client point) and
        `cost_to_target_usd` (scenario `accuracy`), when priced."""
        out = []
        if self.per_1k_usd is not None:
            out.append(Figure("cost_per_1k_inferences_usd", self.per_1k_usd, point, "offline",
                              self.throughput_qps))
        if self.to_target_usd is not None:
            out.append(Figure("cost_to_target_usd", self.to_target_usd, point, "accuracy"))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"usd_per_hour": self.prices.usd_per_hour, "usd_per_kwh": self.prices.usd_per_kwh,
                "throughput_qps": self.throughput_qps,
                "energy_per_inference_j": self.energy_per_inference_j,
                "instance_per_1k_usd": self.instance_per_1k_usd,
                "energy_per_1k_usd": self.energy_per_1k_usd, "per_1k_usd": self.per_1k_usd,
                "accuracy_target": self.accuracy_target, "reached": self.reached,
                "to_target_usd": self.to_target_usd, "suite_rows": self.suite_rows,
                "note": self.note}


def cost(prices: Prices, throughput_qps: float, energy_per_inference_j: float | None,
         accuracy: float | None, accuracy_target: float | None, suite_rows: int) -> Cost:
    instance, energy = per_unit_usd(throughput_qps, energy_per_inference_j, prices, 1000)
    return Cost(prices, throughput_qps, energy_per_inference_j, instance, energy, accuracy,
                accuracy_target, suite_rows)
