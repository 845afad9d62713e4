"""HTTP ingest body versioning: an unknown schema_version or top-level field is refused with a
clear 400 (and nothing is stored), the current format (with or without schema_version 1) works."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from benchwatch.services import free_port
from collector import Collector, WindowStore
from collector.http_server import ingest_server
from probes.samples import Sample
from probes.sinks.http import HttpSink


@pytest.fixture
def server() -> Iterator[Any]:
    store = WindowStore(None)
    srv = ingest_server(Collector(store), port=free_port())
    srv.start()
    srv.store = store  # type: ignore[attr-defined]
    yield srv
    srv.stop()
    store.close()


def post(port: int, payload: object) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/samples", json.dumps(payload).encode(),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def samples(*ids: str) -> list[dict[str, Any]]:
    return [Sample("digits", "v3", i, 1.0, {"confidence": 0.5}).to_dict() for i in ids]


@pytest.mark.parametrize(("extra", "says"), [
    ({"schema_version": 2}, "schema_version 2 is not supported"),
    ({"schema_version": "1"}, "schema_version 1 is not supported"),
    ({"schema_version": True}, "is not supported"),
    ({"schema_version": None}, "is not supported"),
    ({"format": "v2"}, "unknown top-level field 'format'"),
])
def test_unknown_versions_and_fields_are_refused_and_nothing_is_stored(
        server: Any, extra: dict[str, Any], says: str) -> None:
    status, body = post(server.port, {"samples": samples("a", "b"), **extra})
    assert status == 400
    assert says in body["error"]
    assert server.store.sample_count() == 0
    assert server.store.keys() == []


@pytest.mark.parametrize("extra", [{}, {"schema_version": 1}])
def test_the_current_format_is_accepted_with_or_without_its_version(
        server: Any, extra: dict[str, Any]) -> None:
    assert post(server.port, {"samples": samples("a", "b"), **extra}) == (
        200, {"accepted": 2, "duplicates": 0, "rejected": {}})
    assert server.store.values("digits", "v3", "confidence") == [0.5, 0.5]


def test_the_probes_http_sink_still_speaks_an_accepted_format(server: Any) -> None:
    sink = HttpSink(server.url)
    sink.send([Sample("digits", "v3", "s1", 1.0, {"confidence": 0.25})])
    sink.close()
    assert server.store.values("digits", "v3", "confidence") == [0.25]
