"""Contender factories shared by the workload modules: the baselines (torchvision, or numpy
without torch), fastiou forced to each backend of the device (one thread, ``out=``), the
floors of writing an output, and fastiou on torch CPU tensors."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np

from fastiou.bench.registry import Contender
from fastiou.bench.threads import stacked, torch_threads

# ``Env`` in annotations is fastiou.bench.env.Env, not imported here: env imports this module.


def baselines(env: "Env", tv_name: str | Callable | None, tv_args: tuple, numpy_fn: Callable | None,
              np_args: tuple, tv_kwargs: dict | None = None, *,
              canon: Callable[[Any], np.ndarray | None] | None = None) -> list[Contender]:
    """torchvision (torch's default threads; on CPU also one thread), or ``numpy_fn``
    when torchvision is not installed. ``tv_name`` is a ``torchvision.ops`` name, or a
    function built on torchvision (a post-processing loop) called with ``tv_args``."""
    tv_kwargs = dict(tv_kwargs or {})
    if env.tv_ops is not None and tv_name is not None:
        fn = getattr(env.tv_ops, tv_name) if isinstance(tv_name, str) else tv_name
        call = lambda: fn(*tv_args, **tv_kwargs)  # noqa: E731
        out = [Contender("torchvision", "baseline", call, canon=canon)]
        if env.device == "cpu":
            out.append(Contender("torchvision 1-thread", "baseline", call,
                                 lambda: torch_threads(env.torch, 1), canon=canon))
        return out
    if numpy_fn is not None and env.device == "cpu":
        return [Contender("numpy", "baseline", lambda: numpy_fn(*np_args), canon=canon)]
    return [Contender("torchvision", "baseline", skip=env.notes.get("torch", "no baseline"))]


def _backend_context(env: "Env", backend: str):
    if hasattr(env.fastiou, "use_backend"):
        return lambda b=backend: env.fastiou.use_backend(b)
    return contextlib.nullcontext


def fastiou_variants(env: "Env", fn_name: str, args: tuple, kwargs: dict | None = None,
                     out: Callable[[], Any] | None = None, expect_dtype: str | None = "float32", *,
                     fn: Callable | None = None, typed: Callable[[Any], Any] | None = None,
                     canon: Callable[[Any], np.ndarray | None] | None = None) -> list[Contender]:
    """fastiou's ``fn_name(*args, **kwargs)`` forced to each backend of this device;
    with ``out`` (a factory of the output buffer), also the first available backend
    writing into a reused ``out=`` buffer. Results must come back in the library and on
    the device of ``args[0]``, of ``expect_dtype`` (``typed(result)`` of them, when the
    result is a tuple). ``fn`` replaces ``fastiou.<fn_name>`` by a function that calls
    fastiou (a whole post-processing step); ``canon`` is passed on to the contenders."""
    kwargs = dict(kwargs or {})
    if fn is None:
        fn = getattr(env.fastiou, fn_name, None)
    expect = dict(expect_type=env.type_of(args[0]), expect_dtype=expect_dtype, typed=typed, canon=canon)
    result: list[Contender] = []
    names = env.fastiou_backends()
    skips = [f"fastiou.{fn_name} is missing" if fn is None else env.backend_skip(b) for b in names]
    # out= goes with the first backend that runs here (the default one when it is built).
    with_out = next((i for i, s in enumerate(skips) if s is None), 0)
    for i, (backend, skip) in enumerate(zip(names, skips)):
        label = f"fastiou[{backend}]"
        ctx = _backend_context(env, backend)
        call = None if skip else (lambda: fn(*args, **kwargs))
        result.append(Contender(label, "fastiou", call, ctx, skip, **expect))
        # (through OpenMP, only the cpp backend's threads can be set)
        threads = env.fastiou_threads(1) if env.device == "cpu" and (
            backend == "cpp" or hasattr(env.fastiou, "set_num_threads")) else None
        if i == with_out and threads is not None:
            # One thread, to face torchvision on one thread (a busy second core slows
            # every 2-thread run, the baseline's and ours alike).
            result.append(Contender(label + " 1-thread", "fastiou", call,
                                    lambda c=ctx, t=threads: stacked(c(), t()), skip, **expect))
        if i == with_out and out is not None:
            buf_call, buf = None, None
            if not skip:
                buf = out()
                buf_call = lambda buf=buf: fn(*args, out=buf, **kwargs)  # noqa: E731
            result.append(Contender(label + " out=", "fastiou", buf_call, ctx, skip,
                                    expect_result=buf, **expect))
    return result


def floors(env: "Env", shape: tuple[int, ...]) -> list[Contender]:
    """The floors of a float32 result of ``shape``: allocate and write a fresh one
    ("floor"), and write into an existing one ("floor write")."""
    if env.device == "cuda":
        torch = env.torch
        buf = torch.empty(shape, dtype=torch.float32, device="cuda")
        return [
            Contender("floor", "floor",
                      lambda: torch.empty(shape, dtype=torch.float32, device="cuda").fill_(1.0)),
            Contender("floor write", "floor", lambda: buf.fill_(1.0)),
        ]
    hbuf = np.empty(shape, np.float32)

    def fresh():
        a = np.empty(shape, np.float32)
        a.fill(1.0)  # not np.zeros: calloc'd pages would never be written
        return a

    return [Contender("floor", "floor", fresh), Contender("floor write", "floor", lambda: hbuf.fill(1.0))]


def torch_input_variant(env: "Env", fn_name: str, targs: tuple, expect_dtype: str = "int64",
                        label: str = "fastiou[cpp] torch") -> list[Contender]:
    """On CPU, fastiou's cpp backend called with torchvision's torch CPU tensors: the drop-in
    call (the other fastiou rows get numpy arrays), which pays the torch-side conversions."""
    if env.device != "cpu" or env.torch is None:
        return []
    fn = getattr(env.fastiou, fn_name, None)
    skip = f"fastiou.{fn_name} is missing" if fn is None else env.backend_skip("cpp")
    return [Contender(label, "fastiou", None if skip else (lambda: fn(*targs)),
                      _backend_context(env, "cpp"), skip, "torch:cpu", expect_dtype)]


def k_label(n: int) -> str:
    """``1000`` -> ``"1k"``; other sizes as they are."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
