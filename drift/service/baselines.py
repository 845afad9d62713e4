"""The baselines the service serves: loaded from a directory, bad ones refused with a reason.

Loading goes through `drift.baseline.load_dir` (which validates each file); on top of that the
service refuses two baselines for the same (model, version). `BaselineSet.changed()` notices
files added, removed or rewritten, so the service can pick them up without a restart.

Nothing in the directory can stop the service: a bad file (corrupt, malformed, oversized, a
FIFO or device named *.json) is refused with its reason, logged once, counted in
`benchwatch_baseline_refused`, and the other baselines are served; `load_baselines` never
raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from drift.compare import compare
from drift.figures import Figure
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
    figures: tuple[Figure, ...]  # each tagged with its measurement point and scenario
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
        figures = tuple(f for f in (getattr(baseline, "figures", None) or ())
                        if isinstance(f, Figure))
        tests = getattr(baseline, "tests", None) or {}
        return cls(str(baseline.model), str(baseline.version), tuple(sorted(refs)),
                   MappingProxyType(dict(refs)), figures,
                   getattr(baseline, "calibration", None),
                   MappingProxyType({str(k): str(v) for k, v in dict(tests).items()}), source)


def _references(baseline: Any) -> dict[str, Any]:
    for attr in ("references", "features"):
        got = getattr(baseline, attr, None)
        if isinstance(got, Mapping):
            return {str(k): getattr(v, "reference", v) for k, v in got.items()}
    raise TypeError(f"baseline {baseline!r} exposes no per-feature references")


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What the directory holds (name, mtime, size per baseline file), read with stat only: a
    FIFO or device is never opened here. An entry that cannot be stat'ed (a dangling link)
    counts as (name, -1, -1), so it does not hide changes to the others."""
    try:
        entries = sorted(p for p in directory.iterdir() if p.suffix in BASELINE_SUFFIXES)
    except OSError:
        return ()
    out = []
    for p in entries:
        try:
            st = p.stat()
            out.append((p.name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p.name, -1, -1))
    return tuple(out)


@dataclass(frozen=True)
class BaselineSet:
    directory: Path
    loaded: Mapping[tuple[str, str], ServedBaseline]
    refused: Mapping[str, str]  # file -> why
    signature: tuple[tuple[str, int, int], ...] = ()

    def changed(self) -> bool:
        return _signature(self.directory) != self.signature

    def figures(self) -> dict[tuple[str, str, str, str, str], Figure]:
        """(model, version, figure, point, scenario) -> the baseline's figure."""
        return {(m, v, f.name, f.point, f.scenario): f for (m, v), b in self.loaded.items()
                for f in b.figures}


def load_baselines(directory: str | Path, previous: BaselineSet | None = None) -> BaselineSet:
    """Load every baseline in `directory`; never raises. Each refused file is logged with its
    reason once: not again on a reload (`previous`) that refuses it for the same reason."""
    from drift.baseline import load_dir  # Baseline.load's checks, bad files reported apart

    directory = Path(directory)
    signature = _signature(directory)
    try:
        found, errors = load_dir(directory)
    except Exception as exc:  # load_dir refuses files one by one; this is a last resort
        found, errors = {}, {str(directory): f"cannot load the baselines ({exc!r})"}
    refused = {str(p): str(e) for p, e in errors.items()}
    loaded: dict[tuple[str, str], ServedBaseline] = {}
    for key, baseline in sorted(found.items(), key=lambda kv: kv[0]):
        source = str(getattr(baseline, "source", "") or "")
        try:
            served = ServedBaseline.of(baseline, source)
        except Exception as exc:
            refused[f"{key[0]}/{key[1]}"] = f"unusable baseline: {exc}"
            continue
        loaded[(served.model, served.version)] = served
    seen = {} if previous is None else previous.refused
    for path, why in sorted(refused.items()):
        if seen.get(path) != why:
            log.error("baseline %s refused: %s (the other baselines are served)", path, why)
    if not loaded:
        log.warning("no usable baseline in %s: every sample will be rejected as unknown_model",
                    directory)
    return BaselineSet(directory, MappingProxyType(loaded), MappingProxyType(refused), signature)
