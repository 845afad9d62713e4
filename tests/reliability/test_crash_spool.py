"""Crash: kill -9 the drift service mid-window (embedded transport, SQLite WAL spool), restart.

The worker process runs the real drift service with its evaluator thread and feeds its
in-process sink numbered batches, printing each acknowledgement. We kill it with SIGKILL at
seeded random moments, restart it on the same spool and redeliver everything from the first
batch (a sender that cannot know what was stored resends). Every batch acknowledged before a
kill must come back as duplicates, the batch in flight at the kill is all-or-nothing, and at
the end the windows hold each accepted sample exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from collector import WindowStore
from drift import Baseline

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("crash_worker.py")
BATCH = 25
ROUNDS = 4


def _baselines(tmp_path: Path) -> Path:
    d = tmp_path / "baselines"
    d.mkdir()
    rng = np.random.default_rng(0)
    Baseline.build("digits", "v3", {"confidence": rng.beta(8, 1, 2000),
                                     "predicted_class": [str(k) for k in rng.integers(0, 10, 2000)]},
                   {"latency_p99_s": 0.01}, source="test").save(d / "digits-v3.json")
    return d


class Worker:
    def __init__(self, baselines: Path, state: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--baselines", str(baselines), "--state", str(state),
             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
        self.acks: list[tuple[int, int, int]] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("ready"):
                self.ready.set()
            elif line.startswith("ack "):
                _, i, acc, dup = line.split()
                self.acks.append((int(i), int(acc), int(dup)))

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)

    def finish(self, timeout_s: float = 60) -> None:
        self.proc.wait(timeout_s)
        self._reader.join(10)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""


def test_kill_9_mid_window_then_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    baselines, state = _baselines(tmp_path), tmp_path / "spool.sqlite"
    rnd = random.Random(7)
    acked_max = -1  # highest batch acknowledged before any kill so far
    in_flight: set[int] = set()  # batches that may or may not have been stored at a kill
    stored: set[int] = set()  # batches known to be stored (acknowledged, or seen accepted)
    for _ in range(ROUNDS):
        w = Worker(baselines, state)
        try:
            assert w.ready.wait(60), "worker did not start"
            target = acked_max + 20  # make progress past the previous kill point...
            deadline = time.monotonic() + 30
            while (not w.acks or w.acks[-1][0] < target) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rnd.uniform(0.0, 0.3))  # ...then kill at an arbitrary moment
            w.kill9()
        finally:
            if w.proc.poll() is None:
                w.proc.kill()
        assert w.acks, "no batch acknowledged before the kill"
        for i, accepted, duplicates in w.acks:
            assert i <= acked_max + 1 or (accepted, duplicates) == (BATCH, 0), (i, accepted)
            if i in stored:
                assert (accepted, duplicates) == (0, BATCH), f"batch {i} counted twice"
            elif i in in_flight:
                assert (accepted, duplicates) in ((BATCH, 0), (0, BATCH)), f"batch {i} split"
            else:
                assert (accepted, duplicates) == (BATCH, 0), f"batch {i}: {accepted} accepted"
            stored.add(i)
        acked_max = w.acks[-1][0]
        in_flight = {acked_max + 1}
        # straight after the crash, the spool already holds every acknowledged sample once
        with WindowStore(state, max_per_feature=100_000) as store:
            ids = [f"b{i}-{j}" for i in sorted(stored) for j in range(BATCH)]
            assert len(store.samples(ids)) == len(ids), "an acknowledged sample was lost"
            n = store.count("digits", "v3", "confidence")
            assert n in (len(ids), len(ids) + BATCH), f"window has {n} values for {len(ids)} samples"

    # final clean run: redeliver everything once more, then count
    w = Worker(baselines, state, "--first", "0", "--last", str(acked_max + 1))
    w.finish()
    assert all((a, d) == (0, BATCH) for i, a, d in w.acks if i in stored)
    total = (acked_max + 2) * BATCH
    with WindowStore(state, max_per_feature=100_000) as store:
        assert store.sample_count() == total
        assert store.count("digits", "v3", "confidence") == total
        assert store.count("digits", "v3", "predicted_class") == total
    assert acked_max >= ROUNDS * 20

