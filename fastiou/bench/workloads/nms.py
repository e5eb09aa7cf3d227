"""Suppression workloads: ``nms-sparse``, ``nms-clustered``, ``nms-rcnn``, ``nms-lvis``,
``nms-yolo``, ``soft-nms``.

Baselines: torchvision.ops.nms / batched_nms (and OpenCV's ``cv2.dnn.NMSBoxes`` when it
imports); detectron2's and ultralytics' post-processing loops built on torchvision; mmcv's
CPU soft-NMS in plain numpy (:func:`np_soft_nms`; ensemble-boxes when it imports). The plain
numpy baselines stand in when torch is missing. tests/test_bench.py checks every baseline
that has an oracle in tests/reference.py against it.
"""

from __future__ import annotations

import functools

import numpy as np

from fastiou import _inputs
from fastiou.bench.contenders import k_label, torch_input_variant
from fastiou.bench.env import Env
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 20

# --------------------------------------------------------------------------------------------
# NMS: plain numpy baselines (used when torch is missing, and mmcv's soft-NMS, which has no
# torchvision counterpart), exact torchvision-based references, canonical result forms


def np_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """torchvision.ops.nms in numpy: greedy, decreasing score (stable), a box is dropped when
    its IoU with a kept one is ``> iou_threshold``; the IoU in the boxes' dtype, compared with
    the threshold as a double (torchvision's CPU kernel; numpy would otherwise round a Python
    float threshold to the array's float32)."""
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, i]) for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (area[i] + area[rest] - inter)
        order = rest[~(iou.astype(np.float64) > float(iou_threshold))]
    return np.asarray(keep, dtype=np.int64)


def np_batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray,
                   iou_threshold: float) -> np.ndarray:
    """A per-class loop of :func:`np_nms`; kept indices by decreasing score, ties in input order."""
    keep = [np.flatnonzero(idxs == c)[np_nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
            for c in np.unique(idxs)]
    k = np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
    return k[np.argsort(-np.asarray(scores, dtype=np.float64)[k], kind="stable")]


_SOFT_NMS_METHODS = ("linear", "gaussian", "hard")


def np_soft_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3, sigma: float = 0.5,
                min_score: float = 1e-3, method: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """mmcv.ops.soft_nms (its CPU kernel, ``softnms_cpu``) in plain numpy: ``(keep, decayed
    scores)``.

    Each step keeps the box with the highest current score (the lowest index among equal
    ones), multiplies the others' scores by ``1 - iou`` where ``iou >= iou_threshold``
    (``linear``), by ``exp(-iou^2 / sigma)`` at every IoU (``gaussian``), or by 0 where ``iou >=
    iou_threshold`` (``hard``, mmcv's "naive"), and drops those whose score is now below
    ``min_score``. Arithmetic, the threshold included, in the boxes' dtype, as mmcv's float
    kernel (whose ``iou_threshold`` is a C ``float``).
    """
    b = np.asarray(boxes)
    t = b.dtype.type
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, i]) for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    rem = np.arange(len(b))
    sc = np.array(scores, dtype=b.dtype)
    thr, one, zero = t(iou_threshold), t(1), t(0)
    keep, kept = [], []
    while rem.size:
        j = int(np.argmax(sc))
        i = rem[j]
        keep.append(i)
        kept.append(sc[j])
        rem = np.delete(rem, j)
        sc = np.delete(sc, j)
        w = np.clip(np.minimum(x2[i], x2[rem]) - np.maximum(x1[i], x1[rem]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rem]) - np.maximum(y1[i], y1[rem]), 0, None)
        inter = w * h
        iou = inter / (area[i] + area[rem] - inter)
        if method == "linear":
            sc = sc * np.where(iou >= thr, one - iou, one)
        elif method == "gaussian":
            sc = sc * np.exp(-(iou * iou) / t(sigma))
        elif method == "hard":
            sc = np.where(iou >= thr, zero, sc)
        else:
            raise ValueError(f"method: expected one of {', '.join(_SOFT_NMS_METHODS)}, got {method!r}")
        alive = ~(sc < min_score)
        rem, sc = rem[alive], sc[alive]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept, dtype=b.dtype)


