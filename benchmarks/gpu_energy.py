"""GPU energy per inference: what @probe's NVML sampler attributes, against NVML's own counter.

Needs an NVIDIA GPU with NVML and PyTorch with CUDA (`pip install -e .[all]`). Runs in well
under 3 minutes:

    python benchmarks/gpu_energy.py                  # ~60 s of measurement
    OUT=/some/dir python benchmarks/gpu_energy.py    # also writes $OUT/gpu_energy.json

Phases: idle (the sampler learns the idle power; NVML's counter measures it) → one model served
alone → two models served at once from two threads (the attribution has to split each
interval's energy above idle between them) and a `devices="cpu"` model in a third (it must get
no GPU joule) → idle. The reference is NVML's total-energy counter (mJ since driver load) read
directly, start to end of the serving phases. Reported: the sampler's device energy against
it, attributed + idle against the device energy (conservation), the learned idle power against
NVML's over the idle phase, and the attributed joules against NVML's energy above that idle
power. Exits 2 with a message when there is no CUDA GPU or no NVML.
`--cpu-self-test` runs the same flow on the CPU with a synthetic energy source (no GPU
figures; checks the script itself).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def fail(msg: str, code: int = 2) -> int:
    print(f"gpu_energy: {msg}", file=sys.stderr)
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_energy.json").write_text(json.dumps({"error": msg}, indent=2))
    return code


class _SyntheticGpu:
    """--cpu-self-test only (a FAKE GPU): 200 W idle + 100 W while busy, as an energy counter."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self.energy = 0.0
        self._last = self._t0
        self.busy = 0

    def read(self) -> list[Any]:
        from probes import DeviceReading

        now = time.perf_counter()
        self.energy += (200.0 + (100.0 if self.busy else 0.0)) * (now - self._last)
        self._last = now
        return [DeviceReading("gpu0", "gpu", "synthetic", energy_j=self.energy, power_w=250.0,
                              utilization=0.5, memory_used_bytes=1, memory_limit_bytes=2)]

    def close(self) -> None:
        pass


