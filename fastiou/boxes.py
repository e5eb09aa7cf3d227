"""The box IoU family: a drop-in for torchvision.ops (0.29) box functions.

Shared semantics (those of torchvision 0.29):

* Boxes are ``(..., N, 4)``; the last dimension is (x1, y1, x2, y2) unless ``fmt`` says
  otherwise. Leading batch dimensions broadcast against each other as torchvision's do.
* Results follow torchvision's formulas exactly: no eps in IoU (two zero-area boxes give NaN),
  areas not clamped (an inverted box has a positive area), NaN coordinates give NaN.
* dtypes: float16 / bfloat16 / float32 are computed in float32 and give float32; float64 gives
  float64; integer boxes are computed in float64 and give float32 (torchvision's upcast rule),
  except ``box_area`` and ``box_convert``, which compute integer boxes in integers exactly as
  torchvision does (int32 / int64 results that wrap around as torch's do; float32 where
  ``cxcywh`` divides).
* The result is in the library and on the device of the first argument; it does not carry
  autograd history (use torchvision for losses that need gradients).

Notes:
    float32 results are bit-identical to torchvision's on the CPU and identical across
    fastiou's backends, except ``complete_box_iou``, whose ``atan`` may differ in the last
    bit between math libraries. For float16 / bfloat16 inputs torchvision rounds some
    intermediate differences to 16 bits; fastiou does not, so it can differ there by the
    16-bit rounding error (and is closer to the exact value).
"""

from __future__ import annotations

import numpy as np

from . import _dispatch
from ._args import (FAST_FLOATS, FORMATS, MODES, boxes_arg, broadcast_lead, check_out, compute_dtypes, finish,
                    fmt_code)
from ._arrays import Arg, as_arg, check_device, check_numeric, fmt_shape, via_numpy
from ._errors import InputError
from ._packed import PackedMasks

__all__ = ["box_area", "box_convert", "box_iou", "generalized_box_iou", "distance_box_iou",
           "complete_box_iou", "box_ioa", "box_iou_aligned", "masks_to_boxes"]


def _eps(eps) -> float:
    if not isinstance(eps, (str, bytes, bool, complex)) and eps is not None:
        try:
            return float(eps)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"eps: expected a real number, got {type(eps).__name__} ({eps!r})")


def _pairwise(boxes1, boxes2, mode: str, fmt: str = "xyxy", eps: float = 0.0, out=None):
    if (out is None and type(boxes1) is np.ndarray and type(boxes2) is np.ndarray
            and boxes1.ndim == 2 and boxes2.ndim == 2 and boxes1.shape[1] == 4 and boxes2.shape[1] == 4
            and boxes1.dtype == boxes2.dtype and boxes1.dtype in FAST_FLOATS and type(eps) is float
            and type(fmt) is str and fmt in FORMATS and boxes1.flags.c_contiguous
            and boxes2.flags.c_contiguous):
        # The per-call fast path: float boxes exactly as the backend takes them.
        res = np.empty((boxes1.shape[0], boxes2.shape[0]), boxes1.dtype)
        if res.size:
            _dispatch.host_function("box_pairwise")(boxes1[None], boxes2[None], res[None], MODES[mode],
                                                    FORMATS[fmt], eps)
        return res
    fmt_c = fmt_code(fmt)
    a1, d1 = boxes_arg("boxes1", boxes1, 2)
    a2, d2 = boxes_arg("boxes2", boxes2, 2)
    device = check_device([a1, a2])
    lead = broadcast_lead(a1.shape[:-2], a2.shape[:-2], "boxes1, boxes2")
    n, m = a1.shape[-2], a2.shape[-2]
    cdt, rdt = compute_dtypes(d1, d2)
    shape = lead + (n, m)
    o = None if out is None else check_out(out, a1, device, shape, rdt)
    batch = int(np.prod(lead, dtype=np.int64)) if lead else 1
    if batch * n * m == 0:
        if o is not None:
            return o.x
        return a1.lib.empty(shape, rdt, device)
    b1 = a1.astype(cdt).broadcast_to(lead + (n, 4)).contiguous().reshape((batch, n, 4))
    b2 = a2.astype(cdt).broadcast_to(lead + (m, 4)).contiguous().reshape((batch, m, 4))
    direct = o is not None and cdt == rdt
    res = o.x if direct else a1.lib.empty((batch, n, m), cdt, device)
    _dispatch.call("box_pairwise", device, b1, b2,
                   Arg("out", a1.lib, res.reshape((batch, n, m))),
                   MODES[mode], fmt_c, _eps(eps))
    if direct:
        return o.x
    res = finish(a1, res.reshape(shape), rdt)
    if o is not None:
        o.x[...] = res
        return o.x
    return res


