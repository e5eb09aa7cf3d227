"""``fastiou bench``: fastiou against its peers, side by side in one process.

Every figure this runner prints is a *ratio* against a baseline measured in the same run,
interleaved with fastiou (absolute times on shared machines move by 2.5x between runs; the
ratios hold), plus the distance from the physical floor: the time to allocate and write a
fresh output of the same size. See ``BENCHMARKS.md`` for the workloads and the targets.

How a case is measured:
  1. every contender (baselines, fastiou variants, the floors) is called once as a warm-up
     (JIT compilation, first-touch of caches); fastiou results are checked against the
     baseline's there, so a fast wrong answer shows as ``DIFF`` rather than as a speed-up;
  2. each contender gets an inner loop count ``k`` so that one sample lasts ``min_sample``
     seconds or more (fast calls are not timed one by one); a baseline whose warm-up already
     lasted ten samples gets ``k = 1`` without more calls;
  3. repeats: one sample of every contender per round, the order rotated each round, the
     garbage collector off; the figure is the median of the rounds.
  On CUDA a sample is bracketed by ``torch.cuda.synchronize()``, so it is the end-to-end
  time per call of a ``k``-call loop (launches included), measured the same way for all.

Workloads live in a registry (:data:`WORKLOADS`); a new one is a generator of
:class:`Case` objects decorated with :func:`workload`, usually built with the helpers
:meth:`Env.baselines`, :meth:`Env.fastiou_variants` and :meth:`Env.floors`.

Nothing here asserts a speed: this is reporting. ``import fastiou.bench`` imports neither
torch nor numba; ``main`` imports torch when it is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import gc
import importlib
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator

import numpy as np

from fastiou import _inputs

SCHEMA = 1

# --------------------------------------------------------------------------------------------
# Registry


@dataclass
class Contender:
    """One measured callable of a case.

    ``kind`` is ``"baseline"``, ``"fastiou"`` or ``"floor"``; ``context`` is entered around
    every sample (outside the timer): a forced backend, a thread count. ``skip`` says why a
    contender is not measured; it then appears in the table with that reason.
    """

    name: str
    kind: str
    call: Callable[[], Any] | None = None
    context: Callable[[], ContextManager] = contextlib.nullcontext
    skip: str | None = None
    expect_type: str | None = None  # "numpy", "torch:cpu", "torch:cuda": what fastiou must return
    expect_dtype: str | None = None
    expect_result: Any = None  # the out= buffer, which the call must return
    #: the part of the result whose type and dtype are checked (default: the result itself),
    #: e.g. the kept indices of a (keep, scores) pair
    typed: Callable[[Any], Any] | None = None
    #: the result as the float64 numpy array that is compared (default: ``Env.to_numpy``);
    #: returning ``None`` means "not comparable" (no check)
    canon: Callable[[Any], np.ndarray | None] | None = None


@dataclass
class Case:
    """One (workload, op, size, dtype, device) cell, with everything measured in it.

    Rows of the table: every fastiou contender against the first baseline, then the first
    fastiou contender against each further baseline. ``reference`` returns the float64 numpy
    array that fastiou results are checked against; ``None`` means "the first baseline's
    warm-up result". With a ``reference``, the baselines are checked against it too (their
    check is reported beside fastiou's, e.g. torchvision's inexact batched_nms path).

    ``compare``: ``"close"`` (values within ``rtol``/``atol``), ``"equal"`` (identical,
    in order: index results), ``"set"`` (the same elements, or rows, in any order: detections
    whose order at equal scores is not defined). ``baseline_compare`` (default ``compare``)
    is how the baselines are checked against ``reference``.
    """

    workload: str
    op: str
    size: str
    dtype: str
    device: str
    contenders: list[Contender]
    reference: Callable[[], np.ndarray] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    notes: dict = field(default_factory=dict)
    compare: str = "close"
    baseline_compare: str | None = None


@dataclass
class Workload:
    id: str
    title: str
    build: Callable[["Env"], Iterator[Case]]


#: Workload id (as in BENCHMARKS.md) -> :class:`Workload`, in registration order.
WORKLOADS: dict[str, Workload] = {}


def workload(id: str, title: str):
    """Register ``fn(env) -> Iterator[Case]`` as the workload ``id``."""

    def deco(fn):
        WORKLOADS[id] = Workload(id, title, fn)
        return fn

    return deco


# --------------------------------------------------------------------------------------------
# The environment: which libraries, which device, how to build contenders


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _torch_threads(torch, n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _stacked(*cms: ContextManager):
    with contextlib.ExitStack() as stack:
        for cm in cms:
            stack.enter_context(cm)
        yield


class Env:
    """What a workload builder needs: device, libraries, backends, and contender factories."""

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
            self.notes["torch"] = f"torchvision baseline unavailable ({_first_line(exc)}); numpy baseline used"
        self.torch_threads = self.torch.get_num_threads() if self.torch is not None else None
        if device == "cpu" and self.fastiou_threads(1) is None:
            self.notes["fastiou threads"] = ("fastiou has no set_num_threads()/get_num_threads(): "
                                             "no fastiou 1-thread row")
        try:
            self.backends: dict = dict(fastiou.backends())
        except Exception as exc:
            self.backends = {}
            self.notes["backends"] = f"fastiou.backends() failed: {_first_line(exc)}"

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

    def to_numpy(self, x) -> np.ndarray:
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

    # -- contender factories -----------------------------------------------------------------

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

    def fastiou_variants(self, fn_name: str, args: tuple, kwargs: dict | None = None,
                         out: Callable[[], Any] | None = None,
                         expect_dtype: str | None = "float32", *, fn: Callable | None = None,
                         typed: Callable[[Any], Any] | None = None,
                         canon: Callable[[Any], np.ndarray | None] | None = None) -> list[Contender]:
        """fastiou's ``fn_name(*args, **kwargs)`` forced to each backend of this device;
        with ``out`` (a factory of the output buffer), also the first available backend
        writing into a reused ``out=`` buffer. Results must come back in the library and on
        the device of ``args[0]``, of ``expect_dtype`` (``typed(result)`` of them, when the
        result is a tuple). ``fn`` replaces ``fastiou.<fn_name>`` by a function that calls
        fastiou (a whole post-processing step); ``canon`` is passed on to the contenders."""
        kwargs = dict(kwargs or {})
        if fn is None:
            fn = getattr(self.fastiou, fn_name, None)
        expect_type = self.type_of(args[0])
        result: list[Contender] = []
        names = self.fastiou_backends()
        skips = [f"fastiou.{fn_name} is missing" if fn is None else self.backend_skip(b) for b in names]
        # out= goes with the first backend that runs here (the default one when it is built).
        with_out = next((i for i, s in enumerate(skips) if s is None), 0)
        for i, (backend, skip) in enumerate(zip(names, skips)):
            label = f"fastiou[{backend}]"
            ctx = (lambda b=backend: self.fastiou.use_backend(b)) if hasattr(self.fastiou, "use_backend") \
                else contextlib.nullcontext
            call = None if skip else (lambda: fn(*args, **kwargs))
            result.append(Contender(label, "fastiou", call, ctx, skip, expect_type, expect_dtype,
                                    typed=typed, canon=canon))
            # (through OpenMP, only the cpp backend's threads can be set)
            threads = self.fastiou_threads(1) if self.device == "cpu" and (
                backend == "cpp" or hasattr(self.fastiou, "set_num_threads")) else None
            if i == with_out and threads is not None:
                # One thread, to face torchvision on one thread (a busy second core slows
                # every 2-thread run, the baseline's and ours alike).
                result.append(Contender(label + " 1-thread", "fastiou", call,
                                        lambda c=ctx, t=threads: _stacked(c(), t()), skip,
                                        expect_type, expect_dtype, typed=typed, canon=canon))
            if i == with_out and out is not None:
                buf_call = None
                if not skip:
                    buf = out()
                    buf_call = lambda buf=buf: fn(*args, out=buf, **kwargs)  # noqa: E731
                result.append(Contender(label + " out=", "fastiou", buf_call, ctx, skip,
                                        expect_type, expect_dtype, buf if buf_call else None,
                                        typed=typed, canon=canon))
        return result

    def fastiou_threads(self, n: int) -> Callable[[], ContextManager] | None:
        """A context factory running fastiou's CPU kernels on ``n`` threads: through
        ``fastiou.set_num_threads`` / ``get_num_threads`` when fastiou has them, else through
        the OpenMP runtime its extension is linked with; ``None`` when neither exists."""
        set_n = getattr(self.fastiou, "set_num_threads", None)
        get_n = getattr(self.fastiou, "get_num_threads", None)
        if set_n is None or get_n is None:
            set_n, get_n = self._openmp_threads()
        if set_n is None or get_n is None:
            return None

        @contextlib.contextmanager
        def ctx():
            before = get_n()
            set_n(n)
            try:
                yield
            finally:
                set_n(before)

        return ctx

    def _openmp_threads(self):
        """(set, get) of the OpenMP runtime loaded in this process, when fastiou's extension
        says it was built with OpenMP; (None, None) otherwise. ``omp_set_num_threads`` acts
        on the calling thread, which is the one that calls fastiou."""
        if hasattr(self, "_omp"):
            return self._omp
        self._omp = (None, None)
        build = fastiou_info(self).get("build")
        if not isinstance(build, dict) or not build.get("openmp"):
            return self._omp
        try:
            import ctypes

            with open("/proc/self/maps") as f:
                libs = sorted({line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line})
            omp = [p for p in libs if os.path.basename(p).startswith(("libgomp", "libomp", "libiomp"))]
            if len(omp) != 1:  # none, or two runtimes: which one fastiou uses is not known
                return self._omp
            lib = ctypes.CDLL(omp[0])
            set_n, get_n = lib.omp_set_num_threads, lib.omp_get_max_threads
            set_n.argtypes, set_n.restype, get_n.restype = [ctypes.c_int], None, ctypes.c_int
            self._omp = (lambda k: set_n(int(k)), lambda: int(get_n()))
            self.notes["fastiou threads"] = (f"fastiou has no set_num_threads(): its 1-thread row "
                                             f"calls omp_set_num_threads of {omp[0]}")
        except Exception:
            pass
        return self._omp

    def baselines(self, tv_name: str | Callable | None, tv_args: tuple, numpy_fn: Callable | None,
                  np_args: tuple, tv_kwargs: dict | None = None, *,
                  canon: Callable[[Any], np.ndarray | None] | None = None) -> list[Contender]:
        """torchvision (torch's default threads; on CPU also one thread), or ``numpy_fn``
        when torchvision is not installed. ``tv_name`` is a ``torchvision.ops`` name, or a
        function built on torchvision (a post-processing loop) called with ``tv_args``."""
        tv_kwargs = dict(tv_kwargs or {})
        if self.tv_ops is not None and tv_name is not None:
            fn = getattr(self.tv_ops, tv_name) if isinstance(tv_name, str) else tv_name
            call = lambda: fn(*tv_args, **tv_kwargs)  # noqa: E731
            out = [Contender("torchvision", "baseline", call, canon=canon)]
            if self.device == "cpu":
                out.append(Contender("torchvision 1-thread", "baseline", call,
                                     lambda: _torch_threads(self.torch, 1), canon=canon))
            return out
        if numpy_fn is not None and self.device == "cpu":
            return [Contender("numpy", "baseline", lambda: numpy_fn(*np_args), canon=canon)]
        return [Contender("torchvision", "baseline", skip=self.notes.get("torch", "no baseline"))]

    def optional(self, module: str, what: str):
        """``module`` imported, or ``None`` (noted once: no rows of ``what``). Never installs."""
        cache = self.__dict__.setdefault("_optional", {})
        if module not in cache:
            try:
                cache[module] = importlib.import_module(module)
            except Exception as exc:
                cache[module] = None
                self.notes[module] = f"{module} not importable ({_first_line(exc)}): no {what} rows"
        return cache[module]

    def floors(self, shape: tuple[int, ...]) -> list[Contender]:
        """The floors of a float32 result of ``shape``: allocate and write a fresh one
        ("floor"), and write into an existing one ("floor write")."""
        if self.device == "cuda":
            torch = self.torch
            buf = torch.empty(shape, dtype=torch.float32, device="cuda")
            return [
                Contender("floor", "floor",
                          lambda: torch.empty(shape, dtype=torch.float32, device="cuda").fill_(1.0)),
                Contender("floor write", "floor", lambda: buf.fill_(1.0)),
            ]
        buf = np.empty(shape, np.float32)

        def fresh():
            a = np.empty(shape, np.float32)
            a.fill(1.0)  # not np.zeros: calloc'd pages would never be written
            return a

        return [Contender("floor", "floor", fresh), Contender("floor write", "floor", lambda: buf.fill(1.0))]

    def empty(self, shape: tuple[int, ...], dtype: str = "float32"):
        """An uninitialised array of this device's fastiou input library (numpy / torch CUDA)."""
        if self.device == "cuda":
            return self.torch.empty(shape, dtype=getattr(self.torch, dtype), device="cuda")
        return np.empty(shape, np.dtype(dtype))


# --------------------------------------------------------------------------------------------
# Plain numpy baselines (torchvision's formulas, broadcast): used when torch is missing


def _np_inter_union(b1, b2):
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area1[:, None] + area2[None, :] - inter


def _np_enclosing_wh(b1, b2):
    lti = np.minimum(b1[:, None, :2], b2[None, :, :2])
    rbi = np.maximum(b1[:, None, 2:], b2[None, :, 2:])
    return np.clip(rbi - lti, 0, None)


def np_box_iou(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """torchvision.ops.box_iou in numpy broadcasting, ``(N, 4), (M, 4) -> (N, M)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inter, union = _np_inter_union(b1, b2)
        return inter / union


def np_generalized_box_iou(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        inter, union = _np_inter_union(b1, b2)
        whi = _np_enclosing_wh(b1, b2)
        areai = whi[..., 0] * whi[..., 1]
        return inter / union - (areai - union) / areai


def _np_diou_iou(b1, b2, eps):
    iou = np_box_iou(b1, b2)
    whi = _np_enclosing_wh(b1, b2)
    diag = whi[..., 0] ** 2 + whi[..., 1] ** 2 + eps
    cx1, cy1 = (b1[:, 0] + b1[:, 2]) / 2, (b1[:, 1] + b1[:, 3]) / 2
    cx2, cy2 = (b2[:, 0] + b2[:, 2]) / 2, (b2[:, 1] + b2[:, 3]) / 2
    dist = (cx1[:, None] - cx2[None, :]) ** 2 + (cy1[:, None] - cy2[None, :]) ** 2
    return iou - dist / diag, iou


def np_distance_box_iou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return _np_diou_iou(b1, b2, eps)[0]


def np_complete_box_iou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        diou, iou = _np_diou_iou(b1, b2, eps)
        w1, h1 = b1[:, 2] - b1[:, 0], b1[:, 3] - b1[:, 1]
        w2, h2 = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
        v = (4 / np.pi**2) * (np.arctan(w1 / h1)[:, None] - np.arctan(w2 / h2)[None, :]) ** 2
        alpha = v / (1 - iou + v + eps)
        return diou - alpha * v


# --------------------------------------------------------------------------------------------
# Workloads

#: The pairwise IoU family: fastiou / torchvision name -> numpy baseline.
IOU_OPS: dict[str, Callable] = {
    "box_iou": np_box_iou,
    "generalized_box_iou": np_generalized_box_iou,
    "distance_box_iou": np_distance_box_iou,
    "complete_box_iou": np_complete_box_iou,
}
IOU_SQUARE_SIZES = (1000, 4000)


def iou_square_params(device: str, quick: bool) -> Iterator[tuple[str, int, str]]:
    """(op, n, dtype) of ``iou-square``; ``--quick`` on CPU keeps 4000 for box_iou only."""
    dtypes = ("float32", "float16") if device == "cuda" else ("float32",)
    for op in IOU_OPS:
        for n in IOU_SQUARE_SIZES:
            if quick and device == "cpu" and op != "box_iou" and n > 1000:
                continue
            for dtype in dtypes:
                yield op, n, dtype


@workload("iou-square", "pairwise box_iou / giou / diou / ciou, N = M")
def _iou_square(env: Env) -> Iterator[Case]:
    for op, n, dtype in iou_square_params(env.device, env.quick):
        b1 = _inputs.random_boxes(n, seed=0)
        b2 = _inputs.random_boxes(n, seed=1)
        if env.device == "cuda":
            x1, x2 = env.tensor(b1, dtype), env.tensor(b2, dtype)
            t1, t2 = x1, x2
        else:
            x1, x2 = env.host(b1, dtype), env.host(b2, dtype)
            t1 = env.torch.from_numpy(x1) if env.torch is not None else None
            t2 = env.torch.from_numpy(x2) if env.torch is not None else None
        contenders = env.baselines(op, (t1, t2), IOU_OPS[op], (x1, x2))
        contenders += env.fastiou_variants(op, (x1, x2), out=lambda: env.empty((n, n)))
        contenders += env.floors((n, n))
        reference = None
        if dtype != "float32":
            # The same (rounded) inputs, computed in float32: fastiou computes fp16 in fp32.
            def reference(x1=x1, x2=x2, op=op):
                if env.tv_ops is not None:
                    return env.to_numpy(getattr(env.tv_ops, op)(x1.float(), x2.float()))
                return IOU_OPS[op](env.to_numpy(x1), env.to_numpy(x2))
        yield Case("iou-square", op, f"{n}x{n}", dtype, env.device, contenders, reference)


# --------------------------------------------------------------------------------------------
# NMS: plain numpy baselines (used when torch is missing, and mmcv's soft-NMS, which has no
# torchvision counterpart), exact torchvision-based references, canonical result forms


def np_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """torchvision.ops.nms in numpy: greedy, decreasing score (stable), a box is dropped when
    its IoU with a kept one is ``> iou_threshold``; the IoU in the boxes' dtype."""
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, i]) for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (area[i] + area[rest] - inter)
        order = rest[~(iou > iou_threshold)]
    return np.asarray(keep, dtype=np.int64)


