"""ProbeMiddleware on a FastAPI app served by a real uvicorn on loopback."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from benchwatch.services import free_port
from probes import ConfigError, ProbeMiddleware
from probes.state import Registry

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture
def served() -> Iterator[tuple[str, Registry]]:
    reg = Registry()
    app = fastapi.FastAPI()

    @app.post("/predict")
    def predict() -> dict[str, int]:
        return {"class": 3}

    @app.post("/v2/predict")
    def predict2() -> dict[str, int]:
        raise RuntimeError("model crashed")

    @app.get("/health")
    def health() -> str:
        return "ok"

    app.add_middleware(ProbeMiddleware, routes={"/predict": ("digits", "v3"), "/v2/predict": ("digits", "v4")},
                       registry=reg)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", reg
    server.should_exit = True
    th.join(timeout=10)


def _post(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=5) as r:  # noqa: S310
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_routes_get_their_model_names_and_errors(served: tuple[str, Registry]) -> None:
    url, reg = served
    for _ in range(4):
        assert _post(url + "/predict") == 200
    assert _post(url + "/v2/predict") == 500
    with urllib.request.urlopen(url + "/health", timeout=5) as r:  # noqa: S310
        assert r.status == 200
    v3 = reg.state("digits", "v3").snapshot().totals
    v4 = reg.state("digits", "v4").snapshot().totals
    assert sum(v3.ok) == 4 and not v3.errors
    assert sum(v4.err) == 1 and list(v4.errors) in (["RuntimeError"], ["http_500"])
    assert {(s.model, s.version) for s in reg.states()} == {("digits", "v3"), ("digits", "v4")}


def test_bad_routes_fail_at_start() -> None:
    with pytest.raises(ConfigError, match="starting with '/'"):
        ProbeMiddleware(lambda *a: None, routes={"predict": ("m", "v")})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(model, version\)"):
        ProbeMiddleware(lambda *a: None, routes={"/p": "m"})  # type: ignore[arg-type, dict-item]
