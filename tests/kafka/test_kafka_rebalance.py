"""Two drift workers in one group (subprocesses); one is killed with SIGKILL mid-stream; the
survivor takes its partitions over with the windows intact and nothing counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from collector import WindowStore
from collector.kafka.topics import describe
from probes.samples import Sample
from probes.sinks.kafka import KafkaSink
from tests.support.wait import wait_until

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
MODELS = [f"m{k}" for k in range(8)]


def start_worker(bootstrap: str, topic: str, state: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "benchwatch", "--log-level", "INFO", "kafka", "consume",
           "--bootstrap", bootstrap, "--topic", topic, "--group", "drift", "--state", str(state),
           "--window", "100000"]
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def assigned(log: Path) -> list[int]:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if "owning partitions" in ln]
    return json.loads(lines[-1].split("owning partitions ")[1].split(" of ")[0]) if lines else []


def test_worker_killed_mid_stream_rebalances_with_windows_intact(kafka_broker: Any,
                                                                  tmp_path: Path) -> None:
    topic = kafka_broker.topics(partitions=4)
    logs = {w: tmp_path / f"{w}.log" for w in ("a", "b")}
    procs = {w: start_worker(kafka_broker.bootstrap, topic, tmp_path / f"{w}.db", logs[w])
             for w in ("a", "b")}
    try:
        wait_until(lambda: len(assigned(logs["a"])) == 2 and len(assigned(logs["b"])) == 2, 60,
                   "both workers to hold 2 partitions each")
        sink = KafkaSink(f"kafka://{kafka_broker.bootstrap}/{topic}", linger_ms=5)
        produced: dict[str, list[float]] = {m: [] for m in MODELS}
        stop = threading.Event()

        def produce() -> None:  # ~2 400 samples/s, each value unique
            i = 0
            while not stop.is_set():
                batch = [Sample.new(MODELS[(i + j) % len(MODELS)], "v1", {"x": float(i + j)})
                         for j in range(24)]
                for s in batch:
                    produced[s.model].append(float(s.outputs["x"]))  # type: ignore[arg-type]
                sink.send(batch)
                i += 24
                time.sleep(0.01)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            time.sleep(3.0)
            os.kill(procs["a"].pid, signal.SIGKILL)  # mid-stream, no goodbye to the group
            procs["a"].wait(timeout=10)
            wait_until(lambda: len(assigned(logs["b"])) == 4, 60, "b to take over all partitions")
            time.sleep(1.0)
        finally:
            stop.set()
            thread.join()
        assert sink.flush(30)
        assert sink.stats().acked == sum(len(v) for v in produced.values())
        sink.close()
        wait_until(lambda: describe(kafka_broker.bootstrap, "drift", topic)["lag"] == 0, 60,
                   "the group to commit everything")
        procs["b"].send_signal(signal.SIGTERM)
        assert procs["b"].wait(timeout=30) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    a_store = WindowStore(tmp_path / "a.db", max_per_feature=100_000)
    assert any(a_store.count(m, "v1", "x") for m in MODELS), "worker a consumed nothing before it died"
    a_store.close()
    store = WindowStore(tmp_path / "b.db", max_per_feature=100_000)
    for model in MODELS:
        values = store.values(model, "v1", "x")
        assert len(values) == len(set(values)), f"{model}: a sample was counted twice"
        assert sorted(values) == sorted(produced[model]), f"{model}: windows not intact"
    stopped = json.loads(logs["b"].read_text().strip().splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["restored_models"] >= 1, stopped
    store.close()
