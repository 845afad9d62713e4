"""Demo traffic for the language model: the `text` suite's prompts posted to the streaming server
at a steady rate (Poisson arrivals), each stream read to its end, drifting at a known time.

Before `drift_at_s` the requests decode greedily (temperature 0), as the release benchmark did;
from then on the clients sample at temperature 1 (a client configuration change), which makes
the answers shorter, ended by a newline more often and less confident: the output-length,
stop-reason, confidence and entropy features the drift service watches.

    python -m benchwatch.demo.lm_traffic --url http://127.0.0.1:8000/generate --rate 40 \
        --drift-at 40 --duration 120 --status traffic.json

The status file is the digits traffic's (`benchwatch.demo.traffic`): the same generator, with
prompts as its requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from benchwatch.demo.traffic import Traffic, write_status

MAX_TOKENS = 64
DRIFT_TEMPERATURE = 1.0


def requests() -> np.ndarray:
    """One request per prompt of the shipped `text` suite, greedy (an object array of dicts)."""
    from benchwatch.bench.text_suite import load_text_suite

    suite = load_text_suite("text")
    out = np.empty(len(suite), dtype=object)
    for i, p in enumerate(suite.prompts):
        out[i] = {"prompt": p, "max_tokens": suite.max_tokens, "temperature": 0.0, "seed": 0}
    return out


def drifted(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same prompts, sampled at temperature 1 with a fresh seed each."""
    out = np.empty(len(batch), dtype=object)
    for i, req in enumerate(batch):
        out[i] = {**req, "temperature": DRIFT_TEMPERATURE, "seed": int(rng.integers(0, 2**31))}
    return out


def body(batch: np.ndarray) -> bytes:
    return json.dumps(batch[0]).encode()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchwatch.demo.lm_traffic",
                                description="post prompts to the streaming language-model "
                                "server at a steady rate, drifting at a known time")
    p.add_argument("--url", required=True, help="the endpoint, http://HOST:PORT/generate")
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    p.add_argument("--drift-at", type=float, default=30.0, help="seconds of clean traffic")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of traffic in all")
    p.add_argument("--workers", type=int, default=4, help="client threads (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--status", type=Path, required=True, help="status file (JSON) to keep")
    p.add_argument("--every", type=float, default=0.5, help="status period in seconds")
    a = p.parse_args(argv)
    url = urllib.parse.urlsplit(a.url)
    if url.scheme != "http" or not url.hostname or not url.port:
        p.error(f"--url must be http://HOST:PORT/PATH, got {a.url!r}")
    if a.rate <= 0 or a.duration <= 0 or a.workers < 1 or a.every <= 0:
        p.error("--rate, --duration and --every must be > 0 and --workers >= 1")
    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    traffic = Traffic(url.hostname, url.port, path=url.path or "/generate", rate_qps=a.rate,
                      drift_at_s=a.drift_at, duration_s=a.duration, workers=a.workers,
                      seed=a.seed, body=body, images=requests(), drift=drifted)
    traffic.start()
    try:
        write_status(a.status, traffic.status())  # the demo's readiness condition
        while traffic.alive() and not stop.wait(a.every):
            write_status(a.status, traffic.status())
    finally:
        traffic.stop()
        write_status(a.status, traffic.status())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
