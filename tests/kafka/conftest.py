"""A real Kafka broker (KRaft, loopback, free ports) for the whole session, via scripts/kafka.sh.

The broker's data directory is a temporary directory, so `restart()` keeps data and ports (the
broker-restart test relies on that). Every test uses its own topics (`fresh_topic`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.kafka.topics import create_topics, default_topics

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kafka.sh"


@dataclass
class Broker:
    directory: Path
    bootstrap: str = ""

    def _script(self, *args: str, timeout: float = 120) -> str:
        env = {**os.environ, "KAFKA_PORT": "0", "KAFKA_HEAP": "384m"}
        out = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env,
                             timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"scripts/kafka.sh {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def start(self) -> None:
        out = self._script("start", str(self.directory))
        self.bootstrap = next(line.split("=", 1)[1] for line in out.splitlines()
                              if line.startswith("BOOTSTRAP="))

    def stop(self) -> None:
        self._script("stop", str(self.directory))

    def restart(self) -> None:
        self.stop()
        self.start()

    def topics(self, partitions: int = 6, name: str | None = None) -> str:
        """Create a samples topic (with its dead-letter and state topics), fresh unless `name`
        is given; returns its name once every partition has a leader."""
        name = name or fresh_name()
        create_topics(self.bootstrap, default_topics(name, partitions))
        return name


def fresh_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    if shutil.which("java") is None:
        pytest.fail("Kafka tests need Java 17: apt-get install openjdk-17-jre-headless "
                    "(scripts/bootstrap.sh does)")
    broker = Broker(Path(tempfile.mkdtemp(prefix="benchwatch-kafka-")))
    try:
        broker.start()
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(broker.directory, ignore_errors=True)
