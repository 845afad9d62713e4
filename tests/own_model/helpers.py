"""What the own-model test needs around the guide: its files and commands, processes it starts
(and stops by their own process group), a webhook that records Alertmanager's notifications
(standing in for Slack or PagerDuty), and traffic to the served model."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.services import free_port, wait_http
from tests.support.wheel import ROOT, clean_env

GUIDE = ROOT / "docs" / "own-model.md"


# --- the guide ------------------------------------------------------------------------------
def guide_files() -> dict[str, str]:
    """The code blocks the guide names (`<!-- file: NAME -->` before a fenced block)."""
    text = GUIDE.read_text()
    return {m.group(1): m.group(2) for m in re.finditer(
        r"<!-- file: (\S+) -->\s*```\w*\n(.*?)```", text, flags=re.S)}


def _words(text: str) -> str:
    """Shell words as the shell passes them: continuations joined, single quotes gone."""
    return " ".join(text.replace("\\\n", " ").replace("'", "").split())


def guided(*argv: str) -> list[str]:
    """`argv` as written in one of the guide's commands (word for word, line continuations
    joined); the test may then add what differs on a test host (ports, short intervals)."""
    command = " ".join(argv)
    blocks = " ".join(_words(b) for b in re.findall(r"```bash\n(.*?)```", GUIDE.read_text(),
                                                    flags=re.S))
    assert command in blocks, f"docs/own-model.md has no command {command!r}"
    return list(argv)


# --- processes ------------------------------------------------------------------------------
@dataclass
class Processes:
    """Processes the test starts, each in its own session; `stop()` ends each group."""
    logs: Path
    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, cmd: Sequence[str | Path], cwd: Path,
              env: Mapping[str, str] | None = None, ready: str | None = None,
              timeout_s: float = 120) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (the child's lifetime)
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=clean_env(env),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((name, proc))
        if ready:
            try:
                wait_http(ready, timeout_s, proc)
            except Exception as e:
                raise AssertionError(f"{name} did not start: {e}\n{self.tail(name)}") from None
        return proc

    def tail(self, name: str, n: int = 40) -> str:
        path = self.logs / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(lines[-n:])

    def stop(self, name: str | None = None) -> None:
        for n, proc in reversed(self.started):
            if name is not None and n != name:
                continue
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: uvicorn's workers too
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def free_port_pair() -> int:
    """A port p with p and p + 1 free (one per uvicorn worker)."""
    for _ in range(200):
        p = free_port()
        try:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise AssertionError("no two adjacent free ports on 127.0.0.1")


# --- Alertmanager's notifications -----------------------------------------------------------
@dataclass
class Notification:
    at: float  # time.monotonic() on arrival
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body.get("status"))

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return list(self.body.get("alerts", []))


class Webhook:
    """An HTTP receiver that keeps every notification Alertmanager posts to it."""

    def __init__(self) -> None:
        self.received: list[Notification] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.received.append(Notification(time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def since(self, t: float) -> list[Notification]:
        with self.lock:
            return [n for n in self.received if n.at >= t]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- traffic --------------------------------------------------------------------------------
class Traffic:
    """POST /predict batches of 1-4 rows at about `rate` requests/s from the held-out rows,
    clean or drifted (every feature scaled by `drift_factor`), on one keep-alive connection."""

    def __init__(self, port: int, rows: np.ndarray, rate: float = 40.0,
                 drift_factor: float = 1.6, seed: int = 0) -> None:
        self.port, self.rows, self.rate, self.factor = port, rows, rate, drift_factor
        self.drifted = False
        self.sent = self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._rng = random.Random(seed)
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def pause(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    def post(self, conn: http.client.HTTPConnection, batch: np.ndarray) -> dict[str, Any]:
        conn.request("POST", "/predict", json.dumps({"rows": batch.tolist()}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}: {data[:200]!r}")
        return dict(json.loads(data))

    def _loop(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.05)
                continue
            k = self._rng.randint(1, 4)
            batch = self.rows[[self._rng.randrange(len(self.rows)) for _ in range(k)]]
            if self.drifted:
                batch = batch * self.factor
            try:
                self.post(conn, batch)
                self.sent += 1
            except (OSError, http.client.HTTPException) as e:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(str(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self._stop.wait(self._rng.expovariate(self.rate))
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
