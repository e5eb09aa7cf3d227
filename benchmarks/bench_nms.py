"""pytest-benchmark benchmarks of the suppression workloads of BENCHMARKS.md: ``nms-sparse``,
``nms-clustered``, ``nms-rcnn``, ``nms-lvis``, ``nms-yolo``, ``soft-nms``.

Run explicitly: ``pytest benchmarks/bench_nms.py --benchmark-group-by=group`` (``-k nms-yolo``,
``-k "clustered and 10000"`` for a part). One group per case of ``fastiou bench`` (workload,
op, size, dtype, device); in it one benchmark per contender of that case: the baseline
(torchvision, or the ultralytics / detectron2-style loop built on it, or numpy's mmcv
soft-NMS) with torch's threads and with one, fastiou's backends (cpp also on one thread, and
on torch CPU tensors for nms / batched_nms), and OpenCV / ensemble-boxes when they import. The cases are built by ``fastiou.bench`` itself
(``NMS_WORKLOADS``: same inputs, same calls, same thread settings), so this file and the
runner measure the same thing; ``fastiou bench`` is the reference figure (interleaved, results
checked), this file is for pytest-benchmark's history (``--benchmark-autosave``,
``--benchmark-compare``).

Every size of the full runner is here (torchvision takes ~2 s a call at 30k sparse boxes and
~25 s at 100k); ``FASTIOU_BENCH_QUICK=1`` keeps the sizes of ``fastiou bench --quick``.
"""

from __future__ import annotations

import functools
import os

import pytest

pytest.importorskip("pytest_benchmark")

from fastiou import bench  # noqa: E402

try:
    import torch
except Exception:  # torch absent or broken: numpy baselines only
    torch = None

HAS_CUDA = torch is not None and torch.cuda.is_available()
QUICK = os.environ.get("FASTIOU_BENCH_QUICK", "") not in ("", "0")
#: Contenders by role: "baseline" is a case's first baseline, "baseline 1-thread" its
#: one-thread run; the others are contender names of fastiou.bench.
ROLES = {
    "cpu": ["baseline", "baseline 1-thread", "fastiou[cpp]", "fastiou[cpp] 1-thread", "fastiou[numba]",
            "fastiou[cpp] torch", "cv2.dnn", "ensemble-boxes"],
    "cuda": ["baseline", "fastiou[cuda]", "fastiou[cupy]"],
}


def _cases():
    for device in ("cpu", "cuda"):
        marks = [] if device == "cpu" or HAS_CUDA else [pytest.mark.skip(reason="no CUDA device")]
        for wid, (params, _) in bench.NMS_WORKLOADS.items():
            for p in params(device, QUICK):
                for role in ROLES[device]:
                    pid = "-".join(str(x) for x in (wid, *p, device, role.replace(" ", "_")))
                    yield pytest.param(wid, p, device, role, marks=marks, id=pid)


@functools.lru_cache(maxsize=None)
def _env(device: str) -> bench.Env:
    return bench.Env(device, QUICK)


@functools.lru_cache(maxsize=1)  # the tests of one case run one after the other
def _case(device: str, wid: str, p: tuple) -> bench.Case:
    return bench.NMS_WORKLOADS[wid][1](_env(device), *p)


def _contender(case: bench.Case, role: str) -> bench.Contender | None:
    baselines = [c for c in case.contenders if c.kind == "baseline"]
    if role == "baseline":
        return baselines[0] if baselines else None
    if role == "baseline 1-thread":
        return next((c for c in baselines[1:] if c.name.endswith("1-thread")), None)
    if role in (c.name for c in baselines[:1]):
        return None  # the first baseline is the "baseline" role
    return next((c for c in case.contenders if c.name == role), None)


@pytest.mark.parametrize("wid,p,device,role", list(_cases()))
def test_nms(benchmark, wid, p, device, role):
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
