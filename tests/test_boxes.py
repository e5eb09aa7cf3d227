"""The box IoU family: parity with the float64 oracle (tests/reference.py) and torchvision.

Every test body that takes ``combo`` runs once per (array library, device, backend); see
conftest.py. Inputs come from ``fastiou._inputs`` so that the benchmarks measure the same
workloads. Float32 results must be bit-identical to torchvision 0.29.1 for box_iou,
generalized/distance IoU, box_area, box_convert and masks_to_boxes (NaN positions equal);
complete IoU within a few ulp (atan differs between libms).
"""

from __future__ import annotations

import concurrent.futures as cf
import re

import numpy as np
import pytest

import fastiou
import reference as ref
from conftest import host_cast
from fastiou import _inputs

FLOATS = ["float16", "bfloat16", "float32", "float64"]
INTS = ["int32", "int64"]
DTYPES = FLOATS + INTS

PAIRWISE = ["box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou", "box_ioa"]
TV_PAIRWISE = PAIRWISE[:4]            # box_ioa has no torchvision twin
MODE_OF = {"box_iou": "iou", "generalized_box_iou": "giou", "distance_box_iou": "diou",
           "complete_box_iou": "ciou", "box_ioa": "ioa"}
OP_OF_MODE = {v: k for k, v in MODE_OF.items()}
FMTS = ["xyxy", "xywh", "cxcywh"]

F32_ULP = 2.0 ** -23
CIOU_TOL = 8 * F32_ULP                # atan differs between libms: a few ulp, no more
LOW_TOL = 2e-6                        # a float32 computation against the float64 oracle
F64_TOL = 1e-12


# --------------------------------------------------------------------------- helpers
def result_dtype(dtype: str) -> str:
    """torchvision's upcast: fp16/bf16/fp32 -> float32, fp64 -> float64, integers -> float32."""
    return "float64" if dtype == "float64" else "float32"


def oracle_tol(dtype: str) -> tuple[float, float]:
    """(rtol, atol) against the float64 oracle run on the very coordinates the op saw."""
    return (F64_TOL, F64_TOL) if dtype == "float64" else (LOW_TOL, LOW_TOL)


def _first_bad(bad: np.ndarray, actual, expected, what: str) -> str:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{what}: {int(bad.sum())} of {bad.size} values differ; first at {idx}: "
            f"got {actual[idx]!r}, expected {expected[idx]!r}")


def assert_same(actual, expected, what: str = "result") -> None:
    """Bit-for-bit equal values (NaN positions equal), same shape and dtype."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype.kind == "f":
        na, ne = np.isnan(actual), np.isnan(expected)
        bad = (na != ne) | (~na & (actual != expected))
    else:
        bad = actual != expected
    assert not bad.any(), _first_bad(bad, actual, expected, what)


def assert_close(actual, expected, rtol: float, atol: float, what: str = "result") -> None:
    """Equal NaN and infinity positions; elsewhere ``|a - e| <= atol + rtol * |e|``."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    na, ne = np.isnan(actual), np.isnan(expected)
    bad = na != ne
    assert not bad.any(), _first_bad(bad, actual, expected, what + " (NaN positions)")
    inf = np.isinf(actual) | np.isinf(expected)
    bad = inf & (actual != expected)
    assert not bad.any(), _first_bad(bad, actual, expected, what + " (infinities)")
    fin = ~(na | inf)
    with np.errstate(invalid="ignore"):
        bad = fin & (np.abs(actual - expected) > atol + rtol * np.abs(expected))
    assert not bad.any(), _first_bad(bad, actual, expected, what)


