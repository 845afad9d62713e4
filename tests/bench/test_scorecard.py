"""The bench scorecard: seeded corruptions, mCE against the suite's reference model, the flip
rate under tiny noise, cost per 1 000 inferences, and all of it in results and baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchwatch.bench import robustness as rb
from benchwatch.bench.backends import make_backend
from benchwatch.bench.cost import Prices, cost, cost_per_1m_tokens
from benchwatch.bench.suites import load_suite, make_suite
from benchwatch.cli import main
from drift.baseline import Baseline


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_suite("digits")


@pytest.fixture(scope="module")
def example():  # type: ignore[no-untyped-def]
    b = make_backend("onnxruntime", "digits", threads=1)
    yield b
    b.close()


def test_corruptions_are_seeded_and_graded(digits) -> None:  # type: ignore[no-untyped-def]
    assert rb.corruptions(digits) == rb.IMAGE_CORRUPTIONS
    for name in rb.IMAGE_CORRUPTIONS:
        a = rb.corrupt(digits, name, 3, seed=7)
        assert np.array_equal(a, rb.corrupt(digits, name, 3, seed=7)), name
        assert a.shape == digits.inputs.shape and a.dtype == np.float32
        change = [float(np.abs(rb.corrupt(digits, name, s, 7) - digits.inputs).mean())
                  for s in rb.SEVERITIES]
        assert change[0] > 0 and change[-1] > change[0], (name, change)
    noisy = rb.corrupt(digits, "gaussian_noise", 5, 0)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0  # clipped to the value range
    occluded = rb.corrupt(digits, "occlusion", 5, 0).reshape(-1, 8, 8)
    side = round(0.6 * 8)  # a 5x5 patch of zeros in every image
    assert all(any(not img[t:t + side, c:c + side].any() for t in range(4) for c in range(4))
               for img in occluded)


def test_tabular_corruptions_scale_to_each_feature() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(0, 1, 500), rng.normal(100, 50, 500)])
    suite = make_suite("tab", x, (x[:, 0] > 0).astype(int), {"num_classes": 2})
    assert rb.corruptions(suite) == rb.TABULAR_CORRUPTIONS
    delta = rb.corrupt(suite, "scaled_noise", 5, 0) - suite.inputs
    ratio = delta.std(axis=0) / suite.inputs.std(axis=0)
    assert np.allclose(ratio, 0.75, rtol=0.1)  # severity 5: 0.75 of each feature's std
    missing = rb.corrupt(suite, "missing_values", 5, 0)
    replaced = missing != suite.inputs
    assert 0.4 < replaced.mean() < 0.5  # severity 5: 45% of the cells
    assert np.allclose(missing[replaced[:, 1], 1], np.median(suite.inputs[:, 1]))


def test_reference_model_scores_mce_one_and_a_fragile_model_more(digits, example) -> None:  # type: ignore[no-untyped-def]
    ref = rb.reference_errors(digits, seed=0)
    assert ref is not None and ref[0].startswith("digits")
    own = rb.measure(example.predict, digits, 0, ref)
    assert own.mce == pytest.approx(1.0)
    assert own.clean_accuracy > 0.95
    mean_by_severity = np.mean(list(own.accuracy.values()), axis=0)
    assert mean_by_severity[0] > mean_by_severity[-1] + 0.2  # graded: severity hurts
    assert 0 < own.flip_rate < 0.05 and own.flip_queries == rb.FLIP_DRAWS * len(digits)

    clean_rows = {row.tobytes(): i for i, row in enumerate(digits.inputs)}

    def memorizer(batch: np.ndarray) -> np.ndarray:
        """Right on the suite's own rows, class 0 on anything else: no robustness at all."""
        out = np.zeros((len(batch), 10), np.float32)
        for j, row in enumerate(np.asarray(batch, np.float32)):
            i = clean_rows.get(row.tobytes())
            out[j, int(digits.expected[i]) if i is not None else 0] = 1
        return out

    fragile = rb.measure(memorizer, digits, 0, ref)
    assert fragile.clean_accuracy == 1.0
    assert fragile.mce is not None and fragile.mce > 2.0
    assert fragile.flip_rate > 0.8
    names = {(f.name, f.scenario) for f in fragile.figures()}
    assert {("mce", "corruptions"), ("flip_rate", "tiny_noise"), ("corruption_error", "blur"),
            ("corruption_accuracy", "occlusion_5")} <= names


