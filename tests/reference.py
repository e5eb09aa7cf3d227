"""The float64 numpy oracle for the box IoU family.

Written to be obviously right, not fast: every quantity is spelled out with the formula
torchvision uses (no +1, no eps on the IoU denominator, areas not clamped), and every
function has a pure-Python per-pair twin (``*_pair``) that the tests use to check the
broadcast versions on small inputs.

Conventions (shared by every function here):
- inputs are anything ``np.asarray`` accepts; everything is computed in float64;
- boxes are ``(..., N, 4)``; pairwise results are ``(..., N, M)`` with the leading batch
  dimensions broadcast as numpy broadcasts them;
- NaN propagates: ``max``/``min`` of a NaN coordinate is NaN (as ``torch.max``), and a
  division ``0/0`` is NaN, ``x/0`` is ``inf`` (IEEE), never an exception.
"""

from __future__ import annotations

import functools
import math

import numpy as np

FMTS = ("xyxy", "xywh", "cxcywh")
MODES = ("iou", "giou", "diou", "ciou", "ioa")


def _quiet(fn):
    """IEEE results (inf - inf = NaN, x / 0 = inf) without numpy's warnings."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return wrapper


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _check_fmt(fmt: str) -> None:
    if fmt not in FMTS:
        raise ValueError(f"unknown box format {fmt!r}")


# --------------------------------------------------------------------------- formats
@_quiet
def to_xyxy(boxes, fmt: str) -> np.ndarray:
    """``(..., 4)`` boxes in ``fmt`` -> ``(..., 4)`` xyxy."""
    _check_fmt(fmt)
    b = _f64(boxes)
    if fmt == "xyxy":
        return b.copy()
    if fmt == "xywh":
        x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        return np.stack([x, y, x + w, y + h], axis=-1)
    cx, cy, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


@_quiet
def from_xyxy(boxes, fmt: str) -> np.ndarray:
    """``(..., 4)`` xyxy boxes -> ``(..., 4)`` in ``fmt``."""
    _check_fmt(fmt)
    b = _f64(boxes)
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if fmt == "xyxy":
        return b.copy()
    if fmt == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def box_convert(boxes, in_fmt: str, out_fmt: str) -> np.ndarray:
    return from_xyxy(to_xyxy(boxes, in_fmt), out_fmt)


# --------------------------------------------------------------------------- areas
@_quiet
def area(boxes, fmt: str = "xyxy") -> np.ndarray:
    """``(..., N)``: width * height, not clamped (an inverted box has a positive area)."""
    _check_fmt(fmt)
    b = _f64(boxes)
    if fmt == "xyxy":
        return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return b[..., 2] * b[..., 3]


def _pairs(boxes1, boxes2):
    """xyxy ``(..., N, 1, 4)`` and ``(..., 1, M, 4)`` views, ready to broadcast."""
    return _f64(boxes1)[..., :, None, :], _f64(boxes2)[..., None, :, :]


@_quiet
def inter(boxes1, boxes2) -> np.ndarray:
    """``(..., N, M)`` intersection areas of xyxy boxes; width and height clamped at 0."""
    a, b = _pairs(boxes1, boxes2)
    w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0)
    h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0)
    return w * h


@_quiet
def enclosing_wh(boxes1, boxes2):
    """``(..., N, M)`` width and height of the smallest box enclosing both, clamped at 0."""
    a, b = _pairs(boxes1, boxes2)
    w = np.maximum(np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0]), 0.0)
    h = np.maximum(np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1]), 0.0)
    return w, h


# --------------------------------------------------------------------------- pairwise
@_quiet
def iou(boxes1, boxes2, fmt: str = "xyxy") -> np.ndarray:
    """``inter / (area1 + area2 - inter)``; 0/0 is NaN."""
    x1, x2 = to_xyxy(boxes1, fmt), to_xyxy(boxes2, fmt)
    i = inter(x1, x2)
    union = area(boxes1, fmt)[..., :, None] + area(boxes2, fmt)[..., None, :] - i
    with np.errstate(divide="ignore", invalid="ignore"):
        return i / union


@_quiet
def giou(boxes1, boxes2) -> np.ndarray:
    """``iou - (C - union) / C`` with C the enclosing box's area."""
    i = inter(boxes1, boxes2)
    union = area(boxes1)[..., :, None] + area(boxes2)[..., None, :] - i
    cw, ch = enclosing_wh(boxes1, boxes2)
    c = cw * ch
    with np.errstate(divide="ignore", invalid="ignore"):
        return i / union - (c - union) / c


