"""A small JSON-over-HTTP server (stdlib) and the collector's ingest endpoint on it.

`POST /v1/samples` with `{"samples": [Sample.to_dict(), ...]}` answers 200 with the ingest report
(`{"accepted", "duplicates", "rejected": {reason: n}}`) or 4xx with `{"error": "..."}`.
Bodies are size-limited and parsed as JSON only (nothing received is unpickled or evaluated).
The samples per request are capped too (`max_samples`, 413 past it): an 8 MiB body of tiny
items is millions of them, and the cap is enforced while parsing, so such a body costs one
bounded parse, not millions of validations.
A bearer token is required when the server binds beyond loopback; it refuses to start
off-loopback without one. Other services (the drift service) add their own routes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collector.errors import CollectorConfigError
from collector.ingest import ENVELOPE_KEYS, Collector, envelope_problem
from probes.errors import BenchwatchError

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_SAMPLES = 10_000  # per request; HttpSink sends at most 500
DRAIN_FACTOR = 4  # bodies up to this many times the limit are read and dropped before the 413
Handler = Callable[[Any], tuple[int, Any]]
Verifier = Callable[[Mapping[str, str], bytes], str | None]
Parser = Callable[[bytes], Any]


class RequestRefused(BenchwatchError):
    """A body parser's verdict on a request: answer `status` with `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_decoder = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    """The index of the first non-whitespace character at or after i."""
    m = _WHITESPACE.match(text, i)
    return i if m is None else m.end()


def samples_parser(max_samples: int) -> Parser:
    """Parses an ingest body like `json.loads`, but reads the items of its `"samples"` list one
    at a time and stops at `max_samples` (RequestRefused 413): a body of millions of tiny
    items is refused after `max_samples` of them, without building the rest. A top-level
    field the envelope refuses anyway is refused (400) before its value is parsed."""
    too_many = RequestRefused(413, f"more than {max_samples} samples in one request; send at "
                                   f"most {max_samples} per request (split the batch)")

    def parse(body: bytes) -> Any:
        if body.count(b",") < max_samples:  # fewer items in the whole body than the cap
            return json.loads(body)
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads does
        i = _skip(text, 0)
        if text[i:i + 1] != "{":
            return json.loads(text)  # not an envelope: the handler says what to send
        out: dict[str, Any] = {}
        i = _skip(text, i + 1)
        while text[i:i + 1] != "}":
            if out:
                if text[i:i + 1] != ",":
                    raise ValueError(f"expected ',' or '}}' at character {i}")
                i = _skip(text, i + 1)
            key, i = _decoder.raw_decode(text, i)
            i = _skip(text, i)
            if not isinstance(key, str) or text[i:i + 1] != ":":
                raise ValueError(f"expected a string key and ':' at character {i}")
            i = _skip(text, i + 1)
            if key == "samples" and text[i:i + 1] == "[":
                out[key], i = _bounded_list(text, i, max_samples, too_many)
            elif key in ENVELOPE_KEYS and text[i:i + 1] not in ("[", "{"):
                out[key], i = _decoder.raw_decode(text, i)  # a scalar: schema_version
            else:  # refused whatever it holds: say why without building it
                raise RequestRefused(400, envelope_problem({"samples": [], key: {}})
                                     or "send {\"samples\": [sample, ...]}")
            i = _skip(text, i)
            if i >= len(text):
                raise ValueError("unterminated object")
        if _skip(text, i + 1) != len(text):
            raise ValueError(f"extra data after character {i}")
        return out

    return parse


