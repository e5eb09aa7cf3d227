"""The per-image audit and ``check``, which runs it over a dataset on one of three engines.

Per image (``check_image``), with fastiou's public RLE ops: every segmentation converted as
pycocotools' ``COCO.annToRLE`` would (``rle.from_segmentation``), areas and boxes of all masks in
one call each (``rle.area``, ``rle.to_bbox``), mask IoU of every pair of non-crowd instances in one
call (``rle.iou``), crowd coverage as pycocotools' crowd IoU (intersection over the instance's
area: ``rle.iou(instances, crowds, iscrowd=...)``), and box IoU of the bbox fields (``rle.iou`` on
xywh boxes, pycocotools' box rule). The per-image work depends on nothing but the image and its
annotations, so any split of the images gives the same findings.
"""

from __future__ import annotations

import math
import numbers
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import rle as _rle
from ..boxes import box_iou_aligned
from .findings import Finding


@dataclass(frozen=True)
class Params:
    """Thresholds of the audit (see ``fastiou.diagnostics.check``)."""

    iou: float = 0.5
    box_iou: float = 0.7
    duplicate_iou: float = 0.95
    bbox_min_iou: float = 0.5
    area_tolerance: float = 0.2
    area_min_pixels: float = 10.0
    min_area: int = 10
    outside_tolerance: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _finding(kind, img_id, anns, value, message, **details) -> Finding:
    return Finding(kind, img_id, [a["id"] for a in anns], [a["category_id"] for a in anns],
                   [a["category"] for a in anns], None if value is None else float(value), message,
                   details)


# ------------------------------------------------------------------------------ one annotation

def _polygon_parts(a, h, w, p, img_id, out) -> list:
    """The parts of a polygon segmentation that can be rasterised (pycocotools rasterises every
    list of numbers), with a finding for each degenerate or out-of-image part."""
    parts = []
    for k, part in enumerate(a["segmentation"]):
        where = f"polygon {k}"
        try:
            xy = np.asarray(part, dtype=np.float64)
        except (TypeError, ValueError):
            xy = None
        if xy is None or xy.ndim != 1 or not np.isfinite(xy).all():
            n = len(part) // 2 if isinstance(part, list) else 0
            out.append(_finding("degenerate_polygon", img_id, [a], n,
                                f"{where}: expected a flat list of numbers x0, y0, x1, y1, ...; "
                                f"it is skipped", reason="non-numbers", polygon=k))
            continue
        if xy.size % 2:
            out.append(_finding("degenerate_polygon", img_id, [a], xy.size // 2,
                                f"{where}: an odd number of coordinates ({xy.size}); it is skipped",
                                reason="odd coordinate count", polygon=k))
            continue
        parts.append(xy)
        x, y = xy[0::2], xy[1::2]
        if x.size < 3:
            out.append(_finding("degenerate_polygon", img_id, [a], x.size,
                                f"{where}: {x.size} point{'s' if x.size != 1 else ''}, a polygon "
                                f"needs 3", reason="fewer than 3 points", polygon=k))
        elif np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) == 0.0:
            out.append(_finding("degenerate_polygon", img_id, [a], x.size,
                                f"{where}: zero area (all {x.size} points on one line)",
                                reason="zero area", polygon=k))
        if x.size:
            dist = max(-x.min(), x.max() - w, -y.min(), y.max() - h, 0.0)
            if dist > p.outside_tolerance:
                out.append(_finding("outside_image", img_id, [a], dist,
                                    f"{where}: reaches {dist:.1f} px outside the {w}x{h} image",
                                    polygon=k))
    return parts


def _mask(a, h, w, p, img_id, out):
    """The annotation's RLE (as ``COCO.annToRLE``), or None with a finding saying why not."""
    seg = a["segmentation"]
    if isinstance(seg, list):
        if h is None:
            return None  # the image's bad size is reported once, with the image
        parts = _polygon_parts(a, h, w, p, img_id, out)
        return _rle.from_segmentation(parts, h, w)
    if isinstance(seg, dict):
        try:
            r = _rle.from_segmentation(seg, h or 0, w or 0)
        except (ValueError, TypeError) as e:
            out.append(_finding("bad_segmentation", img_id, [a], None, f"RLE segmentation: {e}"))
            return None
        if h is not None and r["size"] != [h, w]:
            out.append(_finding("rle_size_mismatch", img_id, [a], None,
                                f"RLE size {r['size']} differs from the image's [height, width] "
                                f"[{h}, {w}]; the mask is left out of the checks",
                                size=r["size"], image_size=[h, w]))
            return None
        return r
    if seg is not None:  # (a missing segmentation is a bad_record already)
        out.append(_finding("bad_segmentation", img_id, [a], None,
                            f"segmentation is a {type(seg).__name__}, expected a list of polygons "
                            f"or an RLE object"))
    return None


def _bbox_field(a, img_id, out):
    b = a["bbox"]
    if b is None:
        return None
    if not (isinstance(b, list) and len(b) == 4 and all(_number(v) for v in b)) or b[2] < 0 or b[3] < 0:
        out.append(_finding("bad_record", img_id, [a], None,
                            f"'bbox' is {b!r}, expected [x, y, width, height]: 4 numbers, width "
                            f"and height not negative"))
        return None
    return [float(v) for v in b]


