"""Box workloads: ``iou-square`` (pairwise box_iou / giou / diou / ciou, N = M).

Baselines: torchvision.ops (torch's threads and one thread), or, without torch, the numpy
functions below (torchvision's formulas, broadcast); tests/test_bench.py checks them against
tests/reference.py.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from fastiou import _inputs
from fastiou.bench.env import Env
from fastiou.bench.registry import Case, workload

ORDER = 10

# --------------------------------------------------------------------------------------------
# Plain numpy baselines (torchvision's formulas, broadcast): used when torch is missing


def _np_inter_union(b1, b2):
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area1[:, None] + area2[None, :] - inter


def _np_enclosing_wh(b1, b2):
    lti = np.minimum(b1[:, None, :2], b2[None, :, :2])
    rbi = np.maximum(b1[:, None, 2:], b2[None, :, 2:])
    return np.clip(rbi - lti, 0, None)


def np_box_iou(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """torchvision.ops.box_iou in numpy broadcasting, ``(N, 4), (M, 4) -> (N, M)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inter, union = _np_inter_union(b1, b2)
        return inter / union


def np_generalized_box_iou(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        inter, union = _np_inter_union(b1, b2)
        whi = _np_enclosing_wh(b1, b2)
        areai = whi[..., 0] * whi[..., 1]
        return inter / union - (areai - union) / areai


def _np_diou_iou(b1, b2, eps):
    iou = np_box_iou(b1, b2)
    whi = _np_enclosing_wh(b1, b2)
    diag = whi[..., 0] ** 2 + whi[..., 1] ** 2 + eps
    cx1, cy1 = (b1[:, 0] + b1[:, 2]) / 2, (b1[:, 1] + b1[:, 3]) / 2
    cx2, cy2 = (b2[:, 0] + b2[:, 2]) / 2, (b2[:, 1] + b2[:, 3]) / 2
    dist = (cx1[:, None] - cx2[None, :]) ** 2 + (cy1[:, None] - cy2[None, :]) ** 2
    return iou - dist / diag, iou


def np_distance_box_iou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return _np_diou_iou(b1, b2, eps)[0]


def np_complete_box_iou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        diou, iou = _np_diou_iou(b1, b2, eps)
        w1, h1 = b1[:, 2] - b1[:, 0], b1[:, 3] - b1[:, 1]
        w2, h2 = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
        v = (4 / np.pi**2) * (np.arctan(w1 / h1)[:, None] - np.arctan(w2 / h2)[None, :]) ** 2
        alpha = v / (1 - iou + v + eps)
        return diou - alpha * v


# --------------------------------------------------------------------------------------------
# iou-square

#: The pairwise IoU family: fastiou / torchvision name -> numpy baseline.
IOU_OPS: dict[str, Callable] = {
    "box_iou": np_box_iou,
    "generalized_box_iou": np_generalized_box_iou,
    "distance_box_iou": np_distance_box_iou,
    "complete_box_iou": np_complete_box_iou,
}
IOU_SQUARE_SIZES = (1000, 4000)


def iou_square_params(device: str, quick: bool) -> Iterator[tuple[str, int, str]]:
    """(op, n, dtype) of ``iou-square``; ``--quick`` on CPU keeps 4000 for box_iou only."""
    dtypes = ("float32", "float16") if device == "cuda" else ("float32",)
    for op in IOU_OPS:
        for n in IOU_SQUARE_SIZES:
            if quick and device == "cpu" and op != "box_iou" and n > 1000:
                continue
            for dtype in dtypes:
                yield op, n, dtype


def _iou_inputs(env: Env, n: int, dtype: str):
    """(fastiou's boxes1, boxes2, torchvision's boxes1, boxes2) of an ``n`` x ``n`` case."""
    b1 = _inputs.random_boxes(n, seed=0)
    b2 = _inputs.random_boxes(n, seed=1)
    if env.device == "cuda":
        x1, x2 = env.tensor(b1, dtype), env.tensor(b2, dtype)
        return x1, x2, x1, x2
    x1, x2 = env.host(b1, dtype), env.host(b2, dtype)
    t1 = env.torch.from_numpy(x1) if env.torch is not None else None
    t2 = env.torch.from_numpy(x2) if env.torch is not None else None
    return x1, x2, t1, t2


@workload("iou-square", "pairwise box_iou / giou / diou / ciou, N = M")
def iou_square(env: Env) -> Iterator[Case]:
    for op, n, dtype in iou_square_params(env.device, env.quick):
        x1, x2, t1, t2 = _iou_inputs(env, n, dtype)
        contenders = env.baselines(op, (t1, t2), IOU_OPS[op], (x1, x2))
        contenders += env.fastiou_variants(op, (x1, x2), out=lambda: env.empty((n, n)))
        contenders += env.floors((n, n))
        reference = None
        if dtype != "float32":
            # The same (rounded) inputs, computed in float32: fastiou computes fp16 in fp32.
            def reference(x1=x1, x2=x2, op=op):
                if env.tv_ops is not None:
                    return env.to_numpy(getattr(env.tv_ops, op)(x1.float(), x2.float()))
                return IOU_OPS[op](env.to_numpy(x1), env.to_numpy(x2))
        yield Case("iou-square", op, f"{n}x{n}", dtype, env.device, contenders, reference)
