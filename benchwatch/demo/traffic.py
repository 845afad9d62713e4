"""Demo traffic: digits images posted to the model server at a steady rate (Poisson arrivals),
drifting at a known time.

The load is the release benchmark's fixed-rate scenario (`benchwatch.bench.runner.
run_server_step`), so live client figures are measured as the baseline's were: one seeded
Poisson schedule, each arrival handed to the next free client thread when due, and latency
counted from the *scheduled* arrival (as LoadGen counts it). A client that stalls (CPU, GIL)
then issues the requests it owes at once and their wait counts as latency, rather than
going unmeasured as it would timed from the send.

Before `drift_at_s` the requests are clean held-out digits; from then on the same images with
lower contrast and sensor noise (a camera that got worse), which moves the model's confidence,
entropy and class mix — what the drift service should notice. Seeded, bounded, stops by itself.

`benchwatch demo` runs it as its own process, a client as it would be deployed, so its CPU and
GIL never share a process with the server it measures:

    python -m benchwatch.demo.traffic --url http://127.0.0.1:8000/predict --rate 40 \
        --drift-at 40 --duration 120 --status traffic.json

The status file (JSON, replaced atomically every `--every` seconds and at exit) holds the
counts, when traffic and drift started (unix time), the recent client latencies and the
client-side quantiles of the clean (pre-drift) requests. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import queue
import signal
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.bench.runner import nap_before
from benchwatch.bench.stats import min_queries, quantile
from benchwatch.demo.tail import of_values

log = logging.getLogger(__name__)

MAX_CLEAN = 200_000  # pre-drift latencies kept for their quantiles (200 req/s: > 16 minutes)
RECENT = min_queries(0.99) + 38  # recent latencies written to the status file: enough for a p99
# the first requests (connections, a cold model) are left out of the clean quantiles, as the
# benchmark discards its warm-up queries (`RunSettings.warmup_queries`)
WARMUP_REQUESTS = 100


@dataclass(frozen=True)
class TrafficStats:
    sent: int
    ok: int
    errors: int
    drifting: bool
    latencies_s: tuple[float, ...]  # the most recent client-side latencies (bounded)


def digits_images() -> np.ndarray:
    """The shipped `digits` suite's held-out digits (scaled to [0, 1]), which the example model
    never trained on."""
    from benchwatch.bench.suites import load_suite

    return np.asarray(load_suite("digits").inputs, dtype=np.float32)


def drifted(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lower contrast plus sensor noise, clipped to the pixels' [0, 1] range."""
    noisy = 0.5 * images + rng.normal(0.0, 0.25, images.shape) + 0.2
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def json_body(batch: np.ndarray) -> bytes:
    return json.dumps({"inputs": batch.tolist()}).encode()


