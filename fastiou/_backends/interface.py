"""Backend interface declarations of the anchor ops (issue 9), for the lead's table.

Only this branch's ops, as ``ANCHOR_OPS``; the ``Op`` / ``Array`` / ``Scalar`` helpers live in
``._spec`` on main (see /work/notes/INTERFACE.md), where this list is merged into the table.
"""

from __future__ import annotations

from ._spec import Array, Op, Scalar

ANCHOR_OPS = [
    # Every level's anchors in one pass. cells: the levels' cell anchors, rows of levels[l, 3]
    # onwards; levels (L, 5) int64: H, W, A, first cell row, first output row; strides (L, 2):
    # stride_h, stride_w; offset: grid centres at (x + offset) * stride.
    Op("anchor_grid",
       Array("cells", "C 4", "float32|float64"),
       Array("levels", "L 5", "int64"),
       Array("strides", "L 2", "float64"),
       Scalar("offset", float),
       Array("out", "N 4", "=cells", out=True),
       returns=None),
    # Each row's best IoU and first column; boxes1 shared by every item (first dim 1) or one
    # per item; counts[b] valid rows of boxes2[b].
    Op("box_iou_max",
       Array("boxes1", "* N 4", "float32|float64"),
       Array("boxes2", "B M 4", "=boxes1"),
       Array("counts", "B", "int64"),
       Array("values", "B N", "=boxes1", out=True),
       Array("indices", "B N", "int64", out=True),
       returns=None),
    # torchvision's Matcher on the IoU, fused (no N x M matrix).
    Op("match_boxes",
       Array("anchors", "* N 4", "float32|float64"),
       Array("gt", "B M 4", "=anchors"),
       Array("counts", "B", "int64"),
       Scalar("high", float), Scalar("low", float),
       Scalar("allow_low_quality_matches", bool),
       Array("matches", "B N", "int64", out=True),
       returns=None),
]
