"""What a workload builder gets: the device, the libraries that import, fastiou's backends,
and the contender factories (:meth:`Env.baselines`, :meth:`Env.fastiou_variants`,
:meth:`Env.floors`, bodies in :mod:`fastiou.bench.contenders`).

torch / torchvision are imported here, when :class:`Env` is built (by ``fastiou bench``),
never when :mod:`fastiou.bench` is imported.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ContextManager

import numpy as np

from fastiou.bench import contenders as _contenders
from fastiou.bench import threads as _threads
from fastiou.bench.probe import first_line
from fastiou.bench.registry import Contender


class Env:
    """Device, libraries, backends; contender factories for the workload builders."""

    def __init__(self, device: str = "cpu", quick: bool = False):
        import fastiou

        self.device = device
        self.quick = quick
        self.fastiou = fastiou
        self.notes: dict[str, str] = {}
        self.torch = None
        self.tv_ops = None
        try:
            import torch
            import torchvision.ops

            self.torch = torch
            self.tv_ops = torchvision.ops
        except Exception as exc:  # missing, or a torch/torchvision mismatch
            self.notes["torch"] = f"torchvision baseline unavailable ({first_line(exc)}); numpy baseline used"
        self.torch_threads = self.torch.get_num_threads() if self.torch is not None else None
        if device == "cpu" and self.fastiou_threads(1) is None:
            self.notes["fastiou threads"] = ("fastiou has no set_num_threads()/get_num_threads(): "
                                             "no fastiou 1-thread row")
        try:
            self.backends: dict = dict(fastiou.backends())
        except Exception as exc:
            self.backends = {}
            self.notes["backends"] = f"fastiou.backends() failed: {first_line(exc)}"

    # -- device plumbing ---------------------------------------------------------------------

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def host(self, a: np.ndarray, dtype: str = "float32") -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.dtype(dtype))

    def tensor(self, a: np.ndarray, dtype: str = "float32"):
        """``a`` as a torch tensor on this env's device (shares memory on CPU)."""
        t = self.torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        t = t.to(device=self.device, dtype=getattr(self.torch, dtype))
        return t.contiguous()

    def empty(self, shape: tuple[int, ...], dtype: str = "float32"):
        """An uninitialised array of this device's fastiou input library (numpy / torch CUDA)."""
        if self.device == "cuda":
            return self.torch.empty(shape, dtype=getattr(self.torch, dtype), device="cuda")
        return np.empty(shape, np.dtype(dtype))

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        mod = type(x).__module__.split(".")[0]
        if mod == "torch":
            return x.detach().to("cpu").double().numpy()
        if mod == "cupy":
            return x.get().astype(np.float64)
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def type_of(x) -> str:
        mod = type(x).__module__.split(".")[0]
        if mod == "torch":
            return f"torch:{x.device.type}"
        if mod == "numpy":
            return "numpy"
        return mod

    @staticmethod
    def dtype_of(x) -> str:
        return str(x.dtype).replace("torch.", "")

    def optional(self, module: str, what: str):
        """``module`` imported, or ``None`` (noted once: no rows of ``what``). Never installs."""
        cache = self.__dict__.setdefault("_optional", {})
        if module not in cache:
            try:
                cache[module] = importlib.import_module(module)
            except Exception as exc:
                cache[module] = None
                self.notes[module] = f"{module} not importable ({first_line(exc)}): no {what} rows"
        return cache[module]

    # -- backends and threads ----------------------------------------------------------------

    def backend_skip(self, name: str) -> str | None:
        """Why fastiou backend ``name`` cannot be measured here, or ``None``."""
        if not hasattr(self.fastiou, "use_backend"):
            return "fastiou.use_backend() is missing"
        info = self.backends.get(name)
        if info is None:
            return f"backend {name!r} not listed by fastiou.backends()" if self.backends else None
        if not info.get("available", False):
            return f"backend {name}: {info.get('reason') or 'not available'}"
        return None

    def fastiou_backends(self) -> list[str]:
        """The backends measured on this device: the default one first."""
        return ["cpp", "numba"] if self.device == "cpu" else ["cuda", "cupy"]

    def fastiou_threads(self, n: int) -> Callable[[], ContextManager] | None:
        """See :func:`fastiou.bench.threads.fastiou_threads`."""
        return _threads.fastiou_threads(self, n)

    # -- contender factories (bodies in fastiou.bench.contenders) ----------------------------

    def baselines(self, tv_name, tv_args: tuple, numpy_fn, np_args: tuple, tv_kwargs: dict | None = None,
                  *, canon=None) -> list[Contender]:
        """See :func:`fastiou.bench.contenders.baselines`."""
        return _contenders.baselines(self, tv_name, tv_args, numpy_fn, np_args, tv_kwargs, canon=canon)

    def fastiou_variants(self, fn_name: str, args: tuple, kwargs: dict | None = None, out=None,
                         expect_dtype: str | None = "float32", **kw: Any) -> list[Contender]:
        """See :func:`fastiou.bench.contenders.fastiou_variants`."""
        return _contenders.fastiou_variants(self, fn_name, args, kwargs, out, expect_dtype, **kw)

    def floors(self, shape: tuple[int, ...]) -> list[Contender]:
        """See :func:`fastiou.bench.contenders.floors`."""
        return _contenders.floors(self, shape)
