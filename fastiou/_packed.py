"""Packed binary masks (``PackedMasks``) and the packing of dense masks.

Shared by fastiou/masks.py, nms.py (matrix NMS on masks) and boxes.py (masks_to_boxes of
packed masks). Layout: csrc/include/fastiou/mask_math.h; the rules of the mask ops are in
fastiou/masks.py's module docstring.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _dispatch
from ._args import class_ids
from ._arrays import Arg, as_arg, check_device, check_numeric, fmt_shape
from ._errors import InputError

# torch's uint64 support is partial (no indexing, comparisons, ...): torch bits are int64.
BITS_DTYPE = {"numpy": "uint64", "cupy": "uint64", "torch": "int64"}


def words(w: int) -> int:
    return (int(w) + 63) >> 6


def as_bool(lib, x):
    """A bool view of a uint8 array of 0 / 1 (no copy)."""
    if lib.name == "torch":
        return x.view(lib._torch().bool)
    return x.view("bool")


def where(lib, cond, x):
    """``x`` where ``cond``, else 0, in x's dtype (a new array)."""
    if lib.name == "torch":
        torch = lib._torch()
        return torch.where(cond, x, torch.zeros((), dtype=x.dtype, device=x.device))
    xp = np if lib.name == "numpy" else lib._cupy()
    return xp.where(cond, x, xp.zeros((), dtype=x.dtype))


