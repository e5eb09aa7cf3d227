"""Anchors and IoU matching: three frameworks' anchor generators, a fused matcher, anchor fit.

* ``AnchorGenerator``: anchors exactly as torchvision (``convention="torchvision"``, bit for bit:
  its rounded cell anchors, its strides ``image // grid``, centres at ``x * stride``, order level,
  location, cell anchor, dtype and device of the feature maps), detectron2
  (``DefaultAnchorGenerator``: unrounded, size-major cell anchors, centres at
  ``(x + offset) * stride``) or mmdet (``AnchorGenerator``: ratio-major with ``scale_major``,
  ``center_offset`` inside the cell anchors; ``AnchorGenerator.from_mmdet`` takes mmdet's own
  arguments) build them. Every level in one kernel pass.
* ``box_iou_max`` / ``match_boxes``: each row's best IoU and column, and torchvision's
  ``Matcher`` on ``box_iou``, without the N x M matrix (memory O(N + M)).
* ``anchor_fit`` / ``suggest_anchors``: how well anchors cover a set of boxes (IoU or YOLOv5's
  wh-ratio metric), and k-means sizes and ratios that cover them better.

The IoU everywhere is ``box_iou``'s, bit for bit (csrc/include/fastiou/anchor_math.h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _dispatch
from ._arrays import Arg, as_arg, check_device, check_numeric, fmt_shape
from ._errors import InputError
from ._args import compute_dtypes as _dtypes, finish as _finish

__all__ = ["AnchorGenerator", "box_iou_max", "match_boxes", "anchor_fit", "AnchorFit",
           "suggest_anchors", "AnchorSuggestion"]

CONVENTIONS = ("torchvision", "detectron2", "mmdet")
_HALF = ("float16", "bfloat16")


# ----------------------------------------------------------------------------- parameters

def _positive_list(values, name: str) -> tuple:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected numbers, got {type(v).__name__} ({v!r})")
        if not (math.isfinite(float(v)) and float(v) > 0):
            raise ValueError(f"{name}: every value must be a finite number > 0, got {v!r}")
        out.append(v)
    if not out:
        raise ValueError(f"{name}: a level has no values (empty level)")
    return tuple(out)


def _nested(x) -> bool:
    return len(x) > 0 and isinstance(x[0], (list, tuple, np.ndarray))


def _levels(sizes, aspect_ratios, convention: str, nlev_hint: int | None):
    """(sizes per level, ratios per level) by the convention's broadcasting rule."""
    if not isinstance(sizes, (list, tuple, np.ndarray)) or len(sizes) == 0:
        raise ValueError(f"sizes: expected a non-empty sequence (one entry per level), got {sizes!r}")
    if not isinstance(aspect_ratios, (list, tuple, np.ndarray)) or len(aspect_ratios) == 0:
        raise ValueError(f"aspect_ratios: expected a non-empty sequence, got {aspect_ratios!r}")
    if _nested(sizes):
        lev_sizes = [_positive_list(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    elif convention == "torchvision" or nlev_hint is None:
        # torchvision: a flat list is one size per level.
        lev_sizes = [(s,) for s in _positive_list(sizes, "sizes")]
    else:
        # detectron2 _broadcast_params (mmdet shares its scales the same way): every size at every level.
        lev_sizes = [_positive_list(sizes, "sizes")] * nlev_hint
    if _nested(aspect_ratios):
        lev_ratios = [_positive_list(r, f"aspect_ratios[{i}]") for i, r in enumerate(aspect_ratios)]
        if len(lev_ratios) == 1 and len(lev_sizes) > 1 and convention != "torchvision":
            lev_ratios = lev_ratios * len(lev_sizes)
    else:
        lev_ratios = [_positive_list(aspect_ratios, "aspect_ratios")] * len(lev_sizes)
    if len(lev_ratios) != len(lev_sizes):
        raise ValueError(f"aspect_ratios: {len(lev_ratios)} levels, but sizes has {len(lev_sizes)} "
                         f"levels: give one entry per level (or one flat list for all levels)")
    if nlev_hint is not None and len(lev_sizes) != nlev_hint:
        raise ValueError(f"strides: {nlev_hint} levels, but sizes has {len(lev_sizes)} levels")
    return lev_sizes, lev_ratios


def _stride_pair(s, name: str) -> tuple[float, float]:
    if isinstance(s, (list, tuple)):
        if len(s) != 2:
            raise ValueError(f"{name}: expected a number or (stride_h, stride_w), got {s!r}")
        h, w = s
    else:
        h = w = s
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(float(v)) and float(v) > 0):
            raise ValueError(f"{name}: expected a finite stride > 0, got {s!r}")
    return float(h), float(w)


# Cell anchors, computed exactly as each framework computes them (float32 where it uses float32).
def _cells_torchvision(sizes, ratios) -> np.ndarray:
    scales = np.asarray(sizes, np.float32)
    ar = np.asarray(ratios, np.float32)
    h_ratios = np.sqrt(ar)
    w_ratios = np.float32(1) / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    base = np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2)
    return np.round(base)  # numpy rounds half to even, as torch.round


def _cells_detectron2(sizes, ratios) -> np.ndarray:
    rows = []
    for size in sizes:  # size-major, in Python floats, stored as float32
        area = float(size) ** 2.0
        for ar in ratios:
            w = math.sqrt(area / float(ar))
            h = float(ar) * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return np.asarray(rows, np.float32)


def _cells_mmdet(base_size, scales, ratios, center, scale_major: bool) -> np.ndarray:
    w = h = np.float32(base_size)
    xc, yc = (np.float32(center[0]), np.float32(center[1]))
    scales = np.asarray(scales, np.float32)
    r = np.asarray(ratios, np.float32)
    h_ratios = np.sqrt(r)
    w_ratios = np.float32(1) / h_ratios
    if scale_major:
        ws = (w * w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h * h_ratios[:, None] * scales[None, :]).reshape(-1)
    else:
        ws = (w * scales[:, None] * w_ratios[None, :]).reshape(-1)
        hs = (h * scales[:, None] * h_ratios[None, :]).reshape(-1)
    half = np.float32(0.5)
    return np.stack([xc - half * ws, yc - half * hs, xc + half * ws, yc + half * hs], axis=-1)


