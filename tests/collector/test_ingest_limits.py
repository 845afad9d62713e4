"""Nothing one sender can do to ingest grows the store without bound or costs the batch
(issue 16, findings 2, 3 and 5): a lone surrogate costs its sample only, unknown models and
features are capped or refused and counted, and requests are capped in samples before the
full parse. Real HTTP server on loopback, real SQLite store."""

from __future__ import annotations

import http.client
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch.cli import collector as collector_cli
from collector import Collector, WindowStore, http_server, ingest
from collector.http_server import ingest_server

SURROGATE = "x\udc80"


def sample(model: str = "digits", version: str = "v3", **outputs: Any) -> dict[str, Any]:
    return {"model": model, "version": version, "sample_id": uuid.uuid4().hex,
            "timestamp": 1.7e9, "outputs": outputs or {"confidence": 0.5}}


def post(port: int, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/samples", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    store = WindowStore(tmp_path / "w.sqlite")
    collector = Collector(store)
    server = ingest_server(collector, port=0).start()
    server.collector = collector  # type: ignore[attr-defined]
    yield server
    server.stop()
    store.close()


# -- finding 2: a lone surrogate costs its own sample, not the batch ----------------------------
@pytest.mark.parametrize("where", ["sample_id", "model", "feature name", "feature value",
                                   "input name"])
def test_a_lone_surrogate_rejects_its_sample_alone(served: Any, where: str) -> None:
    good = [sample(confidence=i / 100) for i in range(99)]
    bad = sample()
    if where == "sample_id":
        bad["sample_id"] = SURROGATE
    elif where == "model":
        bad["model"] = SURROGATE
    elif where == "feature name":
        bad["outputs"] = {SURROGATE: 1.0}
    elif where == "feature value":
        bad["outputs"] = {"predicted_class": SURROGATE}
    else:
        bad["inputs"] = {SURROGATE: 1.0}
    body = json.dumps({"samples": [*good[:50], bad, *good[50:]]}).encode()  # \udc80 escaped
    assert b"\\udc80" in body
    status, report = post(served.port, body)
    assert (status, report) == (200, {"accepted": 99, "duplicates": 0,
                                      "rejected": {"invalid_text": 1}})
    assert len(served.collector.store.values("digits", "v3", "confidence")) == 99


def test_surrogates_in_sample_objects_are_rejected_too() -> None:
    from probes.samples import Sample

    collector = Collector(WindowStore(None))
    report = collector.ingest([Sample("m", "v", SURROGATE, 1.0, {"a": 1.0}),
                               Sample("m", "v", "ok", 1.0, {SURROGATE: 1.0}),
                               Sample("m", "v", "ok2", 1.0, {"a": 1.0})])
    assert (report.accepted, dict(report.rejected)) == (1, {"invalid_text": 2})


def test_non_ascii_text_still_takes_the_generic_path_and_is_stored() -> None:
    collector = Collector(WindowStore(None))
    report = collector.ingest([sample(model="ñandú", **{"clase": "gato 🐈"})])
    assert report.accepted == 1
    assert collector.store.values("ñandú", "v3", "clase") == ["gato 🐈"]


# -- finding 3: models and features are capped (collector) -----------------------------------------
def test_unknown_feature_names_cannot_grow_the_store_without_limit(served: Any) -> None:
    """The attack: 1 000 samples, each with 256 new feature names (256 000 windows before)."""
    flood = [sample(**{f"f{i}_{j}": 1.0 for j in range(256)}) for i in range(1000)]
    for start in range(0, len(flood), 100):
        assert post(served.port, json.dumps({"samples": flood[start:start + 100]}).encode())[0] == 200
    store = served.collector.store
    assert len(store.keys()) <= ingest.DEFAULT_MAX_FEATURES
    totals = served.collector.totals()
    assert totals.accepted == 1
    assert totals.rejected == {"too_many_features": 999}
    # the model's windows keep being fed
    status, report = post(served.port, json.dumps({"samples": [
        sample(**{"f0_0": 2.0, "f0_1": 3.0})]}).encode())
    assert (status, report["accepted"]) == (200, 1)


def test_unknown_models_are_capped_and_counted(served: Any) -> None:
    flood = [sample(model=f"m{i}") for i in range(3 * ingest.DEFAULT_MAX_MODELS)]
    status, report = post(served.port, json.dumps({"samples": flood}).encode())
    assert status == 200
    assert report["accepted"] == ingest.DEFAULT_MAX_MODELS
    assert report["rejected"] == {"too_many_models": 2 * ingest.DEFAULT_MAX_MODELS}
    assert served.collector.store.model_count() == ingest.DEFAULT_MAX_MODELS
    status, report = post(served.port, json.dumps({"samples": [sample(model="m0")]}).encode())
    assert report["accepted"] == 1  # a model that has windows keeps them fed


def test_caps_are_configurable_and_checked() -> None:
    collector = Collector(WindowStore(None), max_models=2, max_features=3)
    report = collector.ingest([sample(model="a", x=1.0, y=1.0, z=1.0),
                               sample(model="a", w=1.0),
                               sample(model="b"), sample(model="c")])
    assert (report.accepted, dict(report.rejected)) == (
        2, {"too_many_features": 1, "too_many_models": 1})
    uncapped = Collector(WindowStore(None), max_models=None, max_features=None)
    assert uncapped.ingest([sample(model=f"m{i}", **{f"f{i}": 1.0}) for i in range(100)]
                           ).accepted == 100
    with pytest.raises(ingest.CollectorConfigError, match="max_models"):
        Collector(WindowStore(None), max_models=0)


def test_allowed_features_refuse_the_rest() -> None:
    collector = Collector(WindowStore(None), features=lambda m, v: ("confidence",))
    report = collector.ingest([sample(confidence=0.5), sample(confidence=0.5, extra=1.0)])
    assert (report.accepted, dict(report.rejected)) == (1, {"unknown_feature": 1})
    assert collector.store.keys() == [("digits", "v3", "confidence")]


def test_a_store_already_over_the_caps_keeps_working_without_scanning_its_windows(
        tmp_path: Path) -> None:
    """A store flooded before the caps existed: its windows stay (remove them with
    `WindowStore.reset`), the model's existing windows keep being fed, no new feature is
    added, and a batch costs no read of every window key (it used to: ~800 ms per batch at
    256 000 windows)."""
    path = tmp_path / "flooded.sqlite"
    with WindowStore(path) as old:
        for start in range(0, 5000, 500):
            old.add([(uuid.uuid4().hex, "digits", "v3", 1.0, {}, {f"junk{start + i}": 1.0})
                     for i in range(500)])
        old.add([("first", "digits", "v3", 1.0, {}, {"confidence": 0.5})])
    store = WindowStore(path)
    collector = Collector(store)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    report = collector.ingest([sample(confidence=0.7), sample(confidence=0.7, new=1.0)])
    store._db.set_trace_callback(None)
    assert (report.accepted, dict(report.rejected)) == (1, {"too_many_features": 1})
    assert store.values("digits", "v3", "confidence") == [0.5, 0.7]
    scans = [s for s in statements if "FROM windows" in s and "WHERE" not in s
             and "MAX(key_id)" not in s]
    assert scans == [], f"a batch read every window key: {scans}"
    store.reset("digits", "v3")  # what an operator does to drop the junk
    assert store.feature_set("digits", "v3") == frozenset()
    assert collector.ingest([sample(confidence=0.1, new=1.0)]).accepted == 1
    store.close()


def test_two_stores_on_one_file_see_each_others_keys_and_resets(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    a, b = WindowStore(path), WindowStore(path)
    a.add([("s1", "m", "v", 1.0, {}, {"x": 1.0})])
    assert b.feature_set("m", "v") == {"x"}
    b.add([("s2", "m", "v", 1.0, {}, {"x": 2.0, "y": 3.0})])  # x: the key a created
    assert a.values("m", "v", "x") == [1.0, 2.0] and a.features("m", "v") == ["x", "y"]
    a.reset("m", "v", "x")
    assert b.features("m", "v") == ["y"]
    b.add([("s3", "m", "v", 1.0, {}, {"x": 4.0})])  # recreated under a new key id
    assert a.values("m", "v", "x") == [4.0]
    a.close()
    b.close()


def test_cli_defaults_are_the_collectors() -> None:
    assert collector_cli.DEFAULT_MAX_MODELS == ingest.DEFAULT_MAX_MODELS
    assert collector_cli.DEFAULT_MAX_FEATURES == ingest.DEFAULT_MAX_FEATURES
    assert collector_cli.DEFAULT_MAX_SAMPLES == http_server.DEFAULT_MAX_SAMPLES


# -- finding 5: samples per request are capped before the full parse -----------------------------
def test_too_many_samples_get_a_413_saying_the_cap(served: Any) -> None:
    cap = http_server.DEFAULT_MAX_SAMPLES
    status, answer = post(served.port, json.dumps({"samples": [sample()] * (cap + 1)}).encode())
    assert status == 413
    assert str(cap) in answer["error"] and "split the batch" in answer["error"]
    assert served.collector.totals().accepted == 0
    at_cap = [sample(confidence=float(x)) for x in np.linspace(0, 1, cap)]
    status, report = post(served.port, json.dumps({"schema_version": 1,
                                                   "samples": at_cap}).encode())
    assert (status, report["accepted"]) == (200, cap)


def test_eight_mib_of_tiny_items_is_refused_without_building_them(served: Any) -> None:
    """The attack: an 8 MiB body of 2.8 M tiny items (33 s of CPU and +200 MB before)."""
    tiny = b'{"samples":[' + b",".join([b"{}"] * 2_700_000) + b"]}"
    assert len(tiny) <= http_server.DEFAULT_MAX_BODY
    status, answer = post(served.port, tiny)
    assert status == 413 and "samples" in answer["error"]
    # the same items in a field the envelope refuses: refused before its value is parsed
    elsewhere = b'{"padding":[' + b",".join([b"{}"] * 2_700_000) + b'],"samples":[]}'
    status, answer = post(served.port, elsewhere)
    assert status == 400 and "padding" in answer["error"]
    assert post(served.port, json.dumps({"samples": [sample()]}).encode())[0] == 200


@pytest.mark.parametrize("body", [
    b'{"samples":[{"a":1,"b":2,"c":3}]}',
    b' {"samples" : [ {"a":[1,2]} , {"b":[3,4]} ] , "schema_version" : 1 } ',
    b'\n{\t"samples"\r:\n[\n{"a":1,"b":2,"c":3}\n]\n}\n',
    b'{"samples":[],"samples":[{"a":1,"b":2,"c":3}]}',
    b'{"samples":[Infinity,{"a":1,"b":2}]}',
    b'\xef\xbb\xbf{"samples":[{"a":1,"b":2,"c":3}]}',
    b'{"samples":[{"a":"\\ud800","b":2,"c":3}]}',
    b'{"samples":[{"a":1,"b":2,"c":3}]',
    b'{"samples":[{"a":1,"b":2,"c":3}]} x',
    b'{"samples":[1,,2]}',
    b'{"samples":[1,2],}',
    b'{1:[1,2,3]}',
    b'{"schema_version":[1,2,3],"samples":[]}',
    b'{"samples":{"a":1,"b":2,"c":3}}',
    b'[1,2,3,4]',
    b'{"samples":[' + b"[" * 5000 + b"]" * 5000 + b',{"a":1,"b":2}]}',
])
def test_the_bounded_parser_reads_what_json_loads_reads(body: bytes) -> None:
    """The item-by-item parser (taken when the body has at least `cap` commas) returns what
    json.loads returns, refuses (400) what json.loads refuses, and refuses (400) what the
    envelope would refuse anyway without parsing it."""
    parse = http_server.samples_parser(2)
    assert body.count(b",") >= 2  # the bounded path, not the plain json.loads
    try:
        expected: Any = json.loads(body)
    except (ValueError, RecursionError):
        expected = ValueError
    try:
        got: Any = parse(body)
    except (ValueError, RecursionError):
        got = ValueError
    except http_server.RequestRefused as e:
        assert e.status == 400 and ingest.envelope_problem(expected) is not None, e.message
        return
    assert got == expected


def test_the_bounded_parser_stops_at_the_cap() -> None:
    with pytest.raises(http_server.RequestRefused) as e:
        http_server.samples_parser(2)(b'{"samples":[1,2,3]}')
    assert e.value.status == 413
    assert http_server.samples_parser(3)(b'{"samples":[1,2,3]}') == {"samples": [1, 2, 3]}


# -- the drift service refuses features its baselines do not know -------------------------------
def test_drift_service_refuses_features_its_baseline_does_not_know(tmp_path: Path) -> None:
    from drift import Baseline
    from drift.service.engine import DriftService, ServiceConfig

    rng = np.random.default_rng(0)
    Baseline.build("digits", "v3", {"confidence": rng.beta(8, 1, 300)}).save(
        tmp_path / "b" / "digits-v3.json")
    svc = DriftService(ServiceConfig(tmp_path / "b", tmp_path / "w.sqlite", metrics_port=0,
                                     ingest_port=0, interval_s=3600)).start()
    try:
        assert svc.url is not None
        port = int(svc.url.rsplit(":", 1)[1])
        flood = [sample(confidence=0.5, **{f"junk{i}": 1.0}) for i in range(500)]
        status, report = post(port, json.dumps({"samples": [sample(confidence=0.5), *flood]}
                                               ).encode())
        assert (status, report["accepted"], report["rejected"]) == (
            200, 1, {"unknown_feature": 500})
        assert svc.store.keys() == [("digits", "v3", "confidence")]
        cap = http_server.DEFAULT_MAX_SAMPLES
        assert post(port, json.dumps({"samples": [sample()] * (cap + 1)}).encode())[0] == 413
    finally:
        svc.stop()


def test_sqlite_is_given_no_lone_surrogate(tmp_path: Path) -> None:
    """What finding 2 was: SQLite refuses such text, and that refusal used to cost the batch."""
    db = sqlite3.connect(":memory:")
    with pytest.raises(UnicodeEncodeError):
        db.execute("SELECT ?", (SURROGATE,))
    collector = Collector(WindowStore(tmp_path / "s.sqlite"))
    report = collector.ingest([sample(), {**sample(), "sample_id": SURROGATE}])
    assert (report.accepted, dict(report.rejected)) == (1, {"invalid_text": 1})
