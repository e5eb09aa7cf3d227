"""The CUDA kernel sources compile under NVRTC (what the CuPy backend does at run time).

Runs wherever an NVRTC library is found (torch's CUDA wheels ship one), GPU or not, so a
kernel change that nvcc accepts but NVRTC rejects fails here rather than on a user's GPU.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

import pytest

from fastiou._backends.kernel_sources import INSTANCES, options, source_dirs


def _find_nvrtc():
    """ctypes handle of libnvrtc, with its builtins library loaded first so it resolves."""
    dirs = [os.path.join(p, "nvidia", sub, "lib") for p in sys.path if p
            for sub in ("cu13", "cu12", "cuda_nvrtc")]
    dirs += ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu"]
    for d in dirs:
        libs = sorted(glob.glob(os.path.join(d, "libnvrtc.so*")))
        libs = [p for p in libs if "alt" not in os.path.basename(p)]
        if not libs:
            continue
        for b in sorted(glob.glob(os.path.join(d, "libnvrtc-builtins.so*"))):
            if "alt" not in os.path.basename(b):
                ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
        return ctypes.CDLL(libs[-1])
    return None


_NVRTC = _find_nvrtc()


def _compile(filename: str, names: list[str]) -> tuple[int, str]:
    lib = _NVRTC
    prog = ctypes.c_void_p()
    src = f'#include "{filename}"\n'.encode()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"fastiou_check.cu", 0, None, None) == 0
    try:
        for n in names:
            assert lib.nvrtcAddNameExpression(prog, n.encode()) == 0
        opts = [o.encode() for o in options()] + [b"-arch=compute_80"]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(max(1, size.value))
        lib.nvrtcGetProgramLog(prog, log)
        if rc == 0:
            for n in names:  # each instance the CuPy backend asks for exists
                lowered = ctypes.c_char_p()
                assert lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(lowered)) == 0, n
        return rc, log.value.decode(errors="replace")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def test_sources_found():
    inc, ker = source_dirs()
    for filename in INSTANCES:
        assert (ker / filename).is_file(), filename
    assert (inc / "fastiou" / "box_math.h").is_file()


@pytest.mark.skipif(_NVRTC is None, reason="no NVRTC library found (it ships with torch's CUDA wheels)")
@pytest.mark.parametrize("filename", sorted(INSTANCES))
def test_nvrtc_compiles(filename):
    rc, log = _compile(filename, INSTANCES[filename])
    assert rc == 0, log
