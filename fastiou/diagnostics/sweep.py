"""``fastiou sweep``: NMS settings re-run over COCO-format predictions, and measured.

``sweep(predictions, gt=None, iou="0.3:0.9:0.05", score=None, masks=False, mode="class", ...)``
re-runs non-maximum suppression on a detector's COCO results for every IoU threshold and score
threshold given, from one sort and one overlap pass per image:

* box NMS (``masks=False``): ``fastiou.nms_sweep`` (with ``idxs`` for class-aware and group modes);
* mask NMS (``masks=True``): the mask IoU matrix of an image is computed once
  (``fastiou.rle.iou``, pycocotools' float64 values) and every threshold's kept set is derived from
  it by the greedy pass of ``greedy_sweep`` — ``nms``'s rule: by decreasing score (ties in input
  order), a detection is dropped when its IoU with a kept, higher-ranked one is strictly greater
  than the threshold.

The IoU threshold 1.0 is always part of the sweep: nothing is ever removed there (an IoU is never
above 1); with no score threshold (also always swept) that setting is the predictions as they
came, the baseline. A score threshold ``s`` keeps the
detections whose score is strictly greater than ``s``; greedy NMS decides a detection's fate from
the higher-ranked ones only, so filtering by score before or after NMS gives the same set, and one
NMS pass serves every score threshold (``resolve_overlaps`` likewise: a pixel only ever leaves a
lower-ranked mask).

Modes: ``"class"`` (detections of different categories never suppress each other), ``"agnostic"``
(they do), ``"groups"`` (agnostic within each group of categories, class-aware across groups;
``groups`` is a list of lists of category ids, or ``mode="groups:FILE"`` reads that list from a
JSON file; a category in no group is a group of its own). ``resolve_overlaps=True`` (masks only)
runs ``fastiou.resolve_overlaps`` on each image's kept masks after NMS.

For each setting: the detections kept, the overlapping pairs that remain among them (IoU above
``overlap_iou``, 0.5 by default; on the masks when every prediction has one, else on the boxes),
split into same-category and cross-category pairs, and, with ``gt``, the twelve COCO numbers from
pycocotools' ``COCOeval`` (``iouType`` ``"segm"`` with ``masks=True``, else ``"bbox"``), or from
faster-coco-eval when it is installed and ``evaluator`` allows it (the same numbers). The best
setting: with ground truth, the highest AP (ties: fewer remaining pairs, then the least
suppression); without, the one that keeps the most detections among those that leave the fewest
pairs the mode is about (same-category pairs for class-aware NMS, every pair otherwise).

Bad records never stop the sweep: each is a message naming the file, the prediction's index, its
image id and category id (an image or category the ground truth lacks, a box that is not four
numbers, a mask of the wrong size or unreadable, a score that is not a number) and the record is
left out of everything.

JSON (``SweepResult.to_dict()``, written by ``fastiou sweep --json FILE``), schema
``"fastiou.sweep/1"``::

    {
      "schema": "fastiou.sweep/1",
      "source": str, "gt": str|null,             # the files read
      "engine": str, "evaluator": str|null,      # "pycocotools" or "faster-coco-eval"
      "parameters": {"iou": [float, ...],        # every IoU threshold swept (1.0 included)
                     "score": [float|null, ...], # null: no score threshold
                     "masks": bool, "mode": str, "groups": [[id, ...], ...]|null,
                     "resolve_overlaps": bool, "overlap_iou": float,
                     "overlaps_on": "mask"|"box", "iou_type": "bbox"|"segm"|null},
      "counts": {"predictions": int,             # records read
                 "used": int,                    # records swept (the others are in "messages")
                 "images": int, "categories": int, "messages": int},
      "seconds": {"total": float, "nms": float,  # NMS and overlap counting (fastiou)
                  "eval": float},                # COCOeval (the evaluator's own time)
      "settings": [{"score": float|null, "iou": float, "kept": int,
                    "same_class_pairs": int, "cross_class_pairs": int,
                    "AP": float|null, "AP50": ..., "AR100": ..., ...   # the 12 COCOeval stats
                   }, ...],                       # by score threshold, then IoU threshold
      "best": int|null,                           # index into "settings"
      "baseline": int|null,                       # the setting without NMS nor score threshold
      "messages": [{"kind": str, "prediction": int|null, "image_id": id|null,
                    "category_id": id|null, "message": str}, ...]
    }

COCOeval reports -1 for a number it cannot compute (no ground truth in an area range); those stay
-1. A setting that keeps no detection has null statistics (COCOeval cannot load empty results).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import numbers
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import coco as _coco
from . import parallel

SCHEMA = "fastiou.sweep/1"
NO_NMS = 1.0          # nms removes nothing at this threshold: an IoU is never > 1
STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
DEFAULT_IOU = "0.3:0.9:0.05"


# ------------------------------------------------------------------------------ arguments

def parse_spec(spec, name: str = "--iou", lo: float = 0.0, hi: float = 1.0) -> list:
    """Thresholds from ``0.5``, ``"0.3,0.5,0.7"``, ``"0.3:0.9:0.05"`` (both ends included) or a
    sequence; sorted, without repeats. ValueError names ``name`` and what came."""
    if spec is None:
        return []
    msg = (f"{name}: expected a number (0.5), a list (0.3,0.5,0.7) or a range START:STOP:STEP "
           f"(0.3:0.9:0.05) of numbers in [{lo:g}, {hi:g}], got {spec!r}")
    try:
        if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
            vals = [float(spec)]
        elif isinstance(spec, str) and ":" in spec:
            parts = [float(x) for x in spec.split(":")]
            if len(parts) != 3 or not parts[2] > 0 or parts[1] < parts[0]:
                raise ValueError
            a, b, step = parts
            n = int(math.floor((b - a) / step + 1e-9))
            if n > 10000:
                raise ValueError
            vals = [round(a + k * step, 10) for k in range(n + 1)]
            if b - vals[-1] > 1e-9:
                vals.append(b)
        elif isinstance(spec, str):
            vals = [float(x) for x in spec.split(",")]
        else:
            vals = [float(x) for x in spec]
    except (ValueError, TypeError):
        raise ValueError(msg) from None
    if not vals or not all(math.isfinite(v) and lo <= v <= hi for v in vals):
        raise ValueError(msg)
    return sorted(set(vals))


def _read_groups(mode: str, groups):
    """``("class"|"agnostic"|"groups", groups or None)``; groups:FILE is read here."""
    if not isinstance(mode, str):
        raise TypeError(f"mode: expected 'class', 'agnostic' or 'groups:FILE', got {type(mode).__name__}")
    if mode in ("class", "agnostic"):
        return mode, None
    if mode.startswith("groups:") or (mode == "groups" and groups is not None):
        if mode != "groups":
            path = mode[len("groups:"):]
            try:
                with open(path, encoding="utf-8") as f:
                    groups = json.load(f)
            except OSError as e:
                raise _coco.UnusableInput(f"--mode groups:{path}: cannot be read ({e.strerror or e})") \
                    from None
            except (ValueError, UnicodeDecodeError) as e:
                raise _coco.UnusableInput(f"--mode groups:{path}: not valid JSON ({e})") from None
        ok = isinstance(groups, (list, tuple)) and all(
            isinstance(g, (list, tuple)) and all(_coco._is_id(c) for c in g) for g in groups)
        if not ok:
            raise _coco.UnusableInput(f"--mode {mode}: expected a JSON list of lists of category "
                                      f"ids, e.g. [[1, 2], [3, 4, 5]]")
        seen = {}
        for k, g in enumerate(groups):
            for c in g:
                if c in seen and seen[c] != k:
                    raise _coco.UnusableInput(f"--mode {mode}: category {c!r} is in group {seen[c]} "
                                              f"and in group {k}; a category may be in one group")
                seen[c] = k
        return "groups", [list(g) for g in groups]
    raise ValueError(f"mode: expected 'class', 'agnostic' or 'groups:FILE', got {mode!r}")


# ------------------------------------------------------------------------------ reading

class _Bad(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def _finite(v) -> bool:
    t = type(v)
    if t is float or t is int:   # what JSON gives, without the slower ABC check
        return math.isfinite(v)
    return isinstance(v, numbers.Real) and t is not bool and math.isfinite(v)


def _box(rec):
    b = rec.get("bbox")
    if b is None:
        return None
    if not (isinstance(b, (list, tuple)) and len(b) == 4 and all(_finite(x) for x in b)):
        raise _Bad("bad_record", f"'bbox' is {b!r:.60}, expected 4 numbers [x, y, w, h]")
    if b[2] < 0 or b[3] < 0:
        raise _Bad("bad_record", f"'bbox' {b!r} has a negative width or height")
    return b


def _mask(rec, hw):
    """The prediction's RLE dict (counts as in the file), checked against the image size."""
    from .. import rle
    seg = rec.get("segmentation")
    if isinstance(seg, dict):
        size = seg.get("size")
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(_coco._is_size(x) for x in size)):
            raise _Bad("bad_mask", f"the RLE 'size' is {size!r:.40}, expected [height, width]")
        if hw is not None and tuple(size) != hw:
            raise _Bad("mask_size_mismatch", f"the mask is {size[0]}x{size[1]} (height x width) "
                                             f"but the image is {hw[0]}x{hw[1]}")
        if isinstance(seg.get("counts"), (str, bytes)):
            return {"size": list(size), "counts": seg["counts"]}
        seg, hw = seg, tuple(size)
    elif not isinstance(seg, list):
        raise _Bad("bad_mask", f"'segmentation' is a {type(seg).__name__}, expected an RLE dict")
    if hw is None:
        raise _Bad("bad_mask", "polygon masks need the image size: give the ground truth (--gt)")
    try:
        return rle.from_segmentation(seg, *hw)
    except (ValueError, TypeError) as e:
        raise _Bad("bad_mask", f"unreadable segmentation ({e})") from None