class PackedMasks:
    """``N`` binary masks of ``H x W`` pixels packed to bits, with their boxes and areas.

    Build one with ``pack_masks(masks)`` (or ``PackedMasks.from_bits``) and pass it to
    ``mask_iou``, ``mask_nms``, ``matrix_nms``, ``resolve_overlaps`` or ``masks_to_boxes``
    in place of the dense masks, to pack once for several calls.

    Attributes:
        bits (Array[N, H, ceil(W / 64)]): pixel (y, x) is bit ``x % 64`` of word ``x // 64`` of
            row y; bits past W are 0. numpy and cupy: uint64; torch: int64 (the same 64 bits;
            torch's uint64 support is partial). In the library and on the device of the masks.
        boxes (Array[N, 4] int32): the tight box (x0, y0, x1, y1) of each mask with an
            *exclusive* maximum (every pixel has x0 <= x < x1); ``(0, 0, 0, 0)`` when empty.
        areas (Array[N] int64): foreground pixels of each mask.
        shape (tuple): ``(N, H, W)``.
    """

    __slots__ = ("bits", "boxes", "areas", "width", "_lib", "device")

    def __init__(self, bits, boxes, areas, width: int):
        """Wraps arrays that are already consistent (as ``pack_masks`` makes them); use
        ``from_bits`` to wrap bits of unknown stats."""
        b = as_arg("bits", bits)
        if len(b.shape) != 3 or int(width) < 0 or b.shape[2] != words(width):
            raise InputError(f"bits: expected shape (N, H, {words(max(int(width), 0))}) for width "
                             f"{int(width)}, got {fmt_shape(b.shape)}")
        self.bits, self.boxes, self.areas, self.width = bits, boxes, areas, int(width)
        self._lib, self.device = b.lib, b.device

    @classmethod
    def from_bits(cls, bits, width: int) -> "PackedMasks":
        """Packed masks from bits alone (layout above); the boxes and areas are computed.

        Args:
            bits (Array[N, H, WW]): uint64 or int64 words, ``WW == ceil(width / 64)``; the bits
                past ``width`` must be 0.
            width (int): W, the masks' width in pixels.

        Raises:
            InputError: wrong rank, dtype, or ``WW`` that does not match ``width``.
        """
        b = as_arg("bits", bits)
        device = check_device([b])
        if b.dtype not in ("uint64", "int64") or len(b.shape) != 3:
            raise InputError(f"bits: expected uint64 or int64 words of shape (N, H, WW), got "
                             f"{b.dtype} {fmt_shape(b.shape)}")
        width = int(width)
        if width < 0 or words(width) != b.shape[2]:
            raise InputError(f"bits: {b.shape[2]} words a row do not hold width {width} "
                             f"(expected {words(width) if width >= 0 else 'width >= 0'})")
        b = b.contiguous()
        n = b.shape[0]
        if n * b.shape[1] * b.shape[2] == 0:
            return cls(b.x, b.lib.zeros((n, 4), "int32", device), b.lib.zeros((n,), "int64", device), width)
        boxes = b.lib.empty((n, 4), "int32", device)
        areas = b.lib.empty((n,), "int64", device)
        _dispatch.call("packed_stats", device, b, Arg("boxes", b.lib, boxes), Arg("areas", b.lib, areas))
        return cls(b.x, boxes, areas, width)

    @property
    def shape(self) -> tuple:
        return (int(self.bits.shape[0]), int(self.bits.shape[1]), self.width)

    @property
    def height(self) -> int:
        return int(self.bits.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes of the bits, boxes and areas."""
        n, h, ww = (int(s) for s in self.bits.shape)
        return 8 * n * h * ww + 16 * n + 8 * n

    def __len__(self) -> int:
        return int(self.bits.shape[0])

    def __repr__(self) -> str:
        n, h, w = self.shape
        return (f"PackedMasks(n={n}, height={h}, width={w}, library={self._lib.name}, "
                f"device={self.device}, nbytes={self.nbytes})")

    def __getitem__(self, index) -> "PackedMasks":
        """The masks selected by a slice, an integer array (or list) or a boolean array of
        length N, as PackedMasks; an integer ``i`` selects the one mask ``i`` (still rank 3)."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            n = len(self)
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} masks")
            i %= n
            index = slice(i, i + 1)
        elif isinstance(index, (list, tuple)):
            index = np.asarray(index)
            if index.dtype == object or index.dtype.kind not in "biu":
                raise TypeError("index: expected a slice, an integer, or an integer or boolean array")
            if index.size == 0:
                index = index.astype(np.int64)
        if isinstance(index, np.ndarray) and self._lib.name == "torch":
            index = self._lib._torch().as_tensor(index, device=self.bits.device)
        elif isinstance(index, np.ndarray) and self._lib.name == "cupy":
            with self._lib._cupy().cuda.Device(self.bits.device.id):
                index = self._lib._cupy().asarray(index)
        bits = self.bits[index]
        if len(bits.shape) != 3:
            raise TypeError("index: expected a slice, an integer, or a 1-D integer or boolean array")
        return PackedMasks(bits, self.boxes[index], self.areas[index], self.width)

    def unpack(self):
        """The masks as ``(N, H, W)`` bool, in the library and on the device of the bits."""
        return unpack_bits(self._lib, self.bits, self.width, self.device)

    # -- what the ops take ---------------------------------------------------------------
    def _args(self, name: str):
        """(bits, boxes, areas) as contiguous Args."""
        return (Arg(name, self._lib, self.bits).contiguous(),
                Arg(name + ".boxes", self._lib, self.boxes).contiguous(),
                Arg(name + ".areas", self._lib, self.areas).contiguous())

    def _boxes_inclusive(self):
        """masks_to_boxes of these masks: float32 xyxy, inclusive max, zeros when empty."""
        n, h, w = self.shape
        if n * h * w == 0:
            return self._lib.zeros((0, 4), "float32", self.device)
        out = self._lib.astype(self.boxes, "float32")  # a new array (int32 -> float32)
        out[:, 2:] -= 1
        out[self.areas == 0] = 0
        return out


def unpack_bits(lib, bits, width: int, device: str):
    """(N, H, W) bool from bits (N, H, WW)."""
    b = Arg("bits", lib, bits).contiguous()
    out = lib.empty((b.shape[0], b.shape[1], width), "uint8", device)
    if b.shape[0] * b.shape[1] * width:
        _dispatch.call("unpack_masks", device, b, Arg("out", lib, out))
    return as_bool(lib, out)


def dense_masks(x, name: str) -> Arg:
    """A dense (N, H, W) input checked, as uint8 of 0 / non-zero (no copy for bool / uint8)."""
    a = as_arg(name, x)
    check_numeric(a)
    check_device([a])
    if len(a.shape) != 3:
        raise InputError(f"{name}: expected masks of shape (N, H, W) (non-zero is foreground), "
                         f"got {fmt_shape(a.shape)}" + ("; use mask[None] for one mask" if len(a.shape) == 2 else ""))
    return a


# Per thread, the packed-bits temporaries of to_packed (numpy only; see _temporary_bits).
_TEMPORARY = threading.local()
_TEMPORARY_BYTES = (1 << 20, 1 << 25)  # reused from 1 MB up to 32 MB a slot