def np_batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray,
                   iou_threshold: float) -> np.ndarray:
    """A per-class loop of :func:`np_nms`; kept indices by decreasing score, ties in input order."""
    keep = [np.flatnonzero(idxs == c)[np_nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
            for c in np.unique(idxs)]
    k = np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
    return k[np.argsort(-np.asarray(scores, dtype=np.float64)[k], kind="stable")]


_SOFT_NMS_METHODS = ("linear", "gaussian", "hard")


def np_soft_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3, sigma: float = 0.5,
                min_score: float = 1e-3, method: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """mmcv.ops.soft_nms (its CPU kernel) in plain numpy: ``(keep, decayed scores)``.

    Each step keeps the box with the highest current score (the lowest index among equal
    ones), multiplies the others' scores by ``1 - iou`` where ``iou > iou_threshold``
    (``linear``), by ``exp(-iou^2 / sigma)`` (``gaussian``) or by 0 (``hard``, mmcv's
    "naive"), and drops those that fall below ``min_score``. Arithmetic in the boxes' dtype,
    as mmcv's float kernel.
    """
    b = np.asarray(boxes)
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, i]) for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    rem = np.arange(len(b))
    sc = np.array(scores, dtype=b.dtype)
    one = b.dtype.type(1)
    keep, kept = [], []
    while rem.size:
        j = int(np.argmax(sc))
        i = rem[j]
        keep.append(i)
        kept.append(sc[j])
        rem = np.delete(rem, j)
        sc = np.delete(sc, j)
        w = np.clip(np.minimum(x2[i], x2[rem]) - np.maximum(x1[i], x1[rem]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rem]) - np.maximum(y1[i], y1[rem]), 0, None)
        inter = w * h
        iou = inter / (area[i] + area[rem] - inter)
        if method == "linear":
            sc = sc * np.where(iou > iou_threshold, one - iou, one)
        elif method == "gaussian":
            sc = sc * np.exp(-(iou * iou) / b.dtype.type(sigma))
        else:
            sc = np.where(iou > iou_threshold, b.dtype.type(0), sc)
        alive = sc >= min_score
        rem, sc = rem[alive], sc[alive]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept, dtype=b.dtype)