@dataclass
class _Read:
    per_image: dict = field(default_factory=dict)    # image id -> [record index]
    xywh: np.ndarray = None                          # (records, 4); NaN rows: from the mask
    masks: dict = field(default_factory=dict)        # record index -> RLE dict
    messages: list = field(default_factory=list)


def _message(kind, i, rec, text) -> dict:
    iid = rec.get("image_id") if isinstance(rec, dict) else None
    cid = rec.get("category_id") if isinstance(rec, dict) else None
    return {"kind": kind, "prediction": i, "image_id": iid if _coco._is_id(iid) else None,
            "category_id": cid if _coco._is_id(cid) else None, "message": text}


def _fast_boxes(preds, images, cats, want_masks, xywh) -> np.ndarray:
    """The well-formed box-only records, checked as one array (their boxes written to ``xywh``);
    the others go through ``_read``'s record-by-record checks, which name each fault."""
    ok = np.zeros(len(preds), bool)
    if want_masks:
        return ok
    cand = []
    for i, r in enumerate(preds):
        if type(r) is dict and "segmentation" not in r:
            iid, cid, s, b = r.get("image_id"), r.get("category_id"), r.get("score"), r.get("bbox")
            if type(iid) is int and type(cid) is int and (type(s) is float or type(s) is int) \
                    and type(b) is list and len(b) == 4 and (images is None or iid in images) \
                    and (cats is None or cid in cats):
                cand.append(i)
    if not cand:
        return ok
    try:
        arr = np.array([preds[i]["bbox"] for i in cand])
        sc = np.array([preds[i]["score"] for i in cand])
    except (ValueError, TypeError, OverflowError):
        return ok
    if arr.ndim != 2 or arr.dtype.kind not in "fi" or sc.dtype.kind not in "fi":
        return ok
    arr = arr.astype(np.float64)
    good = np.isfinite(arr).all(1) & (arr[:, 2:] >= 0).all(1) & np.isfinite(sc)
    idx = np.asarray(cand)[good]
    ok[idx] = True
    xywh[idx] = arr[good]
    return ok


