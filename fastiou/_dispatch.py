"""The one place that chooses a backend and hands it the arrays.

Backends, by the device of the arrays:
    host arrays:  ``cpp`` (fastiou._C) then ``numba``
    CUDA arrays:  ``cuda`` (fastiou._C_cuda) then ``cupy`` (the same kernel sources via NVRTC)
An op that a backend does not implement (the ``backends`` of its declaration in
fastiou/_backends/interface.py) falls through to the next backend; ops that exist only on the
host (COCO RLE) run on the host backend even while a GPU backend is forced.
``FASTIOU_BACKEND`` (read at every call) or ``use_backend(name)`` forces one. Every call is
checked against the op's declaration once, here; host backends then receive numpy views of
the caller's memory, GPU backends ``DeviceArray`` records (pointer, shape, dtype, device) and
the caller's current stream.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from dataclasses import dataclass

from ._arrays import Arg
from ._backends.interface import BY_NAME

BACKENDS = ("cpp", "numba", "cuda", "cupy")
BACKEND_DEVICE = {"cpp": "cpu", "numba": "cpu", "cuda": "cuda", "cupy": "cuda"}
_ORDER = {"cpu": ("cpp", "numba"), "cuda": ("cuda", "cupy")}

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
        dict: backend name -> ``{"available": bool, "device": "cpu" | "cuda", "reason": str,
        "lacks": [op names]}``: ``reason`` is empty when available; ``lacks`` lists the ops
        that the backend does not implement (calls of them fall through to the next backend,
        e.g. COCO RLE, which runs on the host).
    """
    out = {}
    for name in BACKENDS:
        mod, reason = _backend(name)
        out[name] = {"available": mod is not None, "device": BACKEND_DEVICE[name], "reason": reason,
                     "lacks": sorted(op for op, spec in BY_NAME.items() if name not in spec.backends)}
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


# FASTIOU_BACKEND is read at every call: through os.environ's own dict where CPython has one (a
# dict lookup; os.environ.get encodes the key each time, several times the cost of a small kernel).
_ENV_DATA = getattr(os.environ, "_data", None)
try:
    _ENV_KEY = os.environ.encodekey("FASTIOU_BACKEND")
except AttributeError:  # not CPython's _Environ
    _ENV_DATA = None


def _env_backend() -> str:
    if _ENV_DATA is None:
        return os.environ.get("FASTIOU_BACKEND", "")
    raw = _ENV_DATA.get(_ENV_KEY)
    return "" if raw is None else os.environ.decodevalue(raw)


def _forced_backend() -> str | None:
    name = _forced.get()
    if name is None:
        name = _env_backend().strip().lower() or None
        if name is not None and name not in BACKENDS:
            raise ValueError(f"FASTIOU_BACKEND: expected one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def select(device: str, op: str | None = None):
    """(name, module) of the backend that runs ``op`` on ``device`` ("cpu" or "cuda:N").

    The forced backend when there is one (RuntimeError when it is unavailable or lacks the
    op; ValueError when it runs on another device), else the first available backend of the
    device that implements the op.
    """
    return _select(device, op, _forced_backend())


def _select(device: str, op: str | None, forced: str | None):
    kind = "cpu" if device == "cpu" else "cuda"
    has = BY_NAME[op].backends if op is not None else BACKENDS
    if forced is not None:
        mod, reason = _backend(forced)
        if mod is None:
            raise RuntimeError(f"backend '{forced}' is not available: {reason}")
        if BACKEND_DEVICE[forced] != kind:
            raise ValueError(f"backend '{forced}' runs on {BACKEND_DEVICE[forced]} arrays but the "
                             f"arrays are on {device}")
        if forced not in has:
            raise RuntimeError(f"backend '{forced}' does not implement {op} (it runs on "
                               f"{', '.join(has)})")
        return forced, mod
    reasons = []
    for name in _ORDER[kind]:
        if name not in has:
            reasons.append(f"{name}: does not implement {op}")
            continue
        mod, reason = _backend(name)
        if mod is not None:
            return name, mod
        reasons.append(f"{name}: {reason}")
    raise RuntimeError(f"no backend for {op or 'ops'} on {device} arrays: " + "; ".join(reasons))


def _host_backend(op: str):
    """(name, module) for an op on host data: a forced GPU backend does not apply to it."""
    forced = _forced_backend()
    if forced is None and "cpp" in BY_NAME[op].backends:
        mod = _loaded.get("cpp", (None,))[0]  # the usual case, without select()'s checks
        if mod is not None:
            return "cpp", mod
    if forced is not None and BACKEND_DEVICE[forced] != "cpu":
        forced = None
    return _select("cpu", op, forced)


_FUNCS: dict = {}


def _function(name: str, mod, op: str):
    fn = _FUNCS.get((name, op))
    if fn is None:
        fn = _FUNCS[(name, op)] = getattr(mod, op)
    return fn


_HOST_DEFAULT: dict = {}


def host_function(op: str):
    """The host backend's function for ``op``, for the per-call fast paths of the public ops
    (numpy arrays that the caller built to the op's declaration: a C-contiguous float array,
    the outputs allocated to match). The backend rules are ``select``'s; the compiled backend
    checks its arguments again in C++."""
    forced = _forced_backend()
    if forced is None:
        fn = _HOST_DEFAULT.get(op)
        if fn is None:
            name, mod = _select("cpu", op, None)
            fn = _HOST_DEFAULT[op] = _function(name, mod, op)
        return fn
    name, mod = _select("cpu", op, forced)
    return _function(name, mod, op)


_HOST_ONLY: dict = {}


def call_host(op: str, *args):
    """Runs host-only ``op`` (COCO RLE) on numpy arrays and plain values, after checking them
    against its declaration. A forced GPU backend does not apply (_host_backend); without a
    forced backend the function is looked up once (a call per image must cost little)."""
    BY_NAME[op].check(args)
    forced = _forced_backend()
    fn = _HOST_ONLY.get(op) if forced is None else None
    if fn is None:
        fn = _function(*_host_backend(op), op)
        if forced is None:
            _HOST_ONLY[op] = fn
    return fn(*args)


def call(op: str, device: str, *args):
    """Runs ``op`` on the backend for ``device``.

    ``args`` are, in the op's declared order, ``Arg`` arrays (outputs allocated by the caller)
    or plain Python values; they are checked against the declaration before any backend sees
    them.
    """
    BY_NAME[op].check(args)
    name, mod = select(device, op)
    fn = _function(name, mod, op)
    if device == "cpu":
        return fn(*[a.lib.host(a.x) if isinstance(a, Arg) else a for a in args])
    first = next(a for a in args if isinstance(a, Arg))
    index = int(device.split(":")[1])
    views = [DeviceArray(a.lib.ptr(a.x), a.shape, a.dtype, index, a.x) if isinstance(a, Arg) else a
             for a in args]
    return fn(*views, stream=first.lib.stream(device))
