"""pytest-benchmark benchmarks of the box IoU workloads (``iou-square`` of BENCHMARKS.md).

Run explicitly: ``pytest benchmarks/`` (add ``--benchmark-group-by=group`` and, for a quick
look, ``-k 1000``). One group per (workload, op, size, dtype, device), fastiou's backends
beside torchvision (torch's threads and one thread) or, without torch, a numpy baseline.
Inputs come from ``fastiou._inputs``, as in the tests and ``fastiou bench``; the ops, sizes and
numpy baselines come from ``fastiou.bench.workloads.boxes``, so this file and the runner measure the same
thing. ``fastiou bench`` is the reference figure (interleaved, with the floor); this file is
for pytest-benchmark's comparisons between runs (``--benchmark-autosave``,
``--benchmark-compare``).
"""

from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("pytest_benchmark")

import fastiou  # noqa: E402
from fastiou import _inputs  # noqa: E402
from fastiou.bench.threads import torch_threads  # noqa: E402
from fastiou.bench.workloads.boxes import IOU_OPS, IOU_SQUARE_SIZES  # noqa: E402

try:
    import torch
    import torchvision.ops as tv_ops
except Exception:  # torch absent or broken: numpy baseline only
    torch = tv_ops = None

HAS_CUDA = torch is not None and torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])
IMPLS = {
    "cpu": ["fastiou[cpp]", "fastiou[numba]", "torchvision", "torchvision 1-thread", "numpy"],
    "cuda": ["fastiou[cuda]", "fastiou[cupy]", "torchvision"],
}


def _cases():
    for device in ("cpu", "cuda"):
        dtypes = ("float32", "float16") if device == "cuda" else ("float32",)
        for op in IOU_OPS:
            for n in IOU_SQUARE_SIZES:
                for dtype in dtypes:
                    for impl in IMPLS[device]:
                        marks = [] if device in DEVICES else [pytest.mark.skip(reason="no CUDA device")]
                        yield pytest.param(op, n, dtype, device, impl, marks=marks,
                                           id=f"{op}-{n}-{dtype}-{device}-{impl.replace(' ', '_')}")


def _backend_skip(name: str) -> str | None:
    info = fastiou.backends().get(name, {})
    return None if info.get("available") else f"backend {name}: {info.get('reason', 'unknown')}"


@pytest.mark.parametrize("op,n,dtype,device,impl", list(_cases()))
def test_iou_square(benchmark, op, n, dtype, device, impl):
    benchmark.group = f"iou-square {op} {n}x{n} {dtype} {device}"
    b1 = _inputs.random_boxes(n, seed=0)
    b2 = _inputs.random_boxes(n, seed=1)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ctx = contextlib.nullcontext()

    if impl.startswith("fastiou"):
        backend = impl[len("fastiou["):-1]
        reason = _backend_skip(backend)
        if reason:
            pytest.skip(reason)
        if device == "cuda":
            x1 = torch.from_numpy(b1).to("cuda", getattr(torch, dtype))
            x2 = torch.from_numpy(b2).to("cuda", getattr(torch, dtype))
        else:
            x1, x2 = b1.astype(dtype), b2.astype(dtype)
        fn = getattr(fastiou, op)
        ctx = fastiou.use_backend(backend)
    elif impl == "numpy":
        if tv_ops is not None:
            pytest.skip("numpy is the fallback baseline; torchvision is installed")
        x1, x2 = b1.astype(dtype), b2.astype(dtype)
        fn = IOU_OPS[op]
    else:
        if tv_ops is None:
            pytest.skip("torchvision is not installed")
        x1 = torch.from_numpy(b1).to(device, getattr(torch, dtype))
        x2 = torch.from_numpy(b2).to(device, getattr(torch, dtype))
        fn = getattr(tv_ops, op)
        if impl == "torchvision 1-thread":
            ctx = torch_threads(torch, 1)

    def run():
        r = fn(x1, x2)
        sync()
        return r

    with ctx:
        result = benchmark(run)
    assert tuple(result.shape) == (n, n)
