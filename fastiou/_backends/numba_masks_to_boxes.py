"""Numba CPU backend: masks_to_boxes (csrc/cpu/masks_to_boxes.cpp), as torchvision's."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_common import _FLAGS, _launch


@njit(parallel=True, **_FLAGS)
def _masks_to_boxes_kernel(masks, out):
    # One prange task per mask. Each row is OR-ed into a per-mask column flag array and
    # OR-reduced into its own flag, then the first/last set row and column are read off.
    # Two separate loops over the row (the second reads it from L1): fused, with a uint8
    # accumulator, Numba's code does not vectorise and small masks run ten times slower.
    N, H, W = masks.shape
    for n in prange(N):
        cols = np.zeros(W, np.uint8)
        y1 = -1
        y2 = -1
        for y in range(H):
            row = masks[n, y]
            for x in range(W):
                cols[x] = cols[x] | row[x]
            acc = 0
            for x in range(W):
                acc = acc | row[x]
            if acc != 0:
                if y1 < 0:
                    y1 = y
                y2 = y
        if y1 < 0:
            # An empty mask gives [0, 0, 0, 0] (torchvision >= 0.20, PR #9357).
            out[n, 0] = 0
            out[n, 1] = 0
            out[n, 2] = 0
            out[n, 3] = 0
            continue
        x1 = 0
        while cols[x1] == 0:
            x1 += 1
        x2 = W - 1
        while cols[x2] == 0:
            x2 -= 1
        # Inclusive max: a one-pixel mask has x1 == x2, as torchvision.
        out[n, 0] = x1
        out[n, 1] = y1
        out[n, 2] = x2
        out[n, 3] = y2


def masks_to_boxes(masks: np.ndarray, out: np.ndarray) -> None:
    """uint8 masks (N,H,W) to float32 xyxy boxes (N,4), inclusive max, zeros for an empty mask."""
    if out.size == 0:
        return
    _launch(_masks_to_boxes_kernel, masks, out)
