"""Numba CPU backend: soft_nms (csrc/cpu/soft_nms.cpp), mmcv's soft-NMS with the weights of
``nms_math.h``, with the same results as fastiou._C (exp is libm's in both). Serial.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import _FLAGS, _boxes_scores, _check, _dtype, _iou


# Same numbers as nms_math.h.
SOFT_LINEAR, SOFT_GAUSSIAN, SOFT_HARD = 0, 1, 2


@njit(**_FLAGS)
def _soft_nms(T, boxes, scores, thr, sigma, min_score, method, keep, new_scores):
    # mmcv softnms_cpu: pick the best box in play (NaN last, ties: lowest input index), decay
    # every other box in play by soft_weight, drop those now < min_score (strict; NaN stays).
    n = boxes.shape[0]
    x1 = boxes[:, 0].copy()
    y1 = boxes[:, 1].copy()
    x2 = boxes[:, 2].copy()
    y2 = boxes[:, 3].copy()
    ar = (x2 - x1) * (y2 - y1)
    sc = scores.copy()
    idx = np.arange(n)
    m = n
    best = 0
    for e in range(1, m):
        a = sc[e]
        b = sc[best]
        if a > b or (b != b and a == a):
            best = e
    k = 0
    while m > 0:
        p = best
        keep[k] = idx[p]
        new_scores[k] = sc[p]
        k += 1
        px1 = x1[p]
        py1 = y1[p]
        px2 = x2[p]
        py2 = y2[p]
        par = ar[p]
        for e in range(m):
            iou = _iou(T, px1, py1, px2, py2, par, x1[e], y1[e], x2[e], y2[e], ar[e])
            if method == SOFT_GAUSSIAN:
                arg = -(iou * iou) / sigma
                if arg != T(0):  # exp_or_one: exp(+-0) is exactly 1
                    sc[e] = sc[e] * np.exp(arg)
            elif method == SOFT_LINEAR:
                sc[e] = sc[e] * (T(1) - iou if iou >= thr else T(1))
            else:
                sc[e] = sc[e] * (T(0) if iou >= thr else T(1))
        w = 0
        best = -1
        for e in range(m):
            if e == p or sc[e] < min_score:
                continue
            if w != e:
                x1[w] = x1[e]
                y1[w] = y1[e]
                x2[w] = x2[e]
                y2[w] = y2[e]
                ar[w] = ar[e]
                sc[w] = sc[e]
                idx[w] = idx[e]
            if best < 0:
                best = w
            else:
                a = sc[w]
                b = sc[best]
                if a > b or (b != b and a == a):
                    best = w
            w += 1
        m = w
    return k


def soft_nms(boxes, scores, iou_threshold, sigma, min_score, method, keep, new_scores):
    """mmcv soft-NMS: ``keep[:K]``, ``new_scores[:K]`` in processing order; returns K."""
    if method not in (SOFT_LINEAR, SOFT_GAUSSIAN, SOFT_HARD):
        raise ValueError(f"method: expected 0 (linear), 1 (gaussian) or 2 (hard), got {method}")
    dt, n = _boxes_scores(boxes, scores)
    _check(keep, "keep", (n,), np.int64, writable=True)
    _check(new_scores, "new_scores", (n,), dt, writable=True)
    if n == 0:
        return 0
    T = _dtype(boxes)
    return int(_soft_nms(T, boxes, scores, T(iou_threshold), T(sigma), T(min_score),
                         int(method), keep, new_scores))
