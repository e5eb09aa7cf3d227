"""Reading a COCO instances file for ``check``: the records, checked, and grouped per image.

Everything here runs where ``check`` is called (the client): it validates the top-level records
(images, categories, annotation keys and ids), keeps the annotations as columns grouped by
image (``Anns``: one list per field the per-image check reads, no dict per annotation) and hands
out the per-image work in shards (``Shard``: consecutive images and their rows). Well-formed
records are read a list at a time (in C++ with the compiled extension); the per-record reader,
which names each fault, runs only for a file with a faulty record. The input is read, never
written.
"""

from __future__ import annotations

import json
import numbers
import operator
import os
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

import numpy as np

from .findings import Finding


class UnusableInput(ValueError):
    """The input cannot be checked at all (a missing file, invalid JSON, not a COCO object)."""


def _is_id(v) -> bool:
    t = type(v)
    if t is int or t is str:  # the usual JSON values, without the slower ABC check
        return True
    return (isinstance(v, numbers.Integral) and t is not bool) or isinstance(v, str)


def _is_size(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0


def load(coco, expect: type = dict) -> tuple[dict, str]:
    """``(dataset dict, source name)`` from a path or an already loaded dict.

    ``expect=list``: a COCO results file (a JSON list of predictions), as ``fastiou sweep`` reads.
    """
    if isinstance(coco, expect):
        return coco, f"<{expect.__name__}>"
    if not isinstance(coco, (str, os.PathLike)):
        raise TypeError(f"coco: expected a path or a COCO {expect.__name__}, got {type(coco).__name__}")
    path = os.fspath(coco)
    try:
        with open(path, "rb") as f:  # read only
            raw = f.read()
    except FileNotFoundError:
        raise UnusableInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnusableInput(f"{path}: is a directory, expected a COCO annotations JSON file") from None
    except OSError as e:
        raise UnusableInput(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as e:
        raise UnusableInput(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UnusableInput(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") \
            from None
    except RecursionError:
        raise UnusableInput(f"{path}: not valid JSON: nested too deeply") from None
    if expect is list and not isinstance(data, list):
        raise UnusableInput(f"{path}: expected a JSON list of predictions (the COCO results "
                            f"format), got a JSON {type(data).__name__}")
    if expect is dict and not isinstance(data, dict):
        hint = ""
        if isinstance(data, list) and data and isinstance(data[0], dict) and "score" in data[0]:
            hint = " (a list of scored detections: a results file, not a COCO instances file)"
        raise UnusableInput(f"{path}: expected a JSON object with 'images', 'annotations' and "
                            f"'categories', got a JSON {type(data).__name__}{hint}")
    return data, path


class Anns(NamedTuple):
    """Annotations as columns (one list per field, ``iscrowd`` an int8 array): what the
    per-image check reads of each, without a dict per annotation."""

    id: list
    category_id: list
    category: list          # the category's name ("?" for an unknown category id)
    iscrowd: np.ndarray     # int8, 0 or 1
    segmentation: list
    bbox: list
    area: list

    def slice(self, lo: int, hi: int) -> "Anns":
        return Anns(*(c[lo:hi] for c in self))

    def slim(self, i: int) -> dict:
        """Annotation ``i`` as a dict (the keys ``check_image`` takes)."""
        return {"id": self.id[i], "category_id": self.category_id[i], "category": self.category[i],
                "iscrowd": int(self.iscrowd[i]), "segmentation": self.segmentation[i],
                "bbox": self.bbox[i], "area": self.area[i]}

    @classmethod
    def from_slim(cls, anns) -> "Anns":
        return cls([a["id"] for a in anns], [a["category_id"] for a in anns],
                   [a.get("category", "?") for a in anns],
                   np.array([a.get("iscrowd", 0) for a in anns], np.int8).reshape(-1),
                   [a.get("segmentation") for a in anns], [a.get("bbox") for a in anns],
                   [a.get("area") for a in anns])


class Shard(NamedTuple):
    """Consecutive images and their annotations (grouped by image, in input order): the unit of
    work of every engine. ``bounds`` (int64, one more than images): image i's annotations are
    rows ``bounds[i]:bounds[i + 1]`` of ``anns``. ``packed``: None, or the polygons already read
    (``pack``): ``(coordinates, coordinates per part, parts per annotation)``, the annotations
    with parts >= 0 having None for their segmentation."""

    images: list
    bounds: np.ndarray
    anns: Anns
    packed: tuple | None = None


@dataclass
class Index:
    """The dataset, checked and grouped: what the per-image work needs."""

    images: list = field(default_factory=list)        # slim image dicts, in input order
    anns: Anns = None                                   # every placed annotation, grouped by image
    bounds: np.ndarray = None                           # image i: anns rows bounds[i]:bounds[i + 1]
    categories: dict = field(default_factory=dict)    # id -> name
    findings: list = field(default_factory=list)      # record-level findings
    n_annotations: int = 0

    @property
    def per_image(self) -> list:
        """Slim annotation dicts per image (as ``check_image`` takes them)."""
        b = self.bounds.tolist()
        return [[self.anns.slim(i) for i in range(b[k], b[k + 1])] for k in range(len(self.images))]


def _bad(kind, message, image_id=None, ann_id=None, cat_id=None, names=None) -> Finding:
    ids = [] if ann_id is None else [ann_id]
    cats = [] if ann_id is None else [cat_id]
    return Finding(kind, image_id, ids, cats, [] if ann_id is None else [names or "?"], None, message)


def _list(data, key, out) -> list:
    v = data.get(key)
    if isinstance(v, list):
        return v
    what = "is missing" if key not in data else f"is a {type(v).__name__}, expected a list"
    out.append(_bad("bad_record", f"the top-level key '{key}' {what}; read as an empty list"))
    return []


def _categories(data, out) -> dict:
    cats = {}
    for i, c in enumerate(_list(data, "categories", out)):
        if not isinstance(c, dict) or not _is_id(c.get("id")):
            out.append(_bad("bad_record", f"categories[{i}]: expected an object with an integer 'id'"))
            continue
        if c["id"] in cats:
            out.append(_bad("duplicate_id", f"categories[{i}]: category id {c['id']!r} used twice; "
                                            f"the first one is kept"))
            continue
        name = c.get("name")
        cats[c["id"]] = name if isinstance(name, str) else f"category {c['id']}"
    return cats


_IMAGE_KEYS = operator.itemgetter("id", "height", "width")


def _images_fast(ims) -> tuple[list, dict] | None:
    """``_images`` when every image record is well formed (a dict with a unique int id and
    int height and width > 0): a few passes over the list. None otherwise."""
    if not ims:
        return None
    try:
        ids, hs, ws = map(list, zip(*map(_IMAGE_KEYS, ims)))
        names = [im.get("file_name") for im in ims]
    except (TypeError, KeyError, IndexError, AttributeError):
        return None
    if set(map(type, ids)) != {int} or set(map(type, hs)) != {int} or set(map(type, ws)) != {int} \
            or min(hs) <= 0 or min(ws) <= 0 or len(set(ids)) != len(ids):
        return None
    images = [{"id": i, "height": h, "width": w, "file_name": f} for i, h, w, f in zip(ids, hs, ws, names)]
    return images, dict(zip(ids, range(len(ids))))


def _images(data, out) -> tuple[list, dict]:
    ims = _list(data, "images", out)
    fast = _images_fast(ims)
    if fast is not None:
        return fast
    images, pos = [], {}
    for i, im in enumerate(ims):
        if not isinstance(im, dict) or not _is_id(im.get("id")):
            out.append(_bad("bad_record", f"images[{i}]: expected an object with an integer 'id'"))
            continue
        iid = im["id"]
        if iid in pos:
            out.append(_bad("duplicate_id", f"images[{i}]: image id {iid!r} used twice; the first "
                                            f"one is kept", image_id=iid))
            continue
        h, w = im.get("height"), im.get("width")
        slim = {"id": iid, "height": h, "width": w, "file_name": im.get("file_name")}
        if not (_is_size(h) and _is_size(w)):
            out.append(_bad("bad_record", f"image {iid!r}: 'height' and 'width' must be positive "
                                          f"integers, got {h!r} and {w!r}; its polygons cannot be "
                                          f"rasterised", image_id=iid))
            slim["height"] = slim["width"] = None
        pos[iid] = len(images)
        images.append(slim)
    return images, pos


_ANN_KEYS = ("id", "image_id", "category_id", "segmentation")


def _annotation(i, a, pos, cats, seen, out):
    """The slim annotation dict and the index of its image, or None when it cannot be placed."""
    if type(a) is dict:  # the well-formed record, at the cost of a few lookups
        aid, iid, cid = a.get("id"), a.get("image_id"), a.get("category_id")
        crowd = a.get("iscrowd", 0)
        if type(aid) is int and type(iid) is int and type(cid) is int and aid not in seen \
                and iid in pos and cid in cats and "segmentation" in a \
                and (crowd == 0 or crowd == 1) and type(crowd) is not float:
            seen.add(aid)
            return {"id": aid, "category_id": cid, "category": cats[cid], "iscrowd": int(crowd),
                    "segmentation": a["segmentation"], "bbox": a.get("bbox"),
                    "area": a.get("area")}, pos[iid]
    return _annotation_checked(i, a, pos, cats, seen, out)


def _annotation_checked(i, a, pos, cats, seen, out):
    """``_annotation`` for a record that breaks a rule: each fault named, what can be kept kept."""
    if not isinstance(a, dict):
        out.append(_bad("bad_record", f"annotations[{i}]: expected an object, got a "
                                      f"{type(a).__name__}"))
        return None
    aid, iid, cid = a.get("id"), a.get("image_id"), a.get("category_id")
    name = cats.get(cid, "?")
    if not _is_id(aid):
        out.append(_bad("bad_record", f"annotations[{i}]: 'id' is {'missing' if 'id' not in a else repr(aid)}"
                                      f", expected an integer; the annotation is skipped",
                        image_id=iid if _is_id(iid) else None))
        return None
    if aid in seen:
        out.append(_bad("duplicate_id", f"annotations[{i}]: annotation id {aid!r} used twice (both "
                                        f"are checked)", iid if _is_id(iid) else None, aid, cid, name))
    seen.add(aid)
    if not _is_id(iid) or iid not in pos:
        what = "is missing" if "image_id" not in a else f"{iid!r} is not in images"
        out.append(_bad("unknown_image", f"annotations[{i}]: image_id {what}; the annotation is "
                                         f"skipped", None, aid, cid, name))
        return None
    if not _is_id(cid) or cid not in cats:
        what = "is missing" if "category_id" not in a else f"{cid!r} is not in categories"
        out.append(_bad("unknown_category", f"category_id {what}", iid, aid, cid, name))
    missing = [k for k in _ANN_KEYS if k not in a]
    if missing:
        out.append(_bad("bad_record", f"missing key{'s' if len(missing) > 1 else ''} "
                                      f"{', '.join(repr(k) for k in missing)}", iid, aid, cid, name))
    crowd = a.get("iscrowd", 0)
    if not (isinstance(crowd, (int, float)) and crowd in (0, 1)):
        out.append(_bad("bad_record", f"'iscrowd' is {crowd!r}, expected 0 or 1; read as "
                                      f"{int(bool(crowd))}", iid, aid, cid, name))
    slim = {"id": aid, "category_id": cid, "category": name, "iscrowd": int(bool(crowd)),
            "segmentation": a.get("segmentation"), "bbox": a.get("bbox"), "area": a.get("area")}
    return slim, pos[iid]


_NEEDED_KEYS = operator.itemgetter("id", "image_id", "category_id", "segmentation")
_ALL_KEYS = operator.itemgetter("id", "image_id", "category_id", "segmentation", "iscrowd", "bbox", "area")


def _placed_fast(anns, pos, cats):
    """``(image position per annotation, Anns)`` when every annotation is well formed (a dict
    with int id, image_id and category_id, ids unique, image and category known, a
    segmentation, iscrowd 0 or 1 as an int or bool): a few passes over the list, no dict
    made. None otherwise (then ``_annotation`` reads each one and names the faults)."""
    if not anns:
        return np.empty(0, np.int64), Anns([], [], [], np.empty(0, np.int8), [], [], [])
    fn = _compiled_helper("check_annotations")
    if fn is not None and type(anns) is list and type(pos) is dict and type(cats) is dict:
        got = fn(anns, pos, cats)  # (one pass over the records, in C++)
        if got is None:
            return None
        img, idv, ids, cids, names, crowd, segs, bbox, area = got
        if not (np.diff(idv) > 0).all() and len(np.unique(idv)) != len(idv):  # (ids repeat)
            return None
        return img, Anns(ids, cids, names, crowd, segs, bbox, area)
    try:
        try:  # (every key in every record, as in COCO files: one C-level pass)
            ids, iids, cids, segs, crowd, bbox, area = map(list, zip(*map(_ALL_KEYS, anns)))
        except KeyError:
            ids, iids, cids, segs = map(list, zip(*map(_NEEDED_KEYS, anns)))
            crowd = [a.get("iscrowd", 0) for a in anns]
            bbox = [a.get("bbox") for a in anns]
            area = [a.get("area") for a in anns]
    except (TypeError, KeyError, AttributeError, IndexError):
        return None
    if set(map(type, ids)) != {int} or set(map(type, iids)) != {int} or \
            set(map(type, cids)) != {int} or not set(map(type, crowd)) <= {int, bool} or \
            len(set(ids)) != len(ids):
        return None
    img = list(map(pos.get, iids))
    names = list(map(cats.get, cids))
    if None in img or None in names:
        return None
    c = np.array(crowd, np.int64)
    if ((c != 0) & (c != 1)).any():
        return None
    return np.array(img, np.int64), Anns(ids, cids, names, c.astype(np.int8), segs, bbox, area)


def index(data: dict) -> Index:
    """Checks the records of a loaded COCO dict and groups the annotations per image."""
    out: list[Finding] = []
    cats = _categories(data, out)
    images, pos = _images(data, out)
    anns = _list(data, "annotations", out)
    got = _placed_fast(anns, pos, cats)
    if got is None:  # some record breaks a rule: each one read and its faults named
        seen: set = set()
        img, slim = [], []
        for i, a in enumerate(anns):
            one = _annotation(i, a, pos, cats, seen, out)
            if one is not None:
                slim.append(one[0])
                img.append(one[1])
        got = np.array(img, np.int64), Anns.from_slim(slim)
    img, cols = got
    counts = np.bincount(img, minlength=len(images)) if len(img) else np.zeros(len(images), np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if len(img) and (np.diff(img) < 0).any():  # group by image, input order within an image
        order = np.argsort(img, kind="stable")
        take = order.tolist()
        cols = Anns(*([c[i] for i in take] for c in cols[:3]), cols.iscrowd[order],
                    *([c[i] for i in take] for c in cols[4:]))
    for k in np.flatnonzero(counts == 0).tolist():
        out.append(Finding("no_annotations", images[k]["id"], [], [], [], None,
                           "image without any annotation"))
    return Index(images, cols, bounds, cats, out, len(anns))


def unpack_polygons(segs: list) -> tuple:
    """``(coordinates float64, coordinates per part int64, parts per segmentation int64)`` of a
    list of segmentations: the parts of each plain polygon segmentation (a list of lists, each
    an even number of floats or ints) in order; -1 parts for any other item, which the caller
    reads itself. One C++ pass (``fastiou._C.check_polygons_unpack``: input handling only,
    whichever backend runs the kernels), or the same in Python without the extension."""
    fn = _compiled_helper("check_polygons_unpack")
    if fn is not None:
        return fn(segs)
    nparts = np.full(len(segs), -1, np.int64)
    lens, plain = [], []
    for i, s in enumerate(segs):
        if type(s) is list and all(type(p) is list and not len(p) % 2 and
                                   all(type(v) is float or (type(v) is int and abs(v) < 1e300)
                                       for v in p) for p in s):
            nparts[i] = len(s)
            lens += [len(p) for p in s]
            plain.append(s)
    xy = np.fromiter(chain.from_iterable(chain.from_iterable(plain)), np.float64, count=sum(lens))
    return xy, np.array(lens, np.int64), nparts


_HELPERS: dict = {}


def _compiled_helper(name: str):
    """fastiou._C's input-handling helper ``name`` for ``check``, None without the extension."""
    fn = _HELPERS.get(name, False)
    if fn is False:
        try:
            from .. import _C
            fn = getattr(_C, name, None)
        except ImportError:
            fn = None
        _HELPERS[name] = fn
    return fn


def pack(shard: Shard) -> Shard:
    """A shard made cheap to send to another process: the polygons read into one float64 array
    (unpickling a million Python floats costs more than checking them), their segmentations
    replaced by None (``Shard.packed``)."""
    if shard.packed is not None:
        return shard
    a = shard.anns
    xy, lens, nparts = unpack_polygons(a.segmentation)
    segs = [None if k >= 0 else s for s, k in zip(a.segmentation, nparts.tolist())]
    return shard._replace(anns=a._replace(segmentation=segs), packed=(xy, lens, nparts))


def shards(idx: Index, size: int) -> list:
    """Consecutive ranges of images with their annotations: ``[(start, Shard), ...]``."""
    size = max(1, int(size))
    out, b = [], idx.bounds
    for s in range(0, len(idx.images), size):
        e = min(s + size, len(idx.images))
        out.append((s, Shard(idx.images[s:e], b[s:e + 1] - b[s], idx.anns.slice(int(b[s]), int(b[e])))))
    return out
