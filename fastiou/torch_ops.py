"""fastiou's box kernels as ``torch.library`` custom ops (``torch.ops.fastiou.*``).

The ops are what ``torch.jit.script``, ``torch.jit.trace``, ``torch.compile`` and
``torch.export`` see of fastiou: an opaque node with a schema and a fake (meta) kernel that
gives the result's shape and dtype without running it. ``nms`` and ``batched_nms`` have a
data-dependent output size, declared with ``torch.library.get_ctx().new_dynamic_size()``.

Registered once, on first use of ``fastiou.compat.torchvision`` (never at ``import fastiou``,
which must not import torch). The eager kernels call fastiou's public functions, so every
backend rule (dtypes, devices, NaN) is theirs.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_registered = False

NAMESPACE = "fastiou"
OPS = ("nms", "batched_nms", "box_iou", "generalized_box_iou", "distance_box_iou",
       "complete_box_iou", "box_area", "box_convert", "masks_to_boxes")


# Explicit schemas (argument names and defaults as torchvision's Python functions), so that
# TorchScript and keyword calls see torchvision's signatures.
SCHEMAS = {
    "nms": "(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor",
    "batched_nms": "(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor",
    "box_iou": "(Tensor boxes1, Tensor boxes2, str fmt=\"xyxy\") -> Tensor",
    "generalized_box_iou": "(Tensor boxes1, Tensor boxes2) -> Tensor",
    "distance_box_iou": "(Tensor boxes1, Tensor boxes2, float eps=1e-07) -> Tensor",
    "complete_box_iou": "(Tensor boxes1, Tensor boxes2, float eps=1e-07) -> Tensor",
    "box_area": "(Tensor boxes, str fmt=\"xyxy\") -> Tensor",
    "box_convert": "(Tensor boxes, str in_fmt, str out_fmt) -> Tensor",
    "masks_to_boxes": "(Tensor masks) -> Tensor",
}


def _result_dtype(torch, *tensors):
    """torchvision's float result rule: float64 in -> float64, anything else -> float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _check_boxes(torch, name, t, min_dim):
    torch._check(t.dim() >= min_dim and t.shape[-1] == 4,
                 lambda: f"{name}: expected shape {'(..., N, 4)' if min_dim == 2 else '(..., 4)'}, "
                         f"got {tuple(t.shape)}")


def _pairwise_fake(torch, boxes1, boxes2):
    _check_boxes(torch, "boxes1", boxes1, 2)
    _check_boxes(torch, "boxes2", boxes2, 2)
    lead = torch.broadcast_shapes(boxes1.shape[:-2], boxes2.shape[:-2])
    return boxes1.new_empty((*lead, boxes1.shape[-2], boxes2.shape[-2]),
                            dtype=_result_dtype(torch, boxes1, boxes2))