def tv_batched_nms_exact(tv_ops, torch, boxes, scores, idxs, iou_threshold: float):
    """The exact class-aware NMS that fastiou.batched_nms promises, with torchvision's CPU nms:
    a per-class loop (no coordinate offsets), kept indices by decreasing score, ties in input
    order. Computed on the CPU (torchvision's CUDA kernel compares the IoU in float32)."""
    boxes, scores, idxs = boxes.cpu(), scores.cpu(), idxs.cpu()
    keep = []
    for c in torch.unique(idxs):
        m = torch.where(idxs == c)[0]
        keep.append(m[tv_ops.nms(boxes[m], scores[m], iou_threshold)])
    if not keep:
        return torch.zeros(0, dtype=torch.int64)
    k = torch.sort(torch.cat(keep)).values
    return k[torch.sort(scores[k], descending=True, stable=True).indices]


def _index_rows(per_image: list) -> np.ndarray:
    """``[(b, index array, class array), ...]`` as the sorted float64 rows (image, index, class)."""
    rows = [np.stack([np.full(len(i), b, np.float64), np.asarray(i, np.float64), np.asarray(c, np.float64)], 1)
            for b, i, c in per_image]
    rows = np.concatenate(rows) if rows else np.zeros((0, 3))
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if type(x).__module__.split(".")[0] == "torch" else (
        x.get() if type(x).__module__.split(".")[0] == "cupy" else np.asarray(x))


def multiclass_rows(r) -> np.ndarray:
    """A :class:`fastiou.MulticlassNMSResult` as sorted rows (image, box index, class)."""
    num, idx, cls = _np(r.num), _np(r.indices), _np(r.classes)
    return _index_rows([(b, idx[b, :num[b]], cls[b, :num[b]]) for b in range(len(num))])


def detections_rows(dets: list) -> np.ndarray:
    """A loop baseline's ``[(boxes, scores, classes, box indices) per image]`` as sorted rows."""
    return _index_rows([(b, _np(d[3]), _np(d[2])) for b, d in enumerate(dets)])


def soft_nms_rows(r) -> np.ndarray:
    """``(keep, scores)`` as one float64 ``(K, 2)`` array: index and decayed score."""
    keep, sc = r
    return np.stack([_np(keep).astype(np.float64), _np(sc).astype(np.float64)], axis=1)


def _nms_inputs(env: Env, *arrays: np.ndarray, dtypes: tuple[str, ...] | None = None):
    """``(fastiou's arrays, torchvision's arrays)``: on CPU numpy for fastiou and torch views of
    the same memory for torchvision; on CUDA the same CUDA tensors for both."""
    dtypes = dtypes or ("float32",) * len(arrays)
    host = [np.ascontiguousarray(a, dtype=np.dtype(d)) for a, d in zip(arrays, dtypes)]
    if env.device == "cuda":
        dev = [env.torch.from_numpy(a).to("cuda") for a in host]
        return dev, dev
    if env.torch is None:
        return host, [None] * len(host)
    return host, [env.torch.from_numpy(a) for a in host]


