"""The backend interface: every op that a backend implements, declared once.

Each backend module offers one function per ``Op`` here, of the same name and with the same
parameter names in the same order (tests/test_interface.py checks every backend module
against this table, on any machine):

    cpp    fastiou._C (csrc/bindings_cpu*.cpp, over csrc/cpu/<op>.cpp)
    numba  fastiou._backends.numba_cpu (Numba mirrors of the same math)
    cuda   fastiou._backends.cuda_gpu (launchers in fastiou._C_cuda, csrc/cuda/<op>.cu)
    cupy   fastiou._backends.cupy_gpu (csrc/kernels/<op>.cuh compiled by NVRTC)

fastiou/_dispatch.py validates each call against its ``Op`` (dtypes, shapes, contiguity,
scalar types) before handing it to a backend, so the adapters do not check again. Host
backends receive numpy arrays; GPU backends receive ``DeviceArray`` records (pointer, shape,
dtype, device) and a keyword ``stream=`` (the caller's current stream), and never synchronise
except to read the count an op returns. Outputs (``out=True``) are allocated by the caller
and written in place.

Box formats and modes are the integer codes of ``FORMATS`` and ``MODES`` below (the same as
csrc/include/fastiou/common.h). Packed masks follow csrc/include/fastiou/mask_math.h: ``bits``
(N, H, ceil(W/64)) 64-bit words (uint64 or int64, the same bytes), ``boxes`` int32 (N, 4)
with exclusive max, ``areas`` int64 (N,). COCO RLEs travel as ``counts`` (a list of bytes,
pycocotools' compressed strings) and ``sizes`` int64 (N, 2) of (h, w); ``name`` is the
argument name that error messages use.
"""

from __future__ import annotations

from ._spec import Array, Op, Scalar

FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}
MODES = {"iou": 0, "giou": 1, "diou": 2, "ciou": 3, "ioa": 4}

FLOAT = "float32|float64"
WORDS = "uint64|int64"
HOST = ("cpp", "numba")


