"""A window store written by schema 1 (one row per value) opens as schema 2 (one row per window
per batch) with its windows, remembered ids and stored outputs intact."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from collector import WindowStore

SCHEMA_V1 = """
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE windows (key_id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL,
    version TEXT NOT NULL, feature TEXT NOT NULL, UNIQUE (model, version, feature));
CREATE TABLE vals (seq INTEGER PRIMARY KEY AUTOINCREMENT, key_id INTEGER NOT NULL,
    kind INTEGER NOT NULL, value, ts REAL NOT NULL);
CREATE INDEX vals_by_key ON vals (key_id, seq);
CREATE TABLE samples (sample_id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL,
    ts REAL NOT NULL, outputs TEXT NOT NULL, received_seq INTEGER NOT NULL);
CREATE INDEX samples_by_seq ON samples (received_seq);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO meta VALUES ('x:drift_since', '[]');
"""


def write_v1(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    db.executemany("INSERT INTO windows (model, version, feature) VALUES (?, ?, ?)",
                   [("m", "v", "x"), ("m", "v", "c"), ("m", "v", "e")])
    for i in range(12):  # kinds: 0 number, 1 string, 2 JSON vector, 3 missing
        db.execute("INSERT INTO vals (key_id, kind, value, ts) VALUES (1, ?, ?, ?)",
                   (3, None, i) if i == 4 else (0, float(i), i))
        db.execute("INSERT INTO vals (key_id, kind, value, ts) VALUES (2, 1, ?, ?)", (f"k{i}", i))
        db.execute("INSERT INTO vals (key_id, kind, value, ts) VALUES (3, 2, ?, ?)",
                   (json.dumps([1.0, float(i)]), i))
        db.execute("INSERT INTO samples VALUES (?, 'm', 'v', ?, ?, ?)",
                   (f"s{i}", float(i), json.dumps({"x": float(i), "c": f"k{i}"}), i + 1))
    db.commit()
    db.close()


def test_a_schema_1_file_is_migrated_with_everything_kept(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    write_v1(path)
    with WindowStore(path, max_per_feature=10) as store:
        assert store.keys() == [("m", "v", "c"), ("m", "v", "e"), ("m", "v", "x")]
        assert store.values("m", "v", "x") == [2.0, 3.0, None, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
        assert store.values("m", "v", "c")[-1] == "k11"
        assert store.values("m", "v", "e")[-1] == (1.0, 11.0)
        assert store.count("m", "v", "x") == 10
        assert store.sample_count() == 12
        assert store.samples(["s3"])["s3"].outputs == {"x": 3.0, "c": "k3"}
        assert store.meta_get("drift_since") == "[]"
        # remembered ids still de-duplicate; new values append after the migrated ones
        assert store.add([("s3", "m", "v", 1.0, {}, {"x": 99.0}),
                          ("new", "m", "v", 1.0, {}, {"x": 12.0})]) == (1, 1)
        assert store.values("m", "v", "x")[-2:] == [11.0, 12.0]
    with WindowStore(path, max_per_feature=10) as again:  # migrated once; opens as schema 2
        assert again.values("m", "v", "x")[-1] == 12.0


def test_an_unknown_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
                     "INSERT INTO meta VALUES ('schema', '9');")
    db.close()
    with pytest.raises(ValueError, match="has schema 9.*move it aside"):
        WindowStore(path)
