"""Timeouts, connection caps, framing and TLS on the HTTP servers (issue 16, Medium 7 and the
wire-level Low items), each reproduced against a real server on loopback:

- many idle connections do not lock a normal request out (at the cap the longest-idle one is
  closed for the newcomer); with every connection mid-request a newcomer gets 503 at once;
  the example server's descriptors stay bounded under 20x its cap of idle connections;
- a silent connection is closed after the idle timeout, a slow sender (a byte at a time,
  each within any per-read timeout) after the read timeout;
- ambiguous framing (Transfer-Encoding with Content-Length, two Content-Lengths, a signed
  length) gets 400 and the connection is closed, so a smuggled second request is never served;
- `Expect: 100-continue` with an oversize length gets 413 and no `100 Continue`;
- HTTPS with a self-signed certificate made here (openssl CLI), for the collector (HttpSink
  too), the drift service and the example server; bad certificate files and bad options
  are refused with a clear error.
The collector's server (`collector.http_server.JsonHttpServer`, also the drift service's) and
the example model server (`benchwatch.example.server`, raw asyncio) are both covered.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchwatch.cli import _server_options
from benchwatch.example.server import ServerConfig, serve
from collector import Collector, WindowStore
from collector.errors import CollectorConfigError
from collector.http_server import ServerOptions, ingest_server
from probes.samples import Sample
from probes.sinks.http import HttpSink
from tests.support.sockets import hung_up
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
ROW = [0.0] * 64


@dataclass
class Target:
    """A running server: where to send a valid request, and how many connections it holds."""

    kind: str
    port: int
    path: str
    body: bytes
    open_connections: Callable[[], int] | None = None


def samples_body(*ids: str) -> bytes:
    return json.dumps({"samples": [Sample("digits", "v3", i, 1.0, {"confidence": 0.5}).to_dict()
                                   for i in ids]}).encode()


@contextmanager
def collector_server(options: ServerOptions) -> Iterator[Target]:
    store = WindowStore(None)
    server = ingest_server(Collector(store), port=0, options=options).start()
    try:
        yield Target("collector", server.port, "/v1/samples", samples_body("a"),
                     lambda: server.open_connections)
    finally:
        server.stop()
        store.close()


@contextmanager
def example_server(options: ServerOptions) -> Iterator[Target]:
    state: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            state["loop"], state["stop"] = asyncio.get_running_loop(), stop
            await serve(ServerConfig(port=0, options=options),
                        ready=lambda p: (state.update(port=p), ready.set()), stop=stop)

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(60), "the example server did not start"
    try:
        yield Target("example", state["port"], "/predict", json.dumps({"inputs": [ROW]}).encode())
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


SERVERS = {"collector": collector_server, "example": example_server}


def request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def read_all(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout_s` passes)."""
    sock.settimeout(timeout_s)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def exchange(port: int, data: bytes, timeout_s: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return read_all(sock, timeout_s)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def served(target: Target, timeout_s: float = 10.0) -> int:
    """The status of one normal request on a fresh connection (0: cut off, e.g. refused)."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=timeout_s)
    try:
        conn.request("POST", target.path, target.body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (ConnectionError, http.client.RemoteDisconnected):
        return 0
    finally:
        conn.close()


def closed_by_server(sock: socket.socket, timeout_s: float) -> bool:
    """True when the server closed `sock` (EOF or reset) within `timeout_s`."""
    sock.settimeout(timeout_s)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture(params=sorted(SERVERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- connection cap ------------------------------------------------------------------------
def test_idle_connections_do_not_lock_out_a_request(kind: str) -> None:
    cap = 8
    with SERVERS[kind](ServerOptions(idle_timeout_s=60, max_connections=cap)) as target:
        idle = [socket.create_connection(("127.0.0.1", target.port)) for _ in range(5 * cap)]
        try:
            t0 = time.monotonic()
            assert served(target) == 200
            assert time.monotonic() - t0 < 5  # not after an idle timeout (60 s)
            count = target.open_connections
            if count is not None:
                wait_until(lambda: count() <= cap, what=f"at most {cap} open connections")
            # the oldest idle connections were the ones closed to make room
            assert closed_by_server(idle[0], 5)
        finally:
            for s in idle:
                s.close()


def test_past_the_cap_with_every_connection_mid_request_a_newcomer_gets_503(kind: str) -> None:
    cap = 4
    with SERVERS[kind](ServerOptions(read_timeout_s=60, max_connections=cap)) as target:
        def begin_request() -> socket.socket:  # busy, not idle: it has begun a request
            s = socket.create_connection(("127.0.0.1", target.port))
            s.sendall(f"POST {target.path} HTTP/1.1\r\nHost: x\r\n".encode())
            return s

        started = [begin_request() for _ in range(cap)]
        try:
            def refused() -> bool:
                # one still idle when a newcomer came (its bytes not yet read) made room for it
                for i, s in enumerate(started):
                    if hung_up(s):
                        started[i] = begin_request()
                probe = request("POST", target.path, target.body, "Connection: close\r\n")
                return status_of(exchange(target.port, probe, 5)) == 503

            wait_until(refused, what="a 503 for a connection past the cap")
        finally:
            for s in started:
                s.close()
        wait_until(lambda: served(target) == 200, what="a request served once they hang up")


def test_example_server_descriptors_stay_bounded_under_an_idle_flood(tmp_path: Path) -> None:
    cap, flood = 32, 640
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchwatch.example.server", "--port", "0",
         "--max-connections", str(cap), "--idle-timeout", "60"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    idle: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        fds = lambda: len(os.listdir(f"/proc/{proc.pid}/fd"))  # noqa: E731
        before = fds()
        for _ in range(flood):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        target = Target("example", port, "/predict", json.dumps({"inputs": [ROW]}).encode())
        assert served(target) == 200
        wait_until(lambda: fds() <= before + cap + 1, what="the server's descriptors bounded")
        assert proc.poll() is None
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        proc.wait(10)


# -- timeouts ------------------------------------------------------------------------------
def test_a_silent_connection_is_closed_after_the_idle_timeout(kind: str) -> None:
    with SERVERS[kind](ServerOptions(idle_timeout_s=0.5)) as target:
        with socket.create_connection(("127.0.0.1", target.port)) as sock:
            t0 = time.monotonic()
            assert closed_by_server(sock, 15)
            assert time.monotonic() - t0 >= 0.4


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_slow_sender_is_cut_off_after_the_read_timeout(kind: str, where: str) -> None:
    timeout_s = 1.0
    with SERVERS[kind](ServerOptions(read_timeout_s=timeout_s)) as target:
        with socket.create_connection(("127.0.0.1", target.port)) as sock:
            t0 = time.monotonic()
            if where == "headers":
                sock.sendall(f"POST {target.path} HTTP/1.1\r\n".encode())
                trickle = b"X-Slow: " + b"a" * 1000
            else:
                sock.sendall(f"POST {target.path} HTTP/1.1\r\nHost: x\r\n"
                             f"Content-Length: 1000\r\n\r\n".encode())
                trickle = b" " * 1000
            sock.settimeout(0.1)
            answer = b""
            cut = False
            for byte in trickle:  # a byte every 0.1 s: each read is quick, the request slow
                try:
                    sock.sendall(bytes([byte]))
                    answer += sock.recv(65536)  # waits 0.1 s for an answer
                    if not answer or answer.endswith(b"}"):
                        cut = True
                        break
                except TimeoutError:
                    continue
                except OSError:  # reset or broken pipe: cut off
                    cut = True
                    break
                if time.monotonic() - t0 > 15:
                    break
            elapsed = time.monotonic() - t0
        assert cut, f"still connected after {elapsed:.1f} s"
        assert timeout_s * 0.9 <= elapsed < 10, elapsed
        assert answer == b"" or status_of(answer) == 408, answer
        assert served(target) == 200


# -- framing -------------------------------------------------------------------------------
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("headers", [
    "Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n",
    "Content-Length: {n}\r\nContent-Length: {n}\r\n",
    "Content-Length: {n}\r\nContent-Length: 0\r\n",
    "Content-Length: +{n}\r\n",
], ids=["cl-te", "te-cl", "two-equal-cl", "two-cl", "signed-cl"])
def test_ambiguous_framing_gets_400_and_nothing_after_it_is_served(kind: str,
                                                                   headers: str) -> None:
    with SERVERS[kind](ServerOptions()) as target:
        body = target.body
        raw = (f"POST {target.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               + headers.format(n=len(body)) + "\r\n").encode() + body + SMUGGLED
        got = exchange(target.port, raw)
        assert status_of(got) == 400, got
        assert got.count(b"HTTP/1.1 ") == 1, got  # the connection closed: no smuggled answer
        assert b"error" in got


def test_expect_continue_with_an_oversize_length_gets_413_without_100(kind: str) -> None:
    with SERVERS[kind](ServerOptions()) as target:
        head = (f"POST {target.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {64 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n").encode()
        got = exchange(target.port, head)  # sends no body: waits for the answer
        assert status_of(got) == 413, got
        assert b"100 Continue" not in got


def test_expect_continue_with_a_fine_length_gets_100_then_the_answer(kind: str) -> None:
    with SERVERS[kind](ServerOptions()) as target:
        head = (f"POST {target.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(target.body)}\r\nExpect: 100-continue\r\n"
                "Connection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
            sock.sendall(head)
            interim = sock.recv(65536)
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
            sock.sendall(target.body)
            final = read_all(sock)
        assert status_of(final) == 200, final


# -- TLS -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def https_status(port: int, cert: Path, method: str, path: str, body: bytes | None) -> int:
    ctx = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_tls_serves_https_and_nothing_in_plain_text(kind: str,
                                                    certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SERVERS[kind](ServerOptions(tls_cert=cert, tls_key=key, read_timeout_s=2)) as target:
        assert https_status(target.port, cert, "POST", target.path, target.body) == 200
        got = exchange(target.port, request("POST", target.path, target.body), 10)
        assert status_of(got) == 0, got  # plain HTTP is never answered as HTTP
        assert https_status(target.port, cert, "GET", "/healthz", None) == 200
        count = target.open_connections
        if count is not None:  # the failed handshake let its socket go
            wait_until(lambda: count() == 0, what="no connection left open")


def test_http_sink_delivers_over_tls(certificate: tuple[Path, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the senders' trust store: our CA
    store = WindowStore(None)
    server = ingest_server(Collector(store), port=0,
                           options=ServerOptions(tls_cert=cert, tls_key=key)).start()
    try:
        assert server.url.startswith("https://")
        HttpSink(server.url).send([Sample("digits", "v3", "tls-1", 1.0, {"confidence": 0.7})])
        assert store.values("digits", "v3", "confidence") == [0.7]
    finally:
        server.stop()
        store.close()


def test_drift_service_serves_its_routes_over_tls(certificate: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    from drift.service.engine import DriftService, ServiceConfig

    cert, key = certificate
    service = DriftService(ServiceConfig(tmp_path, metrics_port=0, ingest_port=0,
                                         server=ServerOptions(tls_cert=cert, tls_key=key)))
    with service:
        assert service.url is not None and service.url.startswith("https://")
        port = int(service.url.rsplit(":", 1)[1])
        assert https_status(port, cert, "GET", "/v1/status", None) == 200


def test_bad_tls_files_are_refused_naming_them(tmp_path: Path,
                                               certificate: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(CollectorConfigError, match="junk.pem"):
        ingest_server(Collector(WindowStore(None)), options=ServerOptions(tls_cert=junk))
    with pytest.raises(CollectorConfigError, match="without a certificate"):
        ServerOptions(tls_key=certificate[1])


# -- options -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [dict(idle_timeout_s=0), dict(read_timeout_s=float("nan")),
                                 dict(read_timeout_s=float("inf")), dict(max_connections=0)])
def test_bad_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(CollectorConfigError, match=next(iter(bad))):
        ServerOptions(**bad)


def test_the_cli_defaults_are_the_servers() -> None:
    d = ServerOptions()
    assert (_server_options.DEFAULT_IDLE_TIMEOUT_S, _server_options.DEFAULT_READ_TIMEOUT_S,
            _server_options.DEFAULT_MAX_CONNECTIONS) == (d.idle_timeout_s, d.read_timeout_s,
                                                         d.max_connections)


@pytest.mark.parametrize("args,says", [
    (["--idle-timeout", "nan"], "positive number of seconds"),
    (["--max-connections", "0"], "at least 1"),
    (["--tls-key", "k.pem"], "without a certificate"),
    (["--tls-cert", "missing.pem"], "missing.pem"),
])
def test_cli_misuse_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchwatch", "collector", "serve", "--state",
                           str(tmp_path / "c.sqlite"), "--port", "0", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BENCHWATCH_TOKEN": ""})
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
