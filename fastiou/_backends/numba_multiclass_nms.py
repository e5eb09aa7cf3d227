"""Numba CPU backend: multiclass_nms (csrc/cpu/multiclass_nms.cpp), per-class greedy NMS with a
per-class cap and the top K per image, with the same results as fastiou._C. Serial.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import _FLAGS, _boxes_dtype, _check, _dtype, _greedy, _rank, _threshold_as


@njit(**_FLAGS)
def _multiclass(T, boxes, scores, threshold, t, st, max_per_class, num, ob, os_, oc, oi):
    B, N, C = scores.shape
    Cb = boxes.shape[2]
    K = os_.shape[1]
    for b in range(B):
        # Kept (n, class) of every class: candidates score > st (in T), ranked by score (ties:
        # n), greedy NMS with the per-class cap.
        kn = np.empty(N * C, np.int64)
        kc = np.empty(N * C, np.int64)
        nk = 0
        for c in range(C):
            m = 0
            for i in range(N):
                if scores[b, i, c] > st:
                    m += 1
            if m == 0:
                continue
            cand = np.empty(m, np.int64)
            cs = np.empty(m, scores.dtype)
            m = 0
            for i in range(N):
                if scores[b, i, c] > st:
                    cand[m] = i
                    cs[m] = scores[b, i, c]
                    m += 1
            order = _rank(cs)
            col = 0 if Cb == 1 else c
            x1 = np.empty(m, boxes.dtype)
            y1 = np.empty(m, boxes.dtype)
            x2 = np.empty(m, boxes.dtype)
            y2 = np.empty(m, boxes.dtype)
            ar = np.empty(m, boxes.dtype)
            for r in range(m):
                bx = boxes[b, cand[order[r]], col]
                x1[r] = bx[0]
                y1[r] = bx[1]
                x2[r] = bx[2]
                y2[r] = bx[3]
                ar[r] = (bx[2] - bx[0]) * (bx[3] - bx[1])
            flag = np.empty(m, np.uint8)
            _greedy(T, x1, y1, x2, y2, ar, threshold, t, max_per_class, flag)
            for r in range(m):
                if flag[r]:
                    kn[nk] = cand[order[r]]
                    kc[nk] = c
                    nk += 1
        # Top K by (score desc, n, class): sort by n * C + class, then stably by -score.
        lin = np.empty(nk, np.int64)
        for j in range(nk):
            lin[j] = kn[j] * C + kc[j]
        o1 = np.argsort(lin)
        neg = np.empty(nk, np.float64)
        for j in range(nk):
            neg[j] = -np.float64(scores[b, kn[o1[j]], kc[o1[j]]])
        o2 = np.argsort(neg, kind="mergesort")
        cnt = min(K, nk)
        num[b] = cnt
        for r in range(K):
            if r < cnt:
                j = o1[o2[r]]
                i = kn[j]
                c = kc[j]
                src = boxes[b, i, 0 if Cb == 1 else c]
                for q in range(4):
                    ob[b, r, q] = src[q]
                os_[b, r] = scores[b, i, c]
                oc[b, r] = c
                oi[b, r] = i
            else:
                for q in range(4):
                    ob[b, r, q] = T(0)
                os_[b, r] = T(0)
                oc[b, r] = -1
                oi[b, r] = -1


def multiclass_nms(boxes, scores, iou_threshold, score_threshold, max_per_class, num,
                   out_boxes, out_scores, out_classes, out_indices):
    """Batched per-class NMS with a per-class cap and the top K per image (as fastiou._C)."""
    max_per_class = int(max_per_class)
    if max_per_class < -1:
        raise ValueError("max_per_class: expected -1 (no limit) or a count >= 0, "
                         f"got {max_per_class}")
    dt = _boxes_dtype(boxes)
    _check(boxes, "boxes", (-1, -1, -1, 4), dt)
    B, N, Cb = boxes.shape[:3]
    _check(scores, "scores", (B, N, -1), dt, strided=True)
    C = scores.shape[2]
    if Cb != 1 and Cb != C:
        raise ValueError(f"boxes: expected shape (B, N, 1, 4) or (B, N, C, 4) with C = {C}, "
                         f"got {boxes.shape}")
    _check(num, "num", (B,), np.int64, writable=True)
    _check(out_scores, "out_scores", (B, -1), dt, writable=True)
    K = out_scores.shape[1]
    _check(out_boxes, "out_boxes", (B, K, 4), dt, writable=True)
    _check(out_classes, "out_classes", (B, K), np.int64, writable=True)
    _check(out_indices, "out_indices", (B, K), np.int64, writable=True)
    if B == 0:
        return None
    T = _dtype(boxes)
    _multiclass(T, boxes, scores, float(iou_threshold), _threshold_as(T, iou_threshold),
                T(score_threshold), max_per_class, num, out_boxes, out_scores, out_classes,
                out_indices)
    return None
