"""pytest-benchmark benchmarks of the mask workloads of BENCHMARKS.md: ``mask-iou``,
``rle-encode``, ``rle-iou``, ``mask-nms``.

Run explicitly: ``pytest benchmarks/bench_masks.py --benchmark-group-by=group`` (``-k
mask-iou`` for a part). The cases, inputs and contenders are those of ``fastiou bench``
(``fastiou.bench.workloads.masks``), so this file and the runner measure the same thing;
``fastiou bench`` is the reference figure (interleaved, results checked), this file is for
pytest-benchmark's history. ``FASTIOU_BENCH_QUICK=1`` keeps the sizes of ``fastiou bench --quick``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

import _registry_cases as cases  # noqa: E402  (benchmarks/, on sys.path as the test's folder)

ROLES = {
    "cpu": ["baseline", "baseline 1-thread", "pycocotools encode+iou", "fastiou[cpp]", "fastiou[cpp] 1-thread",
            "fastiou[numba]", "fastiou packed"],
    "cuda": ["baseline", "fastiou[cuda]", "fastiou[cupy]", "fastiou packed"],
}


@pytest.mark.parametrize("wid,p,device,role", list(cases.params("masks", ROLES)))
def test_masks(benchmark, wid, p, device, role):
    cases.run(benchmark, "masks", wid, p, device, role)
