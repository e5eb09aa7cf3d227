"""The ``cuda`` backend: fastiou._C_cuda launched on the caller's pointers and stream."""

from __future__ import annotations

from .. import _C_cuda as _ext


def _check(cond: bool, what: str):
    # The extension trusts these sizes: a mismatch here would be an out-of-bounds access there.
    if not cond:
        raise ValueError(f"internal size mismatch: {what}")


def box_pairwise(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    batch, n, _ = boxes1.shape
    m = boxes2.shape[1]
    _check(boxes1.shape[2] == 4 and boxes2.shape == (batch, m, 4) and out.shape == (batch, n, m)
           and boxes1.dtype == boxes2.dtype == out.dtype, "box_pairwise")
    _ext.box_pairwise(boxes1.dtype, boxes1.ptr, boxes2.ptr, out.ptr, batch, n, m, mode, fmt, eps,
                      stream, boxes1.device)


def box_aligned(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    n = boxes1.shape[0]
    _check(boxes1.shape == boxes2.shape == (n, 4) and out.shape == (n,)
           and boxes1.dtype == boxes2.dtype == out.dtype, "box_aligned")
    _ext.box_aligned(boxes1.dtype, boxes1.ptr, boxes2.ptr, out.ptr, n, mode, fmt, eps, stream,
                     boxes1.device)


def box_area(boxes, out, fmt, *, stream):
    n = boxes.shape[0]
    _check(boxes.shape == (n, 4) and out.shape == (n,) and boxes.dtype == out.dtype, "box_area")
    _ext.box_area(boxes.dtype, boxes.ptr, out.ptr, n, fmt, stream, boxes.device)


def box_convert(boxes, out, in_fmt, out_fmt, *, stream):
    n = boxes.shape[0]
    _check(boxes.shape == out.shape == (n, 4) and boxes.dtype == out.dtype, "box_convert")
    _ext.box_convert(boxes.dtype, boxes.ptr, out.ptr, n, in_fmt, out_fmt, stream, boxes.device)


def masks_to_boxes(masks, out, *, stream):
    n, h, w = masks.shape
    _check(masks.dtype == "uint8" and out.shape == (n, 4) and out.dtype == "float32", "masks_to_boxes")
    _ext.masks_to_boxes(masks.ptr, out.ptr, n, h, w, stream, masks.device)
