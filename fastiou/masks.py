"""Dense binary masks: IoU, NMS and overlap resolution on bit-packed masks.

Masks are ``(N, H, W)`` arrays of any numeric or bool dtype; **non-zero is foreground** (NaN
included). Every op first packs them to bits, 64 pixels a word (``PackedMasks``: bits, a tight
box and an area per mask; the layout is csrc/include/fastiou/mask_math.h), and then works on
the bits with AND + popcount, counting only the words where the two masks' boxes intersect. No
float copy of the masks is ever made: the packed masks take ``N * H * ceil(W / 64) * 8`` bytes,
1/8 of a uint8 mask and 1/32 of a float32 copy. Pack once with ``pack_masks`` and pass the
``PackedMasks`` to several calls to skip the packing (which reads every byte of the masks).

Dense inputs: bool masks are viewed as uint8 without a copy, uint8 masks are read as they
are, other dtypes go through one ``!= 0``. A single ``(H, W)`` mask is refused: masks are
always rank 3 (use ``mask[None]``).

Shared rules:

* IoU: ``inter / (area1 + area2 - inter)`` from exact pixel counts, divided in float64 and
  rounded once to float32 (equal to a float32 matmul IoU, and to pycocotools' float64 IoU
  rounded to float32, for masks under 2**24 pixels). A pair whose union is empty (two empty
  masks) gives 0.
* Ranking (``mask_nms``, ``matrix_nms``, ``resolve_overlaps``): decreasing score; equal scores
  keep input order; a NaN score ranks below every other score (fastiou/nms.py's rule).
* Results are in the library and on the device of the first array argument; identical on
  every backend (cpp, numba, cuda, cupy).
"""

from __future__ import annotations

from . import _dispatch
from ._arrays import Arg
from ._args import threshold
from ._errors import InputError
from ._packed import (PackedMasks, dense_masks, lib_device, mask_scores, pack_dense, packed_or_dense,
                      to_packed, unpack_bits, where)

__all__ = ["PackedMasks", "pack_masks", "mask_iou", "mask_nms", "resolve_overlaps"]

def pack_masks(masks) -> PackedMasks:
    """Packs binary masks to bits once, for reuse across calls.

    Args:
        masks (Array[N, H, W]): any numeric or bool dtype; non-zero is foreground. A
            ``PackedMasks`` is returned as it is.

    Returns:
        PackedMasks: in the library and on the device of ``masks``.

    Raises:
        InputError: ``masks`` is not rank 3.
    """
    if isinstance(masks, PackedMasks):
        return masks
    return pack_dense(dense_masks(masks, "masks"))


def _check_same(p1, p2, name1: str, name2: str) -> str:
    lib1, dev1 = lib_device(p1)
    _, dev2 = lib_device(p2)
    if dev1 != dev2:
        raise ValueError(f"{name1} is on {dev1} but {name2} is on {dev2}: fastiou does not copy "
                         f"between devices; move them to one device first")
    hw1, hw2 = tuple(p1.shape[1:]), tuple(p2.shape[1:])
    if hw1 != hw2:
        raise InputError(f"{name1} has masks of (H, W) = {hw1} but {name2} has {hw2}: "
                         f"masks must be the same size")
    return dev1