def tv_batched_nms_exact(tv_ops, torch, boxes, scores, idxs, iou_threshold: float):
    """The exact class-aware NMS that fastiou.batched_nms promises, with torchvision's CPU nms:
    a per-class loop (no coordinate offsets), kept indices by decreasing score, ties in input
    order. Computed on the CPU (torchvision's CUDA kernel compares the IoU in float32)."""
    boxes, scores, idxs = boxes.cpu(), scores.cpu(), idxs.cpu()
    keep = []
    for c in torch.unique(idxs):
        m = torch.where(idxs == c)[0]
        keep.append(m[tv_ops.nms(boxes[m], scores[m], iou_threshold)])
    if not keep:
        return torch.zeros(0, dtype=torch.int64)
    k = torch.sort(torch.cat(keep)).values
    return k[torch.sort(scores[k], descending=True, stable=True).indices]


def _index_rows(per_image: list) -> np.ndarray:
    """``[(b, index array, class array), ...]`` as the sorted float64 rows (image, index, class)."""
    rows = [np.stack([np.full(len(i), b, np.float64), np.asarray(i, np.float64), np.asarray(c, np.float64)], 1)
            for b, i, c in per_image]
    rows = np.concatenate(rows) if rows else np.zeros((0, 3))
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if type(x).__module__.split(".")[0] == "torch" else (
        x.get() if type(x).__module__.split(".")[0] == "cupy" else np.asarray(x))


def multiclass_rows(r) -> np.ndarray:
    """A :class:`fastiou.MulticlassNMSResult` as sorted rows (image, box index, class)."""
    num, idx, cls = _np(r.num), _np(r.indices), _np(r.classes)
    return _index_rows([(b, idx[b, :num[b]], cls[b, :num[b]]) for b in range(len(num))])


def detections_rows(dets: list) -> np.ndarray:
    """A loop baseline's ``[(boxes, scores, classes, box indices) per image]`` as sorted rows."""
    return _index_rows([(b, _np(d[3]), _np(d[2])) for b, d in enumerate(dets)])


def soft_nms_rows(r) -> np.ndarray:
    """``(keep, scores)`` as one float64 ``(K, 2)`` array: index and decayed score."""
    keep, sc = r
    return np.stack([_np(keep).astype(np.float64), _np(sc).astype(np.float64)], axis=1)


def nms_inputs(env: Env, *arrays: np.ndarray, dtypes: tuple[str, ...] | None = None):
    """``(fastiou's arrays, torchvision's arrays)``: on CPU numpy for fastiou and torch views of
    the same memory for torchvision; on CUDA the same CUDA tensors for both."""
    dtypes = dtypes or ("float32",) * len(arrays)
    host = [np.ascontiguousarray(a, dtype=np.dtype(d)) for a, d in zip(arrays, dtypes)]
    if env.device == "cuda":
        dev = [env.torch.from_numpy(a).to("cuda") for a in host]
        return dev, dev
    if env.torch is None:
        return host, [None] * len(host)
    return host, [env.torch.from_numpy(a) for a in host]


def cv2_contenders(env: Env, boxes: np.ndarray, scores: np.ndarray, thr: float,
                    labels: np.ndarray | None = None) -> list[Contender]:
    """OpenCV's ``cv2.dnn.NMSBoxes`` (or ``NMSBoxesBatched``) on the CPU, when cv2 imports
    (never installed by the runner). Boxes are handed over as (x, y, w, h), converted
    beforehand; every box passes the score threshold."""
    if env.device != "cpu":
        return []
    cv2 = env.optional("cv2", "OpenCV (cv2.dnn.NMSBoxes)")
    if cv2 is None:
        return []
    xywh = np.ascontiguousarray(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1), np.float64)
    sc = np.ascontiguousarray(scores, np.float32)
    sthr = float(np.nextafter(np.float32(sc.min()), np.float32(-np.inf))) if len(sc) else 0.0
    canon = lambda r: np.asarray(r, np.float64).reshape(-1)  # noqa: E731
    if labels is None:
        call = lambda: cv2.dnn.NMSBoxes(xywh, sc, sthr, thr)  # noqa: E731
    else:
        if not hasattr(cv2.dnn, "NMSBoxesBatched"):
            return [Contender("cv2.dnn", "baseline", skip="cv2.dnn.NMSBoxesBatched missing (OpenCV < 4.7)")]
        cls = np.ascontiguousarray(labels, np.int32)
        call = lambda: cv2.dnn.NMSBoxesBatched(xywh, sc, cls, sthr, thr)  # noqa: E731
    return [Contender("cv2.dnn", "baseline", call, canon=canon)]


