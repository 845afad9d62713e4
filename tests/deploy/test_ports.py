"""Default ports never collide, and a taken port's error names the option that fixes it.

The probe's multi-worker range starts at 9464 and goes up (9464 + BENCHWATCH_PROMETHEUS_PORT_SPAN);
the drift service's and collector's defaults sit below it, so no span reaches them. Each server's
"port taken" error is checked on a really occupied port, in the library and through the CLI."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import probes
from benchwatch.cli import _build_parser, main
from collector import Collector, WindowStore
from collector.http_server import ingest_server
from drift import Baseline
from drift.service.engine import DriftService, ServiceConfig
from probes import ConfigError
from probes.runtime import Settings
from tests.support.deploy_ports import documented_ports


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other process holds (bound and listening) for the test's duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


@pytest.fixture
def baselines(tmp_path: Path) -> Path:
    d = tmp_path / "baselines"
    d.mkdir()
    Baseline.build("m", "v1", {"x": np.random.default_rng(0).normal(size=500)},
                   source="ports").save(d / "m-v1.json")
    return d


def _default(verb: str, argv: list[str], dest: str) -> int:
    args = _build_parser(verb).parse_args(argv)
    return int(getattr(args, dest))


def test_defaults_match_the_docs_and_never_overlap_the_probe_range(baselines: Path) -> None:
    documented = documented_ports()
    probe_default = Settings().prometheus_port
    drift_metrics = _default("drift", ["drift", "serve", "--baselines", "x"], "port")
    drift_ingest = _default("drift", ["drift", "serve", "--baselines", "x"], "ingest_port")
    collector_port = _default("collector", ["collector", "serve", "--state", "s"], "port")
    cfg = ServiceConfig(baselines)
    assert (cfg.metrics_port, cfg.ingest_port) == (drift_metrics, drift_ingest)
    assert probe_default == documented["probe metrics"]
    assert drift_metrics == documented["drift service metrics"]
    assert drift_ingest == collector_port == documented["collector HTTP ingest"]
    # the probe's workers take probe_default, probe_default + 1, ... upwards: any span misses
    # the drift service and the collector
    assert max(drift_metrics, drift_ingest, collector_port) < probe_default
    assert len({drift_metrics, drift_ingest}) == 2


def test_probe_port_error_names_its_settings(taken: int) -> None:
    with pytest.raises(ConfigError) as err:
        probes.configure("ports", prometheus_port=taken, gpu="off")
    probes.shutdown()
    for option in ("BENCHWATCH_PROMETHEUS_PORT", "BENCHWATCH_PROMETHEUS_PORT_SPAN",
                   "prometheus_port="):
        assert option in str(err.value)
    assert str(taken) in str(err.value)


def test_drift_service_port_errors_name_their_flags(baselines: Path, taken: int) -> None:
    with pytest.raises(ConfigError, match=r"--port PORT \(benchwatch drift serve"):
        DriftService(ServiceConfig(baselines, metrics_port=taken, ingest_port=None)).start()
    with pytest.raises(ConfigError, match=r"--ingest-port PORT \(benchwatch drift serve"):
        DriftService(ServiceConfig(baselines, metrics_port=0, ingest_port=taken)).start()


def test_collector_port_error_names_its_flag(taken: int) -> None:
    server = ingest_server(Collector(WindowStore(None)), port=taken)
    with pytest.raises(ConfigError, match=r"--port PORT \(benchwatch collector serve\)"):
        server.start()


@pytest.mark.parametrize(("verb", "flag"), [("drift", "--port"), ("drift", "--ingest-port"),
                                            ("collector", "--port")])
def test_cli_port_errors_exit_2_naming_the_flag(
        verb: str, flag: str, baselines: Path, taken: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [verb, "serve"]
    if verb == "collector":
        argv += ["--state", str(baselines.parent / "collector.sqlite")]
    if verb == "drift":
        argv += ["--baselines", str(baselines), "--port", "0", "--ingest-port", "-1"]
    argv += [flag, str(taken)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{taken}" in err[0], err
    assert f"choose another with {flag} PORT (benchwatch {verb} serve" in err[0], err