@via_numpy
def box_iou(boxes1, boxes2, fmt: str = "xyxy", *, out=None):
    """Intersection over union of every pair of boxes (torchvision.ops.box_iou).

    Args:
        boxes1 (Array[..., N, 4]): boxes in ``fmt``.
        boxes2 (Array[..., M, 4]): boxes in ``fmt``; leading dimensions broadcast with boxes1's.
        fmt (str): ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        out (Array[..., N, M], optional): a buffer to write the result into (same library,
            device and result dtype), to save the allocation and page faults of a fresh one.

    Returns:
        Array[..., N, M]: IoU values (see the module notes for dtypes and NaN).

    Raises:
        InputError: a shape, dtype or ``out`` that does not fit.
        TypeError: an argument that is not an array of numbers.
        ValueError: an unknown ``fmt``, or arrays on different devices.
    """
    return _pairwise(boxes1, boxes2, "iou", fmt, 0.0, out)


@via_numpy
def generalized_box_iou(boxes1, boxes2, *, out=None):
    """Generalized IoU of every pair of xyxy boxes (torchvision.ops.generalized_box_iou).

    Args:
        boxes1 (Array[..., N, 4]), boxes2 (Array[..., M, 4]): xyxy boxes.
        out (Array[..., N, M], optional): see ``box_iou``.

    Returns:
        Array[..., N, M]: ``iou - (area(C) - union) / area(C)``, C the smallest enclosing box;
        no eps, so two boxes whose enclosing box has zero area give NaN, as in torchvision.
    """
    return _pairwise(boxes1, boxes2, "giou", "xyxy", 0.0, out)


@via_numpy
def distance_box_iou(boxes1, boxes2, eps: float = 1e-7, *, out=None):
    """Distance IoU of every pair of xyxy boxes (torchvision.ops.distance_box_iou).

    Args:
        boxes1 (Array[..., N, 4]), boxes2 (Array[..., M, 4]): xyxy boxes.
        eps (float): added to the squared diagonal of the enclosing box.
        out (Array[..., N, M], optional): see ``box_iou``.

    Returns:
        Array[..., N, M]: ``iou - d(centres)^2 / (diag(C)^2 + eps)``.
    """
    return _pairwise(boxes1, boxes2, "diou", "xyxy", eps, out)


@via_numpy
def complete_box_iou(boxes1, boxes2, eps: float = 1e-7, *, out=None):
    """Complete IoU of every pair of xyxy boxes (torchvision.ops.complete_box_iou).

    Args:
        boxes1 (Array[..., N, 4]), boxes2 (Array[..., M, 4]): xyxy boxes.
        eps (float): as in torchvision, in the DIoU term and in alpha's denominator.
        out (Array[..., N, M], optional): see ``box_iou``.

    Returns:
        Array[..., N, M]: ``diou - alpha * v`` with ``v = 4/pi^2 (atan(w1/h1) - atan(w2/h2))^2``
        and ``alpha = v / (1 - iou + v + eps)``.

    Notes:
        ``atan`` comes from each backend's math library, so results may differ from
        torchvision's and between CPU and GPU in the last bit.
    """
    return _pairwise(boxes1, boxes2, "ciou", "xyxy", eps, out)


@via_numpy
def box_ioa(boxes1, boxes2, *, out=None):
    """Intersection over the area of ``boxes1`` for every pair of xyxy boxes.

    This is mmcv's ``bbox_overlaps(mode="iof")`` and pycocotools' crowd rule (a detection's
    overlap with a crowd region, divided by the detection's area). detectron2's
    ``pairwise_ioa`` divides by the area of its *second* argument: call
    ``box_ioa(boxes2, boxes1).T`` to reproduce it.

    Args:
        boxes1 (Array[..., N, 4]), boxes2 (Array[..., M, 4]): xyxy boxes.
        out (Array[..., N, M], optional): see ``box_iou``.

    Returns:
        Array[..., N, M]: ``inter / area(boxes1)`` (a zero-area box in boxes1 gives NaN or inf).
    """
    return _pairwise(boxes1, boxes2, "ioa", "xyxy", 0.0, out)


