"""Numba CPU backend: the box kernels, mirroring ``csrc/include/fastiou/box_math.h``.

box_math.h is the definition (and states the contract with torchvision); every function
here performs the same operations in the same order, so results are bit-identical to the
compiled extension's, CIoU included (both call libm's atanf / atan).

Numba promotes ``float32 op <Python float>`` to float64, which would silently change
float32 results, so no Python float literal meets a box value: every function receives
the dtype as ``T`` (``np.float32`` or ``np.float64``) and writes its constants as
``T(...)``; eps is cast to ``T`` once, before the call.

The dispatcher has already validated the arguments: C-contiguous arrays, boxes and
``out`` of one float dtype (float32 or float64), ``out`` of the right shape. Every
function writes into ``out`` and returns None. Mode and format numbers are those of
``csrc/include/fastiou/common.h``.
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np
from numba import njit, prange

FMT_XYXY, FMT_XYWH, FMT_CXCYWH = 0, 1, 2
MODE_IOU, MODE_GIOU, MODE_DIOU, MODE_CIOU, MODE_IOA = 0, 1, 2, 3, 4
_MODES = (MODE_IOU, MODE_GIOU, MODE_DIOU, MODE_CIOU, MODE_IOA)

# fastmath off: reassociation or FMA contraction would break bit-exactness with the C++
# build (-ffp-contract=off). error_model="numpy": 0/0 must give NaN (two zero-area
# boxes), not raise ZeroDivisionError.
_FLAGS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)

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


@njit(**_FLAGS)
def _features(T, mode, boxes, fmt):
    # Structure of arrays (B, 8, K): each feature is contiguous over the boxes, so the
    # pair loop reads unit-stride streams and vectorises. O(B*K), so serial.
    B, K = boxes.shape[0], boxes.shape[1]
    f = np.empty((B, 8, K), T)
    for b in range(B):
        for k in range(K):
            x1, y1, x2, y2, a, cx, cy, ratio = _make_boxf(T, mode, boxes[b, k], fmt)
            f[b, 0, k] = x1
            f[b, 1, k] = y1
            f[b, 2, k] = x2
            f[b, 3, k] = y2
            f[b, 4, k] = a
            f[b, 5, k] = cx
            f[b, 6, k] = cy
            f[b, 7, k] = ratio
    return f


# The parallel kernels are built per (dtype, mode) by factories, on first use, so that T
# and MODE are closure constants: T keeps float32 arithmetic in float32, MODE reaches
# _pair_value as a literal. Their cells (a numpy type and an int) pickle the same in
# every process, so the disk cache is reused.


# A pairwise task is _ROWS rows by _COLS columns: the columns' features (8 x 2048 values,
# 64 KiB in float32) stay in L2 while the rows reuse them, and a long row (few boxes1,
# many boxes2) still splits into tasks for every thread.
_ROWS, _COLS = 8, 2048


@functools.lru_cache(maxsize=None)
def _pairwise_kernel(T, MODE):
    @njit(parallel=True, **_FLAGS)
    def kernel(boxes1, boxes2, out, fmt, eps):
        # prange over (batch, row block, column tile) tasks; within one, each row is a
        # straight, branch-free loop over boxes2's feature rows, which LLVM vectorises.
        B, N, M = out.shape
        f1 = _features(T, MODE, boxes1, fmt)
        f2 = _features(T, MODE, boxes2, fmt)
        row_blocks = (N + _ROWS - 1) // _ROWS
        col_tiles = (M + _COLS - 1) // _COLS
        for t in prange(B * row_blocks * col_tiles):
            b = t // (row_blocks * col_tiles)
            rest = t - b * (row_blocks * col_tiles)
            i0 = (rest // col_tiles) * _ROWS
            j0 = (rest % col_tiles) * _COLS
            i1 = min(N, i0 + _ROWS)
            j1 = min(M, j0 + _COLS)
            g = f2[b]
            bx1, by1, bx2, by2 = g[0], g[1], g[2], g[3]
            barea, bcx, bcy, bratio = g[4], g[5], g[6], g[7]
            for i in range(i0, i1):
                ax1, ay1, ax2, ay2 = f1[b, 0, i], f1[b, 1, i], f1[b, 2, i], f1[b, 3, i]
                aarea, acx, acy, aratio = f1[b, 4, i], f1[b, 5, i], f1[b, 6, i], f1[b, 7, i]
                o = out[b, i]
                for j in range(j0, j1):
                    o[j] = _pair_value(T, MODE, ax1, ay1, ax2, ay2, aarea, acx, acy, aratio,
                                       bx1[j], by1[j], bx2[j], by2[j], barea[j], bcx[j],
                                       bcy[j], bratio[j], eps)

    return kernel


@functools.lru_cache(maxsize=None)
def _aligned_kernel(T, MODE):
    @njit(parallel=True, **_FLAGS)
    def kernel(boxes1, boxes2, out, fmt, eps):
        # Each box is used once, so its features are made on the fly; one task per pair.
        for n in prange(out.shape[0]):
            ax1, ay1, ax2, ay2, aa, acx, acy, ar = _make_boxf(T, MODE, boxes1[n], fmt)
            bx1, by1, bx2, by2, ba, bcx, bcy, br = _make_boxf(T, MODE, boxes2[n], fmt)
            out[n] = _pair_value(T, MODE, ax1, ay1, ax2, ay2, aa, acx, acy, ar,
                                 bx1, by1, bx2, by2, ba, bcx, bcy, br, eps)

    return kernel


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


@njit(parallel=True, **_FLAGS)
def _masks_to_boxes_kernel(masks, out):
    # One prange task per mask. Each row is OR-ed into a per-mask column flag array and
    # OR-reduced into its own flag, then the first/last set row and column are read off.
    # Two separate loops over the row (the second reads it from L1): fused, with a uint8
    # accumulator, Numba's code does not vectorise and small masks run ten times slower.
    N, H, W = masks.shape
    for n in prange(N):
        cols = np.zeros(W, np.uint8)
        y1 = -1
        y2 = -1
        for y in range(H):
            row = masks[n, y]
            for x in range(W):
                cols[x] = cols[x] | row[x]
            acc = 0
            for x in range(W):
                acc = acc | row[x]
            if acc != 0:
                if y1 < 0:
                    y1 = y
                y2 = y
        if y1 < 0:
            # An empty mask gives [0, 0, 0, 0] (torchvision >= 0.20, PR #9357).
            out[n, 0] = 0
            out[n, 1] = 0
            out[n, 2] = 0
            out[n, 3] = 0
            continue
        x1 = 0
        while cols[x1] == 0:
            x1 += 1
        x2 = W - 1
        while cols[x2] == 0:
            x2 -= 1
        # Inclusive max: a one-pixel mask has x1 == x2, as torchvision.
        out[n, 0] = x1
        out[n, 1] = y1
        out[n, 2] = x2
        out[n, 3] = y2


# Numba's "workqueue" threading layer (the fallback when neither TBB nor OpenMP is
# available) aborts the process when two threads launch parallel kernels at once; the
# kernels release the GIL, so serialise them there. The layer is only known after the
# first parallel launch, so the first calls take the lock too.
_launch_lock = threading.Lock()


def _needs_lock() -> bool:
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:
        return True


def _launch(kernel, *args) -> None:
    if _needs_lock():
        with _launch_lock:
            kernel(*args)
    else:
        kernel(*args)


def _dtype(a: np.ndarray):
    return np.float32 if a.dtype == np.float32 else np.float64


def _mode(mode: int) -> int:
    if mode not in _MODES:
        raise ValueError(f"unknown box measure mode {mode!r}; expected one of {_MODES}")
    return int(mode)


def box_pairwise(boxes1: np.ndarray, boxes2: np.ndarray, out: np.ndarray, mode: int,
                 fmt: int, eps: float) -> None:
    """``out[b, i, j]`` = pair_value(boxes1[b, i], boxes2[b, j]); (B,N,4), (B,M,4) -> (B,N,M)."""
    if out.size == 0:
        return
    T = _dtype(out)
    _launch(_pairwise_kernel(T, _mode(mode)), boxes1, boxes2, out, int(fmt), T(eps))


def box_aligned(boxes1: np.ndarray, boxes2: np.ndarray, out: np.ndarray, mode: int,
                fmt: int, eps: float) -> None:
    """``out[n] = pair_value(boxes1[n], boxes2[n])``; shapes (N,4), (N,4), (N,)."""
    if out.size == 0:
        return
    T = _dtype(out)
    _launch(_aligned_kernel(T, _mode(mode)), boxes1, boxes2, out, int(fmt), T(eps))


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


def masks_to_boxes(masks: np.ndarray, out: np.ndarray) -> None:
    """uint8 masks (N,H,W) to float32 xyxy boxes (N,4), inclusive max, zeros for an empty mask."""
    if out.size == 0:
        return
    _launch(_masks_to_boxes_kernel, masks, out)

from .numba_nms import nms, nms_sweep, soft_nms, matrix_nms, multiclass_nms  # noqa: E402,F401
from .numba_masks import (pack_masks, unpack_masks, packed_stats, mask_iou, mask_nms,  # noqa: E402,F401
                          mask_matrix_nms, resolve_overlaps)
from .numba_rle import (rle_encode, rle_decode, rle_area, rle_to_bbox, rle_merge,  # noqa: E402,F401
                        rle_iou, rle_box_iou, rle_from_polygons, rle_from_counts)
from .numba_anchors import anchor_grid  # noqa: E402,F401
from .numba_box_iou_max import box_iou_max, match_boxes  # noqa: E402,F401
