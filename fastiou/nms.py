"""Non-maximum suppression: exact torchvision semantics, on every backend.

Shared rules (csrc/include/fastiou/nms_math.h is the definition every backend uses):

* Ranking: decreasing score; equal scores keep input order (a stable sort, as torchvision's);
  a NaN score ranks below every other score, -inf included. (torchvision's CPU sort puts NaN
  first, so a box with a broken score suppresses real ones: a deliberate difference.)
* Suppression: a box is dropped when its IoU with a kept, higher-ranked box is strictly
  greater than ``iou_threshold``. The IoU is computed in the boxes' compute precision exactly
  as ``box_iou`` computes it and compared with the threshold as a double — torchvision's CPU
  rule, applied on the GPU too, so CPU and GPU keep the same boxes. A NaN IoU (two zero-area
  boxes, NaN coordinates) never suppresses. So with a threshold >= 0, boxes with NaN or
  infinite coordinates, zero width or height, or inverted extents neither suppress nor are
  suppressed; below 0, every pair with a non-NaN IoU suppresses (as in torchvision).
* Thresholds must be finite (ValueError otherwise).
* dtypes: boxes float16 / bfloat16 / float32 are computed in float32, float64 in float64,
  integer boxes in float64; scores of any float dtype are ranked exactly. Index results are
  int64, in the caller's library and on its device.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _dispatch
from ._args import FAST_FLOATS, boxes_scores, class_ids, compute_dtypes, finish, threshold
from ._arrays import Arg, as_arg, check_device, check_numeric, fmt_shape, via_numpy
from ._errors import InputError
from ._packed import PackedMasks, matrix_nms_masks

__all__ = ["nms", "batched_nms", "nms_sweep", "soft_nms", "matrix_nms", "multiclass_nms",
           "MulticlassNMSResult"]

_SOFT_METHODS = {"linear": 0, "gaussian": 1, "hard": 2}
_MATRIX_KERNELS = {"gaussian": 0, "linear": 1}


def _run_nms(boxes, scores, idxs, iou_threshold):
    thr = threshold(iou_threshold)
    if (type(boxes) is np.ndarray and type(scores) is np.ndarray and boxes.ndim == 2 and boxes.shape[1] == 4
            and boxes.dtype in FAST_FLOATS and boxes.flags.c_contiguous and scores.shape == (boxes.shape[0],)
            and scores.dtype in FAST_FLOATS
            and (idxs is None or (type(idxs) is np.ndarray and idxs.dtype == np.int64
                                  and idxs.shape == scores.shape and idxs.flags.c_contiguous))):
        # The per-call fast path: float boxes and scores, integer classes, as the backend takes them.
        keep = np.empty(boxes.shape[0], np.int64)
        if len(keep) == 0:
            return keep
        k = _dispatch.host_function("nms")(boxes, np.ascontiguousarray(scores, np.float64), idxs, thr, keep)
        return keep[:k]
    b, s, device, cdt = boxes_scores(boxes, scores)
    n = b.shape[0]
    classes = None if idxs is None else class_ids(idxs, b)
    if n == 0:
        return b.lib.empty((0,), "int64", device)
    keep = b.lib.empty((n,), "int64", device)
    k = _dispatch.call("nms", device, b.astype(cdt).contiguous(), s.astype("float64").contiguous(),
                       classes, thr, Arg("keep", b.lib, keep))
    return keep[:k]


@via_numpy
def nms(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression (torchvision.ops.nms, index for index).

    Args:
        boxes (Array[N, 4]): xyxy boxes.
        scores (Array[N]): their scores.
        iou_threshold (float): boxes whose IoU with a kept, higher-scored box is strictly
            greater than this are dropped.

    Returns:
        Array[K] int64: indices of the kept boxes, by decreasing score (ties in input order).

    Notes:
        The ranking, the threshold test and NaN handling are in this module's docstring;
        results are identical on every backend and device, ties included.
    """
    return _run_nms(boxes, scores, None, iou_threshold)


@via_numpy
def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """Class-aware NMS: boxes of different ``idxs`` never suppress each other.

    Exactly a per-class loop of ``nms`` (torchvision.ops.batched_nms without its
    coordinate-offset trick, which loses boxes to float rounding, to negative coordinates and
    to float16 range). The work scales with the sum over classes of n_c^2, not N^2.

    Args:
        boxes (Array[N, 4]): xyxy boxes.
        scores (Array[N]): their scores.
        idxs (Array[N]): class (or image) of each box; integers, or floats where each
            distinct value is its own class, each NaN included (torch.unique's rule, which
            torchvision's batched_nms follows below 4000 boxes on the CPU).
        iou_threshold (float): as in ``nms``.

    Returns:
        Array[K] int64: kept indices by decreasing score (ties in input order).
    """
    if idxs is None:
        raise TypeError("idxs: expected an array of class ids, got None")
    return _run_nms(boxes, scores, idxs, iou_threshold)


