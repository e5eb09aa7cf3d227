"""Fixtures shared by the test suite.

- ``combo``: each test body runs once per (array library, device, backend):
  numpy/cpu/{cpp,numba}, torch/cpu/{cpp,numba}, torch/cuda/{cuda,cupy}, cupy/cuda/{cuda,cupy}.
  A combination this machine cannot run is a *skip* that says why (the reason comes from
  ``fastiou.backends()``, or names the missing library / GPU), never a silently absent test.
  The backend is forced with ``fastiou.use_backend`` for the duration of the test.
- ``require(name)``: import an oracle (torchvision, pycocotools); skip when it is missing,
  unless ``FASTIOU_REQUIRE_ORACLES=1`` (CI), where a missing oracle fails the test.
- ``Combo``: converters between numpy (where inputs are built and results compared) and
  the combination's library and device.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

import numpy as np
import pytest

# The tests import ``reference`` as a plain module, whatever pytest's import mode.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_configure(config):
    # Also declared in pyproject.toml; repeated so that --strict-markers never trips on it.
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (skipped without one)")


# --------------------------------------------------------------------------- oracles
def oracles_required() -> bool:
    return os.environ.get("FASTIOU_REQUIRE_ORACLES", "") == "1"


def require(name: str):
    """Import and return the oracle module ``name``; skip the test when it is missing.

    With ``FASTIOU_REQUIRE_ORACLES=1`` a missing oracle fails the test instead, so CI can
    never turn a parity check into a skip by losing a dependency.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if oracles_required():
            pytest.fail(f"oracle {name!r} cannot be imported and FASTIOU_REQUIRE_ORACLES=1: {exc}",
                        pytrace=False)
        pytest.skip(f"oracle {name!r} not installed ({exc})")


@pytest.fixture
def tv_ops():
    """``torchvision.ops`` (the drop-in target)."""
    return require("torchvision.ops")


@pytest.fixture
def coco_mask():
    """``pycocotools.mask`` (the COCO oracle)."""
    return require("pycocotools.mask")


@pytest.fixture
def tv_torch(tv_ops):
    """``torch``, for building torchvision's inputs (only when torchvision is there)."""
    return require("torch")


# --------------------------------------------------------------------------- combos
DTYPE_EPS = {
    "float16": 2.0 ** -10,
    "bfloat16": 2.0 ** -7,
    "float32": 2.0 ** -23,
    "float64": 2.0 ** -52,
}


def host_cast(a, dtype: str) -> np.ndarray:
    """A new numpy array of ``a`` cast to ``dtype``: integers rounded first, and overflow to
    infinity allowed (1e6 in float16 is inf on purpose)."""
    a = np.asarray(a)
    if dtype.startswith(("int", "uint")) and a.dtype.kind == "f":
        a = np.round(a)
    with np.errstate(over="ignore"):
        return np.array(a, dtype=dtype, copy=True)


def _fastiou():
    import fastiou

    return fastiou


