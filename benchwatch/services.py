"""Start real Prometheus and Alertmanager (Debian packages) on loopback, for the demo and tests.

Both bind 127.0.0.1 on a free port by default, keep their data in a temporary directory and are
stopped (and the directory removed) by `stop()` or on context exit.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import BenchwatchError

log = logging.getLogger(__name__)

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BINS = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = (
    "install them with `sudo apt-get install prometheus prometheus-alertmanager` "
    "(or run scripts/bootstrap.sh, which does)"
)


class ServiceError(BenchwatchError, RuntimeError):
    """A service benchwatch starts or talks to (Prometheus, Alertmanager, Grafana, a server of
    its own) could not be started or reached; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_binary(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    return None


def _http_json(url: str, data: bytes | None = None, timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback URL we built)
        body = resp.read()
    return json.loads(body) if body else None


@dataclass
class ManagedProcess:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    _owns_workdir: bool = field(default=True, repr=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(url: str, timeout_s: float = 30.0,
              proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll until `url` answers 200; ServiceError when `proc` exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 (loopback URL)
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"{url} did not answer within {timeout_s:.0f}s")
        time.sleep(0.1)


def _start(name: str, cmd: list[str], url: str, ready_path: str, workdir: Path,
           timeout_s: float = 30.0) -> ManagedProcess:
    log_path = workdir / f"{name}.log"
    logf = open(log_path, "wb")  # noqa: SIM115 (kept open for the child's lifetime)
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=workdir,
                            start_new_session=True)
    mp = ManagedProcess(name, url, proc, workdir, log_path)
    try:
        wait_http(url + ready_path, timeout_s, proc)
    except ServiceError as exc:
        tail = mp.log_tail()
        mp.stop()
        raise ServiceError(f"{name}: {exc}:\n{tail}") from None
    log.info("%s ready at %s", name, url)
    return mp


@dataclass
class Prometheus(ManagedProcess):
    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the `result` list (raises on a PromQL error)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        out = _http_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        if out.get("status") != "success":
            raise ServiceError(f"query {promql!r} failed: {out}")
        return list(out["data"]["result"])

    def wait_for(self, promql: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Poll until the query returns data; raise naming the query otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise ServiceError(f"no data for {promql!r} after {timeout_s:.0f}s")
            time.sleep(0.25)


@dataclass
class Alertmanager(ManagedProcess):
    def alerts(self) -> list[dict[str, Any]]:
        return list(_http_json(f"{self.url}/api/v2/alerts"))


def prometheus_config(
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[str | Path] = (),
    alertmanager: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus config as a dict: one job per key of `targets` (host:port strings)."""
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
            for job, addrs in targets.items()
        ],
    }
    if rule_files:
        cfg["rule_files"] = [str(Path(p).resolve()) for p in rule_files]
    if alertmanager:
        hostport = urllib.parse.urlparse(alertmanager).netloc
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [hostport]}]}]}
    return cfg


def start_prometheus(
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[str | Path] = (),
    alertmanager: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    host: str = "127.0.0.1",
    port: int | None = None,
    binary: str | None = None,
    flags: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> Prometheus:
    """Start the Debian `prometheus` binary (or `binary`, e.g. a Prometheus 3 built by
    scripts/build_prometheus3.sh) with a generated config (JSON is valid YAML); `flags` are
    added to its command line (`--web.enable-otlp-receiver`) and `config` to its config file."""
    binary = binary or find_binary(PROMETHEUS_BIN)
    if binary is None:
        raise ServiceError(f"prometheus is not installed: {INSTALL_HINT}")
    port = port or free_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="benchwatch-prometheus-"))
    cfg = {**prometheus_config(targets, rule_files, alertmanager, scrape_interval, evaluation_interval),
           **(config or {})}
    (workdir / "prometheus.yml").write_text(json.dumps(cfg, indent=2))
    cmd = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={host}:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d",
        *flags,
    ]
    mp = _start("prometheus", cmd, f"http://{host}:{port}", "/-/ready", workdir)
    return Prometheus(mp.name, mp.url, mp.proc, mp.workdir, mp.log_path)


def start_alertmanager(config: str | Path | Mapping[str, Any], host: str = "127.0.0.1",
                       port: int | None = None) -> Alertmanager:
    """Start Alertmanager with `config` (a path, YAML text, or a dict); clustering is off."""
    binary = find_binary(*ALERTMANAGER_BINS)
    if binary is None:
        raise ServiceError(f"alertmanager is not installed: {INSTALL_HINT}")
    port = port or free_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="benchwatch-alertmanager-"))
    cfg_path = workdir / "alertmanager.yml"
    if isinstance(config, Mapping):
        cfg_path.write_text(json.dumps(config, indent=2))
    elif isinstance(config, Path) or (isinstance(config, str) and "\n" not in config):
        shutil.copy(config, cfg_path)
    else:
        cfg_path.write_text(config)
    cmd = [
        binary,
        f"--config.file={cfg_path}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address={host}:{port}",
        "--cluster.listen-address=",  # no gossip port on 0.0.0.0
    ]
    mp = _start("alertmanager", cmd, f"http://{host}:{port}", "/-/ready", workdir)
    return Alertmanager(mp.name, mp.url, mp.proc, mp.workdir, mp.log_path)
