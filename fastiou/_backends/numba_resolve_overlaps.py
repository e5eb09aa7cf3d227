"""Numba CPU backend: resolve_overlaps (csrc/cpu/resolve_overlaps.cpp) on packed masks: each set
pixel stays only in the best-ranked mask (nms_math.h ranking) that has it; bit-identical to
fastiou._C.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_common import _FLAGS, _bits, _check, _launch, _rank


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
