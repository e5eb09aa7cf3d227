"""Numba CPU backend: box_area and box_convert (csrc/cpu/box_elementwise.cpp), on the geometry of
``numba_box_math`` (box_math.h), bit-identical to fastiou._C.

The dispatcher has already validated the arguments (C-contiguous, one float dtype, ``out`` of
the right shape); every function writes into ``out`` and returns None.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_box_math import FMT_CXCYWH, FMT_XYWH, _area
from .numba_common import _FLAGS, _dtype


# Serial: a few flops per box is memory bound; threads would cost more than they save.
@njit(**_FLAGS)
def _area_kernel(boxes, out, fmt):
    for n in range(out.shape[0]):
        out[n] = _area(boxes[n], fmt)


@njit(**_FLAGS)
def _convert_kernel(T, boxes, out, in_fmt, out_fmt):
    # Through xyxy, as torchvision's box_convert and box_math.h's convert_box.
    for n in range(out.shape[0]):
        p = boxes[n]
        if in_fmt == FMT_XYWH:
            x1, y1, x2, y2 = p[0], p[1], p[0] + p[2], p[1] + p[3]
        elif in_fmt == FMT_CXCYWH:
            # cx - 0.5 * w, as torchvision's _box_cxcywh_to_xyxy (box IoU divides by 2).
            x1, y1 = p[0] - T(0.5) * p[2], p[1] - T(0.5) * p[3]
            x2, y2 = p[0] + T(0.5) * p[2], p[1] + T(0.5) * p[3]
        else:
            x1, y1, x2, y2 = p[0], p[1], p[2], p[3]
        q = out[n]
        if out_fmt == FMT_XYWH:
            q[0], q[1], q[2], q[3] = x1, y1, x2 - x1, y2 - y1
        elif out_fmt == FMT_CXCYWH:
            q[0], q[1], q[2], q[3] = (x1 + x2) / T(2), (y1 + y2) / T(2), x2 - x1, y2 - y1
        else:
            q[0], q[1], q[2], q[3] = x1, y1, x2, y2


def box_area(boxes: np.ndarray, out: np.ndarray, fmt: int) -> None:
    """``out[n]`` = area of ``boxes[n]`` in ``fmt``; shapes (N,4), (N,)."""
    if out.size == 0:
        return
    _area_kernel(boxes, out, int(fmt))


def box_convert(boxes: np.ndarray, out: np.ndarray, in_fmt: int, out_fmt: int) -> None:
    """``boxes`` (N,4) in ``in_fmt`` written to ``out`` (N,4) in ``out_fmt``, as convert_box."""
    if out.size == 0:
        return
    _convert_kernel(_dtype(out), boxes, out, int(in_fmt), int(out_fmt))