@_quiet
def _centers(boxes):
    b = _f64(boxes)
    return (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2


@_quiet
def diou(boxes1, boxes2, eps: float = 1e-7) -> np.ndarray:
    """``iou - rho^2 / (c^2 + eps)``: rho between centers, c the enclosing box's diagonal."""
    cx1, cy1 = _centers(boxes1)
    cx2, cy2 = _centers(boxes2)
    rho2 = (cx1[..., :, None] - cx2[..., None, :]) ** 2 + (cy1[..., :, None] - cy2[..., None, :]) ** 2
    cw, ch = enclosing_wh(boxes1, boxes2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return iou(boxes1, boxes2) - rho2 / (cw ** 2 + ch ** 2 + eps)


@_quiet
def ciou(boxes1, boxes2, eps: float = 1e-7) -> np.ndarray:
    """``diou - alpha * v``, ``v = 4/pi^2 (atan(w1/h1) - atan(w2/h2))^2``, ``alpha = v / (1 - iou + v + eps)``."""
    b1, b2 = _f64(boxes1), _f64(boxes2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.arctan((b1[..., 2] - b1[..., 0]) / (b1[..., 3] - b1[..., 1]))
        r2 = np.arctan((b2[..., 2] - b2[..., 0]) / (b2[..., 3] - b2[..., 1]))
        v = (4 / math.pi ** 2) * (r1[..., :, None] - r2[..., None, :]) ** 2
        alpha = v / (1 - iou(b1, b2) + v + eps)
        return diou(b1, b2, eps) - alpha * v


@_quiet
def ioa(boxes1, boxes2) -> np.ndarray:
    """Intersection over the area of **boxes1** (mmcv ``iof``, pycocotools' crowd rule)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter(boxes1, boxes2) / area(boxes1)[..., :, None]


PAIRWISE = {"iou": iou, "giou": giou, "diou": diou, "ciou": ciou, "ioa": ioa}


def aligned(boxes1, boxes2, mode: str = "iou") -> np.ndarray:
    """``(N,)``: row i is the pairwise function of ``boxes1[i]`` and ``boxes2[i]``."""
    b1, b2 = _f64(boxes1), _f64(boxes2)
    assert b1.shape == b2.shape and b1.ndim == 2
    fn = PAIRWISE[mode]
    return np.array([fn(b1[i:i + 1], b2[i:i + 1])[0, 0] for i in range(len(b1))], dtype=np.float64)


# --------------------------------------------------------------------------- masks
def masks_to_boxes(masks) -> np.ndarray:
    """``(N, 4)`` xyxy with inclusive max (last foreground column / row), zeros for an empty mask.

    Non-zero is foreground. ``masks.size == 0`` gives ``(0, 4)``, as torchvision.
    """
    m = np.asarray(masks)
    if m.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    out = np.zeros((m.shape[0], 4), dtype=np.float64)
    for n in range(m.shape[0]):
        ys, xs = np.nonzero(m[n])
        if len(xs):
            out[n] = [xs.min(), ys.min(), xs.max(), ys.max()]
    return out


# --------------------------------------------------------------------------- per-pair twins
def _div(a: float, b: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def _max(a: float, b: float) -> float:
    return math.nan if (math.isnan(a) or math.isnan(b)) else (a if a >= b else b)


def _min(a: float, b: float) -> float:
    return math.nan if (math.isnan(a) or math.isnan(b)) else (a if a <= b else b)


def area_pair(b) -> float:
    x1, y1, x2, y2 = map(float, b)
    return (x2 - x1) * (y2 - y1)


def inter_pair(a, b) -> float:
    w = _max(_min(float(a[2]), float(b[2])) - _max(float(a[0]), float(b[0])), 0.0)
    h = _max(_min(float(a[3]), float(b[3])) - _max(float(a[1]), float(b[1])), 0.0)
    return w * h


def iou_pair(a, b) -> float:
    i = inter_pair(a, b)
    return _div(i, area_pair(a) + area_pair(b) - i)


def giou_pair(a, b) -> float:
    i = inter_pair(a, b)
    u = area_pair(a) + area_pair(b) - i
    cw = _max(_max(float(a[2]), float(b[2])) - _min(float(a[0]), float(b[0])), 0.0)
    ch = _max(_max(float(a[3]), float(b[3])) - _min(float(a[1]), float(b[1])), 0.0)
    c = cw * ch
    return _div(i, u) - _div(c - u, c)


def diou_pair(a, b, eps: float = 1e-7) -> float:
    acx, acy = (float(a[0]) + float(a[2])) / 2, (float(a[1]) + float(a[3])) / 2
    bcx, bcy = (float(b[0]) + float(b[2])) / 2, (float(b[1]) + float(b[3])) / 2
    cw = _max(_max(float(a[2]), float(b[2])) - _min(float(a[0]), float(b[0])), 0.0)
    ch = _max(_max(float(a[3]), float(b[3])) - _min(float(a[1]), float(b[1])), 0.0)
    return iou_pair(a, b) - _div((acx - bcx) ** 2 + (acy - bcy) ** 2, cw * cw + ch * ch + eps)


def ciou_pair(a, b, eps: float = 1e-7) -> float:
    ra = math.atan(_div(float(a[2]) - float(a[0]), float(a[3]) - float(a[1])))
    rb = math.atan(_div(float(b[2]) - float(b[0]), float(b[3]) - float(b[1])))
    v = 4 / math.pi ** 2 * (ra - rb) ** 2
    alpha = _div(v, 1 - iou_pair(a, b) + v + eps)
    return diou_pair(a, b, eps) - alpha * v


def ioa_pair(a, b) -> float:
    return _div(inter_pair(a, b), area_pair(a))


PAIR = {"iou": iou_pair, "giou": giou_pair, "diou": diou_pair, "ciou": ciou_pair, "ioa": ioa_pair}


def pairwise_by_loops(mode: str, boxes1, boxes2) -> np.ndarray:
    """``(N, M)`` from the per-pair twin, two plain loops."""
    b1, b2 = _f64(boxes1), _f64(boxes2)
    out = np.empty((len(b1), len(b2)), dtype=np.float64)
    for i in range(len(b1)):
        for j in range(len(b2)):
            out[i, j] = PAIR[mode](b1[i], b2[j])
    return out


# --------------------------------------------------------------------------- suppression
# The NMS family, as plain loops over the ranking. Every suppression test uses ``nms_iou``:
# the IoU computed in the boxes' compute precision (float32 for fp16/bf16/fp32 boxes, float64
# for float64 and integer boxes) with the operations of torchvision's nms kernel, then read
# back as a Python float, so that ``iou > threshold`` compares a float32 IoU with a double
# threshold exactly as torchvision's CPU kernel does.

def nms_iou(dtype, kept, box) -> np.ndarray:
    """``(K,)`` float64: the IoU of each row of ``kept`` ``(K, 4)`` with ``box`` ``(4,)``,
    computed in ``dtype`` as torchvision's nms kernel computes it: ``w = max(0, min(x2) -
    max(x1))`` (likewise h), ``inter = w * h``, areas ``(x2 - x1) * (y2 - y1)`` not clamped,
    ``inter / (area_kept + area_box - inter)``, no eps (0/0 is NaN)."""
    a = np.asarray(kept, dtype=np.float64).reshape(-1, 4).astype(dtype)
    b = np.asarray(box, dtype=np.float64).reshape(4).astype(dtype)
    zero = np.zeros((), dtype=dtype)
    with np.errstate(all="ignore"):
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[2] - b[0]) * (b[3] - b[1])
        dw = np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0])
        dh = np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1])
        w = np.where(zero < dw, dw, zero)      # std::max(0, d): 0 for a NaN d
        h = np.where(zero < dh, dh, zero)
        inter = w * h
        iou_ = inter / (area_a + area_b - inter)
    assert iou_.dtype == np.dtype(dtype)
    return iou_.astype(np.float64)


def rank(scores) -> list:
    """Indices by decreasing score; equal scores in input order; NaN after everything."""
    s = [float(v) for v in np.asarray(scores, dtype=np.float64).reshape(-1)]
    return sorted(range(len(s)), key=lambda i: (math.isnan(s[i]), 0.0 if math.isnan(s[i]) else -s[i], i))


def nms(boxes, scores, iou_threshold: float, dtype="float32", idxs=None) -> np.ndarray:
    """Greedy NMS: visit boxes in ``rank`` order; drop a box when its IoU (``nms_iou``) with a
    kept box of the same ``idxs`` (all boxes, without ``idxs``) is ``> iou_threshold``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cls = np.zeros(len(b)) if idxs is None else np.asarray(idxs).reshape(-1)
    kept: list = []
    for i in rank(scores):
        same = [k for k in kept if cls[k] == cls[i]]
        if same and (nms_iou(dtype, b[same], b[i]) > float(iou_threshold)).any():
            continue
        kept.append(i)
    return np.array(kept, dtype=np.int64)


def batched_nms_by_classes(boxes, scores, idxs, iou_threshold: float, dtype="float32") -> np.ndarray:
    """``nms`` run on each class alone, the kept indices merged by (decreasing score, index)."""
    cls = np.asarray(idxs).reshape(-1)
    kept: list = []
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        kept += [int(members[k]) for k in nms(np.asarray(boxes)[members], np.asarray(scores)[members],
                                                iou_threshold, dtype)]
    s = np.asarray(scores, dtype=np.float64)
    return np.array(sorted(kept, key=lambda i: (math.isnan(s[i]), 0.0 if math.isnan(s[i]) else -s[i], i)),
                    dtype=np.int64)


def soft_nms(boxes, scores, iou_threshold: float = 0.3, sigma: float = 0.5, min_score: float = 1e-3,
             method: str = "linear", dtype="float32"):
    """mmcv's soft-NMS (ops/csrc/pytorch/cpu/nms.cpp ``softnms_cpu``), scores in float64.

    Repeat while boxes are in play: take the one with the highest current score (equal
    scores: lowest input index; NaN last), record it with its current score, take it out of
    play, multiply every other box's score by the weight of its IoU with it (``nms_iou``):
    linear ``1 - iou`` if ``iou >= thr`` else 1; gaussian ``exp(-iou^2 / sigma)``; hard 0 if
    ``iou >= thr`` else 1 — ``thr`` in the boxes' precision, as mmcv's float parameter — then
    take out of play every box whose score is now ``< min_score``.

    Returns (keep int64, new_scores float64), in the order taken.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = [float(v) for v in np.asarray(scores, dtype=np.float64).reshape(-1)]
    thr = float(np.asarray(iou_threshold, dtype=dtype))
    alive = list(range(len(b)))
    keep, new_scores = [], []
    while alive:
        p = min(alive, key=lambda i: (math.isnan(s[i]), 0.0 if math.isnan(s[i]) else -s[i], i))
        keep.append(p)
        new_scores.append(s[p])
        alive.remove(p)
        for i in alive:
            ov = float(nms_iou(dtype, b[p], b[i])[0])
            if method == "linear":
                weight = 1.0 - ov if ov >= thr else 1.0
            elif method == "gaussian":
                weight = math.exp(-(ov * ov) / sigma)
            elif method == "hard":
                weight = 0.0 if ov >= thr else 1.0
            else:
                raise ValueError(method)
            s[i] *= weight
        alive = [i for i in alive if not s[i] < min_score]
    return np.array(keep, dtype=np.int64), np.array(new_scores, dtype=np.float64)


def matrix_nms(boxes, scores, labels, kernel: str = "gaussian", sigma: float = 2.0, dtype="float32"):
    """SOLOv2 Matrix NMS (mmdet ``mask_matrix_nms``) on box IoU, in input order (float64).

    With boxes ranked by ``rank``: ``comp[i]`` is box i's largest IoU with a box of its label
    ranked before it (0 if none); box j's score is multiplied by ``min(1, min_i f(iou_ij) /
    f(comp[i]))`` over the boxes i of its label ranked before j, where ``f(x) = exp(-sigma x^2)``
    (gaussian) or ``1 - x`` (linear).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).reshape(-1)

    def f(x):
        return math.exp(-sigma * x * x) if kernel == "gaussian" else 1.0 - x

    order = rank(s)
    pos = {i: p for p, i in enumerate(order)}
    before = {i: [k for k in order[:pos[i]] if lab[k] == lab[i]] for i in order}
    comp = {i: max([float(v) for v in nms_iou(dtype, b[before[i]], b[i])], default=0.0) for i in order}
    out = np.empty(len(s), dtype=np.float64)
    for j in order:
        decay = 1.0
        for i in before[j]:
            decay = min(decay, f(float(nms_iou(dtype, b[i], b[j])[0])) / f(comp[i]))
        out[j] = s[j] * decay
    return out


