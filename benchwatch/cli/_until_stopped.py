"""Block a long-running verb until SIGTERM or Ctrl-C (shared by `drift serve`, `collector serve`)."""

from __future__ import annotations

import signal
import threading


def wait_until_stopped(stop: threading.Event) -> None:
    """Wait until `stop` is set, SIGTERM arrives or Ctrl-C is pressed; then set `stop`."""
    previous = signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()
