"""The per-image audit: the findings of a shard of images (the unit of work of every engine).

Per image, with fastiou's RLE kernels (through ``_dispatch``, as ``fastiou.rle`` calls them, but a
shard at a time): every segmentation converted as pycocotools' ``COCO.annToRLE`` would (polygons
rasterised and merged as ``rle.from_segmentation`` does, RLE validated), areas and boxes of all
masks in one call each, mask IoU of every pair of non-crowd instances of an image in one call
(``rle.iou``'s kernel), crowd coverage as pycocotools' crowd IoU (intersection over the
instance's area), and box IoU of the bbox fields as pycocotools' ``bbIou`` computes it. The
per-image work depends on nothing but the image and its annotations, so any split of the images
gives the same findings.
"""

from __future__ import annotations

import contextlib
import gc
from itertools import chain
import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from .. import _dispatch
from .. import rle as _rle
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
    t = type(v)
    if t is float or t is int:  # the usual JSON values, without the slower ABC check
        return math.isfinite(v)
    return isinstance(v, numbers.Real) and t is not bool and math.isfinite(v)


def _numbers(values, width):
    """float64 ``(N, width)`` (``(N,)`` for width 0) of JSON values; NaN rows for the values
    that are not numbers (or not ``width`` numbers; strings are not numbers)."""
    shape = (len(values), width) if width else (len(values),)
    try:
        out = np.array(values)  # one conversion; its dtype says whether all were numbers
        if out.shape == shape and out.dtype.kind in "iuf":
            return out.astype(np.float64)
    except (TypeError, ValueError):
        pass
    out = np.full(shape, np.nan)
    for i, v in enumerate(values):
        if width and type(v) is list and len(v) == width and all(_number(x) for x in v):
            out[i] = v
        elif not width and _number(v):
            out[i] = v
    return out


def _finding(kind, img_id, anns, value, message, **details) -> Finding:
    return Finding(kind, img_id, [a["id"] for a in anns], [a["category_id"] for a in anns],
                   [a["category"] for a in anns], None if value is None else float(value), message,
                   details)


_MAX_COORD = float(1 << 27)  # what the rasteriser accepts (pycocotools' int arithmetic overflows)
_TRIU: dict = {}


def _triu(n):
    if n not in _TRIU:
        _TRIU[n] = np.triu_indices(n, 1)
    return _TRIU[n]


def _box_iou_pairs(a, b):
    """IoU of xywh boxes row by row, as pycocotools' bbIou computes it (bit for bit)."""
    w = np.minimum(a[:, 2] + a[:, 0], b[:, 2] + b[:, 0]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3] + a[:, 1], b[:, 3] + b[:, 1]) - np.maximum(a[:, 1], b[:, 1])
    i = w * h
    with np.errstate(invalid="ignore", divide="ignore"):
        o = i / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - i)
    return np.where((w > 0) & (h > 0), o, 0.0)


