"""Numba CPU backend: anchor grids, mirroring ``csrc/include/fastiou/anchor_math.h``.

Output row ``(y * W + x) * A + a`` of a level is ``T(offset * s + x * s) + cell[a]`` (the
centre computed in float64, rounded once to T, then one addition in T), as the C++ loop does.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import _FLAGS  # one cache rule: the user cache dir, not site-packages


@njit(**_FLAGS)
def _grid_kernel(T, cells, levels, strides, offset, out):
    for lv in range(levels.shape[0]):
        h, w, a, c0, o0 = levels[lv, 0], levels[lv, 1], levels[lv, 2], levels[lv, 3], levels[lv, 4]
        sh, sw = strides[lv, 0], strides[lv, 1]
        r = o0
        for y in range(h):
            cy = T(offset * sh + np.float64(y) * sh)
            for x in range(w):
                cx = T(offset * sw + np.float64(x) * sw)
                for k in range(a):
                    out[r, 0] = cx + cells[c0 + k, 0]
                    out[r, 1] = cy + cells[c0 + k, 1]
                    out[r, 2] = cx + cells[c0 + k, 2]
                    out[r, 3] = cy + cells[c0 + k, 3]
                    r += 1


def anchor_grid(cells: np.ndarray, levels: np.ndarray, strides: np.ndarray, offset: float,
                out: np.ndarray) -> None:
    """Every level's anchors into ``out`` (see fastiou/_backends/interface.py)."""
    total = int(sum(int(h) * int(w) * int(a) for h, w, a in levels[:, :3])) if levels.size else 0
    if out.shape != (total, 4) or cells.dtype != out.dtype:
        raise ValueError(f"out: expected {cells.dtype} of shape ({total}, 4), got {out.dtype} {out.shape}")
    for lv in range(levels.shape[0]):
        if levels[lv, 3] + levels[lv, 2] > cells.shape[0] or levels[lv].min() < 0:
            raise ValueError(f"levels: row {lv} does not fit cells or the output")
    if total == 0:
        return
    T = np.float32 if out.dtype == np.float32 else np.float64
    _grid_kernel(T, cells, levels, strides, np.float64(offset), out)
