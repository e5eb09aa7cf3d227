"""Numba CPU backend: the packed binary-mask kernels, with the same results as fastiou._C.

The layout and the IoU rule are those of ``csrc/include/fastiou/mask_math.h``: N masks of
H x W are (N, H, ceil(W / 64)) 64-bit words, pixel (y, x) bit ``x & 63`` of word ``x >> 6`` of
row y, padding bits 0; each mask has a tight box int32 (x0, y0, x1, y1) with an exclusive
maximum ((0, 0, 0, 0) when empty) and an int64 area. A pair's IoU counts the common pixels in
the words of its boxes' intersection only, divides in float64 and rounds once to float32.
Ranking and suppression follow ``nms_math.h`` as in ``numba_nms``. Everything is integer
arithmetic except the Matrix NMS decay, which repeats the C++ float32 operations in order (exp
is libm's expf in both), so results are bit-identical.

``bits`` may arrive as uint64 or int64 (torch's storage): they are viewed as uint64 here.
popcount is LLVM's ``ctpop`` (the popcnt instruction where the CPU has it).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .numba_nms import MATRIX_GAUSSIAN, MATRIX_LINEAR, _check, _matrix_term, _partition, _rank

_FLAGS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def _launch(kernel, *args) -> None:
    # numba_cpu's lock for parallel kernels (imported late: numba_cpu imports this module).
    from .numba_cpu import _launch as launch
    launch(kernel, *args)


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


# ------------------------------------------------------------------------------ helpers

def _words(w: int) -> int:
    return (int(w) + 63) >> 6


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
def _finish_box(col, y0, y1, boxes, k):
    if y0 < 0:
        boxes[k, 0] = 0
        boxes[k, 1] = 0
        boxes[k, 2] = 0
        boxes[k, 3] = 0
        return
    ww = col.shape[0]
    k0 = 0
    while col[k0] == 0:
        k0 += 1
    k1 = ww - 1
    while col[k1] == 0:
        k1 -= 1
    lo = 0
    while (col[k0] >> np.uint64(lo)) & np.uint64(1) == 0:
        lo += 1
    hi = 63
    while (col[k1] >> np.uint64(hi)) & np.uint64(1) == 0:
        hi -= 1
    boxes[k, 0] = 64 * k0 + lo
    boxes[k, 1] = y0
    boxes[k, 2] = 64 * k1 + hi + 1
    boxes[k, 3] = y1


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


# ------------------------------------------------------------------------------ kernels

@njit(**_FLAGS)
def _stats_one(b, boxes, areas, k):
    """Tight box and area of one packed mask b (h, ww), into boxes[k] and areas[k]."""
    h, ww = b.shape
    col = np.zeros(ww, np.uint64)
    y0 = -1
    y1 = -1
    cnt = 0
    for y in range(h):
        any_ = np.uint64(0)
        for q in range(ww):
            word = b[y, q]
            any_ |= word
            col[q] |= word
            cnt += _popcount(word)
        if any_ != 0:
            if y0 < 0:
                y0 = y
            y1 = y + 1
    _finish_box(col, y0, y1, boxes, k)
    areas[k] = cnt


@njit(parallel=True, **_FLAGS)
def _pack_kernel(masks, bits, boxes, areas):
    n, h, w = masks.shape
    ww = bits.shape[2]
    one = np.uint64(1)
    for k in prange(n):
        for y in range(h):
            row = masks[k, y]
            for q in range(ww):
                x0 = 64 * q
                m = min(64, w - x0)
                word = np.uint64(0)
                for b in range(m):
                    if row[x0 + b] != 0:
                        word |= one << np.uint64(b)
                bits[k, y, q] = word
        _stats_one(bits[k], boxes, areas, k)


@njit(parallel=True, **_FLAGS)
def _unpack_kernel(bits, out):
    n, h, w = out.shape
    ww = bits.shape[2]
    one = np.uint64(1)
    for k in prange(n):
        for y in range(h):
            for q in range(ww):
                word = bits[k, y, q]
                x0 = 64 * q
                for b in range(min(64, w - x0)):
                    out[k, y, x0 + b] = np.uint8((word >> np.uint64(b)) & one)


@njit(parallel=True, **_FLAGS)
def _stats_kernel(bits, boxes, areas):
    for k in prange(bits.shape[0]):
        _stats_one(bits[k], boxes, areas, k)


@njit(parallel=True, **_FLAGS)
def _iou_kernel(bits1, boxes1, areas1, bits2, boxes2, areas2, out):
    n = bits1.shape[0]
    m = bits2.shape[0]
    for i in prange(n):
        for j in range(m):
            c = _inter(bits1[i], bits2[j], boxes1[i], boxes2[j])
            out[i, j] = _iou_value(c, areas1[i], areas2[j])


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


@njit(parallel=True, **_FLAGS)
def _resolve_kernel(bits, order, out):
    n, h, ww = bits.shape
    for y in prange(h):
        claimed = np.zeros(ww, np.uint64)
        for r in range(n):
            k = order[r]
            for q in range(ww):
                v = bits[k, y, q]
                out[k, y, q] = v & ~claimed[q]
                claimed[q] |= v


@njit(**_FLAGS)
def _rank_only(scores):
    return _rank(scores)


# ------------------------------------------------------------------------------ entry points

def pack_masks(masks, bits, boxes, areas):
    """uint8 masks (N,H,W), non-zero = foreground -> bits (N,H,WW), tight boxes, areas."""
    _check(masks, "masks", (-1, -1, -1), np.uint8)
    n, h, w = masks.shape
    ww = _words(w)
    _plane(h, ww, "masks")
    b = _bits(bits, "bits", (n, h, ww), writable=True)
    _check(boxes, "boxes", (n, 4), np.int32, writable=True)
    _check(areas, "areas", (n,), np.int64, writable=True)
    if n == 0:
        return None
    if h == 0 or w == 0:
        boxes[...] = 0
        areas[...] = 0
        return None
    _launch(_pack_kernel, masks, b, boxes, areas)
    return None


def unpack_masks(bits, out):
    """bits (N,H,WW) -> out uint8 (N,H,W) of 0 / 1."""
    _check(out, "out", (-1, -1, -1), np.uint8, writable=True)
    n, h, w = out.shape
    b = _bits(bits, "bits", (n, h, _words(w)))
    if out.size:
        _launch(_unpack_kernel, b, out)
    return None


def packed_stats(bits, boxes, areas):
    """Tight boxes (exclusive max) and areas of packed masks."""
    b = _bits(bits, "bits", (-1, -1, -1))
    n, h, ww = b.shape
    _plane(h, ww, "bits")
    _check(boxes, "boxes", (n, 4), np.int32, writable=True)
    _check(areas, "areas", (n,), np.int64, writable=True)
    if n == 0:
        return None
    if h == 0 or ww == 0:
        boxes[...] = 0
        areas[...] = 0
        return None
    _launch(_stats_kernel, b, boxes, areas)
    return None


def mask_iou(bits1, boxes1, areas1, bits2, boxes2, areas2, out):
    """out[i, j] = IoU of packed mask i of bits1 and j of bits2, float32 (N, M)."""
    b1 = _bits(bits1, "bits1", (-1, -1, -1))
    n, h, ww = b1.shape
    _plane(h, ww, "bits1")
    b2 = _bits(bits2, "bits2", (-1, h, ww))
    m = b2.shape[0]
    _boxes(boxes1, "boxes1", n, h, ww)
    _boxes(boxes2, "boxes2", m, h, ww)
    _check(areas1, "areas1", (n,), np.int64)
    _check(areas2, "areas2", (m,), np.int64)
    _check(out, "out", (n, m), np.float32, writable=True)
    if n and m:
        _launch(_iou_kernel, b1, boxes1, areas1, b2, boxes2, areas2, out)
    return None


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


def resolve_overlaps(bits, scores, out_bits):
    """Each set pixel kept only in the best-ranked mask that has it (out_bits)."""
    b = _bits(bits, "bits", (-1, -1, -1))
    n, h, ww = b.shape
    _check(scores, "scores", (n,), np.float64)
    o = _bits(out_bits, "out_bits", (n, h, ww), writable=True)
    if b.size == 0:
        return None
    _launch(_resolve_kernel, b, _rank_only(scores), o)
    return None
