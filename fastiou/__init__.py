"""fastiou: compiled kernels for box IoU, masks, NMS and anchors.

A drop-in for ``torchvision.ops`` box functions on numpy, torch (CPU/CUDA) and cupy arrays.
``import fastiou`` imports neither torch, cupy nor numba: backends load on first use.
"""

from __future__ import annotations

import operator as _operator
import os as _os

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
           "compat", "patch_torchvision", "unpatch_torchvision", "__version__"]


def patch_torchvision():
    """Runs ``torchvision.ops``' box functions on fastiou, in torchvision's own modules.

    Swaps fastiou's versions (``fastiou.compat.torchvision``: nms, batched_nms, box_iou,
    generalized / distance / complete_box_iou, box_area, box_convert, masks_to_boxes) into
    ``torchvision.ops``, ``torchvision.ops.boxes`` and every loaded torchvision module that
    holds them, so that a torchvision model runs on fastiou unchanged. Use it as a context
    manager (``with fastiou.patch_torchvision(): ...``), or call it and later
    ``fastiou.unpatch_torchvision()``. Nested patches are counted; the last undo restores the
    original function objects, also when the ``with`` block raised.

    Returns:
        fastiou._patch.TorchvisionPatch: the applied patch (a context manager).

    Notes:
        Needs torch and torchvision; imports them and registers fastiou's ``torch.library``
        custom ops on the first call. Inputs fastiou does not handle, and differentiable
        results of tensors that require grad, go to torchvision's original functions.
        A model's attributes bound at construction (``RegionProposalNetwork.box_similarity``,
        ``RoIHeads.box_similarity``: ``box_iou``) keep the function they were built with.
    """
    from ._patch import patch_torchvision as _patch
    return _patch()


def unpatch_torchvision() -> bool:
    """Undoes the most recent plain ``fastiou.patch_torchvision()`` call.

    Returns:
        bool: True if a patch was undone, False if none was on.
    """
    from ._patch import unpatch_torchvision as _unpatch
    return _unpatch()


_import_pid = _os.getpid()  # fastiou._C compares it with its own pid: loaded in a forked child?


def set_num_threads(num_threads: int) -> None:
    """Sets how many threads the CPU kernels use (OpenMP; default: all cores).

    Args:
        num_threads: an integer from 1 to 4 x the CPU count (``bool`` and ``float`` are refused).

    Notes:
        In a process that also runs torch, both may share one OpenMP runtime, so this and
        ``torch.set_num_threads`` can affect each other.

        Busy cores (Linux): each call runs on at most the cores that other processes leave free
        (read from ``/proc/stat`` at most every 0.1 s), so that a call does not wait for a thread
        placed beside a data-loader worker or another job; ``num_threads`` is the most it uses.
        ``FASTIOU_LOAD_AWARE_THREADS=0`` in the environment turns this off.

        Fork safety: a process made by ``fork()`` (multiprocessing's default on Linux, ``Pool``,
        DataLoader workers) after fastiou was imported runs the CPU kernels on one thread until
        ``set_num_threads`` is called in it (as DataLoader workers run torch's). Calling it there
        with more than one thread works: kernels called from the thread that forked then run on
        a helper thread of the child, since OpenMP's thread pool (libgomp's) does not survive
        ``fork()``.
    """
    if isinstance(num_threads, bool) or not hasattr(type(num_threads), "__index__"):
        raise TypeError(f"num_threads: expected an integer, got {type(num_threads).__name__} "
                        f"({num_threads!r})")
    n = _operator.index(num_threads)
    from . import _C
    cap = int(_C.max_num_threads())
    if not 1 <= n <= cap:
        raise ValueError(f"num_threads: expected an integer from 1 to {cap} (4 x the CPU count), got {n}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """How many threads the CPU kernels use (1 in a forked child until set_num_threads is called)."""
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
