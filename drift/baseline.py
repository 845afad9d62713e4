"""Baselines: what a model saw and said when it was benchmarked, in a safe, versioned format.

On disk a baseline is two files: `NAME.json`, a manifest (schema version, model, version,
figures, provenance, per-feature kind and counts, categories, CBPE calibration) and `NAME.npz`
with the arrays (sorted numeric reference, quantile-bin edges, category counts, reference
vectors). The manifest carries the SHA-256 of the .npz, so a truncated or swapped array file is
refused. Arrays are read with `allow_pickle=False`: nothing in a baseline can run code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import math
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drift.calibration import Calibration
from drift.compare import TESTS
from drift.figures import POINTS, Figure, as_figures, legacy_figures, select
from drift.reference import (
    DEFAULT_BINS,
    KINDS,
    CategoricalReference,
    NumericReference,
    Reference,
    VectorReference,
    as_categorical,
    as_numeric,
    as_vectors,
    infer_kind,
)
from drift.result import DriftError
from probes._version import __version__
from probes.samples import MAX_NAME_LEN

__all__ = [
    "FIGURE_KEYS",
    "POINTS",
    "SCHEMA_VERSION",
    "Baseline",
    "BaselineError",
    "Figure",
    "Provenance",
    "load_dir",
]

log = logging.getLogger(__name__)

# 2: figures are a list of {name, value, point, scenario, rate_qps} (drift.figures); a
# schema-1 file ({name: value}) still loads, its figures at point "unknown" (accuracy: "outputs")
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
FORMAT = "benchwatch-baseline"
FIGURE_KEYS = (
    "latency_p50_s",
    "latency_p90_s",
    "latency_p99_s",
    "throughput_qps",
    "accuracy",
    "energy_per_inference_j",
    # the scorecard (benchwatch bench): robustness at `outputs`, cost at the client point
    "corruption_accuracy",
    "corruption_error",
    "mce",
    "mean_corruption_error",
    "flip_rate",
    "cost_per_1k_inferences_usd",
    "cost_to_target_usd",
)
DEFAULT_MAX_REFERENCE = 10_000  # numeric/categorical reference rows kept (seeded subsample)
DEFAULT_MAX_VECTORS = 2_000
# model and version name files and runs: a strict alphabet. Feature names are only label
# values (`feature="mean radius"`), so a user's column names work as they are: any printable
# text, spaces included, none at either end (invisible in a CSV header, so never matched).
_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}$")


class BaselineError(DriftError):
    """A baseline that cannot be built, written or read; the message names the file and the fix."""


@dataclass(frozen=True)
class Provenance:
    data_hash: str  # sha256 over the reference data as given to build()
    created_at: str  # ISO 8601, UTC
    benchwatch_version: str
    source: str = ""
    schema_version: int = SCHEMA_VERSION


def _hash_feature(h: Any, name: str, kind: str, values: Any) -> None:
    h.update(f"{len(name)}:{name}:{kind}:".encode())
    if kind == "numeric":
        a = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64) \
            if not isinstance(values, np.ndarray) else values.astype(np.float64)
        h.update(np.ascontiguousarray(a).tobytes())
    elif kind == "categorical":
        seq = values.tolist() if isinstance(values, np.ndarray) else list(values)
        h.update("\x00".join("\x01" if v is None else str(v) for v in seq).encode())
    else:
        a, missing = as_vectors(values)
        h.update(np.ascontiguousarray(a).tobytes() + str(missing).encode())


def _check_name(what: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise BaselineError(
            f"{what} must be 1-200 characters of letters, digits and _.:/-, got {value!r}")
    return value


def _check_feature_name(value: Any) -> str:
    """A feature name: 1-128 printable characters (the probe's and the collector's limit;
    spaces and punctuation included, as in scikit-learn's "mean radius"), no space at either
    end."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LEN \
            or not value.isprintable() or value != value.strip():
        raise BaselineError(
            f"feature name {value!r}: use 1-{MAX_NAME_LEN} printable characters (spaces "
            "allowed) with no space at either end; rename the column")
    return value


def _check_tests(tests: Mapping[str, Any], refs: Mapping[str, Reference]) -> dict[str, str]:
    out = {}
    for feature, test in tests.items():
        ref = refs.get(feature)
        if ref is None:
            raise BaselineError(f"a test is set for feature {feature!r}, which the baseline lacks")
        if (ref.kind, test) not in TESTS:
            allowed = sorted(t for k, t in TESTS if k == ref.kind)
            raise BaselineError(
                f"test {test!r} does not apply to {ref.kind} feature {feature!r}; use {allowed}")
        out[str(feature)] = str(test)
    return out


def _check_figures(figures: Iterable[Figure] | Mapping[str, Any] | None) -> tuple[Figure, ...]:
    try:
        return as_figures(figures)
    except DriftError as e:
        raise BaselineError(str(e)) from None


@dataclass(frozen=True, eq=False)
class Baseline:
    """Reference distributions and benchmark figures for one (model, version).

    `figures` are `drift.Figure`s, each tagged with its measurement point and scenario; read
    them with `figure(name, point, ...)`, which never hands back a figure from another point."""

    model: str
    version: str
    features: Mapping[str, Reference]
    figures: tuple[Figure, ...]
    provenance: Provenance
    calibration: Calibration | None = None
    path: Path | None = field(default=None, compare=False)
    tests: Mapping[str, str] = field(default_factory=dict)  # feature -> test, when not default

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.version)

    @property
    def source(self) -> str:
        return self.provenance.source

    def reference(self, feature: str) -> Reference:
        try:
            return self.features[feature]
        except KeyError:
            raise BaselineError(
                f"baseline {self.model}/{self.version} has no feature {feature!r}; it has "
                f"{sorted(self.features)}"
            ) from None

    def figure(self, name: str, point: str, scenario: str | None = None,
               rate_qps: float | None = None) -> Figure | None:
        """The figure `name` measured at `point` (see `drift.figures.POINTS`), or None when the
        baseline has none there: then say "no baseline figure at this measurement point"
        rather than compare with a figure from another point. `scenario` picks one scenario;
        else `rate_qps` picks the scenario whose rate is nearest (log scale); else
        single_stream, server, offline, accuracy, in that order. Raises BaselineError for a
        point that does not exist."""
        try:
            return select(self.figures, name, point, scenario, rate_qps)
        except DriftError as e:
            raise BaselineError(str(e)) from None

    @classmethod
    def build(
        cls,
        model: str,
        version: str,
        features: Mapping[str, Any],
        figures: Iterable[Figure] | Mapping[str, float] | None = None,
        *,
        source: str = "",
        kinds: Mapping[str, str] | None = None,
        calibration: Calibration | None = None,
        tests: Mapping[str, str] | None = None,
        n_bins: int = DEFAULT_BINS,
        max_reference: int = DEFAULT_MAX_REFERENCE,
        seed: int = 0,
    ) -> Baseline:
        """Build from raw reference values per feature (kinds inferred unless given).

        `figures`: `drift.Figure`s; a plain {name: value} mapping is accepted as figures whose
        point is unknown (accuracy: `outputs`), which nothing live is compared with."""
        _check_name("model", model)
        _check_name("version", version)
        if not features:
            raise BaselineError("a baseline needs at least one feature")
        rng = np.random.default_rng(seed)
        h = hashlib.sha256()
        refs: dict[str, Reference] = {}
        for name in sorted(features):
            _check_feature_name(name)
            values = features[name]
            try:
                kind = (kinds or {}).get(name) or infer_kind(values)
                if kind not in KINDS:
                    raise BaselineError(f"kind {kind!r} is unknown: use one of {KINDS}")
                _hash_feature(h, name, kind, values)
                refs[name] = _build_reference(kind, values, rng, n_bins, max_reference)
            except DriftError as e:
                raise BaselineError(f"feature {name!r}: {e}") from None
        prov = Provenance(
            data_hash="sha256:" + h.hexdigest(),
            created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            benchwatch_version=__version__,
            source=str(source),
        )
        return cls(model, version, refs, _check_figures(figures), prov, calibration,
                   tests=_check_tests(tests or {}, refs))

    # ---- writing -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write `path` (.json manifest) and its sibling .npz; returns the manifest path."""
        p = Path(path)
        if p.suffix != ".json":
            p = p.with_suffix(".json")
        arrays: dict[str, np.ndarray] = {}
        feats: list[dict[str, Any]] = []
        for i, (name, ref) in enumerate(sorted(self.features.items())):
            entry: dict[str, Any] = {"name": name, "kind": ref.kind, "n": ref.n,
                                     "n_missing": ref.n_missing}
            if isinstance(ref, NumericReference):
                arrays[f"f{i}_sorted"] = ref.sorted_values
                arrays[f"f{i}_edges"] = ref.edges
                entry["arrays"] = {"sorted": f"f{i}_sorted", "edges": f"f{i}_edges"}
                entry["mean"], entry["std"] = ref.mean, ref.std
            elif isinstance(ref, CategoricalReference):
                arrays[f"f{i}_counts"] = ref.counts
                entry["arrays"] = {"counts": f"f{i}_counts"}
                entry["categories"] = list(ref.categories)
            else:
                arrays[f"f{i}_values"] = ref.values
                entry["arrays"] = {"values": f"f{i}_values"}
                entry["dim"] = ref.dim
            feats.append(entry)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy stub: allow_pickle
        blob = buf.getvalue()
        npz = p.with_suffix(".npz")
        manifest = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "version": self.version,
            "figures": [f.to_dict() for f in self.figures],
            "provenance": {
                "data_hash": self.provenance.data_hash,
                "created_at": self.provenance.created_at,
                "benchwatch_version": self.provenance.benchwatch_version,
                "source": self.provenance.source,
            },
            "arrays_file": npz.name,
            "arrays_sha256": hashlib.sha256(blob).hexdigest(),
            "features": feats,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "tests": dict(self.tests),
        }
        p.parent.mkdir(parents=True, exist_ok=True)
        # arrays first, manifest last (atomically): a reader never sees a manifest without arrays
        _atomic_write(npz, blob)
        _atomic_write(p, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        return p

    # ---- reading -------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, model: str | None = None, version: str | None = None
    ) -> Baseline:
        """Read and validate; `model`/`version`, when given, must match the file's."""
        p = Path(path)
        try:
            return _load(p, model, version)
        except BaselineError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile,
                zlib.error, EOFError, RecursionError, OverflowError,
                MemoryError) as e:  # found by tests/reliability fuzzing
            raise BaselineError(f"{p}: cannot read baseline ({type(e).__name__}: {e}); "
                                "rebuild it with `benchwatch baseline build`") from None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _build_reference(kind: str, values: Any, rng: np.random.Generator, n_bins: int,
                     max_reference: int) -> Reference:
    if kind == "numeric":
        a, missing = as_numeric(values)
        if a.size < 2:
            raise BaselineError(f"needs at least 2 finite numeric values, got {a.size}")
        s = np.sort(a)
        edges = np.unique(np.quantile(s, np.arange(1, n_bins) / n_bins))  # from all the data
        if s.size > max_reference:
            keep = rng.choice(s.size, size=max_reference, replace=False)
            missing = round(missing * max_reference / s.size)
            s = np.sort(s[keep])
        return NumericReference.from_sorted(s, n_missing=missing, edges=edges)
    if kind == "categorical":
        cats, missing = as_categorical(values)
        if not cats:
            raise BaselineError("has no non-missing categorical values")
        u, c = np.unique(np.array(cats, dtype=str), return_counts=True)
        return CategoricalReference.from_counts(dict(zip(u.tolist(), c.tolist(), strict=True)),
                                                n_missing=missing)
    a, missing = as_vectors(values)
    if a.shape[0] < 2:
        raise BaselineError("needs at least 2 complete vectors")
    if a.shape[0] > DEFAULT_MAX_VECTORS:
        a = a[np.sort(rng.choice(a.shape[0], size=DEFAULT_MAX_VECTORS, replace=False))]
    return VectorReference(values=np.ascontiguousarray(a), n_missing=missing)


