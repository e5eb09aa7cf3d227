"""The ``cuda`` backend: fastiou._C_cuda launched on the caller's pointers and stream.

fastiou/_dispatch.py has checked every call against fastiou/_backends/interface.py (dtypes,
shapes, contiguity) before it reaches these functions; the extension trusts those sizes.
"""

from __future__ import annotations

from .. import _C, _C_cuda as _ext


def box_pairwise(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    batch, n, _ = boxes1.shape
    m = boxes2.shape[1]
    _ext.box_pairwise(boxes1.dtype, boxes1.ptr, boxes2.ptr, out.ptr, batch, n, m, mode, fmt, eps,
                      stream, boxes1.device)


def box_aligned(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    n = boxes1.shape[0]
    _ext.box_aligned(boxes1.dtype, boxes1.ptr, boxes2.ptr, out.ptr, n, mode, fmt, eps, stream,
                     boxes1.device)


def box_area(boxes, out, fmt, *, stream):
    n = boxes.shape[0]
    _ext.box_area(boxes.dtype, boxes.ptr, out.ptr, n, fmt, stream, boxes.device)


def box_convert(boxes, out, in_fmt, out_fmt, *, stream):
    n = boxes.shape[0]
    _ext.box_convert(boxes.dtype, boxes.ptr, out.ptr, n, in_fmt, out_fmt, stream, boxes.device)


def masks_to_boxes(masks, out, *, stream):
    n, h, w = masks.shape
    _ext.masks_to_boxes(masks.ptr, out.ptr, n, h, w, stream, masks.device)


# Suppression. The counts these return are the one host synchronisation each allows.

def nms(boxes, scores, classes, iou_threshold, keep, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return 0
    return _ext.nms(boxes.dtype, boxes.ptr, scores.ptr, 0 if classes is None else classes.ptr, n,
                    float(iou_threshold), keep.ptr, stream, boxes.device)


def nms_sweep(boxes, scores, classes, thresholds, keep, *, stream):
    n = boxes.shape[0]
    ths = [float(t) for t in thresholds]
    if n == 0 or not ths:
        return [0] * len(ths)
    return list(_ext.nms_sweep(boxes.dtype, boxes.ptr, scores.ptr, 0 if classes is None else classes.ptr, n,
                               ths, keep.ptr, stream, boxes.device))


def soft_nms(boxes, scores, iou_threshold, sigma, min_score, method, keep, new_scores, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return 0
    return _ext.soft_nms(boxes.dtype, boxes.ptr, scores.ptr, n, float(iou_threshold), float(sigma),
                         float(min_score), int(method), keep.ptr, new_scores.ptr, stream, boxes.device)


def matrix_nms(boxes, scores, labels, kernel, sigma, out, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return
    _ext.matrix_nms(boxes.dtype, boxes.ptr, scores.ptr, labels.ptr, n, int(kernel), float(sigma), out.ptr,
                    stream, boxes.device)


#: Workspace of multiclass_nms: as many images at once as fit in this many bytes (at least one).
MC_WORKSPACE_BUDGET = _C.launch_geometry()["kMcWorkspaceBudget"]


def _device_buffer(like, nbytes: int):
    """(buffer, pointer): nbytes of device memory from the caller's own allocator (torch's
    caching allocator or cupy's pool, on the caller's stream, so CUDA-graph capture sees an
    ordinary allocation); (None, 0) for other libraries (the extension then allocates)."""
    owner = like.owner
    mod = type(owner).__module__ or ""
    if mod.startswith("torch"):
        import torch
        buf = owner.new_empty((nbytes,), dtype=torch.uint8)
        return buf, buf.data_ptr()
    if mod.startswith("cupy"):
        import cupy
        with cupy.cuda.Device(like.device):
            buf = cupy.empty(nbytes, dtype=cupy.uint8)
        return buf, buf.data.ptr
    return None, 0


def multiclass_nms(boxes, scores, iou_threshold, score_threshold, max_per_class, num, out_boxes, out_scores,
                   out_classes, out_indices, *, stream):
    bsz, n, c = scores.shape
    cb = boxes.shape[2]
    k = out_scores.shape[1]
    if bsz == 0 or k == 0:
        return
    if c == 0:
        raise ValueError("multiclass_nms: scores need at least one class (C >= 1)")
    one = _ext.multiclass_nms_workspace(n, c, k, 1)
    group = max(1, min(bsz, MC_WORKSPACE_BUDGET // one))
    ws, ws_ptr = _device_buffer(boxes, _ext.multiclass_nms_workspace(n, c, k, group))
    _ext.multiclass_nms(boxes.dtype, boxes.ptr, scores.ptr, bsz, n, c, cb, float(iou_threshold),
                        float(score_threshold), int(max_per_class), k, num.ptr, out_boxes.ptr, out_scores.ptr,
                        out_classes.ptr, out_indices.ptr, ws_ptr, 0 if ws is None else ws.nbytes, stream,
                        boxes.device)
    del ws  # the caller's allocator reuses it in stream order


# Bit-packed masks (csrc/include/fastiou/mask_math.h): bits (N, H, ceil(W/64)) of 64-bit words,
# uint64 or int64 (the same bytes), boxes int32 (N, 4), areas int64 (N,).



def pack_masks(masks, bits, boxes, areas, *, stream):
    n, h, w = masks.shape
    ww = (w + 63) // 64
    _ext.pack_masks(masks.ptr, bits.ptr, boxes.ptr, areas.ptr, n, h, w, ww, stream, masks.device)


def unpack_masks(bits, out, *, stream):
    n, h, w = out.shape
    ww = (w + 63) // 64
    _ext.unpack_masks(bits.ptr, out.ptr, n, h, w, ww, stream, bits.device)


def packed_stats(bits, boxes, areas, *, stream):
    n, h, ww = bits.shape
    _ext.packed_stats(bits.ptr, boxes.ptr, areas.ptr, n, h, ww, stream, bits.device)


def mask_iou(bits1, boxes1, areas1, bits2, boxes2, areas2, out, *, stream):
    n, h, ww = bits1.shape
    m = bits2.shape[0]
    _ext.mask_iou(bits1.ptr, boxes1.ptr, areas1.ptr, n, bits2.ptr, boxes2.ptr, areas2.ptr, m, h, ww, out.ptr,
                  stream, bits1.device)


def mask_nms(bits, boxes, areas, scores, iou_threshold, keep, *, stream):
    n, h, ww = bits.shape
    if n == 0:
        return 0
    return _ext.mask_nms(bits.ptr, boxes.ptr, areas.ptr, scores.ptr, n, h, ww, float(iou_threshold), keep.ptr,
                         stream, bits.device)


def mask_matrix_nms(bits, boxes, areas, scores, labels, kernel, sigma, out, *, stream):
    n, h, ww = bits.shape
    if n == 0:
        return
    _ext.mask_matrix_nms(bits.ptr, boxes.ptr, areas.ptr, scores.ptr, labels.ptr, n, h, ww, int(kernel),
                         float(sigma), out.ptr, stream, bits.device)


def resolve_overlaps(bits, scores, out_bits, *, stream):
    n, h, ww = bits.shape
    _ext.resolve_overlaps(bits.ptr, scores.ptr, out_bits.ptr, n, h, ww, stream, bits.device)


# Anchors and matching.

def anchor_grid(cells, levels, strides, offset, out, *, stream):
    nlev = levels.shape[0]
    _check(cells.shape[1:] == (4,) and levels.shape == (nlev, 5) and levels.dtype == "int64"
           and strides.shape == (nlev, 2) and strides.dtype == "float64" and out.shape[1:] == (4,)
           and cells.dtype == out.dtype, "anchor_grid")
    _ext.anchor_grid(cells.dtype, cells.ptr, levels.ptr, strides.ptr, nlev, float(offset), out.ptr,
                     out.shape[0], stream, cells.device)


def _pair_check(rows, cols, counts, what):
    batch, m = cols.shape[0], cols.shape[1]
    _check(len(rows.shape) == 3 and rows.shape[2] == 4 and rows.shape[0] in (1, batch)
           and cols.shape == (batch, m, 4) and rows.dtype == cols.dtype
           and counts.shape == (batch,) and counts.dtype == "int64", what)
    return rows.shape[0], batch, rows.shape[1], m


def box_iou_max(boxes1, boxes2, counts, values, indices, *, stream):
    b1, batch, n, m = _pair_check(boxes1, boxes2, counts, "box_iou_max")
    _check(values.shape == indices.shape == (batch, n) and values.dtype == boxes1.dtype
           and indices.dtype == "int64", "box_iou_max")
    _ext.box_iou_max(boxes1.dtype, boxes1.ptr, b1, boxes2.ptr, counts.ptr, batch, n, m, values.ptr,
                     indices.ptr, stream, boxes1.device)


def match_boxes(anchors, gt, counts, high, low, allow_low_quality_matches, matches, *, stream):
    b1, batch, n, m = _pair_check(anchors, gt, counts, "match_boxes")
    _check(matches.shape == (batch, n) and matches.dtype == "int64", "match_boxes")
    _ext.match_boxes(anchors.dtype, anchors.ptr, b1, gt.ptr, counts.ptr, batch, n, m, float(high),
                     float(low), bool(allow_low_quality_matches), matches.ptr, stream, anchors.device)