def _nvml_index_for_cuda0(nv: Any, torch: Any) -> int:
    """The NVML index of CUDA device 0 (orders differ when CUDA_VISIBLE_DEVICES is set)."""
    try:
        uuid = str(torch.cuda.get_device_properties(0).uuid)
        for i in range(nv.nvmlDeviceGetCount()):
            u = nv.nvmlDeviceGetUUID(nv.nvmlDeviceGetHandleByIndex(i))
            u = u.decode() if isinstance(u, bytes) else str(u)
            if u.replace("GPU-", "") == uuid.replace("GPU-", ""):
                return i
    except Exception as e:  # older torch without .uuid: one visible GPU is the usual case
        print(f"gpu_energy: could not match CUDA device to NVML by UUID ({e}); using NVML index 0",
              file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase-s", type=float, default=20.0, help="seconds per serving phase")
    ap.add_argument("--idle-s", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=8192, help="hidden width of the big model")
    ap.add_argument("--cpu-self-test", action="store_true")
    args = ap.parse_args()
    self_test = args.cpu_self_test
    try:
        import torch
    except ImportError:
        return fail("PyTorch is not installed: pip install -e '.[all]'")
    nv: Any = None
    if self_test:
        device, dtype = "cpu", torch.float32
        args.width, args.batch = min(args.width, 512), min(args.batch, 32)
    else:
        if not torch.cuda.is_available():
            return fail("no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False); "
                        "run this on a machine with an NVIDIA GPU")
        try:
            import pynvml as nv

            nv.nvmlInit()
        except Exception as e:
            return fail(f"NVML is not available ({e}): install nvidia-ml-py and the NVIDIA driver")
        device, dtype = "cuda", torch.float16

    import numpy as np

    from probes import configure, metric_names, probe, shutdown

    torch.manual_seed(0)
    source = _SyntheticGpu() if self_test else None
    if self_test:
        rt = configure("gpu-energy-bench", prometheus_port=0, gpu=source, energy_interval_s=0.1)
    else:
        rt = configure("gpu-energy-bench", prometheus_port=0, gpu="required", energy_interval_s=0.1)
    assert rt.energy is not None
    idx = 0 if self_test else _nvml_index_for_cuda0(nv, torch)
    hw_id = f"gpu{idx}"
    handle = None if self_test else nv.nvmlDeviceGetHandleByIndex(idx)

    def nvml_energy_j() -> float:
        if self_test:
            return float(source.read()[0].energy_j)  # type: ignore[union-attr]
        return float(nv.nvmlDeviceGetTotalEnergyConsumption(handle)) / 1000.0

    w = args.width
    big = torch.nn.Sequential(*[m for _ in range(6) for m in (torch.nn.Linear(w, w), torch.nn.ReLU())],
                              torch.nn.Linear(w, 1000)).to(device, dtype).eval()
    small = torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 10)).to(device, dtype).eval()
    xb = torch.randn(args.batch, w, device=device, dtype=dtype)
    xs = torch.randn(args.batch, 1024, device=device, dtype=dtype)

    @probe(model="mlp-big", version="v1")
    def infer_big(x: Any) -> np.ndarray:
        with torch.no_grad():  # host result: the call ends when the GPU has finished
            return big(x)[:64].float().softmax(dim=1).cpu().numpy()

    @probe(model="mlp-small", version="v1")
    def infer_small(x: Any) -> np.ndarray:
        with torch.no_grad():
            return small(x)[:64].float().cpu().numpy()

    host_x = np.random.default_rng(0).normal(size=(64, 256))

    @probe(model="host-only", version="v1", devices="cpu")
    def infer_host(x: np.ndarray) -> np.ndarray:  # never touches the GPU: must get no GPU joule
        return np.tanh(x @ x.T)[:, :10]

    for _ in range(3):  # warm-up: kernels, allocator (not timed by the reference either)
        big(xb), small(xs)
    if device == "cuda":
        torch.cuda.synchronize()

    calls = {"mlp-big": 0, "mlp-small": 0, "host-only": 0}
    lat: dict[str, list[float]] = {name: [] for name in calls}
    power: list[float] = []
    util: list[float] = []
    stop = threading.Event()

    def serve(name: str, fn: Any, x: Any, until: float) -> None:
        on_gpu = source is not None and name != "host-only"  # the synthetic GPU's draw follows its calls
        while time.monotonic() < until and not stop.is_set():
            if on_gpu:
                source.busy += 1  # type: ignore[union-attr]
            t0 = time.perf_counter()
            fn(x)
            lat[name].append(time.perf_counter() - t0)
            if on_gpu:
                source.busy -= 1  # type: ignore[union-attr]
            calls[name] += 1

    def watch() -> None:
        while not stop.wait(0.5):
            r = rt.energy.latest.get(hw_id) if rt.energy else None  # type: ignore[union-attr]
            if r is not None:
                if r.power_w is not None:
                    power.append(r.power_w)
                if r.utilization is not None:
                    util.append(r.utilization)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # idle: the sampler learns the idle power (intervals with nothing in flight), NVML measures it
    e0, t0 = nvml_energy_j(), time.monotonic()
    time.sleep(args.idle_s)
    e1, t1 = nvml_energy_j(), time.monotonic()
    idle_power = (e1 - e0) / (t1 - t0)
    rt.energy.step()  # the window starts on a sampler reading, as it ends on one
    e_start, t_start = nvml_energy_j(), time.monotonic()
    before = rt.energy.snapshot()
    learned_idle_w, idle_source = rt.energy.idle_watts().get(hw_id, (None, "none"))
    # phase 1: big alone; phase 2: big and small together, and the host-only model
    serve("mlp-big", infer_big, xb, time.monotonic() + args.phase_s)
    end2 = time.monotonic() + args.phase_s
    threads = [threading.Thread(target=serve, args=("mlp-big", infer_big, xb, end2)),
               threading.Thread(target=serve, args=("mlp-small", infer_small, xs, end2)),
               threading.Thread(target=serve, args=("host-only", infer_host, host_x, end2))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rt.energy.step()  # close the last interval at the end of serving
    e_end, t_end = nvml_energy_j(), time.monotonic()
    after = rt.energy.snapshot()
    time.sleep(min(args.idle_s, 2.0))
    stop.set()
    watcher.join()
    names = {m.name for m in rt.collect()}
    shutdown()

    nvml_j = e_end - e_start
    serve_s = t_end - t_start
    gpu_calls = calls["mlp-big"] + calls["mlp-small"]
    per_model: dict[str, Any] = {}
    attributed_total = 0.0
    for name in calls:
        key = (name, "v1", hw_id, "gpu")
        j = after.attributed.get(key, 0.0) - before.attributed.get(key, 0.0)
        attributed_total += j
        ls = sorted(lat[name])
        per_model[name] = {
            "calls": calls[name],
            "attributed_j": j,
            "attributed_j_per_inference": j / calls[name] if calls[name] else None,
            "latency_p50_ms": 1e3 * ls[len(ls) // 2] if ls else None,
            "latency_p99_ms": 1e3 * ls[int(len(ls) * 0.99)] if ls else None,
        }
    device_j = after.device.get(hw_id, 0.0) - before.device.get(hw_id, 0.0)
    idle_j = after.idle.get(hw_id, 0.0) - before.idle.get(hw_id, 0.0)
    nvml_above_idle_j = nvml_j - idle_power * serve_s
    result = {
        "self_test_on_cpu_synthetic_energy": self_test,
        "gpu": "synthetic" if self_test else str(nv.nvmlDeviceGetName(handle)),
        "nvml_index": idx,
        "driver": None if self_test else str(nv.nvmlSystemGetDriverVersion()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "batch": args.batch,
        "serve_s": serve_s,
        "idle_power_w": idle_power,
        "learned_idle_power_w": learned_idle_w,
        "learned_idle_source": idle_source,
        "nvml_energy_j": nvml_j,
        "nvml_avg_power_w": nvml_j / serve_s,
        "nvml_above_idle_j": nvml_above_idle_j,
        "nvml_j_per_inference_gpu_models": nvml_j / gpu_calls if gpu_calls else None,
        "sampler_device_j": device_j,
        "sampler_device_over_nvml": device_j / nvml_j if nvml_j > 0 else None,
        "sampler_idle_j": idle_j,
        "attributed_total_j": attributed_total,
        "attributed_plus_idle_over_device": (attributed_total + idle_j) / device_j if device_j > 0 else None,
        "attributed_over_nvml": attributed_total / nvml_j if nvml_j > 0 else None,
        "attributed_over_nvml_above_idle": attributed_total / nvml_above_idle_j if nvml_above_idle_j > 0 else None,
        "attributed_j_per_inference_gpu_models": attributed_total / gpu_calls if gpu_calls else None,
        "host_only_model_gpu_j": per_model["host-only"]["attributed_j"],
        "power_w_mean_sampled": statistics.fmean(power) if power else None,
        "utilization_mean_sampled": statistics.fmean(util) if util else None,
        "per_model": per_model,
        "gpu_series_exported": sorted(n for n in names if n.startswith("hw.")),
        "energy_series_exported": metric_names.OTEL_ENERGY in names,
        "idle_series_exported": metric_names.OTEL_DEVICE_IDLE_ENERGY in names,
    }
    print(f"{'model':12} {'calls':>7} {'J attributed':>13} {'J/inference':>12} {'p50 ms':>8}")
    for name, m in per_model.items():
        jpi = m["attributed_j_per_inference"]
        p50 = m["latency_p50_ms"]
        print(f"{name:12} {m['calls']:7d} {m['attributed_j']:13.1f} "
              f"{jpi if jpi is not None else float('nan'):12.4f} {p50 if p50 is not None else float('nan'):8.2f}")
    def fmt(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    print(f"NVML counter over {serve_s:.1f} s of serving: {nvml_j:.1f} J ({nvml_j / serve_s:.0f} W avg); "
          f"sampler's device energy {device_j:.1f} J = {fmt(result['sampler_device_over_nvml'], '.4f')} of NVML")
    print(f"idle power: NVML over the idle phase {idle_power:.1f} W, sampler {fmt(learned_idle_w, '.1f')} W "
          f"({idle_source}); NVML above that idle: {nvml_above_idle_j:.1f} J")
    print(f"attributed {attributed_total:.1f} J = {fmt(result['attributed_over_nvml_above_idle'], '.3f')} of "
          f"NVML above idle ({fmt(result['attributed_over_nvml'], '.3f')} of all NVML); idle {idle_j:.1f} J; "
          f"(attributed + idle) / device = {fmt(result['attributed_plus_idle_over_device'], '.4f')}; "
          f"host-only model (devices=\"cpu\") GPU joules: {result['host_only_model_gpu_j']:.3f}")
    print(f"J/inference over the GPU models: NVML (whole device) "
          f"{fmt(result['nvml_j_per_inference_gpu_models'], '.4f')}, attributed above idle "
          f"{fmt(result['attributed_j_per_inference_gpu_models'], '.4f')}; power sampled "
          f"{result['power_w_mean_sampled']} W, utilization {result['utilization_mean_sampled']}")
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_energy.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    conserved = result["attributed_plus_idle_over_device"] is not None and \
        abs(result["attributed_plus_idle_over_device"] - 1) <= 0.01
    return 0 if conserved and result["host_only_model_gpu_j"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
