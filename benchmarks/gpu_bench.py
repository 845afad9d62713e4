"""GPU figures for the digits model: PyTorch (CUDA) vs ONNX Runtime (CUDA EP when installed,
else CPU), single-stream latency and offline throughput, plus NVML energy per inference.

    .venv/bin/python benchmarks/gpu_bench.py            # writes $OUT/gpu_bench.json (or ./)

Finishes in well under 2 minutes (the model trains on the CPU in ~5 s at first use). Without a
GPU it still runs, on the CPU, and says so in the JSON (`"cuda": false`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchwatch.bench.backends import OnnxRuntimeBackend, TorchBackend  # noqa: E402
from benchwatch.bench.runner import RunSettings, run_offline, run_single_stream  # noqa: E402
from benchwatch.bench.suites import load_suite  # noqa: E402
from benchwatch.example.model import load_torch_module, shipped_model  # noqa: E402


def nvml_energy_j() -> Any:
    """(a callable returning GPU 0's total energy counter in J, the GPU's name), or (None, why)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        return (lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0,  # mJ -> J
                pynvml.nvmlDeviceGetName(h))
    except Exception as e:  # noqa: BLE001
        return None, f"no NVML: {e}"


def measure(backend: Any, suite: Any, energy: Any, batch_sizes: list[int]) -> dict[str, Any]:
    s = RunSettings(single_stream_queries=5000, warmup_queries=500)
    single = run_single_stream(backend, suite, s).summary
    out: dict[str, Any] = {"detail": backend.info.detail, "single_stream": {
        "n": single.n, "p50_s": single.p50_s, "p90_s": single.p90_s, "p99_s": single.p99_s,
        "mean_s": single.mean_s}}
    for bs in batch_sizes:
        samples = max(bs * 200, 50_000)
        # with a meter: >= 2 s windows, since NVML's energy counter moves about every 100 ms
        off = run_offline(backend, suite, RunSettings(
            offline_batch_size=bs, offline_samples=samples,
            offline_min_duration_s=2.0 if energy else 0.5), energy=energy)
        rec = {"batch_size": bs, "samples": off.samples, "throughput_qps": off.throughput_qps,
               "duration_s": off.duration_s}
        if off.energy_per_inference_j is not None:
            rec["energy_per_inference_j"] = off.energy_per_inference_j
        out[f"offline_bs{bs}"] = rec
    return out


def main() -> int:
    t_start = time.perf_counter()
    import onnxruntime as ort
    import torch

    files = shipped_model()
    suite = load_suite("digits")
    cuda = torch.cuda.is_available()
    energy, gpu_name = nvml_energy_j() if cuda else (None, "no CUDA")
    providers = ort.get_available_providers()
    ort_providers = (["CUDAExecutionProvider", "CPUExecutionProvider"]
                     if "CUDAExecutionProvider" in providers else ["CPUExecutionProvider"])
    result: dict[str, Any] = {
        "host": platform.node(), "cuda": cuda, "gpu": str(gpu_name),
        "torch": torch.__version__, "onnxruntime": ort.__version__,
        "onnxruntime_providers_available": providers, "model_version": files.version,
        "cpu_count": os.cpu_count(), "runs": {}}
    device = "cuda" if cuda else "cpu"
    batch_sizes = [1, 64, 1024]
    result["runs"][f"torch-{device}"] = measure(
        TorchBackend(load_torch_module(files), files.name, files.version, (64,), device=device),
        suite, energy, batch_sizes)
    # GPU energy only for runs on the GPU: a CPU run would be charged the idle GPU's power
    ort_on_gpu = ort_providers[0] == "CUDAExecutionProvider"
    result["runs"][f"onnxruntime-{ort_providers[0]}"] = measure(
        OnnxRuntimeBackend(files.onnx_path, files.name, files.version, providers=ort_providers),
        suite, energy if ort_on_gpu else None, batch_sizes)
    if cuda:  # CPU reference in the same run, for the ratio
        result["runs"]["onnxruntime-CPUExecutionProvider-reference"] = measure(
            OnnxRuntimeBackend(files.onnx_path, files.name, files.version), suite, None, [64])
    # the product path: the bench runner with the probes' NVML meter, and its drift baseline
    try:
        from benchwatch.bench.artifacts import build_baseline
        from benchwatch.bench.energy import energy_meter
        from benchwatch.bench.runner import run_benchmark

        meter, meter_desc = energy_meter("auto")
        r = run_benchmark(TorchBackend(load_torch_module(files), files.name, files.version, (64,),
                                       device=device), suite,
                          RunSettings(single_stream_queries=2000, offline_samples=20_000,
                                      server=False), energy=meter)
        baseline = build_baseline(r, suite)
        result["bench_runner"] = {"energy_meter": meter_desc,
                                  "figures": [f.to_dict() for f in r.figures()],
                                  "error": r.error,
                                  "baseline_figures": [f.to_dict() for f in baseline.figures]}
    except Exception as e:  # noqa: BLE001 - keep the figures above whatever happens here
        result["bench_runner"] = {"energy_meter": "?", "figures": [], "error": repr(e)}
    result["wall_s"] = time.perf_counter() - t_start
    out = Path(os.environ.get("OUT", ".")) / "gpu_bench.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"{'backend':<44}{'p50 µs':>9}{'p99 µs':>9}  offline samples/s (bs 1/64/1024)")
    for name, r in result["runs"].items():
        ss = r["single_stream"]
        offs = " / ".join(f"{v['throughput_qps']:,.0f}" for k, v in r.items() if k.startswith("offline"))
        print(f"{name:<44}{ss['p50_s'] * 1e6:>9.1f}{ss['p99_s'] * 1e6:>9.1f}  {offs}")
    print(f"bench runner ({result['bench_runner']['energy_meter']}): "
          f"{result['bench_runner']['figures']}")
    print(f"wrote {out} in {result['wall_s']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