def _temporary_bits(shape: tuple, slot: int) -> np.ndarray:
    """A numpy bits buffer for a packing that never leaves the call (to_packed): the same
    memory again on the next call of this thread. A freshly allocated buffer of several MB is
    returned to the OS when freed and costs its page faults again on every call (measured:
    mask_iou of 100 x 100 masks at 1024 x 1024 spent 3 ms of 10 in them). Two slots: mask_iou's
    two sides; at most 64 MB kept a thread."""
    count = int(np.prod(shape))
    if not _TEMPORARY_BYTES[0] <= 8 * count <= _TEMPORARY_BYTES[1]:
        return np.empty(shape, np.uint64)
    bufs = getattr(_TEMPORARY, "bufs", None)
    if bufs is None:
        bufs = _TEMPORARY.bufs = [None, None]
    buf = bufs[slot]
    if buf is None or buf.size < count:
        buf = bufs[slot] = np.empty(count, np.uint64)
    return buf[:count].reshape(shape)


def pack_dense(a: Arg, slot: int | None = None) -> PackedMasks:
    """Packs checked dense masks; ``slot`` (0 or 1): into this thread's temporary buffer of
    that slot (numpy), for packed masks that do not leave the call."""
    n, h, w = a.shape
    m = Arg(a.name, a.lib, a.lib.nonzero_u8(a.x)).contiguous()
    device = a.device
    if slot is not None and a.lib.name == "numpy":
        bits = _temporary_bits((n, h, words(w)), slot)
    else:
        bits = a.lib.empty((n, h, words(w)), BITS_DTYPE[a.lib.name], device)
    if n * h * w == 0:
        return PackedMasks(bits, a.lib.zeros((n, 4), "int32", device), a.lib.zeros((n,), "int64", device), w)
    boxes = a.lib.empty((n, 4), "int32", device)
    areas = a.lib.empty((n,), "int64", device)
    if n:
        _dispatch.call("pack_masks", device, m, Arg("bits", a.lib, bits), Arg("boxes", a.lib, boxes),
                       Arg("areas", a.lib, areas))
    return PackedMasks(bits, boxes, areas, w)


def packed_or_dense(x, name: str) -> PackedMasks | Arg:
    """PackedMasks as they are, dense masks checked (not yet packed)."""
    return x if isinstance(x, PackedMasks) else dense_masks(x, name)


def to_packed(x: PackedMasks | Arg, slot: int = 0) -> PackedMasks:
    """PackedMasks as they are; dense masks packed into this thread's temporary buffer
    ``slot``: the result must not outlive the call (nor be used beside another of the same
    slot)."""
    return x if isinstance(x, PackedMasks) else pack_dense(x, slot)


def lib_device(p: PackedMasks | Arg):
    return (p._lib, p.device) if isinstance(p, PackedMasks) else (p.lib, p.device)


def mask_scores(scores, p, name_masks: str, dtype: str) -> Arg:
    lib, device = lib_device(p)
    s = as_arg("scores", scores)
    check_numeric(s)
    check_device([Arg(name_masks, lib, p.bits) if isinstance(p, PackedMasks) else p, s])
    n = p.shape[0]
    if s.shape != (n,):
        raise InputError(f"scores: expected shape ({n},) to match {name_masks} "
                         f"{fmt_shape(p.shape)}, got {fmt_shape(s.shape)}")
    return s.astype(dtype).contiguous()


def matrix_nms_masks(masks, scores, labels, kernel: int, sigma: float):
    """fastiou.nms.matrix_nms on masks (N, H, W) or PackedMasks: float32 in input order."""
    p = packed_or_dense(masks, "masks_or_boxes")
    s = mask_scores(scores, p, "masks_or_boxes", "float32")
    lib, device = lib_device(p)
    n = p.shape[0]
    lab = class_ids(labels, Arg("masks_or_boxes", lib, p.bits if isinstance(p, PackedMasks) else p.x), "labels")
    out = lib.empty((n,), "float32", device)
    if n == 0:
        return out
    q = to_packed(p)
    _dispatch.call("mask_matrix_nms", device, *q._args("masks_or_boxes"), s, lab, kernel, sigma,
                   Arg("out", lib, out))
    return out
