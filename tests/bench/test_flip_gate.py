"""Replay gates on the flip rate under tiny noise: the same perturbed queries go to the canary
and the primary (real example servers on loopback), judged non-inferior like accuracy; against
a baseline, an exact binomial test on the baseline's flip_rate figure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch.bench.judge import (
    FAIL,
    NOT_MEASURED,
    PASS,
    Arm,
    JudgeSettings,
    decide,
    judge_flip_rate,
)
from benchwatch.cli import main


def _flip(doc: dict[str, Any]) -> dict[str, Any]:
    (m,) = [x for x in doc["verdict"]["metrics"] if x["metric"] == "flip_rate"]
    return m


def _replay(tmp_path: Path, canary: str, *extra: str) -> tuple[int, dict[str, Any]]:
    parent = tmp_path / f"call{len(list(tmp_path.glob('call*')))}"
    code = main(["replay", "--canary", canary, "-o", str(parent), "--no-progress",
                 "--queries", "800", *extra])
    (out,) = parent.glob("replay-*")
    return code, json.loads((out / "verdict.json").read_text())


def test_flip_rate_judge_paired_and_against_a_figure() -> None:
    s = JudgeSettings()
    rng = np.random.default_rng(0)
    n = 2245
    ref = rng.random(n) < 0.005
    same = decide([judge_flip_rate(Arm("c", flipped=ref.copy()), Arm("r", flipped=ref), s)], s)
    assert same.metrics[0].outcome == PASS and same.metrics[0].estimate == 0
    worse = ref | (rng.random(n) < 0.05)
    v = decide([judge_flip_rate(Arm("c", flipped=worse), Arm("r", flipped=ref), s)], s)
    assert v.metrics[0].outcome == FAIL and v.outcome == FAIL
    assert v.metrics[0].estimate == pytest.approx(worse.mean() - ref.mean())
    fig = decide([judge_flip_rate(Arm("c", flipped=worse), Arm("b", figures={"flip_rate": 0.005}),
                                  s)], s)
    assert fig.metrics[0].outcome == FAIL and "binomial" in fig.metrics[0].reason
    ok = decide([judge_flip_rate(Arm("c", flipped=ref), Arm("b", figures={"flip_rate": 0.005}),
                                 s)], s)
    assert ok.metrics[0].outcome == PASS
    none = judge_flip_rate(Arm("c"), Arm("r"), s)
    assert none.outcome == NOT_MEASURED and not none.gating


@pytest.fixture(scope="module")
def primary(example_server: Callable[..., str]) -> str:
    return example_server()


def test_identical_canary_passes_the_flip_gate(tmp_path: Path, primary: str,
                                               example_server: Callable[..., str]) -> None:
    code, doc = _replay(tmp_path, example_server(), "--primary", primary)
    m = _flip(doc)
    assert m["outcome"] == "pass", m
    assert m["n_canary"] == 5 * 449 and m["canary_value"] == m["reference_value"]
    assert code in (0, 4)  # latency may stay inconclusive on a busy machine


def test_unstable_canary_fails_on_flip_rate(tmp_path: Path, primary: str,
                                            example_server: Callable[..., str]) -> None:
    # 4% of inputs (by hash) get a wrong class: a perturbed copy of a row lands elsewhere
    canary = example_server("--flip-fraction", "0.04")
    code, doc = _replay(tmp_path, canary, "--primary", primary)
    m = _flip(doc)
    assert code == 1 and m["outcome"] == "fail", m
    assert m["canary_value"] > m["reference_value"] + 0.03


def test_flip_gate_against_the_bench_baseline(tmp_path: Path, primary: str,
                                              example_server: Callable[..., str]) -> None:
    assert main(["bench", "--backend", "http", "--url", primary, "-o", str(tmp_path / "b"),
                 "--queries", "200", "--warmup", "10", "--offline-samples", "500", "--no-server",
                 "--no-progress"]) == 0
    (baseline,) = (tmp_path / "b").glob("*/baseline-http.json")
    _, doc = _replay(tmp_path, example_server("--flip-fraction", "0.04"),
                     "--baseline", str(baseline))
    m = _flip(doc)
    assert m["outcome"] == "fail" and "binomial" in m["reason"], m
    _, same = _replay(tmp_path, example_server(), "--baseline", str(baseline))
    assert _flip(same)["outcome"] == "pass"
