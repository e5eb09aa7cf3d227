"""Array interop: numpy, torch (CPU/CUDA), cupy, DLPack, CUDA array interface, lists.

The caller's library is detected without importing it (a library that is not in
``sys.modules`` cannot have made the array). Each argument keeps its own library; outputs are
allocated in the library and on the device of the first array argument, so kernels write
straight into the caller's memory and nothing is copied back.
"""

from __future__ import annotations

import sys
import numpy as np

from ._errors import InputError

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64")


_NP_NAMES: dict = {}


def _np_dtype_name(dt) -> str:
    # dtype.name and str(dtype) are Python code costing microseconds; a dict lookup is not.
    name = _NP_NAMES.get(dt)
    if name is None:
        name = _NP_NAMES[dt] = dt.name
    return name


class _Numpy:
    name = "numpy"

    @staticmethod
    def device(x):
        return "cpu"

    @staticmethod
    def dtype(x):
        return _np_dtype_name(x.dtype)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def contiguous(x):
        if x.ndim >= 2 and 1 < x.shape[-1] <= 16 and abs(x.strides[-1]) > abs(x.strides[-2]) > 0:
            # A coordinate-major view (boxes sliced from a transposed (B, 4 + C, N) head): numpy
            # copies in the output's order, a cache line of the input per element; one
            # last-axis slice at a time reads the input's rows in order (~4x faster).
            out = np.empty(x.shape, x.dtype)
            for q in range(x.shape[-1]):
                out[..., q] = x[..., q]
            return out
        return np.ascontiguousarray(x)

    @staticmethod
    def empty(shape, dtype, device):
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def zeros(shape, dtype, device):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def full(shape, value, dtype, device):
        return np.full(shape, value, dtype=dtype)

    @staticmethod
    def unique_inverse(x):
        # equal_nan=False: every NaN its own value, as torch.unique (torchvision's batched_nms)
        return np.unique(x, return_inverse=True, equal_nan=False)[1].reshape(-1).astype(np.int64)

    @staticmethod
    def host(x):
        return x

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def broadcast_to(x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def nonzero_u8(x):
        if x.dtype == np.uint8:
            return x
        return (x if x.dtype == np.bool_ else x != 0).view(np.uint8)

    @staticmethod
    def is_contiguous(x):
        return x.flags.c_contiguous


class _Torch:
    name = "torch"

    @staticmethod
    def _torch():
        return sys.modules["torch"]

    @staticmethod
    def device(x):
        d = x.device
        if d.type == "cpu":
            return "cpu"
        if d.type == "cuda":
            return f"cuda:{d.index if d.index is not None else 0}"
        return d.type  # meta, mps, xla...: refused by check_device

    @staticmethod
    def dtype(x):
        return str(x.dtype).rsplit(".", 1)[-1]

    @classmethod
    def astype(cls, x, dtype):
        return x.to(getattr(cls._torch(), dtype))

    @staticmethod
    def contiguous(x):
        return x.contiguous()

    @classmethod
    def empty(cls, shape, dtype, device):
        torch = cls._torch()
        return torch.empty(tuple(shape), dtype=getattr(torch, dtype), device=device)

    @classmethod
    def zeros(cls, shape, dtype, device):
        torch = cls._torch()
        return torch.zeros(tuple(shape), dtype=getattr(torch, dtype), device=device)

    @classmethod
    def full(cls, shape, value, dtype, device):
        torch = cls._torch()
        return torch.full(tuple(shape), value, dtype=getattr(torch, dtype), device=device)

    @classmethod
    def unique_inverse(cls, x):
        return cls._torch().unique(x.detach(), return_inverse=True)[1].reshape(-1).to(cls._torch().int64)

    @staticmethod
    def host(x):
        return x.detach().numpy()

    @staticmethod
    def copy(x):
        return x.detach().clone()

    @staticmethod
    def broadcast_to(x, shape):
        return x.broadcast_to(tuple(shape))

    @classmethod
    def nonzero_u8(cls, x):
        torch = cls._torch()
        if x.dtype == torch.uint8:
            return x
        return (x if x.dtype == torch.bool else x != 0).view(torch.uint8)

    @staticmethod
    def is_contiguous(x):
        return x.is_contiguous()

    @classmethod
    def ptr(cls, x):
        return x.data_ptr()

    @classmethod
    def stream(cls, device):
        torch = cls._torch()
        return torch.cuda.current_stream(torch.device(device)).cuda_stream


class _Cupy:
    name = "cupy"

    @staticmethod
    def _cupy():
        return sys.modules["cupy"]

    @staticmethod
    def device(x):
        return f"cuda:{x.device.id}"

    @staticmethod
    def dtype(x):
        return _np_dtype_name(x.dtype)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype, copy=False)

    @classmethod
    def contiguous(cls, x):
        return cls._cupy().ascontiguousarray(x)

    @classmethod
    def empty(cls, shape, dtype, device):
        cp = cls._cupy()
        with cp.cuda.Device(int(device.split(":")[1])):
            return cp.empty(tuple(shape), dtype=dtype)

    @classmethod
    def zeros(cls, shape, dtype, device):
        cp = cls._cupy()
        with cp.cuda.Device(int(device.split(":")[1])):
            return cp.zeros(tuple(shape), dtype=dtype)

    @classmethod
    def full(cls, shape, value, dtype, device):
        cp = cls._cupy()
        with cp.cuda.Device(int(device.split(":")[1])):
            return cp.full(tuple(shape), value, dtype=dtype)

    @classmethod
    def unique_inverse(cls, x):
        cp = cls._cupy()
        with cp.cuda.Device(x.device.id):
            return cp.unique(x, return_inverse=True)[1].reshape(-1).astype("int64")

    @staticmethod
    def host(x):
        raise AssertionError("cupy arrays live on the GPU")

    @staticmethod
    def copy(x):
        return x.copy()

    @classmethod
    def broadcast_to(cls, x, shape):
        return cls._cupy().broadcast_to(x, tuple(shape))

    @staticmethod
    def nonzero_u8(x):
        if x.dtype.name == "uint8":
            return x
        return (x if x.dtype.name == "bool" else x != 0).view("uint8")

    @staticmethod
    def is_contiguous(x):
        return x.flags.c_contiguous

    @staticmethod
    def ptr(x):
        return x.data.ptr

    @classmethod
    def stream(cls, device):
        cp = cls._cupy()
        with cp.cuda.Device(int(device.split(":")[1])):
            return cp.cuda.get_current_stream().ptr


