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


def instance_masks(n: int, h: int, w: int, seed: int = 0, *, per_object: int = 5,
                   jitter: float = 0.1, across: tuple[float, float] = (1 / 40, 1 / 4)) -> np.ndarray:
    """``(n, h, w)`` uint8 masks as an instance-segmentation head predicts them: ``n /
    per_object`` objects (ellipses ``across[0]`` to ``across[1]`` of the image across; COCO's
    large objects: ``(1 / 30, 2 / 5)``), each predicted ``per_object`` times with its centre
    and radii moved by up to ``jitter`` of its size ("mask-iou", "mask-nms"). Only each mask's
    box is filled in, so it is fast at any size.
    """
    rng = np.random.default_rng(seed)
    objects = max(1, n // per_object)
    lo, hi = across
    ry0 = rng.uniform(h * lo / 2, h * hi / 2, objects)
    rx0 = rng.uniform(w * lo / 2, w * hi / 2, objects)
    cy0, cx0 = rng.uniform(0, h, objects), rng.uniform(0, w, objects)
    out = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):
        o = i % objects
        ry = max(0.5, ry0[o] * (1 + rng.uniform(-jitter, jitter)))
        rx = max(0.5, rx0[o] * (1 + rng.uniform(-jitter, jitter)))
        cy = cy0[o] + rng.uniform(-jitter, jitter) * 2 * ry0[o]
        cx = cx0[o] + rng.uniform(-jitter, jitter) * 2 * rx0[o]
        y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
        x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        out[i, y0:y1, x0:x1] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
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


def scored_boxes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (n, 4), scores (n,))``: ``random_boxes(n, seed)`` with uniform scores in [0, 1)
    ("nms-sparse")."""
    return random_boxes(n, seed), np.random.default_rng(seed + 1000).random(n)


def rcnn_box_head(proposals: int = 1000, classes: int = 80, seed: int = 0, *,
                  objects: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (proposals, classes, 4), scores (proposals, classes))``: a Faster / Mask R-CNN
    box head on one image after box decoding and the softmax, background column dropped
    ("nms-rcnn"), as detectron2's ``fast_rcnn_inference_single_image`` receives it.

    Three quarters of the proposals sit on one of ``objects`` objects (default 5-25), jittered
    by up to 30% of its size; their object's class, and one or two look-alike classes, get
    most of the probability, the better the proposal fits the more. The rest are background
    proposals whose mass goes mostly to the background column. Every class has its own
    regressed box: the proposal moved by a few percent (by more for unlikely classes). With
    ``score > 0.05`` a few thousand (proposal, class) candidates pass.
    """
    rng = np.random.default_rng(seed)
    objects = objects if objects is not None else int(rng.integers(5, 26))
    obj = random_boxes(objects, seed + 1, min_size=24, max_size=400)
    obj_cls = rng.integers(0, classes, objects)
    alike = rng.integers(0, classes, (objects, 2))
    on_obj = rng.random(proposals) < 0.75
    which = rng.integers(0, objects, proposals)
    size = np.concatenate([obj[which, 2:] - obj[which, :2]] * 2, axis=1)
    fit = rng.uniform(0, 0.3, proposals)
    prop = obj[which] + rng.uniform(-1, 1, (proposals, 4)) * size * fit[:, None]
    bg = random_boxes(proposals, seed + 2, min_size=16, max_size=300)
    prop = np.where(on_obj[:, None], prop, bg)
    prop[:, 2:] = np.maximum(prop[:, 2:], prop[:, :2] + 2.0)

    logits = rng.normal(-2.0, 1.0, (proposals, classes + 1))   # last column: background
    rows = np.flatnonzero(on_obj)
    quality = 1.0 - fit[rows] / 0.3                              # 1: a tight proposal
    logits[rows, obj_cls[which[rows]]] += 4.0 + 4.0 * quality
    for k in range(2):
        logits[rows, alike[which[rows], k]] += rng.uniform(0.0, 4.0, rows.size)
    background = np.full(proposals, 5.0)
    background[rows] = 3.0 - 3.0 * quality
    logits[:, classes] += background
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = (e / e.sum(axis=1, keepdims=True))[:, :classes]

    wh = np.concatenate([prop[:, 2:] - prop[:, :2]] * 2, axis=1)
    spread = np.where(scores > 0.05, 0.03, 0.15)[:, :, None]
    boxes = prop[:, None, :] + rng.normal(0, 1, (proposals, classes, 4)) * wh[:, None, :] * spread
    boxes[..., 2:] = np.maximum(boxes[..., 2:], boxes[..., :2] + 1.0)
    return boxes, scores