@via_numpy
def box_iou_aligned(boxes1, boxes2, mode: str = "iou", eps: float = 1e-7):
    """The measure of each row's pair: ``result[i] = measure(boxes1[i], boxes2[i])``.

    Equals the diagonal of the pairwise function (mmcv ``bbox_overlaps(aligned=True)``).

    Args:
        boxes1 (Array[..., N, 4]), boxes2 (Array[..., N, 4]): xyxy boxes, the same number in
            each (leading dimensions broadcast).
        mode (str): ``"iou"``, ``"giou"``, ``"diou"``, ``"ciou"`` or ``"ioa"``.
        eps (float): for ``diou`` and ``ciou``, as in ``distance_box_iou``.

    Returns:
        Array[..., N]
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    _eps(eps)
    a1, d1 = boxes_arg("boxes1", boxes1, 2)
    a2, d2 = boxes_arg("boxes2", boxes2, 2)
    device = check_device([a1, a2])
    if a1.shape[-2] != a2.shape[-2]:
        raise InputError(f"boxes1, boxes2: expected the same number of boxes, got "
                         f"{fmt_shape(a1.shape)} and {fmt_shape(a2.shape)}")
    lead = broadcast_lead(a1.shape[:-2], a2.shape[:-2], "boxes1, boxes2") + (a1.shape[-2],)
    cdt, rdt = compute_dtypes(d1, d2)
    k = int(np.prod(lead, dtype=np.int64))
    if k == 0:
        return a1.lib.empty(lead, rdt, device)
    b1 = a1.astype(cdt).broadcast_to(lead + (4,)).contiguous().reshape((k, 4))
    b2 = a2.astype(cdt).broadcast_to(lead + (4,)).contiguous().reshape((k, 4))
    res = a1.lib.empty((k,), cdt, device)
    _dispatch.call("box_aligned", device, b1, b2, Arg("out", a1.lib, res), MODES[mode], 0,
                   _eps(eps))
    return finish(a1, res.reshape(lead), rdt)


def _int_result_dtype(dt: str) -> str:
    # torchvision's _upcast of integer boxes: int32 / int64 kept, smaller ints and bool to int32.
    return dt if dt in ("int32", "int64") else "int32"


_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")


def _int_box_area(a: Arg, fmt_c: int):
    """torchvision's box_area of integer boxes, in its integer arithmetic (int32 for the small
    integer types, wrapping as it wraps), with the array library's own operations: exact for
    int64 beyond 2**53 on every library and device, where float64 would round."""
    x = a.x if a.dtype in ("int32", "int64") else a.lib.astype(a.x, "int32")
    if fmt_c == 0:
        return (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
    return x[..., 2] * x[..., 3]


def _int_box_convert(a: Arg, i: int, o: int, rdt: str, device: str):
    """torchvision's box_convert of integer boxes, step for step: integer sums and differences
    in the boxes' dtype (wrapping as torch does), float32 where its division or 0.5 * w makes
    float32 (``cxcywh``)."""
    x, lib = a.x, a.lib
    f32 = lambda v: lib.astype(v, "float32")  # noqa: E731
    c = [x[..., j] for j in range(4)]
    if i == 1:  # xywh
        x1, y1, x2, y2 = c[0], c[1], c[0] + c[2], c[1] + c[3]
    elif i == 2:  # cxcywh: cx - 0.5 * w in float32
        cx, cy, w, h = (f32(v) for v in c)
        x1, y1, x2, y2 = cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h
    else:
        x1, y1, x2, y2 = c
    if o == 1:
        cols = (x1, y1, x2 - x1, y2 - y1)
    elif o == 2:  # (x1 + x2) / 2 divides the integer sum
        cols = (f32(x1 + x2) / 2, f32(y1 + y2) / 2, f32(x2 - x1), f32(y2 - y1))
    else:
        cols = (x1, y1, x2, y2)
    out = lib.empty(a.shape, rdt, device)
    for j, v in enumerate(cols):
        out[..., j] = v
    return out


@via_numpy
def box_area(boxes, fmt: str = "xyxy"):
    """Area of each box (torchvision.ops.box_area).

    Args:
        boxes (Array[..., 4]): boxes in ``fmt``.
        fmt (str): ``"xyxy"`` (area ``(x2 - x1) * (y2 - y1)``, not clamped: an inverted box
            has a positive area) or ``"xywh"`` / ``"cxcywh"`` (area ``w * h``).

    Returns:
        Array[...]: float32 for float16 / bfloat16 / float32 boxes, float64 for float64;
        integer boxes give integer areas (int32, or int64 for int64 boxes), as torchvision.
    """
    fmt_c = fmt_code(fmt)
    a, dt = boxes_arg("boxes", boxes, 1)
    device = check_device([a])
    lead = a.shape[:-1]
    is_int = dt not in ("float16", "bfloat16", "float32", "float64")
    cdt, rdt = compute_dtypes(dt)
    if is_int:
        rdt = _int_result_dtype(dt)
    k = int(np.prod(lead, dtype=np.int64))
    if k == 0:
        return a.lib.empty(lead, rdt, device)
    if dt in _INT_DTYPES:
        return _int_box_area(a, fmt_c)
    b = a.astype(cdt).contiguous().reshape((k, 4))
    res = a.lib.empty((k,), cdt, device)
    _dispatch.call("box_area", device, b, Arg("out", a.lib, res), fmt_c)
    return finish(a, res.reshape(lead), rdt)


@via_numpy
def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Converts boxes between ``xyxy``, ``xywh`` and ``cxcywh`` (torchvision.ops.box_convert).

    Args:
        boxes (Array[..., 4]): boxes in ``in_fmt``.
        in_fmt (str), out_fmt (str): ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
        Array[..., 4]: in the input's dtype (float16 / bfloat16 computed in float32 and rounded
        back), except that integer boxes converted to or from ``cxcywh`` become float32, as
        torchvision's division makes them. ``in_fmt == out_fmt`` returns a copy.
    """
    i, o = fmt_code(in_fmt, "in_fmt"), fmt_code(out_fmt, "out_fmt")
    a, dt = boxes_arg("boxes", boxes, 1)
    device = check_device([a])
    is_int = dt not in ("float16", "bfloat16", "float32", "float64")
    cdt = "float64" if is_int else ("float64" if dt == "float64" else "float32")
    rdt = "float32" if is_int and "cxcywh" in (in_fmt, out_fmt) and in_fmt != out_fmt else dt
    if i == o:  # torchvision returns boxes.clone(): converting through xyxy would round
        return a.lib.copy(a.x)
    k = int(np.prod(a.shape[:-1], dtype=np.int64))
    if k == 0:
        return a.lib.empty(a.shape, rdt, device)
    if dt in _INT_DTYPES:
        return _int_box_convert(a, i, o, rdt, device)
    b = a.astype(cdt).contiguous().reshape((k, 4))
    res = a.lib.empty((k, 4), cdt, device)
    _dispatch.call("box_convert", device, b, Arg("out", a.lib, res), i, o)
    return finish(a, res.reshape(a.shape), rdt)