def _read(preds, images, cats, want_masks) -> _Read:
    """Checks every record; ``images``/``cats``: the ground truth's ({id: (h, w)}, {id: name}) or
    None. Records that cannot be swept become messages."""
    out = _Read(xywh=np.full((len(preds), 4), np.nan))
    fast = _fast_boxes(preds, images, cats, want_masks, out.xywh)
    for i, r in enumerate(preds):
        if fast[i]:
            out.per_image.setdefault(r["image_id"], []).append(i)
            continue
        try:
            if not isinstance(r, dict):
                raise _Bad("bad_record", f"expected an object, got a {type(r).__name__}")
            iid, cid, s = r.get("image_id"), r.get("category_id"), r.get("score")
            if not _coco._is_id(iid):
                raise _Bad("bad_record", f"'image_id' is {iid!r:.40}, expected an integer")
            if not _coco._is_id(cid):
                raise _Bad("bad_record", f"'category_id' is {cid!r:.40}, expected an integer")
            if not _finite(s):
                raise _Bad("bad_record", f"'score' is {s!r:.40}, expected a finite number")
            if images is not None and iid not in images:
                raise _Bad("unknown_image", f"image id {iid!r} is not in the ground truth's images")
            if cats is not None and cid not in cats:
                raise _Bad("unknown_category", f"category id {cid!r} is not in the ground truth's "
                                               f"categories")
            box = _box(r)
            has_seg = r.get("segmentation") is not None
            if want_masks and not has_seg:
                raise _Bad("no_mask", "no 'segmentation': mask NMS (--masks) needs one")
            if box is None and not has_seg:
                raise _Bad("bad_record", "neither 'bbox' nor 'segmentation'")
            if has_seg:
                out.masks[i] = _mask(r, None if images is None else images[iid])  # None: size unknown
            if box is not None:
                out.xywh[i] = box
            out.per_image.setdefault(iid, []).append(i)
        except _Bad as e:
            out.messages.append(_message(e.kind, i, r, str(e)))
    return out


