"""Baselines: round trip, provenance, and refusal of corrupt/foreign/unknown files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift import Baseline, BaselineError, Calibration, Figure, compare, load_dir
from drift.baseline import SCHEMA_VERSION

FIGURES = [
    Figure("latency_p99_s", 0.0009, "model_call", "single_stream", 1500.0),
    Figure("latency_p99_s", 0.0012, "model_call", "server_40qps", 39.5),
    Figure("latency_p99_s", 0.004, "http_client", "single_stream", 1500.0),
    Figure("energy_per_inference_j", 0.5, "device", "offline", 9000.0),
    Figure("accuracy", 0.97, "outputs", "accuracy"),
]


def _build(model: str = "digits", version: str = "v3", seed: int = 0) -> Baseline:
    rng = np.random.default_rng(seed)
    conf = rng.beta(8, 2, size=3000)
    correct = rng.random(3000) < conf
    return Baseline.build(
        model,
        version,
        {
            "confidence": conf,
            "predicted_class": [str(i % 10) for i in range(3000)],
            "embedding": rng.normal(size=(300, 4)),
            "value": list(rng.normal(size=100)) + [None, float("nan")],
        },
        FIGURES,
        source="unit-test",
        calibration=Calibration.fit(conf, correct),
        tests={"confidence": "psi"},
    )


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    b = _build()
    path = b.save(tmp_path / "digits-v3.json")
    assert (tmp_path / "digits-v3.npz").exists()
    loaded = Baseline.load(path, model="digits", version="v3")
    assert loaded.key == ("digits", "v3")
    assert set(loaded.features) == {"confidence", "predicted_class", "embedding", "value"}
    assert set(loaded.figures) == set(FIGURES) and loaded.figures == b.figures
    assert loaded.provenance == b.provenance
    assert loaded.provenance.data_hash.startswith("sha256:")
    assert loaded.provenance.schema_version == SCHEMA_VERSION
    assert loaded.source == "unit-test"
    assert loaded.calibration == b.calibration
    assert loaded.tests == {"confidence": "psi"}
    ref = loaded.reference("value")
    assert ref.n == 100 and ref.n_missing == 2
    for name in b.features:
        x, y = b.features[name], loaded.features[name]
        assert x.kind == y.kind and x.n == y.n
    np.testing.assert_array_equal(
        loaded.features["confidence"].sorted_values, b.features["confidence"].sorted_values)
    # same data -> same hash; different data -> different hash
    assert _build().provenance.data_hash == b.provenance.data_hash
    assert _build(seed=1).provenance.data_hash != b.provenance.data_hash
    # the loaded references drive compare()
    rng = np.random.default_rng(5)
    assert not compare(loaded.reference("confidence"), rng.beta(8, 2, 1000)).detected
    assert compare(loaded.reference("confidence"), rng.beta(4, 2, 1000)).detected
    with pytest.raises(BaselineError, match="no feature 'nope'"):
        loaded.reference("nope")


def test_reference_is_subsampled_but_bins_use_all_data(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=50_000)
    b = Baseline.build("m", "v", {"x": x}, max_reference=2000)
    ref = b.features["x"]
    assert ref.n == 2000
    np.testing.assert_allclose(ref.edges, np.quantile(x, np.arange(1, 10) / 10))


def _saved(tmp_path: Path) -> Path:
    return _build().save(tmp_path / "digits-v3.json")


def test_corrupt_manifest_is_refused(tmp_path: Path) -> None:
    p = _saved(tmp_path)
    p.write_text(p.read_text()[:-40])
    with pytest.raises(BaselineError, match="not valid JSON"):
        Baseline.load(p)


def test_corrupt_or_swapped_arrays_are_refused(tmp_path: Path) -> None:
    p = _saved(tmp_path)
    npz = p.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(BaselineError, match="checksum"):
        Baseline.load(p)
    npz.unlink()
    with pytest.raises(BaselineError, match="missing"):
        Baseline.load(p)


def test_other_model_and_unknown_schema_are_refused(tmp_path: Path) -> None:
    p = _saved(tmp_path)
    with pytest.raises(BaselineError, match="baseline of digits/v3, not fraud/v3"):
        Baseline.load(p, model="fraud")
    m = json.loads(p.read_text())
    m["schema_version"] = 99
    p.write_text(json.dumps(m))
    with pytest.raises(BaselineError, match="schema version 99"):
        Baseline.load(p)
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(BaselineError, match="not a benchwatch baseline"):
        Baseline.load(p)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    """An object array (which would need pickle) with a matching checksum is still refused."""
    p = _saved(tmp_path)
    m = json.loads(p.read_text())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        obj = io.BytesIO()
        np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        for entry in m["features"]:
            for key in entry["arrays"].values():
                z.writestr(f"{key}.npy", obj.getvalue())
    blob = buf.getvalue()
    p.with_suffix(".npz").write_bytes(blob)
    import hashlib

    m["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
    p.write_text(json.dumps(m))
    with pytest.raises(BaselineError, match="cannot read baseline|invalid"):
        Baseline.load(p)


def test_tampered_array_contents_are_refused(tmp_path: Path) -> None:
    p = _saved(tmp_path)
    m = json.loads(p.read_text())
    with np.load(p.with_suffix(".npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(e["arrays"]["sorted"] for e in m["features"] if e["name"] == "confidence")
    arrays[key] = arrays[key][::-1].copy()  # no longer sorted
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    import hashlib

    p.with_suffix(".npz").write_bytes(buf.getvalue())
    m["arrays_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    p.write_text(json.dumps(m))
    with pytest.raises(BaselineError, match="feature 'confidence' is invalid"):
        Baseline.load(p)


def test_load_dir_serves_the_good_ones(tmp_path: Path) -> None:
    _build("digits", "v3").save(tmp_path / "digits-v3.json")
    _build("digits", "v4").save(tmp_path / "digits-v4.json")
    _build("digits", "v3").save(tmp_path / "copy-of-v3.json")
    (tmp_path / "garbage.json").write_text("{")
    good, errors = load_dir(tmp_path)
    assert set(good) == {("digits", "v3"), ("digits", "v4")}
    assert len(errors) == 2 and str(tmp_path / "garbage.json") in errors
    assert any("duplicate" in e for e in errors.values())
    assert any("not valid JSON" in e for e in errors.values())
    good, errors = load_dir(tmp_path / "nope")
    assert not good and errors


def test_bad_build_input_is_explained() -> None:
    with pytest.raises(BaselineError, match="model must be"):
        Baseline.build("", "v1", {"x": [1.0, 2.0]})
    with pytest.raises(BaselineError, match="at least one feature"):
        Baseline.build("m", "v1", {})
    with pytest.raises(BaselineError, match="feature 'x'"):
        Baseline.build("m", "v1", {"x": [1.0]})
    with pytest.raises(BaselineError, match="does not apply to numeric feature 'x'"):
        Baseline.build("m", "v1", {"x": [1.0, 2.0]}, tests={"x": "chi2"})
    with pytest.raises(BaselineError, match="finite number"):
        Baseline.build("m", "v1", {"x": [1.0, 2.0]}, {"accuracy": float("nan")})
    with pytest.raises(BaselineError, match="point 'client' is unknown; use one of"):
        Baseline.build("m", "v1", {"x": [1.0, 2.0]}, [Figure("latency_p99_s", 1.0, "client", "x")])
    with pytest.raises(BaselineError, match="rate_qps must be"):
        Baseline.build("m", "v1", {"x": [1.0, 2.0]},
                       [Figure("latency_p99_s", 1.0, "model_call", "x", -3.0)])
    twice = [Figure("latency_p99_s", 1.0, "model_call", "x")] * 2
    with pytest.raises(BaselineError, match="two figures latency_p99_s at point model_call"):
        Baseline.build("m", "v1", {"x": [1.0, 2.0]}, twice)


def test_feature_names_are_any_printable_text(tmp_path: Path) -> None:
    """A user's column names as they are ("mean radius", "area (mm²)"); model and version keep
    the file-name alphabet."""
    names = ["mean radius", "worst concave points", "area (mm²)", "x" * 128]
    b = Baseline.build("bc", "v1", {n: [1.0, 2.0, 3.0] for n in names})
    assert sorted(Baseline.load(b.save(tmp_path / "bc-v1.json")).features) == sorted(names)
    for bad in (" mean radius", "mean radius ", "tab\there", "", "x" * 129, "nbsp\u00a0x"):
        with pytest.raises(BaselineError, match="printable characters") as e:
            Baseline.build("bc", "v1", {bad: [1.0, 2.0]})
        assert len(str(e.value).splitlines()) == 1 and "rename the column" in str(e.value)
    with pytest.raises(BaselineError, match="model must be"):
        Baseline.build("breast cancer", "v1", {"mean radius": [1.0, 2.0]})


def test_a_figure_is_looked_up_only_at_its_measurement_point() -> None:
    b = _build()
    # model_call: single_stream is preferred without a scenario or a rate
    assert b.figure("latency_p99_s", "model_call") == FIGURES[0]
    assert b.figure("latency_p99_s", "model_call", "server_40qps") == FIGURES[1]
    # with a live rate, the scenario whose rate is nearest (log scale)
    assert b.figure("latency_p99_s", "model_call", rate_qps=60.0) == FIGURES[1]
    assert b.figure("latency_p99_s", "model_call", rate_qps=800.0) == FIGURES[0]
    assert b.figure("latency_p99_s", "http_client") == FIGURES[2]
    # nothing at that point or in that scenario: None, never a figure from elsewhere
    assert b.figure("latency_p99_s", "harness") is None
    assert b.figure("latency_p99_s", "model_call", "offline") is None
    assert b.figure("energy_per_inference_j", "model_call") is None
    with pytest.raises(BaselineError, match="point 'probe' is unknown"):
        b.figure("latency_p99_s", "probe")


def test_a_schema_1_file_loads_with_its_figures_at_an_unknown_point(tmp_path: Path) -> None:
    """The old form, {name: value}, said nothing of where a figure was measured: it loads, but
    only accuracy (computed from outputs) can be paired; the rest is at point `unknown`."""
    p = _saved(tmp_path)
    m = json.loads(p.read_text())
    m["schema_version"] = 1
    m["figures"] = {"latency_p99_s": 0.012, "accuracy": 0.97}
    p.write_text(json.dumps(m))
    b = Baseline.load(p)
    assert b.provenance.schema_version == 1
    assert set(b.figures) == {Figure("latency_p99_s", 0.012, "unknown", "unknown"),
                              Figure("accuracy", 0.97, "outputs", "accuracy")}
    assert b.figure("latency_p99_s", "model_call") is None
    assert b.figure("accuracy", "outputs").value == 0.97  # type: ignore[union-attr]
    # saving it again writes the current schema, figures and all
    again = Baseline.load(b.save(tmp_path / "again.json"))
    assert again.provenance.schema_version == SCHEMA_VERSION and again.figures == b.figures


@pytest.mark.parametrize("figures", [
    {"latency_p99_s": 0.01},  # schema 2 wants a list
    [{"name": "latency_p99_s", "value": 0.01, "point": "model_call"}],  # no scenario
    [{"name": "latency_p99_s", "value": "fast", "point": "model_call", "scenario": "s"}],
    [{"name": "x", "value": 1, "point": "model_call", "scenario": "s", "colour": "red"}],
    ["latency_p99_s"],
])
def test_malformed_figures_are_refused_with_the_file_named(tmp_path: Path, figures: object) -> None:
    p = _saved(tmp_path)
    m = json.loads(p.read_text())
    m["figures"] = figures
    p.write_text(json.dumps(m))
    with pytest.raises(BaselineError, match=f"{p}: .*rebuild the baseline"):
        Baseline.load(p)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=3, max_size=50),
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ü", "3"])), min_size=1, max_size=50),
)
def test_any_valid_input_round_trips(tmp_path_factory, numbers, labels) -> None:
    if sum(v is not None for v in numbers) < 2 or all(v is None for v in labels):
        return
    b = Baseline.build("m", "v", {"x": numbers, "label": labels})
    p = b.save(tmp_path_factory.mktemp("rt") / "m-v.json")
    loaded = Baseline.load(p)
    assert loaded.provenance.data_hash == b.provenance.data_hash
    x, y = b.features["x"], loaded.features["x"]
    np.testing.assert_array_equal(x.sorted_values, y.sorted_values)
    assert x.n_missing == y.n_missing == sum(v is None for v in numbers)
    assert loaded.features["label"].categories == b.features["label"].categories