class _Shard:
    """The findings of a shard of images, computed a shard at a time: polygons checked as one
    array, rasterised in one kernel call per image size, areas and boxes of every mask in one
    call each, pair thresholds on one array; only the IoU matrices are per image (``rle.iou``).
    Findings are put in a fixed order per image (record checks, single masks, pairs, crowds,
    each by annotation position), so any split of the images gives the same list."""

    def __init__(self, shard, p: Params, coords=None):
        self.p, self.shard, self.found, self.seq = p, shard, [], 0
        self.coords = coords  # the polygon coordinates of a packed shard (coco.pack)
        self.recs = []        # (img_pos, ann_pos, ann, h, w) of every annotation
        self.parts = []       # (rec, part index, float64 coordinates) of numeric polygon parts
        self.rle_recs = []    # recs whose segmentation is an RLE dict
        self.poly_recs = []   # recs whose segmentation is a list of polygons
        self.field = {}       # rec -> bbox field [x, y, w, h]

    def add(self, rec, phase, sub, kind, anns, value, message, **details):
        img_pos, ann_pos, a, _, _ = self.recs[rec]
        img_id = self.shard[img_pos][0]["id"]
        self.seq += 1
        self.found.append(((img_pos, phase, ann_pos, sub, self.seq),
                           _finding(kind, img_id, anns or [a], value, message, **details)))

    def run(self) -> list:
        self.read()
        masks = self.polygon_masks()
        masks.update(self.rle_masks())
        keep = sorted(masks)
        if keep:
            # every mask has its image's size (the others were left out): one call each for
            # the areas and boxes of the shard, through the dispatch site, on the counts strings
            counts = [masks[r] for r in keep]
            sizes = np.array([self.recs[r][3:] for r in keep], np.int64)
            areas = np.empty(len(keep), np.uint32)
            _dispatch.call_host("rle_area", counts, sizes, areas, "masks")
            mboxes = np.empty((len(keep), 4), np.float64)
            _dispatch.call_host("rle_to_bbox", counts, sizes, mboxes, "masks")
            boxes = self.single(keep, areas.astype(np.int64), mboxes)
            self.pairs(keep, counts, sizes, areas, boxes)
        self.found.sort(key=lambda kf: kf[0])
        return [f for _, f in self.found]

    def read(self):
        """One pass over the annotations: split the segmentations, collect the bbox and area
        fields (checked afterwards as arrays)."""
        raw, boxes, areas = [], [], []
        for img_pos, (image, anns) in enumerate(self.shard):
            h, w = image["height"], image["width"]
            for ann_pos, a in enumerate(anns):
                rec = len(self.recs)
                self.recs.append((img_pos, ann_pos, a, h, w))
                seg = a["segmentation"]
                if h is None:
                    pass  # the image's bad size is reported once, with the image
                elif type(seg) is list:
                    self.poly_recs.append(rec)
                    raw += [(rec, k, part) for k, part in enumerate(seg)]
                elif type(seg) is tuple:  # ("packed", start, part lengths): see coco.pack
                    self.poly_recs.append(rec)
                    start = seg[1]
                    for k, n in enumerate(seg[2]):
                        self.parts.append((rec, k, self.coords[start:start + n]))
                        start += n
                elif isinstance(seg, dict):
                    self.rle_recs.append(rec)
                elif seg is not None:  # (a missing segmentation is a bad_record already)
                    self.add(rec, 0, 0, "bad_segmentation", None, None,
                             f"segmentation is a {type(seg).__name__}, expected a list of "
                             f"polygons or an RLE object")
                if a["bbox"] is not None:
                    boxes.append((rec, a["bbox"]))
                if a["area"] is not None:
                    areas.append((rec, a["area"]))
        self.read_parts(raw)
        self.read_fields(boxes, areas)

    def read_parts(self, raw):
        """The polygon parts as float64 arrays: all of them in one conversion when every part is
        a flat list of numbers, else part by part (naming the bad ones)."""
        if not raw:
            return
        if self.parts:  # a packed shard: keep the parts in annotation order
            raw = [(rec, k, xy.tolist()) for rec, k, xy in self.parts] + raw
            raw.sort(key=lambda t: (t[0], t[1]))
            self.parts = []
        lens = [len(p) if type(p) is list else -1 for _, _, p in raw]
        if min(lens) >= 0 and not any(n % 2 for n in lens):
            try:
                flat = np.fromiter(chain.from_iterable(p for _, _, p in raw), np.float64,
                                   count=sum(lens))
            except (TypeError, ValueError):
                flat = None
            if flat is not None:
                ends = np.cumsum(lens).tolist()
                self.parts = [(rec, k, flat[e - n:e]) for (rec, k, _), n, e in zip(raw, lens, ends)]
                return
        for rec, k, part in raw:
            try:
                xy = np.asarray(part, dtype=np.float64)
            except (TypeError, ValueError):
                xy = None
            if xy is not None and xy.ndim == 1 and not xy.size % 2:
                self.parts.append((rec, k, xy))  # (finiteness and magnitude: in check_parts)
            elif xy is None or xy.ndim != 1:
                self.non_numbers(rec, k, part)
            else:
                self.add(rec, 0, k, "degenerate_polygon", None, xy.size // 2,
                         f"polygon {k}: an odd number of coordinates ({xy.size}); it is skipped",
                         reason="odd coordinate count", polygon=k)

    def non_numbers(self, rec, k, part):
        n = len(part) // 2 if isinstance(part, list) else 0
        self.add(rec, 0, k, "degenerate_polygon", None, n,
                 f"polygon {k}: expected a flat list of (finite) numbers x0, y0, x1, y1, ...; it is "
                 f"skipped", reason="non-numbers", polygon=k)

    def read_fields(self, boxes, areas):
        """``self.field`` (rec -> bbox field) and ``self.area_field`` (rec -> area field) of the
        well-formed ones, a bad_record for the others."""
        self.area_field = np.full(len(self.recs), np.nan)
        b = _numbers([v for _, v in boxes], 4)
        ok = np.isfinite(b).all(1) & (b[:, 2] >= 0) & (b[:, 3] >= 0) if len(b) else []
        for (rec, v), good, row in zip(boxes, ok, b):
            if good:
                self.field[rec] = row
            else:
                self.add(rec, 0, 1 << 30, "bad_record", None, None,
                         f"'bbox' is {v!r}, expected [x, y, width, height]: 4 numbers, width and "
                         f"height not negative")
        a = _numbers([v for _, v in areas], 0)
        for (rec, v), x in zip(areas, a):
            if np.isfinite(x):
                self.area_field[rec] = x
            else:
                self.add(rec, 0, 1 << 30, "bad_record", None, None, f"'area' is {v!r}, expected a number")

    def polygon_masks(self) -> dict:
        """rec -> RLE counts (bytes) of every polygon segmentation (as ``COCO.annToRLE``: the
        union of its parts), with the findings about degenerate and out-of-image parts, checked
        on all parts of the shard at once."""
        out: dict = {}
        poly_recs = self.poly_recs
        if not poly_recs:
            return out
        self.check_parts()
        by_size: dict = {}
        for j, (rec, _, _) in enumerate(self.parts):
            by_size.setdefault(self.recs[rec][3:], []).append(j)
        part_rle = [None] * len(self.parts)
        for (h, w), js in by_size.items():
            got = _dispatch.call_host("rle_from_polygons", [self.parts[j][2] for j in js], h, w,
                                      "segmentation")
            for j, r in zip(js, got):
                part_rle[j] = r
        per_rec: dict = {rec: [] for rec in poly_recs}
        for j, (rec, _, _) in enumerate(self.parts):
            per_rec[rec].append(part_rle[j])
        for rec, rs in per_rec.items():
            hw = self.recs[rec][3:]
            if len(rs) == 1:
                out[rec] = rs[0]
            elif rs:
                out[rec] = _dispatch.call_host("rle_merge", rs, np.array([hw] * len(rs), np.int64),
                                               False, "segmentation")
            else:
                out[rec] = _rle.from_segmentation([], *hw)["counts"]
        return out

    def check_parts(self):
        """Non-finite or huge coordinates, fewer than 3 points, zero area, outside the image: one
        array pass over all parts (parts that cannot be rasterised are dropped)."""
        n = np.array([xy.size // 2 for _, _, xy in self.parts], np.int64)
        if len(self.parts) and n.sum():
            ok = np.abs(np.concatenate([xy for _, _, xy in self.parts])) < _MAX_COORD
            bad = []
            if not ok.all():
                nz = np.flatnonzero(n > 0)
                bad = nz[~np.logical_and.reduceat(ok, (np.cumsum(2 * n) - 2 * n)[nz])]
            for j in bad:
                rec, k, xy = self.parts[j]
                self.non_numbers(rec, k, xy.tolist())
            if len(bad):
                keep = np.ones(len(self.parts), bool)
                keep[bad] = False
                self.parts = [t for t, good in zip(self.parts, keep) if good]
                n = n[keep]
        for j in np.flatnonzero(n < 3):
            rec, k, _ = self.parts[j]
            self.add(rec, 0, k, "degenerate_polygon", None, n[j],
                     f"polygon {k}: {n[j]} point{'s' if n[j] != 1 else ''}, a polygon needs 3",
                     reason="fewer than 3 points", polygon=k)
        live = np.flatnonzero(n > 0)
        if not len(live):
            return
        xy = np.concatenate([self.parts[j][2] for j in live])
        x, y = xy[0::2], xy[1::2]
        starts = np.concatenate([[0], np.cumsum(n[live])[:-1]])
        nxt = np.arange(1, x.size + 1)
        nxt[starts[1:] - 1] = starts[:-1]
        nxt[-1] = starts[-1]
        area2 = np.add.reduceat(x * y[nxt] - y * x[nxt], starts)
        recs = self.recs
        hw = np.array([recs[self.parts[j][0]][3:] for j in live.tolist()], np.float64)
        dist = np.maximum.reduce([-np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts) - hw[:, 1],
                                  -np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts) - hw[:, 0],
                                  np.zeros(len(live))])
        for q in np.flatnonzero((np.abs(area2) < 2e-6) & (n[live] >= 3)):
            rec, k, _ = self.parts[live[q]]
            self.add(rec, 0, k, "degenerate_polygon", None, n[live[q]],
                     f"polygon {k}: zero area (all {n[live[q]]} points on one line)",
                     reason="zero area", polygon=k)
        for q in np.flatnonzero(dist > self.p.outside_tolerance):
            rec, k, _ = self.parts[live[q]]
            h, w = self.recs[rec][3:]
            self.add(rec, 0, k, "outside_image", None, dist[q],
                     f"polygon {k}: reaches {dist[q]:.1f} px outside the {w}x{h} image", polygon=k)

    def rle_masks(self) -> dict:
        """rec -> RLE of every RLE segmentation (checked; a wrong size leaves it out). Compressed
        strings are validated in one call for the shard; anything else, or a batch with a bad
        string in it, goes through ``rle.from_segmentation`` one by one to name the bad ones."""
        out, slow, fast = {}, [], []
        for rec in self.rle_recs:
            seg = self.recs[rec][2]["segmentation"]
            c = seg.get("counts")
            if type(c) is str and c.isascii():
                c = c.encode("ascii")
            if type(c) is bytes and isinstance(seg.get("size"), list):
                fast.append((rec, {"size": seg["size"], "counts": c}))
            else:
                slow.append(rec)
        if fast:
            try:
                _rle.area([r for _, r in fast])  # validates every string
                for rec, r in fast:
                    self.rle_mask(rec, r, out)
            except (ValueError, TypeError):
                slow += [rec for rec, _ in fast]
        for rec in sorted(slow):
            try:
                r = _rle.from_segmentation(self.recs[rec][2]["segmentation"], 0, 0)
            except (ValueError, TypeError) as e:
                self.add(rec, 0, 0, "bad_segmentation", None, None, f"RLE segmentation: {e}")
                continue
            self.rle_mask(rec, r, out)
        return out

    def rle_mask(self, rec, r, out):
        h, w = self.recs[rec][3:]
        if list(r["size"]) != [h, w]:
            self.add(rec, 0, 0, "rle_size_mismatch", None, None,
                     f"RLE size {r['size']} differs from the image's [height, width] [{h}, {w}]; "
                     f"the mask is left out of the checks", size=r["size"], image_size=[h, w])
        else:
            out[rec] = r["counts"]

    def single(self, keep, areas, mboxes) -> np.ndarray:
        """Findings about each mask against its own fields; returns the boxes the pair check
        uses (the bbox field, or the mask's box where the field is missing or bad)."""
        p = self.p
        boxes = mboxes.copy()
        has = np.array([rec in self.field for rec in keep])
        if has.any():
            boxes[has] = np.array([self.field[rec] for rec, h in zip(keep, has) if h])
        own = _box_iou_pairs(mboxes, boxes)
        af = self.area_field[keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = np.abs(af - areas)
            rel = diff / areas
        bad_area = (rel > p.area_tolerance) & (diff > p.area_min_pixels)
        flag = (areas < p.min_area) | (has & (own < p.bbox_min_iou)) | bad_area
        for q in np.flatnonzero(flag):
            rec, area = keep[q], int(areas[q])
            if area == 0:
                self.add(rec, 1, 0, "empty_mask", None, 0, "the mask has no pixel")
                continue
            if area < p.min_area:
                self.add(rec, 1, 1, "tiny_mask", None, area,
                         f"the mask has {area} pixel{'s' if area != 1 else ''} (fewer than "
                         f"{p.min_area})")
            if has[q] and own[q] < p.bbox_min_iou:
                mb, fb = mboxes[q].tolist(), [float(v) for v in self.field[rec]]
                self.add(rec, 1, 2, "bbox_mismatch", None, own[q],
                         f"the mask's box {np.round(mb, 1).tolist()} has IoU {own[q]:.3f} with the "
                         f"bbox field {fb}", mask_bbox=mb, bbox=fb)
            if bad_area[q]:
                self.add(rec, 1, 3, "area_mismatch", None, rel[q],
                         f"area field {af[q]:g} vs {area} mask pixels", area_field=float(af[q]),
                         mask_area=area)
        return boxes

    def pairs(self, keep, counts, sizes, areas, boxes):
        """Same-class and cross-class pairs, and crowd coverage, per image (``rle_iou`` as
        ``rle.iou`` runs it, on the counts strings of the shard)."""
        groups: dict = {}
        for q, rec in enumerate(keep):
            if areas[q] > 0:
                a = self.recs[rec][2]
                groups.setdefault(self.recs[rec][0], ([], []))[a["iscrowd"]].append(q)
        gi, gj, mi = [], [], []
        for inst, crowd in groups.values():
            if len(inst) > 1:
                c, sz = [counts[q] for q in inst], sizes[inst]
                m = np.empty((len(inst), len(inst)), np.float64)
                _dispatch.call_host("rle_iou", c, sz, c, sz, None, m)  # (one list: parsed once)
                i, j = _triu(len(inst))
                idx = np.asarray(inst)
                gi.append(idx[i])
                gj.append(idx[j])
                mi.append(m[i, j])
            if inst and crowd:
                self.crowds(keep, counts, sizes, inst, crowd)
        if not gi:
            return
        gi, gj, mi = np.concatenate(gi), np.concatenate(gj), np.concatenate(mi)
        bi = _box_iou_pairs(boxes[gi], boxes[gj])
        codes: dict = {}
        cat = np.array([codes.setdefault(self.recs[r][2]["category_id"], len(codes)) for r in keep])
        same = cat[gi] == cat[gj]
        for k in np.flatnonzero((mi > self.p.iou) | (same & (bi > self.p.box_iou))):
            self.pair(keep[gi[k]], keep[gj[k]], float(mi[k]), float(bi[k]))

    def pair(self, rx, ry, mv, bv):
        x, y = self.recs[rx][2], self.recs[ry][2]
        sub, p = self.recs[ry][1], self.p
        if x["category_id"] != y["category_id"]:
            self.add(rx, 2, sub, "cross_class_overlap", [x, y], mv,
                     f"{x['category']} and {y['category']} on the same pixels: mask IoU {mv:.3f}",
                     mask_iou=mv, box_iou=bv)
        elif mv >= p.duplicate_iou:
            self.add(rx, 2, sub, "duplicate", [x, y], mv,
                     f"two {x['category']} annotations with near-identical masks: mask IoU "
                     f"{mv:.3f}", mask_iou=mv, box_iou=bv)
        elif mv > p.iou:
            self.add(rx, 2, sub, "mask_overlap", [x, y], mv,
                     f"two {x['category']} masks overlap: mask IoU {mv:.3f}", mask_iou=mv, box_iou=bv)
        else:
            self.add(rx, 2, sub, "box_overlap", [x, y], bv,
                     f"two {x['category']} boxes overlap: box IoU {bv:.3f} (mask IoU {mv:.3f})",
                     mask_iou=mv, box_iou=bv)

    def crowds(self, keep, counts, sizes, inst, crowd):
        """Crowd regions covering non-crowd instances of their class (pycocotools' crowd IoU:
        intersection over the instance's area)."""
        ioa = np.empty((len(inst), len(crowd)), np.float64)
        _dispatch.call_host("rle_iou", [counts[q] for q in inst], sizes[inst],
                            [counts[q] for q in crowd], sizes[crowd], np.ones(len(crowd), np.uint8),
                            ioa)
        for r, c in zip(*np.nonzero(ioa > self.p.iou)):
            rx, ry = keep[inst[r]], keep[crowd[c]]
            x, y = self.recs[rx][2], self.recs[ry][2]
            if x["category_id"] == y["category_id"]:
                v = float(ioa[r, c])
                self.add(rx, 3, self.recs[ry][1], "crowd_overlap", [x, y], v,
                         f"{x['category']} instance {x['id']} lies {v:.0%} inside crowd region "
                         f"{y['id']}", ioa=v)


def check_image(image: dict, anns: list, p: Params) -> list:
    """Findings of one image (``image`` and ``anns`` as ``coco.index`` slims them)."""
    return _Shard([(image, anns)], p).run()


def check_shard(shard, params: dict) -> list:
    """Findings of one shard ``[(image, anns), ...]``, or of a packed one ``(shard, coords)``
    (``coco.pack``): the unit of work of every engine."""
    with _no_gc():
        if type(shard) is tuple:
            # .view: an unpickled array carries its own float64 dtype object, which the
            # compiled extension's dtype check (an identity test) refuses
            return _Shard(shard[0], Params(**params), shard[1].view(np.float64)).run()
        return _Shard(shard, Params(**params)).run()


@contextlib.contextmanager
def _no_gc():
    """The cyclic collector off while tens of thousands of small objects are made (it would
    rescan the whole dataset again and again; nothing made here forms a cycle)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