NMS_SPARSE_SIZES = (1000, 10000, 30000, 100000)
NMS_CLUSTERED_SIZES = (1000, 10000, 50000)
NMS_CLUSTERED_IOUS = (0.5, 0.7)
NMS_RCNN_BATCHES = (1, 8)
NMS_LVIS_SIZES = (10000, 30000)
NMS_YOLO_BATCHES = (1, 16)
NMS_YOLO_CONFS = (0.25, 0.001)
SOFT_NMS_SIZES = (100, 1000, 5000)
SOFT_NMS_METHODS = ("linear", "gaussian")


def nms_case(env: Env, workload_id: str, boxes: np.ndarray, scores: np.ndarray, thr: float,
             op: str, size: str, **notes) -> Case:
    """One ``nms`` case: torchvision.ops.nms (and cv2) against fastiou.nms; indices must be
    torchvision's, in its order."""
    (fb, fs), (tb, ts) = nms_inputs(env, boxes, scores)
    contenders = env.baselines("nms", (tb, ts, thr), np_nms, (fb, fs, thr))
    contenders += cv2_contenders(env, boxes, scores, thr)
    contenders += env.fastiou_variants("nms", (fb, fs, thr), expect_dtype="int64")
    contenders += torch_input_variant(env, "nms", (tb, ts, thr))
    reference = None
    notes = dict(notes)
    if env.device == "cuda":
        # torchvision's CUDA kernel compares the IoU in float32, its CPU kernel (and fastiou)
        # as a double: the reference is the CPU rule, computed by fastiou's cpp backend on the
        # host (torchvision's CPU nms would take seconds at 30k-100k sparse boxes; the CPU
        # runs check cpp against torchvision). torchvision CUDA is checked against it too.
        hb, hs = boxes.astype(np.float32), scores.astype(np.float32)

        def reference():
            with env.fastiou.use_backend("cpp"):
                return env.to_numpy(env.fastiou.nms(hb, hs, thr))

        notes["reference"] = "fastiou cpp backend on the host (torchvision's CPU rule)"
    return Case(workload_id, op, size, "float32", env.device, contenders, reference,
                rtol=0, atol=0, notes=notes, compare="equal")


def batched_case(env: Env, workload_id: str, boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray,
                 thr: float, op: str, size: str, **notes) -> Case:
    """One ``batched_nms`` case. The reference is the exact per-class loop (kept indices by
    decreasing score, ties in input order) that fastiou must match index for index;
    torchvision's own batched_nms is checked against it as a set (its coordinate-offset path,
    used for N <= 1000 on CPU and N <= 25000 on CUDA, can lose or keep boxes by rounding)."""
    (fb, fs, fi), (tb, ts, ti) = nms_inputs(env, boxes, scores, idxs, dtypes=("float32", "float32", "int64"))
    contenders = env.baselines("batched_nms", (tb, ts, ti, thr), np_batched_nms, (fb, fs, fi, thr))
    contenders += cv2_contenders(env, boxes, scores, thr, labels=idxs)
    contenders += env.fastiou_variants("batched_nms", (fb, fs, fi, thr), expect_dtype="int64")
    contenders += torch_input_variant(env, "batched_nms", (tb, ts, ti, thr))
    n = len(scores)
    path = "per-class loop" if n * 4 > (4000 if env.device == "cpu" else 100_000) else "coordinate offsets"
    notes = dict(notes, candidates=n, classes=int(len(np.unique(idxs))), torchvision_path=path)
    if env.tv_ops is not None:
        reference = lambda: env.to_numpy(tv_batched_nms_exact(env.tv_ops, env.torch, tb, ts, ti, thr))  # noqa: E731
    else:
        reference = lambda: np_batched_nms(fb, fs, fi, thr).astype(np.float64)  # noqa: E731
    return Case(workload_id, op, size, "float32", env.device, contenders, reference, rtol=0, atol=0,
                notes=notes, compare="equal", baseline_compare="set")