def mask_iou(masks1, masks2):
    """Pairwise IoU of two sets of binary masks (a float matmul IoU, without the floats).

    Args:
        masks1 (Array[N, H, W] or PackedMasks): non-zero is foreground.
        masks2 (Array[M, H, W] or PackedMasks): the same H and W.

    Returns:
        Array[N, M] float32: ``|a & b| / |a | b|``, 0 where the union is empty. In the library
        and on the device of ``masks1``.

    Raises:
        InputError: a dense input is not rank 3, or the two sets differ in H or W.
        ValueError: the inputs are on different devices.

    Notes:
        Memory: the packed masks (``(N + M) * H * ceil(W / 64) * 8`` bytes) and the result.
        Passing the same array (or PackedMasks) twice packs it once. With numpy masks the
        packed ones go into buffers of the calling thread kept for its next call (from 1 MB
        to 32 MB a side; no page faults again), as a caching allocator keeps its blocks.
    """
    p1 = packed_or_dense(masks1, "masks1")
    p2 = p1 if masks2 is masks1 else packed_or_dense(masks2, "masks2")
    device = _check_same(p1, p2, "masks1", "masks2")
    lib = lib_device(p1)[0]
    n, m = p1.shape[0], p2.shape[0]
    if n * m == 0 or p1.shape[1] * p1.shape[2] == 0:  # no pairs, or no pixels: IoU 0
        return lib.zeros((n, m), "float32", device)
    out = lib.empty((n, m), "float32", device)
    q1 = to_packed(p1)
    q2 = q1 if p2 is p1 else to_packed(p2, slot=1)
    _dispatch.call("mask_iou", device, *q1._args("masks1"), *q2._args("masks2"), Arg("out", lib, out))
    return out


def mask_nms(masks, scores, iou_threshold: float):
    """Greedy non-maximum suppression on mask IoU.

    Visits the masks by decreasing score (ties in input order, NaN last); a mask is dropped
    when its IoU (``mask_iou``'s float32 value, compared as a double) with a kept mask is
    strictly greater than ``iou_threshold`` — ``fastiou.nms``'s rule with mask IoU.

    Args:
        masks (Array[N, H, W] or PackedMasks): non-zero is foreground.
        scores (Array[N]): any real dtype (ranked exactly).
        iou_threshold (float): finite.

    Returns:
        Array[K] int64: indices of the kept masks, by decreasing score. In the library and on
        the device of ``masks``.

    Raises:
        InputError: wrong ranks or lengths. ValueError: a non-finite threshold.
    """
    thr = threshold(iou_threshold)
    p = packed_or_dense(masks, "masks")
    s = mask_scores(scores, p, "masks", "float64")
    lib, device = lib_device(p)
    n = p.shape[0]
    keep = lib.empty((n,), "int64", device)
    if n == 0:
        return keep
    q = to_packed(p)
    k = _dispatch.call("mask_nms", device, *q._args("masks"), s, thr, Arg("keep", lib, keep))
    return keep[:k]


def resolve_overlaps(masks, scores):
    """Gives each pixel to the highest-scoring mask that covers it.

    Rule: masks are ranked by decreasing score; equal scores rank by input index (the lower
    index first); NaN scores rank after every number (among themselves by index). A pixel that
    is foreground (non-zero) in several masks stays only in the best-ranked of them and becomes
    0 in the others; a pixel in one mask, or in none, is unchanged. So no pixel is left in two
    masks, the union of the masks is unchanged, and no pixel moves from a higher- to a
    lower-ranked mask (pixels only ever leave the lower-ranked ones).

    Args:
        masks (Array[N, H, W] or PackedMasks): non-zero is foreground.
        scores (Array[N]): any real dtype.

    Returns:
        For dense masks: a new array of the same shape and dtype, each pixel keeping its
        original value in the one mask it stays in (0 elsewhere). For PackedMasks: new
        PackedMasks (boxes and areas recomputed). In the library and on the device of
        ``masks``.

    Raises:
        InputError: wrong ranks or lengths.
    """
    p = packed_or_dense(masks, "masks")
    s = mask_scores(scores, p, "masks", "float64")
    lib, device = lib_device(p)
    q = to_packed(p)
    b = Arg("masks", q._lib, q.bits).contiguous()
    out_bits = lib.empty(tuple(q.bits.shape), b.dtype, device)
    if b.x.shape[0] * b.x.shape[1] * b.x.shape[2]:
        _dispatch.call("resolve_overlaps", device, b, s, Arg("out_bits", lib, out_bits))
    else:
        out_bits = lib.copy(b.x)
    if isinstance(p, PackedMasks):
        return PackedMasks.from_bits(out_bits, q.width)
    return where(lib, unpack_bits(lib, out_bits, q.width, device), p.x)