def _cv2_contenders(env: Env, boxes: np.ndarray, scores: np.ndarray, thr: float,
                    labels: np.ndarray | None = None) -> list[Contender]:
    """OpenCV's ``cv2.dnn.NMSBoxes`` (or ``NMSBoxesBatched``) on the CPU, when cv2 imports
    (never installed by the runner). Boxes are handed over as (x, y, w, h), converted
    beforehand; every box passes the score threshold."""
    if env.device != "cpu":
        return []
    cv2 = env.optional("cv2", "OpenCV (cv2.dnn.NMSBoxes)")
    if cv2 is None:
        return []
    xywh = np.ascontiguousarray(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1), np.float64)
    sc = np.ascontiguousarray(scores, np.float32)
    sthr = float(np.nextafter(np.float32(sc.min()), np.float32(-np.inf))) if len(sc) else 0.0
    canon = lambda r: np.asarray(r, np.float64).reshape(-1)  # noqa: E731
    if labels is None:
        call = lambda: cv2.dnn.NMSBoxes(xywh, sc, sthr, thr)  # noqa: E731
    else:
        if not hasattr(cv2.dnn, "NMSBoxesBatched"):
            return [Contender("cv2.dnn", "baseline", skip="cv2.dnn.NMSBoxesBatched missing (OpenCV < 4.7)")]
        cls = np.ascontiguousarray(labels, np.int32)
        call = lambda: cv2.dnn.NMSBoxesBatched(xywh, sc, cls, sthr, thr)  # noqa: E731
    return [Contender("cv2.dnn", "baseline", call, canon=canon)]


def _torch_input_variant(env: Env, fn_name: str, targs: tuple) -> list[Contender]:
    """On CPU, fastiou's cpp backend called with torchvision's torch CPU tensors: the drop-in
    call (the other fastiou rows get numpy arrays), which pays the torch-side conversions."""
    if env.device != "cpu" or env.torch is None:
        return []
    fn = getattr(env.fastiou, fn_name, None)
    skip = f"fastiou.{fn_name} is missing" if fn is None else env.backend_skip("cpp")
    return [Contender("fastiou[cpp] torch", "fastiou", None if skip else (lambda: fn(*targs)),
                      lambda: env.fastiou.use_backend("cpp"), skip, "torch:cpu", "int64")]


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


NMS_SPARSE_SIZES = (1000, 10000, 30000, 100000)
NMS_CLUSTERED_SIZES = (1000, 10000, 50000)
NMS_CLUSTERED_IOUS = (0.5, 0.7)
NMS_RCNN_BATCHES = (1, 8)
NMS_LVIS_SIZES = (10000, 30000)
NMS_YOLO_BATCHES = (1, 16)
NMS_YOLO_CONFS = (0.25, 0.001)
SOFT_NMS_SIZES = (100, 1000, 5000)
SOFT_NMS_METHODS = ("linear", "gaussian")


def nms_case(env: Env, workload_id: str, boxes: np.ndarray, scores: np.ndarray, thr: float,
             op: str, size: str, **notes) -> Case:
    """One ``nms`` case: torchvision.ops.nms (and cv2) against fastiou.nms; indices must be
    torchvision's, in its order."""
    (fb, fs), (tb, ts) = _nms_inputs(env, boxes, scores)
    contenders = env.baselines("nms", (tb, ts, thr), np_nms, (fb, fs, thr))
    contenders += _cv2_contenders(env, boxes, scores, thr)
    contenders += env.fastiou_variants("nms", (fb, fs, thr), expect_dtype="int64")
    contenders += _torch_input_variant(env, "nms", (tb, ts, thr))
    reference = None
    notes = dict(notes)
    if env.device == "cuda":
        # torchvision's CUDA kernel compares the IoU in float32, its CPU kernel (and fastiou)
        # as a double: the reference is the CPU rule, computed by fastiou's cpp backend on the
        # host (torchvision's CPU nms would take seconds at 30k-100k sparse boxes; the CPU
        # runs check cpp against torchvision). torchvision CUDA is checked against it too.
        hb, hs = boxes.astype(np.float32), scores.astype(np.float32)

        def reference():
            with env.fastiou.use_backend("cpp"):
                return env.to_numpy(env.fastiou.nms(hb, hs, thr))

        notes["reference"] = "fastiou cpp backend on the host (torchvision's CPU rule)"
    return Case(workload_id, op, size, "float32", env.device, contenders, reference,
                rtol=0, atol=0, notes=notes, compare="equal")


def batched_case(env: Env, workload_id: str, boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray,
                 thr: float, op: str, size: str, **notes) -> Case:
    """One ``batched_nms`` case. The reference is the exact per-class loop (kept indices by
    decreasing score, ties in input order) that fastiou must match index for index;
    torchvision's own batched_nms is checked against it as a set (its coordinate-offset path,
    used for N <= 1000 on CPU and N <= 25000 on CUDA, can lose or keep boxes by rounding)."""
    (fb, fs, fi), (tb, ts, ti) = _nms_inputs(env, boxes, scores, idxs, dtypes=("float32", "float32", "int64"))
    contenders = env.baselines("batched_nms", (tb, ts, ti, thr), np_batched_nms, (fb, fs, fi, thr))
    contenders += _cv2_contenders(env, boxes, scores, thr, labels=idxs)
    contenders += env.fastiou_variants("batched_nms", (fb, fs, fi, thr), expect_dtype="int64")
    contenders += _torch_input_variant(env, "batched_nms", (tb, ts, ti, thr))
    n = len(scores)
    path = "per-class loop" if n * 4 > (4000 if env.device == "cpu" else 100_000) else "coordinate offsets"
    notes = dict(notes, candidates=n, classes=int(len(np.unique(idxs))), torchvision_path=path)
    if env.tv_ops is not None:
        reference = lambda: env.to_numpy(tv_batched_nms_exact(env.tv_ops, env.torch, tb, ts, ti, thr))  # noqa: E731
    else:
        reference = lambda: np_batched_nms(fb, fs, fi, thr).astype(np.float64)  # noqa: E731
    return Case(workload_id, op, size, "float32", env.device, contenders, reference, rtol=0, atol=0,
                notes=notes, compare="equal", baseline_compare="set")


#: NMS workload id -> (``params(device, quick)``: the list of parameter tuples of its cases,
#: ``case(env, *params)``: one :class:`Case`). The runner's workloads iterate over them;
#: benchmarks/bench_nms.py builds the same cases one at a time.
NMS_WORKLOADS: dict[str, tuple[Callable[[str, bool], list[tuple]], Callable[..., Case]]] = {}


def case_workload(registry: dict, id: str, title: str, params: Callable[[str, bool], list[tuple]]):
    """Register ``case(env, *p)`` for every ``p`` in ``params(device, quick)`` as workload ``id``,
    and ``(params, case)`` in ``registry`` (for the pytest-benchmark files)."""

    def deco(case_fn):
        registry[id] = (params, case_fn)

        def build(env: Env) -> Iterator[Case]:
            for p in params(env.device, env.quick):
                yield case_fn(env, *p)

        workload(id, title)(build)
        return case_fn

    return deco


def nms_workload(id: str, title: str, params: Callable[[str, bool], list[tuple]]):
    """``case_workload`` into :data:`NMS_WORKLOADS`."""
    return case_workload(NMS_WORKLOADS, id, title, params)


def nms_sparse_params(device: str, quick: bool) -> list[tuple]:
    """(n,): 100k only without --quick; 30k too (torchvision takes ~2 s a call there)."""
    return [(n,) for n in NMS_SPARSE_SIZES if not (quick and n > 10000)]


@nms_workload("nms-sparse", "nms on scattered boxes, 10-160 px on 1333x800, IoU 0.5", nms_sparse_params)
def nms_sparse_case(env: Env, n: int) -> Case:
    boxes, scores = _inputs.scored_boxes(n, seed=0)
    return nms_case(env, "nms-sparse", boxes, scores, 0.5, "nms iou=0.5", _k(n))


def nms_clustered_params(device: str, quick: bool) -> list[tuple]:
    """(n, iou): every size, both thresholds (50k is a target size)."""
    return [(n, thr) for n in NMS_CLUSTERED_SIZES for thr in NMS_CLUSTERED_IOUS]


@nms_workload("nms-clustered", "nms on clusters of near-duplicates (n/100 objects), IoU 0.5 / 0.7",
              nms_clustered_params)
def nms_clustered_case(env: Env, n: int, thr: float) -> Case:
    boxes, scores = _inputs.clustered_boxes(n, seed=0)
    return nms_case(env, "nms-clustered", boxes, scores, thr, f"nms iou={thr}", _k(n))


