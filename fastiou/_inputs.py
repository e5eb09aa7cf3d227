"""Input builders shared by the tests, the benchmarks and ``fastiou bench``.

Every builder is deterministic in its ``seed`` and returns float64 numpy arrays (callers
cast), so a test and a benchmark of the same workload see the same boxes.
"""

from __future__ import annotations

import numpy as np

#: The image size the detection workloads are laid out on (COCO-like, width x height).
IMAGE_W, IMAGE_H = 1333, 800


def random_boxes(n: int, seed: int = 0, *, min_size: float = 10.0, max_size: float = 160.0,
                 width: float = IMAGE_W, height: float = IMAGE_H) -> np.ndarray:
    """``(n, 4)`` xyxy boxes scattered over a ``width`` x ``height`` image ("nms-sparse")."""
    rng = np.random.default_rng(seed)
    wh = rng.uniform(min_size, max_size, size=(n, 2))
    x1 = rng.uniform(0, width - wh[:, 0])
    y1 = rng.uniform(0, height - wh[:, 1])
    return np.stack([x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], axis=1)


def clustered_boxes(n: int, seed: int = 0, *, objects: int | None = None,
                    jitter: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (n, 4), scores (n,))``: near-duplicates around a few objects ("nms-clustered").

    Each box is an object's box with every side moved by up to ``jitter`` of its size, as a
    detector's raw output looks before NMS.
    """
    rng = np.random.default_rng(seed)
    objects = objects if objects is not None else max(1, n // 100)
    base = random_boxes(objects, seed + 1, min_size=20, max_size=300)
    which = rng.integers(0, objects, size=n)
    b = base[which]
    size = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
    boxes = b + rng.uniform(-jitter, jitter, size=(n, 4)) * size
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
    scores = rng.uniform(0.05, 1.0, size=n)
    return boxes, scores


def random_masks(n: int, h: int, w: int, seed: int = 0, *, empty_every: int = 0) -> np.ndarray:
    """``(n, h, w)`` uint8 masks, each an ellipse-ish blob at a random place and size.

    With ``empty_every=k``, every k-th mask is empty.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):
        if empty_every and i % empty_every == 0:
            continue
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1, max(2, h / 3)), rng.uniform(1, max(2, w / 3))
        out[i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return out


def degenerate_boxes() -> np.ndarray:
    """Zero-area, inverted, touching, huge and identical boxes: the edge cases of the IoU family."""
    return np.array([
        [0, 0, 10, 10],
        [0, 0, 10, 10],          # identical
        [10, 0, 20, 10],         # touches the first
        [5, 5, 5, 5],            # zero area (a point)
        [5, 5, 5, 5],            # the same point
        [0, 0, 0, 10],           # zero width
        [10, 10, 0, 0],          # inverted: positive area, IoU 0
        [2, 2, 8, 8],            # inside the first
        [-50, -50, -10, -10],    # negative coordinates
        [1e6, 1e6, 1e6 + 5, 1e6 + 5],  # large coordinates
    ], dtype=np.float64)
