"""Reading a COCO instances file for ``check``: the records, checked, and grouped per image.

Everything here runs where ``check`` is called (the client): it validates the top-level records
(images, categories, annotation keys and ids) and hands out the per-image work in shards, each a
list of ``(image, annotations)`` with only the keys the per-image check reads. The input is read,
never written.
"""

from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass, field
from itertools import chain

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


def load(coco) -> tuple[dict, str]:
    """``(dataset dict, source name)`` from a path or an already loaded dict."""
    if isinstance(coco, dict):
        return coco, "<dict>"
    if not isinstance(coco, (str, os.PathLike)):
        raise TypeError(f"coco: expected a path or a COCO dict, got {type(coco).__name__}")
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
    if not isinstance(data, dict):
        hint = ""
        if isinstance(data, list) and data and isinstance(data[0], dict) and "score" in data[0]:
            hint = " (a list of scored detections: a results file, not a COCO instances file)"
        raise UnusableInput(f"{path}: expected a JSON object with 'images', 'annotations' and "
                            f"'categories', got a JSON {type(data).__name__}{hint}")
    return data, path


@dataclass
class Index:
    """The dataset, checked and grouped: what the per-image work needs."""

    images: list = field(default_factory=list)        # slim image dicts, in input order
    per_image: list = field(default_factory=list)     # slim annotation dicts per image
    categories: dict = field(default_factory=dict)    # id -> name
    findings: list = field(default_factory=list)      # record-level findings
    n_annotations: int = 0


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


def _images(data, out) -> tuple[list, dict]:
    images, pos = [], {}
    for i, im in enumerate(_list(data, "images", out)):
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


def index(data: dict) -> Index:
    """Checks the records of a loaded COCO dict and groups the annotations per image."""
    out: list[Finding] = []
    cats = _categories(data, out)
    images, pos = _images(data, out)
    per_image: list[list] = [[] for _ in images]
    seen: set = set()
    anns = _list(data, "annotations", out)
    for i, a in enumerate(anns):
        got = _annotation(i, a, pos, cats, seen, out)
        if got is not None:
            per_image[got[1]].append(got[0])
    for im, group in zip(images, per_image):
        if not group:
            out.append(Finding("no_annotations", im["id"], [], [], [], None,
                               "image without any annotation"))
    return Index(images, per_image, cats, out, len(anns))


def pack(shard) -> tuple:
    """A shard made cheap to send to another process: the polygon coordinates of its
    annotations in one float64 array, each polygon segmentation replaced by the tuple
    ``("packed", start, part lengths)`` (unpickling a million Python floats costs more than
    checking them). Segmentations that are not lists of flat number lists stay as they are."""
    out, chunks, start = [], [], 0
    for image, anns in shard:
        slim = []
        for a in anns:
            seg = a["segmentation"]
            if type(seg) is list and seg and all(type(p) is list and not len(p) % 2 for p in seg):
                lens = [len(p) for p in seg]
                try:
                    xy = np.fromiter(chain.from_iterable(seg), np.float64, count=sum(lens))
                except (TypeError, ValueError):
                    xy = None
                if xy is not None:
                    chunks.append(xy)
                    a = {**a, "segmentation": ("packed", start, lens)}
                    start += xy.size
            slim.append(a)
        out.append((image, slim))
    return out, (np.concatenate(chunks) if chunks else np.empty(0))


def shards(idx: Index, size: int) -> list:
    """Consecutive ranges of images with their annotations: ``[(start, [(image, anns), ...])]``."""
    size = max(1, int(size))
    pairs = list(zip(idx.images, idx.per_image))
    return [(s, pairs[s:s + size]) for s in range(0, len(pairs), size)]
