"""A lean, probed HTTP/1.1 server for the digits model (JSON in, JSON out).

    python -m benchwatch.example.server --port 8000                       # primary
    python -m benchwatch.example.server --port 8001 --tail-fraction 0.05 \
        --tail-delay-ms 5 --flip-fraction 0.03                             # a worse canary

Endpoints: `POST /predict` `{"inputs": [[64 floats], ...]}` → `{"outputs": [[10 logits], ...],
"predicted": [int, ...]}`; `GET /info` (model, version, input shape); `GET /healthz`.

Why raw asyncio instead of an ASGI framework: with keep-alive connections the whole request
path here (parse, JSON, ONNX Runtime, JSON, write) costs tens of µs, so the framework would be
most of the cost; `benchmarks/example_server.py` measures it against uvicorn + a minimal ASGI
app wrapped in `probes.ProbeMiddleware`. The model call is wrapped in `probes.probe` when the probes package offers it.

Connections are bounded as the collector's are (`collector.http_server.ServerOptions`:
`--idle-timeout`, `--read-timeout`, `--max-connections`, `--tls-cert`/`--tls-key`; a sweep at
most a second apart enforces the deadlines), and ambiguous framing is refused (docs/deploy.md "HTTP servers").

The knobs that make a canary worse are for tests and demos: a fixed extra delay, a slower
tail (a seeded fraction of requests delayed), and flipped predictions for a fraction of inputs
chosen by a hash of the input (the same input always gets the same answer, as a real model would).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import re
import signal
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from benchwatch.cli._server_options import add_server_options, server_options
from collector.http_server import ServerOptions
from probes.errors import BenchwatchError, require

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # 1 MiB: ~4000 rows of 64 floats
MAX_ROWS = 4096
# connections are cheap here (no thread each), so the cap is higher than the collector's;
# it stays far below a usual descriptor limit (1024 and up) so a flood cannot exhaust them
DEFAULT_OPTIONS = ServerOptions(idle_timeout_s=30.0, read_timeout_s=30.0, max_connections=512)

try:  # orjson parses and writes this JSON ~5x faster than the stdlib (numpy arrays natively)
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads

    def _dump_outputs(out: np.ndarray) -> bytes:
        out = np.ascontiguousarray(out, dtype=np.float32)
        return orjson.dumps({"outputs": out, "predicted": out.argmax(1)},
                            option=orjson.OPT_SERIALIZE_NUMPY)
except ImportError:  # the stdlib is fine, only slower
    _loads = json.loads

    def _dump_outputs(out: np.ndarray) -> bytes:
        return json.dumps({"outputs": out.tolist(), "predicted": out.argmax(1).tolist()}).encode()


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "onnxruntime"  # or "torch"
    version: str | None = None  # model_version label; default: the model's content hash
    delay_ms: float = 0.0  # added to every request
    tail_fraction: float = 0.0  # this fraction of requests ...
    tail_delay_ms: float = 0.0  # ... gets this much more
    flip_fraction: float = 0.0  # this fraction of inputs gets a wrong class
    seed: int = 0
    metrics_port: int = 0  # probes' Prometheus endpoint (0 = none)
    sink: str | None = None  # probes' sample sink URL (collector http(s)://… or kafka://…)
    sample_rate: float = 0.0
    options: ServerOptions = DEFAULT_OPTIONS  # timeouts, connection cap, TLS


# a response body: bytes, or chunks streamed as they are made (text/event-stream, chunked)
Payload = bytes | AsyncIterator[bytes]


class Handler(Protocol):
    """What the connections hand each request to (`App` here, the LM server's app)."""

    label: str  # for the log: model and version

    def dispatch(self, method: str, path: str, body: bytes) -> tuple[int, Payload, float]: ...


class RequestError(BenchwatchError):
    """A request the server answers with a 4xx `status` and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 413: "Payload Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


class Model:
    """The digits model behind the server, plus the canary knobs."""

    def __init__(self, cfg: ServerConfig) -> None:
        from benchwatch.example.model import load_torch_module, shipped_model

        files = shipped_model()
        self.name = files.name
        self.version = cfg.version or files.version
        self.input_dim = int(files.meta["input_dim"])
        self.num_classes = int(files.meta["num_classes"])
        self.flip_threshold = int(cfg.flip_fraction * 2**32)
        if cfg.backend == "onnxruntime":
            ort = require("onnxruntime", "demo", "serving the example model with ONNX Runtime")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # tiny model: threads cost more than they give
            sess = ort.InferenceSession(str(files.onnx_path), opts,
                                        providers=["CPUExecutionProvider"])
            run, feed = sess.run, files.meta["input_name"]
            self._raw: Callable[[np.ndarray], np.ndarray] = lambda x: run(None, {feed: x})[0]
        elif cfg.backend == "torch":
            module = load_torch_module(files)
            torch = require("torch", "torch", "serving the example model with PyTorch")

            def _torch(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return module(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]

            self._raw = _torch
        else:
            raise ValueError(f"--backend must be onnxruntime or torch, got {cfg.backend!r}")
        self.predict = self._wrap_probe(self._predict)

    def _wrap_probe(self, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        try:
            from probes import probe
        except ImportError:
            log.warning("probes.probe is not available: serving without a probe")
            return fn
        # both backends run on the CPU here: never charge this model a GPU's energy
        return probe(model=self.name, version=self.version, devices="cpu")(fn)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        out = self._raw(x)
        if self.flip_threshold:
            out = np.array(out, copy=True)
            for i in range(len(x)):
                if zlib.crc32(x[i].tobytes()) < self.flip_threshold:
                    out[i] = np.roll(out[i], 1)  # the top class moves to the next label
        return out

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "version": self.version, "input_shape": [self.input_dim],
                "num_outputs": self.num_classes, "input_dtype": "float32"}

    def handle_predict(self, body: bytes) -> bytes:
        try:
            doc = _loads(body)
        except ValueError as e:
            raise RequestError(400, f"body is not JSON ({e}); send {{\"inputs\": [[...]]}}") from e
        rows = doc.get("inputs") if isinstance(doc, dict) else None
        if not isinstance(rows, list) or not rows:
            raise RequestError(400, 'send {"inputs": [[64 numbers], ...]} with at least one row')
        if len(rows) > MAX_ROWS:
            raise RequestError(413, f"{len(rows)} rows > {MAX_ROWS}: split the batch")
        try:
            x = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise RequestError(400, f"inputs must be rows of numbers ({e})") from e
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise RequestError(400, f"inputs have shape {list(x.shape)}; the model expects "
                               f"[rows, {self.input_dim}]")
        return _dump_outputs(self.predict(x))


class OpenConnections:
    """The server's connections, idle ones (waiting for a request) oldest first, and the one
    timer that enforces every connection's deadline (a sweep each `tick_s`: cheaper than a timer
    per request on a path that costs tens of µs). At the cap a newcomer takes the place of the
    longest-idle connection; only when every one is mid-request is it refused with 503."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.tick_s = min(1.0, options.idle_timeout_s / 4, options.read_timeout_s / 4)
        self.open: set[HttpProtocol] = set()
        self.idle: OrderedDict[HttpProtocol, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0

    def admit(self, conn: HttpProtocol) -> bool:
        if len(self.open) >= self.options.max_connections:
            if not self.idle:
                self.refused += 1
                return False
            oldest, _ = self.idle.popitem(last=False)
            self.evicted += 1
            oldest.close()
        self.open.add(conn)
        return True

    def forget(self, conn: HttpProtocol) -> None:
        self.open.discard(conn)
        self.idle.pop(conn, None)

    def sweep(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.open if c.deadline < now]:
            conn.timed_out()

    async def run_sweeps(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.sweep()


_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1: Content-Length bodies, keep-alive, pipelined requests in order; each
    connection idle at most `idle_timeout_s`, each request whole within `read_timeout_s` of its
    first byte (408 otherwise)."""

    def __init__(self, app: Handler, conns: OpenConnections) -> None:
        self.app = app
        self.conns = conns
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a delayed response is pending: later requests wait their turn
        self.reading = False  # a request has started arriving
        self.continued = False  # `100 Continue` sent for the request being read
        self.deadline = math.inf
        self.streaming: asyncio.Task[None] | None = None  # a streamed response being sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.conns.admit(self):
            self._respond(503, b'{"error":"every connection is busy with a request; retry '
                               b'in a moment"}', close=True)
            return
        self._wait_for_request()

    def _wait_for_request(self) -> None:
        self.reading = False
        self.deadline = time.monotonic() + self.conns.options.idle_timeout_s
        self.conns.idle[self] = None
        self.conns.idle.move_to_end(self)

    def _start_request(self) -> None:
        self.reading = True
        self.continued = False
        self.deadline = time.monotonic() + self.conns.options.read_timeout_s
        self.conns.idle.pop(self, None)

    def timed_out(self) -> None:
        if self.reading:
            self._respond(408, b'{"error":"the request did not arrive in time; send it '
                               b'faster"}', close=True)
        else:
            self.close()

    def close(self) -> None:
        self.conns.forget(self)
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            self._start_request()
        self.buf += data
        if not self.busy:
            self._process()

    def pause_writing(self) -> None:  # a client that sends but does not read: stop reading
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def _process(self) -> None:
        while self.transport is not None and not self.busy:
            if not self.buf:
                self._wait_for_request()
                return
            if not self.reading:  # the next pipelined request: its own deadline
                self._start_request()
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self.buf) > 65536:
                    self._respond(400, b'{"error":"header too large"}', close=True)
                return
            head = self.buf[:head_end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, path, version = lines[0].split(" ", 2)
            except ValueError:
                self._respond(400, b'{"error":"bad request line"}', close=True)
                return
            lengths: list[str] = []
            keep_alive = version == "HTTP/1.1"
            expect_continue = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "transfer-encoding":
                    self._respond(400, b'{"error":"chunked bodies are not supported: send '
                                  b'Content-Length only"}', close=True)
                    return
                if lname == "content-length":
                    lengths.append(value.strip())
                elif lname == "connection":
                    keep_alive = value.strip().lower() == "keep-alive" or (
                        keep_alive and value.strip().lower() != "close")
                elif lname == "expect":
                    expect_continue = value.strip().lower() == "100-continue"
            if len(lengths) > 1:  # a proxy in front may pick the other one: refuse
                self._respond(400, b'{"error":"more than one Content-Length header"}',
                              close=True)
                return
            if lengths and not _CONTENT_LENGTH.fullmatch(lengths[0]):
                self._respond(400, b'{"error":"Content-Length is not a number"}', close=True)
                return
            length = int(lengths[0]) if lengths else 0
            if length > MAX_BODY:
                self._respond(413, b'{"error":"Content-Length over the limit of 1 MiB: '
                                   b'split the batch"}', close=True)
                return
            total = head_end + 4 + length
            if len(self.buf) < total:
                if expect_continue and not self.continued:  # only after the length passed
                    self.continued = True
                    self.transport.write(CONTINUE)
                return
            body = self.buf[head_end + 4 : total]
            self.buf = self.buf[total:]
            self.reading = False
            status, payload, delay = self.app.dispatch(method, path, body)
            if not isinstance(payload, bytes):
                self._stream(status, payload, keep_alive)
                return
            if delay > 0:
                self.busy = True
                self.deadline = math.inf  # our own delay: not the client's to answer for
                asyncio.get_running_loop().call_later(delay, self._delayed, status, payload,
                                                      keep_alive)
                return
            self._respond(status, payload, close=not keep_alive)

    def _delayed(self, status: int, payload: bytes, keep_alive: bool) -> None:
        self.busy = False
        self._respond(status, payload, close=not keep_alive)
        self._process()

    def _stream(self, status: int, chunks: AsyncIterator[bytes], keep_alive: bool) -> None:
        """Send `chunks` as a chunked event stream, one chunk per turn of the event loop (other
        connections are served between tokens); later pipelined requests wait their turn."""
        self.busy = True
        self.deadline = math.inf  # a long generation is ours, not the client's slowness
        # held here: the loop keeps only a weak reference to a task
        self.streaming = asyncio.get_running_loop().create_task(
            self._write_stream(status, chunks, keep_alive))

    async def _write_stream(self, status: int, chunks: AsyncIterator[bytes],
                            keep_alive: bool) -> None:
        close = getattr(chunks, "aclose", None)
        try:
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: "
                f"text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                f"{'Connection: keep-alive' if keep_alive else 'Connection: close'}\r\n\r\n".encode())
            async for chunk in chunks:
                if self.transport is None or self.transport.is_closing():
                    return  # the client went away: `finally` closes the stream (cancelled)
                self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await asyncio.sleep(0)
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(b"0\r\n\r\n")
        finally:
            if close is not None:
                await close()
        self.busy = False
        if keep_alive:
            self._process()
        else:
            self.close()

    def _respond(self, status: int, payload: bytes, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n")
        self.transport.write(head.encode() + payload)
        if close:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conns.forget(self)
        self.transport = None


class App:
    def __init__(self, cfg: ServerConfig, model: Model) -> None:
        self.cfg, self.model = cfg, model
        self._rng = random.Random(cfg.seed)
        self._info = json.dumps(model.info()).encode()
        self.label = f"{model.name} {model.version}"

    def dispatch(self, method: str, path: str, body: bytes) -> tuple[int, Payload, float]:
        """(status, JSON body, delay in seconds); never raises."""
        try:
            if path == "/predict":
                if method != "POST":
                    return 405, b'{"error":"use POST /predict"}', 0.0
                payload = self.model.handle_predict(body)
                delay = self.cfg.delay_ms
                if self.cfg.tail_fraction and self._rng.random() < self.cfg.tail_fraction:
                    delay += self.cfg.tail_delay_ms
                return 200, payload, delay / 1000.0
            if path == "/info":
                return 200, self._info, 0.0
            if path == "/healthz":
                return 200, b'{"status":"ok"}', 0.0
            return 404, b'{"error":"unknown path; use POST /predict, GET /info"}', 0.0
        except RequestError as e:
            return e.status, json.dumps({"error": str(e)}).encode(), 0.0
        except Exception as e:  # noqa: BLE001 - a bad request must not kill the server
            log.exception("error serving %s %s", method, path)
            return 500, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode(), 0.0


async def serve(cfg: ServerConfig, ready: Callable[[int], None] | None = None,
                stop: asyncio.Event | None = None,
                make_app: Callable[[ServerConfig], Handler] | None = None) -> None:
    """Serve `make_app(cfg)` (default: the digits model's `App`) until SIGINT/SIGTERM or `stop`."""
    runtime = None
    if cfg.metrics_port or cfg.sink:
        from probes import configure

        runtime = configure(f"benchwatch-example-{cfg.port}", prometheus_host=cfg.host,
                            prometheus_port=cfg.metrics_port, sink=cfg.sink,
                            sample_rate=cfg.sample_rate)
    app = make_app(cfg) if make_app is not None else App(cfg, Model(cfg))
    loop = asyncio.get_running_loop()
    conns = OpenConnections(cfg.options)
    tls = cfg.options.ssl_context()
    server = await loop.create_server(
        lambda: HttpProtocol(app, conns), cfg.host, cfg.port, reuse_address=True, ssl=tls,
        ssl_handshake_timeout=cfg.options.read_timeout_s if tls else None)
    sweeper = asyncio.create_task(conns.run_sweeps())
    port = server.sockets[0].getsockname()[1]
    log.info("%s serving on %s://%s:%d (%s)", app.label, cfg.options.scheme,
             cfg.host, port, cfg.backend)
    if ready:
        ready(port)
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        async with server:
            await stop.wait()
    finally:
        sweeper.cancel()
        for conn in list(conns.open):  # keep-alive clients see the end now
            conn.close()
        if runtime is not None:
            from probes import shutdown

            shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchwatch.example.server",
                                description="serve the digits example model over HTTP")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime")
    p.add_argument("--version", default=None, help="model_version label (default: model hash)")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--tail-fraction", type=float, default=0.0)
    p.add_argument("--tail-delay-ms", type=float, default=0.0)
    p.add_argument("--flip-fraction", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics-port", type=int, default=0,
                   help="expose probe metrics for Prometheus on this port (0 = none)")
    p.add_argument("--sink", default=None, help="send sampled output summaries here "
                   "(http://collector:9463 or kafka://host:port/topic)")
    p.add_argument("--sample-rate", type=float, default=0.0)
    p.add_argument("--log-level", default="INFO")
    add_server_options(p, max_connections=DEFAULT_OPTIONS.max_connections)
    a = p.parse_args(argv)
    for name in ("tail_fraction", "flip_fraction", "sample_rate"):
        if not 0 <= getattr(a, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    try:
        options = server_options(a)
    except BenchwatchError as e:
        p.error(str(e))
    logging.basicConfig(level=a.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ServerConfig(a.host, a.port, a.backend, a.version, a.delay_ms, a.tail_fraction,
                       a.tail_delay_ms, a.flip_fraction, a.seed, a.metrics_port, a.sink,
                       a.sample_rate, options)
    asyncio.run(serve(cfg, ready=lambda port: print(
        f"listening on {options.scheme}://{cfg.host}:{port}", flush=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