def _feature_hw(f, i: int) -> tuple[int, int]:
    shape = getattr(f, "shape", f)
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"feature_shapes[{i}]: expected (H, W) or a feature map array, got {f!r}") from None
    if len(dims) < 2:
        raise ValueError(f"feature_shapes[{i}]: expected (H, W) or an array (..., H, W), got {dims}")
    h, w = dims[-2:]
    if h <= 0 or w <= 0:
        raise ValueError(f"feature_shapes[{i}]: an empty feature map {(h, w)}")
    return h, w


class AnchorGenerator:
    """Anchors of a feature pyramid, as torchvision, detectron2 or mmdet generate them.

    Args:
        sizes: one sequence of sizes per level (or a flat sequence: torchvision, one size per
            level; detectron2 / mmdet, every size at every level of ``strides``).
        aspect_ratios: height / width ratios, one sequence per level or one for all levels.
        convention: ``"torchvision"`` (default), ``"detectron2"`` or ``"mmdet"``.
        offset: where the anchors of a cell are centred. torchvision: 0 (only 0 is
            torchvision's); detectron2: ``offset`` of DefaultAnchorGenerator (default 0.5,
            its constructor's; configs built by ``from_config`` use 0.0), centres at
            ``(x + offset) * stride``; mmdet: ``center_offset`` (default 0), the cell anchors
            centred at ``center_offset * base_size`` with base size ``min(stride)``.
        strides: per level, ``s`` or ``(stride_h, stride_w)``. torchvision never takes them
            (it divides the image size by the grid size); detectron2 and mmdet need them when
            called with only feature shapes (otherwise they are inferred as torchvision does).

    Raises:
        ValueError: empty levels, sizes or ratios that are not finite and > 0, level counts
            that disagree, an unknown convention, an offset outside [0, 1).
    """

    def __init__(self, sizes=((32,), (64,), (128,), (256,), (512,)),
                 aspect_ratios=((0.5, 1.0, 2.0),) * 5, convention: str = "torchvision",
                 offset: float | None = None, strides=None):
        if convention not in CONVENTIONS:
            raise ValueError(f"convention: expected one of {', '.join(CONVENTIONS)}, got {convention!r}")
        self.convention = convention
        if strides is not None:
            if convention == "torchvision":
                raise ValueError("strides: torchvision's AnchorGenerator infers strides from the image "
                                 "size; use convention='detectron2' or 'mmdet' to give them")
            if not isinstance(strides, (list, tuple)) or not strides:
                raise ValueError(f"strides: expected one stride per level, got {strides!r}")
            self.strides = [_stride_pair(s, f"strides[{i}]") for i, s in enumerate(strides)]
        else:
            self.strides = None
        default = {"torchvision": 0.0, "detectron2": 0.5, "mmdet": 0.0}[convention]
        off = default if offset is None else offset
        if isinstance(off, bool) or not isinstance(off, (int, float)) or not (0.0 <= float(off) < 1.0):
            raise ValueError(f"offset: expected a number in [0, 1), got {offset!r}")
        self.offset = float(off)
        self.sizes, self.aspect_ratios = _levels(sizes, aspect_ratios, convention,
                                                 None if self.strides is None else len(self.strides))
        if convention == "torchvision":
            cells = [_cells_torchvision(s, r) for s, r in zip(self.sizes, self.aspect_ratios)]
            self._grid_offset = self.offset
        elif convention == "detectron2":
            cells = [_cells_detectron2(s, r) for s, r in zip(self.sizes, self.aspect_ratios)]
            self._grid_offset = self.offset
        else:
            if self.offset != 0 and self.strides is None:
                raise ValueError("offset: mmdet's center_offset is relative to the base size min(stride); "
                                 "give strides")
            cells = []
            for i, (s, r) in enumerate(zip(self.sizes, self.aspect_ratios)):
                base = min(self.strides[i]) if self.strides is not None else 0.0
                c = self.offset * base
                # base size 1 and the sizes as scales: ratio-major, as mmdet's scale_major=True
                cells.append(_cells_mmdet(1.0, s, r, (c, c), True))
            self._grid_offset = 0.0
        self._set_cells(cells)

    def _set_cells(self, cells):
        self._cells = [np.ascontiguousarray(c, np.float32) for c in cells]
        self._cells_all = np.concatenate(self._cells)
        self._cell_cache: dict = {}

    @classmethod
    def from_mmdet(cls, strides, ratios, scales=None, base_sizes=None, scale_major: bool = True,
                   octave_base_scale=None, scales_per_octave=None, center_offset: float = 0.0):
        """mmdet's ``AnchorGenerator(strides, ratios, scales, base_sizes, scale_major,
        octave_base_scale, scales_per_octave, center_offset)``, bit for bit (strides as mmdet
        gives them: ``s`` or ``(stride_w, stride_h)``)."""
        if not isinstance(strides, (list, tuple)) or not strides:
            raise ValueError(f"strides: expected one stride per level, got {strides!r}")
        pairs = []
        for i, s in enumerate(strides):
            h, w = _stride_pair(s, f"strides[{i}]")
            pairs.append((w, h) if isinstance(s, (list, tuple)) else (h, w))  # mmdet: (w, h)
        if (scales is None) == (octave_base_scale is None or scales_per_octave is None):
            raise ValueError("scales: give either scales or octave_base_scale with scales_per_octave")
        if scales is None:
            scales = [float(2 ** (i / scales_per_octave)) * octave_base_scale
                      for i in range(int(scales_per_octave))]
        scales = _positive_list(scales, "scales")
        ratios = _positive_list(ratios, "ratios")
        if base_sizes is None:
            base_sizes = [min(p) for p in pairs]
        if len(base_sizes) != len(pairs):
            raise ValueError(f"base_sizes: {len(base_sizes)} levels, but strides has {len(pairs)}")
        _positive_list(base_sizes, "base_sizes")
        if not (0.0 <= float(center_offset) <= 1.0):
            raise ValueError(f"center_offset: expected a number in [0, 1], got {center_offset!r}")
        self = cls.__new__(cls)
        self.convention = "mmdet"
        self.strides = pairs
        self.offset = float(center_offset)
        self._grid_offset = 0.0
        self.sizes = [tuple(float(b) * float(s) for s in scales) for b in base_sizes]
        self.aspect_ratios = [ratios] * len(pairs)
        self._set_cells([_cells_mmdet(b, scales, ratios, (center_offset * b, center_offset * b), scale_major)
                         for b in base_sizes])
        return self

    # -------------------------------------------------------------- torchvision's interface
    def num_anchors_per_location(self) -> list[int]:
        return [len(c) for c in self._cells]

    @property
    def cell_anchors(self) -> list[np.ndarray]:
        """Per level, the ``(A, 4)`` float32 anchors centred on the cell's origin."""
        return [c.copy() for c in self._cells]

    def _level_strides(self, image_size, grids) -> list[tuple[float, float]]:
        if image_size is None or self.convention != "torchvision" and self.strides is not None:
            if self.strides is None:
                raise ValueError("image_size: needed to infer the strides (this generator has none)")
            return self.strides
        try:
            ih, iw = (int(v) for v in image_size[-2:])
        except (TypeError, ValueError):
            raise TypeError(f"image_size: expected (H, W), got {image_size!r}") from None
        out = []
        for i, (h, w) in enumerate(grids):
            if h > ih or w > iw:
                raise ValueError(f"feature_shapes[{i}]: grid {(h, w)} is larger than the image {(ih, iw)}")
            out.append((float(ih // h), float(iw // w)))  # torchvision: int64 floor division
        return out

    def _plan(self, grids, strides):
        if len(grids) != len(self._cells):
            raise ValueError(f"feature_shapes: {len(grids)} feature maps, but the generator has "
                             f"{len(self._cells)} levels")
        levels = np.zeros((len(grids), 5), np.int64)
        start = cell0 = 0
        for i, ((h, w), c) in enumerate(zip(grids, self._cells)):
            levels[i] = (h, w, len(c), cell0, start)
            start += h * w * len(c)
            cell0 += len(c)
        return levels, np.asarray(strides, np.float64).reshape(-1, 2), start

    def _out_dtype(self, like: Arg | None, dtype: str | None) -> str:
        if dtype is not None:
            dt = str(dtype).rsplit(".", 1)[-1]
            if dt not in ("float16", "bfloat16", "float32", "float64"):
                raise ValueError(f"dtype: expected a float dtype, got {dtype!r}")
            return dt
        if self.convention == "detectron2" or like is None:
            return "float32"  # detectron2's buffers and shifts are float32 whatever the features
        return like.dtype if like.dtype in ("float16", "bfloat16", "float32", "float64") else "float32"

    def _generate(self, grids, strides, like: Arg | None, dtype: str, out=None):
        levels, st, total = self._plan(grids, strides)
        lib = like.lib if like is not None else as_arg("x", np.empty(0)).lib
        device = like.device if like is not None else "cpu"
        if dtype in _HALF:
            return self._generate_half(levels, st, lib, device, dtype), levels
        if out is None:
            out = lib.empty((total, 4), dtype, device)
        if not total:
            return out, levels
        npl = _np_lib()
        if device == "cpu":  # host backends read every argument through numpy
            cells = self._cell_cache.get(dtype)
            if cells is None:
                cells = self._cell_cache[dtype] = self._cells_all.astype(dtype)
            args = (Arg("cells", npl, cells), Arg("levels", npl, levels), Arg("strides", npl, st))
        else:
            key = (lib.name, device, dtype)
            cells = self._cell_cache.get(key)
            if cells is None:
                cells = self._cell_cache[key] = _to_lib(lib, self._cells_all.astype(dtype), device)
            args = (Arg("cells", lib, cells), Arg("levels", lib, _to_lib(lib, levels, device)),
                    Arg("strides", lib, _to_lib(lib, st, device)))
        _dispatch.call("anchor_grid", device, *args, float(self._grid_offset), Arg("out", lib, out))
        return out, levels

    def _generate_half(self, levels, st, lib, device, dtype):
        """float16 / bfloat16 as the frameworks add them: the centre rounded to the dtype, then
        one addition in the dtype (torch computes it in float32 and rounds once)."""
        if lib.name == "numpy" and dtype == "bfloat16":
            raise TypeError("dtype: numpy has no bfloat16")
        parts = []
        for (h, w, a, c0, _), (sh, sw) in zip(levels, st):
            cx = (self._grid_offset * sw + np.arange(w, dtype=np.float64) * sw)
            cy = (self._grid_offset * sh + np.arange(h, dtype=np.float64) * sh)
            cell = self._cells_all[c0:c0 + a]
            if lib.name == "numpy":
                cxh, cyh, ch = cx.astype(np.float16), cy.astype(np.float16), cell.astype(np.float16)
                yy, xx = np.meshgrid(cyh, cxh, indexing="ij")
                shifts = np.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
                parts.append((shifts + ch[None]).reshape(-1, 4))
            else:
                import torch
                tdt = getattr(torch, dtype)
                cxh = torch.from_numpy(cx).to(device=device, dtype=tdt)
                cyh = torch.from_numpy(cy).to(device=device, dtype=tdt)
                ch = torch.from_numpy(cell).to(device=device, dtype=tdt)
                yy, xx = torch.meshgrid(cyh, cxh, indexing="ij")
                shifts = torch.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
                parts.append((shifts + ch[None]).reshape(-1, 4))
        if lib.name == "numpy":
            return np.concatenate(parts) if parts else np.empty((0, 4), np.float16)
        import torch
        return torch.cat(parts)

    def grid_anchors(self, feature_shapes, strides, *, dtype: str = "float32"):
        """Per level, the ``(H * W * A, 4)`` anchors of a grid with the given strides.

        Args:
            feature_shapes: per level ``(H, W)``.
            strides: per level ``s`` or ``(stride_h, stride_w)``.
        """
        grids = [_feature_hw(f, i) for i, f in enumerate(feature_shapes)]
        if not isinstance(strides, (list, tuple)) or len(strides) != len(grids):
            raise ValueError(f"strides: expected {len(grids)} strides (one per feature map), got {strides!r}")
        st = [_stride_pair(s, f"strides[{i}]") for i, s in enumerate(strides)]
        out, levels = self._generate(grids, st, None, self._out_dtype(None, dtype))
        return _split(out, levels)

    def __call__(self, image_size, feature_shapes, *, dtype: str | None = None):
        """All levels' anchors, concatenated: ``(sum of H * W * A, 4)``.

        Args:
            image_size: the (padded) image size ``(H, W)``; or a torchvision ``ImageList``, in
                which case ``feature_shapes`` are the feature maps and the result is
                torchvision's: a list with one ``(sum, 4)`` tensor per image.
            feature_shapes: per level ``(H, W)`` or the feature map (its last two dimensions;
                the first one's library, device and dtype are the result's, as torchvision's).
            dtype: overrides the result dtype.
        """
        if hasattr(image_size, "tensors") and hasattr(image_size, "image_sizes"):
            return self._torchvision_forward(image_size, feature_shapes)
        if not isinstance(feature_shapes, (list, tuple)) or not feature_shapes:
            raise ValueError(f"feature_shapes: expected one entry per level, got {feature_shapes!r}")
        grids = [_feature_hw(f, i) for i, f in enumerate(feature_shapes)]
        first = feature_shapes[0]
        like = None if isinstance(first, (tuple, list)) else as_arg("feature_shapes[0]", first)
        if like is not None:
            check_device([like])
        out, _ = self._generate(grids, self._level_strides(image_size, grids), like,
                                self._out_dtype(like, dtype))
        return out

    def _torchvision_forward(self, image_list, feature_maps, shared: bool = False):
        """torchvision's forward: one ``(sum, 4)`` tensor per image, each its own memory as
        torchvision's are, every one written by the kernel (as cheap as a copy); with
        ``shared``, one tensor listed once per image."""
        b = len(image_list.image_sizes)
        image_size = tuple(image_list.tensors.shape[-2:])
        feats = list(feature_maps)
        if b <= 1 or shared:
            return [self(image_size, feats)] * b
        if not feats:
            raise ValueError("feature_maps: expected one feature map per level, got none")
        grids = [_feature_hw(f, i) for i, f in enumerate(feats)]
        like = as_arg("feature_maps[0]", feats[0])
        check_device([like])
        strides = self._level_strides(image_size, grids)
        dtype = self._out_dtype(like, None)
        if dtype in _HALF:
            out, _ = self._generate(grids, strides, like, dtype)
            return [out] + [out.clone() for _ in range(b - 1)]
        # Separate allocations of one image each (as torchvision's): one (B, sum, 4) block
        # would exceed malloc's mmap threshold and be page-faulted afresh on every call.
        return [self._generate(grids, strides, like, dtype)[0] for _ in range(b)]

    def torch_module(self, shared: bool = False):
        """This generator as a ``torch.nn.Module`` with torchvision's call ``(image_list,
        feature_maps) -> list[Tensor]``, to replace ``model.rpn.anchor_generator``.

        Args:
            shared: list one tensor for every image of the batch instead of one copy each.
                torchvision's detection models only read the anchors, so this is safe there and
                saves writing the anchors B times; an in-place change to one image's anchors
                would then show in every image's.
        """
        return _torch_module_class()(self, shared)

    def __repr__(self):
        return (f"AnchorGenerator(sizes={self.sizes}, aspect_ratios={self.aspect_ratios}, "
                f"convention={self.convention!r}, offset={self.offset})")


def _to_lib(lib, a: np.ndarray, device: str):
    if lib.name == "torch":
        import torch
        return torch.from_numpy(a).to(device)
    import cupy
    with cupy.cuda.Device(int(device.split(":")[1])):
        return cupy.asarray(a)


def _split(out, levels):
    return [out[int(o):int(o) + int(h * w * a)] for h, w, a, _, o in levels]


_TORCH_MODULE = None


def _torch_module_class():
    global _TORCH_MODULE
    if _TORCH_MODULE is None:
        import torch

        class FastiouAnchorGenerator(torch.nn.Module):
            """torchvision's AnchorGenerator interface over a fastiou AnchorGenerator."""

            def __init__(self, gen: AnchorGenerator, shared: bool = False):
                super().__init__()
                self.gen = gen
                self.shared = shared
                self.sizes = gen.sizes
                self.aspect_ratios = gen.aspect_ratios

            @property
            def cell_anchors(self):
                return [torch.from_numpy(c) for c in self.gen.cell_anchors]

            def num_anchors_per_location(self):
                return self.gen.num_anchors_per_location()

            def forward(self, image_list, feature_maps):
                return self.gen._torchvision_forward(image_list, feature_maps, self.shared)

        _TORCH_MODULE = FastiouAnchorGenerator
    return _TORCH_MODULE


# ----------------------------------------------------------------------------- matching

def _box_array(name: str, x, lead: bool) -> Arg:
    a = as_arg(name, x)
    check_numeric(a)
    ok = (len(a.shape) == 2 or (lead and len(a.shape) == 3)) and a.shape[-1] == 4
    if not ok:
        want = "(N, 4) or (B, N, 4)" if lead else "(N, 4)"
        raise InputError(f"{name}: expected shape {want}, got {fmt_shape(a.shape)}")
    return a


def _is_list_of_arrays(x) -> bool:
    """A list of per-image box arrays (not one (M, 4) box list of numbers)."""
    if not isinstance(x, (list, tuple)):
        return False
    if len(x) == 0:
        return True
    first = x[0]
    if hasattr(first, "shape"):
        return len(first.shape) == 2
    return isinstance(first, (list, tuple)) and len(first) > 0 and isinstance(first[0], (list, tuple))


def _counts_arg(lib, cnt: np.ndarray, device: str) -> Arg:
    if device == "cpu":
        return Arg("counts", _np_lib(), cnt)
    return Arg("counts", lib, _to_lib(lib, cnt, device))


def _pair_inputs(rows, cols, counts, rname: str, cname: str):
    """(rows (1|B, N, 4), cols (B, M, 4), counts (B,), result dtype, batched, list_in, device),
    the arrays as the kernels want them (contiguous, in the compute dtype)."""
    r = _box_array(rname, rows, True)
    list_in = _is_list_of_arrays(cols)
    if list_in:
        if counts is not None:
            raise ValueError(f"counts: only with a padded {cname} (B, M, 4), not with a list")
        if not cols:
            raise ValueError(f"{cname}: an empty list (give one (M, 4) array per image)")
        items = [_box_array(f"{cname}[{i}]", c, False) for i, c in enumerate(cols)]
        device = check_device([r] + items)
        cdt, rdt = _dtypes(r.dtype, *[c.dtype for c in items])
        b, m = len(items), max(c.shape[0] for c in items)
        lib = items[0].lib
        pad = lib.zeros((b, m, 4), cdt, device)
        for i, c in enumerate(items):
            if c.shape[0]:
                pad[i, :c.shape[0]] = c.astype(cdt).x if c.lib is lib else c.lib.host(c.x)
        c3 = Arg(cname, lib, pad)
        cnt = np.asarray([c.shape[0] for c in items], np.int64)
        batched = True
    else:
        c = _box_array(cname, cols, True)
        device = check_device([r, c])
        cdt, rdt = _dtypes(r.dtype, c.dtype)
        batched = len(c.shape) == 3 or len(r.shape) == 3
        c3 = c.reshape((1,) + c.shape) if len(c.shape) == 2 else c
        if len(r.shape) == 3 and len(c.shape) == 2 and r.shape[0] > 1:
            c3 = c3.broadcast_to((r.shape[0],) + c.shape)  # one set of columns for every item
        b, m = c3.shape[0], c3.shape[1]
        if counts is None:
            cnt = np.full(b, m, np.int64)
        else:
            if len(c.shape) != 3:
                raise ValueError(f"counts: only with a padded {cname} of shape (B, M, 4)")
            ca = as_arg("counts", counts)
            host = ca.lib.host(ca.x) if ca.device == "cpu" else _device_to_host(ca)
            cnt = np.asarray(host).astype(np.int64).reshape(-1)
            if cnt.shape != (b,):
                raise InputError(f"counts: expected shape ({b},), got {fmt_shape(cnt.shape)}")
            if cnt.size and (cnt.min() < 0 or cnt.max() > m):
                raise ValueError(f"counts: expected values in 0..{m}, got {cnt.tolist()}")
        c3 = c3.astype(cdt).contiguous()
    if len(r.shape) == 3 and r.shape[0] not in (1, b):
        raise InputError(f"{rname}: {r.shape[0]} items, but {cname} has {b}")
    r3 = (r.reshape((1,) + r.shape) if len(r.shape) == 2 else r).astype(cdt).contiguous()
    return r3, c3, _counts_arg(c3.lib, cnt, device), rdt, batched, list_in, device


def _np_lib():
    return as_arg("x", np.empty(0)).lib


def _device_to_host(a: Arg):
    x = a.x
    return x.detach().cpu().numpy() if a.lib.name == "torch" else x.get()


def box_iou_max(boxes1, boxes2, *, counts=None):
    """Each row's best IoU and its column, without building the N x M IoU matrix.

    Equal to ``box_iou(boxes1, boxes2).max(dim=1)`` (values bit for bit, the first column on
    ties, NaN as torch.max treats it), in O(N + M) memory.

    Args:
        boxes1 (Array[N, 4] or [B, N, 4]): xyxy rows (e.g. anchors), shared by every item when 2-D.
        boxes2 (Array[M, 4], [B, M, 4] or a list of B arrays [M_b, 4]): xyxy columns (e.g. gt).
        counts (Array[B], optional): with a padded ``boxes2`` (B, M, 4), the valid rows of each.

    Returns:
        (values, indices): ``(N,)`` or ``(B, N)``; values in box_iou's result dtype, indices
        int64; a row with no columns gets 0 and -1. Lists give lists of ``(N,)`` arrays.
    """
    r, c, cnt, rdt, batched, list_in, device = _pair_inputs(boxes1, boxes2, counts, "boxes1", "boxes2")
    b, n = c.shape[0], r.shape[1]
    values = r.lib.empty((b, n), r.dtype, device)
    indices = r.lib.empty((b, n), "int64", device)
    if b * n:
        _dispatch.call("box_iou_max", device, r, c, cnt, Arg("values", r.lib, values),
                       Arg("indices", r.lib, indices))
    values = _finish(r, values, rdt)
    if list_in:
        return [values[i] for i in range(b)], [indices[i] for i in range(b)]
    if not batched:
        return values[0], indices[0]
    return values, indices


def match_boxes(anchors, gt, high: float = 0.7, low: float = 0.3,
                allow_low_quality_matches: bool = True, *, counts=None):
    """torchvision's ``Matcher(high, low, allow_low_quality_matches)(box_iou(gt, anchors))``,
    fused: the IoU matrix is never built (memory O(N + M), any N x M).

    Labels: the matched gt index; -1 below ``low``; -2 in ``[low, high)``; thresholds compared
    in the IoU's dtype as torch does. With ``allow_low_quality_matches``, every anchor whose IoU
    with some gt equals that gt's best IoU (ties included) gets back its own best gt (first on
    ties), as torchvision's ``set_low_quality_matches_`` does. An image with no gt gives all -1
    (detectron2's rule; torchvision raises).

    Args:
        anchors (Array[N, 4] or [B, N, 4]): xyxy anchors (2-D: shared by every image).
        gt (Array[M, 4], [B, M, 4] or list of [M_b, 4]): xyxy ground-truth boxes.
        counts (Array[B], optional): valid rows of a padded ``gt``.

    Returns:
        Array[N] int64 (or [B, N]; a list of [N] for a list of gt).
    """
    for v, name in ((high, "high"), (low, "low")):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or math.isnan(v):
            raise TypeError(f"{name}: expected a number, got {v!r}")
    if low > high:
        raise ValueError(f"low: expected low <= high, got low={low} > high={high}")
    r, c, cnt, _, batched, list_in, device = _pair_inputs(anchors, gt, counts, "anchors", "gt")
    b, n = c.shape[0], r.shape[1]
    matches = r.lib.empty((b, n), "int64", device)
    if b * n:
        _dispatch.call("match_boxes", device, r, c, cnt, float(high), float(low),
                       bool(allow_low_quality_matches), Arg("matches", r.lib, matches))
    if list_in:
        return [matches[i] for i in range(b)]
    return matches if batched else matches[0]


# ----------------------------------------------------------------------------- anchor fit

#: COCO's area buckets (pycocotools COCOeval areaRng): small < 32², medium < 96², large.
SIZE_BUCKETS = (("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2), ("large", 96.0 ** 2, math.inf))


@dataclass
class AnchorFit:
    """How well a set of anchors covers a set of ground-truth boxes (see ``anchor_fit``)."""

    best_iou: np.ndarray                  # (M,) float64: each gt's best IoU over the anchors
    best_anchor: np.ndarray               # (M,) int64: that anchor (the first on ties)
    recall: dict                          # threshold -> fraction of gt with best IoU >= threshold
    anchors_per_gt: dict                  # threshold -> mean number of anchors with IoU >= threshold
    recall_per_level: list | None         # per level: threshold -> recall over that level's anchors
    size_buckets: dict                    # "small"/"medium"/"large" -> {"count", "recall": {t: r}}
    wh_ratio: dict | None = field(default=None)  # YOLOv5 autoanchor: bpr, aat, anchor_t, best (M,)

    def as_dict(self) -> dict:
        """Plain numbers (JSON-ready); arrays as lists."""
        d = {"num_gt": int(self.best_iou.size), "recall": self.recall, "anchors_per_gt": self.anchors_per_gt,
             "recall_per_level": self.recall_per_level, "size_buckets": self.size_buckets,
             "mean_best_iou": float(self.best_iou.mean()) if self.best_iou.size else 0.0}
        if self.wh_ratio is not None:
            d["wh_ratio"] = {k: v for k, v in self.wh_ratio.items() if k != "best"}
        return d


def _host_boxes(x, name: str) -> np.ndarray:
    a = as_arg(name, x)
    check_numeric(a)
    if len(a.shape) != 2 or a.shape[1] != 4:
        raise InputError(f"{name}: expected shape (N, 4), got {fmt_shape(a.shape)}")
    host = a.lib.host(a.x) if a.device == "cpu" else _device_to_host(a)
    return np.asarray(host, np.float64) if a.dtype in ("float64",) or a.dtype.startswith(("int", "uint")) \
        else np.asarray(host, np.float32)


def _gt_host(gt_boxes) -> np.ndarray:
    if _is_list_of_arrays(gt_boxes):
        parts = [_host_boxes(g, f"gt_boxes[{i}]") for i, g in enumerate(gt_boxes)]
        return np.concatenate(parts) if parts else np.zeros((0, 4), np.float32)
    return _host_boxes(gt_boxes, "gt_boxes")


def _thresholds(thresholds) -> tuple[float, ...]:
    ts = (thresholds,) if isinstance(thresholds, (int, float)) else tuple(thresholds)
    for t in ts:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not (0.0 <= float(t) <= 1.0):
            raise ValueError(f"thresholds: expected numbers in [0, 1], got {thresholds!r}")
    if not ts:
        raise ValueError("thresholds: expected at least one threshold")
    return tuple(float(t) for t in ts)


def _wh(boxes: np.ndarray) -> np.ndarray:
    return np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)


def yolo_wh_metric(gt_wh, anchor_wh, anchor_t: float = 4.0) -> dict:
    """YOLOv5 autoanchor's ``metric``: ratio metric ``x = min(r, 1/r).min(over w, h)`` with
    ``r = gt_wh / anchor_wh`` (float32, as YOLOv5), best possible recall ``bpr = mean(best > 1/t)``
    and anchors above threshold ``aat = mean(count(x > 1/t))``."""
    wh = np.asarray(gt_wh, np.float32)
    k = np.asarray(anchor_wh, np.float32)
    if not (anchor_t > 1.0 and math.isfinite(anchor_t)):
        raise ValueError(f"anchor_t: expected a finite number > 1, got {anchor_t!r}")
    if wh.size == 0:
        return {"anchor_t": anchor_t, "bpr": 0.0, "aat": 0.0, "best": np.zeros(0, np.float32)}
    with np.errstate(divide="ignore", invalid="ignore"):
        r = wh[:, None] / k[None]
        x = np.minimum(r, np.float32(1) / r).min(2)
    best = x.max(1)
    thr = np.float32(1) / np.float32(anchor_t)
    return {"anchor_t": float(anchor_t), "bpr": float((best > thr).mean()),
            "aat": float((x > thr).sum(1).mean()), "best": best}


def anchor_fit(anchors, gt_boxes, thresholds=(0.5, 0.7), metric: str = "iou", *,
               level_counts=None, anchor_t: float = 4.0) -> AnchorFit:
    """How well anchors cover ground-truth boxes: the best recall an IoU matcher can reach.

    Args:
        anchors: ``(N, 4)`` xyxy anchors (e.g. ``AnchorGenerator(...)(image_size, shapes)``),
            or a list of per-level ``(N_l, 4)`` arrays (``grid_anchors``'s result).
        gt_boxes: ``(M, 4)`` xyxy boxes, or a list of per-image arrays (all against the same anchors).
        thresholds: IoU thresholds for recall and anchors per gt.
        metric: ``"iou"``, or ``"wh_ratio"`` to add YOLOv5 autoanchor's figures (on the anchor
            shapes and the gt widths and heights, ``anchor_t``).
        level_counts: anchors per level when ``anchors`` is one array (for per-level recall).

    Returns:
        AnchorFit: per-gt best IoU and anchor; recall (fraction of gt whose best IoU >= t);
        mean anchors per gt with IoU >= t; recall per level; recall per COCO size bucket
        (area of the gt box); with ``metric="wh_ratio"``, ``wh_ratio`` = {bpr, aat, anchor_t, best}.
    """
    if metric not in ("iou", "wh_ratio"):
        raise ValueError(f"metric: expected 'iou' or 'wh_ratio', got {metric!r}")
    ts = _thresholds(thresholds)
    if _is_list_of_arrays(anchors):
        levels = [_host_boxes(a, f"anchors[{i}]") for i, a in enumerate(anchors)]
        if not levels:
            raise ValueError("anchors: an empty list of levels")
        level_counts = [len(a) for a in levels]
        anc = np.concatenate(levels)
    else:
        anc = _host_boxes(anchors, "anchors")
        if level_counts is not None:
            level_counts = [int(c) for c in level_counts]
            if sum(level_counts) != len(anc) or min(level_counts) < 0:
                raise ValueError(f"level_counts: expected non-negative counts summing to {len(anc)}, "
                                 f"got {level_counts}")
    if len(anc) == 0:
        raise ValueError("anchors: no anchors")
    gt = _gt_host(gt_boxes)
    cdt = np.float64 if (anc.dtype == np.float64 or gt.dtype == np.float64) else np.float32
    anc, gt = anc.astype(cdt), gt.astype(cdt)
    m, n = len(gt), len(anc)
    starts = np.cumsum([0] + list(level_counts))[:-1] if level_counts else None
    best = np.zeros(m, np.float64)
    arg = np.full(m, -1, np.int64)
    above = np.zeros((len(ts), m), np.int64)
    per_level = np.zeros((len(level_counts), m)) if level_counts else None
    from .boxes import box_iou
    chunk = max(1, (64 << 20) // (4 * n))  # at most ~64 MB of IoU rows at a time
    for c0 in range(0, m, chunk):
        iou = box_iou(gt[c0:c0 + chunk], anc)
        arg[c0:c0 + chunk] = np.argmax(iou, axis=1)  # first maximum, as torch.max / box_iou_max
        best[c0:c0 + chunk] = iou[np.arange(len(iou)), arg[c0:c0 + chunk]]
        for k, t in enumerate(ts):
            above[k, c0:c0 + chunk] = (iou >= cdt(t)).sum(1)
        if per_level is not None:
            for lv, (s, cnt) in enumerate(zip(starts, level_counts)):
                per_level[lv, c0:c0 + chunk] = iou[:, s:s + cnt].max(1) if cnt else 0.0
    tv = {t: cdt(t) for t in ts}
    recall = {t: float((best >= tv[t]).mean()) if m else 0.0 for t in ts}
    apg = {t: float(above[k].mean()) if m else 0.0 for k, t in enumerate(ts)}
    rpl = None if per_level is None else [
        {t: float((per_level[lv] >= tv[t]).mean()) if m else 0.0 for t in ts} for lv in range(len(level_counts))]
    area = (gt[:, 2] - gt[:, 0]).astype(np.float64) * (gt[:, 3] - gt[:, 1])
    buckets = {}
    for name, lo, hi in SIZE_BUCKETS:
        sel = (area >= lo) & (area < hi)
        cnt = int(sel.sum())
        buckets[name] = {"count": cnt,
                         "recall": {t: float((best[sel] >= tv[t]).mean()) if cnt else None for t in ts}}
    wh = None
    if metric == "wh_ratio":
        shapes = np.unique(_wh(anc.astype(np.float32)), axis=0)
        wh = yolo_wh_metric(_wh(gt.astype(np.float32)), shapes, anchor_t)
    return AnchorFit(best, arg, recall, apg, rpl, buckets, wh)


# ----------------------------------------------------------------------------- suggestions

@dataclass
class AnchorSuggestion:
    """Anchor sizes and ratios from k-means on box shapes (see ``suggest_anchors``)."""

    shapes: np.ndarray            # (K, 2) float64 anchor widths and heights, by increasing area
    sizes: tuple                  # per level, a tuple of sizes (sqrt(w * h))
    aspect_ratios: tuple          # per level, a tuple of h / w ratios
    recall_before: dict | None    # threshold -> shape recall of the given anchors (None: none given)
    recall_after: dict            # threshold -> shape recall of the suggested anchors
    mean_iou_before: float | None
    mean_iou_after: float

    def as_dict(self) -> dict:
        return {"shapes": self.shapes.tolist(), "sizes": self.sizes, "aspect_ratios": self.aspect_ratios,
                "recall_before": self.recall_before, "recall_after": self.recall_after,
                "mean_iou_before": self.mean_iou_before, "mean_iou_after": self.mean_iou_after}


def _shape_iou(wh: np.ndarray, k: np.ndarray) -> np.ndarray:
    """IoU of boxes and anchors centred on one point: (M, K)."""
    inter = np.minimum(wh[:, None, 0], k[None, :, 0]) * np.minimum(wh[:, None, 1], k[None, :, 1])
    return inter / (wh[:, None, 0] * wh[:, None, 1] + k[None, :, 0] * k[None, :, 1] - inter)


def _kmeans_iou(wh: np.ndarray, k: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    """k-means on (w, h) with 1 - IoU as the distance; k-means++ seeding; median updates."""
    centers = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        d = 1.0 - _shape_iou(wh, np.asarray(centers)).max(1)
        p = d ** 2
        total = p.sum()
        centers.append(wh[rng.choice(len(wh), p=p / total)] if total > 0 else wh[rng.integers(len(wh))])
    c = np.asarray(centers, np.float64)
    assign = None
    for _ in range(iters):
        new = _shape_iou(wh, c).argmax(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                c[j] = np.median(members, axis=0)
    return c[np.argsort(c[:, 0] * c[:, 1], kind="stable")]


def _shape_recall(wh, k, ts):
    best = _shape_iou(wh, k).max(1)
    return {t: float((best >= t).mean()) for t in ts}, float(best.mean())


def _cell_shapes(anchors) -> np.ndarray:
    if isinstance(anchors, AnchorGenerator):
        cells = np.concatenate(anchors.cell_anchors).astype(np.float64)
        return np.unique(_wh(cells), axis=0)
    a = np.asarray(anchors, np.float64)
    if a.ndim == 2 and a.shape[1] == 2:
        return a
    if a.ndim == 2 and a.shape[1] == 4:
        return np.unique(_wh(a), axis=0)
    raise InputError(f"anchors: expected an AnchorGenerator, (K, 2) widths and heights or (N, 4) boxes, "
                     f"got shape {fmt_shape(a.shape)}")


def suggest_anchors(gt_boxes, num_anchors: int = 9, *, num_levels: int | None = None,
                    num_ratios: int = 3, anchors=None, thresholds=(0.5, 0.7), seed: int = 0,
                    iters: int = 300) -> AnchorSuggestion:
    """Anchor shapes that fit ``gt_boxes``: k-means on (w, h) with 1 - IoU as the distance.

    Args:
        gt_boxes: ``(M, 4)`` xyxy boxes or a list of per-image arrays.
        num_anchors: clusters (anchor shapes) in all.
        num_levels: group the shapes for a feature pyramid: sizes per level (by area, as
            evenly as ``num_anchors`` allows) with ``num_ratios`` aspect ratios shared by every
            level (k-means of the shapes' log ratios), the layout torchvision / detectron2 /
            mmdet take. None: one level with every shape's own size and ratio.
        anchors: the current anchors (an AnchorGenerator, (K, 2) shapes or (N, 4) boxes), for
            the recall before.
        thresholds: shape-IoU thresholds of the recalls.
        seed: the k-means seed (same seed, same result).

    Returns:
        AnchorSuggestion. Recall here is shape recall: the fraction of boxes whose best
        IoU with an anchor shape centred on the box reaches the threshold (what k-means
        optimises; ``anchor_fit`` measures the positional recall on a real grid).
    """
    if isinstance(num_anchors, bool) or not isinstance(num_anchors, (int, np.integer)) or num_anchors < 1:
        raise ValueError(f"num_anchors: expected a positive integer, got {num_anchors!r}")
    if num_levels is not None and (not isinstance(num_levels, (int, np.integer)) or not 1 <= num_levels <= num_anchors):
        raise ValueError(f"num_levels: expected an integer in 1..num_anchors, got {num_levels!r}")
    if not isinstance(num_ratios, (int, np.integer)) or num_ratios < 1:
        raise ValueError(f"num_ratios: expected a positive integer, got {num_ratios!r}")
    ts = _thresholds(thresholds)
    gt = _gt_host(gt_boxes).astype(np.float64)
    wh = _wh(gt)
    wh = wh[(wh[:, 0] > 0) & (wh[:, 1] > 0) & np.isfinite(wh).all(1)]
    if len(wh) < num_anchors:
        raise ValueError(f"gt_boxes: {len(wh)} boxes with positive width and height, fewer than "
                         f"num_anchors={num_anchors}")
    rng = np.random.default_rng(seed)
    if num_levels is None:
        shapes = _kmeans_iou(wh, int(num_anchors), rng, iters)
        sizes = (tuple(float(s) for s in np.sqrt(shapes[:, 0] * shapes[:, 1])),)
        ratios = (tuple(float(r) for r in shapes[:, 1] / shapes[:, 0]),)
    else:
        per = max(1, int(num_anchors) // (int(num_levels) * int(num_ratios)))
        logr = np.log(wh[:, 1] / wh[:, 0])
        qs = (np.arange(num_ratios) + 0.5) / num_ratios
        r = np.quantile(logr, qs)
        for _ in range(iters):  # 1-D k-means of the log ratios, from their quantiles
            lab = np.abs(logr[:, None] - r[None]).argmin(1)
            new = np.array([np.median(logr[lab == j]) if (lab == j).any() else r[j] for j in range(num_ratios)])
            if np.allclose(new, r):
                break
            r = new
        shared = tuple(float(x) for x in np.sort(np.exp(r)))
        logs = np.log(np.sqrt(wh[:, 0] * wh[:, 1]))
        nsz = int(num_levels) * per
        s = np.quantile(logs, (np.arange(nsz) + 0.5) / nsz)
        for _ in range(iters):
            lab = np.abs(logs[:, None] - s[None]).argmin(1)
            new = np.array([np.median(logs[lab == j]) if (lab == j).any() else s[j] for j in range(nsz)])
            if np.allclose(new, s):
                break
            s = new
        s = np.sort(np.exp(s))
        sizes = tuple(tuple(float(x) for x in s[lv * per:(lv + 1) * per]) for lv in range(int(num_levels)))
        ratios = (shared,) * int(num_levels)
        shapes = np.asarray([[sz / math.sqrt(ar), sz * math.sqrt(ar)] for lv in sizes for sz in lv for ar in shared])
        shapes = shapes[np.argsort(shapes[:, 0] * shapes[:, 1], kind="stable")]
    after, mean_after = _shape_recall(wh, shapes, ts)
    before = mean_before = None
    if anchors is not None:
        before, mean_before = _shape_recall(wh, _cell_shapes(anchors), ts)
    return AnchorSuggestion(shapes, sizes, ratios, before, after, mean_before, mean_after)