@dataclass(frozen=True)
class Combo:
    """One (library, device, backend) combination and its converters."""

    library: str   # "numpy" | "torch" | "cupy"
    device: str    # "cpu" | "cuda"
    backend: str   # "cpp" | "numba" | "cuda" | "cupy"

    def __str__(self) -> str:
        return f"{self.library}-{self.device}-{self.backend}"

    # -- modules ---------------------------------------------------------------------
    @property
    def xp(self):
        return importlib.import_module(self.library)

    def supports(self, dtype: str) -> None:
        """Skip when this library has no such dtype (numpy and cupy have no bfloat16)."""
        if dtype == "bfloat16" and self.library != "torch":
            pytest.skip(f"{self.library} has no bfloat16")

    def _torch_dtype(self, name: str):
        import torch

        return {"bool": torch.bool}.get(name) or getattr(torch, name)

    # -- numpy -> library --------------------------------------------------------------
    def asarray(self, a, dtype: str | None = None):
        """A new array of this library and device holding ``a`` cast to ``dtype``.

        Floats are rounded to the dtype (round to nearest even); integer dtypes round first.
        """
        a = np.asarray(a)
        dtype = dtype or a.dtype.name
        self.supports(dtype)
        if self.library == "torch" and dtype == "bfloat16":
            import torch

            return torch.from_numpy(np.array(a, dtype=np.float64, copy=True)).to(torch.bfloat16).to(self.device)
        host = host_cast(a, dtype)
        if self.library == "torch":
            import torch

            return torch.from_numpy(host).to(self.device)
        if self.library == "cupy":
            return self.xp.asarray(host)
        return host

    def empty(self, shape, dtype: str):
        if self.library == "torch":
            import torch

            return torch.empty(shape, dtype=self._torch_dtype(dtype), device=self.device)
        return self.xp.empty(shape, dtype=dtype)

    def full(self, shape, value, dtype: str):
        if self.library == "torch":
            import torch

            return torch.full(shape, value, dtype=self._torch_dtype(dtype), device=self.device)
        return self.xp.full(shape, value, dtype=dtype)

    # -- library -> numpy --------------------------------------------------------------
    def to_numpy(self, x) -> np.ndarray:
        """A numpy copy of a result (bfloat16 read back exactly as float32)."""
        if self.library == "torch":
            import torch

            assert isinstance(x, torch.Tensor), f"expected a torch.Tensor, got {type(x)!r}"
            x = x.detach().cpu()
            if x.dtype == torch.bfloat16:
                x = x.float()
            return x.numpy().copy()
        if self.library == "cupy":
            assert isinstance(x, self.xp.ndarray), f"expected a cupy.ndarray, got {type(x)!r}"
            return self.xp.asnumpy(x)
        assert isinstance(x, np.ndarray), f"expected a numpy.ndarray, got {type(x)!r}"
        return x.copy()

    def rounded(self, x) -> np.ndarray:
        """The float64 values an array of this library really holds (the oracle's input)."""
        return self.to_numpy(x).astype(np.float64)

    def dtype_name(self, x) -> str:
        if self.library == "torch":
            return str(x.dtype).removeprefix("torch.")
        return np.dtype(x.dtype).name

    def check_native(self, x, *, dtype: str | None = None, shape=None) -> None:
        """``x`` is an array of this library, on this device, with this dtype and shape."""
        if self.library == "torch":
            import torch

            assert isinstance(x, torch.Tensor), f"expected a torch.Tensor, got {type(x)!r}"
            assert x.device.type == self.device, f"result on {x.device}, inputs on {self.device}"
        elif self.library == "cupy":
            assert isinstance(x, self.xp.ndarray), f"expected a cupy.ndarray, got {type(x)!r}"
        else:
            assert isinstance(x, np.ndarray), f"expected a numpy.ndarray, got {type(x)!r}"
        if dtype is not None:
            assert self.dtype_name(x) == dtype, f"result dtype {self.dtype_name(x)}, expected {dtype}"
        if shape is not None:
            assert tuple(x.shape) == tuple(shape), f"result shape {tuple(x.shape)}, expected {tuple(shape)}"

    def zero_(self, x) -> None:
        """Overwrite ``x`` in place (to prove a result does not alias an input)."""
        if self.library == "torch":
            x.zero_()
        else:
            x[...] = 0

    # -- non-contiguous views ----------------------------------------------------------
    VIEWS = ("transposed", "column_step", "row_step", "expanded", "reversed")

    def view(self, a, dtype: str, kind: str):
        """A non-contiguous array of this library equal to ``a`` (an ``(N, K)`` numpy array)."""
        a = np.asarray(a)
        if kind == "transposed":          # (K, N) contiguous, then .T
            return self.asarray(np.ascontiguousarray(a.T), dtype).T
        if kind == "column_step":         # every other column of (N, 2K)
            wide = np.repeat(a, 2, axis=1)
            wide[:, 1::2] = -7.0
            return self.asarray(wide, dtype)[:, ::2]
        if kind == "row_step":            # every other row of (2N, K)
            tall = np.repeat(a, 2, axis=0)
            tall[1::2] = -7.0
            return self.asarray(tall, dtype)[::2]
        if kind == "expanded":            # one row repeated with stride 0
            assert (a == a[:1]).all(), "expanded views need identical rows"
            row = self.asarray(a[:1], dtype)
            if self.library == "torch":
                return row.expand(a.shape[0], a.shape[1])
            return self.xp.broadcast_to(row, a.shape)
        if kind == "reversed":            # negative strides: numpy and cupy only
            if self.library == "torch":
                pytest.skip("torch has no negative strides")
            return self.asarray(a[::-1], dtype)[::-1]
        raise ValueError(kind)

    @staticmethod
    def is_contiguous(x) -> bool:
        if hasattr(x, "is_contiguous"):
            return x.is_contiguous()
        return bool(x.flags.c_contiguous)


COMBOS = [
    ("numpy", "cpu", "cpp"),
    ("numpy", "cpu", "numba"),
    ("torch", "cpu", "cpp"),
    ("torch", "cpu", "numba"),
    ("torch", "cuda", "cuda"),
    ("torch", "cuda", "cupy"),
    ("cupy", "cuda", "cuda"),
    ("cupy", "cuda", "cupy"),
]


def library_unavailable(library: str, device: str) -> str:
    """Why this library/device cannot be used here ("" when it can)."""
    if library == "numpy":
        return ""
    try:
        mod = importlib.import_module(library)
    except ImportError as exc:
        return f"{library} not installed ({exc})"
    if library == "torch":
        if device == "cuda" and not mod.cuda.is_available():
            return "torch has no CUDA device"
        return ""
    try:  # cupy
        if mod.cuda.runtime.getDeviceCount() < 1:
            return "cupy sees no CUDA device"
    except Exception as exc:  # CUDARuntimeError, driver missing, ...
        return f"cupy sees no CUDA device ({type(exc).__name__}: {exc})"
    return ""


def backend_unavailable(name: str) -> str:
    """Why fastiou's backend ``name`` cannot run here ("" when it can)."""
    info = _fastiou().backends()[name]
    if info["available"]:
        return ""
    return f"fastiou backend {name!r} unavailable: {info['reason']}"


def make_combo(library: str, device: str, backend: str) -> Combo:
    """The combination, or a skip that says why it cannot run here."""
    why = library_unavailable(library, device) or backend_unavailable(backend)
    if why:
        pytest.skip(why)
    return Combo(library, device, backend)


def _combo_params(combos):
    return [pytest.param(c, id="-".join(c), marks=[pytest.mark.cuda] if c[1] == "cuda" else [])
            for c in combos]


@pytest.fixture(params=_combo_params(COMBOS))
def combo(request):
    """Each (library, device, backend), the backend forced for the whole test."""
    c = make_combo(*request.param)
    with _fastiou().use_backend(c.backend):
        yield c


@pytest.fixture(params=_combo_params([c for c in COMBOS if c[1] == "cuda"]))
def gpu_combo(request):
    c = make_combo(*request.param)
    with _fastiou().use_backend(c.backend):
        yield c


@pytest.fixture(params=_combo_params([c for c in COMBOS if c[1] == "cpu"]))
def host_combo(request):
    c = make_combo(*request.param)
    with _fastiou().use_backend(c.backend):
        yield c


def any_gpu_library() -> str | None:
    """"torch" or "cupy" when one of them sees a GPU here, else None."""
    for lib in ("torch", "cupy"):
        if not library_unavailable(lib, "cuda"):
            return lib
    return None
