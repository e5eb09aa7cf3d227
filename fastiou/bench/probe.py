"""The machine and environment a run happened on: CPU model and flags, cores, memory, GPU,
library versions, fastiou's build, the git revision. Recorded in the JSON and printed in the
header, so that a figure always comes with where it was measured."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any


def first_line(exc: BaseException, limit: int = 160) -> str:
    """``Type: message``, first line, at most ``limit`` characters."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vpopcntdq",
              "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve")


def cpu_model() -> dict:
    """Model name, cpuid fields and the vector ISA flags that matter here (from /proc/cpuinfo)."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = (s.strip() for s in line.split(":", 1))
            fields.setdefault(k, v)
    info["model"] = fields.get("model name", info["model"])
    for k in ("vendor_id", "cpu family", "model", "stepping"):
        if k in fields:
            info["cpuid_" + k.replace(" ", "_")] = fields[k]
    flags = set(fields.get("flags", "").split()) | set(fields.get("Features", "").split())
    info["flags"] = [f for f in _CPU_FLAGS if f in flags]
    return info


def fastiou_info(fastiou) -> dict:
    """``fastiou.info()``, or what went wrong calling it."""
    fn = getattr(fastiou, "info", None)
    if fn is None:
        return {}
    try:
        return dict(fn())
    except Exception as exc:
        return {"error": first_line(exc)}


def _gpu_info(torch) -> dict:
    m: dict[str, Any] = {}
    try:
        if torch.cuda.is_available():
            i = torch.cuda.current_device()
            p = torch.cuda.get_device_properties(i)
            m["gpu"] = torch.cuda.get_device_name(i)
            m["gpu_memory_bytes"] = int(p.total_memory)
            m["gpu_sms"] = int(p.multi_processor_count)
            m["cuda_runtime"] = torch.version.cuda
    except Exception as exc:
        m["gpu_error"] = first_line(exc)
    return m


def machine_info(env=None) -> dict:
    """CPU, cores (and those this process may use), memory, fastiou's ISA, the GPU torch sees."""
    m: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
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
        info = fastiou_info(env.fastiou)
        build = info.get("build") if isinstance(info.get("build"), dict) else {}
        isa = next((d[k] for d in (info, build) for k in ("isa", "cpu_isa") if d.get(k)), None)
        if isa is not None:
            m["isa"] = isa
        if env.torch is not None:
            m.update(_gpu_info(env.torch))
    return m


def versions() -> dict:
    """Versions of Python and of the libraries measured (``None``: not installed)."""
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
    """The commit of the source tree fastiou runs from, and whether it has changes."""
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


def thread_settings(env) -> dict:
    """torch's thread count and the thread variables of the environment."""
    return {"torch": env.torch_threads,
            "env": {k: v for k, v in os.environ.items()
                    if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
                    or k.startswith("FASTIOU_")}}
