#!/usr/bin/env bash
# The GPU checks in one go, on a machine with an NVIDIA GPU and its driver (nvidia-smi, NVML):
# NVML energy attribution (above idle to models, idle apart) against NVML's counter and idle
# power, the probe's `gpu` tests, PyTorch vs ONNX Runtime on CUDA, the GPU dashboard's series
# from the real NVML path, and the demo's joules per inference. The figures are quoted in the
# README, "Measured figures" → "GPU". Also the text suite's J per output token and the digits
# scorecard (J per inference, cost) through `benchwatch bench --device cuda`.
#
#   benchmarks/device_check.sh                 # results in benchmarks/results/<gpu>/, e.g. h200
#   benchmarks/device_check.sh -o DIR          # results in DIR
#   benchmarks/device_check.sh -w WHEELS_DIR   # first install the wheels there, offline
#
# Needs the dev install (`pip install -e '.[dev]'`: torch, onnxruntime, nvidia-ml-py, pytest); the
# demo uses Prometheus when it is installed. Without registry access, download the missing wheels
# elsewhere (`pip download -d WHEELS_DIR ...`) and pass -w: they go into a temporary folder.
# PY picks the interpreter (default: .venv/bin/python when present, else python3).
# Exit status 0 only when every check passed; device.log holds each check's output.
set -u
out="" wheels=""
while getopts "o:w:h" opt; do
    case $opt in
        o) mkdir -p "$OPTARG" && out=$(cd "$OPTARG" && pwd) || exit 2 ;;
        w) wheels=$(cd "$OPTARG" && pwd) || exit 2 ;;
        *) sed -n '2,15p' "$0"; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.." || exit 2  # the checks run from the checkout's root

if [ -x .venv/bin/python ]; then PY="${PY:-.venv/bin/python}"; else PY="${PY:-python3}"; fi
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
if [ -z "$out" ]; then
    # "NVIDIA H200" -> h200: one folder per GPU model
    slug=$(echo "${gpu:-no-gpu}" | tr '[:upper:]' '[:lower:]' | sed -e 's/^nvidia //' \
        -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
    out="benchmarks/results/$slug"
fi
mkdir -p "$out" || exit 2
OUT=$(cd "$out" && pwd)
export OUT PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout
: > "$OUT/device.log"

if [ -n "$wheels" ]; then
    site=$(mktemp -d)
    trap 'rm -rf "$site"' EXIT
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$site" "$wheels"/*.whl || exit 2
    export PYTHONPATH="$site:$PYTHONPATH"
fi

rc=0
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv 2>&1 \
    | tee "$OUT/nvidia_smi.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1  # no GPU found: the checks below say what is missing
step() {  # step NAME TIMEOUT_S COMMAND...: run, log, remember a failure and go on
    local name=$1 limit=$2; shift 2
    echo "=== $name" | tee -a "$OUT/device.log"
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/device.log"
    local r=${PIPESTATUS[0]}
    echo "=== $name rc=$r" | tee -a "$OUT/device.log"
    [ "$r" -eq 0 ] || rc=1
}
bench_step() {  # bench_step NAME TIMEOUT_S BENCH_ARGS...: `benchwatch bench` on CUDA, its results.json kept
    local name=$1 limit=$2; shift 2
    local runs; runs=$(mktemp -d)
    step "$name" "$limit" "$PY" -m benchwatch bench --backend torch --device cuda --energy gpu \
        --no-progress --max-duration-s $((limit - 40)) -o "$runs" "$@"
    find "$runs" -name results.json -exec cp {} "$OUT/$name.json" \;
    rm -rf "$runs"
}
# most wanted first: a step cut short by the machine's time limit loses the least
step gpu_energy 120 "$PY" benchmarks/gpu_energy.py
bench_step text_bench 150 --suite text --queries 700   # TTFT/TPOT and J per output token
# the digits scorecard: J per inference and cost, at stated example prices
bench_step scorecard 130 --price-usd-per-hour 3.50 --price-usd-per-kwh 0.15
step gpu_demo 120 "$PY" tests/demo/gpu_demo_check.py --out "$OUT/gpu_demo.json"
step gpu_bench 90 "$PY" benchmarks/gpu_bench.py
step gpu_series 60 "$PY" tests/grafana/gpu_series_check.py
step gpu_pytest 60 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/probes
echo "results in $OUT (exit $rc)"
exit $rc
