"""COCO run-length masks, compatible with pycocotools (2.0.11) byte for byte.

Shared semantics (those of pycocotools 2.0.11, the reference):

* An RLE is a dict ``{"size": [h, w], "counts": bytes}`` exactly as pycocotools writes it: run
  lengths over the **column-major** flattening of the mask, alternating background and
  foreground and starting with a (possibly empty) background run, in pycocotools' compressed
  string (5 bits a character plus a continuation bit, offset by 48, each count after the third
  delta-coded against the count two before). Either library reads the other's output.
* ``counts`` may come in as ``bytes`` or ``str`` (as ``json.load`` gives it), or as a list of
  run lengths (COCO's uncompressed form, e.g. crowd annotations).
* ``iou`` is pycocotools' ``maskUtils.iou``: ``iscrowd[j]`` is about ground truth ``j``; for a
  crowd ground truth the denominator is the area of the detection; a bounding-box IoU of 0 gives
  0 without looking at the masks; a pair of masks of different sizes whose boxes overlap gives
  -1 (other pairs of different sizes give 0).

Notes:
    RLE is a host format: these functions run on the CPU (the ``cpp`` backend, else ``numba``).
    Masks on a GPU (torch CUDA tensors, cupy arrays) are copied to the host to be encoded. When a
    GPU backend is forced (``use_backend("cuda")``, ``FASTIOU_BACKEND=cupy``), RLE functions still
    run on the default host backend; forcing ``cpp`` or ``numba`` picks that one.

    Stricter than pycocotools: malformed counts (a character outside ``'0'..'o'``, a string that
    ends inside a count, runs adding up to more or less than ``h * w``, a negative run), a size
    that is not two non-negative integers, and polygons with an odd number of coordinates raise
    ``ValueError`` where pycocotools returns garbage or crashes; so do ``h * w >= 2**32`` (counts
    are uint32, as in pycocotools) and polygon coordinates of magnitude ``2**27`` or more (which
    pycocotools' int arithmetic would overflow). Masks are binarised (non-zero is foreground)
    where pycocotools' encode would start a new run at every change of byte value.

    Runs of length 0 inside a mask (which no pycocotools encoder writes, but a hand-made
    uncompressed RLE can hold) are read as the mask they describe. pycocotools' IoU and merge
    walks stop early when both masks reach such a run at once, undercounting the intersection
    or returning counts short of ``h * w``; fastiou gives the true IoU and a complete merge
    there (identical results everywhere else).
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

from . import _dispatch
from ._arrays import as_arg, fmt_shape
from ._errors import InputError

__all__ = ["encode", "decode", "area", "to_bbox", "merge", "from_segmentation", "iou"]

_MAX_PIXELS = 1 << 32

_unpack = False  # fastiou._C.rle_unpack once looked up (None without the extension)
_iou_args = None  # fastiou._C.rle_iou_args, looked up with it


def _unpacker():
    """fastiou._C.rle_unpack (plain RLE dicts in one C++ call, whichever backend then runs the
    op: it is input handling only), loaded on first use with rle_iou_args (iou's arguments in
    one call); None without the compiled extension."""
    global _unpack, _iou_args
    if _unpack is False:
        try:
            from ._C import rle_iou_args, rle_unpack
        except ImportError:  # the Python paths do the same
            rle_unpack = rle_iou_args = None
        _unpack, _iou_args = rle_unpack, rle_iou_args
    return _unpack


# ------------------------------------------------------------------------------ helpers

def _host_array(x, name: str) -> np.ndarray:
    """``x`` as a numpy array on the host (GPU arrays are copied; lists are read)."""
    if isinstance(x, np.ndarray):
        return x
    a = as_arg(name, x)
    if a.device == "cpu":
        return np.asarray(a.lib.host(a.x))
    if a.lib.name == "torch":
        return a.x.detach().cpu().numpy()
    return sys.modules["cupy"].asnumpy(a.x)


def _binary_u8(m: np.ndarray, name: str) -> np.ndarray:
    """Non-zero as uint8 0/1 (bool and 0/1 uint8 need no copy; a uint8 view is read as is)."""
    if m.dtype == np.bool_:
        m = m.view(np.uint8)
    elif m.dtype == np.uint8:
        pass  # the kernels test bytes for non-zero themselves
    elif m.dtype.kind in "iufb":
        m = (m != 0).view(np.uint8)
    else:
        raise TypeError(f"{name}: expected a numeric or bool mask, got dtype {m.dtype}")
    if any(s <= 0 for s, n in zip(m.strides, m.shape) if n > 1):
        m = np.ascontiguousarray(m)  # a flipped or broadcast view
    return m


def _size(r, name: str) -> tuple[int, int]:
    try:
        s = r["size"]
        h, w = s
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{name}: expected a dict with 'size': [h, w] and 'counts'") from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (h, w)) \
            or h < 0 or w < 0:
        raise InputError(f"{name}['size']: expected two non-negative integers [h, w], got {s!r}")
    if int(h) * int(w) >= _MAX_PIXELS:
        raise InputError(f"{name}['size']: h * w must stay below 2**32, got {s!r}")
    return int(h), int(w)


def _uncompressed(counts, name: str) -> np.ndarray:
    try:
        c = np.asarray(counts)
    except (ValueError, TypeError):
        c = None
    if c is None or c.ndim != 1 or (c.size and c.dtype.kind not in "iu"):
        raise InputError(f"{name}['counts']: expected bytes, str or a list of run lengths")
    if c.size and (c.min() < 0 or c.max() >= _MAX_PIXELS):
        raise InputError(f"{name}['counts']: run lengths must be in [0, 2**32)")
    return np.ascontiguousarray(c, dtype=np.uint32)


def _rles(rles, name: str) -> tuple[list, np.ndarray]:
    """(counts as bytes, int64 sizes (N, 2)) of a list of RLE dicts."""
    if isinstance(rles, dict) or not isinstance(rles, (list, tuple)):
        raise TypeError(f"{name}: expected a list of RLE dicts, got {type(rles).__name__}")
    # Fast paths (a call per image matters): well-formed dicts with bytes or str counts. Anything
    # else goes through the checks below, which name the offending item.
    unpack = _unpack if _unpack is not False else _unpacker()
    if unpack is not None and type(rles) is list:
        got = unpack(rles)
        if got is not None:
            return got
    try:
        counts = [r["counts"] for r in rles]
        sizes = np.array([r["size"] for r in rles])
    except (KeyError, TypeError, ValueError, IndexError):
        sizes = None
    # (The backends check the size values themselves, naming the item.)
    if sizes is not None and sizes.shape == (len(rles), 2) and sizes.dtype.kind in "iu" \
            and (sizes.dtype.kind == "i" or sizes.dtype.itemsize < 8):
        for i, c in enumerate(counts):
            if type(c) is not bytes:
                if type(c) is not str or not c.isascii():
                    break
                counts[i] = c.encode("ascii")
        else:
            return counts, np.ascontiguousarray(sizes, dtype=np.int64)
    return _rles_checked(rles, name)


def _rles_checked(rles, name: str) -> tuple[list, np.ndarray]:
    counts, sizes, pending = [], np.empty((len(rles), 2), np.int64), []
    for i, r in enumerate(rles):
        what = f"{name}[{i}]"
        if not isinstance(r, dict):
            raise TypeError(f"{what}: expected an RLE dict, got {type(r).__name__}")
        sizes[i] = _size(r, what)
        if "counts" not in r:
            raise InputError(f"{what}: expected a dict with 'size': [h, w] and 'counts'")
        c = r["counts"]
        if isinstance(c, str):
            try:
                c = c.encode("ascii")
            except UnicodeEncodeError:
                raise InputError(f"{what}['counts']: malformed counts: a non-ASCII character") from None
        elif isinstance(c, (bytearray, memoryview)):
            c = bytes(c)
        elif not isinstance(c, bytes):
            runs = _uncompressed(c, what)
            total = int(runs.sum(dtype=np.uint64))
            if total != int(sizes[i, 0]) * int(sizes[i, 1]):
                raise InputError(f"{what}['counts']: the run lengths add up to {total}, expected "
                                 f"h * w = {int(sizes[i, 0]) * int(sizes[i, 1])}")
            pending.append((i, runs))
            c = None
        counts.append(c)
    if pending:
        idx = [i for i, _ in pending]
        packed = _dispatch.call_host("rle_from_counts", [c for _, c in pending], np.ascontiguousarray(sizes[idx]), name)
        for i, c in zip(idx, packed):
            counts[i] = c
    return counts, sizes


def _dicts(counts, h, w) -> list:
    return [{"size": [h, w], "counts": c} for c in counts]


# ------------------------------------------------------------------------------ codec

def encode(masks):
    """Encodes binary masks as COCO RLE (pycocotools ``mask.encode``).

    Args:
        masks (Array[N, H, W] or Array[H, W]): any memory order or strides, any numeric or bool
            dtype; non-zero is foreground. numpy, torch, cupy or nested lists; GPU arrays are
            copied to the host.

    Returns:
        list[dict]: one ``{"size": [H, W], "counts": bytes}`` per mask (a single dict for an
        ``(H, W)`` input), byte-identical to what pycocotools gives for the same 0/1 mask.

    Raises:
        ValueError: ``masks`` is not 2-D or 3-D, or ``H * W >= 2**32``.
    """
    m = _host_array(masks, "masks")
    if m.ndim not in (2, 3):
        raise InputError(f"masks: expected shape (N, H, W) or (H, W), got {fmt_shape(m.shape)}")
    single = m.ndim == 2
    if single:
        m = m[None]
    _, h, w = m.shape
    if h * w >= _MAX_PIXELS:
        raise InputError(f"masks: H * W must stay below 2**32, got {fmt_shape(m.shape)}")
    m = _binary_u8(m, "masks")
    out = _dicts(_dispatch.call_host("rle_encode", m), h, w)
    return out[0] if single else out


def _decode_into(rles, name, column_major):
    single = isinstance(rles, dict)
    counts, sizes = _rles([rles] if single else rles, name)
    if len(counts) == 0:
        return np.zeros((0, 0, 0), np.uint8), single, 0, 0
    h, w = (int(v) for v in sizes[0])
    if h < 0 or w < 0 or h * w >= _MAX_PIXELS:  # checked before the output is allocated
        _size({"size": [h, w]}, f"{name}[0]")
    if (sizes != sizes[0]).any():
        _rles_checked([rles] if single else rles, name)  # a malformed size is named first
        bad = int(np.nonzero((sizes != sizes[0]).any(axis=1))[0][0])
        raise InputError(f"{name}: every mask must have the same size to be decoded together; "
                         f"{name}[0] is {[h, w]} but {name}[{bad}] is {sizes[bad].tolist()}")
    out = np.empty((len(counts), w, h) if column_major else (len(counts), h, w), np.uint8)
    _dispatch.call_host("rle_decode", counts, h, w, out, column_major, name)
    return out, single, h, w


def decode(rles):
    """Decodes COCO RLE to masks (pycocotools ``mask.decode``, in fastiou's layout).

    Args:
        rles (list[dict] or dict): RLE dicts of one size; ``counts`` bytes, str or a list of run
            lengths.

    Returns:
        ndarray: uint8 0/1 masks ``(N, H, W)``, C-contiguous (``(H, W)`` for a single dict;
        ``(0, 0, 0)`` for an empty list).

    Raises:
        ValueError: malformed dicts or counts, or masks of different sizes.
    """
    out, single, _, _ = _decode_into(rles, "rles", False)
    return out[0] if single else out


def area(rles):
    """Foreground pixels of each RLE (pycocotools ``mask.area``).

    Args:
        rles (list[dict] or dict): RLE dicts.

    Returns:
        ndarray: uint32 ``(N,)`` (``np.uint32`` for a single dict).
    """
    single = isinstance(rles, dict)
    counts, sizes = _rles([rles] if single else rles, "rles")
    out = np.empty(len(counts), np.uint32)
    _dispatch.call_host("rle_area", counts, sizes, out, "rles")
    return out[0] if single else out


def to_bbox(rles):
    """The box around each RLE (pycocotools ``mask.toBbox``).

    Args:
        rles (list[dict] or dict): RLE dicts.

    Returns:
        ndarray: float64 ``(N, 4)`` xywh (``(4,)`` for a single dict) with pycocotools'
        pixel-inclusive width and height (a one-pixel mask is ``[x, y, 1, 1]``); zeros for an
        empty mask.
    """
    single = isinstance(rles, dict)
    counts, sizes = _rles([rles] if single else rles, "rles")
    out = np.empty((len(counts), 4), np.float64)
    _dispatch.call_host("rle_to_bbox", counts, sizes, out, "rles")
    return out[0] if single else out


def merge(rles, intersect: bool = False):
    """The union (or intersection) of RLEs (pycocotools ``mask.merge``).

    Args:
        rles (list[dict]): RLE dicts of one size.
        intersect (bool): intersection instead of union.

    Returns:
        dict: one RLE. As pycocotools: an empty list, or masks of different sizes, give
        ``{"size": [0, 0], "counts": b""}``; a single RLE is returned unchanged (re-encoded).
    """
    counts, sizes = _rles(rles, "rles")
    got = _dispatch.call_host("rle_merge", counts, sizes, bool(intersect), "rles")
    if got is None:
        return {"size": [0, 0], "counts": b""}
    return {"size": [int(sizes[0, 0]), int(sizes[0, 1])], "counts": got}


# ------------------------------------------------------------------------------ polygons, boxes

def _polygons(polys, name: str) -> list:
    out = []
    for i, p in enumerate(polys):
        try:
            a = np.asarray(p, dtype=np.float64).reshape(-1)
        except (ValueError, TypeError):
            raise InputError(f"{name}[{i}]: expected a flat list of coordinates x0, y0, x1, y1, ...") from None
        out.append(np.ascontiguousarray(a))
    return out


def _check_hw(h, w) -> tuple[int, int]:
    if type(h) is int and type(w) is int and h >= 0 and w >= 0 and h * w < _MAX_PIXELS:
        return h, w  # the usual call, checked in one line
    for v, n in ((h, "h"), (w, "w")):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
            raise InputError(f"{n}: expected a non-negative integer, got {v!r}")
    if int(h) * int(w) >= _MAX_PIXELS:
        raise InputError(f"h * w must stay below 2**32, got {h} * {w}")
    return int(h), int(w)


def _box_polygons(boxes) -> list:
    """pycocotools' rleFrBbox: each xywh box as the polygon (xs,ys) (xs,ye) (xe,ye) (xe,ys)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xs, ys = b[:, 0], b[:, 1]
    xe, ye = xs + b[:, 2], ys + b[:, 3]
    xy = np.stack([xs, ys, xs, ye, xe, ye, xe, ys], axis=1)
    return [np.ascontiguousarray(r) for r in xy]


def _from_polygons(polys, h, w, name) -> list:
    return _dicts(_dispatch.call_host("rle_from_polygons", polys, h, w, name), h, w)


def _from_boxes(boxes, h, w) -> list:
    return _dicts(_dispatch.call_host("rle_from_polygons", _box_polygons(boxes), h, w, "boxes"), h, w)


def from_segmentation(segmentation, h: int, w: int):
    """One RLE for one COCO annotation's ``segmentation`` field (as ``COCO.annToRLE``).

    Args:
        segmentation: a list of polygons (each a flat list ``[x0, y0, x1, y1, ...]`` in pixel
            coordinates), an uncompressed RLE dict (``counts`` a list of run lengths) or a
            compressed one (``counts`` bytes or str).
        h (int): image height (used for polygons).
        w (int): image width (used for polygons).

    Returns:
        dict: ``{"size": [h, w], "counts": bytes}``. Polygons are rasterised exactly as
        pycocotools' ``frPyObjects`` does (vertices upsampled by 5, a walk along the boundary)
        and merged (union); an empty list gives an empty mask. Every list is a polygon, even
        one of 4 coordinates (pycocotools' ``frPyObjects`` reads a first item of 4 numbers as a
        box, which 2.0.11 then refuses with ``TypeError``). An RLE dict keeps its own ``size``,
        as in pycocotools; its counts are validated and returned as bytes.

    Raises:
        ValueError: malformed polygons (odd length, non-finite or huge coordinates) or RLE.
    """
    if isinstance(segmentation, dict):
        counts, sizes = _rles([segmentation], "segmentation")
        _dispatch.call_host("rle_area", counts, sizes, np.empty(1, np.uint32), "segmentation")  # validates
        return {"size": [int(sizes[0, 0]), int(sizes[0, 1])], "counts": counts[0]}
    if not isinstance(segmentation, (list, tuple)):
        raise TypeError(f"segmentation: expected a list of polygons or an RLE dict, got "
                        f"{type(segmentation).__name__}")
    h, w = _check_hw(h, w)
    if len(segmentation) == 0:
        return {"size": [h, w], "counts": _dispatch.call_host("rle_from_counts", [np.array([h * w], np.uint32)],
                                                               np.array([[h, w]], np.int64),
                                                               "segmentation")[0]}
    polys = _polygons(segmentation, "segmentation")
    rles = _from_polygons(polys, h, w, "segmentation")
    return rles[0] if len(rles) == 1 else merge(rles)


# ------------------------------------------------------------------------------ iou

def _is_rle_list(x) -> bool:
    # (the first item decides; a later item that is not an RLE dict is named by _rles)
    return isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], dict)


