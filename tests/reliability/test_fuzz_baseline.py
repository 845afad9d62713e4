"""Fuzzing baseline loading: whatever is on disk, `Baseline.load` returns a valid baseline or
raises `BaselineError` with a message — never another exception — and the drift service keeps
serving the good baselines beside a bad one.

Mutations start from a real saved baseline (JSON manifest + .npz): random bytes, arbitrary JSON,
one field replaced by a value of another type, fields removed, unknown schema versions, a
manifest pointing outside its directory, corrupt or pickled (object) arrays, huge values.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchwatch.promtext import read
from drift import Baseline
from drift.baseline import BaselineError, load_dir
from drift.service.engine import DriftService, ServiceConfig
from probes import metric_names as names

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good")
    rng = np.random.default_rng(0)
    return Baseline.build(
        "digits", "v3",
        {"confidence": rng.beta(8, 1, 400),
         "predicted_class": [str(k) for k in rng.integers(0, 10, 400)],
         "embedding": [tuple(x) for x in rng.normal(size=(40, 4))]},
        {"latency_p99_s": 0.01, "accuracy": 0.97}, source="fuzz").save(d / "digits-v3.json")


def load_or_clear_error(path: Path) -> Baseline | None:
    try:
        b = Baseline.load(path)
    except BaselineError as e:
        assert str(e).strip(), "a BaselineError without a message"
        return None
    # anything accepted must be usable: every feature can be compared
    for name in b.features:
        b.reference(name)
    return b


def copy_good(good: Path, tmp: Path) -> tuple[Path, dict[str, Any]]:
    tmp.mkdir(parents=True, exist_ok=True)
    for f in good.parent.iterdir():
        shutil.copy(f, tmp / f.name)
    manifest = tmp / good.name
    return manifest, json.loads(manifest.read_text())


json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


def paths(m: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside the manifest (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(m, dict):
        for k, v in m.items():
            out += paths(v, (*prefix, k))
    elif isinstance(m, list):
        for i, v in enumerate(m):
            out += paths(v, (*prefix, i))
    return out


def set_path(m: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    m = copy.deepcopy(m)
    parent = m
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return m


def test_the_good_baseline_loads(good: Path) -> None:
    assert load_or_clear_error(good) is not None


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_manifest(good: Path, tmp_path_factory: pytest.TempPathFactory,
                               data: bytes) -> None:
    manifest, _ = copy_good(good, tmp_path_factory.mktemp("bytes"))
    manifest.write_bytes(data)
    assert load_or_clear_error(manifest) is None


@FUZZ
@given(value=json_values)
def test_arbitrary_json_manifest(good: Path, tmp_path_factory: pytest.TempPathFactory,
                                 value: Any) -> None:
    manifest, _ = copy_good(good, tmp_path_factory.mktemp("json"))
    manifest.write_text(json.dumps(value))
    assert load_or_clear_error(manifest) is None


@FUZZ
@given(data=st.data())
def test_one_field_replaced_or_removed(good: Path, tmp_path_factory: pytest.TempPathFactory,
                                       data: st.DataObject) -> None:
    manifest, m = copy_good(good, tmp_path_factory.mktemp("field"))
    path = data.draw(st.sampled_from(paths(m)), label="path")
    if data.draw(st.booleans(), label="delete"):
        mutated = set_path(m, path, None, delete=True)
    else:
        mutated = set_path(m, path, data.draw(json_values, label="value"))
    manifest.write_text(json.dumps(mutated))
    b = load_or_clear_error(manifest)
    if b is not None:  # only harmless changes may load (e.g. a figure or provenance text)
        assert (b.model, b.version) == (m["model"], m["version"]) or path[0] in ("model", "version")


@pytest.mark.parametrize("schema_version", [0, 3, 99, -1, "1", "2.0", None, 1.5, [1], True])
def test_unknown_schema_versions_are_refused_clearly(good: Path, tmp_path: Path,
                                                     schema_version: Any) -> None:
    manifest, m = copy_good(good, tmp_path)
    manifest.write_text(json.dumps({**m, "schema_version": schema_version}))
    with pytest.raises(BaselineError, match="schema version"):
        Baseline.load(manifest)


@pytest.mark.parametrize("arrays_file", ["../outside.npz", "/etc/passwd", "sub/x.npz", "",
                                         "digits-v3.json"])
def test_arrays_file_must_be_the_sibling(good: Path, tmp_path: Path, arrays_file: str) -> None:
    manifest, m = copy_good(good, tmp_path / "d")
    (tmp_path / "outside.npz").write_bytes((tmp_path / "d" / m["arrays_file"]).read_bytes())
    manifest.write_text(json.dumps({**m, "arrays_file": arrays_file}))
    assert load_or_clear_error(manifest) is None


def _rewrite_npz(manifest: Path, m: dict[str, Any], arrays: dict[str, np.ndarray],
                 allow_pickle: bool = False) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays, allow_pickle=allow_pickle) if allow_pickle else np.savez(buf, **arrays)
    blob = buf.getvalue()
    (manifest.parent / m["arrays_file"]).write_bytes(blob)
    m = {**m, "arrays_sha256": hashlib.sha256(blob).hexdigest()}  # a consistent checksum
    manifest.write_text(json.dumps(m))


def _arrays(manifest: Path, m: dict[str, Any]) -> dict[str, np.ndarray]:
    with np.load(manifest.parent / m["arrays_file"]) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("mutate", [
    "object array (pickle)", "nan values", "unsorted", "wrong dtype", "2-d numeric",
    "one value", "missing array", "huge counts", "negative counts",
])
def test_bad_arrays_with_a_consistent_checksum(good: Path, tmp_path: Path, mutate: str) -> None:
    manifest, m = copy_good(good, tmp_path)
    arrays = _arrays(manifest, m)
    numeric = next(f for f in m["features"] if f["kind"] == "numeric")["arrays"]["sorted"]
    counts = next(f for f in m["features"] if f["kind"] == "categorical")["arrays"]["counts"]
    if mutate == "object array (pickle)":
        arrays[numeric] = np.array([{"evil": 1}, None], dtype=object)
    elif mutate == "nan values":
        arrays[numeric] = np.full(10, np.nan)
    elif mutate == "unsorted":
        arrays[numeric] = arrays[numeric][::-1].copy()
    elif mutate == "wrong dtype":
        arrays[numeric] = np.array(["a", "b", "c"])
    elif mutate == "2-d numeric":
        arrays[numeric] = np.zeros((3, 3))
    elif mutate == "one value":
        arrays[numeric] = np.array([0.5])
    elif mutate == "missing array":
        del arrays[numeric]
    elif mutate == "huge counts":
        arrays[counts] = np.full(10, 2**62, dtype=np.int64)
    elif mutate == "negative counts":
        arrays[counts] = np.full(10, -5, dtype=np.int64)
    _rewrite_npz(manifest, m, arrays, allow_pickle=mutate.startswith("object"))
    b = load_or_clear_error(manifest)
    if mutate != "huge counts":  # huge but valid counts may load; everything else must not
        assert b is None, f"{mutate}: a broken baseline was accepted"


@FUZZ
@given(cut=st.integers(0, 5000), flip=st.integers(0, 5000))
def test_corrupt_npz(good: Path, tmp_path_factory: pytest.TempPathFactory, cut: int,
                     flip: int) -> None:
    manifest, m = copy_good(good, tmp_path_factory.mktemp("npz"))
    npz = manifest.parent / m["arrays_file"]
    blob = bytearray(npz.read_bytes())
    blob = blob[: max(1, len(blob) - cut)]
    blob[flip % len(blob)] ^= 0xFF
    npz.write_bytes(bytes(blob))
    # with the old checksum: refused as corrupt; with a matching checksum: refused or valid
    assert load_or_clear_error(manifest) is None
    manifest.write_text(json.dumps({**m, "arrays_sha256": hashlib.sha256(blob).hexdigest()}))
    load_or_clear_error(manifest)


def test_deeply_nested_manifest(good: Path, tmp_path: Path) -> None:
    manifest, _ = copy_good(good, tmp_path)
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    assert load_or_clear_error(manifest) is None


def test_service_keeps_serving_the_good_baselines(good: Path, tmp_path: Path) -> None:
    d = tmp_path / "baselines"
    _, m = copy_good(good, d)
    (d / "corrupt.json").write_text("{not json")
    (d / "future.json").write_text(json.dumps({**m, "schema_version": 99}))
    (d / "wrongtype.json").write_text(json.dumps({**m, "features": {"a": 1}}))
    good_map, errors = load_dir(d)
    assert set(good_map) == {("digits", "v3")}
    assert len(errors) == 3 and all(errors.values())
    svc = DriftService(ServiceConfig(d, metrics_port=0, ingest_port=None,
                                     interval_s=3600)).start()
    try:
        status = svc.status()
        assert status["baselines"] == ["digits/v3"]
        assert len(status["refused_baselines"]) == 3
    finally:
        svc.stop()


# -- one malformed file in --baselines (issue 16, finding 6) -------------------------------------
def _npz_claiming(manifest: Path, m: dict[str, Any], nbytes: int) -> None:
    """Replace the numeric reference array by a .npy whose header claims `nbytes` of float64
    (its data is 64 bytes), with a consistent checksum: only the header's claim is wrong."""
    numeric = next(f for f in m["features"] if f["kind"] == "numeric")["arrays"]["sorted"]
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (nbytes // 8,)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out, \
            zipfile.ZipFile(manifest.parent / m["arrays_file"]) as src:
        for name in src.namelist():
            data = head.getvalue() + bytes(64) if name == f"{numeric}.npy" else src.read(name)
            out.writestr(name, data)
    blob = buf.getvalue()
    (manifest.parent / m["arrays_file"]).write_bytes(blob)
    manifest.write_text(json.dumps({**m, "arrays_sha256": hashlib.sha256(blob).hexdigest()}))


def _first_figure_set(m: dict[str, Any], value: Any) -> dict[str, Any]:
    m = copy.deepcopy(m)
    figures = m["figures"]
    if isinstance(figures, list):  # [{name, value, ...}, ...]
        figures[0]["value"] = value
    else:  # {name: value}
        figures[next(iter(figures))] = value
    return m


def _bad_baseline(kind: str, d: Path, good: Path) -> Path:
    """Put one malformed baseline of `kind` into `d` (beside a good one); returns its path."""
    bad = d / f"bad-{''.join(c if c.isalnum() else '-' for c in kind)}.json"
    m = {**json.loads(good.read_text()), "model": "other"}
    if kind == "n_missing Infinity":
        m["features"] = copy.deepcopy(m["features"])
        m["features"][0]["n_missing"] = float("inf")
        bad.write_text(json.dumps(m))  # json writes Infinity
    elif kind == "figure 10**400":
        bad.write_text(json.dumps(_first_figure_set(m, 10**400)))
    elif kind == "array header claims 1 TiB":
        shutil.copy(good.with_name(m["arrays_file"]), d / "big.npz")
        _npz_claiming(bad, {**m, "arrays_file": "big.npz"}, 1 << 40)
    elif kind == "symlink to /dev/zero":
        bad.symlink_to("/dev/zero")
    elif kind == "arrays file is /dev/zero":
        (d / "zero.npz").symlink_to("/dev/zero")
        bad.write_text(json.dumps({**m, "arrays_file": "zero.npz"}))
    elif kind == "FIFO":
        os.mkfifo(bad)
    elif kind == "directory":
        bad.mkdir()
    else:
        raise AssertionError(kind)
    return bad


BAD_KINDS = ["n_missing Infinity", "figure 10**400", "array header claims 1 TiB",
             "symlink to /dev/zero", "arrays file is /dev/zero", "FIFO", "directory"]


def _in_thread(fn: Any, timeout_s: float = 60) -> Any:
    """fn() in a thread; fails (instead of hanging the suite) when it does not return."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(timeout_s)
    assert not t.is_alive(), f"{fn} hung for {timeout_s}s"
    assert out, "it raised (see the thread's traceback above)"
    return out[0]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_one_bad_baseline_is_refused_with_its_reason(good: Path, tmp_path: Path,
                                                     kind: str) -> None:
    d = tmp_path / "baselines"
    copy_good(good, d)
    bad = _bad_baseline(kind, d, good)
    loaded, errors = _in_thread(lambda: load_dir(d))
    assert set(loaded) == {("digits", "v3")}
    assert list(errors) == [str(bad)], errors
    why = errors[str(bad)]
    assert why.startswith(str(bad)) and len(why) > len(str(bad)) + 10, why
    if kind in ("symlink to /dev/zero", "FIFO", "directory", "arrays file is /dev/zero"):
        assert "not a regular file" in why
    if kind == "array header claims 1 TiB":
        assert "claims 1099511627776 bytes" in why


def test_drift_serve_starts_with_a_bad_baseline_and_survives_new_ones(
        good: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`drift serve` starts beside each bad file, serves the good baseline and exports the
    refusal; files dropped into the running service's directory never stop evaluation."""
    d = tmp_path / "baselines"
    copy_good(good, d)
    _bad_baseline("n_missing Infinity", d, good)
    svc = _in_thread(lambda: DriftService(ServiceConfig(d, metrics_port=0, ingest_port=None,
                                                        interval_s=3600)).start())
    try:
        assert svc.status()["baselines"] == ["digits/v3"]
        assert len(svc.status()["refused_baselines"]) == 1
        rng = np.random.default_rng(1)
        svc.collector.ingest([{"model": "digits", "version": "v3", "sample_id": f"s{i}",
                               "timestamp": 1.7e9 + i,
                               "outputs": {"confidence": float(rng.beta(8, 1)),
                                           "predicted_class": str(i % 10),
                                           "embedding": [float(x) for x in rng.normal(size=4)]}}
                              for i in range(200)])
        for n, kind in enumerate(k for k in BAD_KINDS if k != "n_missing Infinity"):
            _bad_baseline(kind, d, good)
            caplog.clear()
            evaluation = _in_thread(svc.evaluate)  # the pass that notices the new file
            assert {f.feature for f in evaluation.features} == {
                "confidence", "predicted_class", "embedding"}, kind
            assert len(svc.status()["refused_baselines"]) == n + 2, kind
            refusals = [r for r in caplog.records if "refused" in r.getMessage()]
            assert len(refusals) == 1, f"{kind}: logged {[r.getMessage() for r in refusals]}"
        assert read(svc.metrics_url, timeout_s=10).values(names.BASELINE_REFUSED) == [
            len(BAD_KINDS)]
    finally:
        svc.stop()
