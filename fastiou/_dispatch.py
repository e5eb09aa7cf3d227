"""The one place that chooses a backend and hands it the arrays.

Backends, by the device of the arrays:
    host arrays:  ``cpp`` (fastiou._C) then ``numba``; host-only ops (COCO RLE) use ``select_host``
    CUDA arrays:  ``cuda`` (fastiou._C_cuda) then ``cupy`` (the same kernel sources via NVRTC)
``FASTIOU_BACKEND`` (read at every call) or ``use_backend(name)`` forces one. Host backends
receive numpy views of the caller's memory; GPU backends receive ``DeviceArray`` records
(pointer, shape, dtype, device) and the caller's current stream. Every backend module offers
the same functions with the same arguments (see fastiou/_backends/).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from dataclasses import dataclass

from ._arrays import Arg

BACKENDS = ("cpp", "numba", "cuda", "cupy")
BACKEND_DEVICE = {"cpp": "cpu", "numba": "cpu", "cuda": "cuda", "cupy": "cuda"}
_ORDER = {"cpu": ("cpp", "numba"), "cuda": ("cuda", "cupy")}

# The numbers the kernels use (csrc/include/fastiou/common.h).
FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}
MODES = {"iou": 0, "giou": 1, "diou": 2, "ciou": 3, "ioa": 4}

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastiou_backend", default=None)
_lock = threading.Lock()
_loaded: dict[str, tuple[object | None, str]] = {}


@dataclass(frozen=True)
class DeviceArray:
    """A C-contiguous GPU buffer as the GPU backends see it; ``owner`` keeps it alive."""

    ptr: int
    shape: tuple
    dtype: str
    device: int
    owner: object


def _cuda_not_built_reason() -> str:
    try:
        from . import _C
        status = _C.build_info().get("cuda", "")
    except ImportError:
        status = ""
    if status.startswith("not built"):
        return status.replace("not built: ", "not built — ", 1)
    return ""


def _load_cpp():
    return importlib.import_module("fastiou._C")


def _load_numba():
    try:
        importlib.import_module("numba")
    except ImportError as e:
        raise RuntimeError(f"numba is not installed ({e}); pip install numba") from e
    return importlib.import_module("fastiou._backends.numba_cpu")


def _load_cuda():
    try:
        ext = importlib.import_module("fastiou._C_cuda")
    except ImportError as e:
        raise RuntimeError(_cuda_not_built_reason() or f"fastiou._C_cuda failed to import: {e}") from e
    count = ext.device_count()  # raises RuntimeError with the driver's reason
    if count < 1:
        raise RuntimeError("no CUDA device found")
    return importlib.import_module("fastiou._backends.cuda_gpu")


def _load_cupy():
    try:
        cp = importlib.import_module("cupy")
    except ImportError as e:
        raise RuntimeError(f"cupy is not installed ({e}); pip install fastiou[cuda13]") from e
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # cupy raises its own CUDARuntimeError without a driver
        raise RuntimeError(f"cupy finds no usable CUDA device: {e}") from e
    if count < 1:
        raise RuntimeError("cupy finds no CUDA device")
    return importlib.import_module("fastiou._backends.cupy_gpu")


_LOADERS = {"cpp": _load_cpp, "numba": _load_numba, "cuda": _load_cuda, "cupy": _load_cupy}


def _backend(name: str):
    """(module or None, reason it is unavailable)."""
    got = _loaded.get(name)
    if got is None:
        with _lock:
            got = _loaded.get(name)
            if got is None:
                try:
                    got = (_LOADERS[name](), "")
                except Exception as e:  # any failure to load is a reason to report, not a crash
                    got = (None, str(e) or type(e).__name__)
                _loaded[name] = got
    return got


def backends() -> dict[str, dict]:
    """Which backends this machine has, and why each missing one is missing.

    Returns:
        dict: backend name -> ``{"available": bool, "device": "cpu" | "cuda", "reason": str}``
        (``reason`` is empty when available).
    """
    out = {}
    for name in BACKENDS:
        mod, reason = _backend(name)
        out[name] = {"available": mod is not None, "device": BACKEND_DEVICE[name], "reason": reason}
    return out


@contextlib.contextmanager
def use_backend(name: str):
    """Forces backend ``name`` inside the ``with`` block (this thread / task only).

    Raises:
        ValueError: ``name`` is not one of ``cpp``, ``numba``, ``cuda``, ``cupy``.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {name!r}")
    token = _forced.set(name)
    try:
        yield
    finally:
        _forced.reset(token)


def _forced_backend() -> str | None:
    name = _forced.get()
    if name is None:
        name = os.environ.get("FASTIOU_BACKEND", "").strip().lower() or None
        if name is not None and name not in BACKENDS:
            raise ValueError(f"FASTIOU_BACKEND: expected one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def select(device: str):
    """(name, module) of the backend that runs on ``device`` ("cpu" or "cuda:N")."""
    kind = "cpu" if device == "cpu" else "cuda"
    forced = _forced_backend()
    if forced is not None:
        mod, reason = _backend(forced)
        if mod is None:
            raise RuntimeError(f"backend '{forced}' is not available: {reason}")
        if BACKEND_DEVICE[forced] != kind:
            raise ValueError(f"backend '{forced}' runs on {BACKEND_DEVICE[forced]} arrays but the "
                             f"arrays are on {device}")
        return forced, mod
    reasons = []
    for name in _ORDER[kind]:
        mod, reason = _backend(name)
        if mod is not None:
            return name, mod
        reasons.append(f"{name}: {reason}")
    raise RuntimeError(f"no backend for {device} arrays: " + "; ".join(reasons))


def select_host():
    """The module of the host backend for ops that exist only on the host (COCO RLE): the
    forced backend when it is a host one, else the default host backend (so forcing a GPU
    backend does not stop them)."""
    forced = _forced_backend()
    if forced is not None and BACKEND_DEVICE[forced] == "cpu":
        return select("cpu")[1]
    mod = _loaded.get("cpp", (None,))[0]  # the usual case, without select()'s checks
    if mod is not None:
        return mod
    reasons = []
    for name in _ORDER["cpu"]:
        mod, reason = _backend(name)
        if mod is not None:
            return mod
        reasons.append(f"{name}: {reason}")
    raise RuntimeError("no backend for host arrays: " + "; ".join(reasons))


def call(op: str, device: str, *args, **params):
    """Runs ``op`` on the backend for ``device``.

    ``args`` are ``Arg`` arrays (already C-contiguous, in the dtype the kernel wants, outputs
    allocated by the caller) or plain Python values, passed on in order.
    """
    name, mod = select(device)
    if device == "cpu":
        views = [a.lib.host(a.x) if isinstance(a, Arg) else a for a in args]
        return getattr(mod, op)(*views, **params)
    first = next(a for a in args if isinstance(a, Arg))
    index = int(device.split(":")[1])
    views = [DeviceArray(a.lib.ptr(a.x), a.shape, a.dtype, index, a.x) if isinstance(a, Arg) else a
             for a in args]
    return getattr(mod, op)(*views, stream=first.lib.stream(device), **params)
