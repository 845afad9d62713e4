"""A small JSON-over-HTTP server (stdlib) and the collector's ingest endpoint on it.

`POST /v1/samples` with `{"samples": [Sample.to_dict(), ...]}` answers 200 with the ingest report
(`{"accepted", "duplicates", "rejected": {reason: n}}`) or 4xx with `{"error": "..."}`.
Bodies are size-limited and parsed as JSON only (nothing received is unpickled or evaluated).
The samples per request are capped too (`max_samples`, 413 past it): an 8 MiB body of tiny
items is millions of them, and the cap is enforced while parsing, so such a body costs one
bounded parse, not millions of validations.
A bearer token is required when the server binds beyond loopback; it refuses to start
off-loopback without one. Other services (the drift service) add their own routes.

Connections are bounded (`ServerOptions`): a connection waiting for a request is closed after
`idle_timeout_s`, a request must arrive whole within `read_timeout_s` of its first byte (408
otherwise: a slow sender holds a thread that long, no longer), and at most `max_connections`
are open: at the cap the longest-idle one is closed to make room, or, when every one is
mid-request, the newcomer gets 503 at once. Ambiguous framing (Transfer-Encoding with
Content-Length, two Content-Lengths) is refused with 400, and `Expect: 100-continue` is
answered only after the length passed. `tls_cert`/`tls_key` serve HTTPS.
Why the stdlib server and not uvicorn: docs/deploy.md "HTTP servers" (measured by
benchmarks/http_servers.py).
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import json
import logging
import math
import re
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
_DIGITS = re.compile(r"[0-9]+")  # int() would also take "+5", " 5" and "5_0"


@dataclass(frozen=True)
class ServerOptions:
    """How a server treats connections (timeouts, cap) and whether it speaks TLS."""

    idle_timeout_s: float = 30.0  # a connection waiting for its (next) request is closed
    read_timeout_s: float = 30.0  # a request's line, headers and body, from its first byte
    max_connections: int = 128  # open at once; see the module docstring for what happens at it
    tls_cert: Path | None = None  # PEM certificate chain: serve HTTPS
    tls_key: Path | None = None  # PEM private key (default: inside tls_cert)

    def __post_init__(self) -> None:
        for name in ("idle_timeout_s", "read_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CollectorConfigError(
                    f"{name} must be a positive number of seconds, got {value!r}")
        if not self.max_connections >= 1:
            raise CollectorConfigError(
                f"max_connections must be at least 1, got {self.max_connections!r}")
        if self.tls_key is not None and self.tls_cert is None:
            raise CollectorConfigError("a TLS key without a certificate: pass the certificate "
                                       "(--tls-cert) too")

    @property
    def scheme(self) -> str:
        return "http" if self.tls_cert is None else "https"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server-side TLS context (None without a certificate)."""
        if self.tls_cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise CollectorConfigError(
                f"cannot load the TLS certificate {self.tls_cert}"
                + (f" and key {self.tls_key}" if self.tls_key else "")
                + f" ({exc}); pass PEM files (the key inside the certificate file or given "
                "with --tls-key)") from exc
        return ctx


def _busy_response() -> bytes:
    body = b'{"error":"every connection is busy with a request; retry in a moment"}'
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            % len(body)) + body


BUSY_RESPONSE = _busy_response()  # to a connection past the cap, when none is idle


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


@dataclass(frozen=True)
class Route:
    handler: Handler
    verify: Verifier
    needs_body: bool
    parse: Parser = json.loads


