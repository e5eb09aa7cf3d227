"""Numba CPU backend: the suppression kernels, with the same results as fastiou._C.

The rules are those of ``csrc/include/fastiou/nms_math.h`` (ranking, the strict ``>`` test of
a float IoU against a double threshold, soft-NMS weights, Matrix-NMS decay) on the IoU of
``box_math.h`` (``pair_value<T, MODE_IOU>``), computed here with the same operations in the
same order, so indices are identical and scores equal to the last bit (exp is libm's in both).

The algorithms are simpler than the C++ ones where that changes no result:
    * ranking: a stable argsort (mergesort; NaN after every number) of ``-score``;
    * greedy NMS: a uniform grid whose cells list the kept boxes, a candidate reading every
      cell its box covers (the C++ pass also narrows that to a band around the box's centre);
      below a threshold of 0, or for small groups, every kept box is tested;
    * nms_sweep: one sort, then the greedy pass once per threshold;
    * every kernel is serial (no prange), so no launch lock is needed.

Numba promotes ``float32 op <Python float>`` to float64, so every float constant that meets a
box value is built as ``T(...)``, ``T`` being np.float32 or np.float64, passed in; thresholds
are converted to T (or, for the IoU test in float32, to the float32 threshold that decides as
the double comparison does) before the call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Same numbers as nms_math.h.
SOFT_LINEAR, SOFT_GAUSSIAN, SOFT_HARD = 0, 1, 2
MATRIX_GAUSSIAN, MATRIX_LINEAR = 0, 1

_FLAGS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)

_GRID_MIN = 64    # below this many boxes the unpruned pass
_BIG_CELLS = 36   # boxes covering more cells go to a list every candidate reads


# ------------------------------------------------------------------------------ helpers

def _dtype(a: np.ndarray):
    return np.float32 if a.dtype == np.float32 else np.float64


def _threshold_as(T, threshold: float):
    """The T threshold t with ``iou > t`` <=> ``float64(iou) > threshold`` (nms_math.h)."""
    threshold = float(threshold)
    if T is np.float64:
        return np.float64(threshold)
    t = np.float32(threshold)
    if float(t) > threshold:  # rounded up: the next float32 below
        t = np.nextafter(t, np.float32(-np.inf))
    return t


def _check(a, name, shape, dtype, writable=False, strided=False):
    """As fastiou._C checks; ``strided``: any positive, item-aligned strides (its ``strided``)."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if strided:
        if not a.flags.aligned:
            raise ValueError(f"{name}: expected an aligned array")
        for d, (st, ext) in enumerate(zip(a.strides, a.shape)):
            if a.size and ext > 1 and (st <= 0 or st % a.itemsize):
                raise ValueError(f"{name}: expected positive strides that are multiples of the "
                                 f"item size, got {st} bytes on axis {d}")
        owner = a.base  # as_strided views may claim more than the owning array's memory
        while owner is not None and not (isinstance(owner, np.ndarray) and owner.flags.owndata):
            owner = getattr(owner, "base", None)
        if a.size and owner is not None:
            off = a.ctypes.data - owner.ctypes.data
            end = off + sum((e - 1) * st for e, st in zip(a.shape, a.strides) if e > 1) + a.itemsize
            if off < 0 or end > owner.nbytes:
                raise ValueError(f"{name}: strides and shape reach past the array's memory")
    elif not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name}: not writable")
    if a.ndim != len(shape) or any(s >= 0 and a.shape[d] != s for d, s in enumerate(shape)):
        want = ", ".join("*" if s < 0 else str(s) for s in shape)
        raise ValueError(f"{name}: expected shape ({want}), got {a.shape}")


def _boxes_dtype(boxes):
    if not isinstance(boxes, np.ndarray) or boxes.dtype not in (np.float32, np.float64):
        got = boxes.dtype if isinstance(boxes, np.ndarray) else type(boxes).__name__
        raise ValueError(f"boxes: expected dtype float32 or float64, got {got}")
    return boxes.dtype


def _boxes_scores(boxes, scores, scores_dtype=None):
    """Checks boxes (N, 4) and scores (N,) (of ``scores_dtype``, default the boxes'); returns
    (boxes dtype, N)."""
    dt = _boxes_dtype(boxes)
    _check(boxes, "boxes", (-1, 4), dt)
    n = boxes.shape[0]
    _check(scores, "scores", (n,), dt if scores_dtype is None else scores_dtype)
    return dt, n


