"""The baselines the service serves: loaded from a directory, bad ones refused with a reason.

Loading goes through `drift.baseline.load_dir` (which validates each file); on top of that the
service refuses two baselines for the same (model, version). `BaselineSet.changed()` notices
files added, removed or rewritten, so the service can pick them up without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from drift.compare import compare
from drift.result import DriftResult

log = logging.getLogger(__name__)

CONFIDENCE_FEATURE = "confidence"
BASELINE_SUFFIXES = (".json", ".npz")


@dataclass(frozen=True)
class ServedBaseline:
    """What the service needs of a `drift.Baseline`."""

    model: str
    version: str
    feature_names: tuple[str, ...]
    references: Mapping[str, Any]  # feature -> reference (prepared or raw values)
    figures: Mapping[str, float]
    calibration: Any = None
    tests: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    @property
    def confidence_feature(self) -> str | None:
        return CONFIDENCE_FEATURE if CONFIDENCE_FEATURE in self.references else None

    def compare(self, feature: str, values: Sequence[Any], *, alpha: float,
                test: str | None = None) -> DriftResult:
        """The feature's drift test (its configured one unless `test` is given, e.g. the
        missing-rate test "missing")."""
        return compare(self.references[feature], values,
                       test=test or self.tests.get(feature), alpha=alpha)

    @classmethod
    def of(cls, baseline: Any, source: str = "") -> ServedBaseline:
        """Adapt a `drift.Baseline` (references per feature, figures, optional calibration)."""
        refs = _references(baseline)
        figures = {str(k): float(v) for k, v in (getattr(baseline, "figures", None) or {}).items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        tests = getattr(baseline, "tests", None) or {}
        return cls(str(baseline.model), str(baseline.version), tuple(sorted(refs)),
                   MappingProxyType(dict(refs)), MappingProxyType(figures),
                   getattr(baseline, "calibration", None),
                   MappingProxyType({str(k): str(v) for k, v in dict(tests).items()}), source)


def _references(baseline: Any) -> dict[str, Any]:
    for attr in ("references", "features"):
        got = getattr(baseline, attr, None)
        if isinstance(got, Mapping):
            return {str(k): getattr(v, "reference", v) for k, v in got.items()}
    raise TypeError(f"baseline {baseline!r} exposes no per-feature references")


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        entries = sorted(p for p in directory.iterdir() if p.suffix in BASELINE_SUFFIXES)
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in entries)
    except OSError:
        return ()


@dataclass(frozen=True)
class BaselineSet:
    directory: Path
    loaded: Mapping[tuple[str, str], ServedBaseline]
    refused: Mapping[str, str]  # file -> why
    signature: tuple[tuple[str, int, int], ...] = ()

    def changed(self) -> bool:
        return _signature(self.directory) != self.signature

    def figures(self) -> dict[tuple[str, str, str], float]:
        return {(m, v, name): x for (m, v), b in self.loaded.items()
                for name, x in b.figures.items()}


def load_baselines(directory: str | Path) -> BaselineSet:
    """Load every baseline in `directory`; refused ones are logged with the reason."""
    from drift.baseline import load_dir  # Baseline.load's checks, bad files reported apart

    directory = Path(directory)
    signature = _signature(directory)
    found, errors = load_dir(directory)
    refused = {str(p): str(e) for p, e in errors.items()}
    loaded: dict[tuple[str, str], ServedBaseline] = {}
    for key, baseline in sorted(found.items(), key=lambda kv: kv[0]):
        source = str(getattr(baseline, "source", "") or "")
        try:
            served = ServedBaseline.of(baseline, source)
        except (TypeError, ValueError, AttributeError) as exc:
            refused[f"{key[0]}/{key[1]}"] = f"unusable baseline: {exc}"
            continue
        loaded[(served.model, served.version)] = served
    for path, why in sorted(refused.items()):
        log.error("baseline %s refused: %s (the other baselines are served)", path, why)
    if not loaded:
        log.warning("no usable baseline in %s: every sample will be rejected as unknown_model",
                    directory)
    return BaselineSet(directory, MappingProxyType(loaded), MappingProxyType(refused), signature)