@functools.lru_cache(maxsize=1)
def rcnn_candidates(batch: int, proposals: int = 1000, classes: int = 80, score_thr: float = 0.05):
    """The box heads of ``batch`` images and their candidates: ``(boxes (B, P, C, 4),
    scores (B, P, C), cand_boxes (n, 4), cand_scores (n,), cand_ids (n,) = image * C + class)``."""
    heads = [_inputs.rcnn_box_head(proposals, classes, seed=i) for i in range(batch)]
    boxes = np.stack([h[0] for h in heads])
    scores = np.stack([h[1] for h in heads])
    b, p, c = np.nonzero(scores > score_thr)
    return boxes, scores, boxes[b, p, c], scores[b, p, c], b * classes + c


def tv_rcnn_postprocess(tv_ops, torch, boxes, scores, score_thr: float, iou: float, topk: int,
                        exact: bool = False) -> list:
    """detectron2's ``fast_rcnn_inference_single_image`` per image (torchvision): threshold,
    gather the (proposal, class) candidates, class-aware batched_nms, the ``topk`` best.
    ``exact``: torchvision's nms in a per-class loop (the reference), not its batched_nms.
    Per image ``(boxes, scores, classes, proposal indices)``."""
    out = []
    for bi in range(boxes.shape[0]):
        mask = scores[bi] > score_thr
        inds = mask.nonzero()
        bx, sc = boxes[bi][mask], scores[bi][mask]
        if exact:
            keep = tv_batched_nms_exact(tv_ops, torch, bx, sc, inds[:, 1], iou)
        else:
            keep = tv_ops.batched_nms(bx, sc, inds[:, 1], iou)
        keep = keep[:topk]
        out.append((bx[keep], sc[keep], inds[keep, 1], inds[keep, 0]))
    return out


def nms_rcnn_params(device: str, quick: bool) -> list[tuple]:
    """(op, batch): the candidates of the batch through batched_nms (idxs = image * 80 +
    class), and the whole post-processing through multiclass_nms."""
    return [(op, b) for b in NMS_RCNN_BATCHES for op in ("batched_nms", "multiclass_nms")]


@nms_workload("nms-rcnn", "R-CNN box head: 1000 proposals x 80 classes, score > 0.05, class-aware 0.5",
              nms_rcnn_params)
def nms_rcnn_case(env: Env, op: str, bsz: int) -> Case:
    boxes, scores, cb, cs, ci = rcnn_candidates(bsz)
    if op == "batched_nms":
        # The candidates of the whole batch in one call: idxs = image * 80 + class.
        return batched_case(env, "nms-rcnn", cb, cs, ci, 0.5, "batched_nms", f"B={bsz} n={len(cs)}",
                            images=bsz)
    # The whole post-processing, threshold to top 100: detectron2's loop vs multiclass_nms.
    (fb, fs), (tb, ts) = _nms_inputs(env, boxes, scores)
    contenders = env.baselines(
        lambda b, s: tv_rcnn_postprocess(env.tv_ops, env.torch, b, s, 0.05, 0.5, 100),
        (tb, ts), None, (), canon=detections_rows)
    contenders += env.fastiou_variants("multiclass_nms", (fb, fs, 0.5, 0.05, None, 100),
                                       expect_dtype="int64", typed=lambda r: r.indices,
                                       canon=multiclass_rows)
    reference = None
    if env.tv_ops is not None:
        reference = lambda: detections_rows(  # noqa: E731
            tv_rcnn_postprocess(env.tv_ops, env.torch, tb.cpu(), ts.cpu(), 0.05, 0.5, 100, exact=True))
    return Case("nms-rcnn", "multiclass_nms", f"B={bsz} 1000x80", "float32", env.device, contenders,
                reference, rtol=0, atol=0, compare="set",
                notes={"candidates": len(cs), "max_detections": 100,
                       "baseline": "detectron2 fast_rcnn_inference_single_image loop with "
                                   "torchvision.ops.batched_nms"})


def nms_lvis_params(device: str, quick: bool) -> list[tuple]:
    """(n,): 10k, and 30k without --quick."""
    return [(n,) for n in NMS_LVIS_SIZES if not (quick and n > 10000)]


@nms_workload("nms-lvis", "final class-aware NMS, LVIS-like: 1203 classes, batched_nms 0.5", nms_lvis_params)
def nms_lvis_case(env: Env, n: int) -> Case:
    boxes, scores, labels = _inputs.lvis_detections(n, seed=0)
    return batched_case(env, "nms-lvis", boxes, scores, labels, 0.5, "batched_nms",
                        f"{_k(n)} c={len(np.unique(labels))}")


def _xywh2xyxy(torch, x):
    y = torch.empty_like(x)
    xy, wh = x[..., :2], x[..., 2:] / 2
    y[..., :2] = xy - wh
    y[..., 2:] = xy + wh
    return y


def tv_yolo_postprocess(tv_ops, torch, pred, conf: float, iou: float, max_det: int,
                        exact: bool = False) -> list:
    """ultralytics' ``non_max_suppression`` (multi_label, class-aware) with torchvision, per
    image: candidates with any class score > conf, every (anchor, class) pair > conf, boxes
    cxcywh -> xyxy, torchvision batched_nms, the ``max_det`` best. ``exact``: torchvision's nms
    in a per-class loop (the reference). Per image ``(boxes, scores, classes, anchor indices)``."""
    xc = pred[:, 4:].amax(1) > conf           # (B, A)
    p = pred.transpose(-1, -2)                 # (B, A, 4 + C)
    out = []
    for xi in range(p.shape[0]):
        anchors = xc[xi].nonzero()[:, 0]
        x = p[xi][anchors]
        box = _xywh2xyxy(torch, x[:, :4])
        i, j = torch.where(x[:, 4:] > conf)
        bx, sc = box[i], x[i, 4 + j]
        if exact:
            keep = tv_batched_nms_exact(tv_ops, torch, bx, sc, j, iou)
        else:
            keep = tv_ops.batched_nms(bx, sc, j, iou)
        keep = keep[:max_det]
        out.append((bx[keep], sc[keep], j[keep], anchors[i[keep]]))
    return out


def fastiou_yolo_postprocess(fastiou, pred, conf: float, iou: float, max_det: int):
    """The same post-processing with fastiou: cxcywh -> xyxy with ``box_convert`` on the
    transposed head, then ``multiclass_nms`` on the whole batch."""
    p = pred.swapaxes(1, 2)                    # (B, A, 4 + C), a view
    boxes = fastiou.box_convert(p[..., :4], "cxcywh", "xyxy")
    return fastiou.multiclass_nms(boxes, p[..., 4:], iou, conf, None, max_det)


def nms_yolo_params(device: str, quick: bool) -> list[tuple]:
    """(conf, batch): conf 0.25, and 0.001 (the validation setting) without --quick."""
    confs = NMS_YOLO_CONFS[:1] if quick else NMS_YOLO_CONFS
    return [(conf, b) for conf in confs for b in NMS_YOLO_BATCHES]


@nms_workload("nms-yolo", "YOLO post-processing (B, 84, 8400): conf 0.25 / 0.001, IoU 0.7, max_det 300",
              nms_yolo_params)
def nms_yolo_case(env: Env, conf: float, bsz: int) -> Case:
    pred = _inputs.yolo_head(bsz, seed=0, dtype=np.float32)
    (fp,), (tp,) = _nms_inputs(env, pred)
    contenders = env.baselines(
        lambda x: tv_yolo_postprocess(env.tv_ops, env.torch, x, conf, 0.7, 300),
        (tp,), None, (), canon=detections_rows)
    contenders += env.fastiou_variants(
        "multiclass_nms", (fp, conf, 0.7, 300), expect_dtype="int64",
        fn=lambda x, c, i, m: fastiou_yolo_postprocess(env.fastiou, x, c, i, m),
        typed=lambda r: r.indices, canon=multiclass_rows)
    reference = None
    if env.tv_ops is not None:
        reference = lambda: detections_rows(  # noqa: E731
            tv_yolo_postprocess(env.tv_ops, env.torch, tp.cpu(), conf, 0.7, 300, exact=True))
    cand = int((pred[:, 4:] > conf).sum())
    return Case("nms-yolo", f"postproc conf={conf}", f"B={bsz}x8400", "float32", env.device,
                contenders, reference, rtol=0, atol=0, compare="set",
                notes={"candidates": cand, "iou": 0.7, "max_det": 300,
                       "baseline": "ultralytics-style non_max_suppression (multi_label) "
                                   "with torchvision.ops.batched_nms, one image at a time"})