def test_no_reference_model_means_no_mce() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (200, 3))
    suite = make_suite("tab", x, (x[:, 0] > 0).astype(int), {"num_classes": 2})
    assert rb.reference_errors(suite) is None
    r = rb.measure(lambda b: np.column_stack([-b[:, 0], b[:, 0]]), suite, 0)
    assert r.mce is None and r.corruption_errors() is None
    assert 0 < r.mean_error < 0.5
    assert "mce" not in {f.name for f in r.figures()}


def test_cost_arithmetic_and_target() -> None:
    prices = Prices(usd_per_hour=0.36, usd_per_kwh=0.36)
    c = cost(prices, throughput_qps=1000.0, energy_per_inference_j=1.0, accuracy=0.97,
             accuracy_target=0.95, suite_rows=500)
    assert c.instance_per_1k_usd == pytest.approx(1e-4)  # 0.36 $/h / 3600 s / 1000 per s x 1000
    assert c.energy_per_1k_usd == pytest.approx(1e-4)  # 1 J = 1/3.6e6 kWh, x 0.36 $, x 1000
    assert c.per_1k_usd == pytest.approx(2e-4)
    assert c.reached and c.to_target_usd == pytest.approx(2e-4 * 500 / 1000)
    missed = cost(prices, 1000.0, None, 0.90, 0.95, 500)
    assert missed.per_1k_usd == pytest.approx(1e-4) and missed.to_target_usd is None
    assert "below the target" in missed.note and "no energy measured" in missed.note
    assert cost_per_1m_tokens(100.0, None, Prices(usd_per_hour=3.6)) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="finite number >= 0"):
        Prices(usd_per_hour=-1.0)