def _box_iou_aligned(a, b):
    """Row-by-row IoU of xywh boxes (pycocotools' box rule: no +1, touching boxes give 0)."""
    to_xyxy = lambda x: np.concatenate([x[:, :2], x[:, :2] + x[:, 2:]], axis=1)  # noqa: E731
    return np.asarray(box_iou_aligned(to_xyxy(a), to_xyxy(b)), np.float64)


def _single(a, area, mbox, field_box, biou, p, img_id, out):
    """Findings about one annotation's mask against its own fields."""
    if area == 0:
        out.append(_finding("empty_mask", img_id, [a], 0, "the mask has no pixel"))
        return
    if area < p.min_area:
        out.append(_finding("tiny_mask", img_id, [a], area,
                            f"the mask has {area} pixel{'s' if area != 1 else ''} "
                            f"(fewer than {p.min_area})"))
    if field_box is not None:
        biou = float(biou)
        if biou < p.bbox_min_iou:
            out.append(_finding("bbox_mismatch", img_id, [a], biou,
                                f"the mask's box {np.round(mbox, 1).tolist()} has IoU {biou:.3f} "
                                f"with the bbox field {field_box}",
                                mask_bbox=mbox.tolist(), bbox=field_box))
    af = a["area"]
    if _number(af):
        diff = abs(float(af) - area)
        rel = diff / area
        if rel > p.area_tolerance and diff > p.area_min_pixels:
            out.append(_finding("area_mismatch", img_id, [a], rel,
                                f"area field {af:g} vs {area} mask pixels",
                                area_field=float(af), mask_area=int(area)))
    elif af is not None:
        out.append(_finding("bad_record", img_id, [a], None, f"'area' is {af!r}, expected a number"))


# ------------------------------------------------------------------------------ pairs

def _pairs(anns, rles, boxes, p, img_id, out):
    """Same-class and cross-class pairs among the non-crowd masks of one image."""
    n = len(rles)
    if n < 2:
        return
    m = _rle.iou(rles, rles)
    b = _rle.iou(boxes, boxes)
    i, j = np.triu_indices(n, 1)
    mi, bi = m[i, j], b[i, j]
    codes: dict = {}
    cats = np.array([codes.setdefault(a["category_id"], len(codes)) for a in anns])
    same = cats[i] == cats[j]
    hit = (mi > p.iou) | (same & (bi > p.box_iou))
    for k in np.flatnonzero(hit):
        x, y = anns[i[k]], anns[j[k]]
        mv, bv = float(mi[k]), float(bi[k])
        if x["category_id"] != y["category_id"]:
            out.append(_finding("cross_class_overlap", img_id, [x, y], mv,
                                f"{x['category']} and {y['category']} on the same pixels: mask "
                                f"IoU {mv:.3f}", mask_iou=mv, box_iou=bv))
        elif mv >= p.duplicate_iou:
            out.append(_finding("duplicate", img_id, [x, y], mv,
                                f"two {x['category']} annotations with near-identical masks: mask "
                                f"IoU {mv:.3f}", mask_iou=mv, box_iou=bv))
        elif mv > p.iou:
            out.append(_finding("mask_overlap", img_id, [x, y], mv,
                                f"two {x['category']} masks overlap: mask IoU {mv:.3f}",
                                mask_iou=mv, box_iou=bv))
        else:
            out.append(_finding("box_overlap", img_id, [x, y], bv,
                                f"two {x['category']} boxes overlap: box IoU {bv:.3f} (mask IoU "
                                f"{mv:.3f})", mask_iou=mv, box_iou=bv))


def _crowds(inst, irles, crowd, crles, p, img_id, out):
    """Crowd regions covering non-crowd instances of their class (pycocotools' crowd IoU)."""
    if not inst or not crowd:
        return
    ioa = _rle.iou(irles, crles, [1] * len(crles))
    for r, c in zip(*np.nonzero(ioa > p.iou)):
        x, y = inst[r], crowd[c]
        if x["category_id"] == y["category_id"]:
            v = float(ioa[r, c])
            out.append(_finding("crowd_overlap", img_id, [x, y], v,
                                f"{x['category']} instance {x['id']} lies {v:.0%} inside crowd "
                                f"region {y['id']}", ioa=v))