_FLAG_TYPES = (bool, int, float)


def _crowd_flags(iscrowd, ng: int):
    """uint8 (G,) 0/1 (non-zero is crowd), or None for no crowd at all."""
    if iscrowd is None:
        return None
    if type(iscrowd) is list and len(iscrowd) == ng and all(type(v) in _FLAG_TYPES for v in iscrowd):
        return np.frombuffer(bytes(map(bool, iscrowd)), np.uint8)  # the usual list of 0/1
    crowd = np.asarray(iscrowd)
    if crowd.ndim != 1 or len(crowd) != ng:
        raise InputError(f"iscrowd: expected one flag per ground truth ({ng}), got shape "
                         f"{fmt_shape(crowd.shape)}")
    if crowd.size and crowd.dtype.kind not in "biuf":
        raise InputError(f"iscrowd: expected booleans or 0/1, got dtype {crowd.dtype}")
    return np.ascontiguousarray((crowd if crowd.dtype == np.bool_ else crowd != 0).view(np.uint8))


def _boxes(x, name: str) -> np.ndarray:
    try:
        b = np.asarray(_host_array(x, name), dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError(f"{name}: expected a list of RLE dicts or (N, 4) xywh boxes") from None
    if b.ndim == 1 and b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"{name}: expected a list of RLE dicts or (N, 4) xywh boxes, got shape "
                         f"{fmt_shape(b.shape)}")
    return np.ascontiguousarray(b)


