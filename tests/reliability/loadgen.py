"""A bounded HTTP/1.1 load generator for the probed example server (stops by itself).

    python tests/reliability/loadgen.py --port 8000 --rate 10000 --duration 60

Keep-alive connections with pipelined requests (asyncio streams, no third-party client), paced
to `--rate` requests/s overall; every request gets its response read before the generator
exits, so `sent == answered` unless a connection broke (counted). Each of the `--inputs`
distinct request bodies must always get the same response bytes: a changed answer is counted
as a mismatch. Prints one JSON object with the counts, the rate reached and client latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Stats:
    sent: int = 0
    answered: int = 0
    status: Counter[int] = field(default_factory=Counter)
    mismatched: int = 0
    broken_connections: int = 0
    latencies: list[float] = field(default_factory=list)
    expected: dict[int, bytes] = field(default_factory=dict)


def requests(n_inputs: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    x = rng.random((n_inputs, 64), dtype=np.float32)
    out = []
    for row in x:
        body = json.dumps({"inputs": [[round(float(v), 4) for v in row]]}).encode()
        out.append(b"POST /predict HTTP/1.1\r\nHost: loadgen\r\nContent-Type: application/json"
                   b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def connection(host: str, port: int, reqs: list[bytes], rate: float, t0: float,
                     deadline: float, depth: int, offset: int, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats.broken_connections += 1
        return
    sent_here = 0
    try:
        while loop.time() < deadline:
            # pace: this connection's share of the rate
            due = t0 + sent_here / rate
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            burst = [(offset + sent_here + k) % len(reqs) for k in range(depth)]
            start = time.perf_counter()
            writer.write(b"".join(reqs[i] for i in burst))
            stats.sent += depth
            sent_here += depth
            await writer.drain()
            for i in burst:
                status, body = await read_response(reader)
                stats.answered += 1
                stats.status[status] += 1
                want = stats.expected.setdefault(i, body)
                if status == 200 and body != want:
                    stats.mismatched += 1
            stats.latencies.append((time.perf_counter() - start) / depth)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats.broken_connections += 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def run(host: str, port: int, rate: float, duration: float, connections: int,
              depth: int, n_inputs: int, seed: int) -> dict[str, object]:
    reqs = requests(n_inputs, seed)
    stats = Stats()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    deadline = t0 + duration
    per_conn = rate / connections
    await asyncio.gather(*(connection(host, port, reqs, per_conn, t0, deadline, depth,
                                      c * 7, stats) for c in range(connections)))
    elapsed = loop.time() - t0
    lat = np.asarray(stats.latencies) if stats.latencies else np.zeros(1)
    return {
        "target_rate": rate, "duration_s": round(elapsed, 2), "sent": stats.sent,
        "answered": stats.answered, "rate_reached": round(stats.answered / elapsed, 1),
        "status": {str(k): v for k, v in sorted(stats.status.items())},
        "mismatched": stats.mismatched, "broken_connections": stats.broken_connections,
        "connections": connections, "pipeline_depth": depth,
        "latency_per_request_ms": {"p50": round(float(np.quantile(lat, 0.5)) * 1e3, 3),
                                   "p99": round(float(np.quantile(lat, 0.99)) * 1e3, 3)},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=10_000.0)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--depth", type=int, default=8, help="pipelined requests per round trip")
    p.add_argument("--inputs", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.rate <= 0 or a.duration <= 0 or a.connections < 1 or a.depth < 1:
        p.error("--rate, --duration, --connections and --depth must be positive")
    out = asyncio.run(run(a.host, a.port, a.rate, a.duration, a.connections, a.depth,
                          a.inputs, a.seed))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
