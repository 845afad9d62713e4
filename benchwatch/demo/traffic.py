"""Demo traffic: digits images posted to the model server at a steady rate, drifting at a known time.

Before `drift_at_s` the requests are clean held-out digits; from then on the same images with
lower contrast and sensor noise (a camera that got worse), which moves the model's confidence,
entropy and class mix — what the drift service should notice. Seeded, bounded, stops by itself.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


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
    """Posts batches to `host:port` + `path` from `workers` threads at about `rate_qps` requests/s."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        path: str = "/predict",
        rate_qps: float = 40.0,
        drift_at_s: float = 30.0,
        duration_s: float = 60.0,
        workers: int = 4,
        batch: int = 1,
        seed: int = 0,
        body: Callable[[np.ndarray], bytes] = json_body,
        images: np.ndarray | None = None,
    ) -> None:
        if rate_qps <= 0:
            raise ValueError("rate_qps must be > 0")
        self.host, self.port, self.path = host, port, path
        self.rate_qps, self.drift_at_s, self.duration_s = rate_qps, drift_at_s, duration_s
        self.workers, self.batch, self.seed, self.body = workers, batch, seed, body
        self.images = digits_images() if images is None else images
        self._lock = threading.Lock()
        self._sent = self._ok = self._errors = 0
        self._latencies: deque[float] = deque(maxlen=2000)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at: float | None = None  # time.time() of the first request
        self.drift_started_at: float | None = None
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.time()
        t0 = time.monotonic()
        for i in range(self.workers):
            t = threading.Thread(target=self._run, args=(i, t0), name=f"demo-traffic-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

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

    # -- worker ----------------------------------------------------------------------------
    def _run(self, worker: int, t0: float) -> None:
        rng = np.random.default_rng(self.seed * 1000 + worker)
        interval = self.workers / self.rate_qps
        next_at = t0 + worker * interval / self.workers
        conn: http.client.HTTPConnection | None = None
        n = len(self.images)
        while not self._stop.is_set():
            now = time.monotonic()
            elapsed = now - t0
            if elapsed >= self.duration_s:
                break
            if next_at > now:
                self._stop.wait(next_at - now)
                continue
            next_at += interval
            idx = rng.integers(0, n, self.batch)
            x = self.images[idx]
            if elapsed >= self.drift_at_s:
                if self.drift_started_at is None:
                    with self._lock:
                        if self.drift_started_at is None:
                            self.drift_started_at = time.time()
                x = drifted(x, rng)
            conn = self._post(conn, self.body(x))
        if conn is not None:
            conn.close()

    def _post(self, conn: http.client.HTTPConnection | None,
              body: bytes) -> http.client.HTTPConnection | None:
        start = time.perf_counter()
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
        latency = time.perf_counter() - start
        with self._lock:
            self._sent += 1
            if ok:
                self._ok += 1
                self._latencies.append(latency)
            else:
                self._errors += 1
        return conn


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.quantile(np.asarray(values), q)) if values else None
