"""``fastiou anchors``: how well a detector's anchors fit a COCO dataset's boxes.

``anchors_report(coco, preset="torchvision-fpn", sizes=None, ratios=None, image_size=None,
suggest=None)`` rescales every box as the model's transform does, generates the anchors of each
(padded) image size by the preset's convention (``fastiou.AnchorGenerator``), and measures with
``fastiou.anchor_fit`` the best recall the matcher can reach: per FPN level, per COCO size bucket
(the annotation's own area: small < 32², medium < 96², large), the mean number of anchors per box
above the foreground threshold, and the boxes no anchor reaches (listed with their shapes).
``suggest=K`` runs ``fastiou.suggest_anchors`` (k-means on the rescaled box shapes, 1 - IoU as the
distance) and gives the configuration for torchvision, detectron2, mmdet (and YOLOv5), with the
recall the suggested anchors reach on the same grids.

Presets (``PRESETS``): the defaults of torchvision's fasterrcnn/maskrcnn_resnet50_fpn
(``torchvision-fpn``) and retinanet_resnet50_fpn (``retinanet``), detectron2's R50-FPN configs
(``detectron2-fpn``, anchor offset 0.0 as its config default), mmdet's faster_rcnn_r50_fpn
(``mmdet-fpn``), YOLOv5's P3-P5 anchors (``yolov5``, measured with its autoanchor metric: best
width/height ratio above 1/4). Crowd regions are left out (matchers ignore them).

JSON (``AnchorsResult.to_dict()``, ``fastiou anchors --json``), schema ``"fastiou.anchors/1"``::

    {"schema": "fastiou.anchors/1", "source": str, "preset": str,
     "parameters": {"convention": str, "sizes": [[float]] | null, "ratios": [[float]] | null,
                    "anchors": [[[w, h]]] | null,   # yolov5
                    "strides": [int], "image_size": [int],
                    "thresholds": {"low": float, "high": float} | null,
                    "anchor_t": float | null, "metric": "iou" | "wh_ratio", "matcher": str},
     "counts": {"images": int, "boxes": int, "crowd_skipped": int, "image_sizes": int,
                "messages": int},
     "overall": {"boxes": int, "recall_low": float, "recall_high": float,
                 "anchors_per_box_high": float, "mean_best": float},
     "levels": [{"level": str, "stride": int, "sizes": [float], "recall_low": float,
                 "recall_high": float}],
     "buckets": {"small"|"medium"|"large": {"boxes": int, "recall_low": float|null,
                                           "recall_high": float|null}},
     "unreached": {"count": int,                   # best below the low threshold
                   "worst": [{"image_id", "annotation_id", "category", "w", "h",
                              "scaled_w", "scaled_h", "best": float}, ...]},   # up to 20
     "suggestion": null | {"k": int, "sizes": [[float]] | null, "ratios": [float] | null,
                           "shapes": [[w, h]], "shape_recall_before": {t: r},
                           "shape_recall_after": {t: r},   # suggest_anchors' shape recall
                           "overall": {...}, "buckets": {...}, "levels": [...],  # as above, for
                           "config": {framework: str}},    # the suggested anchors on the grids
     "messages": [{"kind", "image_id", "annotation_id", "message"}],
     "seconds": float}

With ``metric="wh_ratio"`` (yolov5) ``recall_low``/``recall_high`` are both YOLOv5's best possible
recall (best ratio metric > 1/anchor_t) and ``anchors_per_box_high`` its "anchors above threshold".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import coco as _coco

SCHEMA = "fastiou.anchors/1"
BUCKETS = (("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2), ("large", 96.0 ** 2, math.inf))

_R = (0.5, 1.0, 2.0)
_FPN = [[32], [64], [128], [256], [512]]
PRESETS = {
    "torchvision-fpn": {"convention": "torchvision", "resize_rule": "floor", "sizes": _FPN,
                        "ratios": [_R] * 5, "strides": [4, 8, 16, 32, 64], "resize": (800, 1333),
                        "levels": ["P2", "P3", "P4", "P5", "pool"], "low": 0.3, "high": 0.7,
                        "matcher": "RPN Matcher(0.7, 0.3, allow_low_quality_matches=True)"},
    "detectron2-fpn": {"convention": "detectron2", "resize_rule": "round", "offset": 0.0,
                       "sizes": _FPN, "ratios": [_R] * 5,
                       "strides": [4, 8, 16, 32, 64], "resize": (800, 1333),
                       "levels": ["p2", "p3", "p4", "p5", "p6"], "low": 0.3, "high": 0.7,
                       "matcher": "RPN IOU_THRESHOLDS [0.3, 0.7]"},
    "retinanet": {"convention": "torchvision", "resize_rule": "floor",
                  "sizes": [[x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))]
                            for x in (32, 64, 128, 256, 512)],
                  "ratios": [_R] * 5, "strides": [8, 16, 32, 64, 128], "resize": (800, 1333),
                  "levels": ["P3", "P4", "P5", "P6", "P7"], "low": 0.4, "high": 0.5,
                  "matcher": "Matcher(0.5, 0.4, allow_low_quality_matches=True)"},
    "mmdet-fpn": {"convention": "mmdet", "resize_rule": "round", "sizes": _FPN, "ratios": [_R] * 5,
                  "strides": [4, 8, 16, 32, 64], "resize": (800, 1333),
                  "levels": ["P2", "P3", "P4", "P5", "P6"], "low": 0.3, "high": 0.7,
                  "matcher": "MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3)"},
    "yolov5": {"convention": "yolov5", "resize_rule": "letterbox",
               "anchors": [[(10, 13), (16, 30), (33, 23)], [(30, 61), (62, 45), (59, 119)],
                           [(116, 90), (156, 198), (373, 326)]],
               "strides": [8, 16, 32], "resize": (640,), "levels": ["P3", "P4", "P5"],
               "anchor_t": 4.0, "matcher": "autoanchor metric, anchor_t=4.0"},
}


@dataclass
class AnchorsResult:
    """What ``anchors_report`` measured (``to_dict()``: the JSON document)."""

    source: str
    preset: str
    parameters: dict
    counts: dict
    overall: dict
    levels: list
    buckets: dict
    unreached: dict
    suggestion: dict | None
    messages: list = field(default_factory=list)
    seconds: float = 0.0
    box_shapes: np.ndarray = None     # (boxes, 2): w, h as the model sees them (not in the JSON)

    def anchor_shapes(self) -> np.ndarray:
        """``(K, 2)`` widths and heights of the anchors (a cell's anchors, every level)."""
        p = self.parameters
        if p["anchors"] is not None:
            return np.array([s for lv in p["anchors"] for s in lv], np.float64)
        return np.array([[s / math.sqrt(a), s * math.sqrt(a)] for lv, rs in zip(p["sizes"], p["ratios"])
                         for s in lv for a in rs], np.float64)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "source": self.source, "preset": self.preset,
                "parameters": self.parameters, "counts": self.counts, "overall": self.overall,
                "levels": self.levels, "buckets": self.buckets, "unreached": self.unreached,
                "suggestion": self.suggestion, "messages": self.messages, "seconds": self.seconds}