def multiclass_nms(boxes, scores, iou_threshold: float, score_threshold: float = 0.0,
                   max_per_class=None, max_detections: int = 100, dtype="float32"):
    """TensorRT EfficientNMS / tf combined_non_max_suppression, one image at a time.

    ``boxes`` ``(B, N, 4)`` (shared) or ``(B, N, C, 4)``; ``scores`` ``(B, N, C)``. For each
    image and class: candidates with ``score > score_threshold``, ``nms`` on them, the first
    ``max_per_class`` kept; then the image's detections sorted by (decreasing score, box index,
    class), the first ``max_detections`` kept. Returns ``(num, boxes, scores, classes,
    indices)`` as float64 / int64 numpy arrays, padded with 0 (boxes, scores) and -1.
    """
    bx = np.asarray(boxes, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    B, N, C = sc.shape
    K = max_detections
    num = np.zeros(B, np.int64)
    out_b = np.zeros((B, K, 4))
    out_s = np.zeros((B, K))
    out_c = np.full((B, K), -1, np.int64)
    out_i = np.full((B, K), -1, np.int64)
    for img in range(B):
        dets = []  # (score, n, c)
        for c in range(C):
            cand = [n for n in range(N) if sc[img, n, c] > score_threshold]
            cboxes = bx[img, cand] if bx.ndim == 3 else bx[img, cand, c]
            kept = [cand[k] for k in nms(cboxes.reshape(-1, 4), sc[img, cand, c], iou_threshold, dtype)]
            if max_per_class is not None:
                kept = kept[:max_per_class]
            dets += [(sc[img, n, c], n, c) for n in kept]
        dets.sort(key=lambda d: (-d[0], d[1], d[2]))
        dets = dets[:K]
        num[img] = len(dets)
        for r, (s, n, c) in enumerate(dets):
            out_b[img, r] = bx[img, n] if bx.ndim == 3 else bx[img, n, c]
            out_s[img, r] = s
            out_c[img, r] = c
            out_i[img, r] = n
    return num, out_b, out_s, out_c, out_i


# --------------------------------------------------------------------------- dense masks
def mask_iou(masks1, masks2) -> np.ndarray:
    """IoU of binary masks (non-zero is foreground) from float64 counts: ``inter / union``,
    0 where the union is empty. Returns float64 (N, M)."""
    a = (np.asarray(masks1) != 0).reshape(len(masks1), -1).astype(np.float64)
    b = (np.asarray(masks2) != 0).reshape(len(masks2), -1).astype(np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def mask_iou_pair_f32(a, b) -> float:
    """One pair's IoU as fastiou rounds it: exact counts, float64 division, then float32."""
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    inter = int(np.logical_and(a, b).sum())
    union = int(a.sum()) + int(b.sum()) - inter
    return float(np.float32(inter / union)) if union > 0 else 0.0


def mask_nms(masks, scores, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on masks: visit by ``rank``; drop a mask whose float32 IoU with a kept mask is
    ``> iou_threshold`` (as a double)."""
    kept: list = []
    for i in rank(scores):
        if any(mask_iou_pair_f32(masks[k], masks[i]) > float(iou_threshold) for k in kept):
            continue
        kept.append(i)
    return np.array(kept, dtype=np.int64)


def mask_matrix_nms(masks, scores, labels, kernel: str = "gaussian", sigma: float = 2.0) -> np.ndarray:
    """mmdet ``mask_matrix_nms`` (without its filters): the IoU matrix as mmdet's float32 matmul
    gives it (exact counts, one float32 division), the decay in float64; scores rounded to
    float32 first (mmdet's float scores). Input order."""
    s = np.asarray(scores, dtype=np.float32).astype(np.float64)
    lab = np.asarray(labels).reshape(-1)
    n = len(s)
    iou = np.array([[mask_iou_pair_f32(masks[i], masks[j]) for j in range(n)] for i in range(n)])

    def f(x):
        return math.exp(-sigma * x * x) if kernel == "gaussian" else 1.0 - x

    order = rank(s)
    pos = {i: p for p, i in enumerate(order)}
    before = {i: [k for k in order[:pos[i]] if lab[k] == lab[i]] for i in order}
    comp = {i: max([iou[k, i] for k in before[i]], default=0.0) for i in order}
    out = np.empty(n, dtype=np.float64)
    for j in order:
        decay = 1.0
        for i in before[j]:
            decay = min(decay, f(iou[i, j]) / f(comp[i]))
        out[j] = s[j] * decay
    return out


def resolve_overlaps(masks, scores) -> np.ndarray:
    """Each pixel stays (with its value) only in the best-``rank``ed mask where it is non-zero:
    pixel by pixel, the obvious way."""
    m = np.asarray(masks)
    out = np.zeros_like(m)
    order = rank(scores)
    n, h, w = m.shape
    for y in range(h):
        for x in range(w):
            for i in order:
                if m[i, y, x] != 0:
                    out[i, y, x] = m[i, y, x]
                    break
    return out
