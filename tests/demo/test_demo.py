"""`benchwatch demo` end to end, as a user runs it (a subprocess, no TTY), and its Ctrl-C.

Real everything: the example model and server, probes, the drift service, Prometheus and
Alertmanager (Debian packages), the report. The first test checks the product's promise (no
alert before the drift, the drift alert within 60 s of it, a report is written, exit 0) and
that the model server, the drift service and the traffic generator ran as processes of their
own, all gone at exit; the second that Ctrl-C leaves no process, no listening port behind, and
that everything listened on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from benchwatch import services
from benchwatch.demo.session import RATE_QPS

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ALL_FREE_PORTS = ["--port", "0", "--metrics-port", "0", "--drift-port", "0",
                  "--prometheus-port", "0", "--alertmanager-port", "0"]


def _need_binaries() -> None:
    if services.find_binary(services.PROMETHEUS_BIN) is None or \
            services.find_binary(*services.ALERTMANAGER_BINS) is None:
        pytest.fail(f"Prometheus/Alertmanager are needed for this test: {services.INSTALL_HINT}")


@dataclass
class DemoRun:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # every pid of the process tree, ever
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.seen.update(p.pid for p in procs)
        return procs

    def wait_for_line(self, pattern: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            self.tree()
            for line in list(self.lines):
                if rx.search(line):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r} within {timeout_s:.0f}s; output:\n"
                             + "\n".join(self.lines[-60:]))

    def finish(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.tree()
            time.sleep(0.2)
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            if self._reader is not None:
                self._reader.join(5)

    def kill_all(self) -> None:
        for pid in self.seen:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Callable[..., DemoRun]]:
    runs: list[DemoRun] = []

    def start(*args: str) -> DemoRun:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchwatch", "demo", "--plain", *ALL_FREE_PORTS,
             "--workdir", str(tmp_path / "demo"), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        run = DemoRun(proc)
        run.start_reading()
        runs.append(run)
        return run

    yield start
    for run in runs:  # whatever happened, leave nothing running
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)
        run.kill_all()


def _alive(pids: set[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{pid} {' '.join(p.cmdline()[:3])}")
        except psutil.Error:
            pass
    return out


def test_demo_alerts_within_60s_of_drift_and_writes_report(
        demo: Callable[..., DemoRun]) -> None:
    _need_binaries()
    run = demo("--duration", "40", "--drift-at", "10")
    code = run.finish(timeout_s=300)
    out = "\n".join(run.lines)
    assert code == 0, f"demo exited {code}:\n{out[-4000:]}"
    report = re.search(r"^report: (.+)$", out, re.MULTILINE)
    summary_line = re.search(r"^summary: (.+)$", out, re.MULTILINE)
    assert report and summary_line, out[-4000:]
    report_path = Path(report.group(1))
    assert report_path.is_file() and report_path.stat().st_size > 1000
    html = report_path.read_text()
    assert "<html" in html and "benchwatch" in html
    summary = json.loads(Path(summary_line.group(1)).read_text())
    assert summary["missing"] == [], summary
    began = summary["drift_started_at"]
    assert began is not None
    # no alert of any kind before the drift: a monitor that cries wolf gets switched off
    early = {name: round(at - began, 1) for name, at in summary["other_alerts"].items()
             if at < began}
    assert not early, f"alerts fired before the drift (s from its start): {early}\n{out[-4000:]}"
    assert summary["alert_fired_at"] is not None, f"no alert fired:\n{out[-4000:]}"
    delay = summary["alert_fired_at"] - began
    assert 0 < delay <= 60, f"alert {delay:.1f}s after the drift began"
    assert "BenchwatchModelDrift" in summary["alert"]
    assert summary["requests"] > 500 and summary["errors"] == 0, summary
    assert re.search(r"^demo: ALERT BenchwatchModelDrift fired", out, re.MULTILINE)

    # deployed as in production: the parts are processes of their own, not threads of the demo
    pids = summary["processes"]
    parts = ("model server", "drift service", "traffic", "bench server", "prometheus",
             "alertmanager")
    assert set(parts) <= set(pids), pids
    assert len({pids["demo"], *(pids[p] for p in parts)}) == len(parts) + 1, pids
    assert pids["demo"] == run.proc.pid, pids
    # the live figures were held against baseline figures from the same point and load
    model_call = summary["before_drift"]["model_call"]
    assert model_call["live_p99_s"] and model_call["baseline_p99_s"], model_call
    at_rate = f"server_{RATE_QPS['digits']:g}qps"  # the demo's default rate
    assert model_call["baseline_scenario"] == at_rate, model_call
    http = summary["before_drift"]["http_client"]
    assert http["baseline_scenario"] == at_rate, http
    # the client's live window holds the bench's fixed-rate calls, not all the clean traffic
    assert http["live_calls"] == http["baseline_calls"], http
    # each p99 with the interval its calls allow, and what the ratio can tell (demo.tail)
    for point, fig in summary["before_drift"].items():
        low, high = fig["p99_ratio_range"]
        assert low <= fig["p99_ratio"] <= high and fig["verdict"], (point, fig)
    assert re.search(r"^demo: before the drift, model_call: .*calls.*95% intervals",
                     out, re.MULTILINE)

    leftovers = _alive(run.seen | set(pids.values()))
    assert not leftovers, f"processes left running: {leftovers}"


def test_ctrl_c_stops_everything_cleanly(demo: Callable[..., DemoRun]) -> None:
    _need_binaries()
    run = demo("--duration", "300", "--drift-at", "200", "--rate", "40")  # a short bench
    run.wait_for_line(r"^demo: traffic generator running", timeout_s=240)
    procs = run.tree()
    names = " ".join(p.name() for p in procs)
    assert "prometheus" in names and "alertmanager" in names, names
    commands = [" ".join(p.cmdline()) for p in procs]
    for part in ("benchwatch.example.server", "benchwatch drift serve",
                 "benchwatch.demo.traffic"):
        assert any(part in c for c in commands), f"no {part} process among {commands}"
    listening = []
    for p in procs:
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                listening.append((p.name(), c.laddr.ip, c.laddr.port))
    assert len(listening) >= 6, listening  # model, probes, drift metrics+HTTP, Prom, AM
    assert all(ip == "127.0.0.1" for _, ip, _ in listening), \
        f"sockets listening beyond loopback: {listening}"

    run.proc.send_signal(signal.SIGINT)
    code = run.finish(timeout_s=45)
    out = "\n".join(run.lines)
    assert code == 130, f"exit {code} after SIGINT:\n{out[-3000:]}"
    assert "interrupted" in out
    leftovers = _alive(run.seen)
    assert not leftovers, f"processes left running after Ctrl-C: {leftovers}"
    still = [(ip, port) for _, ip, port in listening
             if not services_port_free(ip, port)]
    assert not still, f"ports still taken after Ctrl-C: {still}"


def services_port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