def soft_nms_params(device: str, quick: bool) -> list[tuple]:
    """(method, n): linear at every size; gaussian without --quick."""
    methods = SOFT_NMS_METHODS[:1] if quick else SOFT_NMS_METHODS
    return [(m, n) for m in methods for n in SOFT_NMS_SIZES]


@nms_workload("soft-nms", "soft_nms linear / gaussian (mmcv semantics), clustered boxes", soft_nms_params)
def soft_nms_case(env: Env, method: str, n: int) -> Case:
    eb = env.optional("ensemble_boxes", "ensemble-boxes soft_nms")
    boxes, scores = _inputs.clustered_boxes(n, seed=3)
    (fb, fs), (tb, ts) = _nms_inputs(env, boxes, scores)
    args = (0.3, 0.5, 1e-3, method)
    if env.device == "cpu":
        np_call = lambda: np_soft_nms(fb, fs, *args)  # noqa: E731
    else:  # as mmcv does with a GPU tensor: to the host, then the CPU kernel
        np_call = lambda: np_soft_nms(tb.cpu().numpy(), ts.cpu().numpy(), *args)  # noqa: E731
    contenders = [Contender("numpy (mmcv)", "baseline", np_call, canon=soft_nms_rows)]
    if eb is not None:
        # ensemble-boxes wants boxes in [0, 1] and returns boxes, not indices: timed, not
        # compared.
        norm = (np.asarray(boxes) / np.array([_inputs.IMAGE_W, _inputs.IMAGE_H] * 2)).clip(0, 1)
        s, lab, m = np.asarray(scores), np.zeros(n), {"linear": 1, "gaussian": 2}[method]
        contenders.append(Contender(
            "ensemble-boxes", "baseline",
            lambda: eb.soft_nms([norm], [s], [lab], method=m, iou_thr=0.3, sigma=0.5, thresh=1e-3),
            canon=lambda r: None))
    contenders += env.fastiou_variants("soft_nms", (fb, fs, *args), expect_dtype="int64",
                                       typed=lambda r: r[0], canon=soft_nms_rows)
    return Case("soft-nms", f"soft_nms {method}", _k(n), "float32", env.device, contenders,
                rtol=1e-5, atol=1e-6, compare="close",
                notes={"iou_threshold": 0.3, "sigma": 0.5, "min_score": 1e-3})

# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class _Run:
    c: Contender
    k: int = 1
    samples: list[float] = field(default_factory=list)
    warmup_s: float | None = None
    error: str | None = None


class _Timer:
    def __init__(self, env: Env):
        self.env = env

    def sample(self, c: Contender, k: int) -> float:
        sync = self.env.sync
        call = c.call
        with c.context():
            sync()
            t0 = time.perf_counter()
            for _ in range(k):
                call()
            sync()
            return (time.perf_counter() - t0) / k


def _data_ptr(x) -> int | None:
    for get in (lambda: x.data_ptr(), lambda: x.__array_interface__["data"][0],
                lambda: x.__cuda_array_interface__["data"][0]):
        try:
            return int(get())
        except Exception:
            continue
    return None


def _same_buffer(x, buf) -> bool:
    """``x`` is ``buf`` or a view starting at its first byte (as a DLPack round trip gives)."""
    return x is buf or (_data_ptr(x) is not None and _data_ptr(x) == _data_ptr(buf))


def _canon(env: Env, c: Contender, x: Any) -> np.ndarray | None:
    return c.canon(x) if c.canon is not None else env.to_numpy(x)


def _elements(a: np.ndarray) -> list:
    """The elements of a canonical result: scalars of a 1-D array, row tuples of a 2-D one."""
    return a.tolist() if a.ndim == 1 else [tuple(r) for r in a.reshape(len(a), -1).tolist()]


def _set_diff(got: np.ndarray, ref: np.ndarray) -> str | None:
    """``None`` when ``got`` and ``ref`` hold the same elements (as multisets), else how many
    are missing from / extra in ``got``."""
    from collections import Counter

    g, r = Counter(_elements(got)), Counter(_elements(ref))
    if g == r:
        return None
    missing, extra = sum((r - g).values()), sum((g - r).values())
    return f"{missing} missing, {extra} extra (of {len(ref)})"


def compare_values(got: np.ndarray, ref: np.ndarray, mode: str = "close", rtol: float = 1e-4,
                   atol: float = 1e-5) -> str | None:
    """``None`` when ``got`` matches ``ref`` under ``mode`` (see :class:`Case`), else why not."""
    if mode == "set":
        if got.shape[1:] != ref.shape[1:]:
            return f"shape {got.shape} != {ref.shape}"
        return _set_diff(got, ref)
    if mode == "equal":
        if got.shape == ref.shape and np.array_equal(got, ref, equal_nan=True):
            return None
        if got.shape[1:] != ref.shape[1:]:
            return f"shape {got.shape} != {ref.shape}"
        diff = _set_diff(got, ref)
        if diff is not None:
            return diff
        neq = np.flatnonzero(np.any((got != ref).reshape(len(got), -1), axis=1))
        return f"same set, order differs from position {int(neq[0])}"
    problems = []
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    nan_got, nan_ref = np.isnan(got), np.isnan(ref)
    if (nan_got != nan_ref).any():
        problems.append(f"NaN at {int((nan_got != nan_ref).sum())} places differs")
    both = ~(nan_got | nan_ref)
    if both.any():
        err = np.abs(got[both] - ref[both])
        bad = err > atol + rtol * np.abs(ref[both])
        if bad.any():
            problems.append(f"{int(bad.sum())} values differ, max |d| {float(err.max()):.3g}")
    return "; ".join(problems) or None


def _check(env: Env, case: Case, run: _Run, x: Any, ref: np.ndarray | None) -> str:
    """``ok`` or what is wrong with fastiou's result ``x`` (type, dtype, shape, values)."""
    problems = []
    c = run.c
    xt = c.typed(x) if c.typed is not None else x
    if c.expect_type and env.type_of(xt) != c.expect_type:
        problems.append(f"type {env.type_of(xt)} != {c.expect_type}")
    if c.expect_result is not None and not _same_buffer(xt, c.expect_result):
        problems.append("out= buffer not returned")
    if c.expect_dtype and env.dtype_of(xt) != c.expect_dtype:
        problems.append(f"dtype {env.dtype_of(xt)} != {c.expect_dtype}")
    if ref is not None:
        got = _canon(env, c, x)
        if got is not None:
            why = compare_values(got, ref, case.compare, case.rtol, case.atol)
            if why:
                problems.append(why)
    return "ok" if not problems else "; ".join(problems)


