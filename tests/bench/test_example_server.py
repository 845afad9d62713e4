"""The example server's HTTP handling, in process (real sockets on loopback)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from benchwatch.bench.suites import load_suite
from benchwatch.example.server import ServerConfig, serve


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    state: dict[str, object] = {}
    ready = threading.Event()

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            state["loop"], state["stop"] = asyncio.get_running_loop(), stop
            await serve(ServerConfig(port=0, flip_fraction=0.0),
                        ready=lambda p: (state.update(port=p), ready.set()), stop=stop)

        asyncio.run(main())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(60)
    yield int(state["port"])  # type: ignore[call-overload]
    state["loop"].call_soon_threadsafe(state["stop"].set)  # type: ignore[attr-defined]
    t.join(10)
    assert not t.is_alive()


def request(port: int, raw: bytes, responses: int = 1) -> list[tuple[int, dict[str, object]]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        buf, out = b"", []
        while len(out) < responses:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while (end := buf.find(b"\r\n\r\n")) >= 0:
                head = buf[:end].decode()
                n = int(head.lower().split("content-length:")[1].split("\r\n")[0])
                if len(buf) < end + 4 + n:
                    break
                out.append((int(head.split()[1]), json.loads(buf[end + 4 : end + 4 + n])))
                buf = buf[end + 4 + n :]
        return out


def post(body: bytes, path: str = "/predict", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def test_predict_matches_the_model_and_keeps_alive(server: int) -> None:
    from benchwatch.bench.backends import make_backend

    x = load_suite("digits").inputs[:3]
    body = json.dumps({"inputs": x.tolist()}).encode()
    # three pipelined requests on one connection, answered in order
    res = request(server, post(body) * 3, responses=3)
    assert [s for s, _ in res] == [200, 200, 200]
    expected = make_backend("onnxruntime").predict(x)
    np.testing.assert_allclose(np.array(res[0][1]["outputs"]), expected, rtol=1e-5, atol=1e-5)
    assert res[0][1]["predicted"] == expected.argmax(1).tolist()


@pytest.mark.parametrize("raw,status,needle", [
    (post(b"{not json"), 400, "not JSON"),
    (post(b'{"inputs": [[1, 2]]}'), 400, "expects [rows, 64]"),
    (post(b'{"inputs": []}'), 400, "at least one row"),
    (post(b'{"inputs": [["a"]]}'), 400, "rows of numbers"),
    (post(b"{}", path="/nope"), 404, "unknown path"),
    (b"GET /predict HTTP/1.1\r\nHost: x\r\n\r\n", 405, "POST"),
    (b"POST /predict HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "Content-Length"),
    (b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "chunked"),
])
def test_bad_requests_get_clear_errors(server: int, raw: bytes, status: int, needle: str) -> None:
    [(got, doc)] = request(server, raw)
    assert got == status and needle in str(doc["error"])


def test_info_and_health(server: int) -> None:
    [(s, info)] = request(server, b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s == 200 and info["model"] == "digits" and info["input_shape"] == [64]
    [(s, health)] = request(server, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert s == 200 and health == {"status": "ok"}


def test_flip_and_delay_knobs() -> None:
    from benchwatch.example.server import App, Model

    x = load_suite("digits").inputs
    body = json.dumps({"inputs": x.tolist()}).encode()
    base = App(ServerConfig(), Model(ServerConfig()))
    worse_cfg = ServerConfig(flip_fraction=0.1, delay_ms=2.0, tail_fraction=1.0, tail_delay_ms=3)
    worse = App(worse_cfg, Model(worse_cfg))
    _, a, d0 = base.dispatch("POST", "/predict", body)
    _, b, d1 = worse.dispatch("POST", "/predict", body)
    pa, pb = np.array(json.loads(a)["predicted"]), np.array(json.loads(b)["predicted"])
    assert d0 == 0 and d1 == pytest.approx(0.005)
    assert 0.05 < np.mean(pa != pb) < 0.15  # ~10% of inputs flipped ...
    _, b2, _ = worse.dispatch("POST", "/predict", body)
    assert json.loads(b2)["predicted"] == pb.tolist()  # ... always the same ones


def test_stopping_closes_the_port() -> None:
    state: dict[str, object] = {}
    ready = threading.Event()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(ServerConfig(port=0), ready=lambda p: (
            state.update(port=p), ready.set()), stop=stop))
        while not ready.is_set():
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    time.sleep(0.05)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(state["port"])), timeout=1)  # type: ignore[call-overload]
