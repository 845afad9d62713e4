"""A serving worker for the multi-worker test. Every worker runs the same code and the same
BENCHWATCH_* environment (as under gunicorn/uvicorn --workers): it makes N probed calls,
prints READY and its port, and stays up until stdin closes (then shuts down cleanly)."""

from __future__ import annotations

import sys
import time

from probes import configure, probe, shutdown


def main() -> None:
    calls = int(sys.argv[1])
    rt = configure("multi-worker-test", gpu="off")  # everything else from BENCHWATCH_* env

    @probe(model="mw", version="v1")
    def predict(i: int) -> int:
        time.sleep(0.001 if i % 2 else 0.004)
        return i

    for i in range(calls):
        predict(i)
    assert rt.endpoint is not None
    print("READY", rt.endpoint.port, rt.settings.worker_id, flush=True)
    sys.stdin.read()
    shutdown()


if __name__ == "__main__":
    main()