def iou(dt, gt, iscrowd=None):
    """IoU of every detection with every ground truth, on masks or boxes (pycocotools ``iou``).

    Args:
        dt (list[dict] or Array[D, 4]): detections: RLE dicts, or xywh boxes.
        gt (list[dict] or Array[G, 4]): ground truth, of the same kind.
        iscrowd (Sequence[bool] of length G, optional): ``iscrowd[j]``: ground truth ``j`` is a
            crowd region, and the denominator is the area of the detection instead of the union.
            None: no crowd.

    Returns:
        ndarray: float64 ``(D, G)``, bit-identical to pycocotools; always an array (empty when
        either side is empty, where pycocotools returns ``[]``). On masks, pairs whose boxes do
        not overlap give 0 and pairs of masks of different sizes whose boxes overlap give -1.
        On boxes, touching boxes give 0 (no +1 in the widths).

    Raises:
        ValueError: ``len(iscrowd) != G``, the two sides of different kinds, malformed input.

    Notes:
        A flag is crowd when it is non-zero (pycocotools casts the flags to uint8 first, so it
        reads 0.5 or 256 as 0). Large inputs run on several threads (``set_num_threads``).
    """
    if type(dt) is list and type(gt) is list:
        # The per-call fast path (a call per image): non-empty lists of plain RLE dicts and a list
        # of flags or None, made into rle_iou's arguments in one C++ call (None for anything
        # else, which the general path below checks and names).
        if _unpack is False:
            _unpacker()
        args = _iou_args(dt, gt, iscrowd) if _iou_args is not None else None
        if args is not None:
            _dispatch.call_host("rle_iou", *args)
            return args[5]
    rle_d, rle_g = _is_rle_list(dt), _is_rle_list(gt)
    empty_d = hasattr(dt, "__len__") and len(dt) == 0   # [] or a (0, 4) array: either kind
    empty_g = hasattr(gt, "__len__") and len(gt) == 0
    if rle_d or rle_g:
        if not ((rle_d or empty_d) and (rle_g or empty_g)):
            raise InputError("dt and gt must be of the same kind: both lists of RLE dicts or both "
                             "(N, 4) xywh boxes")
        nd, ng = len(dt), len(gt)
    else:
        db, gb = _boxes(dt, "dt"), _boxes(gt, "gt")
        nd, ng = len(db), len(gb)
    crowd = _crowd_flags(iscrowd, ng)
    if nd == 0 or ng == 0:
        return np.zeros((nd, ng), np.float64)
    out = np.empty((nd, ng), np.float64)  # every element is written
    if rle_d:
        dc, ds = _rles(dt, "dt")
        # dt is gt (IoU of detections among themselves): the backend parses the strings once
        gc, gs = (dc, ds) if gt is dt else _rles(gt, "gt")
        _dispatch.call_host("rle_iou", dc, ds, gc, gs, crowd, out)
    else:
        _dispatch.call_host("rle_box_iou", db, gb, crowd, out)
    return out
