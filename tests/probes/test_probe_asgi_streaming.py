"""ProbeMiddleware on streamed responses (FastAPI StreamingResponse) served by a real uvicorn on
loopback: each chunk is a token; a client that disconnects mid-stream ends it as cancelled."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest

from benchwatch.services import free_port
from probes import ProbeMiddleware
from probes.genai import CANCELLED, ERROR, OK, GenAIShard
from probes.state import Registry
from tests.support.wait import wait_until

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
responses = pytest.importorskip("fastapi.responses")


@pytest.fixture
def served() -> Iterator[tuple[str, int, Registry]]:
    reg = Registry()
    app = fastapi.FastAPI()

    @app.get("/generate")
    def generate(n: int = 5, delay: float = 0.01) -> object:
        async def tokens() -> AsyncIterator[bytes]:
            await asyncio.sleep(0.03)  # prefill
            for i in range(n):
                yield f"data: tok{i}\n\n".encode()
                await asyncio.sleep(delay)
        return responses.StreamingResponse(tokens(), media_type="text/event-stream")

    @app.get("/whole")
    def whole() -> dict[str, str]:
        return {"text": "not streamed"}

    app.add_middleware(ProbeMiddleware, routes={"/generate": ("lm", "v1"), "/whole": ("lm", "v2")},
                       registry=reg)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    wait_until(lambda: server.started, 30, "uvicorn to start")
    yield f"http://127.0.0.1:{port}", port, reg
    server.should_exit = True
    th.join(timeout=10)


def _genai(reg: Registry, version: str) -> GenAIShard | None:
    return reg.state("lm", version).snapshot().totals.genai.get("text_completion")


def test_streamed_chunks_are_tokens(served: tuple[str, int, Registry]) -> None:
    url, _, reg = served
    for _ in range(3):
        with urllib.request.urlopen(url + "/generate?n=6", timeout=30) as r:  # noqa: S310 (loopback)
            assert r.read().count(b"data: tok") == 6
    with urllib.request.urlopen(url + "/whole", timeout=30) as r:  # noqa: S310
        assert r.status == 200
    wait_until(lambda: (g := _genai(reg, "v1")) is not None and sum(g.dur[OK]) == 3, 30,
               "three finished streams")
    g = _genai(reg, "v1")
    assert g is not None
    assert g.out_tokens == 18 and sum(g.ttft) == 3 and sum(g.tpot) == 3
    assert g.ttft_sum >= 3 * 0.03e9  # the prefill sleep comes before the first chunk
    assert g.tpot_sum >= 3 * 0.01e9 * 0.9
    # the client has the body before the middleware returns: wait for it
    wait_until(lambda: sum(reg.state("lm", "v2").snapshot().totals.ok) == 1, 30, "the plain response")
    assert _genai(reg, "v2") is None  # one body message: not a stream


def test_a_client_disconnect_is_cancelled(served: tuple[str, int, Registry]) -> None:
    _, port, reg = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /generate?n=1000&delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while got.count(b"data: tok") < 3:
            got += s.recv(4096)
    # the server notices on its next write or on http.disconnect
    wait_until(lambda: (g := _genai(reg, "v1")) is not None and sum(g.dur[CANCELLED]) == 1, 60,
               "the disconnected stream to end as cancelled")
    g = _genai(reg, "v1")
    assert g is not None and sum(g.dur[ERROR]) == 0 and 3 <= g.out_tokens < 1000
    t = reg.state("lm", "v1").snapshot().totals
    assert t.in_flight == 0 and not t.errors
