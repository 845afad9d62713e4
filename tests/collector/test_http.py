"""HTTP ingest (real server on loopback) and the probe-side HttpSink talking to it."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from benchwatch.services import free_port
from collector import Collector, WindowStore
from collector.errors import CollectorConfigError
from collector.http_server import ingest_server
from probes.samples import Sample
from probes.sinks.http import HttpSink, HttpSinkError


@pytest.fixture
def server() -> Iterator[Any]:
    store = WindowStore(None)
    srv = ingest_server(Collector(store), port=free_port(), token="s3cret", max_body=64_000)
    srv.start()
    srv.store = store  # type: ignore[attr-defined]
    yield srv
    srv.stop()
    store.close()


def post(port: int, body: bytes, headers: dict[str, str] | None = None,
         path: str = "/v1/samples", method: str = "POST") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


AUTH = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}


def batch(*ids: str) -> bytes:
    return json.dumps({"samples": [
        Sample("digits", "v3", i, 1.0, {"confidence": 0.5}).to_dict() for i in ids]}).encode()


def test_ingest_answers_with_the_report_and_stores_once(server: Any) -> None:
    assert post(server.port, batch("a", "b"), AUTH) == (
        200, {"accepted": 2, "duplicates": 0, "rejected": {}})
    assert post(server.port, batch("b", "c"), AUTH)[1]["duplicates"] == 1
    assert server.store.values("digits", "v3", "confidence") == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(("body", "headers", "status", "says"), [
    (b"{}", {"Content-Type": "application/json"}, 401, "bearer token"),
    (b"{}", {"Authorization": "Bearer wrong"}, 401, "bearer token"),
    (b"{not json", AUTH, 400, "not valid JSON"),
    (b"[1, 2]", AUTH, 400, '{"samples"'),
    (b'{"samples": 5}', AUTH, 400, '{"samples"'),
    (b"x" * 70_000, AUTH, 413, "over the limit"),
    (b"{}", {**AUTH, "Content-Type": "text/plain"}, 415, "application/json"),
    (b"[" * 50_000 + b"]" * 50_000, AUTH, 413, "over the limit"),
    (b"[" * 20_000 + b"]" * 20_000, AUTH, 400, "JSON"),
])
def test_bad_requests_get_a_4xx_with_a_clear_error(server: Any, body: bytes,
                                                   headers: dict[str, str], status: int,
                                                   says: str) -> None:
    got, payload = post(server.port, body, headers)
    assert got == status, payload
    assert says in payload["error"]
    assert post(server.port, b"", path="/healthz", method="GET")[0] == 200


def test_unknown_paths_and_methods(server: Any) -> None:
    assert post(server.port, b"{}", AUTH, path="/nope")[0] == 404
    assert post(server.port, b"", AUTH, method="GET")[0] == 405


def test_refuses_to_listen_beyond_loopback_without_a_token() -> None:
    with pytest.raises(CollectorConfigError, match="without a token"):
        ingest_server(Collector(WindowStore(None)), host="0.0.0.0", port=0)
    # with a token it may; nothing is started here


def test_binds_loopback_by_default() -> None:
    srv = ingest_server(Collector(WindowStore(None)), port=0).start()
    try:
        assert srv._server is not None and srv._server.server_address[0] == "127.0.0.1"
    finally:
        srv.stop()


def test_http_sink_delivers_and_retries_are_idempotent(server: Any) -> None:
    sink = HttpSink(server.url, token="s3cret", max_batch=3)
    samples = [Sample.new("digits", "v3", {"confidence": 0.1 * i}) for i in range(7)]
    sink.send(samples)
    sink.send(samples)  # a retry of everything: all duplicates
    assert sink.last_report == {"accepted": 0, "duplicates": 1, "rejected": {}}
    assert len(server.store.values("digits", "v3", "confidence")) == 7
    assert sink.sent == 14


def test_http_sink_raises_the_collectors_error_on_4xx(server: Any) -> None:
    with pytest.raises(HttpSinkError, match="401.*bearer token"):
        HttpSink(server.url, token="nope").send([Sample.new("m", "v", {"x": 1.0})])


def test_http_sink_gives_up_on_an_unreachable_collector() -> None:
    sink = HttpSink(f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.01, timeout_s=1)
    with pytest.raises(HttpSinkError, match="unreachable after 2 tries"):
        sink.send([Sample.new("m", "v", {"x": 1.0})])


def test_http_sink_refuses_a_bad_url() -> None:
    with pytest.raises(ValueError, match="http"):
        HttpSink("ftp://x")


def test_from_url_picks_the_http_sink() -> None:
    from probes.sinks import from_url

    sink = from_url("http://127.0.0.1:9466")
    assert isinstance(sink, HttpSink) and sink.url.endswith("/v1/samples")
