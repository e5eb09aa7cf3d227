"""Thread control for the one-thread rows: torch's, and fastiou's (``fastiou.set_num_threads``
or the OpenMP runtime its extension is linked with)."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, ContextManager

from fastiou.bench.probe import fastiou_info

# ``Env`` in annotations is fastiou.bench.env.Env, not imported here: env imports this module.


@contextlib.contextmanager
def torch_threads(torch, n: int):
    """torch on ``n`` threads for the duration."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def stacked(*cms: ContextManager):
    """Enter every context manager of ``cms``, in order."""
    with contextlib.ExitStack() as stack:
        for cm in cms:
            stack.enter_context(cm)
        yield


def fastiou_threads(env: "Env", n: int) -> Callable[[], ContextManager] | None:
    """A context factory running fastiou's CPU kernels on ``n`` threads: through
    ``fastiou.set_num_threads`` / ``get_num_threads`` when fastiou has them, else through
    the OpenMP runtime its extension is linked with; ``None`` when neither exists."""
    set_n = getattr(env.fastiou, "set_num_threads", None)
    get_n = getattr(env.fastiou, "get_num_threads", None)
    if set_n is None or get_n is None:
        set_n, get_n = _openmp_threads(env)
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


def _openmp_threads(env: "Env"):
    """(set, get) of the OpenMP runtime loaded in this process, when fastiou's extension
    says it was built with OpenMP; (None, None) otherwise. ``omp_set_num_threads`` acts
    on the calling thread, which is the one that calls fastiou."""
    if hasattr(env, "_omp"):
        return env._omp
    env._omp = (None, None)
    build = fastiou_info(env.fastiou).get("build")
    if not isinstance(build, dict) or not build.get("openmp"):
        return env._omp
    try:
        import ctypes

        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line})
        omp = [p for p in libs if os.path.basename(p).startswith(("libgomp", "libomp", "libiomp"))]
        if len(omp) != 1:  # none, or two runtimes: which one fastiou uses is not known
            return env._omp
        lib = ctypes.CDLL(omp[0])
        set_n, get_n = lib.omp_set_num_threads, lib.omp_get_max_threads
        set_n.argtypes, set_n.restype, get_n.restype = [ctypes.c_int], None, ctypes.c_int
        env._omp = (lambda k: set_n(int(k)), lambda: int(get_n()))
        env.notes["fastiou threads"] = (f"fastiou has no set_num_threads(): its 1-thread row "
                                        f"calls omp_set_num_threads of {omp[0]}")
    except Exception:
        pass
    return env._omp