def _check_masks(rd: _Read, preds) -> None:
    """Unreadable RLE strings and, without ground truth, sizes that differ within an image."""
    from .. import rle
    for iid, idx in list(rd.per_image.items()):
        with_mask = [i for i in idx if i in rd.masks]
        if not with_mask:
            continue
        size = rd.masks[with_mask[0]]["size"]
        bad = {i: "mask_size_mismatch" for i in with_mask if rd.masks[i]["size"] != size}
        try:
            rle.area([rd.masks[i] for i in with_mask if i not in bad])
        except (ValueError, TypeError):
            for i in with_mask:
                try:
                    rle.area([rd.masks[i]])
                except (ValueError, TypeError):
                    bad[i] = "bad_mask"
        for i, kind in bad.items():
            text = (f"the mask is {rd.masks[i]['size'][0]}x{rd.masks[i]['size'][1]} but the "
                    f"image's first mask is {size[0]}x{size[1]}" if kind == "mask_size_mismatch"
                    else "unreadable RLE 'counts'")
            rd.messages.append(_message(kind, i, preds[i], text))
            del rd.masks[i]
        if bad:
            rd.per_image[iid] = [i for i in idx if i not in bad]
    rd.messages.sort(key=lambda m: (m["prediction"] is None, m["prediction"] or 0))


def _items(preds, rd: _Read, keys, labels, use_masks: bool) -> list:
    """The per-image work: arrays only (what the workers receive)."""
    from .. import rle
    items = []
    for iid, idx in rd.per_image.items():
        if not idx:
            continue
        rles = [rd.masks[i] for i in idx] if use_masks else None
        xywh = rd.xywh[idx]
        missing = np.isnan(xywh[:, 0])
        if missing.any():
            xywh[missing] = rle.to_bbox([rd.masks[i] for i, m in zip(idx, missing) if m])
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        cats = [preds[i]["category_id"] for i in idx]
        items.append({"image_id": iid, "records": np.array(idx, np.int64), "boxes": boxes,
                      "scores": np.array([preds[i]["score"] for i in idx], np.float64),
                      "keys": None if keys is None else np.array([keys[c] for c in cats], np.int64),
                      "labels": np.array([labels[c] for c in cats], np.int64), "rles": rles})
    return items


# ------------------------------------------------------------------------------ per image

def greedy_sweep(iou, scores, thresholds, idxs=None) -> list:
    """Greedy NMS at every threshold over a precomputed ``(N, N)`` IoU matrix.

    ``nms``'s rule: detections visited by decreasing score (equal scores in input order, NaN
    last); one is dropped when its IoU with a kept, higher-ranked detection is strictly greater
    than the threshold (a NaN IoU never suppresses). With ``idxs``, detections of different ids
    never suppress each other. Returns, per threshold, the kept indices by decreasing score.
    """
    iou = np.asarray(iou, np.float64)
    s = np.asarray(scores, np.float64)
    ths = np.asarray(thresholds, np.float64).ravel()
    n = s.shape[0]
    if iou.shape != (n, n):
        raise ValueError(f"iou: expected a ({n}, {n}) matrix for {n} scores, got {iou.shape}")
    order = np.argsort(np.where(np.isnan(s), np.inf, -s), kind="stable")
    m = iou[np.ix_(order, order)]
    if idxs is not None:
        k = np.asarray(idxs)[order]
        m = np.where(k[:, None] == k[None, :], m, np.nan)
    kept = np.zeros((ths.size, n), bool)
    worst = np.full((ths.size, n), -np.inf)   # per threshold: max IoU with a kept, higher one
    for i in range(n):
        alive = ~(worst[:, i] > ths)
        kept[:, i] = alive
        if i + 1 < n and alive.any():
            worst[alive, i + 1:] = np.fmax(worst[alive, i + 1:], m[i, i + 1:])
    return [order[kept[t]] for t in range(ths.size)]