# ------------------------------------------------------------------------------ arguments

def parse_sizes(text: str, n_levels: int) -> list:
    """``"32,64,128"`` (one size per level) or ``"32/40/50,64/80/101"`` (several per level)."""
    try:
        levels = [[float(x) for x in part.split("/")] for part in text.split(",")]
    except (ValueError, AttributeError):
        raise ValueError(f"--sizes: expected sizes per level like 32,64,128,256,512 or "
                         f"32/40/50,64/80/101, got {text!r}") from None
    if not all(v > 0 and math.isfinite(v) for lv in levels for v in lv):
        raise ValueError(f"--sizes: sizes must be positive numbers, got {text!r}")
    if len(levels) != n_levels:
        raise ValueError(f"--sizes: the preset has {n_levels} levels, got {len(levels)} in {text!r}")
    return levels


def parse_ratios(text: str) -> list:
    """``"0.5,1,2"``: height / width ratios, the same at every level."""
    try:
        r = [float(x) for x in text.split(",")]
    except (ValueError, AttributeError):
        raise ValueError(f"--ratios: expected height/width ratios like 0.5,1,2, got {text!r}") from None
    if not r or not all(v > 0 and math.isfinite(v) for v in r):
        raise ValueError(f"--ratios: ratios must be positive numbers, got {text!r}")
    return r