def lvis_detections(n: int, classes: int = 1203, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes (n, 4), scores (n,), labels (n,) int64)``: an LVIS-style detector's output
    before its final class-aware NMS ("nms-lvis").

    About n/40 objects; each has 1-6 candidate labels drawn from a long-tailed (Zipf-like)
    distribution over ``classes`` (LVIS has many look-alike classes, so one object is often
    detected as several); each detection is a jittered copy of its object's box under one
    of those labels. Several hundred distinct labels appear at 10k boxes.
    """
    rng = np.random.default_rng(seed)
    objects = max(1, n // 40)
    obj = random_boxes(objects, seed + 1, min_size=12, max_size=400)
    p = 1.0 / np.arange(1, classes + 1) ** 0.8
    p /= p.sum()
    hyp = rng.choice(classes, size=(objects, 6), p=p)
    nhyp = rng.integers(1, 7, objects)
    which = rng.integers(0, objects, n)
    label = hyp[which, (rng.random(n) * nhyp[which]).astype(np.int64)]
    b = obj[which]
    size = np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
    boxes = b + rng.uniform(-0.15, 0.15, (n, 4)) * size
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
    scores = rng.beta(1.0, 4.0, n)
    return boxes, scores, label.astype(np.int64)


#: YOLOv8-style anchor grid at 640x640: strides 8, 16, 32 -> 80^2 + 40^2 + 20^2 = 8400 anchors.
YOLO_SIZE, YOLO_STRIDES = 640, (8, 16, 32)


def yolo_anchor_points(size: int = YOLO_SIZE, strides: tuple[int, ...] = YOLO_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """``(centres (A, 2), stride (A,))`` of the anchor points, level by level, row-major."""
    pts, st = [], []
    for s in strides:
        g = size // s
        yy, xx = np.mgrid[0:g, 0:g]
        pts.append(np.stack([xx.ravel(), yy.ravel()], axis=1) * s + s / 2)
        st.append(np.full(g * g, float(s)))
    return np.concatenate(pts).astype(np.float64), np.concatenate(st)


def yolo_head(batch: int = 1, seed: int = 0, *, classes: int = 80, dtype=np.float64) -> np.ndarray:
    """``(batch, 4 + classes, 8400)``: the raw output of a YOLOv8 / YOLO11 detection head
    ("nms-yolo"): rows 0-3 ``cx, cy, w, h`` in pixels of a 640x640 input, then the class
    scores after the sigmoid, anchors along the last axis (what ultralytics'
    ``non_max_suppression`` receives).

    Each image has 3-30 objects; anchors whose centre lies in an object's central region, on
    the levels where the object spans 3-24 strides, predict its box (jittered by up to 8% of
    its size) with a score for its class that falls with the distance from the centre (peak
    0.5-0.95) and a lower one for a look-alike class; other anchors predict a small box near
    their centre with background scores ``sigmoid(N(-10, 1.2))``: a few thousand (anchor,
    class) pairs per image pass a 0.001 threshold (3.5-6k in the first 16 images), 80-1000
    pass 0.25. Image ``i`` is the same whatever ``batch`` (> i) is asked for.
    """
    rng = np.random.default_rng(seed)
    ctr, stride = yolo_anchor_points()
    a = ctr.shape[0]
    out = np.empty((batch, 4 + classes, a), dtype=dtype)
    for i in range(batch):
        # background: small boxes around each anchor point, low scores
        cxcy = ctr + rng.normal(0, 0.5, (a, 2)) * stride[:, None]
        wh = stride[:, None] * np.exp(rng.normal(1.0, 0.7, (a, 2)))
        logits = rng.standard_normal((classes, a), dtype=np.float32) * np.float32(1.2) - np.float32(10.0)
        sc = 1.0 / (1.0 + np.exp(-logits))
        for _ in range(int(rng.integers(3, 31))):
            w, h = rng.uniform(16, 400, 2)
            x1, y1 = rng.uniform(0, YOLO_SIZE - w), rng.uniform(0, YOLO_SIZE - h)
            ox, oy = x1 + w / 2, y1 + h / 2
            d = np.hypot((ctr[:, 0] - ox) / (w / 2), (ctr[:, 1] - oy) / (h / 2))
            level = max(w, h) / stride  # the levels where the object spans 3-24 strides
            pos = np.flatnonzero((d < 0.5) & (level >= 3) & (level <= 24))
            if pos.size == 0:
                continue
            jit = rng.uniform(-0.08, 0.08, (pos.size, 4)) * np.array([w, h, w, h])
            cxcy[pos] = np.array([ox, oy]) + jit[:, :2]
            wh[pos] = np.array([w, h]) + jit[:, 2:]
            peak = rng.uniform(0.5, 0.95)
            c, alike = rng.integers(0, classes, 2)
            s = peak * np.exp(-6.0 * d[pos] ** 2)
            sc[c, pos] = np.maximum(sc[c, pos], s)
            sc[alike, pos] = np.maximum(sc[alike, pos], 0.3 * s)
        out[i, 0:2] = cxcy.T
        out[i, 2:4] = np.maximum(wh, 1.0).T
        out[i, 4:] = sc
    return out