@via_numpy
def nms_sweep(boxes, scores, thresholds, idxs=None) -> list:
    """``nms`` (or ``batched_nms`` with ``idxs``) at several thresholds at once.

    One sort and one overlap pass serve every threshold: the way to tune ``iou_threshold``
    on a validation set.

    Args:
        boxes (Array[N, 4]), scores (Array[N]): as in ``nms``.
        thresholds (Sequence[float]): the IoU thresholds to try.
        idxs (Array[N], optional): class ids, as in ``batched_nms``.

    Returns:
        list[Array[K_t] int64]: for each threshold, what ``nms`` keeps at it.
    """
    try:
        ths = [threshold(t, "thresholds") for t in np.asarray(thresholds, dtype=object).ravel()]
    except TypeError:
        raise TypeError(f"thresholds: expected a sequence of numbers, got {type(thresholds).__name__}") from None
    b, s, device, cdt = boxes_scores(boxes, scores)
    n = b.shape[0]
    classes = None if idxs is None else class_ids(idxs, b)
    if not ths:
        return []
    if n == 0:
        return [b.lib.empty((0,), "int64", device) for _ in ths]
    keep = b.lib.empty((len(ths), n), "int64", device)
    counts = _dispatch.call("nms_sweep", device, b.astype(cdt).contiguous(),
                            s.astype("float64").contiguous(), classes, ths, Arg("keep", b.lib, keep))
    return [keep[t, :k] for t, k in enumerate(counts)]


@via_numpy
def soft_nms(boxes, scores, iou_threshold: float = 0.3, sigma: float = 0.5,
             min_score: float = 1e-3, method: str = "linear"):
    """Soft-NMS (Bodla et al. 2017), mmcv.ops.soft_nms semantics.

    Repeatedly keeps the box with the highest current score and decays the scores of the
    others by their IoU with it: ``linear`` multiplies by ``1 - iou`` when ``iou >=
    iou_threshold``; ``gaussian`` by ``exp(-iou^2 / sigma)`` at every IoU; ``hard`` (mmcv's
    "naive") sets them to 0 when ``iou >= iou_threshold``. After each step a box whose score is
    strictly below ``min_score`` is dropped (the first pick is kept whatever its score, as in
    mmcv; with ``hard`` and ``min_score <= 0`` zeroed boxes stay). Parameters are applied in
    the boxes' compute precision, as mmcv casts them to float.

    Args:
        boxes (Array[N, 4]): xyxy boxes.
        scores (Array[N]): their scores.
        iou_threshold (float), sigma (float), min_score (float), method (str): see above.

    Returns:
        tuple(Array[K] int64, Array[K]): kept indices and their decayed scores, by decreasing
        decayed score (``new_scores[i]`` belongs to ``keep[i]``). Scores are float32 (float64
        for float64 boxes).

    Notes:
        Equal current scores are taken lowest input index first; mmcv takes the first in its
        swap-permuted working array, so with exact ties the order can differ from mmcv's (the
        results are identical without ties). A NaN score is never removed and ranks last.
        ``gaussian`` calls ``exp``, which may differ in the last bit between CPU and GPU math
        libraries.
    """
    if method not in _SOFT_METHODS:
        raise ValueError(f"method: expected one of {', '.join(_SOFT_METHODS)}, got {method!r}")
    thr = threshold(iou_threshold)
    sig = threshold(sigma, "sigma")
    ms = threshold(min_score, "min_score")
    if method == "gaussian" and sig <= 0:
        raise ValueError(f"sigma: expected a positive number for the gaussian method, got {sig}")
    b, s, device, cdt = boxes_scores(boxes, scores)
    rdt = compute_dtypes(b.dtype)[1]
    n = b.shape[0]
    keep = b.lib.empty((n,), "int64", device)
    new_scores = b.lib.empty((n,), cdt, device)
    if n == 0:
        return keep, finish(b, new_scores, rdt)
    k = _dispatch.call("soft_nms", device, b.astype(cdt).contiguous(), s.astype(cdt).contiguous(),
                       thr, sig, ms, _SOFT_METHODS[method], Arg("keep", b.lib, keep),
                       Arg("new_scores", b.lib, new_scores))
    return keep[:k], finish(b, new_scores[:k], rdt)