def parse_image_size(text) -> tuple:
    """``"800,1333"`` (shorter side, longer side at most) or ``"640"`` (the longer side: yolov5)."""
    if isinstance(text, (tuple, list)):
        vals = list(text)
    else:
        try:
            vals = [int(x) for x in str(text).split(",")]
        except ValueError:
            raise ValueError(f"--image-size: expected SHORT,LONG (800,1333) or one size (640), "
                             f"got {text!r}") from None
    if not 1 <= len(vals) <= 2 or not all(isinstance(v, int) and v > 0 for v in vals):
        raise ValueError(f"--image-size: expected SHORT,LONG (800,1333) or one size (640), got {text!r}")
    return tuple(vals)


# ------------------------------------------------------------------------------ boxes

def _resized(h: int, w: int, p: dict) -> tuple:
    """``(new_h, new_w, box scale y, box scale x)`` as the model's transform resizes an image:
    torchvision (GeneralizedRCNNTransform: ``floor(side * s)``, boxes by new/old per side),
    detectron2 (ResizeShortestEdge) and mmdet (Resize, keep_ratio: ``int(side * s + 0.5)``),
    YOLOv5 (letterbox: the longer side to the size, boxes by ``s``); ``s = min(short / min(h, w),
    long / max(h, w))``."""
    resize, rule = p["resize"], p["resize_rule"]
    if len(resize) == 1 or rule == "letterbox":
        s = resize[-1] / max(h, w)
        return round(h * s), round(w * s), s, s
    s = min(resize[0] / min(h, w), resize[1] / max(h, w))
    nh, nw = (math.floor(h * s), math.floor(w * s)) if rule == "floor" else \
        (int(h * s + 0.5), int(w * s + 0.5))
    return nh, nw, nh / h, nw / w


def _padded(n: float, div: int) -> int:
    return int(math.ceil(n / div) * div)


def read_boxes(data: dict):
    """``(per image [(image, [(ann, xywh)])], messages, crowd count)`` from a loaded COCO dict:
    the records checked by ``check``'s reader, then every non-crowd bbox field."""
    idx = _coco.index(data)
    msgs = [{"kind": f.kind, "image_id": f.image_id,
             "annotation_id": f.annotation_ids[0] if f.annotation_ids else None, "message": f.message}
            for f in idx.findings if f.severity == "error"]
    out, crowd = [], 0
    for im, anns in zip(idx.images, idx.per_image):
        if im["height"] is None:
            continue
        boxes = []
        for a in anns:
            if a["iscrowd"]:
                crowd += 1
                continue
            b = a.get("bbox")
            ok = isinstance(b, (list, tuple)) and len(b) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)
            if not ok or b[2] <= 0 or b[3] <= 0:
                msgs.append({"kind": "bad_bbox", "image_id": im["id"], "annotation_id": a["id"],
                             "message": f"'bbox' is {b!r:.60}, expected [x, y, w, h] with w, h > 0; "
                                        f"left out"})
                continue
            boxes.append((a, [float(v) for v in b]))
        out.append((im, boxes))
    return out, msgs, crowd


# ------------------------------------------------------------------------------ anchors

def _generator(p: dict, sizes, ratios):
    from ..anchors import AnchorGenerator
    conv = p["convention"]
    if conv == "torchvision":
        return AnchorGenerator(tuple(tuple(s) for s in sizes), tuple(tuple(r) for r in ratios),
                               convention="torchvision")
    if conv == "detectron2":
        return AnchorGenerator(tuple(tuple(s) for s in sizes), tuple(tuple(r) for r in ratios),
                               convention="detectron2", offset=p.get("offset", 0.0),
                               strides=p["strides"])
    # mmdet: scales of the level's stride (its base size), one list for every level
    rel = [[s / st for s in lv] for lv, st in zip(sizes, p["strides"])]
    if all(r == rel[0] for r in rel) and all(r == ratios[0] for r in ratios):
        return AnchorGenerator.from_mmdet(strides=p["strides"], ratios=list(ratios[0]),
                                          scales=list(rel[0]))
    # sizes that are not one list of scales: the same shapes and centres (center_offset 0) as
    # detectron2's generator with offset 0 builds them
    return AnchorGenerator(tuple(tuple(s) for s in sizes), tuple(tuple(r) for r in ratios),
                           convention="detectron2", offset=0.0, strides=p["strides"])