def nms_sparse_params(device: str, quick: bool) -> list[tuple]:
    """(n,): 100k only without --quick; 30k too (torchvision takes ~2 s a call there)."""
    return [(n,) for n in NMS_SPARSE_SIZES if not (quick and n > 10000)]


@case_workload("nms-sparse", "nms on scattered boxes, 10-160 px on 1333x800, IoU 0.5", nms_sparse_params)
def nms_sparse_case(env: Env, n: int) -> Case:
    boxes, scores = _inputs.scored_boxes(n, seed=0)
    return nms_case(env, "nms-sparse", boxes, scores, 0.5, "nms iou=0.5", k_label(n))


def nms_clustered_params(device: str, quick: bool) -> list[tuple]:
    """(n, iou): every size, both thresholds (50k is a target size)."""
    return [(n, thr) for n in NMS_CLUSTERED_SIZES for thr in NMS_CLUSTERED_IOUS]


@case_workload("nms-clustered", "nms on clusters of near-duplicates (n/100 objects), IoU 0.5 / 0.7",
              nms_clustered_params)
def nms_clustered_case(env: Env, n: int, thr: float) -> Case:
    boxes, scores = _inputs.clustered_boxes(n, seed=0)
    return nms_case(env, "nms-clustered", boxes, scores, thr, f"nms iou={thr}", k_label(n))


@functools.lru_cache(maxsize=1)
def rcnn_candidates(batch: int, proposals: int = 1000, classes: int = 80, score_thr: float = 0.05):
    """The box heads of ``batch`` images and their candidates: ``(boxes (B, P, C, 4),
    scores (B, P, C), cand_boxes (n, 4), cand_scores (n,), cand_ids (n,) = image * C + class)``."""
    heads = [_inputs.rcnn_box_head(proposals, classes, seed=i) for i in range(batch)]
    boxes = np.stack([h[0] for h in heads])
    scores = np.stack([h[1] for h in heads])
    b, p, c = np.nonzero(scores > score_thr)
    return boxes, scores, boxes[b, p, c], scores[b, p, c], b * classes + c


def tv_rcnn_postprocess(tv_ops, torch, boxes, scores, score_thr: float, iou: float, topk: int,
                        exact: bool = False) -> list:
    """detectron2's ``fast_rcnn_inference_single_image`` per image (torchvision): threshold,
    gather the (proposal, class) candidates, class-aware batched_nms, the ``topk`` best.
    ``exact``: torchvision's nms in a per-class loop (the reference), not its batched_nms.
    Per image ``(boxes, scores, classes, proposal indices)``."""
    out = []
    for bi in range(boxes.shape[0]):
        mask = scores[bi] > score_thr
        inds = mask.nonzero()
        bx, sc = boxes[bi][mask], scores[bi][mask]
        if exact:
            keep = tv_batched_nms_exact(tv_ops, torch, bx, sc, inds[:, 1], iou)
        else:
            keep = tv_ops.batched_nms(bx, sc, inds[:, 1], iou)
        keep = keep[:topk]
        out.append((bx[keep], sc[keep], inds[keep, 1], inds[keep, 0]))
    return out


def nms_rcnn_params(device: str, quick: bool) -> list[tuple]:
    """(op, batch): the candidates of the batch through batched_nms (idxs = image * 80 +
    class), and the whole post-processing through multiclass_nms."""
    return [(op, b) for b in NMS_RCNN_BATCHES for op in ("batched_nms", "multiclass_nms")]


@case_workload("nms-rcnn", "R-CNN box head: 1000 proposals x 80 classes, score > 0.05, class-aware 0.5",
              nms_rcnn_params)
