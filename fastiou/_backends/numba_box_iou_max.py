"""Numba CPU backend: row maxima of IoU and torchvision's Matcher, without the N x M matrix.

Mirrors ``csrc/cpu/box_iou_max.cpp`` on the rules of ``csrc/include/fastiou/anchor_math.h``:
the IoU is box_math.h's ``pair_value<T, MODE_IOU>`` operation for operation (so values equal
``box_iou``'s bit for bit), a row's best is its first maximum (a NaN above every number, the
first NaN kept), labels -1 below ``low``, -2 below ``high`` (thresholds rounded to T), and the
low-quality rule restores a row's best column where the row holds some column's maximum.
Serial loops; memory O(N + M).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import _FLAGS, _iou  # one cache rule (user cache dir) and one IoU


@njit(**_FLAGS)
def _boxf(p):
    x1, y1, x2, y2 = p[0], p[1], p[2], p[3]
    a = (x2 - x1) * (y2 - y1)
    if x1 != x1 or y1 != y1 or x2 != x2 or y2 != y2:  # box_math.h make_boxf
        a = x1 if x1 != x1 else (y1 if y1 != y1 else (x2 if x2 != x2 else y2))
    return x1, y1, x2, y2, a


@njit(**_FLAGS)
def _better(v, best):
    return v > best or (v != v and best == best)


@njit(**_FLAGS)
def _colmax(a, v):
    return v if (v > a or v != v) else a


@njit(**_FLAGS)
def _cols(cols, m):
    c = np.empty((5, m), cols.dtype)
    for j in range(m):
        c[0, j], c[1, j], c[2, j], c[3, j], c[4, j] = _boxf(cols[j])
    return c


@njit(**_FLAGS)
def _row_best(T, row, c, m, colmax, want_col, want_tie):
    """(best, first column of best, whether the row ties a column maximum)."""
    ax1, ay1, ax2, ay2, aar = _boxf(row)
    best = T(0)
    arg = -1
    tie = False
    for j in range(m):
        v = _iou(T, ax1, ay1, ax2, ay2, aar, c[0, j], c[1, j], c[2, j], c[3, j], c[4, j])
        if arg < 0 or _better(v, best):
            best = v
            arg = j
        if want_col:
            colmax[j] = _colmax(colmax[j], v)
        if want_tie and v == colmax[j]:
            tie = True
    return best, arg, tie


@njit(**_FLAGS)
def _iou_max_kernel(T, boxes1, boxes2, counts, values, indices):
    dummy = np.empty(0, boxes1.dtype)
    for b in range(boxes2.shape[0]):
        rows = boxes1[0] if boxes1.shape[0] == 1 else boxes1[b]
        m = counts[b]
        if m == 0:
            values[b, :] = T(0)
            indices[b, :] = -1
            continue
        c = _cols(boxes2[b], m)
        for i in range(rows.shape[0]):
            best, arg, _ = _row_best(T, rows[i], c, m, dummy, False, False)
            values[b, i] = best
            indices[b, i] = arg


@njit(**_FLAGS)
def _match_kernel(T, anchors, gt, counts, high, low, lowq, matches):
    n = matches.shape[1]
    best = np.empty(n, anchors.dtype)
    for b in range(gt.shape[0]):
        rows = anchors[0] if anchors.shape[0] == 1 else anchors[b]
        m = counts[b]
        if m == 0:
            matches[b, :] = -1
            continue
        c = _cols(gt[b], m)
        colmax = np.full(m, -np.inf, anchors.dtype)
        for i in range(n):
            v, arg, _ = _row_best(T, rows[i], c, m, colmax, lowq, False)
            best[i] = v
            matches[b, i] = -1 if v < low else (-2 if v < high else arg)
        if not lowq:
            continue
        min_col = T(np.inf)
        for j in range(m):
            if colmax[j] < min_col:
                min_col = colmax[j]
        for i in range(n):
            if matches[b, i] >= 0 or best[i] < min_col:
                continue
            _, arg, tie = _row_best(T, rows[i], c, m, colmax, False, True)
            if tie:
                matches[b, i] = arg


def _check(rows, rname, cols, cname, counts):
    if rows.ndim != 3 or cols.ndim != 3 or rows.shape[2] != 4 or cols.shape[2] != 4:
        raise ValueError(f"{rname}, {cname}: expected (B, N, 4) and (B, M, 4)")
    if rows.shape[0] not in (1, cols.shape[0]):
        raise ValueError(f"{rname}: expected 1 or {cols.shape[0]} items, got {rows.shape[0]}")
    if rows.dtype != cols.dtype or rows.dtype not in (np.float32, np.float64):
        raise ValueError(f"{cname}: expected the float32/float64 dtype of {rname}")
    if counts.shape != (cols.shape[0],) or counts.dtype != np.int64:
        raise ValueError(f"counts: expected int64 of shape ({cols.shape[0]},)")
    if counts.size and (counts.min() < 0 or counts.max() > cols.shape[1]):
        raise ValueError(f"counts: expected values in 0..{cols.shape[1]}")
    return np.float32 if rows.dtype == np.float32 else np.float64


def box_iou_max(boxes1, boxes2, counts, values, indices) -> None:
    """values[b, i], indices[b, i]: the best IoU of boxes1[b or 0, i] over boxes2[b, :counts[b]]."""
    T = _check(boxes1, "boxes1", boxes2, "boxes2", counts)
    shape = (boxes2.shape[0], boxes1.shape[1])
    if values.shape != shape or indices.shape != shape or values.dtype != boxes1.dtype \
            or indices.dtype != np.int64:
        raise ValueError(f"values, indices: expected shape {shape}")
    if values.size == 0:
        return
    _iou_max_kernel(T, boxes1, boxes2, counts, values, indices)


def match_boxes(anchors, gt, counts, high, low, allow_low_quality_matches, matches) -> None:
    """matches[b, i]: torchvision's Matcher label of anchors[b or 0, i] against gt[b, :counts[b]]."""
    T = _check(anchors, "anchors", gt, "gt", counts)
    shape = (gt.shape[0], anchors.shape[1])
    if matches.shape != shape or matches.dtype != np.int64:
        raise ValueError(f"matches: expected int64 of shape {shape}")
    if matches.size == 0:
        return
    _match_kernel(T, anchors, gt, counts, T(high), T(low), bool(allow_low_quality_matches), matches)
