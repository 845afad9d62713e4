"""`benchwatch demo --model lm` end to end, as a user runs it: the streaming language-model
server with its probe, the release benchmark on the `text` suite as the baseline (TTFT/TPOT and
the output features), the drift service, Prometheus and Alertmanager (Debian packages), and
traffic whose clients switch from greedy decoding to sampling at temperature 1."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.demo.test_demo import DemoRun, _alive, _need_binaries, demo  # noqa: F401 (fixture)

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


def test_lm_demo_pages_on_output_drift(demo: Callable[..., DemoRun]) -> None:  # noqa: F811
    _need_binaries()
    run = demo("--model", "lm", "--duration", "75", "--drift-at", "20")
    code = run.finish(timeout_s=540)
    out = "\n".join(run.lines)
    assert code == 0, f"demo exited {code}:\n{out[-4000:]}"
    summary_line = re.search(r"^summary: (.+)$", out, re.MULTILINE)
    report = re.search(r"^report: (.+)$", out, re.MULTILINE)
    assert summary_line and report, out[-4000:]
    assert Path(report.group(1)).stat().st_size > 1000
    summary = json.loads(Path(summary_line.group(1)).read_text())
    assert summary["missing"] == [] and summary["errors"] == 0, summary
    began = summary["drift_started_at"]
    early = {n: round(at - began, 1) for n, at in summary["other_alerts"].items() if at < began}
    assert not early, f"alerts before the drift (s from its start): {early}\n{out[-4000:]}"
    assert summary["alert_fired_at"] is not None, f"no drift alert:\n{out[-4000:]}"
    assert 0 < summary["alert_fired_at"] - began <= 60
    assert "BenchwatchModelDrift" in summary["alert"] and "charlm" in summary["alert"]
    # the baseline is the release benchmark of the streaming server over HTTP
    figures = {(f["name"], f["point"]) for f in summary["baseline"]}
    assert {("ttft_p99_s", "http_client"), ("tpot_p99_s", "http_client"),
            ("output_tokens_per_s", "http_client"), ("ttft_p99_s", "model_call"),
            ("tpot_p99_s", "model_call")} <= figures, figures
    assert "benchwatch.example.lm_server" in out or summary["processes"]["model server"]
    pids = summary["processes"]
    assert {"model server", "bench server", "drift service", "traffic"} <= set(pids), pids
    leftovers = _alive(run.seen | set(pids.values()))
    assert not leftovers, f"processes left running: {leftovers}"
