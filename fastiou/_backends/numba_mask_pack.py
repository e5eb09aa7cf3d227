"""Numba CPU backend: pack_masks, unpack_masks and packed_stats (csrc/cpu/mask_pack.cpp), with
the same results as fastiou._C.

The layout and the IoU rule are those of ``csrc/include/fastiou/mask_math.h`` (numba_common
describes them); everything is integer arithmetic, so results are bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_common import _FLAGS, _bits, _check, _launch, _plane, _popcount


def _words(w: int) -> int:
    return (int(w) + 63) >> 6


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