def test_bench_prints_and_writes_the_scorecard(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--backend", "onnxruntime", "--backend", "torch", "--threads", "1",
                 "--queries", "300", "--warmup", "20", "--offline-samples", "2000", "--no-server",
                 "--no-progress", "--price-usd-per-hour", "0.2", "--price-usd-per-kwh", "0.15",
                 "-o", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "scorecard" in out and "flip rate" in out and "$/1k inf" in out
    (run,) = tmp_path.iterdir()
    doc = json.loads((run / "results.json").read_text())
    cards = {c["backend"]: c for c in doc["scorecard"]}
    assert set(cards) == {"onnxruntime", "torch"}
    for c in cards.values():
        assert c["mce"] == pytest.approx(1.0)  # the shipped model is the digits reference
        assert 0 <= c["flip_rate"] < 0.05
        assert c["cost_per_1k_inferences_usd"] == pytest.approx(
            0.2 / 3600 / c["throughput_qps"] * 1000)  # no energy without NVML/RAPL here
        assert c["cost"]["reached"] is True and c["cost_to_target_usd"] > 0
    b = Baseline.load(run / "baseline-torch.json")
    flip = b.figure("flip_rate", "outputs")
    assert flip is not None and flip.value == pytest.approx(cards["torch"]["flip_rate"])
    assert b.figure("mce", "outputs") is not None
    priced = b.figure("cost_per_1k_inferences_usd", "harness", "offline")
    assert priced is not None and priced.rate_qps == pytest.approx(cards["torch"]["throughput_qps"])


def test_bench_without_robustness_or_price(tmp_path: Path) -> None:
    assert main(["bench", "--backend", "onnxruntime", "--queries", "100", "--warmup", "1",
                 "--offline-samples", "500", "--no-server", "--no-progress", "--no-robustness",
                 "-o", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    (card,) = json.loads((run / "results.json").read_text())["scorecard"]
    assert card["robustness"] is None and card["cost"] is None
    names = {f.name for f in Baseline.load(run / "baseline-onnxruntime.json").figures}
    assert "flip_rate" not in names and "cost_per_1k_inferences_usd" not in names


@pytest.mark.parametrize("flag,value", [("--price-usd-per-hour", "-1"),
                                        ("--price-usd-per-kwh", "nan"),
                                        ("--accuracy-target", "1.5")])
def test_bad_prices_are_usage_errors(flag: str, value: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", flag, value, "-o", str(tmp_path)]) == 2
    assert flag in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing was run


def test_slice_report_flags_the_slice_served_worse() -> None:
    from benchwatch.bench.slices import slice_figures, slice_report

    rng = np.random.default_rng(0)
    n = 600
    group = np.array(["a"] * 300 + ["b"] * 240 + ["c"] * 60)
    expected = rng.integers(0, 2, n)
    wrong = np.where(group == "c", rng.random(n) < 0.5, rng.random(n) < 0.05)  # c: 50% errors
    predicted = np.where(wrong, 1 - expected, expected)
    outputs = np.eye(2)[predicted]
    suite = make_suite("credit", rng.normal(size=(n, 3)), expected,
                       {"num_classes": 2, "slices": {"group": group.tolist()}})
    rep = slice_report(outputs, suite)["group"]
    assert rep["c"]["accuracy_parity"]["disparity"] is True
    assert rep["a"]["accuracy_parity"]["disparity"] is False
    assert rep["b"]["accuracy_parity"]["disparity"] is False
    assert rep["c"]["n"] == 60 and 0.35 < rep["c"]["accuracy"] < 0.65
    assert "positive_rate" in rep["a"]  # binary: the positive rate too
    figs = {(f.name, f.scenario): f.value for f in slice_figures({"group": rep})}
    assert figs[("accuracy", "slice_group_c")] == pytest.approx(rep["c"]["accuracy"])
    bad = make_suite("bad", np.zeros((3, 2)), np.zeros(3, int), {"slices": {"g": ["x"]}})
    from benchwatch.bench.suites import SuiteError

    with pytest.raises(SuiteError, match="one value per row"):
        slice_report(np.eye(2)[[0, 0, 0]], bad)


def test_bench_reports_accuracy_per_declared_slice(tmp_path: Path, digits,  # type: ignore[no-untyped-def]
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from benchwatch.bench.suites import save_suite

    ink = digits.inputs.sum(axis=1)
    bands = np.where(ink < np.quantile(ink, 1 / 3), "light",
                     np.where(ink < np.quantile(ink, 2 / 3), "medium", "heavy"))
    suite = make_suite("digits_ink", digits.inputs, digits.expected,
                       {**digits.metadata, "slices": {"ink": bands.tolist()}})
    path = save_suite(suite, tmp_path / "suites")
    assert main(["bench", "--suite", str(path), "--queries", "100", "--warmup", "1",
                 "--offline-samples", "500", "--no-server", "--no-progress",
                 "--no-robustness", "-o", str(tmp_path / "runs")]) == 0
    assert "accuracy by ink:" in capsys.readouterr().out
    (run,) = (tmp_path / "runs").iterdir()
    (card,) = json.loads((run / "results.json").read_text())["scorecard"]
    assert set(card["slices"]["ink"]) == {"light", "medium", "heavy"}
    assert sum(e["n"] for e in card["slices"]["ink"].values()) == len(suite)
    b = Baseline.load(run / "baseline-onnxruntime.json")
    heavy = b.figure("accuracy", "outputs", "slice_ink_heavy")
    assert heavy is not None and heavy.value == pytest.approx(card["slices"]["ink"]["heavy"]["accuracy"])