def nms_rcnn_case(env: Env, op: str, bsz: int) -> Case:
    boxes, scores, cb, cs, ci = rcnn_candidates(bsz)
    if op == "batched_nms":
        # The candidates of the whole batch in one call: idxs = image * 80 + class.
        return batched_case(env, "nms-rcnn", cb, cs, ci, 0.5, "batched_nms", f"B={bsz} n={len(cs)}",
                            images=bsz)
    # The whole post-processing, threshold to top 100: detectron2's loop vs multiclass_nms.
    (fb, fs), (tb, ts) = nms_inputs(env, boxes, scores)
    contenders = env.baselines(
        lambda b, s: tv_rcnn_postprocess(env.tv_ops, env.torch, b, s, 0.05, 0.5, 100),
        (tb, ts), None, (), canon=detections_rows)
    contenders += env.fastiou_variants("multiclass_nms", (fb, fs, 0.5, 0.05, None, 100),
                                       expect_dtype="int64", typed=lambda r: r.indices,
                                       canon=multiclass_rows)
    reference = None
    if env.tv_ops is not None:
        reference = lambda: detections_rows(  # noqa: E731
            tv_rcnn_postprocess(env.tv_ops, env.torch, tb.cpu(), ts.cpu(), 0.05, 0.5, 100, exact=True))
    return Case("nms-rcnn", "multiclass_nms", f"B={bsz} 1000x80", "float32", env.device, contenders,
                reference, rtol=0, atol=0, compare="set",
                notes={"candidates": len(cs), "max_detections": 100,
                       "baseline": "detectron2 fast_rcnn_inference_single_image loop with "
                                   "torchvision.ops.batched_nms"})


def nms_lvis_params(device: str, quick: bool) -> list[tuple]:
    """(n,): 10k, and 30k without --quick."""
    return [(n,) for n in NMS_LVIS_SIZES if not (quick and n > 10000)]


@case_workload("nms-lvis", "final class-aware NMS, LVIS-like: 1203 classes, batched_nms 0.5", nms_lvis_params)
def nms_lvis_case(env: Env, n: int) -> Case:
    boxes, scores, labels = _inputs.lvis_detections(n, seed=0)
    return batched_case(env, "nms-lvis", boxes, scores, labels, 0.5, "batched_nms",
                        f"{k_label(n)} c={len(np.unique(labels))}")


def _xywh2xyxy(torch, x):
    y = torch.empty_like(x)
    xy, wh = x[..., :2], x[..., 2:] / 2
    y[..., :2] = xy - wh
    y[..., 2:] = xy + wh
    return y


def tv_yolo_postprocess(tv_ops, torch, pred, conf: float, iou: float, max_det: int,
                        exact: bool = False) -> list:
    """ultralytics' ``non_max_suppression`` (multi_label, class-aware) with torchvision, per
    image: candidates with any class score > conf, every (anchor, class) pair > conf, boxes
    cxcywh -> xyxy, torchvision batched_nms, the ``max_det`` best. ``exact``: torchvision's nms
    in a per-class loop (the reference). Per image ``(boxes, scores, classes, anchor indices)``."""
    xc = pred[:, 4:].amax(1) > conf           # (B, A)
    p = pred.transpose(-1, -2)                 # (B, A, 4 + C)
    out = []
    for xi in range(p.shape[0]):
        anchors = xc[xi].nonzero()[:, 0]
        x = p[xi][anchors]
        box = _xywh2xyxy(torch, x[:, :4])
        i, j = torch.where(x[:, 4:] > conf)
        bx, sc = box[i], x[i, 4 + j]
        if exact:
            keep = tv_batched_nms_exact(tv_ops, torch, bx, sc, j, iou)
        else:
            keep = tv_ops.batched_nms(bx, sc, j, iou)
        keep = keep[:max_det]
        out.append((bx[keep], sc[keep], j[keep], anchors[i[keep]]))
    return out


def fastiou_yolo_postprocess(fastiou, pred, conf: float, iou: float, max_det: int):
    """The same post-processing with fastiou: cxcywh -> xyxy with ``box_convert`` on the
    transposed head, then ``multiclass_nms`` on the whole batch."""
    p = pred.swapaxes(1, 2)                    # (B, A, 4 + C), a view
    boxes = fastiou.box_convert(p[..., :4], "cxcywh", "xyxy")
    return fastiou.multiclass_nms(boxes, p[..., 4:], iou, conf, None, max_det)


