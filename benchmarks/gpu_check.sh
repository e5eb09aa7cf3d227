#!/usr/bin/env bash
# fastiou's GPU check: build with CUDA, run the GPU tests and the GPU benchmark, summarise.
#
# For an H100/H200 machine without a package registry (python3 with torch, torchvision,
# cupy-cuda13x, numba, pybind11, pytest). From the repository root:
#
#     OUT=/tmp/out bash benchmarks/gpu_check.sh
#
# Steps, each under `timeout` with what is left of BUDGET seconds (default 470: the script
# ends within 8 minutes); a failing step is recorded and the script goes on:
#   env        nvidia-smi, versions, nvcc                       -> $OUT/env.log
#   build      pip install -e . with FASTIOU_CUDA=1 (no nvcc = failure) -> $OUT/build.log
#   backends   fastiou.backends() and fastiou.info()            -> $OUT/env.log
#   tests_gpu  pytest tests -x -k "cuda or cupy", but tests/test_masks.py -> $OUT/tests_gpu.log
#   tests_masks pytest tests/test_masks.py (every combo, CPU and GPU; its own step so that an
#              earlier failure under -x cannot hide it)           -> $OUT/tests_gpu.log (appended)
#   nms_smoke  python3 benchmarks/gpu_nms_smoke.py (MATCH / MISMATCH per case, the mask ops
#              included; one timing table, with mask_iou vs torch's float32 matmul IoU; exit 1
#              on any MISMATCH or ERROR)                        -> $OUT/nms_smoke.log
#   bench      python3 -m fastiou.bench --device cuda           -> $OUT/gpu_bench.log, gpu-bench.json
#   tests_all  the whole suite (CPU and GPU) in the time left   -> $OUT/tests_all.log
# The summary (each step's status, test counts, the smoke's MATCH / MISMATCH counts, failures,
# the bench table) is printed last and saved as $OUT/summary.txt: 8 files in $OUT, the most
# the device machine hands back (a new step appends to one of these logs). Exit status: 0
# when no step failed.
# The bench runs before the full suite so that a suite grown by later issues can only eat
# into its own time; the bench itself stops starting cases when its --budget is spent.
#
# Knobs: PYTHON (python3), BUDGET (470), FASTIOU_CUDA_ARCHS (90: H100/H200 only, halves the
# nvcc time), TESTS_GPU_K (the -k expression of the GPU tests), SMOKE_ARGS (extra arguments
# of gpu_nms_smoke.py, e.g. --quick: no timing).
set -euo pipefail

OUT=${OUT:-/tmp/out}
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-470}
RESERVE=25                      # seconds kept for the summary
TESTS_GPU_K=${TESTS_GPU_K:-cuda or cupy}
read -r -a SMOKE_OPTS <<< "${SMOKE_ARGS:-}"
export PYTHONUNBUFFERED=1
export FASTIOU_CUDA=1           # a missing nvcc is a build failure, not a CPU-only build
export FASTIOU_CUDA_ARCHS=${FASTIOU_CUDA_ARCHS:-90}
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="$PATH:/usr/local/cuda/bin"
fi
mkdir -p "$OUT"
rm -f "$OUT"/{env,build,tests_gpu,nms_smoke,tests_all,gpu_bench,summary}.log "$OUT"/summary.txt "$OUT"/gpu-bench.json
cd "$(dirname "${BASH_SOURCE[0]}")/.."   # the repository root, wherever it is called from
T0=$SECONDS
STEPS=()
declare -A RC SECS

left() { echo $((BUDGET - (SECONDS - T0))); }

# Python modules run through this, so that the SIGTERM of `timeout` (and a SIGINT, which a
# shell started in the background hands down as "ignored") raises KeyboardInterrupt: pytest
# then prints its summary and the bench writes its JSON before they stop.
PYMOD=("$PY" -c 'import runpy, signal, sys
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.default_int_handler)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)')

# run_step NAME LIMIT LOG CMD...: CMD under `timeout`, at most LIMIT seconds and never past
# the budget; output to the terminal and appended to LOG. SIGTERM first (see PYMOD), SIGKILL
# 15 s later.
run_step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local avail=$(($(left) - RESERVE))
    ((limit > avail)) && limit=$avail
    STEPS+=("$name")
    if ((limit < 15)); then
        RC[$name]=skip
        SECS[$name]=0
        echo "== $name: skipped, no time left" | tee -a "$log"
        return 0
    fi
    local cmd="$*"
    [[ ${2:-} == -c && ${3:-} == "import runpy"* ]] && cmd="$1 -m ${*:4}"   # a PYMOD command
    cmd=${cmd%%$'\n'*}
    echo "== $name (limit ${limit}s): ${cmd:0:200}" | tee -a "$log"
    local t=$SECONDS rc=0
    timeout -k 15 "$limit" "$@" 2>&1 | tee -a "$log" || rc=$?
    RC[$name]=$rc
    SECS[$name]=$((SECONDS - t))
    ((rc == 124 || rc == 137)) && echo "== $name: TIMED OUT after ${limit}s" | tee -a "$log"
    echo "== $name: rc=$rc in ${SECS[$name]}s" | tee -a "$log"
    return 0
}

