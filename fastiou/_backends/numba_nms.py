"""Numba CPU backend: nms and nms_sweep (csrc/cpu/nms.cpp), with the same results as fastiou._C.

The rules are those of ``csrc/include/fastiou/nms_math.h`` (ranking, the strict ``>`` test of
a float IoU against a double threshold) on the IoU of ``box_math.h`` (``pair_value<T,
MODE_IOU>``), computed with the same operations in the same order, so indices are identical.
The ranking and the greedy pass are numba_common's (multiclass_nms shares them).

The algorithms are simpler than the C++ ones where that changes no result:
    * ranking: a stable argsort (mergesort; NaN after every number) of ``-score``;
    * greedy NMS: a uniform grid whose cells list the kept boxes, a candidate reading every
      cell its box covers (the C++ pass also narrows that to a band around the box's centre);
      below a threshold of 0, or for small groups, every kept box is tested;
    * nms_sweep: one sort, then the greedy pass once per threshold;
    * every kernel is serial (no prange), so no launch lock is needed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import (_FLAGS, _boxes_scores, _check, _columns, _dtype, _greedy, _partition,
                           _rank, _threshold_as)


@njit(**_FLAGS)
def _nms_flags(T, boxes, scores, labels, has_labels, thresholds, tvals):
    """Kept flags by rank, one row per threshold, and the ranking."""
    n = boxes.shape[0]
    order = _rank(scores)
    nt = thresholds.shape[0]
    flags = np.zeros((nt, n), np.uint8)
    if has_labels:
        perm, start = _partition(labels, order)
    else:
        perm = np.arange(n)
        start = np.zeros(2, np.int64)
        start[1] = n
    ranked = order[perm]  # partition position -> input index
    x1, y1, x2, y2, ar = _columns(boxes, ranked)
    fp = np.empty(n, np.uint8)
    for k in range(nt):
        for g in range(start.shape[0] - 1):
            s = start[g]
            e = start[g + 1]
            _greedy(T, x1[s:e], y1[s:e], x2[s:e], y2[s:e], ar[s:e], thresholds[k], tvals[k],
                    -1, fp[s:e])
        for p in range(n):
            flags[k, perm[p]] = fp[p]
    return flags, order


@njit(**_FLAGS)
def _emit(flags, order, keep):
    k = 0
    for r in range(order.shape[0]):
        if flags[r]:
            keep[k] = order[r]
            k += 1
    return k


def nms(boxes, scores, classes, iou_threshold, keep):
    """Greedy NMS: kept positions to ``keep[:K]`` in ranking order; returns K (as fastiou._C)."""
    _, n = _boxes_scores(boxes, scores, np.float64)
    if classes is not None:
        _check(classes, "classes", (n,), np.int64)
    _check(keep, "keep", (n,), np.int64, writable=True)
    if n == 0:
        return 0
    T = _dtype(boxes)
    thr = np.array([float(iou_threshold)], np.float64)
    tv = np.array([_threshold_as(T, iou_threshold)], T)
    labels = classes if classes is not None else np.zeros(0, np.int64)
    flags, order = _nms_flags(T, boxes, scores, labels, classes is not None, thr, tv)
    return int(_emit(flags[0], order, keep))


def nms_sweep(boxes, scores, classes, thresholds, keep):
    """``keep[t, :K_t]`` = nms at ``thresholds[t]``, from one sort; returns ``[K_t]``."""
    _, n = _boxes_scores(boxes, scores, np.float64)
    if classes is not None:
        _check(classes, "classes", (n,), np.int64)
    thresholds = [float(t) for t in thresholds]
    _check(keep, "keep", (len(thresholds), n), np.int64, writable=True)
    if not thresholds:
        return []
    if n == 0:
        return [0] * len(thresholds)
    T = _dtype(boxes)
    thr = np.array(thresholds, np.float64)
    tv = np.array([_threshold_as(T, t) for t in thresholds], T)
    labels = classes if classes is not None else np.zeros(0, np.int64)
    flags, order = _nms_flags(T, boxes, scores, labels, classes is not None, thr, tv)
    return [int(_emit(flags[k], order, keep[k])) for k in range(len(thresholds))]
