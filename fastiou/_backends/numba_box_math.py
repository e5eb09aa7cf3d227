"""Numba CPU backend: the box geometry of ``csrc/include/fastiou/box_math.h``.

box_math.h is the definition (and states the contract with torchvision); every function
here performs the same operations in the same order, so results are bit-identical to the
compiled extension's, CIoU included (both call libm's atanf / atan).

Numba promotes ``float32 op <Python float>`` to float64, which would silently change
float32 results, so no Python float literal meets a box value: every function receives
the dtype as ``T`` (``np.float32`` or ``np.float64``) and writes its constants as
``T(...)``; eps is cast to ``T`` once, before the call. Mode and format numbers are those of
``csrc/include/fastiou/common.h``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import _FLAGS


FMT_XYXY, FMT_XYWH, FMT_CXCYWH = 0, 1, 2
MODE_IOU, MODE_GIOU, MODE_DIOU, MODE_CIOU, MODE_IOA = 0, 1, 2, 3, 4


# 4 / pi^2 as box_math.h spells it; T(...) rounds it to T as torch rounds a Python scalar.
_FOUR_OVER_PI2 = 0.40528473456935108578


@njit(**_FLAGS)
def _max_nan(a, b):
    # torch.maximum propagates NaN; Python's max() and a plain a > b ? a : b would not.
    return a if (a > b) | (a != a) else b


@njit(**_FLAGS)
def _min_nan(a, b):
    return a if (a < b) | (a != a) else b


# box_math.h's MinMax<Mode>: NaN-propagating for IoA only. The other modes take the plain
# forms (one maxps/minps each), relying, as box_math.h does, on a NaN coordinate reaching
# the result through the areas.
@njit(**_FLAGS)
def _mm_max(mode, a, b):
    if mode == MODE_IOA:
        return _max_nan(a, b)
    return a if a > b else b


@njit(**_FLAGS)
def _mm_min(mode, a, b):
    if mode == MODE_IOA:
        return _min_nan(a, b)
    return a if a < b else b


# The geometry helpers below are generic over the dtype and receive it as the class ``T``
# (np.float32 or np.float64) to build their constants. They are module-level functions
# rather than closures: Numba keys a closure's disk cache on its pickled cells, and a
# dispatcher in a cell pickles differently in every process, so nothing would be reused.


@njit(**_FLAGS)
def _clamp0(T, a):
    # Keeps NaN, as torch.clamp(min=0) does.
    return T(0) if a < T(0) else a


@njit(**_FLAGS)
def _load_xyxy(T, p, fmt):
    if fmt == FMT_XYXY:
        return p[0], p[1], p[2], p[3]
    if fmt == FMT_XYWH:
        return p[0], p[1], p[0] + p[2], p[1] + p[3]
    # cxcywh as torchvision's _box_inter_union: c -/+ wh / 2 (box_convert uses 0.5 * wh).
    hw = p[2] / T(2)
    hh = p[3] / T(2)
    return p[0] - hw, p[1] - hh, p[0] + hw, p[1] + hh


@njit(**_FLAGS)
def _area(p, fmt):
    # No clamping: an inverted box has a positive area, as in torchvision.
    if fmt == FMT_XYXY:
        return (p[2] - p[0]) * (p[3] - p[1])
    return p[2] * p[3]


@njit(**_FLAGS)
def _make_boxf(T, mode, p, fmt):
    x1, y1, x2, y2 = _load_xyxy(T, p, fmt)
    a = _area(p, fmt)
    # A NaN coordinate must reach the area (box_math.h make_boxf says why).
    if x1 != x1 or y1 != y1 or x2 != x2 or y2 != y2:
        a = x1 if x1 != x1 else (y1 if y1 != y1 else (x2 if x2 != x2 else y2))
    cx = (x1 + x2) / T(2)
    cy = (y1 + y2) / T(2)
    # np.arctan on float32 lowers to libm's atanf, the function the C++ build calls.
    ratio = np.arctan((x2 - x1) / (y2 - y1)) if mode == MODE_CIOU else T(0)
    return x1, y1, x2, y2, a, cx, cy, ratio


@njit(**_FLAGS)
def _pair_value(T, mode, ax1, ay1, ax2, ay2, aarea, acx, acy, aratio,
                bx1, by1, bx2, by2, barea, bcx, bcy, bratio, eps):
    # The kernels pass `mode` as a closure constant, which Numba types as a literal, so
    # each mode gets its own compiled copy with the other modes' branches removed.
    w = _clamp0(T, _mm_min(mode, ax2, bx2) - _mm_max(mode, ax1, bx1))
    h = _clamp0(T, _mm_min(mode, ay2, by2) - _mm_max(mode, ay1, by1))
    inter = w * h
    if mode == MODE_IOA:
        return inter / aarea
    uni = aarea + barea - inter
    iou = inter / uni
    if mode == MODE_IOU:
        return iou
    cw = _clamp0(T, _mm_max(mode, ax2, bx2) - _mm_min(mode, ax1, bx1))
    ch = _clamp0(T, _mm_max(mode, ay2, by2) - _mm_min(mode, ay1, by1))
    if mode == MODE_GIOU:
        areac = cw * ch
        return iou - (areac - uni) / areac
    diag = cw * cw + ch * ch + eps
    dx = acx - bcx
    dy = acy - bcy
    diou = iou - (dx * dx + dy * dy) / diag
    if mode == MODE_DIOU:
        return diou
    dr = aratio - bratio
    v = T(_FOUR_OVER_PI2) * (dr * dr)
    alpha = v / (T(1) - iou + v + eps)
    return diou - alpha * v