env_info() {
    echo "date: $(date -u +%FT%TZ)  host: $(uname -n)  arch: $(uname -m)  cpus: $(nproc)"
    nvidia-smi -L || echo "nvidia-smi failed"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
        --format=csv || true
    (nvcc --version | tail -n 2) || echo "nvcc: not found on PATH"
    "$PY" - <<'EOF'
import importlib.metadata as md, platform, sys
print("python", platform.python_version(), sys.executable)
for name in ("numpy", "torch", "torchvision", "cupy-cuda13x", "cupy-cuda12x", "numba",
             "pybind11", "setuptools", "pytest", "pytest-benchmark", "pytest-timeout"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        pass
try:
    import torch
    print("  torch.cuda:", torch.version.cuda, "available:", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:
    print("  torch failed:", e)
EOF
}

backends_info() {
    "$PY" - <<'EOF'
import json
import fastiou
print("backends:", json.dumps(fastiou.backends(), indent=1))
info = getattr(fastiou, "info", None)
if info is not None:
    print("info:", json.dumps(info(), indent=1, default=str))
import fastiou._C  # the CPU extension must be there
import fastiou._C_cuda  # and, with FASTIOU_CUDA=1, the CUDA one
print("fastiou._C and fastiou._C_cuda import")
EOF
}

# The last pytest result line of a log ("3 failed, 120 passed, 10 skipped in 4.2s").
# With a step name, only that step's part of the log (tests_gpu and tests_masks share one).
pytest_result() {
    local log=$1 step=${2:-}
    [ -f "$log" ] || { echo "no log"; return; }
    if [ -n "$step" ]; then
        sed -n "/^== $step (/,/^== $step: rc=/p" "$log"
    else
        cat "$log"
    fi | grep -E "([0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed))|no tests ran|Interrupted" |
        grep -v "^==[^=]" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//' | grep . || echo "no pytest summary"
}

# The smoke's verdict lines, counted ("MATCH 212, MISMATCH 0, ERROR 0, SKIP 2, NOT IMPLEMENTED 0").
smoke_result() {
    local log=$1 s out=
    [ -f "$log" ] || { echo "no log"; return; }
    for s in MATCH MISMATCH ERROR SKIP "NOT IMPLEMENTED"; do
        out+="${out:+, }$s $(grep -cE "^$s +[^ ]" "$log")"
    done
    echo "$out"
}

summary() {
    set +e
    {
        echo
        echo "================ fastiou GPU check: summary ($((SECONDS - T0))s of ${BUDGET}s) ================"
        nvidia-smi -L 2>/dev/null | head -n 1
        printf '%-10s %-6s %6s  %s\n' step rc secs result
        local s res
        for s in "${STEPS[@]}"; do
            case $s in
                tests_gpu) res=$(pytest_result "$OUT/tests_gpu.log" tests_gpu) ;;
                tests_masks) res=$(pytest_result "$OUT/tests_gpu.log" tests_masks) ;;
                tests_all) res=$(pytest_result "$OUT/tests_all.log") ;;
                nms_smoke) res=$(smoke_result "$OUT/nms_smoke.log") ;;
                *) res= ;;
            esac
            case ${RC[$s]} in
                0) res=${res:-ok} ;;
                skip) res="not run: no time left" ;;
                124 | 137) res="TIMED OUT${res:+: $res}" ;;
                *) res=${res:-FAILED} ;;
            esac
            printf '%-10s %-6s %6s  %s\n' "$s" "${RC[$s]}" "${SECS[$s]}" "$res"
        done
        if [ -f "$OUT/tests_gpu.log" ] && ! pytest_result "$OUT/tests_gpu.log" tests_gpu | grep -q "[0-9]\+ passed"; then
            echo "WARNING: no GPU test passed (skipped or deselected?): skip reasons follow"
            grep -E "^SKIPPED" "$OUT/tests_gpu.log" | head -n 5
        fi
        for log in tests_gpu tests_all; do
            [ -f "$OUT/$log.log" ] || continue
            if grep -qE "^(FAILED|ERROR) " "$OUT/$log.log"; then
                echo "-- $log: failures (first 15)"
                grep -E "^(FAILED|ERROR) " "$OUT/$log.log" | head -n 15
            fi
        done
        if [ -f "$OUT/nms_smoke.log" ]; then
            if grep -qE "^(MISMATCH|ERROR) " "$OUT/nms_smoke.log"; then
                echo "-- nms_smoke: MISMATCH / ERROR (first 15)"
                grep -E "^(MISMATCH|ERROR) " "$OUT/nms_smoke.log" | cut -c1-220 | head -n 15
            fi
            if grep -q "^-- timing on" "$OUT/nms_smoke.log"; then
                echo "-- nms_smoke timing"
                sed -n '/^-- timing on/,/^-- fastiou cuda nms/p' "$OUT/nms_smoke.log" |
                    grep -v "^-- fastiou cuda nms" | grep . | head -n 20
            fi
            grep -E "^[0-9]+ failures in" "$OUT/nms_smoke.log" | tail -n 1
        fi
        if [ "${RC[build]:-}" != 0 ] && [ -f "$OUT/build.log" ]; then
            echo "-- build.log (last 25 lines)"
            tail -n 25 "$OUT/build.log"
        fi
        echo "-- benchmark"
        if [ -s "$OUT/gpu-bench.json" ]; then
            timeout 30 "$PY" -m fastiou.bench --report "$OUT/gpu-bench.json" 2>&1 ||
                tail -n 40 "$OUT/gpu_bench.log"
        elif [ -f "$OUT/gpu_bench.log" ]; then
            tail -n 40 "$OUT/gpu_bench.log"
        else
            echo "(not run)"
        fi
    } 2>&1 | tee "$OUT/summary.txt"
}
trap summary EXIT

