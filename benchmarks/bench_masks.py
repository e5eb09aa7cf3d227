"""pytest-benchmark benchmarks of the mask workloads of BENCHMARKS.md: ``mask-iou``,
``rle-encode``, ``rle-iou``, ``mask-nms``.

Run explicitly: ``pytest benchmarks/bench_masks.py --benchmark-group-by=group`` (``-k
mask-iou`` for a part). The cases, inputs and contenders are those of ``fastiou bench``
(``fastiou.bench_masks.MASK_WORKLOADS``), so this file and the runner measure the same thing;
``fastiou bench`` is the reference figure (interleaved, results checked), this file is for
pytest-benchmark's history. ``FASTIOU_BENCH_QUICK=1`` keeps the sizes of ``fastiou bench --quick``.
"""

from __future__ import annotations

import functools
import os

import pytest

pytest.importorskip("pytest_benchmark")

from fastiou import bench  # noqa: E402
from fastiou.bench_masks import MASK_WORKLOADS  # noqa: E402

try:
    import torch
except Exception:  # torch absent or broken: numpy / pycocotools baselines only
    torch = None

HAS_CUDA = torch is not None and torch.cuda.is_available()
QUICK = os.environ.get("FASTIOU_BENCH_QUICK", "") not in ("", "0")
ROLES = {
    "cpu": ["baseline", "baseline 1-thread", "pycocotools encode+iou", "fastiou[cpp]", "fastiou[cpp] 1-thread",
            "fastiou[numba]", "fastiou packed"],
    "cuda": ["baseline", "fastiou[cuda]", "fastiou[cupy]", "fastiou packed"],
}


def _cases():
    for device in ("cpu", "cuda"):
        marks = [] if device == "cpu" or HAS_CUDA else [pytest.mark.skip(reason="no CUDA device")]
        for wid, (params, _) in MASK_WORKLOADS.items():
            for p in params(device, QUICK):
                for role in ROLES[device]:
                    pid = "-".join(str(x) for x in (wid, *p, device, role.replace(" ", "_")))
                    yield pytest.param(wid, p, device, role, marks=marks, id=pid)


@functools.lru_cache(maxsize=None)
def _env(device: str) -> bench.Env:
    return bench.Env(device, QUICK)


@functools.lru_cache(maxsize=1)  # the tests of one case run one after the other
def _case(device: str, wid: str, p: tuple) -> bench.Case:
    return MASK_WORKLOADS[wid][1](_env(device), *p)


def _contender(case: bench.Case, role: str) -> bench.Contender | None:
    baselines = [c for c in case.contenders if c.kind == "baseline"]
    if role == "baseline":
        return baselines[0] if baselines else None
    if role == "baseline 1-thread":
        return next((c for c in baselines[1:] if c.name.endswith("1-thread")), None)
    if role in (c.name for c in baselines[:1]):
        return None
    return next((c for c in case.contenders if c.name == role), None)


@pytest.mark.parametrize("wid,p,device,role", list(_cases()))
def test_masks(benchmark, wid, p, device, role):
    case = _case(device, wid, p)
    c = _contender(case, role)
    if c is None:
        pytest.skip(f"no {role} contender here (see the notes of `fastiou bench`)")
    if c.skip:
        pytest.skip(c.skip)
    benchmark.group = f"{case.workload} {case.op} {case.size} {case.dtype} {device}"
    benchmark.extra_info["contender"] = c.name
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    call = c.call

    def run():
        r = call()
        sync()
        return r

    with c.context():
        result = benchmark(run)
    assert result is not None
