"""Numba CPU backend: mask_iou (csrc/cpu/mask_iou.cpp) on packed masks, with the same results
as fastiou._C.

The layout and the IoU rule are those of ``csrc/include/fastiou/mask_math.h`` (numba_common
describes them); everything is integer arithmetic, so results are bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_common import _FLAGS, _bits, _boxes, _check, _inter, _iou_value, _launch, _plane


@njit(parallel=True, **_FLAGS)
def _iou_kernel(bits1, boxes1, areas1, bits2, boxes2, areas2, out):
    n = bits1.shape[0]
    m = bits2.shape[0]
    for i in prange(n):
        for j in range(m):
            c = _inter(bits1[i], bits2[j], boxes1[i], boxes2[j])
            out[i, j] = _iou_value(c, areas1[i], areas2[j])


def mask_iou(bits1, boxes1, areas1, bits2, boxes2, areas2, out):
    """out[i, j] = IoU of packed mask i of bits1 and j of bits2, float32 (N, M)."""
    b1 = _bits(bits1, "bits1", (-1, -1, -1))
    n, h, ww = b1.shape
    _plane(h, ww, "bits1")
    b2 = _bits(bits2, "bits2", (-1, h, ww))
    m = b2.shape[0]
    _boxes(boxes1, "boxes1", n, h, ww)
    _boxes(boxes2, "boxes2", m, h, ww)
    _check(areas1, "areas1", (n,), np.int64)
    _check(areas2, "areas2", (m,), np.int64)
    _check(out, "out", (n, m), np.float32, writable=True)
    if n and m:
        _launch(_iou_kernel, b1, boxes1, areas1, b2, boxes2, areas2, out)
    return None