run_step env 60 "$OUT/env.log" bash -c "PY='$PY'; $(declare -f env_info); env_info"
run_step build 300 "$OUT/build.log" \
    "$PY" -m pip install --no-build-isolation --no-deps --no-index --disable-pip-version-check \
    --root-user-action=ignore -e .
run_step backends 60 "$OUT/env.log" bash -c "PY='$PY'; $(declare -f backends_info); backends_info"

PYTEST_OPTS=(-q -rfEs -p no:cacheprovider)
if "$PY" -c "import pytest_timeout" >/dev/null 2>&1; then
    PYTEST_OPTS+=(--timeout=120)
fi
run_step tests_gpu 150 "$OUT/tests_gpu.log" \
    "${PYMOD[@]}" pytest tests -x -k "$TESTS_GPU_K" --ignore=tests/test_masks.py "${PYTEST_OPTS[@]}"
if [ -f tests/test_masks.py ]; then
    run_step tests_masks 90 "$OUT/tests_gpu.log" \
        "${PYMOD[@]}" pytest tests/test_masks.py --maxfail=15 "${PYTEST_OPTS[@]}"
fi

# The suppression family on the GPU against the CPU backend and torchvision: MATCH / MISMATCH
# per case, the mask ops included (a plain script, not pytest; about a minute on an H100).
run_step nms_smoke 120 "$OUT/nms_smoke.log" "$PY" benchmarks/gpu_nms_smoke.py ${SMOKE_OPTS[@]+"${SMOKE_OPTS[@]}"}

# The bench stops starting new cases 20 s before its own limit (a killed bench still leaves
# the JSON of the cases it finished).
BENCH_LIMIT=180
avail=$(($(left) - RESERVE))
((BENCH_LIMIT > avail)) && BENCH_LIMIT=$avail
run_step bench "$BENCH_LIMIT" "$OUT/gpu_bench.log" \
    "${PYMOD[@]}" fastiou.bench --device cuda --json "$OUT/gpu-bench.json" --budget $((BENCH_LIMIT > 40 ? BENCH_LIMIT - 20 : 20))

run_step tests_all 600 "$OUT/tests_all.log" \
    "${PYMOD[@]}" pytest tests --maxfail=25 "${PYTEST_OPTS[@]}"

# Failure: any step that failed or timed out; a step skipped for lack of time, or the full
# suite cut short by the budget, is shown in the summary but is not a failure.
status=0
for s in "${STEPS[@]}"; do
    case "$s:${RC[$s]}" in
        *:0 | *:skip | tests_all:124 | tests_all:137) ;;
        *) status=1 ;;
    esac
done
exit $status
