from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchwatch.bench.suites import (
    SuiteError,
    build_digits_suite,
    check_fits,
    load_suite,
    make_suite,
    save_suite,
)


def test_shipped_digits_suite_matches_a_rebuild_from_sklearn() -> None:
    shipped = load_suite("digits")
    rebuilt = build_digits_suite()
    assert shipped.content_hash == rebuilt.content_hash
    assert len(shipped) == 449 and shipped.input_shape == (64,)
    assert set(np.unique(shipped.expected)) == set(range(10))
    assert shipped.inputs.dtype == np.float32 and 0 <= shipped.inputs.min() <= shipped.inputs.max() <= 1


def test_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    s = make_suite("tiny", np.arange(20, dtype=np.float32).reshape(5, 4), np.arange(5),
                   {"task": "classification", "num_classes": 5})
    path = save_suite(s, tmp_path)
    back = load_suite(path)
    assert back.content_hash == s.content_hash
    np.testing.assert_array_equal(back.inputs, s.inputs)
    # a modified array is refused
    np.savez_compressed(tmp_path / "tiny.npz", inputs=s.inputs + 1, expected=s.expected)
    with pytest.raises(SuiteError, match="content hash mismatch"):
        load_suite(path)
    # modified metadata too
    save_suite(s, tmp_path)
    doc = json.loads(path.read_text())
    doc["metadata"]["num_classes"] = 6
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match="hash mismatch"):
        load_suite(path)


def test_pickled_object_arrays_are_refused(tmp_path: Path) -> None:
    s = make_suite("obj", np.zeros((2, 2), np.float32), np.zeros(2), {})
    save_suite(s, tmp_path)
    np.savez(tmp_path / "obj.npz", inputs=np.array([{"a": 1}, None], dtype=object),
             expected=np.zeros(2))
    with pytest.raises(SuiteError, match="unreadable|only numbers"):
        load_suite(tmp_path / "obj.json")


def test_missing_suite_and_shape_mismatch_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="built-in name"):
        load_suite(tmp_path / "nope")
    with pytest.raises(SuiteError, match="expects"):
        check_fits(load_suite("digits"), (32,), 10)
    with pytest.raises(SuiteError, match="classes"):
        check_fits(load_suite("digits"), (64,), 3)