@njit(**_FLAGS)
def _iou(T, ax1, ay1, ax2, ay2, aar, bx1, by1, bx2, by2, bar):
    # box_math.h pair_value<T, MODE_IOU>, a = the higher-ranked box: plain min/max (a NaN
    # coordinate reaches the result through the areas), clamp(min=0) keeping NaN, no eps.
    w = (ax2 if ax2 < bx2 else bx2) - (ax1 if ax1 > bx1 else bx1)
    h = (ay2 if ay2 < by2 else by2) - (ay1 if ay1 > by1 else by1)
    w = T(0) if w < T(0) else w
    h = T(0) if h < T(0) else h
    inter = w * h
    return inter / (aar + bar - inter)


@njit(**_FLAGS)
def _rank(scores):
    # Decreasing score, ties by index (stable), NaN after every number (-inf included).
    s = np.empty(scores.shape[0], np.float64)
    for i in range(scores.shape[0]):
        s[i] = -np.float64(scores[i])
    return np.argsort(s, kind="mergesort")


@njit(**_FLAGS)
def _columns(boxes, order):
    n = order.shape[0]
    x1 = np.empty(n, boxes.dtype)
    y1 = np.empty(n, boxes.dtype)
    x2 = np.empty(n, boxes.dtype)
    y2 = np.empty(n, boxes.dtype)
    ar = np.empty(n, boxes.dtype)
    for r in range(n):
        b = boxes[order[r]]
        x1[r] = b[0]
        y1[r] = b[1]
        x2[r] = b[2]
        y2[r] = b[3]
        ar[r] = (b[2] - b[0]) * (b[3] - b[1])
    return x1, y1, x2, y2, ar


@njit(**_FLAGS)
def _partition(labels, order):
    # Ranks regrouped by label: perm[start[g]:start[g + 1]] are group g's ranks, increasing.
    n = order.shape[0]
    ng, dense = _dense(labels)
    cnt = np.zeros(ng + 1, np.int64)
    for i in range(n):
        cnt[dense[i] + 1] += 1
    for g in range(ng):
        cnt[g + 1] += cnt[g]
    pos = cnt[:ng].copy()
    perm = np.empty(n, np.int64)
    for r in range(n):
        g = dense[order[r]]
        perm[pos[g]] = r
        pos[g] += 1
    return perm, cnt


@njit(**_FLAGS)
def _dense(labels):
    # (number of distinct labels, dense id of each label).
    n = labels.shape[0]
    srt = np.argsort(labels, kind="mergesort")
    dense = np.empty(n, np.int64)
    g = -1
    for k in range(n):
        i = srt[k]
        if k == 0 or labels[i] != labels[srt[k - 1]]:
            g += 1
        dense[i] = g
    return g + 1, dense


# ------------------------------------------------------------------------------ greedy NMS

