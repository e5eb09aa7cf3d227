"""The per-image audit: the findings of a shard of images (the unit of work of every engine).

A shard at a time, on columns (``coco.Shard``): every segmentation converted as pycocotools'
``COCO.annToRLE`` would (polygons rasterised and merged as ``rle.from_segmentation`` does, RLE
validated), with the area and box of every mask; mask IoU of every pair of non-crowd instances of
an image (``rle.iou``'s values: 0 where the boxes do not meet), crowd coverage as pycocotools'
crowd IoU (intersection over the instance's area), and box IoU of the bbox fields as
pycocotools' ``bbIou`` computes it. With the compiled backend the work of a shard is a few calls
of fastiou._C's batched ``check_*`` helpers; otherwise the declared RLE ops through
``_dispatch``, per image where they take one. The per-image work depends on nothing but the image
and its annotations, so any split of the images gives the same findings.
"""

from __future__ import annotations

import contextlib
import gc
import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from .. import _dispatch
from .. import rle as _rle
from . import coco as _coco
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
    fn = _coco._compiled_helper("check_numbers")  # (input handling only: any backend)
    if fn is not None and type(values) is list:
        out = fn(values, width)
        if out is not None:
            return out
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
    """The findings of a shard of images, computed a shard at a time, on columns (no object per
    annotation): polygons read in one pass (``coco.unpack_polygons``) and checked as one array,
    rasterised with their areas and boxes in one kernel call, the bbox and area fields checked
    as arrays, the mask IoU of every image's pairs in one call, pair thresholds on one array;
    Python loops only over what is reported. Findings are put in a fixed order per image (record
    checks, single masks, pairs, crowds, each by annotation position), so any split of the
    images gives the same list.

    Without the compiled backend (or with another host backend forced) the same steps run on
    the declared ops (``rle_from_polygons``, ``rle_merge``, ``rle_area``, ``rle_to_bbox``,
    ``rle_iou``) through ``_dispatch``."""

    def __init__(self, shard: _coco.Shard, p: Params):
        self.p, self.found, self.seq = p, [], 0
        self.images, self.a, self.packed = shard.images, shard.anns, shard.packed
        bounds = np.asarray(shard.bounds, np.int64)
        n = len(self.a.id)
        counts = np.diff(bounds)
        self.img = np.repeat(np.arange(len(self.images)), counts)      # image position per row
        self.pos = np.arange(n) - np.repeat(bounds[:-1], counts)       # position in its image
        hw = np.array([[im["height"] or 0, im["width"] or 0] for im in self.images],
                      np.int64).reshape(-1, 2)
        self.hw = hw[self.img]                                          # (n, 2): the image's size
        self.sized = self.hw[:, 0] > 0       # (an image without a valid size: reported with it)
        self.n = n
        self.fast = _compiled()

    def add(self, rec, phase, sub, kind, recs, value, message, **details):
        a = self.a
        rs = [rec] if recs is None else recs
        img_pos = int(self.img[rec])
        self.seq += 1
        self.found.append(((img_pos, phase, int(self.pos[rec]), sub, self.seq),
                           Finding(kind, self.images[img_pos]["id"], [a.id[r] for r in rs],
                                   [a.category_id[r] for r in rs], [a.category[r] for r in rs],
                                   None if value is None else float(value), message, details)))

    def run(self) -> list:
        if self.n:
            self.read_fields()
            areas, mboxes, have = self.masks()
            keep = np.flatnonzero(have)
            if len(keep):
                boxes = self.single(keep, areas[keep].astype(np.int64), mboxes[keep])
                self.pairs(keep, areas[keep], boxes)
        self.found.sort(key=lambda kf: kf[0])
        return [f for _, f in self.found]

    # ---------------------------------------------------------------- fields

    def read_fields(self):
        """``self.field`` (n, 4) and ``self.has_field`` of the well-formed bbox fields,
        ``self.area_field`` (n,) of the area fields (NaN: none); a bad_record for the others
        (bbox first, then area, per annotation)."""
        n = self.n
        self.field = np.full((n, 4), np.nan)
        self.has_field = np.zeros(n, bool)
        self.area_field = np.full(n, np.nan)
        bad = []
        vals = self.a.bbox
        rows = np.arange(n) if None not in vals else \
            np.array([i for i, v in enumerate(vals) if v is not None], np.int64)
        if len(rows):
            if len(rows) < n:
                vals = [vals[i] for i in rows.tolist()]
            b = _numbers(vals, 4)
            ok = np.isfinite(b).all(1) & (b[:, 2] >= 0) & (b[:, 3] >= 0)
            self.field[rows[ok]] = b[ok]
            self.has_field[rows[ok]] = True
            for q in np.flatnonzero(~ok).tolist():
                v = vals[q]
                bad.append((int(rows[q]), 0, f"'bbox' is {v!r}, expected [x, y, width, height]: 4 "
                                             f"numbers, width and height not negative"))
        vals = self.a.area
        rows = np.arange(n) if None not in vals else \
            np.array([i for i, v in enumerate(vals) if v is not None], np.int64)
        if len(rows):
            if len(rows) < n:
                vals = [vals[i] for i in rows.tolist()]
            x = _numbers(vals, 0)
            ok = np.isfinite(x)
            self.area_field[rows[ok]] = x[ok]
            for q in np.flatnonzero(~ok).tolist():
                bad.append((int(rows[q]), 1, f"'area' is {vals[q]!r}, expected a number"))
        for rec, _, msg in sorted(bad, key=lambda t: t[:2]):
            self.add(rec, 0, 1 << 30, "bad_record", None, None, msg)

    # ---------------------------------------------------------------- masks

    def masks(self):
        """(areas uint32, boxes (n, 4), have) of every annotation's mask (``COCO.annToRLE``:
        each polygon or RLE segmentation); have: it has one, of its image's size. The masks
        themselves: with the compiled helpers, ``self.cnts``, ``self.offs`` (all runs in one
        array, mask k's at ``offs[k]:offs[k + 1]``) and ``self.mask_of`` (row -> k); without,
        ``self.counts`` (row -> counts string)."""
        n = self.n
        areas = np.zeros(n, np.uint32)
        boxes = np.zeros((n, 4), np.float64)
        have = np.zeros(n, bool)
        fast = self.fast
        if fast is None:
            self.counts = np.empty(n, object)
        found = []  # (rows, (cnts, offs) or counts strings)
        recs, xy, k, npts = self.read_polygons()
        if recs is not None and len(recs):
            self.check_parts(xy, k, npts)
            m, ar, bx = self.polygon_masks(recs)
            areas[recs], boxes[recs], have[recs] = ar, bx, True
            found.append((recs, m))
        for rows, ar, bx, m in self.rle_masks():
            areas[rows], boxes[rows], have[rows] = ar, bx, True
            found.append((rows, m))
        if fast is None:
            for rows, cs in found:
                for r, c in zip(rows.tolist(), cs):
                    self.counts[r] = c
        else:
            self.mask_of = np.full(n, -1, np.int64)
            at, cnts, offs = 0, [], [np.zeros(1, np.int64)]
            for rows, (c, o) in found:
                self.mask_of[rows] = np.arange(at, at + len(rows))
                offs.append(o[1:] + sum(len(x) for x in cnts))
                cnts.append(c)
                at += len(rows)
            self.cnts = np.concatenate(cnts) if cnts else np.empty(0, np.uint32)
            self.offs = np.concatenate(offs)
            self.mask_areas = np.zeros(at, np.uint32)
            self.mask_boxes = np.zeros((at, 4), np.float64)
            live = self.mask_of >= 0
            self.mask_areas[self.mask_of[live]] = areas[live]
            self.mask_boxes[self.mask_of[live]] = boxes[live]
        return areas, boxes, have

    def read_polygons(self):
        """The polygon parts of the shard: ``(recs, xy, part index, part points)``: the rows
        whose segmentation is a list (sorted), and the parts' coordinates one after the other
        in (row, index) order (their rows in ``self.part_rec``). The other segmentations: RLE dicts to
        ``self.rle_recs``; anything else a finding."""
        segs = self.a.segmentation
        if self.packed is not None:
            xy, lens, nparts = self.packed
            xy = xy.view(np.float64)  # (an unpickled array's dtype object: see check_shard)
        else:
            xy, lens, nparts = _coco.unpack_polygons(segs)
        nparts = np.asarray(nparts, np.int64)
        lens = np.asarray(lens, np.int64)
        sized = self.sized
        part_rec = np.repeat(np.arange(self.n), np.maximum(nparts, 0))
        first = np.cumsum(np.maximum(nparts, 0)) - np.maximum(nparts, 0)
        part_k = np.arange(len(part_rec)) - first[part_rec]
        self.rle_recs = []
        extra = []  # (rec, k, float64 coordinates) of the lists read part by part
        other = np.flatnonzero((nparts < 0) & sized).tolist()
        for rec in other:
            seg = segs[rec]
            if type(seg) is list:
                extra += self.read_parts(rec, seg)
            elif isinstance(seg, dict):
                self.rle_recs.append(rec)
            elif seg is not None:  # (a missing segmentation is a bad_record already)
                self.add(rec, 0, 0, "bad_segmentation", None, None,
                         f"segmentation is a {type(seg).__name__}, expected a list of "
                         f"polygons or an RLE object")
        poly = (nparts >= 0) & sized
        if other:
            for rec in other:
                if type(segs[rec]) is list:
                    poly[rec] = True
        recs = np.flatnonzero(poly)
        if not len(recs):
            return None, None, None, None
        keep = sized[part_rec]
        if extra or not keep.all():
            starts = np.cumsum(lens) - lens
            chunks = [xy[s:s + m] for s, m, good in zip(starts.tolist(), lens.tolist(), keep.tolist())
                      if good]
            rec_l = part_rec[keep].tolist() + [r for r, _, _ in extra]
            k_l = part_k[keep].tolist() + [k for _, k, _ in extra]
            chunks += [c for _, _, c in extra]
            order = np.lexsort((np.array(k_l, np.int64), np.array(rec_l, np.int64)))
            part_rec = np.array(rec_l, np.int64)[order]
            part_k = np.array(k_l, np.int64)[order]
            chunks = [chunks[i] for i in order.tolist()]
            lens = np.array([c.size for c in chunks], np.int64)
            xy = np.concatenate(chunks) if chunks else np.empty(0)
        self.part_rec = part_rec
        return recs, np.ascontiguousarray(xy, np.float64), part_k, lens // 2

    def read_parts(self, rec, seg) -> list:
        """The parts of a list segmentation that is not plain (``coco.unpack_polygons``),
        one by one, naming the bad ones."""
        out = []
        for k, part in enumerate(seg):
            try:
                xy = np.asarray(part, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                xy = None
            if xy is not None and xy.ndim == 1 and not xy.size % 2:
                out.append((rec, k, xy))  # (finiteness and magnitude: in check_parts)
            elif xy is None or xy.ndim != 1:
                self.non_numbers(rec, k, part)
            else:
                self.add(rec, 0, k, "degenerate_polygon", None, xy.size // 2,
                         f"polygon {k}: an odd number of coordinates ({xy.size}); it is skipped",
                         reason="odd coordinate count", polygon=k)
        return out

    def non_numbers(self, rec, k, part):
        n = len(part) // 2 if isinstance(part, list) else 0
        self.add(rec, 0, k, "degenerate_polygon", None, n,
                 f"polygon {k}: expected a flat list of (finite) numbers x0, y0, x1, y1, ...; it is "
                 f"skipped", reason="non-numbers", polygon=k)

    def check_parts(self, xy, part_k, n):
        """Non-finite or huge coordinates, fewer than 3 points, zero area, outside the image: one
        array pass over all parts (parts that cannot be rasterised are dropped). Leaves the
        parts to rasterise in ``self.xy``, ``self.part_*``."""
        rec_of, k_of = self.part_rec, part_k
        ok = np.abs(xy) < _MAX_COORD
        if not ok.all():
            owner = np.repeat(np.arange(len(n)), 2 * n)
            bad = np.unique(owner[~ok])
            starts = np.cumsum(2 * n) - 2 * n
            for j in bad.tolist():
                self.non_numbers(int(rec_of[j]), int(k_of[j]),
                                 xy[starts[j]:starts[j] + 2 * n[j]].tolist())
            keep = np.ones(len(n), bool)
            keep[bad] = False
            xy = xy[keep[owner]]
            rec_of, k_of, n = rec_of[keep], k_of[keep], n[keep]
        self.xy, self.part_rec, self.part_k, self.part_n = xy, rec_of, k_of, n
        for j in np.flatnonzero(n < 3).tolist():
            m = int(n[j])
            self.add(int(rec_of[j]), 0, int(k_of[j]), "degenerate_polygon", None, m,
                     f"polygon {k_of[j]}: {m} point{'s' if m != 1 else ''}, a polygon needs 3",
                     reason="fewer than 3 points", polygon=int(k_of[j]))
        live = np.flatnonzero(n > 0)
        if not len(live):
            return
        x, y = xy[0::2], xy[1::2]
        nl = n[live]
        starts = np.cumsum(nl) - nl
        nxt = np.arange(1, x.size + 1)
        nxt[starts[1:] - 1] = starts[:-1]
        nxt[-1] = starts[-1]
        area2 = np.add.reduceat(x * y[nxt] - y * x[nxt], starts)
        hw = self.hw[rec_of[live]].astype(np.float64)
        dist = np.maximum.reduce([-np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts) - hw[:, 1],
                                  -np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts) - hw[:, 0],
                                  np.zeros(len(live))])
        for q in np.flatnonzero((np.abs(area2) < 2e-6) & (nl >= 3)).tolist():
            j = live[q]
            self.add(int(rec_of[j]), 0, int(k_of[j]), "degenerate_polygon", None, nl[q],
                     f"polygon {k_of[j]}: zero area (all {nl[q]} points on one line)",
                     reason="zero area", polygon=int(k_of[j]))
        for q in np.flatnonzero(dist > self.p.outside_tolerance).tolist():
            j = live[q]
            h, w = self.hw[rec_of[j]].tolist()
            self.add(int(rec_of[j]), 0, int(k_of[j]), "outside_image", None, dist[q],
                     f"polygon {k_of[j]}: reaches {dist[q]:.1f} px outside the {w}x{h} image",
                     polygon=int(k_of[j]))

    def polygon_masks(self, recs):
        """(masks, areas, boxes) of the polygon rows ``recs`` (as ``COCO.annToRLE``: the union
        of its parts; none left: the empty mask); masks: ``(cnts, offs)`` from the compiled
        helper, else the counts strings."""
        sizes = np.ascontiguousarray(self.hw[recs])
        owner = np.searchsorted(recs, self.part_rec)
        areas = np.empty(len(recs), np.uint32)
        boxes = np.empty((len(recs), 4), np.float64)
        n = self.part_n
        starts = np.cumsum(2 * n) - 2 * n
        if self.fast is not None:
            m = self.fast.check_polygon_masks(self.xy, starts, n, owner, sizes, areas, boxes)
            return m, areas, boxes
        parts = [self.xy[s:s + 2 * m] for s, m in zip(starts.tolist(), n.tolist())]
        part_rle = [None] * len(parts)
        by_size: dict = {}
        for j, hw in enumerate(map(tuple, sizes[owner].tolist())):
            by_size.setdefault(hw, []).append(j)
        for (h, w), js in by_size.items():
            got = _dispatch.call_host("rle_from_polygons", [parts[j] for j in js], h, w, "segmentation")
            for j, r in zip(js, got):
                part_rle[j] = r
        per: list = [[] for _ in recs]
        for j, o in enumerate(owner.tolist()):
            per[o].append(part_rle[j])
        counts = []
        for (h, w), rs in zip(sizes.tolist(), per):
            if len(rs) == 1:
                counts.append(rs[0])
            elif rs:
                counts.append(_dispatch.call_host("rle_merge", rs, np.array([[h, w]] * len(rs), np.int64),
                                                  False, "segmentation"))
            else:
                counts.append(_rle.from_segmentation([], h, w)["counts"])
        if counts:
            _dispatch.call_host("rle_area", counts, sizes, areas, "masks")
            _dispatch.call_host("rle_to_bbox", counts, sizes, boxes, "masks")
        return counts, areas, boxes

    def rle_masks(self) -> list:
        """[(rows, areas, boxes, masks)] of the RLE segmentations (checked; a wrong size leaves
        one out); masks as ``polygon_masks`` gives them. With the compiled helpers, compressed
        ones are unpacked, parsed and measured in one call; the others (or a batch with a bad
        one) go through ``rle_checked``."""
        recs, out = self.rle_recs, []
        if not recs:
            return out
        fast, segs = self.fast, self.a.segmentation
        if fast is not None:
            comp = [r for r in recs if type(segs[r].get("counts")) in (str, bytes)]
            got = self.rle_compressed(comp) if comp else None
            if got is not None:
                out.append(got)
                done = set(comp)
                recs = [r for r in recs if r not in done]
        found = self.rle_checked(recs)
        if found:
            rows = np.array([r for r, _ in found], np.int64)
            cs = [c for _, c in found]
            sizes = np.ascontiguousarray(self.hw[rows])
            if fast is not None:
                cnts, offs, ar, bx = fast.check_rle_masks(cs, sizes)
                out.append((rows, ar, bx, (cnts, offs)))
            else:
                ar = np.empty(len(rows), np.uint32)
                _dispatch.call_host("rle_area", cs, sizes, ar, "masks")
                bx = np.empty((len(rows), 4), np.float64)
                _dispatch.call_host("rle_to_bbox", cs, sizes, bx, "masks")
                out.append((rows, ar, bx, cs))
        return out

    def rle_compressed(self, comp):
        """``rle_masks``' entry for the rows ``comp`` (compressed counts) in one call, or None
        when one is not the plain form or is malformed (``rle_checked`` names it)."""
        up = _rle._unpacker()
        got = up([self.a.segmentation[r] for r in comp]) if up is not None else None
        if got is None:
            return None
        counts, sizes = got
        try:
            cnts, offs, ar, bx = self.fast.check_rle_masks(counts, sizes)
        except ValueError:
            return None
        rows = np.array(comp, np.int64)
        bad = (sizes != self.hw[rows]).any(1)
        if bad.any():
            for q in np.flatnonzero(bad).tolist():
                self.size_mismatch(comp[q], sizes[q].tolist())
            keep = np.flatnonzero(~bad)
            lens = np.diff(offs)[keep]
            ends = np.cumsum(lens)
            cnts = cnts[np.repeat(offs[keep] - (ends - lens), lens) + np.arange(int(ends[-1]) if len(ends) else 0)]
            offs = np.concatenate([[0], ends]).astype(np.int64)
            rows, ar, bx = rows[keep], ar[keep], bx[keep]
        return rows, ar, bx, (cnts, offs)

    def rle_checked(self, recs) -> list:
        """[(rec, counts)] of RLE segmentations, checked (a wrong size leaves it out).
        Compressed strings are validated in one call; anything else, or a batch with a bad
        string in it, goes through ``rle.from_segmentation`` one by one to name the bad ones."""
        out, slow, fast = [], [], []
        segs = self.a.segmentation
        for rec in recs:
            seg = segs[rec]
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
                out = []
                slow += [rec for rec, _ in fast]
        slow.sort()
        if len(slow) > 1:  # (uncompressed crowd regions) all at once, unless one is bad
            try:
                cs, sizes = _rle._rles([segs[rec] for rec in slow], "segmentation")
                _dispatch.call_host("rle_area", cs, sizes, np.empty(len(cs), np.uint32), "segmentation")
            except (ValueError, TypeError):
                cs = None
            if cs is not None:
                for rec, c, (h, w) in zip(slow, cs, sizes.tolist()):
                    self.rle_mask(rec, {"size": [h, w], "counts": c}, out)
                slow = []
        for rec in slow:
            try:
                r = _rle.from_segmentation(segs[rec], 0, 0)
            except (ValueError, TypeError) as e:
                self.add(rec, 0, 0, "bad_segmentation", None, None, f"RLE segmentation: {e}")
                continue
            self.rle_mask(rec, r, out)
        return out

    def rle_mask(self, rec, r, out):
        if list(r["size"]) != self.hw[rec].tolist():
            self.size_mismatch(rec, r["size"])
        else:
            out.append((rec, r["counts"]))

    def size_mismatch(self, rec, size):
        h, w = self.hw[rec].tolist()
        self.add(rec, 0, 0, "rle_size_mismatch", None, None,
                 f"RLE size {size} differs from the image's [height, width] [{h}, {w}]; "
                 f"the mask is left out of the checks", size=size, image_size=[h, w])

    # ---------------------------------------------------------------- findings

    def single(self, keep, areas, mboxes) -> np.ndarray:
        """Findings about each mask against its own fields; returns the boxes the pair check
        uses (the bbox field, or the mask's box where the field is missing or bad)."""
        p = self.p
        has = self.has_field[keep]
        boxes = np.where(has[:, None], self.field[keep], mboxes)
        own = _box_iou_pairs(mboxes, boxes)
        af = self.area_field[keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = np.abs(af - areas)
            rel = diff / areas
        bad_area = (rel > p.area_tolerance) & (diff > p.area_min_pixels)
        flag = (areas < p.min_area) | (has & (own < p.bbox_min_iou)) | bad_area
        for q in np.flatnonzero(flag).tolist():
            rec, area = int(keep[q]), int(areas[q])
            if area == 0:
                self.add(rec, 1, 0, "empty_mask", None, 0, "the mask has no pixel")
                continue
            if area < p.min_area:
                self.add(rec, 1, 1, "tiny_mask", None, area,
                         f"the mask has {area} pixel{'s' if area != 1 else ''} (fewer than "
                         f"{p.min_area})")
            if has[q] and own[q] < p.bbox_min_iou:
                mb, fb = mboxes[q].tolist(), self.field[rec].tolist()
                self.add(rec, 1, 2, "bbox_mismatch", None, own[q],
                         f"the mask's box {np.round(mb, 1).tolist()} has IoU {own[q]:.3f} with the "
                         f"bbox field {fb}", mask_bbox=mb, bbox=fb)
            if bad_area[q]:
                self.add(rec, 1, 3, "area_mismatch", None, rel[q],
                         f"area field {af[q]:g} vs {area} mask pixels", area_field=float(af[q]),
                         mask_area=area)
        return boxes

    def categories(self) -> np.ndarray:
        """A code per row, equal for equal category ids."""
        cids = self.a.category_id
        try:
            c = np.array(cids)
            if c.ndim == 1 and c.dtype.kind in "iu" and len(c) == self.n:
                return c
        except (TypeError, ValueError, OverflowError):
            pass
        codes: dict = {}
        return np.array([codes.setdefault(c, len(codes)) for c in cids], np.int64)

    def pairs(self, keep, areas, boxes):
        """Same-class and cross-class pairs, and crowd coverage, per image (mask IoU as
        ``rle.iou`` gives it), all pairs of the shard on one array."""
        img = self.img[keep]
        crowd = self.a.iscrowd[keep]
        live = areas > 0
        inst = np.flatnonzero(live & (crowd == 0))  # positions in keep, grouped by image
        nimg = len(self.images)
        gb = np.searchsorted(img[inst], np.arange(nimg + 1))  # image i: inst[gb[i]:gb[i + 1]]
        k = np.diff(gb)
        # every pair i < j of each image's instances, row-major per image
        c = np.repeat(gb[1:], k) - np.arange(len(inst)) - 1  # each one's later partners
        total = int(c.sum())
        if total:
            rows = np.repeat(np.arange(len(inst)), c)
            gj = np.arange(total) - np.repeat(np.cumsum(c) - c, c) + rows + 1
            gi, gj = inst[rows], inst[gj]
            mi = self.pair_ious(keep, gi, gj, inst, gb, k)
            bi = _box_iou_pairs(boxes[gi], boxes[gj])
            cat = self.categories()[keep]
            same = cat[gi] == cat[gj]
            for q in np.flatnonzero((mi > self.p.iou) | (same & (bi > self.p.box_iou))).tolist():
                self.pair(int(keep[gi[q]]), int(keep[gj[q]]), float(mi[q]), float(bi[q]))
        crd = np.flatnonzero(live & (crowd == 1))
        if len(crd):
            cb = np.searchsorted(img[crd], np.arange(nimg + 1))
            both = np.flatnonzero((np.diff(cb) > 0) & (k > 0)).tolist()
            if self.fast is None:
                for i in both:
                    self.crowds(keep, inst[gb[i]:gb[i + 1]].tolist(), crd[cb[i]:cb[i + 1]].tolist())
            elif both:
                xs = [np.repeat(inst[gb[i]:gb[i + 1]], cb[i + 1] - cb[i]) for i in both]
                ys = [np.tile(crd[cb[i]:cb[i + 1]], gb[i + 1] - gb[i]) for i in both]
                xs, ys = np.concatenate(xs), np.concatenate(ys)
                ioa = self.kernel_ious(keep[xs], keep[ys], True)
                for q in np.flatnonzero(ioa > self.p.iou).tolist():
                    self.crowd(int(keep[xs[q]]), int(keep[ys[q]]), float(ioa[q]))

    def kernel_ious(self, rx, ry, crowd: bool):
        """``check_pair_ious`` of rows rx[p], ry[p] (crowd: over the area of rx[p])."""
        fx, fy = self.mask_of[rx], self.mask_of[ry]
        out = np.empty(len(fx), np.float64)
        self.fast.check_pair_ious(self.cnts, self.offs, self.mask_areas, self.mask_boxes, fx, fy,
                                  np.full(len(fx), crowd, np.uint8), out)
        return out

    def pair_ious(self, keep, gi, gj, inst, gb, k):
        """Mask IoU of the pairs (gi, gj) (positions in keep: every pair of each image's
        instances, in ``pairs``' order)."""
        if self.fast is not None:
            return self.kernel_ious(keep[gi], keep[gj], False)
        out = []
        for i in np.flatnonzero(k > 1).tolist():
            rows = keep[inst[gb[i]:gb[i + 1]]]
            m = np.empty((len(rows), len(rows)), np.float64)
            cc = self.counts[rows].tolist()
            s = np.ascontiguousarray(self.hw[rows])
            _dispatch.call_host("rle_iou", cc, s, cc, s, None, m)  # (one list: parsed once)
            out.append(m[_triu(len(rows))])
        return np.concatenate(out)

    def pair(self, rx, ry, mv, bv):
        a, p = self.a, self.p
        sub = int(self.pos[ry])
        cx, cy = a.category[rx], a.category[ry]
        if a.category_id[rx] != a.category_id[ry]:
            self.add(rx, 2, sub, "cross_class_overlap", [rx, ry], mv,
                     f"{cx} and {cy} on the same pixels: mask IoU {mv:.3f}",
                     mask_iou=mv, box_iou=bv)
        elif mv >= p.duplicate_iou:
            self.add(rx, 2, sub, "duplicate", [rx, ry], mv,
                     f"two {cx} annotations with near-identical masks: mask IoU "
                     f"{mv:.3f}", mask_iou=mv, box_iou=bv)
        elif mv > p.iou:
            self.add(rx, 2, sub, "mask_overlap", [rx, ry], mv,
                     f"two {cx} masks overlap: mask IoU {mv:.3f}", mask_iou=mv, box_iou=bv)
        else:
            self.add(rx, 2, sub, "box_overlap", [rx, ry], bv,
                     f"two {cx} boxes overlap: box IoU {bv:.3f} (mask IoU {mv:.3f})",
                     mask_iou=mv, box_iou=bv)

    def crowds(self, keep, inst, crowd):
        """Crowd regions covering non-crowd instances of their class in one image
        (pycocotools' crowd IoU: intersection over the instance's area)."""
        ioa = np.empty((len(inst), len(crowd)), np.float64)
        ri, rc = keep[inst], keep[crowd]
        _dispatch.call_host("rle_iou", self.counts[ri].tolist(), np.ascontiguousarray(self.hw[ri]),
                            self.counts[rc].tolist(), np.ascontiguousarray(self.hw[rc]),
                            np.ones(len(crowd), np.uint8), ioa)
        for r, c in zip(*np.nonzero(ioa > self.p.iou)):
            self.crowd(int(ri[r]), int(rc[c]), float(ioa[r, c]))

    def crowd(self, rx, ry, v):
        a = self.a
        if a.category_id[rx] == a.category_id[ry]:
            self.add(rx, 3, int(self.pos[ry]), "crowd_overlap", [rx, ry], v,
                     f"{a.category[rx]} instance {a.id[rx]} lies {v:.0%} inside crowd region "
                     f"{a.id[ry]}", ioa=v)


def _compiled():
    """fastiou._C while it is the host backend of the RLE ops (its batched helpers then do the
    work of a shard in one call each); None otherwise."""
    try:
        name, mod = _dispatch._host_backend("rle_iou")
    except RuntimeError:
        return None
    return mod if name == "cpp" and hasattr(mod, "check_polygon_masks") else None


def check_image(image: dict, anns: list, p: Params) -> list:
    """Findings of one image (``image`` and ``anns`` as ``coco.index`` slims them)."""
    return _Shard(_coco.Shard([image], np.array([0, len(anns)], np.int64),
                              _coco.Anns.from_slim(anns)), p).run()


def check_shard(shard, params: dict) -> list:
    """Findings of one shard (a ``coco.Shard``, packed or not; or ``[(image, anns), ...]`` with
    slim annotation dicts): the unit of work of every engine."""
    with _no_gc():
        if not isinstance(shard, _coco.Shard):
            images = [im for im, _ in shard]
            anns = [a for _, group in shard for a in group]
            bounds = np.concatenate([[0], np.cumsum([len(g) for _, g in shard])]).astype(np.int64)
            shard = _coco.Shard(images, bounds, _coco.Anns.from_slim(anns))
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
