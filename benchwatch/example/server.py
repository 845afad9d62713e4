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

The knobs that make a canary worse are for tests and demos: a fixed extra delay, a slower
tail (a seeded fraction of requests delayed), and flipped predictions for a fraction of inputs
chosen by a hash of the input (the same input always gets the same answer, as a real model would).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from probes.errors import BenchwatchError, require

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # 1 MiB: ~4000 rows of 64 floats
MAX_ROWS = 4096

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


class RequestError(BenchwatchError):
    """A request the server answers with a 4xx `status` and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 500: "Internal Server Error"}


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
        return probe(model=self.name, version=self.version)(fn)

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


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1: Content-Length bodies, keep-alive, pipelined requests in order."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a delayed response is pending: later requests wait their turn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.busy:
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
            length = 0
            keep_alive = version == "HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "transfer-encoding":
                    self._respond(400, b'{"error":"chunked bodies are not supported: send '
                                  b'Content-Length"}', close=True)
                    return
                if lname == "content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        length = -1
                elif lname == "connection":
                    keep_alive = value.strip().lower() == "keep-alive" or (
                        keep_alive and value.strip().lower() != "close")
            if length < 0 or length > MAX_BODY:
                self._respond(413 if length > 0 else 400,
                              b'{"error":"bad or too large Content-Length"}', close=True)
                return
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[head_end + 4 : total]
            self.buf = self.buf[total:]
            status, payload, delay = self.app.dispatch(method, path, body)
            if delay > 0:
                self.busy = True
                asyncio.get_running_loop().call_later(delay, self._delayed, status, payload,
                                                      keep_alive)
                return
            self._respond(status, payload, close=not keep_alive)

    def _delayed(self, status: int, payload: bytes, keep_alive: bool) -> None:
        self.busy = False
        self._respond(status, payload, close=not keep_alive)
        self._process()

    def _respond(self, status: int, payload: bytes, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n")
        self.transport.write(head.encode() + payload)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class App:
    def __init__(self, cfg: ServerConfig, model: Model) -> None:
        self.cfg, self.model = cfg, model
        self._rng = random.Random(cfg.seed)
        self._info = json.dumps(model.info()).encode()

    def dispatch(self, method: str, path: str, body: bytes) -> tuple[int, bytes, float]:
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
                stop: asyncio.Event | None = None) -> None:
    runtime = None
    if cfg.metrics_port or cfg.sink:
        from probes import configure

        runtime = configure(f"benchwatch-example-{cfg.port}", prometheus_host=cfg.host,
                            prometheus_port=cfg.metrics_port, sink=cfg.sink,
                            sample_rate=cfg.sample_rate)
    app = App(cfg, Model(cfg))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(app), cfg.host, cfg.port,
                                      reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    log.info("digits %s serving on http://%s:%d (%s)", app.model.version, cfg.host, port,
             cfg.backend)
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
                   "(http://collector:9466 or kafka://host:port/topic)")
    p.add_argument("--sample-rate", type=float, default=0.0)
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    for name in ("tail_fraction", "flip_fraction", "sample_rate"):
        if not 0 <= getattr(a, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    logging.basicConfig(level=a.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ServerConfig(a.host, a.port, a.backend, a.version, a.delay_ms, a.tail_fraction,
                       a.tail_delay_ms, a.flip_fraction, a.seed, a.metrics_port, a.sink,
                       a.sample_rate)
    asyncio.run(serve(cfg, ready=lambda port: print(f"listening on http://{cfg.host}:{port}",
                                                    flush=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
