"""Fixtures for the bench tests: real example servers (subprocesses on loopback, free ports,
serving the shipped model), all stopped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchwatch.services import ServiceError, free_port, wait_http
from tests.support.procs import stop_all

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    d = Path(os.environ.get("BENCHWATCH_TEST_ARTIFACTS", ROOT / "runs" / "test-artifacts")) / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    try:
        wait_http(url + "/healthz", timeout_s, proc)
    except ServiceError as exc:
        out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
        raise RuntimeError(f"example server: {exc} {out}") from None


@pytest.fixture(scope="module")
def example_server() -> Iterator[Callable[..., str]]:
    """Factory: `example_server("--tail-fraction", "0.05", ...)` -> base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*flags: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchwatch.example.server", "--port", str(port),
             "--log-level", "WARNING", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        return url

    yield start
    stop_all(procs)


@pytest.fixture(scope="session")
def chromium_screenshot() -> Callable[[Path, Path], str]:
    """Render a page in headless Debian chromium: keep a PNG screenshot, return the DOM."""
    import shutil
    import tempfile

    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run scripts/bootstrap.sh (apt-get install chromium)")

    def shoot(html: Path, png: Path) -> str:
        with tempfile.TemporaryDirectory() as profile:
            common = [binary, "--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--no-first-run",
                      f"--user-data-dir={profile}"]
            subprocess.run([*common, f"--screenshot={png}", "--window-size=1200,1400",
                            html.as_uri()], check=True, capture_output=True, timeout=90)
            dom = subprocess.run([*common, "--dump-dom", html.as_uri()], check=True,
                                 capture_output=True, timeout=90, text=True).stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        return dom

    return shoot
