"""Check: the GPU dashboard's series from the REAL NVML path (no injected source).

On a machine with an NVIDIA GPU: every series the "GPU and energy" dashboard queries appears in
the probe's exposition with the labels the panels group by, and energy is attributed to the
probed model. On a CPU-only machine: no GPU series appear at all (the probe says so once in its
log). Needs no Prometheus, so it runs on a bare GPU machine:

    python tests/grafana/gpu_series_check.py      # prints JSON, writes $OUT/gpu_series.json
    python -m pytest -q tests/grafana/test_gpu_series.py   # the same, as a test (subprocess)

Exit status 0 when the series are as they must be, 1 otherwise (the JSON says what is wrong).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

from benchwatch import promtext, services
from benchwatch.grafana import boards as dashboards
from probes import metric_names as m

HW_SERIES = (m.HW_POWER, m.HW_ENERGY, m.HW_UTILIZATION, m.HW_MEMORY, m.HW_MEMORY_LIMIT,
             m.DEVICE_IDLE_ENERGY)


def _has_nvidia_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount()) > 0
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return False


def _work(gpu: bool) -> None:
    """A probed model call: on a GPU, real kernels for the sampler to see."""
    from probes import probe

    if gpu:
        import torch

        layer = torch.nn.Linear(2048, 2048).cuda()

        @probe(model="gpucheck", version="v1")
        def infer(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                out = layer(x)
                for _ in range(20):
                    out = layer(out).relu()
                torch.cuda.synchronize()
                return out.softmax(dim=1)

        x = torch.randn(256, 2048, device="cuda")
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            infer(x)
    else:
        @probe(model="gpucheck", version="v1")
        def infer_cpu(x: np.ndarray) -> np.ndarray:
            return x / x.sum(axis=1, keepdims=True)

        for _ in range(100):
            infer_cpu(np.ones((4, 10)))


def check() -> dict[str, object]:
    import probes

    gpu = _has_nvidia_gpu()
    port = services.free_port()
    probes.configure("gpu-series-check", prometheus_port=port, gpu="auto",
                     energy_interval_s=0.1)
    try:
        _work(gpu)
        time.sleep(0.5)
        s = promtext.read(f"http://127.0.0.1:{port}/metrics", timeout_s=5)
    finally:
        probes.shutdown()
    present = {name: [dict(labels) for labels in s.get(name)] for name in HW_SERIES}
    energy = s.get(m.ENERGY, model="gpucheck")
    result: dict[str, object] = {"gpu": gpu, "series": {k: len(v) for k, v in present.items()},
              "attributed_energy": [{**dict(k), "value": v} for k, v in list(energy.items())[:4]]}
    problems: list[str] = []
    result["problems"] = problems
    if not gpu:
        if any(present.values()):
            problems.append(f"GPU series without a GPU: {present}")
        return result
    missing = [k for k, v in present.items() if not v]
    if missing:
        problems.append(f"NVML path exports none of {missing}; the GPU dashboard queries them")
        return result
    gpu_board = dashboards.gpu_energy()
    exprs = [q.expr for p in gpu_board.panels for q in p.queries]
    for name, series in present.items():
        # the labels the panels that read this series group it by (a baseline's `scenario`
        # belongs to the benchmark's series, not to NVML's)
        grouped = {lbl.strip() for e in exprs if name in e
                   for g in re.findall(r"by \(([^)]*)\)", e) for lbl in g.split(",")}
        for lbl in grouped - {"instance", "model", "model_version", ""}:
            if lbl not in series[0]:
                problems.append(f"{name} lacks label {lbl}: {series[0]}")
    joules = sum(energy.values())
    result["attributed_joules"] = joules
    if joules <= 0:
        problems.append("no energy attributed to the probed model")
    return result


def main() -> int:
    result = check()
    text = json.dumps(result, indent=2)
    print(text)
    out_dir = os.environ.get("OUT")
    if out_dir:
        Path(out_dir, "gpu_series.json").write_text(text)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