def _resolved(item, k):
    """The kept masks after ``resolve_overlaps``: (RLE list, their IoU matrix)."""
    from .. import rle
    from ..masks import resolve_overlaps
    if k.size == 0:
        return [], np.zeros((0, 0))
    dense = rle.decode([item["rles"][j] for j in k])
    enc = rle.encode(resolve_overlaps(dense, item["scores"][k]))
    for r in enc:   # text, as COCO results files have it
        r["counts"] = r["counts"].decode("ascii") if isinstance(r["counts"], bytes) else r["counts"]
    return enc, rle.iou(enc, enc, np.zeros(len(enc), bool))


def _counts(ov, item, keeps, p) -> np.ndarray:
    """``(S, T, 3)``: per (score, IoU threshold) the kept detections and the same- and
    cross-category pairs among them whose IoU in ``ov`` is above the overlap threshold."""
    n = item["scores"].shape[0]
    kept = np.zeros((len(keeps), n), bool)
    for t, k in enumerate(keeps):
        kept[t, k] = True
    a, b = np.nonzero(np.triu(ov > p["overlap_iou"], 1))
    same = item["labels"][a] == item["labels"][b]
    out = np.zeros((len(p["score"]), len(keeps), 3), np.int64)
    for si, s in enumerate(p["score"]):
        v = kept if s is None else kept & (item["scores"] > s)
        alive = v[:, a] & v[:, b]
        out[si, :, 0] = v.sum(1)
        out[si, :, 1] = alive[:, same].sum(1)
        out[si, :, 2] = alive[:, ~same].sum(1)
    return out


def _resolved_counts(item, keeps, p):
    """``_counts`` on the masks after ``resolve_overlaps`` (one run per distinct kept set), and
    those masks per threshold."""
    out = np.zeros((len(p["score"]), len(keeps), 3), np.int64)
    resolved, cache = [], {}
    for t, k in enumerate(keeps):
        key = k.tobytes()
        if key not in cache:
            enc, sub = _resolved(item, k)
            one = {"scores": item["scores"][k], "labels": item["labels"][k]}
            cache[key] = enc, _counts(sub, one, [np.arange(k.size)], p)[:, 0]
        enc, c = cache[key]
        resolved.append(enc)
        out[:, t] = c
    return out, resolved


def sweep_image(item: dict, p: dict) -> dict:
    """One image: every IoU threshold's kept set, and per (score, IoU) setting the detections
    kept and the overlapping pairs left (same category, cross category)."""
    from .. import rle
    from ..boxes import box_iou
    from ..nms import nms_sweep
    scores, ths = item["scores"], p["iou"]
    n = scores.shape[0]
    rles = item["rles"]
    ov = rle.iou(rles, rles, np.zeros(n, bool)) if rles is not None else None
    if p["masks"]:
        keeps = greedy_sweep(ov, scores, ths, item["keys"])
    else:
        keeps = [np.asarray(k) for k in nms_sweep(item["boxes"], scores, ths, item["keys"])]
    if ov is None:
        ov = np.asarray(box_iou(item["boxes"], item["boxes"]), np.float64)
    if p["resolve"]:
        counts, resolved = _resolved_counts(item, keeps, p)
    else:
        counts, resolved = _counts(ov, item, keeps, p), None
    return {"keep": [k.astype(np.int32) for k in keeps], "counts": counts, "resolved": resolved}


def _builtin_dtype(item: dict) -> dict:
    """The item's arrays viewed with numpy's own dtype objects. An array that crossed a pickle
    (a worker process, dask) carries an equal but distinct dtype object, which fastiou._C's
    dtype check (an identity test, csrc/bindings_common.h) refuses as of this writing."""
    return {k: v.view(np.dtype(v.dtype.name)) if isinstance(v, np.ndarray) else v
            for k, v in item.items()}


def sweep_shard(shard, params: dict) -> list:
    """The worker entry point: ``sweep_image`` over consecutive images."""
    return [sweep_image(_builtin_dtype(item), params) for item in shard]


# ------------------------------------------------------------------------------ evaluation