class _Connections:
    """The open connections of one server, the idle ones (waiting for a request) oldest first.

    At the cap a newcomer takes the place of the longest-idle connection, so idle connections,
    however many, never lock out a request; only when every connection is mid-request (each
    bounded by the read timeout) is the newcomer refused.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._idle: OrderedDict[socket.socket, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0

    def admit(self, sock: socket.socket) -> bool:
        with self._lock:
            if len(self._open) >= self.cap:
                if not self._idle:
                    self.refused += 1
                    return False
                oldest, _ = self._idle.popitem(last=False)
                self._open.discard(oldest)
                self.evicted += 1
                _hang_up(oldest)
            self._open.add(sock)
            self._idle[sock] = None  # waiting for its first request
            return True

    def idle(self, sock: socket.socket) -> None:
        with self._lock:
            if sock in self._open:  # not after an eviction
                self._idle[sock] = None
                self._idle.move_to_end(sock)

    def busy(self, sock: socket.socket) -> None:
        with self._lock:
            self._idle.pop(sock, None)

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
            self._idle.pop(sock, None)

    def close_all(self) -> None:
        with self._lock:
            for sock in self._open:
                _hang_up(sock)
            self._open.clear()
            self._idle.clear()

    def __len__(self) -> int:
        return len(self._open)


def _hang_up(sock: socket.socket) -> None:
    """Ends the connection under the thread serving it (its read returns EOF)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS
    except OSError:
        pass


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each allowed only the time left before `deadline`, so a sender
    trickling a byte at a time is cut off when the deadline passes (a per-read timeout alone
    would let it hold the thread for ever). `on_data` is called with the first bytes read
    while `waiting` (for a request); writes keep `write_timeout_s`."""

    def __init__(self, sock: socket.socket, write_timeout_s: float,
                 on_data: Callable[[], None]) -> None:
        self.sock = sock
        self.write_timeout_s = write_timeout_s
        self.on_data = on_data
        self.deadline = math.inf
        self.waiting = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the read deadline passed")
        self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(buffer)
        finally:
            self.sock.settimeout(self.write_timeout_s)
        if n and self.waiting:
            self.on_data()
        return n


class JsonHttpServer:
    """Routes (method, path) to handlers taking the parsed JSON body (None for GET).

    Handlers return `(status, json_able)`; an exception in a handler becomes a 500 with a
    short message (logged), never a dead server. `options` bounds connections and turns on TLS.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY, name: str = "benchwatch",
                 options: ServerOptions | None = None, port_option: str = "another port") -> None:
        """`port_option`: the option a user changes when the port is taken (named in the
        error), e.g. "--port PORT (benchwatch collector serve)"."""
        if not is_loopback(host) and not token:
            raise CollectorConfigError(
                f"refusing to listen on {host} without a token: anyone who can reach it could "
                "send data. Pass --token (or BENCHWATCH_TOKEN) or bind 127.0.0.1")
        self.host = host
        self.token = token or None
        self.max_body = max_body
        self.name = name
        self.port_option = port_option
        self.options = options or ServerOptions()
        self._tls = self.options.ssl_context()  # a bad certificate fails here, before start
        self._routes: dict[tuple[str, str], Route] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections = _Connections(self.options.max_connections)
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
        return f"{self.options.scheme}://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def start(self) -> JsonHttpServer:
        server_self = self
        tls = self._tls
        connections = self._connections

        class RequestHandler(_Handler):
            owner = server_self

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            request_queue_size = 128  # the listen backlog (socketserver's default is 5)

            def get_request(self) -> tuple[Any, Any]:
                sock, addr = super().get_request()
                if tls is not None:  # the handshake runs in the connection's thread, timed
                    sock = tls.wrap_socket(sock, server_side=True,
                                           do_handshake_on_connect=False)
                return sock, addr

            def process_request(self, request: Any, client_address: Any) -> None:
                if connections.admit(request):
                    super().process_request(request, client_address)
                    return
                if not isinstance(request, ssl.SSLSocket):  # no handshake spent on a refusal
                    try:
                        request.setblocking(False)
                        request.send(BUSY_RESPONSE)
                    except OSError:
                        pass
                self.shutdown_request(request)

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    connections.forget(request)

            def handle_error(self, request: Any, client_address: Any) -> None:
                # a client that hangs up, times out or fails the TLS handshake is routine,
                # not a traceback on stderr; anything else still gets the default report
                if isinstance(sys.exc_info()[1], OSError):
                    log.debug("client %s: %s", client_address, sys.exc_info()[1])
                    return
                super().handle_error(request, client_address)

        try:
            self._server = Server((self.host, self._requested_port), RequestHandler)
        except OSError as exc:
            raise CollectorConfigError(
                f"{self.name}: cannot listen on {self.host}:{self._requested_port} ({exc}); "
                f"choose another with {self.port_option}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"{self.name}-http", daemon=True)
        self._thread.start()
        log.info("%s listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._connections.close_all()  # idle keep-alive threads end now, not at a timeout
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
    _reader: _DeadlineReader

    def setup(self) -> None:
        options = self.owner.options
        self.request.settimeout(options.read_timeout_s)
        if isinstance(self.request, ssl.SSLSocket):  # before any file holds the socket open
            self.request.do_handshake()  # bounded by the read timeout
        super().setup()
        self.rfile.close()  # the stdlib's reader, replaced by one that keeps the deadlines
        self._reader = _DeadlineReader(self.connection, options.read_timeout_s,
                                       self._request_started)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # waiting for a request: idle (may be closed to make room), up to the idle timeout
        self._reader.waiting = True
        self._reader.deadline = time.monotonic() + self.owner.options.idle_timeout_s
        self.owner._connections.idle(self.connection)
        super().handle_one_request()

    def _request_started(self) -> None:
        """The first bytes of a request: from now it has the read timeout to arrive whole."""
        if self._reader.waiting:
            self._reader.waiting = False
            self._reader.deadline = time.monotonic() + self.owner.options.read_timeout_s
            self.owner._connections.busy(self.connection)

    def parse_request(self) -> bool:
        self._request_started()  # also when the request line was already buffered
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        # `100 Continue` invites the body: only for one this server would read
        route = self.owner._routes.get((self.command, self.path.split("?", 1)[0]))
        needs_body = route is not None and route.needs_body
        if self._body_length(needs_body, expecting=True) is None:
            return False
        return super().handle_expect_100()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s: " + format, self.owner.name, *args)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, message: str) -> None:
        """Answer and close: what follows on this connection cannot be trusted to be framed."""
        self.close_connection = True
        self._send(status, {"error": message})

    def _drain(self, length: int) -> None:
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            return

    def _body_length(self, needs_body: bool, expecting: bool = False) -> int | None:
        """The body's length, or None after refusing the request: ambiguous framing (which a
        proxy in front may read differently: request smuggling), no length, or too long."""
        lengths = self.headers.get_all("Content-Length") or []
        chunked = "Transfer-Encoding" in self.headers
        if chunked and lengths:
            self._refuse(400, "both Transfer-Encoding and Content-Length: send the body with "
                              "Content-Length only")
            return None
        if len(lengths) > 1:
            self._refuse(400, "more than one Content-Length header: send exactly one")
            return None
        if chunked or (needs_body and not lengths):
            self._refuse(411, "send a Content-Length header (chunked bodies are not accepted)")
            return None
        if not lengths:
            return 0
        text = lengths[0].strip()
        try:
            length = int(text) if _DIGITS.fullmatch(text) else -1
        except ValueError:  # more digits than int() parses
            length = -1
        if length < 0:
            self._refuse(400, "Content-Length is not a number")
            return None
        if not needs_body:
            if length:  # a body nobody reads must not be parsed as the next request
                self.close_connection = True
            return length
        if length > self.owner.max_body:
            self.close_connection = True
            # read (and drop) a moderately oversized body so the sender sees the 413 rather
            # than a broken pipe; past the drain limit, or before `100 Continue`, hang up
            if not expecting and length <= DRAIN_FACTOR * self.owner.max_body:
                self._drain(length)
            self._send(413, {"error": f"body of {length} bytes is over the limit of "
                                      f"{self.owner.max_body}; send smaller batches"})
            return None
        return length

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        route = self.owner._routes.get((method, path))
        if route is None:
            allowed = sorted(m for (m, p) in self.owner._routes if p == path)
            if allowed:
                self._refuse(405, f"use {' or '.join(allowed)} on {path}")
            else:
                self._refuse(404, f"no such endpoint {path}")
            return
        length = self._body_length(route.needs_body)
        if length is None:
            return
        body = b""
        if route.needs_body:
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                self._refuse(408, f"the request did not arrive within "
                                  f"{self.owner.options.read_timeout_s:g} s; send it faster")
                return
            if len(body) < length:  # the sender hung up mid-body
                self.close_connection = True
                return
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
                self._refuse(exc.status, exc.message)
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
                  max_samples: int = DEFAULT_MAX_SAMPLES,
                  options: ServerOptions | None = None,
                  port_option: str = "--port PORT (benchwatch collector serve)") -> JsonHttpServer:
    """An (unstarted) server with `POST /v1/samples` for `collector`."""
    server = JsonHttpServer(host, port, token, max_body, name="collector", options=options,
                            port_option=port_option)
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
