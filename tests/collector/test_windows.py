"""WindowStore: bounded, durable (SQLite WAL), idempotent by sample_id, survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector import WindowStore


def item(sid: str, value: object, model: str = "m", version: str = "v",
         feature: str = "x") -> tuple:
    return (sid, model, version, 1000.0, {feature: value}, {feature: value})


def test_window_keeps_the_most_recent_values_up_to_its_bound() -> None:
    store = WindowStore(None, max_per_feature=10)
    store.add([item(f"s{i}", float(i)) for i in range(25)])
    assert store.values("m", "v", "x") == [float(i) for i in range(15, 25)]
    store.add([item("late", 99.0)])
    assert store.values("m", "v", "x")[-1] == 99.0
    assert store.count("m", "v", "x") == 10


def test_every_feature_kind_round_trips() -> None:
    store = WindowStore(None)
    store.add([item("a", 1.5), item("b", "cat"), item("c", (1.0, 2.5)), item("d", None)])
    assert store.values("m", "v", "x") == [1.5, "cat", (1.0, 2.5), None]


def test_redelivered_samples_are_duplicates_and_not_stored_twice() -> None:
    store = WindowStore(None)
    assert store.add([item("a", 1.0), item("b", 2.0)]) == (2, 0)
    assert store.add([item("a", 1.0), item("c", 3.0)]) == (1, 1)
    assert store.values("m", "v", "x") == [1.0, 2.0, 3.0]


def test_windows_are_separate_per_model_version_feature_and_reset_empties_them() -> None:
    store = WindowStore(None)
    store.add([item("a", 1.0), item("b", 2.0, model="n"), item("c", 3.0, version="w"),
               item("d", 4.0, feature="y")])
    assert store.keys() == [("m", "v", "x"), ("m", "v", "y"), ("m", "w", "x"), ("n", "v", "x")]
    assert store.features("m", "v") == ["x", "y"]
    store.reset(model="m", version="v")
    assert store.keys() == [("m", "w", "x"), ("n", "v", "x")]
    # a reset keeps the remembered ids: a redelivery after it is still a duplicate
    assert store.add([item("a", 1.0)]) == (0, 1)
    store.reset()
    assert store.keys() == []


def test_sample_ids_are_bounded_too() -> None:
    store = WindowStore(None, max_sample_ids=5)
    store.add([item(f"s{i}", 1.0) for i in range(12)])
    assert store.sample_count() == 5
    assert set(store.samples([f"s{i}" for i in range(12)])) == {f"s{i}" for i in range(7, 12)}


def test_windows_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    with WindowStore(path) as store:
        store.add([item("a", 1.0), item("b", "k", feature="y")])
        store.meta_set("note", "kept")
    with WindowStore(path) as store:
        assert store.values("m", "v", "x") == [1.0]
        assert store.values("m", "v", "y") == ["k"]
        assert store.meta_get("note") == "kept"
        assert store.add([item("a", 1.0)]) == (0, 1)


def test_a_corrupt_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="move it aside"):
        WindowStore(path)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_per_feature"):
        WindowStore(None, max_per_feature=0)


WRITER = r"""
import json, sys
from collector import WindowStore
store = WindowStore(sys.argv[1], max_per_feature=1_000_000)
acked = open(sys.argv[2], "a", buffering=1)
batch = 0
while True:
    ids = [f"b{batch}-{i}" for i in range(50)]
    store.add([(sid, "m", "v", 1.0, {"x": 1.0}, {"x": float(i), "y": "c"})
               for i, sid in enumerate(ids)])
    acked.write(json.dumps(ids) + "\n")  # acknowledged only after the commit returned
    batch += 1
"""


def test_kill_9_mid_ingest_loses_no_acknowledged_sample_and_counts_none_twice(
        tmp_path: Path) -> None:
    db, acks = tmp_path / "w.sqlite", tmp_path / "acked.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(acks)],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                not acks.exists() or acks.read_text().count("\n") < 20):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    acked = [sid for line in acks.read_text().splitlines() if line.strip()
             for sid in json.loads(line)]
    assert len(acked) >= 1000
    with WindowStore(db, max_per_feature=1_000_000) as store:
        stored = store.sample_count()
        # every acknowledged batch is there; at most the one in flight committed unacknowledged
        assert len(acked) <= stored <= len(acked) + 50
        assert stored % 50 == 0, "a batch was partially written"
        assert len(store.samples(acked)) == len(acked)
        assert store.count("m", "v", "x") == stored
        # redelivering everything acknowledged adds nothing
        again = [(sid, "m", "v", 1.0, {"x": 1.0}, {"x": 0.0}) for sid in acked]
        assert store.add(again) == (0, len(acked))
        assert store.count("m", "v", "x") == stored


def test_two_processes_may_share_one_file(tmp_path: Path) -> None:
    """A standalone collector writes, the drift service reads (each its own connection)."""
    path = tmp_path / "shared.sqlite"
    with WindowStore(path) as writer, WindowStore(path) as reader:
        assert reader.keys() == []
        writer.add([item("a", 1.0), item("b", 2.0, feature="y")])
        assert reader.keys() == [("m", "v", "x"), ("m", "v", "y")]
        assert reader.values("m", "v", "x") == [1.0]
        # ids are shared too: a sample one of them took is a duplicate for the other
        assert reader.add([item("a", 1.0), item("c", 3.0)]) == (1, 1)
        assert writer.values("m", "v", "x") == [1.0, 3.0]
        values, after = writer.values_since("m", "v", "x")
        assert values == [1.0, 3.0]
        writer.add([item("d", 4.0)])
        newer, position = writer.values_since("m", "v", "x", after)
        assert newer == [4.0] and position > after
        assert writer.values_since("m", "v", "x", position) == ([], position)