def _is_torch(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_cupy(x) -> bool:
    cp = sys.modules.get("cupy")
    return cp is not None and isinstance(x, cp.ndarray)


def _need_cupy(name: str, what: str):
    try:
        import cupy  # noqa: F401  (only for GPU inputs that are neither torch nor cupy)
    except ImportError as e:
        raise TypeError(f"{name}: a {what} GPU array needs cupy to be read; install fastiou[cuda13]") from e
    return sys.modules["cupy"]


class Arg:
    """One array argument in its own library: ``lib`` adapts it, ``x`` is the native array.

    Shape, dtype and device are read once, here: the per-call overhead matters for the many
    small calls a training loop makes.
    """

    __slots__ = ("name", "lib", "x", "shape", "dtype", "device")

    def __init__(self, name: str, lib, x):
        self.name, self.lib, self.x = name, lib, x
        self.shape = tuple(x.shape)
        self.dtype = lib.dtype(x)
        self.device = lib.device(x)

    def astype(self, dtype: str) -> "Arg":
        return self if self.dtype == dtype else Arg(self.name, self.lib, self.lib.astype(self.x, dtype))

    def contiguous(self) -> "Arg":
        return self if self.lib.is_contiguous(self.x) else Arg(self.name, self.lib, self.lib.contiguous(self.x))

    def reshape(self, shape) -> "Arg":
        shape = tuple(shape)
        return self if shape == self.shape else Arg(self.name, self.lib, self.x.reshape(shape))

    def broadcast_to(self, shape) -> "Arg":
        shape = tuple(shape)
        return self if shape == self.shape else Arg(self.name, self.lib, self.lib.broadcast_to(self.x, shape))


def as_arg(name: str, x) -> Arg:
    """Wraps ``x`` for the kernels; raises TypeError for what is not an array of numbers."""
    if isinstance(x, np.ndarray):
        if not x.dtype.isnative:  # byte-swapped: the kernels read native numbers only
            x = x.astype(x.dtype.newbyteorder("="))
        return Arg(name, _Numpy, x)
    if _is_torch(x):
        layout = x.layout
        if str(layout) != "torch.strided":  # sparse COO/CSR, mkldnn: no strides to read
            raise TypeError(f"{name}: expected a dense (strided) torch tensor, got layout {layout}; "
                            f"convert it with .to_dense()")
        return Arg(name, _Torch, x)
    if _is_cupy(x):
        return Arg(name, _Cupy, x)
    if x is None or isinstance(x, (str, bytes, dict, set, int, float, complex)):
        raise TypeError(f"{name}: expected an array (numpy, torch, cupy, or a list of numbers), "
                        f"got {type(x).__name__}")
    if hasattr(x, "__cuda_array_interface__"):
        return Arg(name, _Cupy, _need_cupy(name, type(x).__name__).asarray(x))
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        dev_type = int(x.__dlpack_device__()[0])
        if dev_type == 1:  # kDLCPU
            return Arg(name, _Numpy, np.from_dlpack(x))
        if dev_type == 2:  # kDLCUDA
            return Arg(name, _Cupy, _need_cupy(name, type(x).__name__).from_dlpack(x))
        raise TypeError(f"{name}: DLPack device type {dev_type} is not supported (CPU and CUDA are)")
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{name}: cannot read {type(x).__name__} as an array of numbers: {e}") from e
    if a.dtype == object or a.dtype.kind in "USV":
        raise TypeError(f"{name}: expected numbers, got {type(x).__name__} of {a.dtype}")
    return Arg(name, _Numpy, a)


def _to_torch(x, torch, outs):
    """A numpy result as a torch tensor (the ``out=`` tensor itself where x is its view)."""
    if isinstance(x, np.ndarray):
        for t, view in outs:
            if x is view:
                return t
        if not x.flags.writeable or any(st < 0 for st in x.strides):
            x = x.copy()
        return torch.from_numpy(x)
    if isinstance(x, tuple):
        items = [_to_torch(v, torch, outs) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    if isinstance(x, list):
        return [_to_torch(v, torch, outs) for v in x]
    return x


def _numpy_view(t, torch):
    if not t.is_cpu or t.dtype is torch.bfloat16 or t.layout is not torch.strided:
        raise TypeError("not viewable by numpy")
    return t.numpy() if not t.requires_grad else t.detach().numpy()


def via_numpy(fn):
    """Runs ``fn`` on numpy views of torch CPU tensors and gives its results back as tensors.

    The per-call fast path for torch on the host: numpy's array calls cost a fraction of
    torch's (allocation, casts, slicing), and the kernels read the same memory either way.
    Anything that numpy cannot view (bfloat16, GPU, sparse, meta, conjugated tensors...) takes
    ``fn``'s own path. The result is torch when the first array argument is a tensor.
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        torch = sys.modules.get("torch")
        if torch is None or not args:
            return fn(*args, **kwargs)
        tensor = torch.Tensor
        outs = []
        try:
            new = [_numpy_view(a, torch) if isinstance(a, tensor) else a for a in args]
            kw = kwargs
            for k, a in kwargs.items():
                if isinstance(a, tensor):
                    view = _numpy_view(a, torch)
                    outs.append((a, view))
                    kw = dict(kw, **{k: view})
        except (RuntimeError, TypeError):  # a tensor numpy cannot view: the general path
            return fn(*args, **kwargs)
        res = fn(*new, **kw)
        return _to_torch(res, torch, outs) if isinstance(args[0], tensor) else res

    return wrapper


def check_device(args: list[Arg]) -> str:
    """The common device of ``args`` ("cpu" or "cuda:N"); ValueError naming both otherwise."""
    first = args[0]
    dev = first.device
    if dev != "cpu" and not dev.startswith("cuda:"):
        raise ValueError(f"{first.name}: arrays on device '{dev}' are not supported (cpu and cuda are)")
    for a in args[1:]:
        if a.device != dev:
            raise ValueError(f"{first.name} is on {dev} but {a.name} is on {a.device}: fastiou does "
                             f"not copy between devices; move them to one device first")
    return dev


def check_numeric(arg: Arg) -> str:
    """The dtype name of ``arg``; InputError when it is not a real number type."""
    dt = arg.dtype
    if dt not in FLOAT_DTYPES and dt not in INT_DTYPES:
        raise InputError(f"{arg.name}: expected a real number dtype (float16/bfloat16/float32/float64 "
                         f"or integer), got {dt}")
    return dt


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
