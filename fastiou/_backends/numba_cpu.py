"""Numba CPU backend: the functions of fastiou._C, with the same arguments and results.

One module per op, named as the op's file in csrc/cpu/ (``numba_<op>.py`` for ``<op>.cpp``);
what more than one op uses is in ``numba_common`` and the box geometry of
``csrc/include/fastiou/box_math.h`` in ``numba_box_math``. This module only gathers the
functions the dispatcher calls (fastiou/_backends/__init__.py lists them).
"""

from .numba_anchors import anchor_grid
from .numba_box_elementwise import box_area, box_convert
from .numba_box_iou import box_aligned, box_pairwise
from .numba_box_iou_max import box_iou_max, match_boxes
from .numba_mask_iou import mask_iou
from .numba_mask_nms import mask_matrix_nms, mask_nms
from .numba_mask_pack import pack_masks, packed_stats, unpack_masks
from .numba_masks_to_boxes import masks_to_boxes
from .numba_matrix_nms import matrix_nms
from .numba_multiclass_nms import multiclass_nms
from .numba_nms import nms, nms_sweep
from .numba_resolve_overlaps import resolve_overlaps
from .numba_rle import (rle_area, rle_box_iou, rle_decode, rle_encode, rle_from_counts,
                        rle_from_polygons, rle_iou, rle_merge, rle_to_bbox)
from .numba_soft_nms import soft_nms

__all__ = [
    "anchor_grid", "box_iou_max", "match_boxes",
    "box_aligned", "box_area", "box_convert", "box_pairwise", "mask_iou", "mask_matrix_nms",
    "mask_nms", "masks_to_boxes", "matrix_nms", "multiclass_nms", "nms", "nms_sweep",
    "pack_masks", "packed_stats", "resolve_overlaps", "rle_area", "rle_box_iou", "rle_decode",
    "rle_encode", "rle_from_counts", "rle_from_polygons", "rle_iou", "rle_merge", "rle_to_bbox",
    "soft_nms", "unpack_masks",
]
