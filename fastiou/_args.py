"""Argument helpers that the public ops share: formats, dtype rules, thresholds, class ids.

The one low module under fastiou/boxes.py, nms.py, masks.py and _packed.py (they import it,
never each other): each rule is written once, here.
"""

from __future__ import annotations

import math

import numpy as np

from ._arrays import Arg, as_arg, check_device, check_numeric, fmt_shape
from ._backends.interface import FORMATS, MODES  # noqa: F401  (the kernels' codes)
from ._errors import InputError

#: Box dtypes that the backends take as they are (the per-call fast paths check for these).
FAST_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def fmt_code(fmt: str, what: str = "fmt") -> int:
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise ValueError(f"{what}: expected one of 'xyxy', 'xywh', 'cxcywh', got {fmt!r}") from None


def compute_dtypes(*dts: str) -> tuple[str, str]:
    """(compute dtype, result dtype) for boxes of these dtypes, by torchvision's upcast rule."""
    if "float64" in dts:
        return "float64", "float64"
    if any(d in ("float16", "bfloat16", "float32") for d in dts):
        return "float32", "float32"
    return "float64", "float32"  # integer boxes: exact in float64, float32 out as torchvision


def boxes_arg(name: str, x, min_ndim: int) -> tuple[Arg, str]:
    a = as_arg(name, x)
    dt = check_numeric(a)
    if len(a.shape) < min_ndim or a.shape[-1] != 4:
        want = "(..., N, 4)" if min_ndim == 2 else "(..., 4)"
        raise InputError(f"{name}: expected shape {want}, got {fmt_shape(a.shape)}")
    return a, dt


def broadcast_lead(lead1: tuple, lead2: tuple, names: str) -> tuple:
    if lead1 == lead2:
        return lead1
    try:
        return tuple(np.broadcast_shapes(lead1, lead2))
    except ValueError:
        raise InputError(f"{names}: batch dimensions {fmt_shape(lead1)} and {fmt_shape(lead2)} "
                         f"do not broadcast") from None


def finish(first: Arg, x, result_dtype: str):
    """Casts a computed array to the result dtype in the caller's library."""
    return x if first.lib.dtype(x) == result_dtype else first.lib.astype(x, result_dtype)


def check_out(out, first: Arg, device: str, shape: tuple, dtype: str) -> Arg:
    o = as_arg("out", out)
    if o.lib is not first.lib or o.device != device:
        raise InputError(f"out: expected a {first.lib.name} array on {device}, got {o.lib.name} on {o.device}")
    if o.shape != shape or o.dtype != dtype or not o.lib.is_contiguous(o.x):
        raise InputError(f"out: expected a C-contiguous {dtype} array of shape {fmt_shape(shape)}, "
                         f"got {o.dtype} {fmt_shape(o.shape)}")
    if isinstance(o.x, np.ndarray) and not o.x.flags.writeable:  # every backend, numba's too
        raise ValueError("out: not writable")
    return o


def threshold(value, name: str = "iou_threshold") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    return v


def boxes_scores(boxes, scores, *, box_dims: int = 2):
    """Validated (boxes Arg, scores Arg, device, compute dtype) for the (N, 4) / (N,) ops."""
    b = as_arg("boxes", boxes)
    s = as_arg("scores", scores)
    dt = check_numeric(b)
    check_numeric(s)
    device = check_device([b, s])
    if len(b.shape) != box_dims or b.shape[-1] != 4:
        raise InputError(f"boxes: expected shape (N, 4), got {fmt_shape(b.shape)}")
    n = b.shape[0]
    if s.shape != (n,):
        raise InputError(f"scores: expected shape ({n},) to match boxes {fmt_shape(b.shape)}, "
                         f"got {fmt_shape(s.shape)}")
    cdt, _ = compute_dtypes(dt)
    return b, s, device, cdt


def class_ids(idxs, boxes: Arg, name: str = "idxs") -> Arg:
    """Class ids as a contiguous int64 array; float ids are mapped to dense integers first."""
    c = as_arg(name, idxs)
    dt = check_numeric(c)
    check_device([boxes, c])
    n = boxes.shape[0]
    if c.shape != (n,):
        raise InputError(f"{name}: expected shape ({n},) to match boxes, got {fmt_shape(c.shape)}")
    if dt in ("float16", "bfloat16", "float32", "float64"):
        # torchvision treats every distinct value as its own class (torch.unique).
        return Arg(name, c.lib, c.lib.unique_inverse(c.x))
    return c.astype("int64").contiguous()