def _level_anchors(p, gen, h: int, w: int) -> list:
    """Per level, the ``(N_l, 4)`` anchors of an image of h x w (already padded)."""
    shapes = [(int(math.ceil(h / s)), int(math.ceil(w / s))) for s in p["strides"]]
    if p["convention"] == "torchvision":
        a = gen((h, w), shapes)
        counts = [fh * fw * len(c) for (fh, fw), c in zip(shapes, gen.cell_anchors)]
        return np.split(np.asarray(a), np.cumsum(counts)[:-1])
    return [np.asarray(x) for x in gen.grid_anchors(shapes, [(s, s) for s in p["strides"]])]


def _fit_iou(p, sizes, ratios, groups, low, high, progress=None):
    """anchor_fit on every padded image size: per box its best IoU, and the per-level recall
    and anchors per box summed over the groups (weights: boxes)."""
    from ..anchors import anchor_fit
    gen = _generator(p, sizes, ratios)
    best = []
    lv = np.zeros((len(p["strides"]), 2))
    apb = 0.0
    for done, ((h, w), boxes) in enumerate(groups.items(), 1):
        fit = anchor_fit(_level_anchors(p, gen, h, w), boxes, thresholds=(low, high))
        if progress:
            progress(done, len(groups))
        best.append(fit.best_iou)
        n = len(boxes)
        apb += fit.anchors_per_gt[high] * n
        for k, r in enumerate(fit.recall_per_level):
            lv[k] += (r[low] * n, r[high] * n)
    best = np.concatenate(best) if best else np.zeros(0)
    n = max(1, best.size)
    return best, lv / n, apb / n, gen


def _fit_yolo(p, anchors, groups):
    """YOLOv5's autoanchor metric per box: best ratio metric over the anchors; per level."""
    from ..anchors import yolo_wh_metric
    wh = np.concatenate([np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1) for b in groups.values()]) \
        if groups else np.zeros((0, 2))
    flat = np.array([s for lv in anchors for s in lv], np.float64)
    m = yolo_wh_metric(wh, flat, p["anchor_t"])
    thr = 1.0 / p["anchor_t"]
    lv = []
    for shapes in anchors:
        r = yolo_wh_metric(wh, np.array(shapes, np.float64), p["anchor_t"])
        lv.append((float((r["best"] > thr).mean()) if wh.size else 0.0,) * 2)
    return np.asarray(m["best"], np.float64), np.array(lv).reshape(-1, 2), m["aat"]


def _config(p: dict, sizes, ratios) -> dict:
    """Configuration snippets for the frameworks that take these anchors."""
    r = ", ".join(f"{x:g}" for x in ratios[0])
    sz = lambda lv: ", ".join(f"{x:.0f}" for x in lv)  # noqa: E731
    tv = ", ".join(f"({sz(lv)},)" if len(lv) == 1 else f"({sz(lv)})" for lv in sizes)
    out = {"torchvision": f"AnchorGenerator(sizes=({tv}), aspect_ratios=(({r}),) * {len(sizes)})",
           "detectron2": "cfg.MODEL.ANCHOR_GENERATOR.SIZES = [" + ", ".join(f"[{sz(lv)}]" for lv in sizes)
                         + f"]\ncfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[{r}]]"}
    strides = list(p["strides"])
    rel = [[s / st for s in lv] for lv, st in zip(sizes, strides)]
    within = [[s / lv[0] for s in lv] for lv in sizes]
    if all(np.allclose(x, rel[0]) for x in rel):
        out["mmdet"] = (f"anchor_generator=dict(type='AnchorGenerator', scales=["
                        + ", ".join(f"{x:.4g}" for x in rel[0]) + f"], ratios=[{r}], strides={strides})")
    elif all(np.allclose(x, within[0]) for x in within):
        out["mmdet"] = (f"anchor_generator=dict(type='AnchorGenerator', base_sizes=["
                        + ", ".join(f"{lv[0]:.0f}" for lv in sizes) + "], scales=["
                        + ", ".join(f"{x:.4g}" for x in within[0]) + f"], ratios=[{r}], "
                        f"strides={strides})")
    else:
        out["mmdet"] = ("# mmdet's AnchorGenerator takes one list of scales for every level (size = "
                        "base_size x scale); these sizes are not of that form: use --suggest "
                        f"{len(sizes) * len(ratios[0])} (one size per level) for an mmdet config")
    return out