class Traffic:
    """Posts batches to `host:port` + `path` from `workers` threads, Poisson arrivals at
    `rate_qps` requests/s on average from one schedule; latency from the scheduled arrival."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        path: str = "/predict",
        rate_qps: float = 40.0,
        drift_at_s: float = 30.0,
        duration_s: float = 60.0,
        workers: int = 2,
        batch: int = 1,
        seed: int = 0,
        clean_calls: int = 0,
        body: Callable[[np.ndarray], bytes] = json_body,
        images: np.ndarray | None = None,
        drift: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    ) -> None:
        if rate_qps <= 0:
            raise ValueError("rate_qps must be > 0")
        self.host, self.port, self.path = host, port, path
        self.rate_qps, self.drift_at_s, self.duration_s = rate_qps, drift_at_s, duration_s
        self.workers, self.batch, self.seed, self.body = workers, batch, seed, body
        self.clean_calls = clean_calls  # the clean quantiles' calls after the warm-up; 0: all
        self.images = digits_images() if images is None else images
        self.drift = drifted if drift is None else drift  # what the drift does to a request
        self._lock = threading.Lock()
        self._sent = self._ok = self._errors = 0
        self._latencies: deque[float] = deque(maxlen=2000)
        self._clean: list[float] = []  # client latencies of the requests sent before the drift
        # after the warm-up and the window, no more: the clean quantiles are then final
        self._clean_max = min(MAX_CLEAN, WARMUP_REQUESTS + clean_calls) if clean_calls \
            else MAX_CLEAN
        self._clean_summary: tuple[int, dict[str, Any]] | None = None  # (calls, quantiles)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at: float | None = None  # time.time() of the first request
        self.drift_started_at: float | None = None
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.time()
        t0 = time.perf_counter()
        due: queue.SimpleQueue[float | None] = queue.SimpleQueue()  # scheduled arrivals
        self._threads = [threading.Thread(target=self._schedule, args=(t0, due),
                                          name="demo-traffic-schedule", daemon=True)]
        self._threads += [threading.Thread(target=self._work, args=(i, t0, due),
                                           name=f"demo-traffic-{i}", daemon=True)
                          for i in range(self.workers)]
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)

    @property
    def drifting(self) -> bool:
        return self.drift_started_at is not None

    def stats(self) -> TrafficStats:
        with self._lock:
            return TrafficStats(self._sent, self._ok, self._errors, self.drifting,
                                tuple(self._latencies))

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def status(self) -> dict[str, Any]:
        """What the status file holds (see the module docstring)."""
        with self._lock:
            recent = list(self._latencies)[-RECENT:]
            counts = {"sent": self._sent, "ok": self._ok, "errors": self._errors}
        return {
            "pid": os.getpid(), **counts, "started_at": self.started_at,
            "drift_started_at": self.drift_started_at, "last_error": self.last_error,
            "rate_qps": self.rate_qps, "workers": self.workers,
            "recent_latencies_s": recent, "clean": self._clean_quantiles(),
            "done": bool(self._threads) and not self.alive(),
        }

    def _clean_quantiles(self) -> dict[str, Any]:
        """The clean calls' quantiles and the p99's interval as the bench takes them (order
        statistics); kept once no call can join them, so a full window costs the client no
        more work beside the calls it times."""
        with self._lock:
            n = len(self._clean)
            if self._clean_summary is not None and self._clean_summary[0] == n:
                return self._clean_summary[1]
            first = WARMUP_REQUESTS if n > 2 * WARMUP_REQUESTS else 0
            clean = np.asarray(self._clean[first:first + self.clean_calls if self.clean_calls
                                           else None])
        summary = {"n": int(clean.size),
                   "p50_s": quantile(clean, 0.5) if clean.size else None,
                   "p99_s": quantile(clean, 0.99) if clean.size else None,
                   "p99_interval_s": of_values(0.99, clean)}
        self._clean_summary = (n, summary)
        return summary

    # -- schedule and workers --------------------------------------------------------------
    def _schedule(self, t0: float, due: queue.SimpleQueue[float | None]) -> None:
        """Poisson arrivals (production's load shape and the bench's `server_<R>qps`), each
        queued when due for the next free worker; everything due is issued at once."""
        rng = np.random.default_rng(self.seed)
        at = t0 + rng.exponential(1.0 / self.rate_qps)
        while at - t0 < self.duration_s and not self._stop.is_set():
            if at <= time.perf_counter():
                due.put(at)
                at += rng.exponential(1.0 / self.rate_qps)
            else:  # the bench's wait (a timed Event.wait woke ~1 ms late); 0.1 s: sees a stop
                nap_before(at, 0.1)
        for _ in range(self.workers):
            due.put(None)

    def _work(self, worker: int, t0: float, due: queue.SimpleQueue[float | None]) -> None:
        rng = np.random.default_rng(self.seed * 1000 + worker)
        conn: http.client.HTTPConnection | None = None
        n = len(self.images)
        while (at := due.get()) is not None and not self._stop.is_set():
            x = self.images[rng.integers(0, n, self.batch)]
            clean = at - t0 < self.drift_at_s
            if not clean:
                if self.drift_started_at is None:
                    with self._lock:
                        if self.drift_started_at is None:
                            self.drift_started_at = time.time()
                x = self.drift(x, rng)
            conn = self._post(conn, self.body(x), clean, at)
        if conn is not None:
            conn.close()

    def _post(self, conn: http.client.HTTPConnection | None, body: bytes, clean: bool,
              scheduled: float) -> http.client.HTTPConnection | None:
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            ok = 200 <= resp.status < 300
            if not ok:
                self.last_error = f"HTTP {resp.status}"
        except (OSError, http.client.HTTPException) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            if conn is not None:
                conn.close()
            conn = None
        latency = time.perf_counter() - scheduled
        with self._lock:
            self._sent += 1
            if ok:
                self._ok += 1
                self._latencies.append(latency)
                if clean and len(self._clean) < self._clean_max:
                    self._clean.append(latency)
            else:
                self._errors += 1
        return conn


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.quantile(np.asarray(values), q)) if values else None


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace `path` atomically, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The traffic process's last status, or None before its first write."""
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None


def run_cli(argv: list[str] | None, *, prog: str, description: str, url_help: str,
            default_path: str, extra: Callable[[], dict[str, Any]] = dict) -> int:
    """The traffic command line, shared by the digits and the language-model traffic: parse
    `argv`, run a `Traffic` (with the arguments `extra()` adds, built once `argv` is parsed)
    and keep its status file."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--url", required=True, help=url_help)
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    p.add_argument("--drift-at", type=float, default=30.0, help="seconds of clean traffic")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of traffic in all")
    p.add_argument("--workers", type=int, default=2,
                   help="client threads (default 2, as the bench's server scenario)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clean-calls", type=int, default=0,
                   help="the clean quantiles over at most this many calls after the warm-up "
                        "(default 0: all of them; the demo gives its baseline's count)")
    p.add_argument("--status", type=Path, required=True, help="status file (JSON) to keep")
    p.add_argument("--every", type=float, default=0.5, help="status period in seconds")
    a = p.parse_args(argv)
    url = urllib.parse.urlsplit(a.url)
    if url.scheme != "http" or not url.hostname or not url.port:
        p.error(f"--url must be http://HOST:PORT/PATH, got {a.url!r}")
    if a.rate <= 0 or a.duration <= 0 or a.workers < 1 or a.every <= 0 or a.clean_calls < 0:
        p.error("--rate, --duration and --every must be > 0, --workers >= 1 and "
                "--clean-calls >= 0")
    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    t = Traffic(url.hostname, url.port, path=url.path or default_path, rate_qps=a.rate,
                drift_at_s=a.drift_at, duration_s=a.duration, workers=a.workers,
                seed=a.seed, clean_calls=a.clean_calls, **extra())
    t.start()
    try:
        write_status(a.status, t.status())  # the demo's readiness condition
        while t.alive() and not stop.wait(a.every):
            write_status(a.status, t.status())
    finally:
        t.stop()
        write_status(a.status, t.status())
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, prog="python -m benchwatch.demo.traffic",
                   description="post digits to a model server at a steady rate, "
                   "drifting at a known time",
                   url_help="the model's endpoint, http://HOST:PORT/predict",
                   default_path="/predict")


if __name__ == "__main__":
    raise SystemExit(main())