def _fail(p: Path, msg: str) -> BaselineError:
    return BaselineError(f"{p}: {msg}")


# What loading reads, at most: a real manifest is kilobytes, a real .npz megabytes (10 000
# reference values per feature, 2 000 vectors); a file can claim anything, so sizes are
# checked before anything is read or decompressed.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_ARRAYS_FILE_BYTES = 512 * 1024 * 1024
MAX_ARRAYS_BYTES = 1024 * 1024 * 1024  # decompressed, all the arrays the features name


def _read_regular(p: Path, limit: int, owner: Path, what: str, missing: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else BaselineError about `owner`
    (the manifest) naming the file as `what`. Anything but a regular file (a FIFO, a device
    such as /dev/zero, a directory, or a symlink to one) is refused without reading it, and the
    open cannot block (O_NONBLOCK), so no file makes loading hang."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise _fail(owner, missing) from None
    not_regular = (f"{what} is not a regular file (a FIFO, device, directory or a link to "
                   "one); skipped without reading it")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(owner, not_regular)
    if st.st_size > limit:
        raise _fail(owner, f"{what} is {st.st_size} bytes, over the {limit}-byte limit")
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped after the stat
            raise _fail(owner, not_regular)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _fail(owner, f"{what} grew past the {limit}-byte limit while being read")
    return data


class _Arrays(Mapping[str, np.ndarray]):
    """The arrays of a .npz, each read when a feature names it (`np.load` semantics,
    `allow_pickle=False`), its size taken from its header and checked against what is left of
    `MAX_ARRAYS_BYTES` before anything is decompressed: a header may claim 1 TiB, a member may
    be a zip bomb, and arrays no feature names are never decompressed."""

    def __init__(self, blob: bytes) -> None:
        self._zip = zipfile.ZipFile(io.BytesIO(blob))
        self._members = {n[:-4]: n for n in self._zip.namelist() if n.endswith(".npy")}
        self._left = MAX_ARRAYS_BYTES
        self._read: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._read:
            return self._read[key]
        member = self._members[key]  # KeyError: the feature names no such array
        fmt = np.lib.format
        with self._zip.open(member) as f:
            major, _minor = fmt.read_magic(f)
            if major == 1:
                shape, _order, dtype = fmt.read_array_header_1_0(f)
            elif major == 2:
                shape, _order, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"array {key} has .npy format version {major}")
        if dtype.hasobject:
            raise ValueError(f"array {key} holds Python objects, which are never loaded")
        size = math.prod(int(n) for n in shape) * dtype.itemsize
        if size > self._left:
            raise ValueError(f"array {key} claims {size} bytes; a baseline's arrays may take "
                             f"at most {MAX_ARRAYS_BYTES} bytes")
        self._left -= size
        with self._zip.open(member) as f:  # reads exactly what the header declares
            a: np.ndarray = fmt.read_array(f, allow_pickle=False)
        self._read[key] = a
        return a

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def close(self) -> None:
        self._zip.close()


