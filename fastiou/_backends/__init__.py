"""Backend adapters, all with the same functions and arguments.

``cpp`` is the extension module fastiou._C itself; ``numba_cpu`` mirrors it in Numba;
``cuda_gpu`` and ``cupy_gpu`` launch the kernels of csrc/kernels/ through fastiou._C_cuda and
through NVRTC. The functions (arrays are numpy arrays on the host, DeviceArray on the GPU;
outputs are preallocated by fastiou/_dispatch.py's caller and written in place):

    box_pairwise(boxes1 (B,N,4), boxes2 (B,M,4), out (B,N,M), mode, fmt, eps)
    box_aligned(boxes1 (N,4), boxes2 (N,4), out (N,), mode, fmt, eps)
    box_area(boxes (N,4), out (N,), fmt)
    box_convert(boxes (N,4), out (N,4), in_fmt, out_fmt)
    masks_to_boxes(masks uint8 (N,H,W), out float32 (N,4))
    nms(boxes (N,4), scores float64 (N,), classes int64 (N,) | None, iou_threshold, keep int64 (N,)) -> K
    nms_sweep(boxes, scores, classes | None, thresholds list, keep int64 (T,N)) -> [K_t]
    soft_nms(boxes, scores (N,), iou_threshold, sigma, min_score, method, keep, new_scores) -> K
    matrix_nms(boxes, scores (N,), labels int64 (N,), kernel, sigma, out (N,))
    multiclass_nms(boxes (B,N,1|C,4), scores (B,N,C), iou_threshold, score_threshold,
                   max_per_class (-1: none), num (B,), out_boxes (B,K,4), out_scores (B,K),
                   out_classes (B,K), out_indices (B,K))

    Packed binary masks (layout: csrc/include/fastiou/mask_math.h; ``bits`` (N,H,WW) arrive as
    uint64 or int64, the same 64-bit words; boxes int32 (N,4) exclusive max; areas int64 (N,)):
    pack_masks(masks uint8 (N,H,W) [non-zero = foreground], bits (N,H,WW), boxes int32 (N,4), areas int64 (N,))
    unpack_masks(bits (N,H,WW), out uint8 (N,H,W))             # out = 0/1; W = out.shape[2]
    packed_stats(bits (N,H,WW), boxes int32 (N,4), areas int64 (N,))   # tight boxes + areas from bits
    mask_iou(bits1 (N,H,WW), boxes1, areas1, bits2 (M,H,WW), boxes2, areas2, out float32 (N,M))
    mask_nms(bits, boxes, areas, scores float64 (N,), iou_threshold, keep int64 (N,)) -> K
    mask_matrix_nms(bits, boxes, areas, scores float32 (N,), labels int64 (N,), kernel, sigma, out float32 (N,))
    resolve_overlaps(bits (N,H,WW), scores float64 (N,), out_bits (N,H,WW))

COCO run-length masks (host backends only: ``cpp`` and ``numba``; fastiou/rle.py picks the host
backend even when a GPU one is forced). RLEs travel as ``counts`` (a list of bytes, pycocotools'
compressed strings) with ``sizes`` int64 (N, 2) of (h, w); ``name`` is the argument name used in
error messages (ValueError: "name[i]['counts']: malformed counts ..."):

    rle_encode(masks uint8 (N,H,W), any positive strides, non-zero = foreground) -> [bytes]
    rle_decode(counts, h, w, out uint8 (N,H,W) | (N,W,H) if column_major, column_major, name)
    rle_area(counts, sizes, out uint32 (N,), name)
    rle_to_bbox(counts, sizes, out float64 (N,4) xywh, name)
    rle_merge(counts, sizes, intersect, name) -> bytes | None (empty list or sizes differ)
    rle_iou(dt_counts, dt_sizes, gt_counts, gt_sizes, iscrowd uint8 (G,) | None, out float64 (D,G))
    rle_box_iou(dt float64 (D,4), gt float64 (G,4), iscrowd uint8 (G,) | None, out float64 (D,G))
    rle_from_polygons([float64 (2K,) vertices], h, w, name) -> [bytes]
    rle_from_counts([uint32 (M,) run lengths], sizes, name) -> [bytes]

(fastiou._C.rle_unpack(list of RLE dicts) -> (counts, sizes) or None is input handling that
fastiou/rle.py uses whichever host backend runs the op; it is not part of this interface.)

GPU functions also take ``stream=`` (the caller's current stream) and never synchronise.
"""