def _yolo_config(levels) -> dict:
    rows = "\n".join("  - [" + ", ".join(f"{w:.0f},{h:.0f}" for w, h in lv) + f"]  # P{k + 3}/{8 << k}"
                     for k, lv in enumerate(levels))
    return {"yolov5": f"anchors:\n{rows}"}


def _summary(best, lv, apb, recs, p, low, high, yolo):
    reach = (lambda b, t: b > 1.0 / p["anchor_t"]) if yolo else (lambda b, t: b >= t)
    n = best.size
    overall = {"boxes": int(n), "recall_low": float(reach(best, low).mean()) if n else 0.0,
               "recall_high": float(reach(best, high).mean()) if n else 0.0,
               "anchors_per_box_high": float(apb), "mean_best": float(best.mean()) if n else 0.0}
    area = np.array([r["w"] * r["h"] for r in recs]) if recs else np.zeros(0)
    buckets = {}
    for name, lo, hi in BUCKETS:
        sel = (area >= lo) & (area < hi)
        k = int(sel.sum())
        buckets[name] = {"boxes": k, "recall_low": float(reach(best[sel], low).mean()) if k else None,
                         "recall_high": float(reach(best[sel], high).mean()) if k else None}
    levels = [{"level": name, "stride": st, "recall_low": float(lv[k, 0]), "recall_high": float(lv[k, 1])}
              for k, (name, st) in enumerate(zip(p["levels"], p["strides"]))]
    return overall, buckets, levels


def anchors_report(coco, preset: str = "torchvision-fpn", sizes=None, ratios=None, image_size=None,
                   suggest=None, *, seed: int = 0, max_listed: int = 20, source=None,
                   progress=None) -> AnchorsResult:
    """The anchor fit of a COCO dataset (see the module docstring).

    Args:
        coco (str, os.PathLike or dict): COCO instances (read only).
        preset (str): one of ``PRESETS``.
        sizes (list[list[float]] or str), ratios (list[float] or str): replace the preset's
            (absolute sizes in pixels of the rescaled image; h/w ratios). Not for yolov5.
        image_size (tuple or str): the transform's (shorter, longer-at-most) sides, or one size
            (yolov5: the longer side).
        suggest (int or None): anchors to suggest with ``suggest_anchors``.
        progress (callable or None): ``progress(done, total)`` over the padded image sizes (twice
            with ``suggest``: the suggested anchors are fitted too).

    Raises:
        UnusableInput (unreadable file), ValueError (an unknown preset, bad sizes).
    """
    t0 = time.perf_counter()
    if preset not in PRESETS:
        raise ValueError(f"--preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    p = dict(PRESETS[preset])
    yolo = p["convention"] == "yolov5"
    if yolo and (sizes is not None or ratios is not None):
        raise ValueError("--sizes/--ratios: the yolov5 preset takes its anchors as (w, h) pairs; "
                         "use --suggest to get new ones")
    if sizes is not None:
        p["sizes"] = parse_sizes(sizes, len(p["strides"])) if isinstance(sizes, str) else \
            [list(map(float, lv)) for lv in sizes]
    if ratios is not None:
        r = parse_ratios(ratios) if isinstance(ratios, str) else list(map(float, ratios))
        p["ratios"] = [r] * len(p["strides"])
    if image_size is not None:
        p["resize"] = parse_image_size(image_size)
    data, name = _coco.load(coco)
    per_image, msgs, crowd = read_boxes(data)
    groups, recs = _rescale(per_image, p, yolo)
    low, high = (None, None) if yolo else (p["low"], p["high"])
    if yolo:
        best, lv, apb = _fit_yolo(p, p["anchors"], groups)
    else:
        best, lv, apb, gen = _fit_iou(p, p["sizes"], p["ratios"], groups, low, high, progress)
    overall, buckets, levels = _summary(best, lv, apb, recs, p, low, high, yolo)
    for k, lvl in enumerate(levels):
        lvl["sizes"] = [float(np.sqrt(w * h)) for w, h in p["anchors"][k]] if yolo else \
            [float(x) for x in p["sizes"][k]]
    miss = best <= 1.0 / p["anchor_t"] if yolo else best < low
    order = np.argsort(best, kind="stable")
    worst = [dict(recs[i], best=float(best[i])) for i in order if miss[i]][:max_listed]
    sugg = None
    if suggest is not None:
        sugg = _suggest(int(suggest), p, groups, recs, yolo, low, high, seed,
                        None if yolo else gen, progress)
    params = {"convention": p["convention"], "sizes": None if yolo else p["sizes"],
              "ratios": None if yolo else p["ratios"], "anchors": p.get("anchors"),
              "strides": p["strides"], "image_size": list(p["resize"]),
              "thresholds": None if yolo else {"low": low, "high": high},
              "anchor_t": p.get("anchor_t"), "metric": "wh_ratio" if yolo else "iou",
              "matcher": p["matcher"]}
    return AnchorsResult(source or name, preset, params,
                         {"images": len(per_image), "boxes": int(best.size), "crowd_skipped": crowd,
                          "image_sizes": len(groups), "messages": len(msgs)},
                         overall, levels, buckets, {"count": int(miss.sum()), "worst": worst},
                         sugg, msgs, time.perf_counter() - t0,
                         np.array([[r["scaled_w"], r["scaled_h"]] for r in recs]).reshape(-1, 2))


def _rescale(per_image, p, yolo):
    """Boxes as the model sees them, grouped by padded image size: ``({(H, W): (M, 4) xyxy},
    one record per box in the same order)``."""
    boxes_by, recs_by = {}, {}
    for im, boxes in per_image:
        if not boxes:
            continue
        nh, nw, sy, sx = _resized(im["height"], im["width"], p)
        key = (p["resize"][-1], p["resize"][-1]) if yolo else (_padded(nh, 32), _padded(nw, 32))
        xywh = np.array([b for _, b in boxes], np.float64) * np.array([sx, sy, sx, sy])
        boxes_by.setdefault(key, []).append(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1))
        recs_by.setdefault(key, []).extend(
            {"image_id": im["id"], "annotation_id": a["id"], "category": a["category"], "w": b[2],
             "h": b[3], "scaled_w": float(sc[2]), "scaled_h": float(sc[3])}
            for (a, b), sc in zip(boxes, xywh))
    return {k: np.concatenate(v) for k, v in boxes_by.items()}, [r for k in boxes_by for r in recs_by[k]]


