"""Requests/s through the example model server: raw asyncio (what `benchwatch.example.server`
is) vs uvicorn + a minimal ASGI app with `probes.ProbeMiddleware`, same model, same client.

    .venv/bin/python benchmarks/example_server.py [--seconds 4] [--connections 32] [--repeats 3]

"raw asyncio + metrics" is the same server with the probes configured (`--metrics-port`).

The client is a separate process: a closed loop over N keep-alive connections (asyncio
protocol, pre-encoded single-row requests), so server and client each get about one core of a
2-core machine. Prints medians over repeats and the ratio; the reliability suite's target is
10 000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- the ASGI alternative
def asgi_app(delay_ms: float = 0.0):  # type: ignore[no-untyped-def]
    """The example model as a minimal ASGI app under the probe middleware (uvicorn's app);
    `delay_ms` is slept before every prediction (`replay_aa.py`'s slower canary)."""
    from benchwatch.example.server import Model, RequestError, ServerConfig

    model = Model(ServerConfig())
    info = json.dumps(model.info()).encode()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        status, payload = 200, info
        if scope["path"] == "/predict":
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            try:
                payload = model.handle_predict(body)
            except RequestError as e:
                status, payload = e.status, json.dumps({"error": str(e)}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    from probes import ProbeMiddleware

    return ProbeMiddleware(app, routes={"/predict": (model.name, model.version)})


def serve_asgi(port: int) -> None:
    import uvicorn

    uvicorn.run(asgi_app(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


# ---------------------------------------------------------------- the client
class _Conn(asyncio.Protocol):
    def __init__(self, request: bytes, stop_at: float, lat: list[float], done: asyncio.Future):  # type: ignore[type-arg]
        self.request, self.stop_at, self.lat, self.done = request, stop_at, lat, done
        self.buf = b""

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.t = transport
        self._send()

    def _send(self) -> None:
        self.t0 = time.perf_counter()
        self.t.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        i = head.find(b"content-length:")
        n = int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
        if len(self.buf) < end + 4 + n:
            return
        if not self.buf.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(self.buf[:200])
        self.buf = self.buf[end + 4 + n :]
        now = time.perf_counter()
        self.lat.append(now - self.t0)
        if now < self.stop_at:
            self._send()
        else:
            self.t.close()
            if not self.done.done():
                self.done.set_result(None)


async def _client(port: int, seconds: float, connections: int) -> dict[str, float]:
    from benchwatch.bench.suites import load_suite

    row = load_suite("digits").inputs[0].tolist()
    body = json.dumps({"inputs": [row]}).encode()
    request = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    start = time.perf_counter()
    stop_at = start + seconds
    futs = []
    for _ in range(connections):
        f = loop.create_future()
        futs.append(f)
        await loop.create_connection(lambda f=f: _Conn(request, stop_at, lat, f), "127.0.0.1", port)
    await asyncio.gather(*futs)
    elapsed = time.perf_counter() - start
    lat.sort()
    return {"rps": len(lat) / elapsed, "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1e3, "requests": len(lat)}


def client_main(port: int, seconds: float, connections: int) -> None:
    print(json.dumps(asyncio.run(_client(port, seconds, connections))))


# ---------------------------------------------------------------- the driver
def _wait(port: int, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server not ready")


def measure(kind: str, seconds: float, connections: int) -> dict[str, float]:
    from benchwatch.services import free_port

    port = free_port()
    cmd = ([sys.executable, "-m", "benchwatch.example.server", "--port", str(port),
            "--log-level", "WARNING"] if kind.startswith("raw asyncio")
           else [sys.executable, __file__, "--serve-asgi", str(port)])
    if kind.endswith("+ metrics"):  # probes configured: Prometheus endpoint, output statistics
        cmd += ["--metrics-port", str(free_port())]
    server = subprocess.Popen(cmd, cwd=ROOT)
    try:
        _wait(port, server)
        out = subprocess.run([sys.executable, __file__, "--client", str(port), "--seconds",
                              str(seconds), "--connections", str(connections)],
                             cwd=ROOT, check=True, capture_output=True, text=True,
                             timeout=seconds + 60)
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--serve-asgi", type=int, help=argparse.SUPPRESS)
    p.add_argument("--client", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json")
    a = p.parse_args()
    if a.serve_asgi:
        serve_asgi(a.serve_asgi)
        return 0
    if a.client:
        client_main(a.client, a.seconds, a.connections)
        return 0
    results: dict[str, list[dict[str, float]]] = {"raw asyncio": [], "uvicorn (h11) + ASGI": [],
                                                  "raw asyncio + metrics": []}
    for _ in range(a.repeats):  # alternate, so load on the shared machine hits both alike
        for kind in results:
            results[kind].append(measure(kind, a.seconds, a.connections))
    print(f"digits server, {a.connections} keep-alive connections, {a.seconds:.0f}s x "
          f"{a.repeats} (medians); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'server':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    med = {}
    for kind, runs in results.items():
        med[kind] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")}
        print(f"{kind:<26}{med[kind]['rps']:>10.0f}{med[kind]['p50_ms']:>9.2f}"
              f"{med[kind]['p99_ms']:>9.2f}")
    ratio = med["raw asyncio"]["rps"] / med["uvicorn (h11) + ASGI"]["rps"]
    print(f"raw asyncio / uvicorn: {ratio:.2f}x; target 10 000 req/s: "
          f"{'met' if med['raw asyncio']['rps'] >= 10_000 else 'MISSED'}")
    if a.json:
        Path(a.json).write_text(json.dumps({"medians": med, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
