"""Numba CPU backend: box_pairwise and box_aligned (csrc/cpu/box_iou.cpp), on the geometry of
``numba_box_math`` (box_math.h), bit-identical to fastiou._C.

The dispatcher has already validated the arguments: C-contiguous arrays, boxes and
``out`` of one float dtype (float32 or float64), ``out`` of the right shape. Every
function writes into ``out`` and returns None.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from .numba_box_math import (MODE_CIOU, MODE_DIOU, MODE_GIOU, MODE_IOA, MODE_IOU, _make_boxf,
                             _pair_value)
from .numba_common import _FLAGS, _dtype, _launch


_MODES = (MODE_IOU, MODE_GIOU, MODE_DIOU, MODE_CIOU, MODE_IOA)


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
