"""Numba CPU backend: mask_nms and mask_matrix_nms (csrc/cpu/mask_nms.cpp) on packed masks, with
the same results as fastiou._C.

The layout and the IoU rule are those of ``csrc/include/fastiou/mask_math.h`` (numba_common
describes them). Ranking and suppression follow ``nms_math.h`` as numba_nms does. Everything is
integer arithmetic except the Matrix NMS decay, which repeats the C++ float32 operations in order
(exp is libm's expf in both), so results are bit-identical. Serial.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import (MATRIX_GAUSSIAN, MATRIX_LINEAR, _FLAGS, _bits, _boxes, _check, _inter,
                           _iou_value, _matrix_term, _partition, _plane, _rank)


@njit(**_FLAGS)
def _nms_kernel(bits, boxes, areas, scores, threshold, keep):
    order = _rank(scores)
    k = 0
    for r in range(order.shape[0]):
        c = order[r]
        dropped = False
        for q in range(k):
            p = keep[q]
            v = _iou_value(_inter(bits[p], bits[c], boxes[p], boxes[c]), areas[p], areas[c])
            if np.float64(v) > threshold:
                dropped = True
                break
        if not dropped:
            keep[k] = c
            k += 1
    return k


@njit(**_FLAGS)
def _matrix_kernel(bits, boxes, areas, scores, labels, kernel, sigma, out):
    T = np.float32
    n = scores.shape[0]
    order = _rank(scores)
    perm, start = _partition(labels, order)
    ranked = order[perm]  # partition position -> input index
    cterm = np.empty(n, np.float32)
    for g in range(start.shape[0] - 1):
        s = start[g]
        e = start[g + 1]
        for p in range(s, e):
            ip = ranked[p]
            comp = T(0)
            for q in range(s, p):
                iq = ranked[q]
                v = _iou_value(_inter(bits[iq], bits[ip], boxes[iq], boxes[ip]), areas[iq], areas[ip])
                if v > comp:
                    comp = v
            cterm[p] = _matrix_term(T, comp, kernel, sigma)
        for p in range(s, e):
            ip = ranked[p]
            d = T(1)
            nan = False
            for q in range(s, p):
                iq = ranked[q]
                v = _iou_value(_inter(bits[iq], bits[ip], boxes[iq], boxes[ip]), areas[iq], areas[ip])
                x = _matrix_term(T, v, kernel, sigma) / cterm[q]
                if x != x:
                    nan = True
                elif x < d:
                    d = x
            if nan:
                d = T(np.nan)
            elif d == T(0):
                d = T(0)
            out[ip] = scores[ip] * d


def _packed(bits, boxes, areas):
    b = _bits(bits, "bits", (-1, -1, -1))
    n, h, ww = b.shape
    _plane(h, ww, "bits")
    _boxes(boxes, "boxes", n, h, ww)
    _check(areas, "areas", (n,), np.int64)
    return b, n


def mask_nms(bits, boxes, areas, scores, iou_threshold, keep):
    """Greedy NMS on mask IoU: keep[:K] in ranking order; returns K (as fastiou._C)."""
    b, n = _packed(bits, boxes, areas)
    _check(scores, "scores", (n,), np.float64)
    _check(keep, "keep", (n,), np.int64, writable=True)
    if n == 0:
        return 0
    return int(_nms_kernel(b, boxes, areas, scores, float(iou_threshold), keep))


def mask_matrix_nms(bits, boxes, areas, scores, labels, kernel, sigma, out):
    """Matrix NMS on mask IoU: decayed float32 scores in input order (as fastiou._C)."""
    if kernel not in (MATRIX_GAUSSIAN, MATRIX_LINEAR):
        raise ValueError(f"kernel: expected 0 (gaussian) or 1 (linear), got {kernel}")
    b, n = _packed(bits, boxes, areas)
    _check(scores, "scores", (n,), np.float32)
    _check(labels, "labels", (n,), np.int64)
    _check(out, "out", (n,), np.float32, writable=True)
    if n == 0:
        return None
    _matrix_kernel(b, boxes, areas, scores, labels, int(kernel), np.float32(sigma), out)
    return None