def workload(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(70, 4) and (73, 4) xyxy boxes: scattered ones plus near-duplicates on both sides."""
    clustered, _ = _inputs.clustered_boxes(90, seed, objects=4)
    b1 = np.concatenate([_inputs.random_boxes(30, seed + 1), clustered[:40]])
    b2 = np.concatenate([clustered[40:], _inputs.random_boxes(23, seed + 2)])
    return b1, b2


def edge_boxes() -> np.ndarray:
    """``degenerate_boxes()`` plus half-inverted boxes (negative area: a union of 0 against
    their mirror image) and a box with a fractional side."""
    return np.concatenate([_inputs.degenerate_boxes(),
                           [[0, 10, 10, 0], [10, 0, 0, 10], [3, 3, 7, 7.5]]])


def degenerate_with_nan() -> np.ndarray:
    return np.concatenate([edge_boxes(), [[np.nan, 0, 10, 10], [0, 0, 10, np.nan]]])


def tv_tensor(torch, values: np.ndarray, dtype: str):
    """A CPU tensor of ``dtype`` holding ``values`` (already representable in it)."""
    t = torch.from_numpy(np.array(values, dtype=np.float64, copy=True))
    return t.to(getattr(torch, dtype))


def tv_numpy(torch, t) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy().copy()


def call(op: str, *args, **kw):
    return getattr(fastiou, op)(*args, **kw)


def ref_pairwise(op: str, b1, b2, **kw):
    return ref.PAIRWISE[MODE_OF[op]](b1, b2, **kw)


def compare_to_torchvision(op: str, dtype: str, got: np.ndarray, want: np.ndarray) -> None:
    """The drop-in promise for a pairwise op, by dtype."""
    what = f"{op}[{dtype}] vs torchvision"
    if dtype == "float64":
        assert_close(got, want, F64_TOL, F64_TOL, what)
    elif op == "complete_box_iou":
        assert_close(got, want, CIOU_TOL, CIOU_TOL, what)
    elif dtype == "float32" or (op == "box_iou" and dtype in INTS):
        # integer IoU: inter and union are exact, so one rounding of their quotient either way
        assert_same(got, want, what)
    else:
        assert_close(got, want, LOW_TOL, LOW_TOL, what)


# --------------------------------------------------------------------------- the oracle itself
@pytest.mark.parametrize("mode", ref.MODES)
def test_reference_broadcast_matches_its_loops(mode):
    b1 = np.concatenate([degenerate_with_nan(), workload(3)[0][:15]])
    b2 = np.concatenate([workload(3)[1][:12], degenerate_with_nan()])
    loops = ref.pairwise_by_loops(mode, b1, b2)
    assert_close(ref.PAIRWISE[mode](b1, b2), loops, 1e-14, 1e-14, f"reference {mode}")
    n = min(len(b1), len(b2))
    assert_close(ref.aligned(b1[:n], b2[:n], mode), np.diag(loops[:n, :n]), 1e-14, 1e-14, f"aligned {mode}")


def test_reference_known_values():
    a, b = [[0, 0, 2, 2]], [[0, 0, 2, 1]]
    assert ref.iou(a, b)[0, 0] == 0.5
    assert ref.ioa(a, b)[0, 0] == 0.5 and ref.ioa(b, a)[0, 0] == 1.0
    assert ref.giou([[0, 0, 1, 1]], [[2, 0, 3, 1]])[0, 0] == -1 / 3
    d = _inputs.degenerate_boxes()
    m = ref.iou(d, d)
    assert np.isnan(m[3, 4]) and m[6, 0] == 0 and m[0, 2] == 0 and m[7, 0] == 0.36
    assert ref.masks_to_boxes(np.zeros((3, 0, 5))).shape == (0, 4)
    one = np.zeros((1, 4, 6), np.uint8)
    one[0, 2, 5] = 1
    assert ref.masks_to_boxes(one).tolist() == [[5, 2, 5, 2]]
    assert ref.box_convert([[1, 2, 3, 4]], "xywh", "xyxy").tolist() == [[1, 2, 4, 6]]
    assert ref.box_convert([[1, 2, 3, 4]], "cxcywh", "xyxy").tolist() == [[-0.5, 0, 2.5, 4]]


# --------------------------------------------------------------------------- pairwise parity
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", PAIRWISE)
def test_pairwise_matches_reference(combo, op, dtype):
    b1, b2 = workload()
    x1, x2 = combo.asarray(b1, dtype), combo.asarray(b2, dtype)
    res = call(op, x1, x2)
    combo.check_native(res, dtype=result_dtype(dtype), shape=(len(b1), len(b2)))
    want = ref_pairwise(op, combo.rounded(x1), combo.rounded(x2))
    assert_close(combo.to_numpy(res), want, *oracle_tol(dtype), what=f"{op}[{dtype}] vs reference")
    # the workload really overlaps: a test that only sees zeros proves little
    assert np.nanmax(want) > 0.5


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("op", TV_PAIRWISE)
def test_pairwise_matches_torchvision(combo, op, dtype, tv_ops, tv_torch):
    b1, b2 = workload(1)
    x1, x2 = combo.asarray(b1, dtype), combo.asarray(b2, dtype)
    res = call(op, x1, x2)
    want = getattr(tv_ops, op)(tv_tensor(tv_torch, combo.rounded(x1), dtype),
                               tv_tensor(tv_torch, combo.rounded(x2), dtype))
    assert combo.dtype_name(res) == str(want.dtype).removeprefix("torch.")
    compare_to_torchvision(op, dtype, combo.to_numpy(res), tv_numpy(tv_torch, want))


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", PAIRWISE)
def test_integer_boxes_are_computed_in_float64(combo, op, dtype):
    """Coordinates near 3e7 with sides of a few units: float32 cannot hold them (its spacing
    there is 2), float64 can, and the float32 result is then one rounding of the exact value."""
    rng = np.random.default_rng(7)
    base = np.array([3.0e7 + 1, 2.0e7 + 3])
    xy = base + rng.integers(0, 40, size=(40, 2))
    wh = rng.integers(1, 30, size=(40, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    b1, b2 = boxes[:25], boxes[15:]
    x1, x2 = combo.asarray(b1, dtype), combo.asarray(b2, dtype)
    got = combo.to_numpy(call(op, x1, x2))
    want = ref_pairwise(op, b1, b2)
    assert np.nanmax(want) > 0.3
    assert_close(got, want, LOW_TOL, LOW_TOL, f"{op}[{dtype}] near 3e7")
    if op == "box_iou":
        assert_same(got, want.astype(np.float32), "integer IoU is the exact quotient, rounded once")


def test_box_iou_large_matches_torchvision(combo, tv_ops, tv_torch):
    """One 1000 x 1000 matrix, bit for bit."""
    boxes, _ = _inputs.clustered_boxes(2000, seed=5, objects=20)
    b1, b2 = boxes[:1000], boxes[1000:]
    res = fastiou.box_iou(combo.asarray(b1, "float32"), combo.asarray(b2, "float32"))
    want = tv_ops.box_iou(tv_tensor(tv_torch, b1.astype(np.float32), "float32"),
                          tv_tensor(tv_torch, b2.astype(np.float32), "float32"))
    got = combo.to_numpy(res)
    assert_same(got, tv_numpy(tv_torch, want), "box_iou 1000x1000")
    assert (got > 0.7).sum() > 1000


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64"])
@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_iou_formats(combo, fmt, dtype, tv_ops, tv_torch):
    b1, b2 = workload(2)
    x1 = combo.asarray(ref.from_xyxy(b1, fmt), dtype)
    x2 = combo.asarray(ref.from_xyxy(b2, fmt), dtype)
    res = fastiou.box_iou(x1, x2, fmt=fmt)
    combo.check_native(res, dtype=result_dtype(dtype), shape=(len(b1), len(b2)))
    got = combo.to_numpy(res)
    r1, r2 = combo.rounded(x1), combo.rounded(x2)
    assert_close(got, ref.iou(r1, r2, fmt), *oracle_tol(dtype), what=f"box_iou {fmt} vs reference")
    if dtype != "float16":
        want = tv_ops.box_iou(tv_tensor(tv_torch, r1, dtype), tv_tensor(tv_torch, r2, dtype), fmt=fmt)
        compare_to_torchvision("box_iou", dtype, got, tv_numpy(tv_torch, want))


@pytest.mark.parametrize("op", ["distance_box_iou", "complete_box_iou"])
def test_eps_is_used(combo, op, tv_ops, tv_torch):
    b1, b2 = workload(4)
    b1, b2 = b1[:20] / 100, b2[:25] / 100          # small boxes: eps = 0.5 matters
    x1, x2 = combo.asarray(b1, "float32"), combo.asarray(b2, "float32")
    res = combo.to_numpy(call(op, x1, x2, eps=0.5))
    want = getattr(tv_ops, op)(tv_tensor(tv_torch, combo.rounded(x1), "float32"),
                               tv_tensor(tv_torch, combo.rounded(x2), "float32"), eps=0.5)
    compare_to_torchvision(op, "float32", res, tv_numpy(tv_torch, want))
    assert_close(res, ref_pairwise(op, combo.rounded(x1), combo.rounded(x2), eps=0.5), LOW_TOL, LOW_TOL)
    default = combo.to_numpy(call(op, x1, x2))
    assert not np.allclose(res, default), "eps=0.5 made no difference"


# --------------------------------------------------------------------------- threshold boundary
@pytest.mark.parametrize("dtype", DTYPES)
def test_iou_exactly_one_half(combo, dtype):
    """[0,0,2,2] vs [0,0,2,1]: IoU exactly 0.5 (the NMS threshold boundary) in every dtype."""
    a = combo.asarray([[0, 0, 2, 2]], dtype)
    b = combo.asarray([[0, 0, 2, 1]], dtype)
    rdt = result_dtype(dtype)
    half = np.array([[0.5]], dtype=rdt)
    for res in (fastiou.box_iou(a, b), fastiou.box_iou(b, a), fastiou.generalized_box_iou(a, b),
                fastiou.box_ioa(a, b)):
        combo.check_native(res, dtype=rdt, shape=(1, 1))
        assert_same(combo.to_numpy(res), half)
    assert_same(combo.to_numpy(fastiou.box_ioa(b, a)), np.array([[1.0]], dtype=rdt))
    res = fastiou.box_iou_aligned(a, b, mode="iou")
    combo.check_native(res, dtype=rdt, shape=(1,))
    assert_same(combo.to_numpy(res), np.array([0.5], dtype=rdt))


def test_iou_one_half_in_xywh_and_cxcywh(combo):
    for fmt in ("xywh", "cxcywh"):
        a = combo.asarray(ref.from_xyxy([[0, 0, 2, 2]], fmt), "float32")
        b = combo.asarray(ref.from_xyxy([[0, 0, 2, 1]], fmt), "float32")
        assert_same(combo.to_numpy(fastiou.box_iou(a, b, fmt=fmt)), np.array([[0.5]], np.float32), fmt)


# --------------------------------------------------------------------------- degenerate boxes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", PAIRWISE)
def test_degenerate_boxes_match_reference(combo, op, dtype):
    d = edge_boxes()
    x = combo.asarray(d, dtype)
    res = call(op, x, x)
    combo.check_native(res, dtype=result_dtype(dtype), shape=(len(d), len(d)))
    r = combo.rounded(x)
    assert_close(combo.to_numpy(res), ref_pairwise(op, r, r), *oracle_tol(dtype), what=f"{op}[{dtype}]")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", TV_PAIRWISE)
def test_degenerate_boxes_match_torchvision(combo, op, dtype, tv_ops, tv_torch):
    d = degenerate_with_nan()
    x1, x2 = combo.asarray(d, dtype), combo.asarray(d[::-1].copy(), dtype)
    want = getattr(tv_ops, op)(tv_tensor(tv_torch, d, dtype), tv_tensor(tv_torch, d[::-1].copy(), dtype))
    compare_to_torchvision(op, dtype, combo.to_numpy(call(op, x1, x2)), tv_numpy(tv_torch, want))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_degenerate_named_values(combo, dtype):
    d = _inputs.degenerate_boxes()
    m = combo.to_numpy(fastiou.box_iou(combo.asarray(d, dtype), combo.asarray(d, dtype)))
    assert m[0, 1] == 1.0, "identical boxes"
    assert m[0, 2] == 0.0, "touching boxes"
    assert np.isnan(m[3, 4]) and np.isnan(m[3, 3]), "two zero-area boxes: 0/0 is NaN (no eps)"
    assert np.isnan(m[5, 5]), "zero-width box with itself"
    assert m[3, 0] == 0.0 and m[5, 0] == 0.0, "a zero-area box against a real one is 0"
    assert m[6, 0] == 0.0 and m[0, 6] == 0.0, "inverted box: positive area, IoU 0"
    assert m[7, 0] == (0.36 if dtype == "float64" else np.float32(0.36)), "box inside another"
    assert m[8, 8] == 1.0 and m[8, 0] == 0.0, "negative coordinates"
    assert m[9, 9] == 1.0 and m[9, 0] == 0.0, "large coordinates"
    a = combo.to_numpy(fastiou.box_area(combo.asarray(d, dtype)))
    assert a[6] == 100 and a[3] == 0 and a[9] == 25, "areas are not clamped"
    h = combo.asarray([[0, 10, 10, 0], [0, 0, 10, 10]], dtype)
    assert combo.to_numpy(fastiou.box_area(h)).tolist() == [-100, 100], "a half-inverted box has a negative area"
    assert np.isnan(combo.to_numpy(fastiou.box_iou(h, h))[0, 1]), "union -100 + 100 - 0 = 0: NaN"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("op", PAIRWISE)
def test_nan_coordinates_give_nan(combo, op, dtype):
    b1, b2 = workload(6)
    b1, b2 = b1[25:40].copy(), b2[:12].copy()
    nan1, nan2 = [2, 5, 7, 11], [1, 4, 6, 9]
    for k, (i, j) in enumerate(zip(nan1, nan2)):
        b1[i, k] = np.nan                     # each coordinate position once, on both sides
        b2[j, k] = np.nan
    x1, x2 = combo.asarray(b1, dtype), combo.asarray(b2, dtype)
    got = combo.to_numpy(call(op, x1, x2))
    assert np.isnan(got[nan1, :]).all(), "a NaN box1 gives a NaN row"
    assert np.isnan(got[:, nan2]).all(), "a NaN box2 gives a NaN column"
    clean1 = np.delete(np.arange(len(b1)), nan1)
    clean2 = np.delete(np.arange(len(b2)), nan2)
    rest = combo.to_numpy(call(op, combo.asarray(b1[clean1], dtype), combo.asarray(b2[clean2], dtype)))
    assert_same(got[np.ix_(clean1, clean2)], rest, "NaN boxes change the other entries")
    assert_close(got, ref_pairwise(op, combo.rounded(x1), combo.rounded(x2)), *oracle_tol(dtype))
    area = combo.to_numpy(fastiou.box_area(x1))
    assert np.isnan(area[nan1]).all() and not np.isnan(area[clean1]).any()


def test_infinite_coordinates(combo):
    b = np.array([[0, 0, np.inf, 10], [0, 0, 10, 10], [-np.inf, -np.inf, np.inf, np.inf]])
    x = combo.asarray(b, "float32")
    got = combo.to_numpy(fastiou.box_iou(x, x))
    assert_close(got, ref.iou(b, b), 0, 0, "box_iou with infinities")
    assert_same(combo.to_numpy(fastiou.box_area(x)), ref.area(b).astype(np.float32), "box_area")


# --------------------------------------------------------------------------- batch dims
BATCH_SHAPES = [
    ((2, 5, 4), (2, 7, 4), (2, 5, 7)),
    ((2, 1, 5, 4), (3, 7, 4), (2, 3, 5, 7)),
    ((5, 4), (3, 7, 4), (3, 5, 7)),
    ((3, 5, 4), (7, 4), (3, 5, 7)),
    ((1, 5, 4), (4, 7, 4), (4, 5, 7)),
]


def batch_boxes(shape, seed):
    n = int(np.prod(shape[:-1]))
    return _inputs.clustered_boxes(n, seed, objects=2)[0].reshape(shape)


@pytest.mark.parametrize("shapes", BATCH_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("op", PAIRWISE)
def test_batch_dims_broadcast(combo, op, shapes, tv_ops, tv_torch):
    s1, s2, s_out = shapes
    b1, b2 = batch_boxes(s1, 1), batch_boxes(s2, 2)
    x1, x2 = combo.asarray(b1, "float32"), combo.asarray(b2, "float32")
    res = call(op, x1, x2)
    combo.check_native(res, dtype="float32", shape=s_out)
    got = combo.to_numpy(res)
    # each batch entry equals the 2-D call on its slices, bit for bit
    e1, e2 = np.broadcast_to(b1, s_out[:-2] + s1[-2:]), np.broadcast_to(b2, s_out[:-2] + s2[-2:])
    for idx in np.ndindex(*s_out[:-2]):
        one = call(op, combo.asarray(e1[idx], "float32"), combo.asarray(e2[idx], "float32"))
        assert_same(got[idx], combo.to_numpy(one), f"{op} batch entry {idx}")
    r1, r2 = b1.astype(np.float32).astype(np.float64), b2.astype(np.float32).astype(np.float64)
    assert_close(got, ref_pairwise(op, r1, r2), LOW_TOL, LOW_TOL, f"{op} batched vs reference")
    if op in TV_PAIRWISE:
        want = getattr(tv_ops, op)(tv_tensor(tv_torch, r1, "float32"), tv_tensor(tv_torch, r2, "float32"))
        compare_to_torchvision(op, "float32", got, tv_numpy(tv_torch, want))


@pytest.mark.parametrize("fmt", FMTS)
def test_box_iou_batched_formats(combo, fmt, tv_ops, tv_torch):
    b1 = ref.from_xyxy(batch_boxes((2, 1, 6, 4), 3), fmt).astype(np.float32)
    b2 = ref.from_xyxy(batch_boxes((3, 4, 4), 4), fmt).astype(np.float32)
    got = combo.to_numpy(fastiou.box_iou(combo.asarray(b1), combo.asarray(b2), fmt=fmt))
    want = tv_ops.box_iou(tv_tensor(tv_torch, b1, "float32"), tv_tensor(tv_torch, b2, "float32"), fmt=fmt)
    assert_same(got, tv_numpy(tv_torch, want), f"batched box_iou {fmt}")


@pytest.mark.parametrize("op", PAIRWISE)
def test_batch_dims_mismatch_is_input_error(combo, op):
    x1 = combo.asarray(batch_boxes((2, 5, 4), 1), "float32")
    x2 = combo.asarray(batch_boxes((3, 7, 4), 2), "float32")
    with pytest.raises(fastiou.InputError):
        call(op, x1, x2)


# --------------------------------------------------------------------------- box_area
AREA_DTYPE = {  # torchvision's box_area: _upcast keeps int32/int64, fp16/bf16 -> float32
    "float16": "float32", "bfloat16": "float32", "float32": "float32", "float64": "float64",
    "int32": "int32", "int64": "int64",
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FMTS)
def test_box_area(combo, fmt, dtype, tv_ops, tv_torch):
    b = ref.from_xyxy(np.concatenate([workload(7)[0], edge_boxes()]), fmt)
    x = combo.asarray(b, dtype)
    res = fastiou.box_area(x, fmt=fmt)
    combo.check_native(res, shape=(len(b),))
    want = tv_ops.box_area(tv_tensor(tv_torch, combo.rounded(x), dtype), fmt=fmt)
    assert combo.dtype_name(res) == AREA_DTYPE[dtype] == str(want.dtype).removeprefix("torch."), \
        f"box_area dtype {combo.dtype_name(res)}; torchvision gives {want.dtype}"
    got = combo.to_numpy(res)
    # torchvision upcasts fp16/bf16 to float32 *before* its one subtraction and product,
    # so box_area is bit-identical in every dtype
    assert_same(got, tv_numpy(tv_torch, want), f"box_area[{dtype}] vs torchvision")
    rtol = F64_TOL if dtype == "float64" else 2 * F32_ULP
    assert_close(got, ref.area(combo.rounded(x), fmt), rtol, 0, f"box_area[{dtype}] vs reference")


def test_box_area_batched(combo, tv_ops, tv_torch):
    b = batch_boxes((2, 3, 5, 4), 8).astype(np.float32)
    res = fastiou.box_area(combo.asarray(b))
    combo.check_native(res, dtype="float32", shape=(2, 3, 5))
    assert_same(combo.to_numpy(res), tv_numpy(tv_torch, tv_ops.box_area(tv_tensor(tv_torch, b, "float32"))))


# --------------------------------------------------------------------------- box_convert
def convert_dtype(dtype: str, in_fmt: str, out_fmt: str) -> str:
    if dtype in INTS and in_fmt != out_fmt and "cxcywh" in (in_fmt, out_fmt):
        return "float32"   # torchvision's true division
    return dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_fmt", FMTS)
@pytest.mark.parametrize("in_fmt", FMTS)
def test_box_convert(combo, in_fmt, out_fmt, dtype, tv_ops, tv_torch):
    b = ref.from_xyxy(workload(9)[0], in_fmt)
    x = combo.asarray(b, dtype)
    before = combo.to_numpy(x)
    res = fastiou.box_convert(x, in_fmt, out_fmt)
    rdt = convert_dtype(dtype, in_fmt, out_fmt)
    combo.check_native(res, dtype=rdt, shape=b.shape)
    got = combo.to_numpy(res)
    r = combo.rounded(x)
    expected = ref.box_convert(r, in_fmt, out_fmt)
    if dtype in ("float16", "bfloat16") and rdt == dtype:
        # the output itself is fp16/bf16: its own rounding, relative to the coordinates' scale
        unit = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}[dtype]   # unit roundoff
        assert_close(got, expected, 2 * unit, 2 * unit * np.abs(r).max(), f"box_convert {in_fmt}->{out_fmt}")
    else:
        assert_close(got, expected, *oracle_tol(dtype), what=f"box_convert {in_fmt}->{out_fmt}")
    if dtype in ("float32", "float64", *INTS):
        want = tv_ops.box_convert(tv_tensor(tv_torch, r, dtype), in_fmt, out_fmt)
        assert_same(got, tv_numpy(tv_torch, want), f"box_convert {in_fmt}->{out_fmt} vs torchvision")
    # the input is untouched, and the result never aliases it (in_fmt == out_fmt is a copy)
    combo.zero_(res)
    assert_same(combo.to_numpy(x), before, "input after zeroing the result")


def test_box_convert_batched(combo, tv_ops, tv_torch):
    b = batch_boxes((2, 3, 4, 4), 10).astype(np.float32)
    for in_fmt, out_fmt in [("xyxy", "cxcywh"), ("xywh", "cxcywh"), ("cxcywh", "xywh")]:
        res = fastiou.box_convert(combo.asarray(b), in_fmt, out_fmt)
        combo.check_native(res, dtype="float32", shape=b.shape)
        want = tv_ops.box_convert(tv_tensor(tv_torch, b, "float32"), in_fmt, out_fmt)
        assert_same(combo.to_numpy(res), tv_numpy(tv_torch, want), f"{in_fmt}->{out_fmt}")


def test_unknown_format_is_value_error(combo):
    x = combo.asarray(workload()[0][:3], "float32")
    with pytest.raises(ValueError):
        fastiou.box_convert(x, "xyxy", "yxyx")
    with pytest.raises(ValueError):
        fastiou.box_convert(x, "xywhh", "xyxy")
    with pytest.raises(ValueError):
        fastiou.box_area(x, fmt="bogus")
    with pytest.raises(ValueError):
        fastiou.box_iou(x, x, fmt="bogus")


# --------------------------------------------------------------------------- aligned
def aligned_inputs():
    b1, b2 = workload(11)
    d = edge_boxes()
    return np.concatenate([b1[:60], d]), np.concatenate([b2[:60], d[::-1]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int64"])
@pytest.mark.parametrize("mode", ref.MODES)
def test_box_iou_aligned_is_the_diagonal(combo, mode, dtype):
    b1, b2 = aligned_inputs()
    x1, x2 = combo.asarray(b1, dtype), combo.asarray(b2, dtype)
    res = fastiou.box_iou_aligned(x1, x2, mode=mode)
    combo.check_native(res, dtype=result_dtype(dtype), shape=(len(b1),))
    got = combo.to_numpy(res)
    diag = np.diagonal(combo.to_numpy(call(OP_OF_MODE[mode], x1, x2))).copy()
    if mode == "ciou":
        assert_close(got, diag, CIOU_TOL, CIOU_TOL, "aligned ciou vs diagonal")
    else:
        assert_same(got, diag, f"aligned {mode} vs diagonal")
    assert_close(got, ref.aligned(combo.rounded(x1), combo.rounded(x2), mode), *oracle_tol(dtype))


def test_box_iou_aligned_default_mode_is_iou(combo):
    b1, b2 = aligned_inputs()
    x1, x2 = combo.asarray(b1, "float32"), combo.asarray(b2, "float32")
    assert_same(combo.to_numpy(fastiou.box_iou_aligned(x1, x2)),
                combo.to_numpy(fastiou.box_iou_aligned(x1, x2, mode="iou")))


def test_box_iou_aligned_errors(combo):
    b1, b2 = aligned_inputs()
    x1, x2 = combo.asarray(b1[:5], "float32"), combo.asarray(b2[:3], "float32")
    with pytest.raises(fastiou.InputError):
        fastiou.box_iou_aligned(x1, x2)
    with pytest.raises(ValueError):
        fastiou.box_iou_aligned(x1, x1, mode="bogus")
    with pytest.raises(fastiou.InputError):
        fastiou.box_iou_aligned(combo.asarray(b1[:5, :3], "float32"), combo.asarray(b2[:5, :3], "float32"))


# --------------------------------------------------------------------------- empty inputs
EMPTY_SHAPES = [
    ((0, 4), (5, 4), (0, 5)),
    ((5, 4), (0, 4), (5, 0)),
    ((0, 4), (0, 4), (0, 0)),
    ((2, 0, 4), (2, 3, 4), (2, 0, 3)),
    ((2, 3, 4), (2, 0, 4), (2, 3, 0)),
    ((0, 3, 4), (3, 4), (0, 3, 3)),
]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64"])
@pytest.mark.parametrize("shapes", EMPTY_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("op", PAIRWISE)
def test_empty_pairwise(combo, op, shapes, dtype):
    s1, s2, s_out = shapes
    res = call(op, combo.asarray(np.zeros(s1), dtype), combo.asarray(np.zeros(s2), dtype))
    combo.check_native(res, dtype=result_dtype(dtype), shape=s_out)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64"])
def test_empty_others(combo, dtype):
    e = combo.asarray(np.zeros((0, 4)), dtype)
    combo.check_native(fastiou.box_area(e), dtype=AREA_DTYPE[dtype], shape=(0,))
    combo.check_native(fastiou.box_area(combo.asarray(np.zeros((2, 0, 4)), dtype)),
                       dtype=AREA_DTYPE[dtype], shape=(2, 0))
    combo.check_native(fastiou.box_convert(e, "xyxy", "xywh"), dtype=dtype, shape=(0, 4))
    combo.check_native(fastiou.box_convert(e, "xyxy", "cxcywh"),
                       dtype=convert_dtype(dtype, "xyxy", "cxcywh"), shape=(0, 4))
    for mode in ref.MODES:
        combo.check_native(fastiou.box_iou_aligned(e, e, mode=mode), dtype=result_dtype(dtype), shape=(0,))


# --------------------------------------------------------------------------- non-contiguous
@pytest.mark.parametrize("kind", ["transposed", "column_step", "row_step", "expanded", "reversed"])
@pytest.mark.parametrize("op", PAIRWISE + ["box_area", "box_convert", "box_iou_aligned"])
def test_non_contiguous_inputs(combo, op, kind):
    b1, b2 = workload(12)
    b1, b2 = b1[:40], b2[:40]
    if kind == "expanded":
        b1, b2 = np.repeat(b1[:1], 40, axis=0), np.repeat(b2[3:4], 40, axis=0)
    v1, v2 = combo.view(b1, "float32", kind), combo.view(b2, "float32", kind)
    assert not combo.is_contiguous(v1)
    before = combo.to_numpy(v1), combo.to_numpy(v2)
    c1, c2 = combo.asarray(b1, "float32"), combo.asarray(b2, "float32")
    if op == "box_area":
        got, want = fastiou.box_area(v1), fastiou.box_area(c1)
    elif op == "box_convert":
        got, want = fastiou.box_convert(v1, "xyxy", "cxcywh"), fastiou.box_convert(c1, "xyxy", "cxcywh")
    else:
        got, want = call(op, v1, v2), call(op, c1, c2)
    combo.check_native(got, dtype="float32")
    assert_same(combo.to_numpy(got), combo.to_numpy(want), f"{op} on a {kind} view")
    assert_same(combo.to_numpy(v1), before[0], "input changed")
    assert_same(combo.to_numpy(v2), before[1], "input changed")


# --------------------------------------------------------------------------- out=
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("op", PAIRWISE)
def test_out_is_filled_and_returned(combo, op, dtype):
    b1, b2 = workload(13)
    x1, x2 = combo.asarray(b1, dtype), combo.asarray(b2, dtype)
    rdt = result_dtype(dtype)
    out = combo.full((len(b1), len(b2)), np.nan, rdt)
    res = call(op, x1, x2, out=out)
    assert res is out
    want = combo.to_numpy(call(op, x1, x2))
    assert_same(combo.to_numpy(out), want, f"{op} out=")
    # reused for other inputs of the same shapes: every entry rewritten
    c1, c2 = workload(99)
    y1, y2 = combo.asarray(c1, dtype), combo.asarray(c2, dtype)
    res = call(op, y1, y2, out=out)
    assert res is out
    assert_same(combo.to_numpy(out), combo.to_numpy(call(op, y1, y2)), f"{op} out= reused")


@pytest.mark.parametrize("op", PAIRWISE)
def test_out_batched(combo, op):
    b1, b2 = batch_boxes((2, 5, 4), 1), batch_boxes((2, 7, 4), 2)
    x1, x2 = combo.asarray(b1, "float32"), combo.asarray(b2, "float32")
    out = combo.full((2, 5, 7), np.nan, "float32")
    assert call(op, x1, x2, out=out) is out
    assert_same(combo.to_numpy(out), combo.to_numpy(call(op, x1, x2)))


@pytest.mark.parametrize("op", PAIRWISE)
def test_bad_out_is_input_error(combo, op):
    b1, b2 = workload(14)
    x1, x2 = combo.asarray(b1[:6], "float32"), combo.asarray(b2[:5], "float32")
    for shape, dtype in [((5, 6), "float32"), ((6, 5, 1), "float32"), ((30,), "float32"),
                         ((6, 5), "float64"), ((6, 5), "int32"), ((6, 5), "float16")]:
        with pytest.raises(fastiou.InputError):
            call(op, x1, x2, out=combo.empty(shape, dtype))
    # float64 boxes need a float64 out
    with pytest.raises(fastiou.InputError):
        call(op, combo.asarray(b1[:6], "float64"), combo.asarray(b2[:5], "float64"),
             out=combo.empty((6, 5), "float32"))


# --------------------------------------------------------------------------- shape errors
SHAPE_MSG = re.compile(r"5,\s*3")


@pytest.mark.parametrize("op", PAIRWISE)
def test_pairwise_shape_errors(combo, op):
    good = combo.asarray(workload()[0][:5], "float32")
    bad = combo.asarray(np.zeros((5, 3)), "float32")
    with pytest.raises(fastiou.InputError, match="boxes1") as ei:
        call(op, bad, good)
    assert SHAPE_MSG.search(str(ei.value)), f"message does not show the received shape: {ei.value}"
    with pytest.raises(fastiou.InputError, match="boxes2") as ei:
        call(op, good, bad)
    assert SHAPE_MSG.search(str(ei.value)), f"message does not show the received shape: {ei.value}"
    for wrong in (np.zeros((4,)), np.zeros((5, 5)), np.zeros((5, 4, 1)), np.zeros(())):
        with pytest.raises(fastiou.InputError):
            call(op, combo.asarray(wrong, "float32"), good)
        with pytest.raises(fastiou.InputError):
            call(op, good, combo.asarray(wrong, "float32"))


def test_single_arg_shape_errors(combo):
    bad = combo.asarray(np.zeros((5, 3)), "float32")
    for fn in (fastiou.box_area, lambda x: fastiou.box_convert(x, "xyxy", "xywh")):
        with pytest.raises(fastiou.InputError, match="boxes") as ei:
            fn(bad)
        assert SHAPE_MSG.search(str(ei.value)), f"message does not show the received shape: {ei.value}"
        for wrong in (np.zeros(()), np.zeros((5, 5)), np.zeros((2, 5, 1))):
            with pytest.raises(fastiou.InputError):
                fn(combo.asarray(wrong, "float32"))


# --------------------------------------------------------------------------- masks_to_boxes
def special_masks(h: int = 9, w: int = 11) -> np.ndarray:
    m = np.zeros((7, h, w), dtype=np.uint8)
    m[0, 0, 0] = 1                      # one pixel in the corner: x1 == x2 == 0
    m[1, h - 1, w - 1] = 255            # the opposite corner, a non-1 value
    m[2] = 7                            # full
    m[3, 4, :] = 1                      # one row
    m[4, :, 6] = 1                      # one column
    m[5, [1, 7], [2, 9]] = 1            # two far pixels: the box spans both
    return m                            # m[6] stays empty


@pytest.mark.parametrize("mask_dtype", ["bool", "uint8"])
def test_masks_to_boxes(combo, mask_dtype, tv_ops, tv_torch):
    masks = np.concatenate([_inputs.random_masks(12, 9, 11, seed=3, empty_every=4), special_masks()])
    x = combo.asarray(masks, mask_dtype)
    res = fastiou.masks_to_boxes(x)
    combo.check_native(res, dtype="float32", shape=(len(masks), 4))
    got = combo.to_numpy(res)
    assert_same(got, ref.masks_to_boxes(masks).astype(np.float32), "masks_to_boxes vs reference")
    want = tv_ops.masks_to_boxes(tv_torch.from_numpy(masks.astype(mask_dtype)))
    assert_same(got, tv_numpy(tv_torch, want), "masks_to_boxes vs torchvision")
    assert (got[[0, 4, 8, 18]] == 0).all(), "empty masks give [0, 0, 0, 0]"


def test_masks_to_boxes_larger(combo):
    masks = _inputs.random_masks(6, 240, 320, seed=4, empty_every=5)
    got = combo.to_numpy(fastiou.masks_to_boxes(combo.asarray(masks, "bool")))
    assert_same(got, ref.masks_to_boxes(masks).astype(np.float32))


@pytest.mark.parametrize("shape", [(0, 5, 6), (3, 0, 6), (3, 5, 0), (0, 0, 0)])
def test_masks_to_boxes_empty(combo, shape, tv_ops, tv_torch):
    res = fastiou.masks_to_boxes(combo.asarray(np.zeros(shape), "uint8"))
    combo.check_native(res, dtype="float32", shape=(0, 4))      # numel == 0 -> (0, 4), as torchvision
    assert tuple(tv_ops.masks_to_boxes(tv_torch.zeros(shape, dtype=tv_torch.uint8)).shape) == (0, 4)


def test_masks_to_boxes_non_contiguous(combo):
    masks = _inputs.random_masks(5, 13, 17, seed=6, empty_every=3)
    if combo.library == "torch":
        t = combo.asarray(np.ascontiguousarray(masks.transpose(0, 2, 1)), "uint8").transpose(1, 2)
    else:
        t = combo.asarray(np.ascontiguousarray(masks.transpose(0, 2, 1)), "uint8").transpose(0, 2, 1)
    wide = np.zeros((5, 26, 51), np.uint8)
    wide[:, ::2, ::3] = masks
    s = combo.asarray(wide, "uint8")[:, ::2, ::3]
    want = ref.masks_to_boxes(masks).astype(np.float32)
    for v in (t, s):
        assert not combo.is_contiguous(v)
        assert_same(combo.to_numpy(fastiou.masks_to_boxes(v)), want)


def test_masks_to_boxes_shape_errors(combo):
    for shape in [(5, 6), (2, 3, 5, 6), (7,)]:
        with pytest.raises(fastiou.InputError, match="masks"):
            fastiou.masks_to_boxes(combo.asarray(np.ones(shape), "uint8"))


# --------------------------------------------------------------------------- ioa vs pycocotools
def test_box_ioa_matches_pycocotools_crowd_rule(combo, coco_mask):
    b1, b2 = workload(15)
    b1, b2 = np.round(b1), np.round(b2)            # integer boxes: xyxy <-> xywh is exact
    got = combo.to_numpy(fastiou.box_ioa(combo.asarray(b1, "float64"), combo.asarray(b2, "float64")))
    xywh1, xywh2 = ref.from_xyxy(b1, "xywh"), ref.from_xyxy(b2, "xywh")
    want = np.asarray(coco_mask.iou(xywh1, xywh2, np.ones(len(b2), dtype=np.uint8)))  # crowd: / area(dt)
    assert_close(got, want, 1e-12, 1e-12, "box_ioa vs pycocotools iscrowd=1")


# --------------------------------------------------------------------------- backends agree
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64"])
@pytest.mark.parametrize("op", PAIRWISE + ["box_iou_aligned", "box_area", "box_convert", "masks_to_boxes"])
def test_backends_agree(combo, op, dtype):
    """This combo against numpy on another backend: within 1e-6 relative (the contract)."""
    baseline = "numba" if combo.backend == "cpp" else "cpp"
    if not fastiou.backends()[baseline]["available"]:
        pytest.skip(f"baseline backend {baseline} unavailable: {fastiou.backends()[baseline]['reason']}")
    b1, b2 = workload(16)
    b1 = np.concatenate([b1, edge_boxes()])
    b2 = np.concatenate([b2, edge_boxes()[::-1]])[: len(b1)]
    masks = _inputs.random_masks(8, 20, 30, seed=16, empty_every=3)

    def run(x1, x2, m):
        if op == "box_area":
            return fastiou.box_area(x1)
        if op == "box_convert":
            return fastiou.box_convert(x1, "xywh", "cxcywh")
        if op == "masks_to_boxes":
            return fastiou.masks_to_boxes(m)
        if op == "box_iou_aligned":
            return fastiou.box_iou_aligned(x1, x2, mode="ciou")
        return call(op, x1, x2)

    got = combo.to_numpy(run(combo.asarray(b1, dtype), combo.asarray(b2, dtype), combo.asarray(masks, "uint8")))
    with fastiou.use_backend(baseline):
        want = run(host_cast(b1, dtype), host_cast(b2, dtype), masks)
    assert got.dtype == want.dtype
    assert_close(got, want, 1e-6, 1e-6, f"{op}[{dtype}] {combo} vs numpy-{baseline}")


# --------------------------------------------------------------------------- threads
def test_concurrent_calls_from_threads(combo):
    inputs = []
    for k in range(8):
        b1, b2 = workload(20 + k)
        inputs.append((combo.asarray(b1, "float32"), combo.asarray(b2, "float32")))
    masks = combo.asarray(_inputs.random_masks(6, 40, 50, seed=21, empty_every=2), "uint8")
    seq_iou = [combo.to_numpy(fastiou.box_iou(a, b)) for a, b in inputs]
    seq_giou = [combo.to_numpy(fastiou.generalized_box_iou(a, b)) for a, b in inputs]
    seq_masks = combo.to_numpy(fastiou.masks_to_boxes(masks))

    def job(i):
        k = i % len(inputs)
        a, b = inputs[k]
        if i % 3 == 0:
            return "iou", k, combo.to_numpy(fastiou.box_iou(a, b))
        if i % 3 == 1:
            return "giou", k, combo.to_numpy(fastiou.generalized_box_iou(a, b))
        return "masks", k, combo.to_numpy(fastiou.masks_to_boxes(masks))

    with cf.ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(job, range(48)))
    for kind, k, got in results:
        want = {"iou": seq_iou[k], "giou": seq_giou[k], "masks": seq_masks}[kind]
        assert_same(got, want, f"{kind} #{k} from a thread")
    a, b = inputs[0]
    assert_close(seq_iou[0], ref.iou(combo.rounded(a), combo.rounded(b)), LOW_TOL, LOW_TOL)