def _count(value: Any, what: str) -> int:
    """A non-negative integer count from a manifest (not Infinity, 1e300 or -1)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{what} must be a non-negative integer, got {str(value)[:40]}")
    return value


def _load(p: Path, model: str | None, version: str | None) -> Baseline:
    raw = _read_regular(p, MAX_MANIFEST_BYTES, p, "the manifest", "no such baseline file")
    try:
        m = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(p, f"corrupt manifest, not valid JSON ({e}); rebuild the baseline") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise _fail(p, f"not a benchwatch baseline (expected \"format\": \"{FORMAT}\")")
    sv = m.get("schema_version")
    if sv not in READABLE_SCHEMAS or isinstance(sv, bool):
        raise _fail(p, f"schema version {sv!r}; this benchwatch reads versions "
                       f"{', '.join(map(str, READABLE_SCHEMAS))}. Rebuild it with this "
                       "version's `benchwatch bench` or `benchwatch baseline build`")
    fm, fv = m.get("model"), m.get("version")
    if model is not None and fm != model or version is not None and fv != version:
        raise _fail(p, f"is the baseline of {fm}/{fv}, not {model or fm}/{version or fv}")
    _check_name("model", fm)
    _check_name("version", fv)
    npz = p.with_name(str(m["arrays_file"]))
    if npz.parent != p.parent or "/" in str(m["arrays_file"]):
        raise _fail(p, "arrays_file must be a file name beside the manifest")
    blob = _read_regular(npz, MAX_ARRAYS_FILE_BYTES, p, f"its arrays file {npz.name}",
                         f"its arrays file {npz.name} is missing; copy both files together")
    if hashlib.sha256(blob).hexdigest() != m["arrays_sha256"]:
        raise _fail(p, f"{npz.name} does not match the manifest's checksum (corrupt or from "
                       "another baseline); rebuild the baseline")
    arrays = _Arrays(blob)
    feats: dict[str, Reference] = {}
    try:
        for entry in m["features"]:
            name = _check_feature_name(entry["name"])
            try:
                feats[name] = _load_feature(entry, arrays)
            except (DriftError, KeyError, TypeError, ValueError, OverflowError) as e:
                raise _fail(p, f"feature {name!r} is invalid ({e}); rebuild the baseline") from None
    finally:
        arrays.close()
    if not feats:
        raise _fail(p, "has no features")
    prov_d = m["provenance"]
    prov = Provenance(
        data_hash=str(prov_d["data_hash"]),
        created_at=str(prov_d["created_at"]),
        benchwatch_version=str(prov_d["benchwatch_version"]),
        source=str(prov_d.get("source", "")),
        schema_version=int(sv),  # the file's: 1 says its figures were migrated
    )
    cal = m.get("calibration")
    try:
        calibration = Calibration.from_dict(cal) if cal is not None else None
    except DriftError as e:
        raise _fail(p, f"calibration is invalid: {e}") from None
    try:
        tests = _check_tests(m.get("tests") or {}, feats)
    except BaselineError as e:
        raise _fail(p, str(e)) from None
    try:
        figures = _read_figures(sv, m.get("figures"))
    except BaselineError as e:
        raise _fail(p, f"{e}; rebuild the baseline") from None
    return Baseline(str(fm), str(fv), feats, figures, prov, calibration, p, tests)


def _read_figures(schema: int, raw: Any) -> tuple[Figure, ...]:
    """Schema 1: {name: value} (migrated by `legacy_figures`); schema 2: a list of figures."""
    if raw is None:
        return ()
    if schema == 1:
        if not isinstance(raw, Mapping):
            raise BaselineError("schema-1 figures must be an object of name: value")
        return _check_figures(legacy_figures(raw))
    if not isinstance(raw, list):
        raise BaselineError("figures must be a list of {name, value, point, scenario, rate_qps}")
    try:
        return _check_figures([Figure.from_dict(d) for d in raw])
    except DriftError as e:
        raise BaselineError(str(e)) from None


def _array(arrays: Mapping[str, np.ndarray], key: str, kinds: str, ndim: int) -> np.ndarray:
    a = arrays[key]
    if a.dtype.kind not in kinds or a.ndim != ndim:
        raise ValueError(f"array {key} has dtype {a.dtype}, {a.ndim} dims")
    return a


def _load_feature(entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Reference:
    kind, names, n_missing = entry["kind"], entry["arrays"], _count(entry["n_missing"], "n_missing")
    if kind == "numeric":
        s = _array(arrays, names["sorted"], "f", 1).astype(np.float64)
        edges = _array(arrays, names["edges"], "f", 1).astype(np.float64)
        if s.size < 2 or not np.isfinite(s).all() or np.any(np.diff(s) < 0):
            raise ValueError("reference values must be finite and sorted, at least 2")
        if not np.isfinite(edges).all() or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be finite and increasing")
        return NumericReference.from_sorted(s, n_missing=n_missing, edges=edges)
    if kind == "categorical":
        counts = _array(arrays, names["counts"], "iu", 1).astype(np.int64)
        cats = [str(c) for c in entry["categories"]]
        if len(cats) != counts.size or len(set(cats)) != len(cats):
            raise ValueError("categories and counts disagree")
        return CategoricalReference.from_counts(dict(zip(cats, counts.tolist(), strict=True)),
                                                n_missing=n_missing)
    if kind == "vector":
        v = _array(arrays, names["values"], "f", 2).astype(np.float64)
        if v.shape[0] < 2 or not np.isfinite(v).all():
            raise ValueError("reference vectors must be finite, at least 2 rows")
        return VectorReference(values=v, n_missing=n_missing)
    raise ValueError(f"unknown kind {kind!r}")


def load_dir(
    directory: str | os.PathLike[str],
) -> tuple[dict[tuple[str, str], Baseline], dict[str, str]]:
    """Every `*.json` baseline in `directory`: (baselines by (model, version), errors by path).

    A bad file never stops the others from loading, whatever it holds or is (a FIFO or device
    named *.json is refused without being opened); its error says why it was refused. The
    caller reports the errors (the drift service logs each once).
    """
    d = Path(directory)
    good: dict[tuple[str, str], Baseline] = {}
    errors: dict[str, str] = {}
    if not d.is_dir():
        errors[str(d)] = f"{d}: not a directory of baselines"
        return good, errors
    try:
        paths = sorted(d.glob("*.json"))
    except OSError as e:
        errors[str(d)] = f"{d}: cannot list the baselines ({e})"
        return good, errors
    for p in paths:
        try:
            b = Baseline.load(p)
        except BaselineError as e:
            errors[str(p)] = str(e)
            continue
        except Exception as e:  # a case the loader did not foresee: still only this file
            errors[str(p)] = (f"{p}: cannot read baseline ({type(e).__name__}: "
                              f"{str(e)[:200]}); rebuild it with `benchwatch baseline build`")
            continue
        if b.key in good:
            errors[str(p)] = (f"{p}: duplicate baseline for {b.model}/{b.version} (already "
                              f"loaded from {good[b.key].path}); remove one")
            continue
        good[b.key] = b
    return good, errors