def measure(env: Env, case: Case, repeats: int, min_sample: float, case_budget: float,
            min_repeats: int = 3) -> dict:
    """Measure every contender of ``case`` interleaved; return the case's JSON record."""
    timer = _Timer(env)
    runs = [_Run(c, error=c.skip) for c in case.contenders]
    live = [r for r in runs if r.error is None]
    gc.collect()
    t_case = time.perf_counter()
    ref: list = []  # [float64 reference] once known
    ref_note = None
    checks = {}
    if case.reference is not None and live:
        try:
            ref.append(case.reference())
        except Exception as exc:
            ref_note = f"reference failed: {_first_line(exc)}"
    for r in live:  # warm-up and calibration, in contender order (baselines come first)
        try:
            with r.c.context():
                env.sync()
                t0 = time.perf_counter()
                result = r.c.call()
                env.sync()
                r.warmup_s = time.perf_counter() - t0
            if r.c.kind == "baseline":
                try:
                    if not ref and case.reference is None:
                        got = _canon(env, r.c, result)
                        if got is not None:
                            ref.append(got)
                    elif ref:
                        # A baseline against the reference (or a further one against the
                        # first): values only, for information.
                        got = _canon(env, r.c, result)
                        if got is not None:
                            checks[r.c.name] = compare_values(
                                got, ref[0], case.baseline_compare or case.compare, case.rtol,
                                case.atol) or "ok"
                except Exception as exc:
                    checks[r.c.name] = f"check failed: {_first_line(exc)}"
            if r.c.kind == "fastiou":
                try:
                    checks[r.c.name] = _check(env, case, r, result, ref[0] if ref else None)
                except Exception as exc:
                    checks[r.c.name] = f"check failed: {_first_line(exc)}"
            del result  # keep one result alive at a time
            # A slow baseline (no JIT to hide in its first call) is looped once: calibrating
            # it would only repeat a call that already lasts ten samples' worth.
            slow_baseline = r.c.kind != "fastiou" and r.warmup_s >= 10 * min_sample
            if r.warmup_s < max(1.0, 10 * min_sample) and not slow_baseline:
                # k from the fastest of a few calls after the warm-up (which may have compiled
                # something): a call caught by a scheduler stall would give a small k, and
                # then every sample would carry a whole stall.
                times: list[float] = []
                while len(times) < 4 and sum(times) < 2 * min_sample:
                    times.append(timer.sample(r.c, 1))
                r.k = max(1, min(100000, math.ceil(min_sample / max(min(times), 1e-9))))
        except Exception as exc:
            r.error = _first_line(exc)
    live = [r for r in live if r.error is None]
    ref.clear()

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    done = 0
    try:
        for rnd in range(repeats):
            order = live[rnd % len(live):] + live[: rnd % len(live)] if live else []
            for r in order:
                if r.error is not None:
                    continue
                try:
                    r.samples.append(timer.sample(r.c, r.k))
                except Exception as exc:
                    r.error = _first_line(exc)
            done = rnd + 1
            if done >= min_repeats and time.perf_counter() - t_case > case_budget:
                break
    finally:
        if gc_was_enabled:
            gc.enable()

    contenders = {}
    for r in runs:
        ok = r.error is None and r.samples
        contenders[r.c.name] = {
            "kind": r.c.kind,
            "median_s": statistics.median(r.samples) if ok else None,
            "min_s": min(r.samples) if ok else None,
            "samples_s": r.samples,
            "k": r.k,
            "warmup_s": r.warmup_s,
            "skip": r.error,
            "check": checks.get(r.c.name),
        }
    return {
        "workload": case.workload, "op": case.op, "size": case.size, "dtype": case.dtype,
        "device": case.device, "repeats": done, "seconds": time.perf_counter() - t_case,
        "contenders": contenders, "notes": dict(case.notes, **({"reference": ref_note} if ref_note else {})),
    }


def rows_of(record: dict) -> list[dict]:
    """The table rows of a case record: each fastiou variant against the first baseline,
    then the first fastiou variant against each further baseline."""
    cs = record["contenders"]
    base = [n for n, c in cs.items() if c["kind"] == "baseline"]
    fast = [n for n, c in cs.items() if c["kind"] == "fastiou"]
    floor = cs.get("floor", {}).get("median_s")
    floor_write = cs.get("floor write", {}).get("median_s")
    # A "... 1-thread" fastiou variant faces the "... 1-thread" baseline (when there is one);
    # the other variants face the first baseline; a further baseline with no variant of its
    # own faces the first measured fastiou variant (not an out= one).
    one = "1-thread"
    base1 = next((b for b in base if b.endswith(one)), None)
    measured = [f for f in fast if cs[f]["median_s"] is not None and not f.endswith(one)]
    main_fast = next((f for f in measured if not f.endswith(" out=")), measured[0] if measured else
                     (fast[0] if fast else None))
    first = base[0] if base else None
    pairs = [(base1 if f.endswith(one) and base1 else first, f) for f in fast]
    for b in base[1:]:
        if b == base1 and any(f.endswith(one) and cs[f]["median_s"] is not None for f in fast):
            continue
        if fast:
            pairs.append((b, main_fast))
    if not fast:
        pairs = [(b, None) for b in base]
    rows = []
    for b, f in pairs:
        bt = cs[b]["median_s"] if b else None
        ft = cs[f]["median_s"] if f else None
        skip = "; ".join(s for s in ((cs[b]["skip"] if b else None), (cs[f]["skip"] if f else None)) if s)
        rows.append({
            "workload": record["workload"], "op": record["op"], "size": record["size"],
            "dtype": record["dtype"], "device": record["device"],
            "baseline": b, "baseline_s": bt, "fastiou": f, "fastiou_s": ft,
            "ratio": bt / ft if bt and ft else None,
            "floor_s": floor, "pct_floor": 100.0 * floor / ft if floor and ft else None,
            "floor_write_s": floor_write,
            "pct_floor_write": 100.0 * floor_write / ft if floor_write and ft else None,
            "check": cs[f]["check"] if f else None,
            "baseline_check": cs[b].get("check") if b else None,
            "skip": skip or None,
        })
    return rows


# --------------------------------------------------------------------------------------------
# Reporting


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"
    return f"{s * 1e6:.3g} us"


def _fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


_COLUMNS = [("workload", "<"), ("op", "<"), ("size", "<"), ("dtype", "<"), ("baseline", "<"),
            ("base time", ">"), ("fastiou", "<"), ("fastiou time", ">"), ("ratio", ">"),
            ("% floor", ">"), ("check", "<")]

_DTYPE_SHORT = {"float32": "f32", "float16": "f16", "float64": "f64", "bfloat16": "bf16"}


def _cells(row: dict) -> list[str]:
    check = row.get("check")
    if row.get("skip"):
        check = "skip: " + row["skip"]
    elif check and check != "ok":
        check = "DIFF: " + check
    bcheck = row.get("baseline_check")
    if bcheck and bcheck != "ok" and not row.get("skip"):
        # the baseline itself differs from the case's reference (e.g. torchvision's inexact
        # batched_nms path): said beside fastiou's own check
        check = f"{check or '-'} ({row['baseline']}: {bcheck})"
    return [
        row["workload"], row["op"], row["size"], _DTYPE_SHORT.get(row["dtype"], row["dtype"]),
        row["baseline"] or "-", _fmt_time(row["baseline_s"]), row["fastiou"] or "-",
        _fmt_time(row["fastiou_s"]), _fmt_ratio(row["ratio"]),
        "-" if row["pct_floor"] is None else f"{row['pct_floor']:.0f}%", check or "-",
    ]


_WIDTHS = [13, 19, 12, 5, 20, 9, 20, 12, 7, 7, 0]


def format_row(row: dict) -> str:
    out = []
    for (name, align), w, cell in zip(_COLUMNS, _WIDTHS, _cells(row)):
        out.append(f"{cell:{align}{w}}" if w else cell)
    return "  ".join(out).rstrip()


def format_header() -> str:
    out = []
    for (name, align), w in zip(_COLUMNS, _WIDTHS):
        out.append(f"{name:{align}{w}}" if w else name)
    line = "  ".join(out).rstrip()
    return line + "\n" + "-" * len(line)


def format_table(rows: list[dict]) -> str:
    """The rows as the text table ``fastiou bench`` prints."""
    lines = [format_header()]
    last = None
    for row in rows:
        key = (row["workload"], row["op"], row["size"], row["dtype"])
        if last is not None and key != last:
            lines.append("")
        last = key
        lines.append(format_row(row))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Machine, versions, revision


def _cpu_model() -> dict:
    info: dict[str, Any] = {"model": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        fields: dict[str, str] = {}
        for line in text.splitlines():
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                fields.setdefault(k, v)
        info["model"] = fields.get("model name", info["model"])
        for k in ("vendor_id", "cpu family", "model", "stepping"):
            if k in fields:
                info["cpuid_" + k.replace(" ", "_")] = fields[k]
        flags = set(fields.get("flags", "").split())
        wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vpopcntdq",
                  "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve")
        info["flags"] = [f for f in wanted if f in flags or f in fields.get("Features", "").split()]
    except OSError:
        pass
    return info