def _words_of(w: str, ww: str):
    return (lambda d: d[ww] == -(-d[w] // 64), f"{ww} must be ceil({w} / 64)")


OPS = (
    # ---- boxes (box_iou.cpp, box_elementwise.cpp, masks_to_boxes.cpp)
    Op("box_pairwise",  # out[b, i, j] = measure(mode)(boxes1[b, i], boxes2[b, j])
       Array("boxes1", "B N 4", FLOAT), Array("boxes2", "B M 4", "=boxes1"),
       Array("out", "B N M", "=boxes1", out=True),
       Scalar("mode", int), Scalar("fmt", int), Scalar("eps", float)),
    Op("box_aligned",  # out[i] = measure(mode)(boxes1[i], boxes2[i])
       Array("boxes1", "N 4", FLOAT), Array("boxes2", "N 4", "=boxes1"),
       Array("out", "N", "=boxes1", out=True),
       Scalar("mode", int), Scalar("fmt", int), Scalar("eps", float)),
    Op("box_area", Array("boxes", "N 4", FLOAT), Array("out", "N", "=boxes", out=True),
       Scalar("fmt", int)),
    Op("box_convert", Array("boxes", "N 4", FLOAT), Array("out", "N 4", "=boxes", out=True),
       Scalar("in_fmt", int), Scalar("out_fmt", int)),
    Op("masks_to_boxes",  # non-zero bytes -> xyxy boxes, inclusive max, zeros when empty
       Array("masks", "N H W", "uint8"), Array("out", "N 4", "float32", out=True)),

    # ---- suppression (nms.cpp, soft_nms.cpp, matrix_nms.cpp, multiclass_nms.cpp)
    Op("nms",  # keep[:K] = kept positions in ranking order; classes never suppress each other
       Array("boxes", "N 4", FLOAT), Array("scores", "N", "float64"),
       Array("classes", "N", "int64", optional=True), Scalar("iou_threshold", float),
       Array("keep", "N", "int64", out=True), returns="count"),
    Op("nms_sweep",  # nms at every threshold from one sort and one overlap pass
       Array("boxes", "N 4", FLOAT), Array("scores", "N", "float64"),
       Array("classes", "N", "int64", optional=True), Scalar("thresholds", list),
       Array("keep", "T N", "int64", out=True), returns="counts",
       where=((lambda d: d["T"] == len(d["thresholds"]), "keep needs a row per threshold"),)),
    Op("soft_nms",  # mmcv soft_nms: kept positions and their decayed scores, in order
       Array("boxes", "N 4", FLOAT), Array("scores", "N", "=boxes"),
       Scalar("iou_threshold", float), Scalar("sigma", float), Scalar("min_score", float),
       Scalar("method", int), Array("keep", "N", "int64", out=True),
       Array("new_scores", "N", "=boxes", out=True), returns="count"),
    Op("matrix_nms",  # SOLOv2 decayed scores, input order
       Array("boxes", "N 4", FLOAT), Array("scores", "N", "=boxes"),
       Array("labels", "N", "int64"), Scalar("kernel", int), Scalar("sigma", float),
       Array("out", "N", "=boxes", out=True)),
    Op("multiclass_nms",  # per image and class NMS, top K overall, padded (0 / -1)
       Array("boxes", "B N K 4", FLOAT), Array("scores", "B N C", "=boxes", strided=True),
       Scalar("iou_threshold", float), Scalar("score_threshold", float),
       Scalar("max_per_class", int), Array("num", "B", "int64", out=True),
       Array("out_boxes", "B D 4", "=boxes", out=True),
       Array("out_scores", "B D", "=boxes", out=True),
       Array("out_classes", "B D", "int64", out=True),
       Array("out_indices", "B D", "int64", out=True),
       where=((lambda d: d["K"] in (1, d["C"]), "boxes' class dim K must be 1 or C"),)),

    # ---- packed masks (mask_pack.cpp, mask_iou.cpp, mask_nms.cpp, resolve_overlaps.cpp)
    Op("pack_masks",
       Array("masks", "N H W", "uint8"), Array("bits", "N H WW", WORDS, out=True),
       Array("boxes", "N 4", "int32", out=True), Array("areas", "N", "int64", out=True),
       where=(_words_of("W", "WW"),)),
    Op("unpack_masks", Array("bits", "N H WW", WORDS), Array("out", "N H W", "uint8", out=True),
       where=(_words_of("W", "WW"),)),
    Op("packed_stats",  # tight boxes and areas from the bits
       Array("bits", "N H WW", WORDS), Array("boxes", "N 4", "int32", out=True),
       Array("areas", "N", "int64", out=True)),
    Op("mask_iou",
       Array("bits1", "N H WW", WORDS), Array("boxes1", "N 4", "int32"),
       Array("areas1", "N", "int64"), Array("bits2", "M H WW", WORDS),
       Array("boxes2", "M 4", "int32"), Array("areas2", "M", "int64"),
       Array("out", "N M", "float32", out=True)),
    Op("mask_nms",
       Array("bits", "N H WW", WORDS), Array("boxes", "N 4", "int32"), Array("areas", "N", "int64"),
       Array("scores", "N", "float64"), Scalar("iou_threshold", float),
       Array("keep", "N", "int64", out=True), returns="count"),
    Op("mask_matrix_nms",
       Array("bits", "N H WW", WORDS), Array("boxes", "N 4", "int32"), Array("areas", "N", "int64"),
       Array("scores", "N", "float32"), Array("labels", "N", "int64"), Scalar("kernel", int),
       Scalar("sigma", float), Array("out", "N", "float32", out=True)),
    Op("resolve_overlaps",  # each pixel kept only in its best-ranked mask
       Array("bits", "N H WW", WORDS), Array("scores", "N", "float64"),
       Array("out_bits", "N H WW", WORDS, out=True)),

    # ---- COCO run-length masks (rle.cpp): host backends only
    Op("rle_encode", Array("masks", "N H W", "uint8", strided=True), returns="object",
       backends=HOST),
    Op("rle_decode",  # out (N, H, W), or (N, W, H) when column_major
       Scalar("counts", list), Scalar("h", int), Scalar("w", int),
       Array("out", "N * *", "uint8", out=True), Scalar("column_major", bool), Scalar("name", str),
       backends=HOST),
    Op("rle_area", Scalar("counts", list), Array("sizes", "N 2", "int64"),
       Array("out", "N", "uint32", out=True), Scalar("name", str), backends=HOST),
    Op("rle_to_bbox", Scalar("counts", list), Array("sizes", "N 2", "int64"),
       Array("out", "N 4", "float64", out=True), Scalar("name", str), backends=HOST),
    Op("rle_merge",  # bytes, or None for an empty list or different sizes
       Scalar("counts", list), Array("sizes", "N 2", "int64"), Scalar("intersect", bool),
       Scalar("name", str), returns="object", backends=HOST),
    Op("rle_iou",
       Scalar("dt", list), Array("dt_sizes", "D 2", "int64"), Scalar("gt", list),
       Array("gt_sizes", "G 2", "int64"), Array("iscrowd", "G", "uint8", optional=True),
       Array("out", "D G", "float64", out=True), backends=HOST),
    Op("rle_box_iou",
       Array("dt", "D 4", "float64"), Array("gt", "G 4", "float64"),
       Array("iscrowd", "G", "uint8", optional=True), Array("out", "D G", "float64", out=True),
       backends=HOST),
    Op("rle_from_polygons", Scalar("polygons", list), Scalar("h", int), Scalar("w", int),
       Scalar("name", str), returns="object", backends=HOST),
    Op("rle_from_counts", Scalar("counts", list), Array("sizes", "N 2", "int64"),
       Scalar("name", str), returns="object", backends=HOST),

    # ---- anchors and matching (anchors.cpp, box_iou_max.cpp; math in anchor_math.h)
    Op("anchor_grid",  # every level's anchors in one pass, centres at (x + offset) * stride
       Array("cells", "C 4", FLOAT),        # the levels' cell anchors, level l from row levels[l, 3]
       Array("levels", "L 5", "int64"),     # H, W, A, first cell row, first output row
       Array("strides", "L 2", "float64"),  # stride_h, stride_w
       Scalar("offset", float), Array("out", "N 4", "=cells", out=True)),
    Op("box_iou_max",  # each row's best IoU and first best column; boxes1 shared (1) or per item
       Array("boxes1", "* N 4", FLOAT), Array("boxes2", "B M 4", "=boxes1"),
       Array("counts", "B", "int64"),       # valid rows of each item of boxes2
       Array("values", "B N", "=boxes1", out=True), Array("indices", "B N", "int64", out=True)),
    Op("match_boxes",  # torchvision's Matcher on the IoU, without the N x M matrix
       Array("anchors", "* N 4", FLOAT), Array("gt", "B M 4", "=anchors"),
       Array("counts", "B", "int64"), Scalar("high", float), Scalar("low", float),
       Scalar("allow_low_quality_matches", bool), Array("matches", "B N", "int64", out=True)),
)

BY_NAME = {op.name: op for op in OPS}
