"""Energy meters for the bench runner, read through the probes' own device sources (one NVML
implementation in the codebase): a callable returning a cumulative joule counter."""

from __future__ import annotations

import logging
from collections.abc import Callable

from benchwatch.errors import UsageError
from probes.errors import BenchwatchError

log = logging.getLogger(__name__)


class EnergyUnavailable(BenchwatchError, RuntimeError):
    """The energy counter that was asked for is not on this machine."""


def energy_meter(kind: str = "auto") -> tuple[Callable[[], float] | None, str]:
    """(meter, description). kind: "auto" (GPU when NVML sees one, else none), "gpu" (required),
    "cpu" (RAPL package energy, required), "off"."""
    if kind == "off":
        return None, "off"
    from probes.energy import NvmlSource, RaplSource

    try:
        if kind in ("auto", "gpu"):
            try:
                src: NvmlSource | RaplSource = NvmlSource()
            except RuntimeError as e:
                if kind == "gpu":
                    raise EnergyUnavailable(f"--energy gpu: {e}") from e
                return None, f"not measured ({e})"
            hw = "gpu"
        elif kind == "cpu":
            src = RaplSource()
            hw = "cpu"
        else:
            raise UsageError(f"--energy must be auto, gpu, cpu or off, got {kind!r}")
    except RuntimeError as e:
        raise EnergyUnavailable(f"--energy {kind}: {e}") from e
    readings = [r for r in src.read() if r.hw_type == hw and r.energy_j is not None]
    if not readings:
        src.close()
        msg = f"no {hw} energy counter (NVML total energy needs Volta or newer)"
        if kind == "auto":
            return None, f"not measured ({msg})"
        raise EnergyUnavailable(msg)
    names = ", ".join(sorted({r.name for r in readings}))

    def read() -> float:
        return sum(r.energy_j or 0.0 for r in src.read() if r.hw_type == hw)

    return read, f"{hw}: {names}"
