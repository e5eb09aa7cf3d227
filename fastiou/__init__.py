"""fastiou: compiled kernels for box IoU, masks, NMS and anchors.

A drop-in for ``torchvision.ops`` box functions on numpy, torch (CPU/CUDA) and cupy arrays.
``import fastiou`` imports neither torch, cupy nor numba: backends load on first use.
"""

from __future__ import annotations

from ._dispatch import backends, use_backend
from ._errors import InputError
from .boxes import (box_area, box_convert, box_ioa, box_iou, box_iou_aligned, complete_box_iou,
                    distance_box_iou, generalized_box_iou, masks_to_boxes)
from .nms import (MulticlassNMSResult, batched_nms, matrix_nms, multiclass_nms, nms, nms_sweep,
                  soft_nms)
from .masks import PackedMasks, mask_iou, mask_nms, pack_masks, resolve_overlaps
from .anchors import (AnchorFit, AnchorGenerator, AnchorSuggestion, anchor_fit, box_iou_max,
                      match_boxes, suggest_anchors)
from . import compat, rle  # noqa: E402  (fastiou.rle: COCO run-length masks)

__version__ = "0.1.0"

__all__ = ["InputError", "backends", "use_backend", "info", "set_num_threads", "get_num_threads", "box_area", "box_convert", "box_iou",
           "generalized_box_iou", "distance_box_iou", "complete_box_iou", "box_ioa",
           "box_iou_aligned", "masks_to_boxes", "nms", "batched_nms", "nms_sweep", "soft_nms",
           "matrix_nms", "multiclass_nms", "MulticlassNMSResult", "PackedMasks", "pack_masks",
           "mask_iou", "mask_nms", "resolve_overlaps", "AnchorGenerator", "box_iou_max",
           "match_boxes", "anchor_fit", "AnchorFit", "suggest_anchors", "AnchorSuggestion", "rle",
           "compat", "__version__"]


def set_num_threads(num_threads: int) -> None:
    """Sets how many threads the CPU kernels use (OpenMP; default: all cores).

    Notes:
        In a process that also runs torch, both may share one OpenMP runtime, so this and
        ``torch.set_num_threads`` can affect each other.
    """
    from . import _C
    _C.set_num_threads(int(num_threads))


def get_num_threads() -> int:
    """How many threads the CPU kernels use."""
    from . import _C
    return int(_C.get_num_threads())


def info() -> dict:
    """Version, build flags, the CPU instruction set the kernels dispatch to, backends, GPU."""
    import platform

    from . import _dispatch

    out = {"version": __version__, "python": platform.python_version(), "machine": platform.machine()}
    try:
        from . import _C
        out["build"] = dict(_C.build_info())
    except ImportError as e:
        out["build"] = {"error": f"fastiou._C failed to import: {e}"}
    out["backends"] = backends()
    cuda_mod, _ = _dispatch._backend("cuda")
    if cuda_mod is not None:
        from . import _C_cuda
        out["cuda_build"] = dict(_C_cuda.build_info())
    gpus = []
    if "torch" in __import__("sys").modules or cuda_mod is not None:
        try:
            import torch
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception:  # torch absent or without CUDA: no names to report
            gpus = []
    out["gpus"] = gpus
    return out