@via_numpy
def matrix_nms(masks_or_boxes, scores, labels, kernel: str = "gaussian", sigma: float = 2.0):
    """Matrix NMS (SOLOv2; mmdet ``mask_matrix_nms``): every score decayed in one parallel step.

    For the box ranked j (decreasing score, stable): ``score_j * min(1, min_i decay(iou_ij,
    comp_i))`` over the boxes i of its label ranked before it, where ``comp_i`` is i's largest
    IoU with a box ranked above i; ``gaussian``: ``exp(-sigma iou^2) / exp(-sigma comp^2)``,
    ``linear``: ``(1 - iou) / (1 - comp)``.

    Args:
        masks_or_boxes (Array[N, 4], Array[N, H, W] or PackedMasks): xyxy boxes, or binary
            masks (non-zero is foreground; fastiou.masks), whose IoU is then the mask IoU of
            ``fastiou.mask_iou`` (float32, exact pixel counts, as mmdet's float matmul).
        scores (Array[N]): scores.
        labels (Array[N]): class of each box (integers).
        kernel (str): ``"gaussian"`` or ``"linear"``.
        sigma (float): the gaussian kernel's sigma.

    Returns:
        Array[N]: decayed scores in input order (float32, or float64 for float64 boxes; always
        float32 for masks, computed in float32 from the scores rounded to float32, as mmdet).

    Notes:
        The ranking is stable with NaN last (mmdet's ``torch.sort`` is not stable). A NaN IoU
        decays only boxes of the same label (mmdet's ``iou * label_matrix`` lets it poison
        other labels through ``NaN * 0``). mmdet's ``filter_thr``, ``nms_pre`` and ``max_num``
        are plain array operations on the result and are left to the caller.
    """
    if kernel not in _MATRIX_KERNELS:
        raise ValueError(f"kernel: expected one of {', '.join(_MATRIX_KERNELS)}, got {kernel!r}")
    sig = threshold(sigma, "sigma")
    if isinstance(masks_or_boxes, PackedMasks):
        return matrix_nms_masks(masks_or_boxes, scores, labels, _MATRIX_KERNELS[kernel], sig)
    m = as_arg("masks_or_boxes", masks_or_boxes)
    if len(m.shape) == 3:
        return matrix_nms_masks(m.x, scores, labels, _MATRIX_KERNELS[kernel], sig)
    b, s, device, cdt = boxes_scores(m.x, scores)
    rdt = compute_dtypes(b.dtype)[1]
    n = b.shape[0]
    lab = class_ids(labels, b, "labels")
    out = b.lib.empty((n,), cdt, device)
    if n > 0:
        _dispatch.call("matrix_nms", device, b.astype(cdt).contiguous(), s.astype(cdt).contiguous(), lab,
                       _MATRIX_KERNELS[kernel], sig, Arg("out", b.lib, out))
    return finish(b, out, rdt)


def _positive_strides(a: Arg) -> Arg:
    """``a`` if its host view has positive, item-aligned strides (what the host kernels read
    in place), else a C-contiguous copy (flipped, broadcast or misaligned views)."""
    v = a.lib.host(a.x)
    ok = v.flags.aligned and all(st > 0 and st % v.itemsize == 0
                                 for st, d in zip(v.strides, v.shape) if d > 1)
    return a if ok else Arg(a.name, a.lib, a.lib.contiguous(a.x))


class MulticlassNMSResult(NamedTuple):
    """Fixed-size, padded result of ``multiclass_nms`` (TensorRT EfficientNMS layout)."""

    num: object       #: (B,) int64: detections per image
    boxes: object     #: (B, K, 4): kept boxes, 0 past ``num``
    scores: object    #: (B, K): their scores, 0 past ``num``
    classes: object   #: (B, K) int64: their classes, -1 past ``num``
    indices: object   #: (B, K) int64: their box index n within the image, -1 past ``num``


# Outputs of multiclass_nms are padded to max_detections up to this size, or to N * C if larger.
MULTICLASS_MAX_PADDING = 1 << 20


