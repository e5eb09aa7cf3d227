"""The ``cupy`` backend: the kernels of csrc/kernels/ compiled at run time with NVRTC.

The same ``.cuh`` files that nvcc builds into fastiou._C_cuda, shipped as package data
(fastiou/_csrc/, or csrc/ of a source checkout; see kernel_sources.py), compiled with the
flags that matter (C++17, --fmad=false) and launched with the grid shapes of csrc/cuda/*.cu.
fastiou/_dispatch.py has checked every call against fastiou/_backends/interface.py first.
"""

from __future__ import annotations

import threading
import warnings

import cupy as cp
import numpy as np

from .. import _C
from .kernel_sources import INSTANCES, options

_TYPES = {"float32": "float", "float64": "double"}
_SCALAR = {"float32": np.float32, "float64": np.float64}
_MODULES: dict[str, object] = {}
_lock = threading.Lock()

# Every launch constant, split rule and workspace layout comes from csrc/include/fastiou/launch.h
# through fastiou._C (the values nvcc compiled into fastiou._C_cuda): none is typed here.
_G = _C.launch_geometry()
_PAIRWISE_ROWS = _G["kPairwiseRows"]
_ELEMENTWISE_THREADS = _G["kElementwiseThreads"]
_MASKS_THREADS = _G["kMasksThreads"]


def _module(filename: str):
    mod = _MODULES.get(filename)
    if mod is None:
        with _lock:
            mod = _MODULES.get(filename)
            if mod is None:
                mod = cp.RawModule(code=f'#include "{filename}"\n', options=options(),
                                   name_expressions=INSTANCES[filename])
                mod.compile()
                _MODULES[filename] = mod
    return mod


def _kernel(filename: str, name: str):
    return _module(filename).get_function(name)


def _view(a):
    nbytes = int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
    mem = cp.cuda.UnownedMemory(a.ptr, nbytes, a.owner, device_id=a.device)
    return cp.ndarray(a.shape, dtype=a.dtype, memptr=cp.cuda.MemoryPointer(mem, 0))


