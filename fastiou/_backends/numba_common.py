"""Numba CPU backend: what more than one op module uses.

The counterpart of csrc/cpu's ``cpu_common.h``, ``nms_common.h`` and ``mask_common.h``: the
compile flags, the launch lock of the parallel kernels, the argument checks of fastiou._C, the
ranking, grouping and greedy suppression of ``csrc/include/fastiou/nms_math.h`` with the box IoU
they test, the Matrix NMS term, and the packed-mask helpers of ``csrc/include/fastiou/mask_math.h``.
The op modules (``numba_<op>.py``, one per csrc/cpu/<op>.cpp) import this module and
``numba_box_math``; it imports no other module of the backend.

Numba promotes ``float32 op <Python float>`` to float64, so every float constant that meets a
box value is built as ``T(...)``, ``T`` being np.float32 or np.float64, passed in; thresholds
are converted to T (or, for the IoU test in float32, to the float32 threshold that decides as
the double comparison does) before the call.

Packed masks: N masks of H x W are (N, H, ceil(W / 64)) 64-bit words, pixel (y, x) bit
``x & 63`` of word ``x >> 6`` of row y, padding bits 0; each mask has a tight box int32
(x0, y0, x1, y1) with an exclusive maximum ((0, 0, 0, 0) when empty) and an int64 area. A pair's
IoU counts the common pixels in the words of its boxes' intersection only, divides in float64
and rounds once to float32. ``bits`` may arrive as uint64 or int64 (torch's storage): they are
viewed as uint64 here. popcount is LLVM's ``ctpop`` (the popcnt instruction where the CPU has it).
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


# fastmath off: reassociation or FMA contraction would break bit-exactness with the C++
# build (-ffp-contract=off). error_model="numpy": 0/0 must give NaN (two zero-area
# boxes), not raise ZeroDivisionError.
def _user_cache() -> bool:
    """Where fastiou's compiled functions are cached: numba's ``cache=True`` writes next to the
    sources (into site-packages) whenever that directory is writable. Unless NUMBA_CACHE_DIR
    says otherwise, fastiou's files cache in numba's user-wide directory instead
    ($XDG_CACHE_HOME/numba, ~/.cache/numba), through a locator that numba asks first for them
    only. With a numba whose caching internals differ, nothing is cached (never the package)."""
    try:
        import os

        from numba.core import caching
        if numba.config.CACHE_DIR:
            return True  # the user's directory: numba puts every cache there
        here = os.path.dirname(os.path.abspath(__file__)) + os.sep
        base = caching.UserWideCacheLocator
        locators = caching.CacheImpl._locator_classes
    except (ImportError, AttributeError):
        return False
    if not any(getattr(c, "_fastiou", False) for c in locators):
        class FastiouCacheLocator(base):
            _fastiou = True

            @classmethod
            def from_function(cls, py_func, py_file):
                if not os.path.abspath(py_file).startswith(here):
                    return None
                return super().from_function(py_func, py_file)

        locators.insert(0, FastiouCacheLocator)
    return True


_FLAGS = dict(cache=_user_cache(), fastmath=False, error_model="numpy", nogil=True)


# Same numbers as nms_math.h.
MATRIX_GAUSSIAN, MATRIX_LINEAR = 0, 1


_GRID_MIN = 64    # below this many boxes the unpruned pass
_BIG_CELLS = 36   # boxes covering more cells go to a list every candidate reads


# ------------------------------------------------------------------------------ launch and checks

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


# ------------------------------------------------------------------------- ranking and greedy NMS

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
    if not (threshold >= 0.0) or n < _GRID_MIN:
        return _greedy_all(T, x1, y1, x2, y2, ar, t, limit, keep)
    return _greedy_grid(T, x1, y1, x2, y2, ar, t, limit, keep)


@njit(**_FLAGS)
def _greedy_all(T, x1, y1, x2, y2, ar, t, limit, keep):
    # _greedy's unpruned pass: every candidate against every kept box.
    n = x1.shape[0]
    kept = 0
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


@njit(**_FLAGS)
def _greedy_grid(T, x1, y1, x2, y2, ar, t, limit, keep):
    # Long (~125 lines): the grid's set-up and its walk share a dozen arrays and bounds.
    n = x1.shape[0]
    kept = 0
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
def _matrix_term(T, x, kernel, sigma):
    if kernel == MATRIX_GAUSSIAN:
        a = -sigma * (x * x)
        return T(1) if a == T(0) else np.exp(a)
    return T(1) - x


# ----------------------------------------------------------------------------------- packed masks

@intrinsic
def _popcount(typingctx, x):
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None
    sig = types.int64(x)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]),
                                            "llvm.ctpop.i64")
        return builder.call(fn, [args[0]])

    return sig, codegen


def _bits(a, name, shape, writable=False):
    """``a`` checked as fastiou._C checks a bits array (uint64 or int64), viewed as uint64."""
    if not isinstance(a, np.ndarray) or a.dtype not in (np.uint64, np.int64):
        got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name}: expected dtype uint64 or int64, got {got}")
    _check(a, name, shape, a.dtype, writable=writable)
    return a.view(np.uint64)


def _plane(h, ww, name):
    if h > 2**31 - 1 or ww > (2**31 - 1) // 64:
        raise ValueError(f"{name}: masks of at most 2**31 - 1 rows and 2**31 - 64 columns")


def _boxes(a, name, n, h, ww):
    _check(a, name, (n, 4), np.int32)
    if n and ((a[:, 0] < 0).any() or (a[:, 1] < 0).any() or (a[:, 2] > 64 * ww).any()
              or (a[:, 3] > h).any()):
        bad = int(np.flatnonzero((a[:, 0] < 0) | (a[:, 1] < 0) | (a[:, 2] > 64 * ww) | (a[:, 3] > h))[0])
        raise ValueError(f"{name}: box {bad} {tuple(int(v) for v in a[bad])} lies outside the masks")
    return a


@njit(**_FLAGS)
def _window(b1, b2):
    # mask_math.h mask_window: rows [y0, y1), words [w0, w1); empty when y0 >= y1 or w0 >= w1.
    x0 = max(b1[0], b2[0])
    x1 = min(b1[2], b2[2])
    y0 = max(b1[1], b2[1])
    y1 = min(b1[3], b2[3])
    if x1 <= x0:
        return y0, y1, 0, 0
    return y0, y1, x0 >> 6, (x1 + 63) >> 6


@njit(**_FLAGS)
def _inter(a, b, b1, b2):
    # Common pixels of masks a and b (h, ww) in the window of their boxes.
    y0, y1, w0, w1 = _window(b1, b2)
    acc = 0
    if y0 >= y1 or w0 >= w1:
        return acc
    for y in range(y0, y1):
        for w in range(w0, w1):
            acc += _popcount(a[y, w] & b[y, w])
    return acc


@njit(**_FLAGS)
def _iou_value(inter, a1, a2):
    uni = a1 + a2 - inter
    if uni > 0:
        return np.float32(np.float64(inter) / np.float64(uni))
    return np.float32(0)
