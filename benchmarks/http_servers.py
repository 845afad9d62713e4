"""The collector's HTTP server (stdlib, `collector.http_server.JsonHttpServer`) vs uvicorn +
Starlette serving the same ingest route, in one run: throughput, idle connections, a slow
sender, ambiguous framing.

    .venv/bin/python benchmarks/http_servers.py [--samples 20000] [--repeats 5] [--idle 1000]

Rows:
- throughput: HttpSink -> POST /v1/samples (batches of 256) -> the same Collector and in-memory
  store, samples/s, median of interleaved rounds;
- idle flood: `--idle` connections opened and left silent, then one normal request (its status
  and latency), then how many of them the server still holds after its idle/keep-alive timeout
  (2 s for both) plus 2 s;
- slow sender: a request line, then one header byte every 0.2 s: seconds until the server cuts
  it off (read timeout 2 s for ours; uvicorn has no such setting), capped at `--slow-cap`;
- framing: the status for Transfer-Encoding + Content-Length and for two Content-Lengths.
uvicorn runs with `timeout_keep_alive=2` and `limit_concurrency` = our connection cap (128),
its closest settings. This machine is shared with other workers: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector import Collector, WindowStore  # noqa: E402
from collector.http_server import (  # noqa: E402
    DEFAULT_MAX_SAMPLES,
    ServerOptions,
    ingest_server,
    samples_handler,
    samples_parser,
)
from probes.samples import Sample  # noqa: E402
from probes.sinks.http import HttpSink  # noqa: E402
from tests.support.sockets import hung_up  # noqa: E402

TIMEOUT_S = 2.0
CAP = ServerOptions().max_connections


@contextmanager
def ours(collector: Collector) -> Iterator[int]:
    server = ingest_server(collector, port=0, options=ServerOptions(
        idle_timeout_s=TIMEOUT_S, read_timeout_s=TIMEOUT_S)).start()
    try:
        yield server.port
    finally:
        server.stop()


@contextmanager
def uvicorn_starlette(collector: Collector) -> Iterator[int]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    handle, parse = samples_handler(collector), samples_parser(DEFAULT_MAX_SAMPLES)

    async def samples(request: Request) -> JSONResponse:
        try:
            payload = parse(await request.body())
        except ValueError as exc:
            return JSONResponse({"error": f"body is not valid JSON: {exc}"}, 400)
        status, out = handle(payload)
        return JSONResponse(out, status)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/v1/samples", samples, methods=["POST"]),
                            Route("/healthz", healthz)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           timeout_keep_alive=int(TIMEOUT_S),
                                           limit_concurrency=CAP, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


SERVERS: dict[str, Callable[[Collector], contextmanager[int]]] = {  # type: ignore[type-arg]
    "ours (stdlib, JsonHttpServer)": ours, "uvicorn + Starlette": uvicorn_starlette}


def samples(n: int, tag: str) -> list[Sample]:
    return [Sample("digits", "v3", f"{tag}-{i}", 1.7e9 + i,
                   {"confidence": 0.5 + (i % 50) / 100, "predicted_class": str(i % 10),
                    "entropy": 0.1 * (i % 7)}) for i in range(n)]


def throughput(make: Callable[[Collector], contextmanager[int]], n: int, tag: str) -> float:  # type: ignore[type-arg]
    store = WindowStore(None)
    data = samples(n, tag)
    with make(Collector(store)) as port:
        sink = HttpSink(f"http://127.0.0.1:{port}", max_batch=256)
        t0 = time.perf_counter()
        for i in range(0, n, 256):
            sink.send(data[i:i + 256])
        dt = time.perf_counter() - t0
    store.close()
    return n / dt


def one_request(port: int) -> tuple[str, float]:
    body = json.dumps({"samples": [samples(1, "idle")[0].to_dict()]}).encode()
    raw = (f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(raw)
            got = s.recv(65536)
        status = got.split(b" ", 2)[1].decode() if got else "closed"
    except OSError as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - t0


def idle_flood(make: Callable[[Collector], contextmanager[int]], n: int) -> str:  # type: ignore[type-arg]
    store = WindowStore(None)
    with make(Collector(store)) as port:
        idle = []
        for _ in range(n):
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        status, latency = one_request(port)
        time.sleep(TIMEOUT_S + 2)  # the measurement is "what is left after the timeout"
        held = sum(not hung_up(s) for s in idle)
        for s in idle:
            s.close()
    store.close()
    return (f"{len(idle)} opened; a request then: {status} in {latency * 1e3:.0f} ms; "
            f"still held after {TIMEOUT_S + 2:g} s: {held}")


def slow_sender(make: Callable[[Collector], contextmanager[int]], cap_s: float) -> str:  # type: ignore[type-arg]
    store = WindowStore(None)
    with make(Collector(store)) as port, socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /v1/samples HTTP/1.1\r\n")
        cut = False
        while time.monotonic() - t0 < cap_s:
            try:
                s.sendall(b"a")
            except OSError:
                cut = True
                break
            if hung_up(s):
                cut = True
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
    store.close()
    return f"cut off after {elapsed:.1f} s" if cut else f"still connected after {cap_s:g} s"


def framing(make: Callable[[Collector], contextmanager[int]]) -> str:  # type: ignore[type-arg]
    store = WindowStore(None)
    body = json.dumps({"samples": []}).encode()
    out = []
    with make(Collector(store)) as port:
        for name, headers in (("TE+CL", f"Transfer-Encoding: chunked\r\nContent-Length: {len(body)}"),
                              ("CL,CL", f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}")):
            raw = (f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"{headers}\r\nConnection: close\r\n\r\n").encode() + body
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(raw)
                try:
                    got = s.recv(65536)
                    answer = got.split(b" ", 2)[1].decode() if got else "closed"
                except TimeoutError:  # it took the request and waits for more body
                    answer = "accepted, no answer in 3 s"
            out.append(f"{name}: {answer}")
    store.close()
    return ", ".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--slow-cap", type=float, default=10.0)
    args = ap.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    for r in range(args.repeats):  # interleaved, so load bursts hit both alike
        for name, make in SERVERS.items():
            rates[name].append(throughput(make, args.samples, f"{r}"))
    ours_rate = statistics.median(rates[next(iter(SERVERS))])
    print(f"HTTP ingest servers: {args.samples} samples in batches of 256 over HttpSink, median "
          f"of {args.repeats} interleaved rounds; timeouts {TIMEOUT_S:g} s, cap {CAP}")
    print(f"{'server':32} {'samples/s':>10} {'vs ours':>8}")
    for name, r in rates.items():
        print(f"{name:32} {statistics.median(r):10.0f} {statistics.median(r) / ours_rate:8.2f}")
    for name, make in SERVERS.items():
        print(f"\n{name}")
        print(f"  idle flood:  {idle_flood(make, args.idle)}")
        print(f"  slow sender: {slow_sender(make, args.slow_cap)}")
        print(f"  framing:     {framing(make)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