def _bounded_list(text: str, i: int, cap: int, too_many: RequestRefused) -> tuple[list[Any], int]:
    """The JSON list starting at text[i] ('['), item by item; RequestRefused past `cap` items."""
    items: list[Any] = []
    i = _skip(text, i + 1)
    if text[i:i + 1] == "]":
        return items, i + 1
    while True:
        if len(items) >= cap:
            raise too_many
        item, i = _decoder.raw_decode(text, i)
        items.append(item)
        i = _skip(text, i)
        c = text[i:i + 1]
        if c == "]":
            return items, i + 1
        if c != ",":
            raise ValueError(f"expected ',' or ']' at character {i}")
        i = _skip(text, i + 1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_verifier(token: str | None) -> Verifier:
    """Checks `Authorization: Bearer TOKEN` (constant-time); no token configured = open."""

    def verify(headers: Mapping[str, str], body: bytes) -> str | None:
        if token is None:
            return None
        got = headers.get("authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                                 token.encode()):
            return "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
        return None

    return verify


def hmac_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def bearer_or_hmac_verifier(token: str | None, hmac_secret: str | None,
                            header: str = "x-benchwatch-signature") -> Verifier:
    """Accepts a valid bearer token or a valid `sha256=<hex>` HMAC of the body in `header`."""
    bearer = bearer_verifier(token)

    def verify(headers: Mapping[str, str], body: bytes) -> str | None:
        if token is None and hmac_secret is None:
            return None
        if token is not None and bearer(headers, body) is None:
            return None
        sig = headers.get(header, "")
        if hmac_secret is not None and sig and hmac.compare_digest(
                sig.encode(), hmac_signature(hmac_secret, body).encode()):
            return None
        return (f"unverified request: send 'Authorization: Bearer <token>' or a "
                f"'{header}: sha256=<hex HMAC of the body>' header")

    return verify


@dataclass(frozen=True)
class Route:
    handler: Handler
    verify: Verifier
    needs_body: bool
    parse: Parser = json.loads


class JsonHttpServer:
    """Routes (method, path) to handlers taking the parsed JSON body (None for GET).

    Handlers return `(status, json_able)`; an exception in a handler becomes a 500 with a
    short message (logged), never a dead server.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY, name: str = "benchwatch") -> None:
        if not is_loopback(host) and not token:
            raise CollectorConfigError(
                f"refusing to listen on {host} without a token: anyone who can reach it could "
                "send data. Pass --token (or BENCHWATCH_TOKEN) or bind 127.0.0.1")
        self.host = host
        self.token = token or None
        self.max_body = max_body
        self.name = name
        self._routes: dict[tuple[str, str], Route] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._requested_port = port
        self.add_route("GET", "/healthz", lambda _: (200, {"status": "ok"}), open_route=True)

    def add_route(self, method: str, path: str, handler: Handler,
                  verify: Verifier | None = None, open_route: bool = False,
                  parse: Parser = json.loads) -> None:
        """`verify` defaults to the server's bearer token; `open_route` skips checks; `parse`
        turns the body into the handler's argument (may raise RequestRefused or ValueError)."""
        check = (lambda h, b: None) if open_route else (verify or bearer_verifier(self.token))
        self._routes[(method.upper(), path)] = Route(handler, check, method.upper() == "POST",
                                                     parse)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> JsonHttpServer:
        server_self = self

        class RequestHandler(_Handler):
            owner = server_self

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # a client that hangs up mid-request (e.g. after a 413) is routine, not a
                # traceback on stderr; anything else still gets the default report
                if isinstance(sys.exc_info()[1], ConnectionError):
                    log.debug("client %s disconnected", client_address)
                    return
                super().handle_error(request, client_address)

        try:
            self._server = Server((self.host, self._requested_port), RequestHandler)
        except OSError as exc:
            raise CollectorConfigError(
                f"{self.name}: cannot listen on {self.host}:{self._requested_port} ({exc}); "
                "choose another port") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"{self.name}-http", daemon=True)
        self._thread.start()
        log.info("%s listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> JsonHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: JsonHttpServer
    protocol_version = "HTTP/1.1"
    timeout = 15  # seconds a slow client may hold a thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s: " + format, self.owner.name, *args)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self, length: int) -> None:
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            return

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        route = self.owner._routes.get((method, path))
        if route is None:
            allowed = sorted(m for (m, p) in self.owner._routes if p == path)
            if allowed:
                self.close_connection = True
                self._send(405, {"error": f"use {' or '.join(allowed)} on {path}"})
            else:
                self.close_connection = True
                self._send(404, {"error": f"no such endpoint {path}"})
            return
        body = b""
        if route.needs_body:
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                self.close_connection = True
                self._send(411, {"error": "send a Content-Length header (chunked bodies are not accepted)"})
                return
            try:
                length = int(length_text)
            except ValueError:
                self.close_connection = True
                self._send(400, {"error": "Content-Length is not a number"})
                return
            if length < 0 or length > self.owner.max_body:
                self.close_connection = True
                # read (and drop) a moderately oversized body so the sender sees the 413
                # rather than a broken pipe; past the drain limit, just hang up
                if 0 < length <= DRAIN_FACTOR * self.owner.max_body:
                    self._drain(length)
                self._send(413, {"error": f"body of {length} bytes is over the limit of "
                                          f"{self.owner.max_body}; send smaller batches"})
                return
            body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        problem = route.verify(headers, body)
        if problem is not None:
            self._send(401, {"error": problem})
            return
        payload: Any = None
        if route.needs_body:
            ctype = headers.get("content-type", "application/json").split(";")[0].strip()
            if ctype not in ("application/json", ""):
                self._send(415, {"error": f"content type {ctype!r}: send application/json"})
                return
            try:
                payload = route.parse(body)
            except RequestRefused as exc:
                self.close_connection = True
                self._send(exc.status, {"error": exc.message})
                return
            except (ValueError, RecursionError) as exc:
                self._send(400, {"error": f"body is not valid JSON: {str(exc)[:200]}"})
                return
        try:
            status, out = route.handler(payload)
        except Exception as exc:
            log.exception("%s: handler for %s %s failed", self.owner.name, method, path)
            status, out = 500, {"error": f"internal error: {type(exc).__name__}"}
        self._send(status, out)

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")


def samples_handler(collector: Collector, on_report: Callable[[Any], None] | None = None
                    ) -> Handler:
    """`POST /v1/samples`: `{"samples": [...]}` -> the ingest report."""

    def handle(payload: Any) -> tuple[int, Any]:
        problem = envelope_problem(payload)  # shape, unknown fields, schema_version
        if problem is not None:
            return 400, {"error": problem}
        try:
            report = collector.ingest(payload["samples"])
        except Exception as exc:  # the store failed (disk full, ...): tell the sender to retry
            log.exception("ingest failed")
            return 503, {"error": f"could not store the batch ({type(exc).__name__}); retry"}
        if on_report is not None:
            on_report(report)
        return 200, report.to_dict()

    return handle


def ingest_server(collector: Collector, host: str = "127.0.0.1", port: int = 0,
                  token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                  on_report: Callable[[Any], None] | None = None,
                  max_samples: int = DEFAULT_MAX_SAMPLES) -> JsonHttpServer:
    """An (unstarted) server with `POST /v1/samples` for `collector`."""
    server = JsonHttpServer(host, port, token, max_body, name="collector")
    add_samples_route(server, collector, max_samples, on_report)
    return server


def add_samples_route(server: JsonHttpServer, collector: Collector,
                      max_samples: int = DEFAULT_MAX_SAMPLES,
                      on_report: Callable[[Any], None] | None = None) -> None:
    """`POST /v1/samples` on `server`, at most `max_samples` samples per request."""
    if max_samples < 1:
        raise CollectorConfigError(f"max_samples must be >= 1, got {max_samples}")
    server.add_route("POST", "/v1/samples", samples_handler(collector, on_report),
                     parse=samples_parser(max_samples))
