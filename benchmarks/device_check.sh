#!/usr/bin/env bash
# The GPU checks, run on a machine with an NVIDIA GPU (the lent H200) in one go:
#   NVML energy attribution vs NVML's own counter, the probe's GPU tests, PyTorch vs ONNX Runtime on CUDA,
#   the GPU dashboard's series from the real NVML path, and the demo's joules per inference. Results land in $OUT (or ./device-out).
# That machine has no registry access: the OTel wheels travel in .device/wheels (see README, "GPU checks").
set -u
OUT="${OUT:-$PWD/device-out}"; mkdir -p "$OUT"
if ls .device/wheels/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .device/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-$PWD}"
PY="${PY:-python3}"
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"
rc=0
step() { local name=$1; shift; echo "=== $name" | tee -a "$OUT/device.log"; timeout "$@" 2>&1 | tee -a "$OUT/device.log"; local r=${PIPESTATUS[0]}; echo "=== $name rc=$r" | tee -a "$OUT/device.log"; [ "$r" -eq 0 ] || rc=1; }
step gpu_energy 150 $PY benchmarks/gpu_energy.py
step gpu_pytest 90 $PY -m pytest -q -p no:cacheprovider -m gpu tests/probes
step gpu_bench 120 $PY benchmarks/gpu_bench.py
step gpu_series 90 $PY tests/grafana/gpu_series_check.py
step gpu_demo 180 $PY tests/demo/gpu_demo_check.py --out "$OUT/gpu_demo.json"
exit $rc