def machine_info(env: Env | None) -> dict:
    m: dict[str, Any] = {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
                         "hostname": platform.node()}
    try:
        m["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/meminfo") as f:
            m["memory_kb"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    if env is not None:
        info = fastiou_info(env)
        build = info.get("build") if isinstance(info.get("build"), dict) else {}
        isa = next((d[k] for d in (info, build) for k in ("isa", "cpu_isa") if d.get(k)), None)
        if isa is not None:
            m["isa"] = isa
        torch = env.torch
        if torch is not None:
            try:
                if torch.cuda.is_available():
                    i = torch.cuda.current_device()
                    p = torch.cuda.get_device_properties(i)
                    m["gpu"] = torch.cuda.get_device_name(i)
                    m["gpu_memory_bytes"] = int(p.total_memory)
                    m["gpu_sms"] = int(p.multi_processor_count)
                    m["cuda_runtime"] = torch.version.cuda
            except Exception as exc:
                m["gpu_error"] = _first_line(exc)
    return m


def fastiou_info(env: Env) -> dict:
    fn = getattr(env.fastiou, "info", None)
    if fn is None:
        return {}
    try:
        return dict(fn())
    except Exception as exc:
        return {"error": _first_line(exc)}


def versions(env: Env | None) -> dict:
    v: dict[str, Any] = {"python": platform.python_version()}
    for name in ("numpy", "torch", "torchvision", "numba", "cupy", "fastiou"):
        mod = sys.modules.get(name)
        ver = getattr(mod, "__version__", None) if mod is not None else None
        if ver is None:
            for dist in (name, "cupy-cuda13x", "cupy-cuda12x") if name == "cupy" else (name,):
                try:
                    ver = importlib.metadata.version(dist)
                    break
                except importlib.metadata.PackageNotFoundError:
                    continue
        v[name] = str(ver) if ver is not None else None
    return v


def git_revision() -> dict | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            top = subprocess.run(["git", "-C", here, "rev-parse", "--show-toplevel"],
                                 capture_output=True, text=True, timeout=10)
            return {"revision": None, "note": "no commit yet"} if top.returncode == 0 else None
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastiou bench",
        description="Time fastiou against torchvision (or numpy) side by side, in one process, "
                    "and against the floor of writing the output. Prints a table, writes JSON.")
    p.add_argument("--quick", action="store_true",
                   help="fewer sizes and repeats (under a minute on 2 CPU cores)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu: numpy inputs for fastiou, torch CPU tensors for torchvision; "
                        "cuda: torch CUDA tensors for both (float32 and float16)")
    p.add_argument("--only", action="append", metavar="WORKLOAD",
                   help="run only this workload (repeatable, or comma-separated); see --list")
    p.add_argument("--json", default="bench-results.json", metavar="PATH",
                   help="where to write the results (default: %(default)s; '-' for none)")
    p.add_argument("--repeats", type=int, metavar="K",
                   help="timed rounds per case (default 7, --quick 3); the median is reported")
    p.add_argument("--min-sample", type=float, metavar="SECONDS",
                   help="shortest timed sample; fast calls are looped to reach it")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="stop starting new cases after this many seconds (they are listed as skipped)")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--report", metavar="PATH", help="print the table of a saved JSON file and exit")
    return p


def _selected(only: list[str] | None) -> list[Workload]:
    if not only:
        return list(WORKLOADS.values())
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"fastiou bench: unknown workload(s) {', '.join(unknown)}; "
                         f"known: {', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in names]


def _write_json(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


def _print_context(doc: dict, out) -> None:
    m, v = doc["machine"], doc["versions"]
    cpu = m["cpu"]
    line = f"machine: {cpu.get('model')} ({m.get('cores_usable', m['cores'])} cores"
    if m.get("isa"):
        line += f", fastiou ISA {m['isa']}"
    elif cpu.get("flags"):
        line += f", {' '.join(cpu['flags'])}"
    line += ")"
    if m.get("gpu"):
        line += f"; GPU {m['gpu']}"
    print(line, file=out)
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), file=out)
    s = doc["settings"]
    th = doc.get("threads", {})
    print(f"device {s['device']}, repeats {s['repeats']}, min sample {_fmt_time(s['min_sample_s'])}, "
          f"torch threads {th.get('torch')}; git {(doc.get('git') or {}).get('revision')}", file=out)
    for k, note in doc.get("notes", {}).items():
        print(f"note: {note}", file=out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout

    if args.list:
        for w in WORKLOADS.values():
            print(f"{w.id:16} {w.title}")
        return 0
    if args.report:
        with open(args.report) as f:
            doc = json.load(f)
        _print_context(doc, out)
        print(format_table(doc["rows"]), file=out)
        return 0

    selected = _selected(args.only)
    env = Env(args.device, args.quick)
    if args.device == "cuda":
        torch = env.torch
        if torch is None or not torch.cuda.is_available():
            print("fastiou bench: --device cuda needs torch with a CUDA device "
                  f"({env.notes.get('torch') or 'torch.cuda.is_available() is False'})", file=sys.stderr)
            return 2
    repeats = args.repeats or (3 if args.quick else 7)
    min_sample = args.min_sample or (0.02 if args.quick else 0.05)
    case_budget = 8.0 if args.quick else 40.0

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": ["fastiou", "bench", *(argv if argv is not None else sys.argv[1:])],
        "settings": {"device": args.device, "quick": args.quick, "repeats": repeats,
                     "min_sample_s": min_sample, "case_budget_s": case_budget, "budget_s": args.budget,
                     "workloads": [w.id for w in selected]},
        "machine": machine_info(env),
        "versions": versions(env),
        "git": git_revision(),
        "fastiou_info": fastiou_info(env),
        "backends": env.backends,
        "threads": {"torch": env.torch_threads,
                    "env": {k: v for k, v in os.environ.items()
                            if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
                            or k.startswith("FASTIOU_")}},
        "notes": dict(env.notes),
        "rows": [],
        "cases": [],
    }
    _print_context(doc, out)
    notes_shown = set(doc["notes"])
    print(format_header(), file=out, flush=True)

    t_start = time.perf_counter()
    last_key = None
    try:
        for w in selected:
            for case in w.build(env):
                if args.budget is not None and time.perf_counter() - t_start > args.budget:
                    for c in case.contenders:
                        c.skip = c.skip or "time budget spent"
                    record = measure(env, case, 0, min_sample, 0.0, min_repeats=0)
                else:
                    record = measure(env, case, repeats, min_sample, case_budget)
                rows = rows_of(record)
                doc["notes"] = dict(env.notes)  # builders add notes (an optional peer missing)
                doc["cases"].append(record)
                doc["rows"].extend(rows)
                key = (case.workload, case.op, case.size, case.dtype)
                if last_key is not None:
                    print(file=out)
                last_key = key
                for row in rows:
                    print(format_row(row), file=out, flush=True)
                if args.json != "-":
                    _write_json(args.json, doc)  # after every case: a killed run keeps its rows
    finally:
        doc["seconds"] = time.perf_counter() - t_start
        if args.json != "-":
            _write_json(args.json, doc)

    print(file=out)
    doc["notes"] = dict(env.notes)
    for k, note in doc["notes"].items():
        if k not in notes_shown:
            print(f"note: {note}", file=out)
    print("ratio = baseline time / fastiou time (medians of interleaved repeats); "
          "% floor = time to allocate and fill a fresh float32 output of the same shape / fastiou time "
          "(none for NMS: its output is tiny, the work is compute).",
          file=out)
    if args.json != "-":
        print(f"wrote {args.json} ({doc['seconds']:.0f} s)", file=out)
    return 0


from fastiou import bench_masks  # noqa: E402,F401  (registers mask-iou, rle-encode, rle-iou, mask-nms)

if __name__ == "__main__":  # run as fastiou.bench, where bench_masks registered its workloads
    from fastiou.bench import main as _main

    sys.exit(_main())