@via_numpy
def multiclass_nms(boxes, scores, iou_threshold: float, score_threshold: float = 0.0,
                   max_per_class: int | None = None, max_detections: int = 100) -> MulticlassNMSResult:
    """Per-class NMS over a batch of images with fixed-size outputs.

    The post-processing of YOLO / SSD / RetinaNet heads in one call (TensorRT EfficientNMS,
    tf.image.combined_non_max_suppression): for each image, candidates (box n, class c) with
    ``score > score_threshold`` (compared in the scores' precision, as numpy and torch compare
    an array with a Python float); per-class NMS with ``nms``'s test (equal scores: lower n
    first); at most ``max_per_class`` per class (highest first; 0 keeps nothing); the
    ``max_detections`` best of the image by decreasing score, ties by box index n, then class.

    Args:
        boxes (Array[B, N, 4] or Array[B, N, C, 4]): xyxy boxes, shared by the classes or
            one per class.
        scores (Array[B, N, C]): class scores. On the CPU a strided view is read in place:
            ``pred[:, 4:].transpose(1, 2)`` of a YOLO head ``(B, 4 + C, N)`` costs no copy.
        iou_threshold (float): as in ``nms``.
        score_threshold (float): candidates need a score strictly above it.
        max_per_class (int, optional): cap per class and image (None: no cap).
        max_detections (int): K, the size of the outputs. At most
            ``max(N * C, MULTICLASS_MAX_PADDING)`` (2**20): an image never has more than
            ``N * C`` detections, and outputs are padded up to K only within that limit.

    Returns:
        MulticlassNMSResult: ``(num (B,), boxes (B, K, 4), scores (B, K), classes (B, K),
        indices (B, K))``; rows past ``num[b]`` are 0 (boxes, scores) and -1 (classes,
        indices). Boxes and scores are float32 (float64 for float64 boxes); scores are
        compared with ``score_threshold`` and ranked in that precision.
    """
    thr = threshold(iou_threshold)
    sthr = threshold(score_threshold, "score_threshold")
    if isinstance(max_detections, bool) or not isinstance(max_detections, (int, np.integer)) or max_detections < 0:
        raise ValueError(f"max_detections: expected a non-negative integer, got {max_detections!r}")
    if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(max_per_class, (int, np.integer))
                                      or max_per_class < 0):
        raise ValueError(f"max_per_class: expected None or a non-negative integer, got {max_per_class!r}")
    b = as_arg("boxes", boxes)
    s = as_arg("scores", scores)
    bdt = check_numeric(b)
    check_numeric(s)
    device = check_device([b, s])
    if len(s.shape) != 3:
        raise InputError(f"scores: expected shape (B, N, C), got {fmt_shape(s.shape)}")
    bsz, n, c = s.shape
    if max_detections > max(n * c, MULTICLASS_MAX_PADDING):
        raise ValueError(f"max_detections: at most max(N * C, 2**20) = {max(n * c, MULTICLASS_MAX_PADDING)} "
                         f"(an image has at most N * C = {n * c} detections; outputs are padded to "
                         f"max_detections only up to 2**20), got {max_detections}")
    if b.shape == (bsz, n, 4):
        b = b.reshape((bsz, n, 1, 4))
    elif b.shape != (bsz, n, c, 4):
        raise InputError(f"boxes: expected shape ({bsz}, {n}, 4) or ({bsz}, {n}, {c}, 4) to match "
                         f"scores {fmt_shape(s.shape)}, got {fmt_shape(b.shape)}")
    # The IoU test is nms's: in the boxes' compute precision, whatever the scores' dtype.
    cdt, rdt = compute_dtypes(bdt)
    k = int(max_detections)
    lib = b.lib
    num = lib.zeros((bsz,), "int64", device)
    out_boxes = lib.zeros((bsz, k, 4), cdt, device)
    out_scores = lib.zeros((bsz, k), cdt, device)
    out_classes = lib.full((bsz, k), -1, "int64", device)
    out_indices = lib.full((bsz, k), -1, "int64", device)
    if bsz * n * c > 0 and k > 0:
        # The host kernels read scores through their strides (a transposed (B, C, N) head needs
        # no copy); the GPU kernels index them C-contiguous.
        s = s.astype(cdt)
        s = s.contiguous() if device != "cpu" else _positive_strides(s)
        _dispatch.call("multiclass_nms", device, b.astype(cdt).contiguous(), s,
                       thr, sthr, -1 if max_per_class is None else int(max_per_class),
                       Arg("num", lib, num), Arg("out_boxes", lib, out_boxes),
                       Arg("out_scores", lib, out_scores), Arg("out_classes", lib, out_classes),
                       Arg("out_indices", lib, out_indices))
    return MulticlassNMSResult(num, finish(b, out_boxes, rdt), finish(b, out_scores, rdt), out_classes,
                               out_indices)
