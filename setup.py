"""Builds fastiou._C (C++/OpenMP, always) and fastiou._C_cuda (CUDA, when nvcc is found).

Environment:
    FASTIOU_CUDA=auto|0|1   auto (default): build the CUDA module when nvcc is found;
                            0: never; 1: required (a missing nvcc is an error).
    FASTIOU_CUDA_ARCHS      CUDA architectures, default "80;90" (sm_80 and sm_90 machine
                            code, plus compute_90 PTX for newer GPUs).
    CUDA_HOME / CUDA_PATH   where the toolkit lives, if nvcc's location does not tell.
    FASTIOU_DEBUG=1         -O0 -g instead of -O3.

Portable machine code: the CPU hot loops carry their own AVX-512 / AVX2 / baseline clones
chosen at load time (csrc/cpu/cpu_common.h); nothing is built with -march=native. The CUDA
runtime is linked statically, so the module needs only a driver at run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
DEBUG = os.environ.get("FASTIOU_DEBUG", "") == "1"
OPT = ["-O0", "-g"] if DEBUG else ["-O3"]
# FMA contraction would change float32 results (torchvision computes without it); keep every
# operation rounded as written so CPU, CUDA and CuPy agree bit for bit.
CXX_FLAGS = ["-std=c++17", *OPT, "-fopenmp", "-ffp-contract=off", "-fvisibility=hidden", "-Wall"]


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def find_cuda() -> tuple[str | None, str]:
    """(CUDA home, reason) — home is None when no usable nvcc is found."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(os.path.realpath(nvcc)).parent.parent))
    candidates += ["/usr/local/cuda", "/opt/cuda"]
    for c in candidates:
        if c and (Path(c) / "bin" / "nvcc").exists() and (Path(c) / "include" / "cuda_runtime.h").exists():
            return c, ""
    return None, "nvcc not found at install (set CUDA_HOME or put nvcc on PATH)"


def cuda_mode() -> str:
    mode = os.environ.get("FASTIOU_CUDA", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        raise SystemExit(f"FASTIOU_CUDA must be auto, 0 or 1, got {mode!r}")
    return mode


class BuildExt(build_ext):
    """Compiles the .cu sources of _C_cuda with nvcc before the usual link."""

    def build_extension(self, ext):
        if ext.name == "fastiou._C_cuda":
            self._compile_cuda(ext)
        super().build_extension(ext)

    def _compile_cuda(self, ext):
        home = ext.cuda_home
        archs = [a.strip() for a in os.environ.get("FASTIOU_CUDA_ARCHS", "80;90").split(";") if a.strip()]
        gencode = []
        for a in archs:
            gencode += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
        gencode += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]
        build_temp = Path(self.build_temp) / "cuda"
        build_temp.mkdir(parents=True, exist_ok=True)

        def nvcc(src: str) -> str:
            obj = str(build_temp / (Path(src).stem + ".o"))
            cmd = [str(Path(home) / "bin" / "nvcc"), "-c", src, "-o", obj, "-std=c++17", *OPT,
                   "--fmad=false", "-Xcompiler", "-fPIC,-fvisibility=hidden", "-I", str(CSRC / "include"),
                   *gencode]
            print(" ".join(cmd), flush=True)
            subprocess.check_call(cmd, cwd=ROOT)
            return obj

        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            ext.extra_objects = list(pool.map(nvcc, ext.cu_sources))
        ext.define_macros.append(("FASTIOU_CUDA_ARCHS", f'"{";".join(archs)}"'))


class BuildPy(build_py):
    """Ships the kernel sources and math headers as package data for the CuPy backend."""

    def run(self):
        super().run()
        dest = Path(self.build_lib) / "fastiou" / "_csrc"
        for sub in ("include", "kernels"):
            shutil.copytree(CSRC / sub, dest / sub, dirs_exist_ok=True)


def extensions():
    mode = cuda_mode()
    home, reason = (None, "disabled by FASTIOU_CUDA=0") if mode == "0" else find_cuda()
    if home is None and mode == "1":
        raise SystemExit(f"FASTIOU_CUDA=1 but {reason}")
    cuda_status = f"built with {home}" if home else f"not built: {reason}"
    print(f"fastiou: CUDA module {cuda_status}", flush=True)

    flags_str = " ".join(CXX_FLAGS)
    cpu_sources = sorted(rel(p) for p in CSRC.glob("bindings_cpu*.cpp")) + sorted(rel(p) for p in (CSRC / "cpu").glob("*.cpp"))
    exts = [Pybind11Extension(
        "fastiou._C", cpu_sources, include_dirs=[str(CSRC / "include")],
        extra_compile_args=CXX_FLAGS, extra_link_args=["-fopenmp"],
        define_macros=[("FASTIOU_BUILD_FLAGS", f'"{flags_str}"'),
                       ("FASTIOU_CUDA_STATUS", f'"{cuda_status}"')], cxx_std=17)]
    if home is None:
        return exts

    lib = next((Path(home) / d for d in ("lib64", "lib", "targets/x86_64-linux/lib")
                if (Path(home) / d / "libcudart_static.a").exists()), Path(home) / "lib64")
    cuda_ext = Pybind11Extension(
        "fastiou._C_cuda", [rel(CSRC / "bindings_cuda.cpp")],
        include_dirs=[str(CSRC / "include"), str(Path(home) / "include")],
        extra_compile_args=[f for f in CXX_FLAGS if f != "-fopenmp"],
        library_dirs=[str(lib)], libraries=["cudart_static", "rt", "pthread", "dl"], cxx_std=17)
    cuda_ext.cu_sources = sorted(rel(p) for p in (CSRC / "cuda").glob("*.cu"))
    cuda_ext.cuda_home = home
    exts.append(cuda_ext)
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