def _keep_fake(torch, boxes, scores):
    _check_boxes(torch, "boxes", boxes, 2)
    torch._check(boxes.dim() == 2, lambda: f"boxes: expected shape (N, 4), got {tuple(boxes.shape)}")
    torch._check(scores.dim() == 1 and scores.shape[0] == boxes.shape[0],
                 lambda: f"scores: expected shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    k = torch.library.get_ctx().new_dynamic_size()
    torch._check(k <= boxes.shape[0])
    return boxes.new_empty((k,), dtype=torch.int64)


_gpu = None


def _host_only(t) -> bool:
    """A CUDA tensor while fastiou has no CUDA backend (built or CuPy)."""
    global _gpu
    if t.device.type != "cuda":
        return False
    if _gpu is None:
        import fastiou
        b = fastiou.backends()
        _gpu = bool(b["cuda"]["available"] or b["cupy"]["available"])
    return not _gpu


_gpu_fallbacks: dict = {}


def _torchvision(name):
    """The function registered for CUDA tensors when fastiou cannot run on the GPU."""
    try:
        return _gpu_fallbacks[name]
    except KeyError:
        raise RuntimeError(f"fastiou::{name}: fastiou has no CUDA backend here (see fastiou.backends()) "
                           f"and no fallback was registered") from None


def register(gpu_fallbacks: dict | None = None) -> None:
    """Defines ``torch.ops.fastiou.*`` (idempotent, thread-safe).

    Args:
        gpu_fallbacks: name -> function the ops call for CUDA tensors when fastiou has no CUDA
            backend (fastiou.compat.torchvision passes torchvision's originals).
    """
    global _registered
    if gpu_fallbacks:
        _gpu_fallbacks.update(gpu_fallbacks)
    if _registered:
        return
    with _lock:
        if not _registered:
            _define()
            _registered = True


def _define() -> None:  # noqa: C901  (one short definition per op, kept together)
    import torch
    import fastiou

    def op(name):
        return torch.library.custom_op(f"{NAMESPACE}::{name}", mutates_args=(), schema=SCHEMAS[name])

    @op("nms")
    def nms(boxes, scores, iou_threshold):
        if _host_only(boxes):
            return _torchvision("nms")(boxes, scores, iou_threshold)
        return fastiou.nms(boxes, scores, iou_threshold).clone()

    @nms.register_fake
    def _(boxes, scores, iou_threshold):
        return _keep_fake(torch, boxes, scores)

    @op("batched_nms")
    def batched_nms(boxes, scores, idxs, iou_threshold):
        if _host_only(boxes):
            return _torchvision("batched_nms")(boxes, scores, idxs, iou_threshold)
        return fastiou.batched_nms(boxes, scores, idxs, iou_threshold).clone()

    @batched_nms.register_fake
    def _(boxes, scores, idxs, iou_threshold):
        torch._check(idxs.dim() == 1 and idxs.shape[0] == boxes.shape[0],
                     lambda: f"idxs: expected shape ({boxes.shape[0]},), got {tuple(idxs.shape)}")
        return _keep_fake(torch, boxes, scores)

    @op("box_iou")
    def box_iou(boxes1, boxes2, fmt="xyxy"):
        if _host_only(boxes1):
            return _torchvision("box_iou")(boxes1, boxes2, fmt)
        return fastiou.box_iou(boxes1, boxes2, fmt)

    @box_iou.register_fake
    def _(boxes1, boxes2, fmt="xyxy"):
        return _pairwise_fake(torch, boxes1, boxes2)

    @op("generalized_box_iou")
    def generalized_box_iou(boxes1, boxes2):
        if _host_only(boxes1):
            return _torchvision("generalized_box_iou")(boxes1, boxes2)
        return fastiou.generalized_box_iou(boxes1, boxes2)

    @generalized_box_iou.register_fake
    def _(boxes1, boxes2):
        return _pairwise_fake(torch, boxes1, boxes2)

    @op("distance_box_iou")
    def distance_box_iou(boxes1, boxes2, eps=1e-7):
        if _host_only(boxes1):
            return _torchvision("distance_box_iou")(boxes1, boxes2, eps)
        return fastiou.distance_box_iou(boxes1, boxes2, eps)

    @distance_box_iou.register_fake
    def _(boxes1, boxes2, eps=1e-7):
        return _pairwise_fake(torch, boxes1, boxes2)

    @op("complete_box_iou")
    def complete_box_iou(boxes1, boxes2, eps=1e-7):
        if _host_only(boxes1):
            return _torchvision("complete_box_iou")(boxes1, boxes2, eps)
        return fastiou.complete_box_iou(boxes1, boxes2, eps)

    @complete_box_iou.register_fake
    def _(boxes1, boxes2, eps=1e-7):
        return _pairwise_fake(torch, boxes1, boxes2)

    @op("box_area")
    def box_area(boxes, fmt="xyxy"):
        if _host_only(boxes):
            return _torchvision("box_area")(boxes, fmt)
        return fastiou.box_area(boxes, fmt)

    @box_area.register_fake
    def _(boxes, fmt="xyxy"):
        _check_boxes(torch, "boxes", boxes, 1)
        if boxes.is_floating_point():
            dt = _result_dtype(torch, boxes)
        else:  # torchvision's _upcast: int32 / int64 kept, smaller integers -> int32
            dt = boxes.dtype if boxes.dtype in (torch.int32, torch.int64) else torch.int32
        return boxes.new_empty(boxes.shape[:-1], dtype=dt)

    @op("box_convert")
    def box_convert(boxes, in_fmt, out_fmt):
        if _host_only(boxes):
            return _torchvision("box_convert")(boxes, in_fmt, out_fmt)
        return fastiou.box_convert(boxes, in_fmt, out_fmt)

    @box_convert.register_fake
    def _(boxes, in_fmt, out_fmt):
        _check_boxes(torch, "boxes", boxes, 1)
        dt = boxes.dtype
        if not boxes.is_floating_point() and in_fmt != out_fmt and "cxcywh" in (in_fmt, out_fmt):
            dt = torch.float32
        return boxes.new_empty(boxes.shape, dtype=dt)

    @op("masks_to_boxes")
    def masks_to_boxes(masks):
        if _host_only(masks):
            return _torchvision("masks_to_boxes")(masks)
        return fastiou.masks_to_boxes(masks)

    @masks_to_boxes.register_fake
    def _(masks):
        torch._check(masks.dim() == 3, lambda: f"masks: expected shape (N, H, W), got {tuple(masks.shape)}")
        n = masks.shape[0] if masks.numel() != 0 else 0
        return masks.new_empty((n, 4), dtype=torch.float32)