def _evaluator(name: str):
    """``(label, COCO class, COCOeval class)``."""
    if name not in ("auto", "pycocotools", "faster-coco-eval"):
        raise ValueError(f"evaluator: expected 'auto', 'pycocotools' or 'faster-coco-eval', got {name!r}")
    if name != "pycocotools":
        try:
            from faster_coco_eval import COCO, COCOeval_faster
            return "faster-coco-eval", COCO, COCOeval_faster
        except ImportError as e:
            if name == "faster-coco-eval":
                raise RuntimeError(f"evaluator 'faster-coco-eval' is not installed ({e})") from None
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        raise RuntimeError(f"AP needs pycocotools ({e}): pip install pycocotools") from None
    return "pycocotools", COCO, COCOeval


def _gt_coco(COCO, data: dict):
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = data
        g.createIndex()
    return g


def evaluate(gt, dets: list, iou_type: str, Eval) -> list | None:
    """The 12 COCOeval stats of ``dets`` (COCO results records) against ``gt`` (a COCO object);
    None when there is no detection. The evaluator's printing is swallowed."""
    if not dets:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        res = gt.loadRes(dets)
        e = Eval(gt, res, iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(x) for x in e.stats]


# ------------------------------------------------------------------------------ the sweep

@dataclass
class SweepResult:
    """What ``sweep`` measured (``to_dict()``: the JSON document, schema in the module docstring)."""

    source: str
    gt: str | None
    parameters: dict
    counts: dict
    settings: list
    best: int | None
    baseline: int | None
    messages: list
    engine: str = "serial"
    evaluator: str | None = None
    seconds: dict = field(default_factory=dict)

    def setting(self, iou: float, score=None) -> dict:
        """The row of one (IoU threshold, score threshold) setting."""
        for s in self.settings:
            if s["iou"] == iou and s["score"] == score:
                return s
        raise KeyError(f"no setting iou={iou}, score={score}")

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "source": self.source, "gt": self.gt, "engine": self.engine,
                "evaluator": self.evaluator, "parameters": self.parameters, "counts": self.counts,
                "seconds": self.seconds, "settings": self.settings, "best": self.best,
                "baseline": self.baseline, "messages": self.messages}


def _best(settings: list, with_ap: bool, mode: str = "class"):
    """With AP: the highest (ties: fewer pairs left, then the least suppression). Without: the
    most detections kept among the settings that leave the fewest pairs the mode is about
    (same-class pairs for class-aware NMS, every pair otherwise)."""
    if not settings:
        return None

    def key(k):
        s = settings[k]
        pairs = s["same_class_pairs"] + s["cross_class_pairs"]
        least = (s["iou"], -(s["score"] if s["score"] is not None else -math.inf))
        if with_ap:
            ap = s["AP"] if s.get("AP") is not None else -math.inf
            return (ap, -pairs) + least
        return (-(s["same_class_pairs"] if mode == "class" else pairs), s["kept"]) + least
    return max(range(len(settings)), key=key)


def _load_gt(gt, evaluator):
    """``(COCO object, name, evaluator label, COCOeval class, {image id: (h, w)}, {cat id: name})``,
    all None without ground truth."""
    if gt is None:
        return None, None, None, None, None, None
    data, name = _coco.load(gt)
    if data is gt:   # COCOeval writes into the annotations (segm: polygons become RLE)
        data = copy.deepcopy(gt)
    label, COCO, Eval = _evaluator(evaluator)
    try:
        g = _gt_coco(COCO, data)
    except Exception as e:  # pycocotools asserts and indexes: no traceback for a bad file
        raise _coco.UnusableInput(f"{name}: the evaluator cannot read it ({type(e).__name__}: {e})") \
            from None
    images = {i["id"]: (i.get("height"), i.get("width")) if _coco._is_size(i.get("height")) and
              _coco._is_size(i.get("width")) else None
              for i in g.dataset.get("images", []) if isinstance(i, dict) and "id" in i}
    cats = {c["id"]: c.get("name") for c in g.dataset.get("categories", [])
            if isinstance(c, dict) and "id" in c}
    return g, name, label, Eval, images, cats


def _keys(mode, groups, cat_ids, out):
    """Category id -> the integer NMS key of the mode (None: agnostic)."""
    if mode == "agnostic":
        return None
    if mode == "class":
        return {c: k for k, c in enumerate(cat_ids)}
    keys = {}
    for g, members in enumerate(groups):
        for c in members:
            keys[c] = g
            if c not in cat_ids:
                out.append({"kind": "unknown_group_category", "prediction": None, "image_id": None,
                            "category_id": c, "message": f"group {g} names category {c!r}, which "
                                                         f"no prediction has"})
    for c in cat_ids:
        if c not in keys:
            keys[c] = len(groups) + len(keys)
    return keys