def _suggest(k, p, groups, recs, yolo, low, high, seed, gen, progress=None):
    """suggest_anchors on the rescaled shapes, its config snippets and the recall it reaches."""
    from ..anchors import suggest_anchors
    allb = np.concatenate(list(groups.values())) if groups else np.zeros((0, 4))
    nl = len(p["strides"])
    if yolo:
        before = np.array([s for lv in p["anchors"] for s in lv], np.float64)
        sg = suggest_anchors(allb, k, anchors=before, thresholds=(0.5,), seed=seed)
        per = k // nl
        if per < 1:
            raise ValueError(f"--suggest: yolov5 has {nl} levels, K must be at least {nl}, got {k}")
        levels = [[tuple(float(x) for x in w_h) for w_h in sg.shapes[i * per:(i + 1) * per]]
                  for i in range(nl)]
        levels[-1] += [tuple(float(x) for x in w_h) for w_h in sg.shapes[nl * per:]]
        best, lv, apb = _fit_yolo(p, levels, groups)
        config, sizes, ratios = _yolo_config(levels), None, None
    else:
        nr = len(p["ratios"][0])
        if k < nl * nr:
            raise ValueError(f"--suggest: {nl} levels x {nr} ratios need K >= {nl * nr}, got {k}")
        sg = suggest_anchors(allb, k, num_levels=nl, num_ratios=nr, anchors=gen,
                             thresholds=(low, high), seed=seed)
        # as the snippets print them: whole pixels, 3 significant digits (the recall is theirs)
        sizes = [[float(max(1, round(x))) for x in lv] for lv in sg.sizes]
        ratios = [[float(f"{x:.3g}") for x in sg.aspect_ratios[0]]] * nl
        best, lv, apb, _ = _fit_iou(p, sizes, ratios, groups, low, high, progress)
        config = _config(p, sizes, ratios)
    overall, buckets, levels_out = _summary(best, lv, apb, recs, p, low, high, yolo)
    return {"k": k, "sizes": sizes, "ratios": None if ratios is None else ratios[0],
            "shapes": sg.shapes.tolist(), "shape_recall_before": sg.recall_before,
            "shape_recall_after": sg.recall_after, "overall": overall, "buckets": buckets,
            "levels": levels_out, "config": config}