@via_numpy
def masks_to_boxes(masks):
    """The xyxy box around each mask (torchvision.ops.masks_to_boxes, 0.29).

    Args:
        masks (Array[N, H, W] or PackedMasks): any numeric or bool dtype; non-zero is
            foreground. For PackedMasks (fastiou.pack_masks) the boxes come from the stored
            tight boxes, without reading the bits.

    Returns:
        Array[N, 4]: float32 (x1, y1, x2, y2) with an inclusive maximum (a one-pixel mask gives
        x1 == x2), ``[0, 0, 0, 0]`` for an empty mask. Like torchvision, masks with no elements
        at all (N, H or W zero) give a ``(0, 4)`` result.
    """
    if isinstance(masks, PackedMasks):
        return masks._boxes_inclusive()
    a = as_arg("masks", masks)
    check_numeric(a)
    device = check_device([a])
    if len(a.shape) != 3:
        raise InputError(f"masks: expected shape (N, H, W), got {fmt_shape(a.shape)}")
    n, h, w = a.shape
    if n * h * w == 0:
        return a.lib.zeros((0, 4), "float32", device)
    m = Arg("masks", a.lib, a.lib.nonzero_u8(a.x)).contiguous()
    res = a.lib.empty((n, 4), "float32", device)
    _dispatch.call("masks_to_boxes", device, m, Arg("out", a.lib, res))
    return res
