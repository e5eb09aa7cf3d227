"""The ``cupy`` backend: the kernels of csrc/kernels/ compiled at run time with NVRTC.

The same ``.cuh`` files that nvcc builds into fastiou._C_cuda, shipped as package data
(fastiou/_csrc/, or csrc/ of a source checkout), compiled with the same flags that matter
(C++17, --fmad=false) and launched with the same grid shapes as csrc/cuda/*.cu.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cupy as cp
import numpy as np

_HERE = Path(__file__).resolve().parent.parent


def source_dirs() -> tuple[Path, Path]:
    """(include dir, kernels dir) of the kernel sources."""
    for base in (_HERE / "_csrc", _HERE.parent / "csrc"):
        if (base / "kernels").is_dir() and (base / "include" / "fastiou").is_dir():
            return base / "include", base / "kernels"
    raise RuntimeError("fastiou kernel sources not found (neither fastiou/_csrc nor csrc/)")


_TYPES = {"float32": "float", "float64": "double"}
_SCALAR = {"float32": np.float32, "float64": np.float64}
_MODULES: dict[str, object] = {}
_lock = threading.Lock()

# Every kernel instance each source file holds, compiled together on first use.
_INSTANCES = {
    "box_iou.cuh": [f"fastiou::box_{k}_kernel<{t}, {m}>" for k in ("pairwise", "aligned")
                    for t in ("float", "double") for m in range(5)],
    "box_elementwise.cuh": [f"fastiou::box_{k}_kernel<{t}>" for k in ("area", "convert")
                            for t in ("float", "double")],
    "masks_to_boxes.cuh": ["fastiou::masks_to_boxes_kernel"],
}
_PAIRWISE_ROWS = 16  # kPairwiseRows in box_iou.cuh
_MASKS_THREADS = 256  # kMasksThreads in masks_to_boxes.cuh


def _module(filename: str):
    mod = _MODULES.get(filename)
    if mod is None:
        with _lock:
            mod = _MODULES.get(filename)
            if mod is None:
                inc, ker = source_dirs()
                mod = cp.RawModule(code=f'#include "{filename}"\n',
                                   options=("-std=c++17", "--fmad=false", f"-I{inc}", f"-I{ker}"),
                                   name_expressions=_INSTANCES[filename])
                mod.compile()
                _MODULES[filename] = mod
    return mod


def _kernel(filename: str, name: str):
    return _module(filename).get_function(name)


def _view(a):
    nbytes = int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
    mem = cp.cuda.UnownedMemory(a.ptr, nbytes, a.owner, device_id=a.device)
    return cp.ndarray(a.shape, dtype=a.dtype, memptr=cp.cuda.MemoryPointer(mem, 0))


def _grid_for(work: int, per_block: int) -> int:
    return int(min(max(1, -(-work // per_block)), 1 << 20))


def _launch(filename, name, grid, block, device, stream, args):
    with cp.cuda.Device(device), cp.cuda.ExternalStream(stream, device):
        _kernel(filename, name)((grid,), (block,), args)


def box_pairwise(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    batch, n, _ = boxes1.shape
    m = boxes2.shape[1]
    assert boxes2.shape == (batch, m, 4) and out.shape == (batch, n, m)
    if batch * n * m == 0:
        return
    threads = 256 if m >= 256 else 128 if m >= 128 else 64 if m >= 64 else 32  # as box_iou.cu
    tiles = batch * (-(-n // _PAIRWISE_ROWS)) * (-(-m // threads))
    t = _TYPES[boxes1.dtype]
    _launch("box_iou.cuh", f"fastiou::box_pairwise_kernel<{t}, {mode}>", _grid_for(tiles, 1), threads,
            boxes1.device, stream,
            (_view(boxes1), _view(boxes2), _view(out), np.int64(batch), np.int64(n), np.int64(m),
             np.int32(fmt), _SCALAR[boxes1.dtype](eps)))


def box_aligned(boxes1, boxes2, out, mode, fmt, eps, *, stream):
    n = boxes1.shape[0]
    assert boxes2.shape == (n, 4) and out.shape == (n,)
    if n == 0:
        return
    t = _TYPES[boxes1.dtype]
    _launch("box_iou.cuh", f"fastiou::box_aligned_kernel<{t}, {mode}>", _grid_for(n, 256), 256,
            boxes1.device, stream,
            (_view(boxes1), _view(boxes2), _view(out), np.int64(n), np.int32(fmt),
             _SCALAR[boxes1.dtype](eps)))


def box_area(boxes, out, fmt, *, stream):
    n = boxes.shape[0]
    assert out.shape == (n,)
    if n == 0:
        return
    _launch("box_elementwise.cuh", f"fastiou::box_area_kernel<{_TYPES[boxes.dtype]}>", _grid_for(n, 256),
            256, boxes.device, stream, (_view(boxes), _view(out), np.int64(n), np.int32(fmt)))


def box_convert(boxes, out, in_fmt, out_fmt, *, stream):
    n = boxes.shape[0]
    assert out.shape == (n, 4)
    if n == 0:
        return
    _launch("box_elementwise.cuh", f"fastiou::box_convert_kernel<{_TYPES[boxes.dtype]}>",
            _grid_for(n, 256), 256, boxes.device, stream,
            (_view(boxes), _view(out), np.int64(n), np.int32(in_fmt), np.int32(out_fmt)))


def masks_to_boxes(masks, out, *, stream):
    n, h, w = masks.shape
    assert out.shape == (n, 4) and masks.dtype == "uint8"
    if n == 0:
        return
    if h >= 2**31 or w >= 2**31:
        raise ValueError("masks: H and W must be < 2^31")
    _launch("masks_to_boxes.cuh", "fastiou::masks_to_boxes_kernel", _grid_for(n, 1), _MASKS_THREADS,
            masks.device, stream, (_view(masks), _view(out), np.int64(n), np.int32(h), np.int32(w)))
