"""Fuzzing the collector's HTTP ingest (real server on loopback, real SQLite WAL store).

Whatever arrives — random bytes, arbitrary JSON, near-valid samples with one thing wrong, huge
bodies, deep nesting, unknown schema fields — the answer is 200 with an exact report or a 4xx
with an error message, the server keeps answering, and every accepted sample is stored intact
exactly once.
"""

from __future__ import annotations

import http.client
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import Collector, WindowStore
from collector.http_server import ingest_server

MAX_BODY = 256 * 1024
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


class Ingest:
    def __init__(self, tmp: Path) -> None:
        self.store = WindowStore(tmp / "spool.sqlite")
        self.collector = Collector(self.store)
        self.server = ingest_server(self.collector, port=0, max_body=MAX_BODY).start()
        self.accepted_ids: dict[str, dict[str, Any]] = {}

    def post(self, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        try:
            conn.request("POST", "/v1/samples", body, {"Content-Type": content_type})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(raw) if raw else None

    def healthy(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    svc = Ingest(tmp_path_factory.mktemp("ingest"))
    yield svc
    svc.server.stop()
    svc.store.close()


def check_answer(status: int, payload: Any) -> None:
    assert status == 200 or 400 <= status < 500, f"status {status}: {payload}"
    if status != 200:
        assert isinstance(payload, dict) and isinstance(payload.get("error"), str) \
            and payload["error"], f"4xx without a clear error: {payload}"


def valid_sample(rng_value: float, cls: int) -> dict[str, Any]:
    return {"model": "digits", "version": "v1", "sample_id": uuid.uuid4().hex,
            "timestamp": 1_700_000_000.0 + rng_value,
            "outputs": {"predicted_class": str(cls), "confidence": rng_value % 1.0}}


# -- bad-sample generators: each returns a sample that must be rejected -------------------------
def _drop(field: str) -> Any:
    return lambda s: {k: v for k, v in s.items() if k != field}


def _set(field: str, value: Any) -> Any:
    return lambda s: {**s, field: value}


def _output(value: Any) -> Any:
    return lambda s: {**s, "outputs": {**s["outputs"], "confidence": value}}


MUTATIONS = {
    "no model": _drop("model"),
    "no sample_id": _drop("sample_id"),
    "no outputs": _drop("outputs"),
    "model is a number": _set("model", 7),
    "model empty": _set("model", ""),
    "model huge": _set("model", "m" * 10_000),
    "timestamp string": _set("timestamp", "yesterday"),
    "timestamp bool": _set("timestamp", True),
    "outputs a list": _set("outputs", [1, 2, 3]),
    "unknown schema field": _set("schema_version", 99),
    "output NaN": _output(math.nan),
    "output inf": _output(math.inf),
    "output object": _output({"nested": 1}),
    "output bool": _output(True),
    "output huge string": _output("x" * 100_000),
    "output huge vector": _output([0.5] * 50_000),
    "vector with a string": _output([0.5, "a"]),
    "too many features": _set("outputs", {f"f{i}": 1.0 for i in range(1000)}),
    "latency negative": _set("latency_s", -1.0),
    # a lone surrogate (a JSON escape) used to cost the whole batch (issue 16, finding 2)
    "sample_id lone surrogate": _set("sample_id", "x\udc80"),
    "model lone surrogate": _set("model", "\ud800digits"),
    "feature name lone surrogate": lambda s: {**s, "outputs": {**s["outputs"], "x\udc80": 1.0}},
    "category lone surrogate": lambda s: {**s, "outputs": {**s["outputs"],
                                                           "predicted_class": "\udfff"}},
}

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                           max_leaves=30)


@FUZZ
@given(body=st.binary(max_size=2048))
def test_random_bytes(ingest: Ingest, body: bytes) -> None:
    status, payload = ingest.post(body)
    check_answer(status, payload)


@FUZZ
@given(value=json_values)
def test_arbitrary_json(ingest: Ingest, value: Any) -> None:
    before = ingest.collector.totals().accepted
    status, payload = ingest.post(json.dumps(value).encode())
    check_answer(status, payload)
    assert ingest.collector.totals().accepted == before, "garbage was accepted as a sample"


@FUZZ
@given(value=json_values)
def test_arbitrary_json_as_samples(ingest: Ingest, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    before = ingest.collector.totals().accepted
    status, payload = ingest.post(json.dumps({"samples": items}).encode())
    check_answer(status, payload)
    assert status == 200, "a well-formed envelope with bad samples is answered with a report"
    assert payload["accepted"] == 0
    assert payload["duplicates"] + sum(payload["rejected"].values()) == len(items)
    assert ingest.collector.totals().accepted == before


@FUZZ
@given(
    batch=st.lists(
        st.tuples(st.floats(0, 1e6, allow_nan=False), st.integers(0, 9),
                  st.none() | st.sampled_from(sorted(MUTATIONS))),
        min_size=1, max_size=20),
)
def test_mixed_batches_keep_good_samples_intact(ingest: Ingest, batch: list[Any]) -> None:
    items, good = [], []
    for value, cls, mutation in batch:
        s = valid_sample(value, cls)
        if mutation is None:
            good.append(s)
            items.append(s)
        else:
            items.append(MUTATIONS[mutation](s))
    status, payload = ingest.post(json.dumps({"samples": items}).encode())
    if len(json.dumps({"samples": items})) > MAX_BODY:
        assert status == 413
        return
    assert status == 200, payload
    assert payload["accepted"] == len(good), payload
    assert sum(payload["rejected"].values()) == len(items) - len(good), payload
    stored = ingest.store.samples([s["sample_id"] for s in good])
    assert set(stored) == {s["sample_id"] for s in good}
    for s in good:
        got = stored[s["sample_id"]]
        assert (got.model, got.version, got.timestamp) == (s["model"], s["version"], s["timestamp"])
        assert dict(got.outputs) == s["outputs"]
    # redelivery of the same batch: nothing is counted twice
    status, again = ingest.post(json.dumps({"samples": items}).encode())
    assert status == 200 and again["accepted"] == 0 and again["duplicates"] == len(good), again


@pytest.mark.parametrize("body,expected", [
    (b"[" * 200_000, 400),  # deep nesting within the size limit
    (b'{"samples": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    (b'{"samples": [' + b'{"a": 1},' * 40_000 + b'{"a": 1}]}', 413),  # over the body limit
    (b'{"samples": [' + b"{}," * 60_000 + b"{}]}", 413),  # within it, over the sample cap
    (b"\xff\xfe\x00garbage", 400),
    (b'{"samples": "not a list"}', 400),
    (b"", 400),
])
def test_nasty_bodies(ingest: Ingest, body: bytes, expected: int) -> None:
    status, payload = ingest.post(body)
    assert status == expected, payload
    check_answer(status, payload)
    assert ingest.healthy()


def test_wrong_content_type_and_method(ingest: Ingest) -> None:
    status, payload = ingest.post(b"samples=1", content_type="application/x-www-form-urlencoded")
    assert status == 415 and "application/json" in payload["error"]
    conn = http.client.HTTPConnection("127.0.0.1", ingest.server.port, timeout=5)
    conn.request("GET", "/v1/samples")
    resp = conn.getresponse()
    assert resp.status == 405 and "POST" in json.loads(resp.read())["error"]
    conn.close()


def test_huge_declared_length_is_refused_without_reading(ingest: Ingest) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", ingest.server.port, timeout=5)
    conn.putrequest("POST", "/v1/samples")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(10 * 1024**3))  # claims 10 GiB, sends nothing
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "limit" in json.loads(resp.read())["error"]
    conn.close()
    assert ingest.healthy()


def test_service_still_serves_and_accepts_after_fuzzing(ingest: Ingest) -> None:
    s = valid_sample(0.25, 3)
    status, payload = ingest.post(json.dumps({"samples": [s]}).encode())
    assert status == 200 and payload["accepted"] == 1
    assert ingest.store.samples([s["sample_id"]])[s["sample_id"]].outputs["confidence"] == 0.25
    assert ingest.healthy()