def check_image(image: dict, anns: list, p: Params) -> list:
    """Findings of one image (``image`` and ``anns`` as ``coco.index`` slims them)."""
    out: list[Finding] = []
    img_id, h, w = image["id"], image["height"], image["width"]
    keep, rles, field_boxes = [], [], []
    for a in anns:
        r = _mask(a, h, w, p, img_id, out)
        fb = _bbox_field(a, img_id, out)
        if r is not None:
            keep.append(a)
            rles.append(r)
            field_boxes.append(fb)
    if not keep:
        return out
    areas = _rle.area(rles)
    mboxes = _rle.to_bbox(rles)
    boxes = np.array([m if f is None else f for m, f in zip(mboxes.tolist(), field_boxes)])
    own = _box_iou_aligned(mboxes, boxes)  # mask box vs bbox field
    for k, a in enumerate(keep):
        _single(a, int(areas[k]), mboxes[k], field_boxes[k], own[k], p, img_id, out)
    live = areas > 0
    inst = [k for k, a in enumerate(keep) if live[k] and not a["iscrowd"]]
    crowd = [k for k, a in enumerate(keep) if live[k] and a["iscrowd"]]
    _pairs([keep[k] for k in inst], [rles[k] for k in inst], boxes[inst], p, img_id, out)
    _crowds([keep[k] for k in inst], [rles[k] for k in inst],
            [keep[k] for k in crowd], [rles[k] for k in crowd], p, img_id, out)
    return out


def check_shard(shard, params: dict) -> list:
    """Findings of one shard ``[(image, anns), ...]`` (the unit of work of every engine)."""
    p = Params(**params)
    out = []
    for image, anns in shard:
        out.extend(check_image(image, anns, p))
    return out


# ------------------------------------------------------------------------------ the result

@dataclass
class CheckResult:
    """What ``check`` found.

    Attributes:
        source (str): the file checked (``"<dict>"`` for a dict).
        params (Params): the thresholds.
        n_images, n_annotations, n_categories (int): the records read.
        findings (list[Finding]): record-level findings first (ids, keys), then each image's
            findings in image order (within an image: per annotation, then pairs). The same list,
            finding for finding, whatever the engine.
        engine (str): "serial", "processes (N)" or "dask (ADDRESS)".
        seconds (float): wall time.
    """

    source: str
    params: Params
    n_images: int
    n_annotations: int
    n_categories: int
    findings: list
    engine: str = "serial"
    seconds: float = 0.0
    annotations_per_category: dict = field(default_factory=dict)

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    def to_dict(self) -> dict:
        from .report import to_json_dict
        return to_json_dict(self)


def check(coco, iou: float = 0.5, box_iou: float = 0.7, workers=None, dask=None, *,
          duplicate_iou: float = 0.95, bbox_min_iou: float = 0.5, area_tolerance: float = 0.2,
          area_min_pixels: float = 10.0, min_area: int = 10, outside_tolerance: float = 1.0,
          shard_size=None, progress=None, source=None) -> CheckResult:
    """Audits a COCO instances dataset for the annotation faults that make instance masks overlap.

    Args:
        coco (str, os.PathLike or dict): a COCO instances JSON file, or the loaded dict. Read,
            never written.
        iou (float): mask IoU above which a pair is reported (same class: ``mask_overlap``,
            different classes: ``cross_class_overlap``), and the intersection over an instance's
            area above which a same-class crowd region covering it is reported (``crowd_overlap``).
        box_iou (float): box IoU (of the bbox fields) above which a same-class pair whose masks do
            not overlap is reported (``box_overlap``).
        workers (int or None): local processes; None: all cores; 1: in this process.
        dask (str, distributed.Client or None): run on a dask.distributed cluster: the scheduler's
            address or a connected Client (overrides ``workers``). The images go out in shards; no
            worker receives the whole file.
        duplicate_iou (float): mask IoU from which a same-class pair is a ``duplicate``.
        bbox_min_iou (float): IoU of a mask's box with its bbox field under which it is a
            ``bbox_mismatch``.
        area_tolerance (float), area_min_pixels (float): an ``area_mismatch`` differs from the mask
            area by more than this fraction of it and by more than this many pixels.
        min_area (int): masks with fewer pixels are ``tiny_mask``.
        outside_tolerance (float): polygon points further outside the image are ``outside_image``.
        shard_size (int or None): images per unit of work (None: chosen from the engine).
        progress (callable or None): ``progress(done_images, total_images)`` after each shard.
        source (str or None): the name to report for a dict (default ``"<dict>"``).

    Returns:
        CheckResult: the findings (see ``fastiou.diagnostics.KINDS``) and counts; ``.to_dict()``
        gives the JSON document that ``fastiou check --json`` writes.

    Raises:
        fastiou.diagnostics.UnusableInput: a missing or unreadable file, invalid JSON, not a JSON
            object. Every other fault of the input is a finding (severity ``"error"``), and the
            check goes on with the rest.
    """
    from . import coco as _coco
    from . import parallel

    t0 = time.perf_counter()
    p = Params(float(iou), float(box_iou), float(duplicate_iou), float(bbox_min_iou),
               float(area_tolerance), float(area_min_pixels), int(min_area), float(outside_tolerance))
    data, name = _coco.load(coco)
    idx = _coco.index(data)
    findings, engine = parallel.run(idx, p, workers=workers, dask=dask, shard_size=shard_size,
                                    progress=progress)
    per_cat = Counter(a["category"] for anns in idx.per_image for a in anns)
    return CheckResult(source or name, p, len(idx.images), idx.n_annotations, len(idx.categories),
                       idx.findings + findings, engine, time.perf_counter() - t0, dict(per_cat))
