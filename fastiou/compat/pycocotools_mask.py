"""pycocotools.mask's names and array layouts on fastiou's RLE kernels.

``import fastiou.compat.pycocotools_mask as mask_util`` in code written for
``pycocotools.mask`` (2.0.11): the same functions, arguments and results (counts strings byte
for byte, IoU bit for bit), computed by :mod:`fastiou.rle`.

Differences (all on input pycocotools refuses or mishandles):
    * ``encode`` takes any memory order, dtype and library (pycocotools wants a Fortran-ordered
      uint8 numpy array); non-zero is foreground.
    * ``iou`` raises ``ValueError`` (pycocotools: ``AssertionError``) when ``len(iscrowd)``
      differs from the number of ground truths.
    * ``frPyObjects`` also takes a list of 4-element box lists, one box or one polygon as a
      flat list (pycocotools 2.0.11 raises ``TypeError`` for each) and compressed RLE dicts.
    * malformed counts, sizes and polygons raise ``ValueError`` (see :mod:`fastiou.rle`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import InputError, rle as _rle

__all__ = ["encode", "decode", "iou", "area", "toBbox", "merge", "frPyObjects"]

area = _rle.area
toBbox = _rle.to_bbox


def encode(bimask):
    """Masks ``(H, W, N)`` (or one ``(H, W)``) -> list of RLE dicts (one dict for 2-D)."""
    m = _rle._host_array(bimask, "bimask")
    if m.ndim == 3:
        return _rle.encode(m.transpose(2, 0, 1))
    if m.ndim == 2:
        return _rle.encode(m)
    raise InputError(f"bimask: expected shape (H, W, N) or (H, W), got {m.shape}")


def decode(rleObjs):
    """RLE dicts -> uint8 ``(H, W, N)`` Fortran-ordered array (a dict gives ``(H, W)``)."""
    out, single, h, w = _rle._decode_into(rleObjs, "rleObjs", True)
    # out is (N, W, H) C-ordered: each mask column-major, as pycocotools lays them out.
    full = out.transpose(2, 1, 0)
    return full[:, :, 0] if single else full


def iou(dt, gt, pyiscrowd):
    """pycocotools ``iou``: float64 ``(len(dt), len(gt))``, or ``[]`` when either is empty."""
    out = _rle.iou(dt, gt, pyiscrowd)
    if out.size == 0:
        return []
    return out


def merge(rleObjs, intersect=0):
    """Union (``intersect=0``) or intersection of RLE dicts -> one RLE dict."""
    return _rle.merge(rleObjs, intersect=bool(intersect))


def _is_rle(o) -> bool:
    return isinstance(o, dict) and "counts" in o and "size" in o


def _one_rle(o, name):
    counts, sizes = _rle._rles([o], name)
    return {"size": [int(sizes[0, 0]), int(sizes[0, 1])], "counts": counts[0]}


def _whole(v, name):
    """h or w as pycocotools takes them: integers, or real numbers truncated toward zero."""
    if isinstance(v, (bool, str, bytes)) or v is None:
        raise TypeError(f"{name}: expected a non-negative integer, got {type(v).__name__} ({v!r})")
    if isinstance(v, (int, np.integer)):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a non-negative integer, got {type(v).__name__} ({v!r})") from None
    if not math.isfinite(f) or f < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {v!r}")
    return int(f)


def frPyObjects(pyobj, h, w):
    """Polygons, xywh boxes or uncompressed RLE -> compressed RLE, dispatched as pycocotools.

    * ndarray ``(N, 4)`` of boxes, or a list of 4-element boxes -> list of RLEs;
    * a list of polygons (flat coordinate lists longer than 4) -> list of RLEs, one each;
    * a list of RLE dicts -> list of compressed RLEs (their own sizes);
    * one box (a list of 4 numbers) / one polygon (a list of more) / one RLE dict -> one RLE.
    """
    h, w = _rle._check_hw(_whole(h, "h"), _whole(w, "w"))
    if isinstance(pyobj, np.ndarray):
        if not (pyobj.ndim == 2 and pyobj.shape[1] == 4) and pyobj.shape != (4,):
            raise InputError(f"pyobj: an ndarray must hold xywh boxes, shape (N, 4), got {pyobj.shape}")
        return _rle._from_boxes(pyobj, h, w)
    if isinstance(pyobj, dict):
        if not _is_rle(pyobj):
            raise InputError("pyobj: a dict must be an RLE with 'size' and 'counts'")
        return _one_rle(pyobj, "pyobj")
    if not isinstance(pyobj, list) or len(pyobj) == 0:
        raise InputError("pyobj: expected boxes, polygons or RLE dicts (a non-empty list or an ndarray)")
    first = pyobj[0]
    if isinstance(first, dict):
        return [_one_rle(o, f"pyobj[{i}]") for i, o in enumerate(pyobj)]
    if hasattr(first, "__len__"):
        if len(first) == 4:
            for i, o in enumerate(pyobj):
                if not hasattr(o, "__len__") or len(o) != 4:
                    got = f"{len(o)} numbers" if hasattr(o, "__len__") else type(o).__name__
                    raise InputError(f"pyobj[{i}]: a list whose first item is a box (4 numbers) must hold "
                                     f"only boxes (pycocotools reads it as (N, 4)), got {got}")
            return _rle._from_boxes(np.asarray(pyobj, dtype=np.float64), h, w)
        if len(first) > 4:
            return _rle._from_polygons(_rle._polygons(pyobj, "pyobj"), h, w, "pyobj")
        raise InputError(f"pyobj[0]: expected a box (4 numbers) or a polygon (more), got {len(first)}")
    if len(pyobj) == 4:
        return _rle._from_boxes(np.asarray([pyobj], dtype=np.float64), h, w)[0]
    if len(pyobj) > 4:
        return _rle._from_polygons(_rle._polygons([pyobj], "pyobj"), h, w, "pyobj")[0]
    raise InputError(f"pyobj: expected a box (4 numbers) or a polygon (more), got {len(pyobj)}")
