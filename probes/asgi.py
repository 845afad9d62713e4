"""ASGI middleware: one probe per route, for FastAPI/Starlette or any ASGI app.

Times each matching HTTP request from the first byte the app sees to the end of the response
(streamed bodies included). 5xx responses count as errors with `error_type="http_<status>"`;
exceptions the app raises count by their type and are re-raised unchanged.

A streamed response (more than one body message, e.g. Starlette's `StreamingResponse`,
server-sent events) is also a generative request (probes.genai): each non-empty body chunk is
one output token (or `output_tokens(chunk_bytes)`), time to first token runs from the request
to the first chunk; a client that disconnects mid-stream ends it as `cancelled`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from time import perf_counter_ns
from typing import Any

from probes.asgi_samples import RequestSampler, Rows
from probes.decorator import Probe
from probes.errors import ConfigError
from probes.genai import CANCELLED, ERROR, OK
from probes.state import Registry
from probes.streaming import count_tokens, end_stream

__all__ = ["ProbeMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ProbeMiddleware:
    """`app = ProbeMiddleware(app, routes={"/predict": ("digits", "v3")})`; with Starlette/FastAPI
    also `app.add_middleware(ProbeMiddleware, routes={...})`. Paths match exactly.
    `output_tokens=callable(chunk: bytes) -> int`: tokens in one streamed chunk (default 1).
    `inputs=`/`outputs=callable(json) -> {name: value} | [one per row]`: drift samples from the
    JSON request and response of sampled requests (probes.asgi_samples)."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, tuple[str, str]],
                 registry: Registry | None = None,
                 output_tokens: Callable[[bytes], int] | None = None,
                 inputs: Rows | None = None, outputs: Rows | None = None) -> None:
        if not routes:
            raise ConfigError('ProbeMiddleware needs routes={"/predict": ("model", "version")}')
        self.app = app
        self.probes: dict[str, Probe] = {}
        for path, mv in routes.items():
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError(f"route {path!r} must be a path starting with '/'")
            if not isinstance(mv, tuple | list) or len(mv) != 2:
                raise ConfigError(f"route {path!r} must map to (model, version), got {mv!r}")
            self.probes[path] = Probe(mv[0], mv[1], outputs=None, registry=registry, output_tokens=output_tokens)
        self.samplers = {path: RequestSampler(p, inputs, outputs) for path, p in self.probes.items()
                         if inputs is not None or outputs is not None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        p = self.probes.get(scope.get("path", "")) if scope.get("type") == "http" else None
        if p is None:
            await self.app(scope, receive, send)
            return
        status = first = last = chunks = 0
        streaming = done = send_failed = False
        count = p.output_tokens
        sampler = self.samplers.get(scope["path"])
        tap = None if sampler is None else sampler.tap()  # a sampled request: keep its bodies
        if tap is not None:
            receive = tap.receive(receive)

        async def send_status(message: Message) -> None:
            nonlocal status, first, last, chunks, streaming, done, send_failed
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 0))
            elif kind == "http.response.body":
                body = message.get("body")
                if body and tap is not None:
                    tap.sent(body)
                if body:  # a chunk: one token unless output_tokens= says otherwise
                    last = perf_counter_ns()
                    first = first or last
                    chunks += 1 if count is None else count_tokens(p, count, body)
                if message.get("more_body", False):
                    streaming = True  # more than one body message: a streamed response
                else:
                    done = True
            try:
                await send(message)
            except BaseException:  # the client went away
                send_failed = True
                raise

        t0, _ = p._start()
        try:
            await self.app(scope, receive, send_status)
        except BaseException as e:
            if streaming:
                outcome = CANCELLED if send_failed else ERROR
                end_stream(p, t0, first, last, chunks, 1 if first else 0, 0, outcome, e)
            else:
                p._finish(t0, e)
            raise
        if streaming:  # a stream the app stopped before its last message: the client left
            outcome = ERROR if status >= 500 else OK if done else CANCELLED
            end_stream(p, t0, first, last, chunks, 1 if first else 0, 0, outcome, f"http_{status}")
        else:
            _, dt = p._finish(t0, f"http_{status}" if status >= 500 else None)
            if tap is not None and status < 400:
                tap.finish(dt)