def nms_yolo_params(device: str, quick: bool) -> list[tuple]:
    """(conf, batch): conf 0.25, and 0.001 (the validation setting) without --quick."""
    confs = NMS_YOLO_CONFS[:1] if quick else NMS_YOLO_CONFS
    return [(conf, b) for conf in confs for b in NMS_YOLO_BATCHES]


@case_workload("nms-yolo", "YOLO post-processing (B, 84, 8400): conf 0.25 / 0.001, IoU 0.7, max_det 300",
              nms_yolo_params)
def nms_yolo_case(env: Env, conf: float, bsz: int) -> Case:
    pred = _inputs.yolo_head(bsz, seed=0, dtype=np.float32)
    (fp,), (tp,) = nms_inputs(env, pred)
    contenders = env.baselines(
        lambda x: tv_yolo_postprocess(env.tv_ops, env.torch, x, conf, 0.7, 300),
        (tp,), None, (), canon=detections_rows)
    contenders += env.fastiou_variants(
        "multiclass_nms", (fp, conf, 0.7, 300), expect_dtype="int64",
        fn=lambda x, c, i, m: fastiou_yolo_postprocess(env.fastiou, x, c, i, m),
        typed=lambda r: r.indices, canon=multiclass_rows)
    reference = None
    if env.tv_ops is not None:
        reference = lambda: detections_rows(  # noqa: E731
            tv_yolo_postprocess(env.tv_ops, env.torch, tp.cpu(), conf, 0.7, 300, exact=True))
    cand = int((pred[:, 4:] > conf).sum())
    return Case("nms-yolo", f"postproc conf={conf}", f"B={bsz}x8400", "float32", env.device,
                contenders, reference, rtol=0, atol=0, compare="set",
                notes={"candidates": cand, "iou": 0.7, "max_det": 300,
                       "baseline": "ultralytics-style non_max_suppression (multi_label) "
                                   "with torchvision.ops.batched_nms, one image at a time"})


def soft_nms_params(device: str, quick: bool) -> list[tuple]:
    """(method, n): linear at every size; gaussian without --quick."""
    methods = SOFT_NMS_METHODS[:1] if quick else SOFT_NMS_METHODS
    return [(m, n) for m in methods for n in SOFT_NMS_SIZES]


@case_workload("soft-nms", "soft_nms linear / gaussian (mmcv semantics), clustered boxes", soft_nms_params)
def soft_nms_case(env: Env, method: str, n: int) -> Case:
    eb = env.optional("ensemble_boxes", "ensemble-boxes soft_nms")
    boxes, scores = _inputs.clustered_boxes(n, seed=3)
    (fb, fs), (tb, ts) = nms_inputs(env, boxes, scores)
    args = (0.3, 0.5, 1e-3, method)
    if env.device == "cpu":
        np_call = lambda: np_soft_nms(fb, fs, *args)  # noqa: E731
    else:  # as mmcv does with a GPU tensor: to the host, then the CPU kernel
        np_call = lambda: np_soft_nms(tb.cpu().numpy(), ts.cpu().numpy(), *args)  # noqa: E731
    contenders = [Contender("numpy (mmcv)", "baseline", np_call, canon=soft_nms_rows)]
    if eb is not None:
        # ensemble-boxes wants boxes in [0, 1] and returns boxes, not indices: timed, not
        # compared.
        norm = (np.asarray(boxes) / np.array([_inputs.IMAGE_W, _inputs.IMAGE_H] * 2)).clip(0, 1)
        s, lab, m = np.asarray(scores), np.zeros(n), {"linear": 1, "gaussian": 2}[method]
        contenders.append(Contender(
            "ensemble-boxes", "baseline",
            lambda: eb.soft_nms([norm], [s], [lab], method=m, iou_thr=0.3, sigma=0.5, thresh=1e-3),
            canon=lambda r: None))
    contenders += env.fastiou_variants("soft_nms", (fb, fs, *args), expect_dtype="int64",
                                       typed=lambda r: r[0], canon=soft_nms_rows)
    return Case("soft-nms", f"soft_nms {method}", k_label(n), "float32", env.device, contenders,
                rtol=1e-5, atol=1e-6, compare="close",
                notes={"iou_threshold": 0.3, "sigma": 0.5, "min_score": 1e-3})