def _grid_for(work: int, per_block: int) -> int:
    return int(min(max(1, -(-work // per_block)), 1 << 20))


def _external_stream(ptr: int, device: int):
    """A cupy Stream object for the caller's stream (cupy 14 renamed ExternalStream)."""
    make = getattr(cp.cuda.Stream, "from_external", None)
    if make is not None:
        try:
            return make(ptr, device)
        except Exception:  # another signature: fall back to the older class below
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cp.cuda.ExternalStream(ptr, device)


def _launch(filename, name, grid, block, device, stream, args):
    with cp.cuda.Device(device), _external_stream(stream, device):
        _kernel(filename, name)((grid,), (block,), args)


def box_pairwise(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    batch, n, _ = boxes1.shape
    m = boxes2.shape[1]
    if batch * n * m == 0:
        return
    threads = _C.pairwise_threads(m)
    tiles = batch * (-(-n // _PAIRWISE_ROWS)) * (-(-m // threads))
    t = _TYPES[boxes1.dtype]
    _launch("box_iou.cuh", f"fastiou::box_pairwise_kernel<{t}, {mode}>", _grid_for(tiles, 1), threads,
            boxes1.device, stream,
            (_view(boxes1), _view(boxes2), _view(out), np.int64(batch), np.int64(n), np.int64(m),
             np.int32(fmt), _SCALAR[boxes1.dtype](eps)))


def box_aligned(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    n = boxes1.shape[0]
    if n == 0:
        return
    t = _TYPES[boxes1.dtype]
    _launch("box_iou.cuh", f"fastiou::box_aligned_kernel<{t}, {mode}>", _grid_for(n, _ELEMENTWISE_THREADS), _ELEMENTWISE_THREADS,
            boxes1.device, stream,
            (_view(boxes1), _view(boxes2), _view(out), np.int64(n), np.int32(fmt),
             _SCALAR[boxes1.dtype](eps)))


def box_area(boxes, out, fmt, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return
    _launch("box_elementwise.cuh", f"fastiou::box_area_kernel<{_TYPES[boxes.dtype]}>",
            _grid_for(n, _ELEMENTWISE_THREADS), _ELEMENTWISE_THREADS, boxes.device, stream, (_view(boxes), _view(out), np.int64(n), np.int32(fmt)))


def box_convert(boxes, out, in_fmt, out_fmt, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return
    _launch("box_elementwise.cuh", f"fastiou::box_convert_kernel<{_TYPES[boxes.dtype]}>",
            _grid_for(n, _ELEMENTWISE_THREADS), _ELEMENTWISE_THREADS, boxes.device, stream,
            (_view(boxes), _view(out), np.int64(n), np.int32(in_fmt), np.int32(out_fmt)))


def masks_to_boxes(masks, out, *, stream):
    n, h, w = masks.shape
    if n == 0:
        return
    if h >= 2**31 or w >= 2**31:
        raise ValueError("masks: H and W must be < 2^31")
    _launch("masks_to_boxes.cuh", "fastiou::masks_to_boxes_kernel", _grid_for(n, 1), _MASKS_THREADS,
            masks.device, stream, (_view(masks), _view(out), np.int64(n), np.int32(h), np.int32(w)))


# ---- Suppression: the pipeline of csrc/kernels/nms.cuh (see its header), with cupy.argsort
# for the two sorts. cupy.argsort is stable (documented: "Returns the indices that would sort
# an array with a stable sorting"; it is thrust::stable_sort_by_key on a copy of the keys), so
# sorting the score keys and then the class keys of the ranked boxes gives exactly the
# (class, rank) order that cub's stable radix sorts give the cuda backend.

_NMS_TILE = _G["kNmsTile"]
_NMS_REDUCE_THREADS = _G["kNmsReduceThreads"]
_NMS_COMPACT_THREADS = _G["kNmsCompactThreads"]
_NMS_SWEEP_WORDS = _G["kNmsSweepWords"]
_ELT_THREADS = _G["kNmsElementwiseThreads"]
_SOFT_THREADS = _G["kSoftNmsThreads"]
_MATRIX_THREADS = _G["kMatrixNmsThreads"]
_REDUCE_SHARED_LIMIT = _G["kReduceSharedLimit"]
_NULL = np.uint64(0)         # a null pointer argument (8 zero bytes on every cupy version)


def _ptr(a):
    return _NULL if a is None else a


def _nms_blocks(n: int, what: str) -> int:
    cb = -(-n // _NMS_TILE)
    if n >= 2**31 or cb > 65535:
        raise ValueError(f"{what}: at most {65535 * _NMS_TILE} boxes on the GPU, got {n}")
    return cb


def _rank(boxes, keys, classes, n: int, want_src: bool = False):
    """(order, rank, cls, col_end, sboxes, src) as csrc/cuda/nms.cu's run_rank; in a stream context."""
    t = _TYPES[str(boxes.dtype)]
    order = cp.argsort(keys)  # stable: the box ranked p
    rank = cls = col_end = None
    grid = _grid_for(n, _ELT_THREADS)
    if classes is not None:
        ck = classes[order]
        rank = cp.argsort(ck)  # stable: class-major position q -> rank
        cls = ck[rank]
        cb = -(-n // _NMS_TILE)
        col_end = cp.empty(cb, dtype=cp.int32)
        _kernel("nms.cuh", "fastiou::nms_class_blocks_kernel")(
            (_grid_for(cb, _ELT_THREADS),), (_ELT_THREADS,), (cls, np.int64(n), col_end, np.int64(cb)))
    sboxes = cp.empty((n, 4), dtype=boxes.dtype)
    src = cp.empty(n, dtype=cp.int64) if want_src else None
    _kernel("nms.cuh", f"fastiou::nms_gather_kernel<{t}>")(
        (grid,), (_ELT_THREADS,), (boxes, order, _ptr(rank), sboxes, _ptr(src), np.int64(n)))
    return order, rank, cls, col_end, sboxes, src


def _score_keys(scores, n: int):
    keys = cp.empty(n, dtype=cp.uint64)
    idx = cp.empty(n, dtype=cp.int64)
    name = f"fastiou::rank_keys_kernel<{_TYPES[str(scores.dtype)]}>"
    _kernel("nms.cuh", name)((_grid_for(n, _ELT_THREADS),), (_ELT_THREADS,), (scores, keys, idx, np.int64(n)))
    return keys


def _removed(cb: int, masks: int):
    """(global removed[] buffer or None, dynamic shared bytes) for nms_reduce_kernel."""
    if cb * 8 > _REDUCE_SHARED_LIMIT:
        return cp.empty(cb * masks, dtype=cp.uint64), 0
    return None, cb * 8


def _reduce(mask, n, cb, masks, col_end, order, keep, count, dest, flags):
    removed, smem = _removed(cb, masks)
    _kernel("nms.cuh", "fastiou::nms_reduce_kernel")(
        (masks,), (_NMS_REDUCE_THREADS,),
        (mask, np.int64(n), np.int64(cb), _ptr(col_end), _ptr(order), _ptr(keep), _ptr(count), _ptr(dest),
         _ptr(flags), _ptr(removed)),
        shared_mem=smem)


def nms(boxes, scores, classes, iou_threshold, keep, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return 0
    cb = _nms_blocks(n, "nms")
    t = _TYPES[boxes.dtype]
    with cp.cuda.Device(boxes.device), _external_stream(stream, boxes.device):
        b = _view(boxes)
        c = None if classes is None else _view(classes)
        order, rank, cls, col_end, sboxes, _ = _rank(b, _score_keys(_view(scores), n), c, n)
        mask = cp.empty(n * cb, dtype=cp.uint64)
        _kernel("nms.cuh", f"fastiou::nms_mask_kernel<{t}, 1>")(
            (cb, cb), (_NMS_TILE,),
            (sboxes, _ptr(cls), _ptr(col_end), np.int64(n), np.int64(cb), np.float64(iou_threshold), _NULL,
             np.int32(1), mask))
        count = cp.zeros(1, dtype=cp.int64)
        k = _view(keep)
        if c is None:  # ranks are positions: the reduce writes the kept indices itself
            _reduce(mask, n, cb, 1, None, order, k, count, None, None)
        else:  # class-major positions: flags by rank, then compaction in rank order
            flags = cp.empty(n, dtype=cp.uint8)
            _reduce(mask, n, cb, 1, col_end, None, None, None, rank, flags)
            _kernel("nms.cuh", "fastiou::nms_compact_kernel")(
                (1,), (_NMS_COMPACT_THREADS,), (flags, order, np.int64(n), k, count))
        return int(count.get()[0])  # the one synchronisation


def nms_sweep(boxes, scores, classes, thresholds, keep, *, stream):
    n = boxes.shape[0]
    ths = [float(x) for x in thresholds]
    nt = len(ths)
    if n == 0 or nt == 0:
        return [0] * nt
    cb = _nms_blocks(n, "nms_sweep")
    t = _TYPES[boxes.dtype]
    with cp.cuda.Device(boxes.device), _external_stream(stream, boxes.device):
        c = None if classes is None else _view(classes)
        order, rank, cls, col_end, sboxes, _ = _rank(_view(boxes), _score_keys(_view(scores), n), c, n)
        thr = cp.asarray(np.asarray(ths, dtype=np.float64))
        words = n * cb
        mask = cp.empty(words * nt, dtype=cp.uint64)
        kern = _kernel("nms.cuh", f"fastiou::nms_mask_kernel<{t}, {_NMS_SWEEP_WORDS}>")
        for t0 in range(0, nt, _NMS_SWEEP_WORDS):
            cnt = min(_NMS_SWEEP_WORDS, nt - t0)
            kern((cb, cb), (_NMS_TILE,),
                 (sboxes, _ptr(cls), _ptr(col_end), np.int64(n), np.int64(cb), np.float64(0.0), thr[t0:],
                  np.int32(cnt), mask[words * t0:]))
        flags = cp.empty(n * nt, dtype=cp.uint8)
        counts = cp.zeros(nt, dtype=cp.int64)
        _reduce(mask, n, cb, nt, col_end, None, None, None, rank, flags)
        _kernel("nms.cuh", "fastiou::nms_compact_kernel")(
            (nt,), (_NMS_COMPACT_THREADS,), (flags, order, np.int64(n), _view(keep), counts))
        return [int(x) for x in counts.get()]


def soft_nms(boxes, scores, iou_threshold, sigma, min_score, method, keep, new_scores, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return 0
    dt = boxes.dtype
    sc = _SCALAR[dt]
    with cp.cuda.Device(boxes.device), _external_stream(stream, boxes.device):
        cur = cp.empty(n, dtype=dt)
        alive = cp.empty(n, dtype=cp.uint8)
        count = cp.zeros(1, dtype=cp.int64)
        _kernel("soft_nms.cuh", f"fastiou::soft_nms_kernel<{_TYPES[dt]}>")(
            (1,), (_SOFT_THREADS,),
            (_view(boxes), _view(scores), np.int64(n), sc(iou_threshold), sc(sigma), sc(min_score),
             np.int32(method), cur, alive, _view(keep), _view(new_scores), count))
        return int(count.get()[0])


def matrix_nms(boxes, scores, labels, kernel, sigma, out, *, stream):
    n = boxes.shape[0]
    if n == 0:
        return
    _nms_blocks(n, "matrix_nms")
    dt = boxes.dtype
    t = _TYPES[dt]
    with cp.cuda.Device(boxes.device), _external_stream(stream, boxes.device):
        s = _view(scores)
        _, _, lab, _, sboxes, src = _rank(_view(boxes), _score_keys(s, n), _view(labels), n, want_src=True)
        comp = cp.empty(n, dtype=dt)
        grid = _grid_for(n * 32, _MATRIX_THREADS)  # a warp per box
        _kernel("matrix_nms.cuh", f"fastiou::matrix_nms_comp_kernel<{t}>")(
            (grid,), (_MATRIX_THREADS,), (sboxes, lab, np.int64(n), comp))
        _kernel("matrix_nms.cuh", f"fastiou::matrix_nms_decay_kernel<{t}>")(
            (grid,), (_MATRIX_THREADS,),
            (sboxes, lab, np.int64(n), comp, s, src, np.int32(kernel), _SCALAR[dt](sigma), _view(out)))


_MC_THREADS = _G["kMcThreads"]
_MC_SELECT_THREADS = _G["kMcSelectThreads"]
_MC_WORKSPACE_BUDGET = _G["kMcWorkspaceBudget"]


def multiclass_nms(boxes, scores, iou_threshold, score_threshold, max_per_class, num, out_boxes, out_scores,
                   out_classes, out_indices, *, stream):
    bsz, n, c = scores.shape
    cb = boxes.shape[2]
    k = out_scores.shape[1]
    if bsz == 0 or k == 0:
        return
    if c == 0:
        raise ValueError("multiclass_nms: scores need at least one class (C >= 1)")
    dt = boxes.dtype
    t = _TYPES[dt]
    sc = _SCALAR[dt]
    one = _C.mc_layout(1, n, c, k)["total"]
    group = max(1, min(bsz, _MC_WORKSPACE_BUDGET // one, 65535))
    with cp.cuda.Device(boxes.device), _external_stream(stream, boxes.device):
        b, s = _view(boxes), _view(scores)
        outs = [_view(a) for a in (num, out_boxes, out_scores, out_classes, out_indices)]
        ws = cp.empty(_C.mc_layout(group, n, c, k)["total"], dtype=cp.uint8)
        for b0 in range(0, bsz, group):
            g = min(group, bsz - b0)
            part = {name: ws[o:] for name, o in _C.mc_layout(g, n, c, k).items() if name != "total"}
            grid = (c, g)
            _kernel("multiclass_nms.cuh", f"fastiou::mc_candidates_kernel<{t}>")(
                grid, (_MC_THREADS,), (s, np.int64(b0), np.int64(n), np.int64(c), sc(score_threshold),
                                       part["cand"], part["m"]))
            _kernel("multiclass_nms.cuh", "fastiou::mc_sort_kernel")(
                grid, (_MC_THREADS,), (part["cand"], part["tmp"], np.int64(n), np.int64(c), part["m"]))
            _kernel("multiclass_nms.cuh", f"fastiou::mc_nms_kernel<{t}>")(
                grid, (_MC_THREADS,), (b, np.int64(b0), np.int64(n), np.int64(c), np.int64(cb),
                                       np.float64(iou_threshold), np.int64(max_per_class), part["cand"], part["m"],
                                       part["removed"], part["tmp"], part["kc"]))
            _kernel("multiclass_nms.cuh", f"fastiou::mc_select_kernel<{t}>")(
                (g,), (_MC_SELECT_THREADS,),
                (b, s, np.int64(b0), np.int64(n), np.int64(c), np.int64(cb), np.int64(k), part["tmp"], part["kc"],
                 part["lists_a"], part["lists_b"], part["lens_a"], part["lens_b"], *outs))


# ---- Bit-packed masks (csrc/include/fastiou/mask_math.h): the kernels of mask_pack.cuh,
# mask_iou.cuh, mask_nms.cuh and resolve_overlaps.cuh with the grids of csrc/cuda/mask_*.cu and
# resolve_overlaps.cu. bits arrive as uint64 or int64 (the same bytes; the kernels read raw
# words). The ranking is cupy.argsort (stable) of rank_keys.cuh's score keys, as cub's stable
# radix sort in the cuda backend; nms's reduce (nms.cuh) does mask_nms's greedy pass.

_MASK_PACK_THREADS = _G["kMaskPackThreads"]
_MASK_STATS_THREADS = _G["kMaskStatsThreads"]
_MASK_IOU_TILE = _G["kMaskIouTile"]
_MASK_IOU_THREADS = _G["kMaskIouThreads"]
_MASK_FINALIZE_THREADS = _G["kMaskIouFinalizeThreads"]
_MASK_LABEL_THREADS = _G["kMaskLabelThreads"]
_MASK_MATRIX_THREADS = _G["kMaskMatrixThreads"]
_RESOLVE_THREADS = _G["kResolveThreads"]
_INT_MAX = 2**31 - 1


def _check_packed(h: int, ww: int, what: str) -> None:
    """mask_common.h's check_packed: the kernels index h * ww words and x < ww * 64 in int32."""
    if h > _INT_MAX or ww > (_INT_MAX - 64) // 64 or h * ww > _INT_MAX:
        raise ValueError(f"{what}: masks too large for the GPU kernels (H * ceil(W/64) must be < 2^31 and "
                         f"W < 2^31 - 64), got H={h}, words per row {ww}")


def _words_view(bits):
    """_view of a bits array, or a null pointer when it holds no word (H or W zero: the kernels
    then read no word, and an empty torch tensor's pointer may be 0)."""
    return _NULL if int(np.prod(bits.shape)) == 0 else _view(bits)


def _stats(bits, boxes, areas, n: int, h: int, ww: int) -> None:
    """packed_stats_kernel on cupy arrays, in a device and stream context."""
    _kernel("mask_pack.cuh", "fastiou::packed_stats_kernel")(
        (_grid_for(n, 1),), (_MASK_STATS_THREADS,), (bits, boxes, areas, np.int64(n), np.int32(h), np.int32(ww)))


def pack_masks(masks, bits, boxes, areas, *, stream):
    n, h, w = masks.shape
    ww = -(-w // 64)
    if n == 0:
        return
    if w > _INT_MAX:
        raise ValueError("pack_masks: W must be < 2^31")
    _check_packed(h, ww, "pack_masks")
    with cp.cuda.Device(masks.device), _external_stream(stream, masks.device):
        b = _words_view(bits)
        rows = n * h
        if rows > 0 and ww > 0:
            _kernel("mask_pack.cuh", "fastiou::pack_masks_kernel")(
                (_grid_for(rows * 32, _MASK_PACK_THREADS),), (_MASK_PACK_THREADS,),
                (_view(masks), b, np.int64(rows), np.int32(w), np.int32(ww)))
        _stats(b, _view(boxes), _view(areas), n, h, ww)


def unpack_masks(bits, out, *, stream):
    n, h, w = out.shape
    ww = -(-w // 64)
    if n * h * w == 0:
        return
    if w > _INT_MAX:
        raise ValueError("unpack_masks: W must be < 2^31")
    _check_packed(h, ww, "unpack_masks")
    rows = n * h
    _launch("mask_pack.cuh", "fastiou::unpack_masks_kernel", _grid_for(rows * 32, _MASK_PACK_THREADS),
            _MASK_PACK_THREADS, bits.device, stream,
            (_view(bits), _view(out), np.int64(rows), np.int32(w), np.int32(ww)))


def packed_stats(bits, boxes, areas, *, stream):
    n, h, ww = bits.shape
    if n == 0:
        return
    _check_packed(h, ww, "packed_stats")
    with cp.cuda.Device(bits.device), _external_stream(stream, bits.device):
        _stats(_words_view(bits), _view(boxes), _view(areas), n, h, ww)


def _mask_iou(b1, box1, a1, n, b2, box2, a2, m, h, ww, out, device):
    """mask_iou on cupy arrays into out (n, m) float32, in a device and stream context."""
    tiles = (-(-n // _MASK_IOU_TILE)) * (-(-m // _MASK_IOU_TILE))
    sms = int(cp.cuda.Device(device).attributes["MultiProcessorCount"])
    splits = _C.mask_iou_splits(n, m, h, ww, sms)
    grid = (_grid_for(tiles, 1), splits)
    kern = _kernel("mask_iou.cuh", "fastiou::mask_iou_kernel")
    head = (b1, box1, a1, np.int64(n), b2, box2, a2, np.int64(m), np.int32(h), np.int32(ww))
    if splits == 1:  # each tile writes its IoUs
        kern(grid, (_MASK_IOU_THREADS,), head + (_NULL, out))
        return
    counts = cp.zeros(n * m, dtype=cp.uint64)
    kern(grid, (_MASK_IOU_THREADS,), head + (counts, _NULL))
    _kernel("mask_iou.cuh", "fastiou::mask_iou_finalize_kernel")(
        (_grid_for(n * m, _MASK_FINALIZE_THREADS),), (_MASK_FINALIZE_THREADS,),
        (counts, box1, a1, np.int64(n), box2, a2, np.int64(m), out))


def mask_iou(bits1, boxes1, areas1, bits2, boxes2, areas2, out, *, stream):
    n, h, ww = bits1.shape
    m = bits2.shape[0]
    if n == 0 or m == 0:
        return
    _check_packed(h, ww, "mask_iou")
    with cp.cuda.Device(bits1.device), _external_stream(stream, bits1.device):
        _mask_iou(_words_view(bits1), _view(boxes1), _view(areas1), n, _words_view(bits2), _view(boxes2),
                  _view(areas2), m, h, ww, _view(out), bits1.device)


def _mask_order(scores, n: int):
    """order[p] = the mask ranked p (a stable sort of rank_keys.cuh's keys); in a stream context."""
    return cp.argsort(_score_keys(scores, n))  # stable, int64


def _mask_nms_blocks(n: int, what: str) -> int:
    cb = -(-n // _NMS_TILE)
    if n > _INT_MAX or cb > 65535:
        raise ValueError(f"{what}: at most {65535 * _NMS_TILE} masks on the GPU, got {n}")
    return cb


def mask_nms(bits, boxes, areas, scores, iou_threshold, keep, *, stream):
    n, h, ww = bits.shape
    if n == 0:
        return 0
    cb = _mask_nms_blocks(n, "mask_nms")
    _check_packed(h, ww, "mask_nms")
    with cp.cuda.Device(bits.device), _external_stream(stream, bits.device):
        b, bx, ar = _words_view(bits), _view(boxes), _view(areas)
        order = _mask_order(_view(scores), n)
        iou = cp.empty((n, n), dtype=cp.float32)
        _mask_iou(b, bx, ar, n, b, bx, ar, n, h, ww, iou, bits.device)
        mask = cp.empty(n * cb, dtype=cp.uint64)
        _kernel("mask_nms.cuh", "fastiou::mask_nms_bitmask_kernel")(
            (cb, cb), (_NMS_TILE,), (iou, order, np.int64(n), np.int64(cb), np.float64(iou_threshold), mask))
        count = cp.zeros(1, dtype=cp.int64)
        _reduce(mask, n, cb, 1, None, order, _view(keep), count, None, None)
        return int(count.get()[0])  # the one synchronisation


def mask_matrix_nms(bits, boxes, areas, scores, labels, kernel, sigma, out, *, stream):
    n, h, ww = bits.shape
    if n == 0:
        return
    _mask_nms_blocks(n, "mask_matrix_nms")
    _check_packed(h, ww, "mask_matrix_nms")
    with cp.cuda.Device(bits.device), _external_stream(stream, bits.device):
        b, bx, ar, s = _words_view(bits), _view(boxes), _view(areas), _view(scores)
        order = _mask_order(s, n)
        slab = cp.empty(n, dtype=cp.int64)
        _kernel("mask_nms.cuh", "fastiou::mask_rank_labels_kernel")(
            (_grid_for(n, _MASK_LABEL_THREADS),), (_MASK_LABEL_THREADS,), (_view(labels), order, slab, np.int64(n)))
        iou = cp.empty((n, n), dtype=cp.float32)
        _mask_iou(b, bx, ar, n, b, bx, ar, n, h, ww, iou, bits.device)
        comp = cp.empty(n, dtype=cp.float32)
        grid = _grid_for(n * 32, _MASK_MATRIX_THREADS)  # a warp per mask
        _kernel("mask_nms.cuh", "fastiou::mask_matrix_comp_kernel")(
            (grid,), (_MASK_MATRIX_THREADS,), (iou, order, slab, np.int64(n), comp))
        _kernel("mask_nms.cuh", "fastiou::mask_matrix_decay_kernel")(
            (grid,), (_MASK_MATRIX_THREADS,),
            (iou, order, slab, np.int64(n), comp, s, np.int32(kernel), np.float32(sigma), _view(out)))


def resolve_overlaps(bits, scores, out_bits, *, stream):
    n, h, ww = bits.shape
    if n == 0 or h * ww == 0:
        return
    if n > _INT_MAX:
        raise ValueError("resolve_overlaps: at most 2^31 - 1 masks on the GPU")
    _check_packed(h, ww, "resolve_overlaps")
    with cp.cuda.Device(bits.device), _external_stream(stream, bits.device):
        order = _mask_order(_view(scores), n)
        _kernel("resolve_overlaps.cuh", "fastiou::resolve_overlaps_kernel")(
            (_grid_for(h * ww, _RESOLVE_THREADS),), (_RESOLVE_THREADS,),
            (_view(bits), order, np.int64(n), np.int64(h * ww), _view(out_bits)))


# Anchors and matching (kernels: anchors.cuh, box_iou_max.cuh; launch shapes as anchors.cu and
# box_iou_max.cu).
_IOU_MAX_THREADS = _G["kIouMaxThreads"]
_ANCHOR_GRID_THREADS = _G["kAnchorGridThreads"]


def anchor_grid(cells, levels, strides, offset, out, *, stream):
    total, nlev = out.shape[0], levels.shape[0]
    assert levels.shape == (nlev, 5) and strides.shape == (nlev, 2) and cells.dtype == out.dtype
    if total == 0 or nlev == 0:
        return
    _launch("anchors.cuh", f"fastiou::anchor_grid_kernel<{_TYPES[out.dtype]}>", _grid_for(total, _ANCHOR_GRID_THREADS),
            _ANCHOR_GRID_THREADS, out.device, stream,
            (_view(cells), _view(levels), _view(strides), np.int64(nlev), np.float64(offset), _view(out),
             np.int64(total)))


def _iou_max_grid(n: int, batch: int):
    if batch > 65535:
        raise RuntimeError("box_iou_max: at most 65535 items per call on the GPU")
    return (-(-n // _IOU_MAX_THREADS), batch)


def box_iou_max(boxes1, boxes2, counts, values, indices, *, stream):
    batch, m = boxes2.shape[0], boxes2.shape[1]
    n = boxes1.shape[1]
    assert values.shape == indices.shape == (batch, n) and counts.shape == (batch,)
    if batch * n == 0:
        return
    T = _SCALAR[boxes1.dtype]
    with cp.cuda.Device(boxes1.device), _external_stream(stream, boxes1.device):
        _kernel("box_iou_max.cuh", f"fastiou::iou_max_rows_kernel<{_TYPES[boxes1.dtype]}>")(
            _iou_max_grid(n, batch), (_IOU_MAX_THREADS,),
            (_view(boxes1), np.int64(boxes1.shape[0]), _view(boxes2), _view(counts), np.int64(n), np.int64(m),
             _view(values), _view(indices), np.uint64(0), np.int32(0), T(0), T(0)))


def match_boxes(anchors, gt, counts, high, low, allow_low_quality_matches, matches, *, stream):
    batch, m = gt.shape[0], gt.shape[1]
    n = anchors.shape[1]
    assert matches.shape == (batch, n) and counts.shape == (batch,)
    if batch * n == 0:
        return
    T = _SCALAR[anchors.dtype]
    t = _TYPES[anchors.dtype]
    grid = _iou_max_grid(n, batch)
    with cp.cuda.Device(anchors.device), _external_stream(stream, anchors.device):
        best = cp.empty((batch, n), dtype=anchors.dtype)
        colmax = cp.zeros((batch, max(m, 1)), dtype=cp.uint64) if allow_low_quality_matches else None
        _kernel("box_iou_max.cuh", f"fastiou::iou_max_rows_kernel<{t}>")(
            grid, (_IOU_MAX_THREADS,),
            (_view(anchors), np.int64(anchors.shape[0]), _view(gt), _view(counts), np.int64(n), np.int64(m),
             best, _view(matches), colmax if colmax is not None else np.uint64(0), np.int32(1), T(low), T(high)))
        if colmax is not None:
            _kernel("box_iou_max.cuh", f"fastiou::iou_lowq_kernel<{t}>")(
                grid, (_IOU_MAX_THREADS,),
                (_view(anchors), np.int64(anchors.shape[0]), _view(gt), _view(counts), np.int64(n), np.int64(m),
                 colmax, _view(matches)))