def sweep(predictions, gt=None, iou=DEFAULT_IOU, score=None, masks: bool = False,
          mode: str = "class", groups=None, resolve_overlaps: bool = False, workers=None,
          dask=None, *, overlap_iou: float = 0.5, evaluator: str = "auto", shard_size=None,
          progress=None, eval_progress=None, source=None) -> SweepResult:
    """Re-runs NMS over COCO results at every setting and measures each (see the module docstring).

    Args:
        predictions (str, os.PathLike or list): a COCO results file or its loaded list. Read only.
        gt (str, os.PathLike, dict or None): the COCO instances ground truth, for AP/AR.
        iou: IoU thresholds (a SPEC string, a number or a sequence); 1.0 (no NMS) is always added.
        score: score thresholds; a detection stays when its score is > the threshold. The setting
            without a score threshold is always swept too (the predictions as they came).
        masks (bool): mask NMS on the predictions' RLE masks, and segm AP.
        mode (str): "class", "agnostic", "groups" (with ``groups``) or "groups:FILE".
        groups (list[list[id]] or None): the category groups of mode "groups".
        resolve_overlaps (bool): ``fastiou.resolve_overlaps`` on the kept masks (needs masks).
        workers (int or None), dask (str, Client or None): the engines of ``check``.
        overlap_iou (float): IoU above which two kept detections count as an overlapping pair.
        evaluator (str): "auto" (faster-coco-eval when installed, else pycocotools),
            "pycocotools" or "faster-coco-eval".
        progress, eval_progress (callable or None): ``progress(done, total)`` over images and over
            the settings evaluated.

    Returns:
        SweepResult. Raises UnusableInput for unreadable files, ValueError for bad arguments,
        RuntimeError when the evaluator or dask is missing; bad records are messages.
    """
    t0 = time.perf_counter()
    ious = sorted(set(parse_spec(iou, "iou") + [NO_NMS]))
    scores = [None] + parse_spec(score, "score", -math.inf, math.inf)   # None: no score threshold
    mode, groups = _read_groups(mode, groups)
    if not 0.0 <= float(overlap_iou) <= 1.0:
        raise ValueError(f"overlap_iou: expected a number in [0, 1], got {overlap_iou!r}")
    if resolve_overlaps and not masks:
        raise ValueError("resolve_overlaps needs mask NMS (masks=True, --masks)")
    preds, name = _coco.load(predictions, expect=list)
    gt_coco, gt_name, label, Eval, images, cats = _load_gt(gt, evaluator)
    rd = _read(preds, images, cats, masks)
    _check_masks(rd, preds)
    if not preds:
        rd.messages.append({"kind": "no_predictions", "prediction": None, "image_id": None,
                            "category_id": None, "message": "the file holds no prediction"})
    used = [i for idx in rd.per_image.values() for i in idx]
    use_masks = masks or (bool(used) and all(i in rd.masks for i in used))
    cat_ids = sorted({preds[i]["category_id"] for i in used}, key=lambda c: (str(type(c)), c))
    keys = _keys(mode, groups, cat_ids, rd.messages)
    labels = {c: k for k, c in enumerate(cat_ids)}
    items = _items(preds, rd, keys, labels, use_masks)
    params = {"iou": ious, "score": scores, "masks": bool(masks), "resolve": bool(resolve_overlaps),
              "overlap_iou": float(overlap_iou)}
    t1 = time.perf_counter()
    results, engine = parallel.map_shards(sweep_shard, items, params, len(used), workers=workers,
                                          dask=dask, shard_size=shard_size, progress=progress)
    per_image = [r for shard in results for r in shard]
    t_nms = time.perf_counter() - t1
    total = sum(r["counts"] for r in per_image) if per_image else \
        np.zeros((len(scores), len(ious), 3), np.int64)
    settings = []
    for si, s in enumerate(scores):
        for t, thr in enumerate(ious):
            c = total[si, t]
            settings.append({"score": s, "iou": thr, "kept": int(c[0]),
                             "same_class_pairs": int(c[1]), "cross_class_pairs": int(c[2])})
    iou_type = None
    t2 = time.perf_counter()
    if gt_coco is not None:
        iou_type = "segm" if masks else "bbox"
        n_eval = int(engine.split("(")[1].rstrip(")")) if engine.startswith("processes") else 1
        _evaluate_all(settings, items, per_image, preds, gt_coco, Eval, iou_type, scores, ious,
                      rd.messages, gt_name, eval_progress, n_eval, label)
    t_eval = time.perf_counter() - t2
    base = next((k for k, s in enumerate(settings) if s["iou"] == NO_NMS and s["score"] is None), None)
    return SweepResult(
        source=source or name, gt=gt_name,
        parameters={"iou": ious, "score": scores, "masks": bool(masks), "mode": mode,
                    "groups": groups, "resolve_overlaps": bool(resolve_overlaps),
                    "overlap_iou": float(overlap_iou), "overlaps_on": "mask" if use_masks else "box",
                    "iou_type": iou_type},
        counts={"predictions": len(preds), "used": len(used), "images": len(items),
                "categories": len(cat_ids), "messages": len(rd.messages)},
        settings=settings, best=_best(settings, gt_coco is not None, mode), baseline=base,
        messages=rd.messages, engine=engine, evaluator=label,
        seconds={"total": time.perf_counter() - t0, "nms": t_nms, "eval": t_eval})


