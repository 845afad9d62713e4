"""A serving worker for the multi-worker test: configure with its own identity and port,
make N probed calls, print READY, stay up until stdin closes (then shut down cleanly)."""

from __future__ import annotations

import sys
import time

from probes import configure, probe, shutdown


def main() -> None:
    worker_id, port, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    configure("multi-worker-test", worker_id=worker_id, prometheus_port=port, gpu="off")

    @probe(model="mw", version="v1")
    def predict(i: int) -> int:
        time.sleep(0.001 if i % 2 else 0.004)
        return i

    for i in range(calls):
        predict(i)
    print("READY", flush=True)
    sys.stdin.read()
    shutdown()


if __name__ == "__main__":
    main()
