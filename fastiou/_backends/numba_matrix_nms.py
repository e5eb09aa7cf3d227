"""Numba CPU backend: matrix_nms on boxes (csrc/cpu/matrix_nms.cpp), the Matrix-NMS decay of
``nms_math.h`` on box IoU, with the same results as fastiou._C (exp is libm's in both). Serial.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import (MATRIX_GAUSSIAN, MATRIX_LINEAR, _FLAGS, _boxes_scores, _check, _columns,
                           _dtype, _iou, _matrix_term, _partition, _rank)


@njit(**_FLAGS)
def _matrix_nms(T, boxes, scores, labels, kernel, sigma, out):
    n = boxes.shape[0]
    order = _rank(scores)
    perm, start = _partition(labels, order)
    ranked = order[perm]
    x1, y1, x2, y2, ar = _columns(boxes, ranked)
    cterm = np.empty(n, boxes.dtype)
    for g in range(start.shape[0] - 1):
        s = start[g]
        e = start[g + 1]
        # Compensation of each box: its largest IoU with a higher-ranked box of its label
        # (0 if none; NaN if any is NaN, as torch.max).
        for p in range(s, e):
            comp = T(0)
            nan = False
            for q in range(s, p):
                v = _iou(T, x1[q], y1[q], x2[q], y2[q], ar[q], x1[p], y1[p], x2[p], y2[p], ar[p])
                if v != v:
                    nan = True
                elif v > comp:
                    comp = v
            cterm[p] = _matrix_term(T, T(np.nan) if nan else comp, kernel, sigma)
        # Decay: min(1, min over higher-ranked boxes of the label of term(iou) / term(comp)),
        # NaN if any quotient is NaN (torch.min); a zero result is +0.
        for p in range(s, e):
            d = T(1)
            nan = False
            for q in range(s, p):
                v = _iou(T, x1[q], y1[q], x2[q], y2[q], ar[q], x1[p], y1[p], x2[p], y2[p], ar[p])
                x = _matrix_term(T, v, kernel, sigma) / cterm[q]
                if x != x:
                    nan = True
                elif x < d:
                    d = x
            if nan:
                d = T(np.nan)
            elif d == T(0):
                d = T(0)
            i = ranked[p]
            out[i] = scores[i] * d


def matrix_nms(boxes, scores, labels, kernel, sigma, out):
    """Matrix NMS (mmdet mask_matrix_nms on box IoU): decayed scores to ``out``, input order."""
    if kernel not in (MATRIX_GAUSSIAN, MATRIX_LINEAR):
        raise ValueError(f"kernel: expected 0 (gaussian) or 1 (linear), got {kernel}")
    dt, n = _boxes_scores(boxes, scores)
    _check(labels, "labels", (n,), np.int64)
    _check(out, "out", (n,), dt, writable=True)
    if n == 0:
        return None
    T = _dtype(boxes)
    _matrix_nms(T, boxes, scores, labels, int(kernel), T(sigma), out)
    return None
