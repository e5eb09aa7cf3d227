#!/usr/bin/env bash
# ASan + UBSan build of the CPU extension (fastiou._C), then its tests against that build.
# Run before every release (see tools/README.md). Usage, from anywhere:
#     tools/asan.sh                     # the default test selection below
#     tools/asan.sh tests/test_rle.py -k decode     # any pytest arguments instead
# The build goes to a temporary copy of the package: the in-place build is left untouched.
# Needs gcc with libasan / libubsan (Debian: apt-get install -y gcc g++), python with the
# test dependencies (numpy, pytest, torch, torchvision, pycocotools) on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# FASTIOU_ASAN_DIR=dir keeps the build there (and reuses it when the sources are unchanged).
if [ -n "${FASTIOU_ASAN_DIR:-}" ]; then
  work="$FASTIOU_ASAN_DIR"; mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/fastiou-asan.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
rsync -a --delete --exclude '_C*.so' --exclude __pycache__ "$root/csrc" "$root/fastiou" "$root/tests" "$work/"
cp "$root/setup.py" "$root/pyproject.toml" "$work/"

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
echo "+ building fastiou._C with $san" >&2
(cd "$work" && FASTIOU_CUDA=0 CFLAGS="$san -O1 -g" LDFLAGS="$san" \
    python setup.py build_ext --inplace >"$work/build.log" 2>&1) || { tail -50 "$work/build.log"; exit 1; }

# The interpreter is not instrumented: the ASan runtime must be loaded first. Python's own
# allocations are not leaks to report; a sanitizer finding aborts the test run with its report.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=0:print_summary=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export FASTIOU_BACKEND=cpp OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
cd "$work"
if [ "$#" -eq 0 ]; then
  # The numba / GPU combinations test no C++ code; the memory-limit cases cannot run under ASan
  # (its shadow memory needs more address space than any RLIMIT_AS they set); test_huge_sizes
  # aborts inside pycocotools (the oracle, which the issue found overflowing its own buffers).
  set -- tests/test_boxes.py tests/test_nms.py tests/test_masks.py tests/test_rle.py tests/test_robustness.py \
         -k "not numba and not cuda and not cupy and not memory and not huge_sizes" -x -q -p no:cacheprovider
fi
echo "+ python -m pytest $*" >&2
python -m pytest "$@"
