"""Device check for the demo's energy figures (run on a machine with an NVIDIA GPU).

    .venv/bin/python tests/demo/gpu_demo_check.py [--out gpu_demo.json]

Runs `benchwatch demo --duration 40 --drift-at 10` (Prometheus/Alertmanager when installed, else
--no-prometheus) and prints one JSON object: whether the probes found a GPU (NVML), joules per
inference at the end, the latency figures, and the drift alert's delay. Finishes in about a
minute; exit code 0 when the demo ran and, on a GPU machine, the probe saw the GPU. The demo's
model runs on the CPU and its probe says so (`devices="cpu"`): its joules per inference hold no
GPU energy (null where the host has no CPU energy counter), however busy the GPU is.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchwatch import services

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    a = p.parse_args()
    have_prom = services.find_binary(services.PROMETHEUS_BIN) is not None and \
        services.find_binary(*services.ALERTMANAGER_BINS) is not None
    with tempfile.TemporaryDirectory(prefix="benchwatch-gpu-demo-") as tmp:
        cmd = [sys.executable, "-m", "benchwatch", "demo", "--plain", "--duration", "40",
               "--drift-at", "10", "--workdir", tmp, "--port", "0", "--metrics-port", "0",
               "--drift-port", "0", "--prometheus-port", "0", "--alertmanager-port", "0"]
        if not have_prom:
            cmd.append("--no-prometheus")
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=170)
        m = re.search(r"^summary: (.+)$", run.stdout, re.MULTILINE)
        summary = json.loads(Path(m.group(1)).read_text()) if m else {}
    nvml = None
    try:
        import pynvml

        pynvml.nvmlInit()
        nvml = {"gpus": pynvml.nvmlDeviceGetCount(),
                "name": str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0)))}
        pynvml.nvmlShutdown()
    except Exception as exc:  # no NVML here: say so in the figures
        nvml = {"error": f"{type(exc).__name__}: {exc}"}
    drift_at, alert_at = summary.get("drift_started_at"), summary.get("alert_fired_at")
    figures = {
        "exit_code": run.returncode, "prometheus": have_prom, "nvml": nvml,
        "probe_saw_gpu": summary.get("gpu"),
        "joules_per_inference": (summary.get("last") or {}).get("joules_per_inference"),
        "last": summary.get("last"), "baseline": summary.get("baseline"),
        "alert_delay_s": None if not (drift_at and alert_at) else round(alert_at - drift_at, 1),
        "requests": summary.get("requests"), "errors": summary.get("errors"),
        "missing": summary.get("missing"),
        "stderr_tail": run.stderr[-1500:] if run.returncode else "",
    }
    text = json.dumps(figures, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text)
    gpu_here = isinstance(nvml, dict) and nvml.get("gpus")
    ok = run.returncode == 0 and (not gpu_here or bool(figures["probe_saw_gpu"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
