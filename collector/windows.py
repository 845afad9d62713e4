"""Durable, bounded windows of feature values per (model, version, feature), in SQLite (WAL).

Why SQLite in WAL mode: a batch is accepted only once its transaction has committed, and a
committed WAL transaction survives the process being killed (kill -9) at any point, so a restart
loses no accepted sample. `synchronous=NORMAL` trades durability across an OS crash / power loss
(the last transactions may roll back) for ingest speed; process crashes are covered either way.
Pass `synchronous="FULL"` to fsync every batch (benchmarks/collector_ingest.py compares them).

Idempotence: every sample's `sample_id` is recorded (bounded to the most recent
`max_sample_ids`); a redelivered sample is counted as a duplicate and its values are not added
again. Each window keeps the most recent `max_per_feature` values; older ones are pruned in the
same transaction that adds new ones, so the file stays bounded.

Layout (schema 2): a batch's values of one window are ONE row (`chunks`, a JSON array), not one
row per value: SQLite's per-row cost (b-tree inserts into the table and its index) was ~2.5 µs,
paid 3x per 3-feature sample; now it is paid once per window per batch. A window is the newest
`max_per_feature` values of its chunks (reads trim); once a window holds 1.5x that, the whole
chunks older than its newest `max_per_feature` values are pruned (so a file holds at most
~1.5x the bound per window, plus one batch).
Ageing by time: each chunk is stamped with its arrival time; `values(..., newer_than=T)` reads
only chunks that arrived after T, so a window also empties when traffic stops or changes (the
drift service passes now - max_age). Count pruning keeps the file bounded either way.
Per sample there is one row left: `samples` (rowid = arrival order, unique `sample_id`).
A schema-1 file (one row per value) is migrated in place when opened.

The window keys are cached in memory and kept in step with the file without reading every key
per batch (a store holding 256 000 windows, e.g. one flooded by an old collector without caps,
would make each batch cost a full scan): keys another process added are read by their
increasing `key_id`, and a `reset` anywhere bumps a counter in `meta` that makes the others
re-read. So ingest and reads cost the same however many windows the file holds.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import CollectorConfigError

log = logging.getLogger(__name__)

Feature = float | str | tuple[float, ...] | None

# value kinds stored beside each value (SQLite columns are dynamically typed; strings and
# JSON-encoded vectors are both TEXT, so the kind disambiguates)
_NUM, _STR, _VEC, _NONE = 0, 1, 2, 3

META = "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    key_id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL, version TEXT NOT NULL, feature TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    UNIQUE (model, version, feature));
CREATE TABLE IF NOT EXISTS chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id INTEGER NOT NULL, n INTEGER NOT NULL, kind INTEGER NOT NULL, data TEXT NOT NULL,
    ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_key ON chunks (key_id, seq);
CREATE TABLE IF NOT EXISTS samples (
    received_seq INTEGER PRIMARY KEY, sample_id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL, version TEXT NOT NULL, ts REAL NOT NULL, outputs TEXT NOT NULL);
"""
SCHEMA_VERSION = "2"
# a value's position (values_since) is its chunk's seq and its index in the chunk
_POS_BITS = 32


@dataclass(frozen=True)
class StoredSample:
    """What the store remembers of an accepted sample (for joining delayed labels)."""

    sample_id: str
    model: str
    version: str
    timestamp: float
    outputs: Mapping[str, Feature]


def _chunk(values: Sequence[Any]) -> tuple[int, str]:
    """(kind, JSON array) of one window's values from one batch. Values the collector
    validated are floats/str/None already (checked by type, no conversion); ints and vectors
    (tuples/lists) are normalized here. kind _VEC: the array holds vectors (decode to tuples)."""
    kind = _NUM
    out: list[Any] | None = None
    for i, v in enumerate(values):
        t = type(v)
        if t is float or t is str or v is None:
            continue
        if out is None:
            out = list(values)
        if isinstance(v, tuple | list):
            out[i] = [float(x) for x in v]
            kind = _VEC
        else:
            out[i] = float(v)
    return kind, json.dumps(values if out is None else out)


def _unchunk(kind: int, data: str) -> list[Feature]:
    vals: list[Any] = json.loads(data)
    if kind == _VEC:
        return [tuple(v) if isinstance(v, list) else v for v in vals]
    return vals


