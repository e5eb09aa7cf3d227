"""pytest-benchmark benchmarks of the suppression workloads of BENCHMARKS.md: ``nms-sparse``,
``nms-clustered``, ``nms-rcnn``, ``nms-lvis``, ``nms-yolo``, ``soft-nms``.

Run explicitly: ``pytest benchmarks/bench_nms.py --benchmark-group-by=group`` (``-k nms-yolo``,
``-k "clustered and 10000"`` for a part). One group per case of ``fastiou bench`` (workload,
op, size, dtype, device); in it one benchmark per contender of that case: the baseline
(torchvision, or the ultralytics / detectron2-style loop built on it, or numpy's mmcv
soft-NMS) with torch's threads and with one, fastiou's backends (cpp also on one thread, and
on torch CPU tensors for nms / batched_nms), and OpenCV / ensemble-boxes when they import. The cases are built by ``fastiou.bench`` itself
(``fastiou.bench.workloads.nms``: same inputs, same calls, same thread settings), so this file and the
runner measure the same thing; ``fastiou bench`` is the reference figure (interleaved, results
checked), this file is for pytest-benchmark's history (``--benchmark-autosave``,
``--benchmark-compare``).

Every size of the full runner is here (torchvision takes ~2 s a call at 30k sparse boxes and
~25 s at 100k); ``FASTIOU_BENCH_QUICK=1`` keeps the sizes of ``fastiou bench --quick``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

import _registry_cases as cases  # noqa: E402  (benchmarks/, on sys.path as the test's folder)

#: Contenders by role: "baseline" is a case's first baseline, "baseline 1-thread" its
#: one-thread run; the others are contender names of fastiou.bench.
ROLES = {
    "cpu": ["baseline", "baseline 1-thread", "fastiou[cpp]", "fastiou[cpp] 1-thread", "fastiou[numba]",
            "fastiou[cpp] torch", "cv2.dnn", "ensemble-boxes"],
    "cuda": ["baseline", "fastiou[cuda]", "fastiou[cupy]"],
}


@pytest.mark.parametrize("wid,p,device,role", list(cases.params("nms", ROLES)))
def test_nms(benchmark, wid, p, device, role):
    cases.run(benchmark, "nms", wid, p, device, role)
