"""Windows age out by time as well as by count (the drift service's `max_age_s`, `drift serve
--max-age`), and a reference too small for the stated false-alarm rate is flagged: in
`baseline build` / `baseline show` and on the drift service's exported series."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchwatch import promtext
from benchwatch.cli import main
from collector import WindowStore
from drift import Baseline
from drift.reference_size import min_reference_size, small_references
from drift.service.engine import DriftService
from probes import metric_names as m
from probes.samples import Sample


def _samples(n: int, shift: float, prefix: str, seed: int = 1) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [Sample("tab", "v1", f"{prefix}{i}", time.time(), {}, {"x": float(v)})
            for i, v in enumerate(rng.normal(shift, 1.0, n))]


def test_store_reads_only_values_newer_than_asked(tmp_path: Path) -> None:
    store = WindowStore(tmp_path / "w.sqlite")
    before = time.time() - 1
    store.add([(f"a{i}", "m", "v", 1.0, {}, {"x": float(i)}) for i in range(5)])
    after = time.time() + 1
    assert store.values("m", "v", "x") == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert store.values("m", "v", "x", newer_than=before) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert store.values("m", "v", "x", newer_than=after) == []
    # stamped by arrival, not by the sender's timestamp (1.0 here): the store's own clock
    store.close()


def test_drifted_window_ages_out_and_the_feature_clears(
        tmp_path: Path, start_service: Callable[..., DriftService]) -> None:
    d = tmp_path / "baselines"
    d.mkdir()
    Baseline.build("tab", "v1", {"x": np.random.default_rng(0).normal(size=3000)},
                   source="age").save(d / "tab-v1.json")
    svc = start_service(d, max_age_s=60.0, min_samples=100)
    svc.collector.ingest(_samples(500, 2.0, "drift"))
    now = time.time()
    (fig,) = svc.evaluate(now).features
    assert fig.detected and fig.window_samples == 500
    # normal traffic since, and the drifted values older than max_age: judged on the new only
    svc.collector.ingest(_samples(300, 0.0, "ok", seed=2))
    assert svc.evaluate(now).drifted()  # still inside max_age: drifted + normal values
    later = svc.evaluate(now + 61.0)  # every value is older than max_age: nothing to judge
    assert later.features == () and later.skipped
    # by count only (max_age_s=None) the old values stay and the feature keeps drifting
    svc2 = start_service(d, max_age_s=None, min_samples=100, state_path=None)
    svc2.collector.ingest(_samples(500, 2.0, "drift"))
    assert svc2.evaluate(time.time() + 3600).drifted()


def test_max_age_flag_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "serve", "--baselines", str(tmp_path), "--max-age", "-5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-age" in err[0], err


def test_minimum_reference_size() -> None:
    # ln(2k / alpha) / (2 * 0.05^2): DKW with the smallest default effect floor
    assert min_reference_size(1) == math.ceil(math.log(40) / 0.005) == 738
    assert min_reference_size(33) == 1438
    assert min_reference_size(33, alpha=0.01) > min_reference_size(33)
    refs = {"big": list(range(2000)), "small": list(range(398))}
    assert small_references(refs) == {"small": (398, min_reference_size(2))}


def test_small_reference_flagged_by_baseline_build_show_and_the_service(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        start_service: Callable[..., DriftService]) -> None:
    rng = np.random.default_rng(3)
    csv = tmp_path / "ref.csv"
    cols = [f"f{k}" for k in range(30)]
    rows = rng.normal(size=(398, 30))  # a 70% split of a 569-row data set, 30 inputs
    csv.write_text(",".join(cols) + "\n" + "\n".join(",".join(f"{v:.6f}" for v in r)
                                                      for r in rows) + "\n")
    out = tmp_path / "baselines" / "tab-v1.json"
    out.parent.mkdir()
    assert main(["baseline", "build", "--from", str(csv), "--model", "tab", "--version", "v1",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    needed = min_reference_size(30)
    assert f"warning: 30 of 30 features have fewer than {needed} reference values" in printed
    assert main(["baseline", "show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["small_reference"] == {"needed": needed, "features": sorted(cols)}
    assert main(["baseline", "show", str(out)]) == 0
    assert "warning: 30 of 30 features" in capsys.readouterr().out

    svc = start_service(out.parent)
    svc.evaluate()
    assert svc.metrics is not None
    scrape = promtext.read(svc.metrics.url)
    assert scrape.values(m.DRIFT_REFERENCE_SMALL, model="tab", feature="f7") == [1.0]
    assert scrape.values(m.DRIFT_REFERENCE_SAMPLES, model="tab", feature="f7") == [398.0]

    # a large enough reference is not flagged
    big = tmp_path / "big" / "tab-v2.json"
    big.parent.mkdir()
    Baseline.build("tab", "v2", {"x": rng.normal(size=1000)}, source="t").save(big)
    svc2 = start_service(big.parent)
    svc2.evaluate()
    assert svc2.metrics is not None
    assert promtext.read(svc2.metrics.url).values(m.DRIFT_REFERENCE_SMALL, model="tab") == [0.0]