def _jsonable(value: Feature) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return list(value) if isinstance(value, tuple) else value


def _make_dump() -> Callable[[Any], str]:
    """json.dumps(o, allow_nan=False) without building an encoder per call (~1 µs of the
    ~2 µs json.dumps costs for a 3-feature dict): the C encoder, made once, is reusable."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json (no C speedups): the plain call
        return lambda o: json.dumps(o, allow_nan=False)
    default = json.JSONEncoder().default
    encode = make(None, default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                  False, False, False)
    return lambda o: "".join(encode(o, 0))


_dump = _make_dump()


def _outputs_json(outputs: Mapping[str, Feature]) -> str:
    try:  # the collector's outputs are validated (finite, JSON types): one C-level dump
        return _dump(outputs if type(outputs) is dict else dict(outputs))
    except (TypeError, ValueError):
        return json.dumps({k: _jsonable(v) for k, v in outputs.items()})


class WindowStore:
    """Bounded per-(model, version, feature) windows; `path=None` keeps them in memory.

    Thread-safe: one connection guarded by a lock (ingest threads and the evaluator share it).
    """

    def __init__(self, path: str | Path | None, max_per_feature: int = 5000,
                 max_sample_ids: int = 200_000, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise CollectorConfigError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        if max_per_feature < 1:
            raise CollectorConfigError(f"max_per_feature must be >= 1, got {max_per_feature}")
        if max_sample_ids < 1:
            raise CollectorConfigError(f"max_sample_ids must be >= 1, got {max_sample_ids}")
        self.path = None if path is None else Path(path)
        self.max_per_feature = max_per_feature
        self.max_sample_ids = max_sample_ids
        # windows are pruned when they hold this many values (see _prune)
        self._prune_at = max_per_feature + max(1, max_per_feature // 2)
        self._lock = threading.Lock()
        existing = False
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = self._existing_file()
        self._key_ids: dict[tuple[str, str, str], int] = {}
        # (model, version) -> its feature names (rebuilt when one is added: that is rare)
        self._by_model: dict[tuple[str, str], frozenset[str]] = {}
        self._max_key_id = 0
        self._keys_gen: str | None = None
        try:
            self._db = sqlite3.connect(
                ":memory:" if self.path is None else str(self.path),
                check_same_thread=False, isolation_level=None, timeout=30.0)
            if existing:
                self._check_pages()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute("BEGIN IMMEDIATE")  # two processes may open one new file at once
            try:
                self._db.execute(META)
                row = self._db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
                if row is not None and row[0] == "1":
                    self._migrate_v1()
                elif row is None or row[0] == SCHEMA_VERSION:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    if row is None:
                        self._db.execute("INSERT INTO meta VALUES ('schema', ?)",
                                         (SCHEMA_VERSION,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if row is None or row[0] in ("1", SCHEMA_VERSION):
                with self._lock:
                    self._refresh_keys()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise CollectorConfigError(
                f"window store {self.path} is not a usable SQLite database ({exc}); "
                f"move it aside (mv {self.path} {self.path}.damaged; the service then starts "
                "with empty windows) or pass another --state path") from exc
        if row is not None and row[0] not in ("1", SCHEMA_VERSION):
            self._close_quietly()
            raise CollectorConfigError(
                f"window store {self.path} has schema {row[0]}, this benchwatch writes "
                f"{SCHEMA_VERSION}; move it aside or pass another --state path")

    def _existing_file(self) -> bool:
        """Whether `path` holds a store to check; a 0-byte file (no write-ahead log beside it)
        is said in the log and started as a new store, never silently."""
        assert self.path is not None
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return False
        if size > 0:
            return True
        wal = self.path.with_name(self.path.name + "-wal")
        if not (wal.exists() and wal.stat().st_size > 0):
            log.warning("window store %s is empty (0 bytes): starting a new store there; if it "
                        "should hold windows, stop and restore it from a copy", self.path)
        return False

    def _check_pages(self) -> None:
        """Read every page once (`PRAGMA quick_check`: 0.4-1 s per 170 MB, warm-cold) so that a damaged
        file is refused at open with its name, not found mid-evaluation as a traceback."""
        rows = self._db.execute("PRAGMA quick_check(1)").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            first = " ".join(str(rows[0][0]).split())[:200]
            raise sqlite3.DatabaseError(f"damaged pages: {first}")

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass

    def _migrate_v1(self) -> None:
        """Schema 1 (one row per value) -> 2 (one row per window per batch), in the open
        transaction: windows keep their values and order, remembered ids their arrival order."""
        db = self._db
        db.execute("ALTER TABLE samples RENAME TO samples_v1")
        db.execute("ALTER TABLE windows ADD COLUMN n INTEGER NOT NULL DEFAULT 0")
        db.execute("DROP INDEX IF EXISTS samples_by_seq")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT INTO samples (received_seq, sample_id, model, version, ts, outputs) "
                   "SELECT received_seq, sample_id, model, version, ts, outputs FROM samples_v1")
        old: dict[int, Callable[[Any], Any]] = {
            _NUM: float, _STR: str, _NONE: lambda v: None,
            _VEC: lambda v: tuple(float(x) for x in json.loads(v))}
        key_ids = [r[0] for r in db.execute("SELECT key_id FROM windows")]
        for key_id in key_ids:
            rows = db.execute("SELECT kind, value, ts FROM vals WHERE key_id = ? ORDER BY seq",
                              (key_id,)).fetchall()
            if rows:
                kind, data = _chunk([old[k](v) for k, v, _ in rows])
                db.execute("INSERT INTO chunks (key_id, n, kind, data, ts) VALUES (?, ?, ?, ?, ?)",
                           (key_id, len(rows), kind, data, rows[-1][2]))
                db.execute("UPDATE windows SET n = ? WHERE key_id = ?", (len(rows), key_id))
        db.execute("DROP TABLE vals")
        db.execute("DROP TABLE samples_v1")
        db.execute("UPDATE meta SET v = ? WHERE k = 'schema'", (SCHEMA_VERSION,))
        log.info("window store %s migrated from schema 1 to %s", self.path, SCHEMA_VERSION)

    def _refresh_keys(self) -> None:
        """Re-read every window key (at open, and after a reset or rollback); locked."""
        self._keys_gen = self._read_keys_gen()
        self._key_ids = {}
        self._by_model = {}
        self._max_key_id = 0
        self._learn_keys(self._db.execute(
            "SELECT key_id, model, version, feature FROM windows ORDER BY key_id"))

    def _learn_keys(self, rows: Iterable[tuple[int, str, str, str]]) -> None:
        grown: dict[tuple[str, str], set[str]] = {}
        for key_id, m, v, f in rows:
            self._key_ids[(m, v, f)] = key_id
            grown.setdefault((m, v), set()).add(f)
            self._max_key_id = max(self._max_key_id, key_id)
        for mv, names in grown.items():
            self._by_model[mv] = self._by_model.get(mv, frozenset()) | names

    def _read_keys_gen(self) -> str:
        row = self._db.execute("SELECT v FROM meta WHERE k = 'keys_gen'").fetchone()
        return "0" if row is None else str(row[0])

    def _sync_keys(self) -> None:
        """Catch up with keys other processes sharing the file added or removed: two indexed
        lookups, not a scan of every key; locked."""
        if self._read_keys_gen() != self._keys_gen:
            self._refresh_keys()
            return
        top = self._db.execute("SELECT MAX(key_id) FROM windows").fetchone()[0]
        if top is not None and top > self._max_key_id:
            self._learn_keys(self._db.execute(
                "SELECT key_id, model, version, feature FROM windows WHERE key_id > ? "
                "ORDER BY key_id", (self._max_key_id,)))

    # -- writing ---------------------------------------------------------------------------
    def add(self, samples: Sequence[tuple[str, str, str, float, Mapping[str, Feature],
                                          Mapping[str, Feature]]]) -> tuple[int, int]:
        """Store validated samples atomically; returns (accepted, duplicates).

        Each item is `(sample_id, model, version, timestamp, outputs, features)` where
        `features` is the flat name -> value mapping to append to the windows.
        """
        accepted = duplicates = 0
        # a chunk is stamped with its arrival time (the store's clock, not the sender's): reads
        # can age windows by time (`newer_than`) whatever the senders' clocks say
        arrived = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                # read under the write lock: another process may share the file
                recv_seq = int(db.execute(
                    "SELECT COALESCE(MAX(received_seq), 0) FROM samples").fetchone()[0])
                self._sync_keys()
                existing = self._known_ids([item[0] for item in samples])
                sample_rows: list[tuple[Any, ...]] = []
                windows: dict[tuple[str, str, str], list[Any]] = {}
                for sample_id, model, version, ts, outputs, features in samples:
                    if sample_id in existing:
                        duplicates += 1
                        continue
                    existing.add(sample_id)
                    accepted += 1
                    recv_seq += 1
                    sample_rows.append((recv_seq, sample_id, model, version, ts,
                                        _outputs_json(outputs)))
                    for name, value in features.items():
                        key = (model, version, name)
                        vals = windows.get(key)
                        if vals is None:
                            vals = windows[key] = []
                        vals.append(value)
                db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)", sample_rows)
                chunk_rows = []
                for key, vals in windows.items():
                    kind, data = _chunk(vals)
                    chunk_rows.append((self._key_id(*key), len(vals), kind, data, arrived))
                db.executemany("INSERT INTO chunks (key_id, n, kind, data, ts) "
                               "VALUES (?, ?, ?, ?, ?)", chunk_rows)
                for key_id, n, *_ in chunk_rows:
                    total = db.execute("UPDATE windows SET n = n + ? WHERE key_id = ? RETURNING n",
                                       (n, key_id)).fetchone()[0]
                    if total >= self._prune_at:
                        self._prune(key_id)
                if accepted and recv_seq > self.max_sample_ids:
                    db.execute("DELETE FROM samples WHERE received_seq <= ?",
                               (recv_seq - self.max_sample_ids,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._refresh_keys()  # the cache may name rows the rollback removed
                raise
        return accepted, duplicates

    def _known_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` the store already remembers (checked under the write lock, so the
        check and the insert that follows are atomic even across processes)."""
        found: set[str] = set()
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            found.update(r[0] for r in self._db.execute(
                f"SELECT sample_id FROM samples WHERE sample_id IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk))
        return found

    def _key_id(self, model: str, version: str, feature: str) -> int:
        key = (model, version, feature)
        key_id = self._key_ids.get(key)
        if key_id is None:
            cur = self._db.execute(
                "INSERT INTO windows (model, version, feature) VALUES (?, ?, ?)", key)
            key_id = int(cur.lastrowid or 0)
            self._learn_keys([(key_id, model, version, feature)])
        return key_id

    def _prune(self, key_id: int) -> None:
        """Drop the chunks wholly older than the window's newest `max_per_feature` values.

        Run only once a window holds `_prune_at` values (1.5x its bound), so its cost (a scan
        of the window's chunks) is paid once per ~max/2 values, not per batch; reads trim."""
        db = self._db
        db.execute(
            "DELETE FROM chunks WHERE key_id = ?1 AND seq < (SELECT seq FROM ("
            "SELECT seq, SUM(n) OVER (ORDER BY seq DESC) AS kept FROM chunks WHERE key_id = ?1)"
            " WHERE kept >= ?2 LIMIT 1)", (key_id, self.max_per_feature))
        db.execute("UPDATE windows SET n = (SELECT COALESCE(SUM(n), 0) FROM chunks "
                   "WHERE key_id = ?1) WHERE key_id = ?1", (key_id,))

    # -- reading ---------------------------------------------------------------------------
    def _window(self, model: str, version: str, feature: str, after: int = 0,
                newer_than: float | None = None) -> tuple[list[Feature], int]:
        """(values newer than position `after` still in the window, last position); locked.
        With `newer_than` (unix seconds), only chunks that arrived after it."""
        key_id = self._key_ids.get((model, version, feature))
        if key_id is None:
            self._sync_keys()
            key_id = self._key_ids.get((model, version, feature))
        if key_id is None:
            return [], after
        rows = self._db.execute(
            "SELECT seq, n, kind, data FROM chunks WHERE key_id = ? AND seq >= ? AND ts > ? "
            "ORDER BY seq",
            (key_id, after >> _POS_BITS, -math.inf if newer_than is None else newer_than)
        ).fetchall()
        if not rows:
            return [], after
        values: list[Feature] = []
        for seq, n, kind, data in rows:
            chunk = _unchunk(kind, data)
            first = seq << _POS_BITS
            if first + n - 1 > after:
                values.extend(chunk if first > after else chunk[after - first + 1:])
        last = (rows[-1][0] << _POS_BITS) + rows[-1][1] - 1
        # the window is the key's newest max_per_feature values (older chunks linger until the
        # next prune); the values newer than `after` are a suffix of all values, so trim alike
        cap = self.max_per_feature
        return (values[-cap:] if len(values) > cap else values), max(last, after)

    def values(self, model: str, version: str, feature: str,
               newer_than: float | None = None) -> list[Feature]:
        """The window's values, oldest first (at most `max_per_feature`); with `newer_than`
        (unix seconds) only those that arrived after it, so a window ages out by time as well
        as by count (the drift service passes now - max_age)."""
        with self._lock:
            return self._window(model, version, feature, newer_than=newer_than)[0]

    def values_since(self, model: str, version: str, feature: str, after: int = 0
                     ) -> tuple[list[Feature], int]:
        """Values added after position `after` (still in the window), oldest first, and the
        position to pass next time (for streaming detectors that see each value once)."""
        with self._lock:
            return self._window(model, version, feature, after)

    def count(self, model: str, version: str, feature: str) -> int:
        with self._lock:
            key_id = self._key_ids.get((model, version, feature))
            if key_id is None:
                return 0
            row = self._db.execute("SELECT n FROM windows WHERE key_id = ?", (key_id,)).fetchone()
            return 0 if row is None else min(int(row[0]), self.max_per_feature)

    def features(self, model: str, version: str) -> list[str]:
        return sorted(self.feature_set(model, version))

    def feature_set(self, model: str, version: str) -> frozenset[str]:
        """The features (model, version) has windows for; cheap (no copy, no scan)."""
        with self._lock:
            self._sync_keys()
            return self._by_model.get((model, version), frozenset())

    def model_count(self) -> int:
        """How many (model, version) pairs have windows."""
        with self._lock:
            self._sync_keys()
            return len(self._by_model)

    def keys(self) -> list[tuple[str, str, str]]:
        with self._lock:
            self._sync_keys()
            return sorted(self._key_ids)

    def samples(self, sample_ids: Iterable[str]) -> dict[str, StoredSample]:
        """Accepted samples still remembered, by id (unknown or pruned ids are absent)."""
        ids = list(dict.fromkeys(sample_ids))
        found: dict[str, StoredSample] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for sid, m, v, ts, outputs in self._db.execute(
                        f"SELECT sample_id, model, version, ts, outputs FROM samples "  # noqa: S608
                        f"WHERE sample_id IN ({marks})", chunk):
                    raw = json.loads(outputs)
                    found[sid] = StoredSample(sid, m, v, ts, {
                        k: tuple(x) if isinstance(x, list) else x for k, x in raw.items()})
        return found

    def sample_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    # -- housekeeping ----------------------------------------------------------------------
    def reset(self, model: str | None = None, version: str | None = None,
              feature: str | None = None) -> None:
        """Empty the windows matching the given parts (all windows when none is given).

        Remembered sample ids are kept, so a redelivery after a reset is still a duplicate.
        """
        with self._lock:
            self._sync_keys()
            doomed = [(key, k) for key, k in self._key_ids.items()
                      if (model is None or key[0] == model)
                      and (version is None or key[1] == version)
                      and (feature is None or key[2] == feature)]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for _key, key_id in doomed:
                    self._db.execute("DELETE FROM chunks WHERE key_id = ?", (key_id,))
                    self._db.execute("DELETE FROM windows WHERE key_id = ?", (key_id,))
                if doomed:  # tell other processes sharing the file to re-read the keys
                    self._db.execute(
                        "INSERT INTO meta VALUES ('keys_gen', '1') ON CONFLICT (k) DO UPDATE "
                        "SET v = CAST(CAST(v AS INTEGER) + 1 AS TEXT)")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._refresh_keys()

    def meta_get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = ?", (f"x:{key}",)).fetchone()
        return None if row is None else str(row[0])

    def meta_set(self, key: str, value: str) -> None:
        """Small durable key/value pairs for services built on the store (e.g. drift state)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"x:{key}", value))

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:  # already closed
                pass

    def __enter__(self) -> WindowStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