@njit(**_FLAGS)
def _greedy(T, x1, y1, x2, y2, ar, threshold, t, cap, keep):
    """Greedy NMS over ranked boxes: keep[i] = 1 for the kept ones (at most cap, cap < 0: all)."""
    n = x1.shape[0]
    keep[:] = 0
    limit = n if cap < 0 else min(cap, n)
    if limit == 0:
        return 0
    if threshold != threshold:
        keep[:limit] = 1
        return limit
    kept = 0
    if not (threshold >= 0.0) or n < _GRID_MIN:
        kx1 = np.empty(n, x1.dtype)
        ky1 = np.empty(n, x1.dtype)
        kx2 = np.empty(n, x1.dtype)
        ky2 = np.empty(n, x1.dtype)
        kar = np.empty(n, x1.dtype)
        for i in range(n):
            sup = False
            for e in range(kept):
                if _iou(T, kx1[e], ky1[e], kx2[e], ky2[e], kar[e],
                        x1[i], y1[i], x2[i], y2[i], ar[i]) > t:
                    sup = True
                    break
            if sup:
                continue
            kx1[kept] = x1[i]
            ky1[kept] = y1[i]
            kx2[kept] = x2[i]
            ky2[kept] = y2[i]
            kar[kept] = ar[i]
            keep[i] = 1
            kept += 1
            if kept == limit:
                break
        return kept
    # Threshold >= 0: only boxes with x2 > x1, y2 > y1 and a finite area can suppress or be
    # suppressed (nms.cpp explains why); they go on a grid of median-sized cells.
    elig = np.zeros(n, np.bool_)
    ne = 0
    minx = np.inf
    miny = np.inf
    maxx = -np.inf
    maxy = -np.inf
    for i in range(n):
        if x2[i] > x1[i] and y2[i] > y1[i] and np.isfinite(ar[i]):
            elig[i] = True
            ne += 1
            minx = min(minx, np.float64(x1[i]))
            miny = min(miny, np.float64(y1[i]))
            maxx = max(maxx, np.float64(x2[i]))
            maxy = max(maxy, np.float64(y2[i]))
    if ne == 0:
        keep[:limit] = 1
        return limit
    ws = np.empty(ne, np.float64)
    hs = np.empty(ne, np.float64)
    k = 0
    for i in range(n):
        if elig[i]:
            ws[k] = np.float64(x2[i]) - np.float64(x1[i])
            hs[k] = np.float64(y2[i]) - np.float64(y1[i])
            k += 1
    mw = np.median(ws)
    mh = np.median(hs)
    ex = maxx - minx
    ey = maxy - miny
    capc = max(16.0, 2.0 * ne)
    nx = min(max(np.ceil(ex / mw), 1.0), capc)
    ny = min(max(np.ceil(ey / mh), 1.0), capc)
    if nx != nx:
        nx = 1.0
    if ny != ny:
        ny = 1.0
    if nx * ny > capc:
        f = np.sqrt(nx * ny / capc)
        nx = max(1.0, np.floor(nx / f))
        ny = max(1.0, np.floor(ny / f))
    gx = int(nx)
    gy = int(ny)
    fx = gx / ex
    fy = gy / ey
    cx0 = np.zeros(n, np.int64)
    cx1 = np.zeros(n, np.int64)
    cy0 = np.zeros(n, np.int64)
    cy1 = np.zeros(n, np.int64)
    big = np.zeros(n, np.bool_)
    regs = 0
    for i in range(n):
        if not elig[i]:
            continue
        cx0[i] = _cell(x1[i], minx, fx, gx)
        cx1[i] = _cell(x2[i], minx, fx, gx)
        cy0[i] = _cell(y1[i], miny, fy, gy)
        cy1[i] = _cell(y2[i], miny, fy, gy)
        r = (cx1[i] - cx0[i] + 1) * (cy1[i] - cy0[i] + 1)
        if r > _BIG_CELLS:
            big[i] = True
        else:
            regs += r
    # Per cell, a linked list of entries (the kept box's rank); every kept box in `klist`.
    head = np.full(gx * gy, -1, np.int64)
    nxt = np.empty(max(regs, 1), np.int64)
    ent = np.empty(max(regs, 1), np.int64)
    klist = np.empty(ne, np.int64)
    blist = np.empty(ne, np.int64)
    ne_used = 0
    mk = 0
    mb = 0
    for i in range(n):
        if elig[i]:
            sup = False
            if big[i]:
                for e in range(mk):
                    a = klist[e]
                    if _iou(T, x1[a], y1[a], x2[a], y2[a], ar[a],
                            x1[i], y1[i], x2[i], y2[i], ar[i]) > t:
                        sup = True
                        break
            else:
                for cy in range(cy0[i], cy1[i] + 1):
                    for cx in range(cx0[i], cx1[i] + 1):
                        e = head[cy * gx + cx]
                        while e >= 0:
                            a = ent[e]
                            if _iou(T, x1[a], y1[a], x2[a], y2[a], ar[a],
                                    x1[i], y1[i], x2[i], y2[i], ar[i]) > t:
                                sup = True
                                break
                            e = nxt[e]
                        if sup:
                            break
                    if sup:
                        break
                if not sup:
                    for e in range(mb):
                        a = blist[e]
                        if _iou(T, x1[a], y1[a], x2[a], y2[a], ar[a],
                                x1[i], y1[i], x2[i], y2[i], ar[i]) > t:
                            sup = True
                            break
            if sup:
                continue
            klist[mk] = i
            mk += 1
            if big[i]:
                blist[mb] = i
                mb += 1
            else:
                for cy in range(cy0[i], cy1[i] + 1):
                    for cx in range(cx0[i], cx1[i] + 1):
                        c = cy * gx + cx
                        ent[ne_used] = i
                        nxt[ne_used] = head[c]
                        head[c] = ne_used
                        ne_used += 1
        keep[i] = 1
        kept += 1
        if kept == limit:
            break
    return kept


@njit(**_FLAGS)
def _cell(v, o, f, g):
    c = (np.float64(v) - o) * f
    c = c if c > 0.0 else 0.0
    top = np.float64(g - 1)
    c = c if c < top else top
    return int(c)


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


# ------------------------------------------------------------------------------ soft-NMS

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


# ------------------------------------------------------------------------------ Matrix NMS

@njit(**_FLAGS)
def _matrix_term(T, x, kernel, sigma):
    if kernel == MATRIX_GAUSSIAN:
        a = -sigma * (x * x)
        return T(1) if a == T(0) else np.exp(a)
    return T(1) - x


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


# ------------------------------------------------------------------------------ multiclass

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