def _dets(item_results, preds, s, t) -> list:
    """The COCO results records of one setting (copies: the evaluator writes into them)."""
    dets = []
    for item, r in item_results:
        for pos, j in enumerate(r["keep"][t]):
            if s is not None and not item["scores"][j] > s:
                continue
            d = dict(preds[int(item["records"][j])])
            if r["resolved"] is not None:
                d["segmentation"] = r["resolved"][t][pos]
            dets.append(d)
    return dets


def _jobs(items, per_image, preds, scores, ious):
    """``(setting indices, detections)`` per distinct kept set, built one at a time: settings
    that keep the same detections have the same numbers (resolved masks depend on the kept set
    only), so each is evaluated once."""
    rows: dict = {}
    first = []
    for si, s in enumerate(scores):
        for t in range(len(ious)):
            sig = (s, b"".join(r["keep"][t].tobytes() + b"|" for r in per_image))
            if sig not in rows:
                rows[sig] = []
                first.append((sig, s, t))
            rows[sig].append(si * len(ious) + t)
    pairs = list(zip(items, per_image))
    for sig, s, t in first:
        yield rows[sig], _dets(pairs, preds, s, t)


_EVAL: dict = {}


def _eval_init(gt_data: dict, evaluator: str) -> None:
    """Worker initialiser: the ground truth read once per process."""
    _, COCO, Eval = _evaluator(evaluator)
    _EVAL.update(gt=_gt_coco(COCO, gt_data), cls=Eval)


def _eval_job(dets: list, iou_type: str):
    """``(stats or None, error text or None)`` in a worker process."""
    try:
        return evaluate(_EVAL["gt"], dets, iou_type, _EVAL["cls"]), None
    except Exception as e:  # the evaluator's asserts on a malformed file
        return None, f"{type(e).__name__}: {e}"


def _evaluate_all(settings, items, per_image, preds, gt_coco, Eval, iou_type, scores, ious,
                  messages, gt_name, progress, processes: int = 1, evaluator: str = "auto"):
    """COCOeval for every setting, in this process or (``processes`` > 1) in a pool of worker
    processes that each read the ground truth once; the same numbers either way. A failure of
    the evaluator is a message, not a traceback."""
    done = 0

    def fill(rows, stats, err):
        nonlocal done
        for k in rows:
            settings[k].update({n: (None if stats is None else stats[i]) for i, n in enumerate(STATS)})
        if err:
            messages.append({"kind": "eval_failed", "prediction": None, "image_id": None,
                             "category_id": None, "message": f"COCOeval failed against {gt_name} "
                             f"at IoU {settings[rows[0]]['iou']:g}: {err}"})
        done += len(rows)
        if progress:
            progress(done, len(settings))
    jobs = _jobs(items, per_image, preds, scores, ious)
    if processes <= 1:
        for rows, dets in jobs:
            try:
                fill(rows, evaluate(gt_coco, dets, iou_type, Eval), None)
            except Exception as e:  # the evaluator's asserts on a malformed file
                fill(rows, None, f"{type(e).__name__}: {e}")
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_eval_init,
                             initargs=(gt_coco.dataset, evaluator)) as pool:
        running: dict = {}
        for rows, dets in jobs:   # at most 2 per process in flight (each holds its detections)
            running[pool.submit(_eval_job, dets, iou_type)] = rows
            while len(running) >= 2 * processes:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    fill(running.pop(f), *f.result())
        for f in list(running):
            fill(running.pop(f), *f.result())
