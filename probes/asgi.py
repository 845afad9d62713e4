"""ASGI middleware: one probe per route, for FastAPI/Starlette or any ASGI app.

Times each matching HTTP request from the first byte the app sees to the end of the response
(streamed bodies included). 5xx responses count as errors with `error_type="http_<status>"`;
exceptions the app raises count by their type and are re-raised unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from probes.decorator import Probe
from probes.errors import ConfigError
from probes.state import Registry

__all__ = ["ProbeMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ProbeMiddleware:
    """`app = ProbeMiddleware(app, routes={"/predict": ("digits", "v3")})`; with Starlette/FastAPI
    also `app.add_middleware(ProbeMiddleware, routes={...})`. Paths match exactly."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, tuple[str, str]],
                 registry: Registry | None = None) -> None:
        if not routes:
            raise ConfigError('ProbeMiddleware needs routes={"/predict": ("model", "version")}')
        self.app = app
        self.probes: dict[str, Probe] = {}
        for path, mv in routes.items():
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError(f"route {path!r} must be a path starting with '/'")
            if not isinstance(mv, tuple | list) or len(mv) != 2:
                raise ConfigError(f"route {path!r} must map to (model, version), got {mv!r}")
            self.probes[path] = Probe(mv[0], mv[1], outputs=None, registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        p = self.probes.get(scope.get("path", "")) if scope.get("type") == "http" else None
        if p is None:
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
            await send(message)

        t0, _ = p._start()
        try:
            await self.app(scope, receive, send_status)
        except BaseException as e:
            p._finish(t0, e)
            raise
        p._finish(t0, f"http_{status}" if status >= 500 else None)
