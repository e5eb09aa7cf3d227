"""The suppression family: nms, batched_nms, nms_sweep, soft_nms, matrix_nms, multiclass_nms.

Every test body that takes ``combo`` runs once per (array library, device, backend); see
conftest.py. Oracles: the float64 loops of tests/reference.py (``ref.nms`` computes each IoU
in the boxes' compute precision with torchvision's kernel formula and compares it with the
threshold as a double, so it is index-for-index torchvision's rule), and torchvision.ops
itself, which must agree with fastiou index for index wherever fastiou does not document a
difference (NaN scores rank last in fastiou; batched_nms has no coordinate-offset trick).
Oracle results do not depend on the combo, so they are computed once per case (``memo``).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import fastiou
import reference as ref
from conftest import host_cast
from fastiou import _inputs

THRESHOLDS = [-0.1, 0.0, 0.5, 0.7, 1.0]
WORKLOADS = ["random", "clustered", "ties", "duplicates", "degenerate", "huge"]
LOW = ["float16", "bfloat16"]
F32_TOL = 2e-5      # a float32 score after a chain of float32 decays, against float64
F64_TOL = 1e-12

_MEMO: dict = {}


def memo(key, fn):
    """``fn()``, computed once per key for the whole module (oracles are combo-independent)."""
    if key not in _MEMO:
        _MEMO[key] = fn()
    return _MEMO[key]


def compute_dtype(dtype: str) -> str:
    """The precision fastiou (and the reference) computes IoU in for boxes of ``dtype``."""
    return "float32" if dtype in ("float16", "bfloat16", "float32") else "float64"


def score_dtype(dtype: str) -> str:
    """Float results (soft/matrix NMS scores): float32, float64 for float64 boxes."""
    return "float64" if dtype == "float64" else "float32"


# --------------------------------------------------------------------------- helpers
def indices(combo, res, what: str = "keep") -> np.ndarray:
    """A 1-D int64 result in the caller's library and device, as numpy."""
    combo.check_native(res, dtype="int64")
    assert len(res.shape) == 1, f"{what}: expected a 1-D result, got shape {tuple(res.shape)}"
    return combo.to_numpy(res)


def assert_indices(got, want, what: str = "keep") -> None:
    got = np.asarray(got).tolist()
    want = np.asarray(want).tolist()
    if got == want:
        return
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    raise AssertionError(f"{what}: {len(got)} kept, expected {len(want)}; first difference at "
                         f"position {first}: got {got[first:first + 5]}, expected {want[first:first + 5]}")


def assert_close(got, want, rtol: float, what: str = "values") -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    ng, nw = np.isnan(got), np.isnan(want)
    assert (ng == nw).all(), f"{what}: NaN at {np.flatnonzero(ng != nw)[:5]}"
    ok = ng | (np.abs(got - want) <= rtol * np.abs(want) + rtol * 1e-3)
    assert ok.all(), (f"{what}: {int((~ok).sum())} differ; first at {int(np.flatnonzero(~ok)[0])}: "
                      f"got {got[~ok][0]!r}, expected {want[~ok][0]!r}")


def tv_tensor(torch, a, dtype: str = "float32"):
    return torch.from_numpy(np.array(a, dtype=np.float64, copy=True)).to(getattr(torch, dtype))


def tv_nms(tv_ops, torch, boxes, scores, thr, dtype="float32") -> np.ndarray:
    """torchvision.ops.nms on CPU (float32 for fp16/bf16 boxes: its CUDA half path and its
    autocast both compute in float32)."""
    dt = "float64" if dtype == "float64" else "float32"
    return tv_ops.nms(tv_tensor(torch, boxes, dt), tv_tensor(torch, scores, dt), float(thr)).numpy()


def tv_per_class(tv_ops, torch, boxes, scores, idxs, thr, dtype="float32") -> np.ndarray:
    """torchvision nms run on each class alone, merged by (decreasing score, index)."""
    idxs = np.asarray(idxs)
    scores = np.asarray(scores, dtype=np.float64)
    kept = []
    for c in np.unique(idxs):
        m = np.flatnonzero(idxs == c)
        kept += m[tv_nms(tv_ops, torch, np.asarray(boxes)[m], scores[m], thr, dtype)].tolist()
    return np.array(sorted(kept, key=lambda i: (-scores[i], i)), dtype=np.int64)


def nms_workload(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, 4) float64, scores (N,) float64), deterministic in ``seed``."""
    rng = np.random.default_rng(1000 + seed)
    if name == "random":
        b = _inputs.random_boxes(400, seed)
        return b, rng.uniform(0.0, 1.0, len(b))
    if name == "clustered":                      # many near duplicates
        return _inputs.clustered_boxes(600, seed, objects=6)
    if name == "ties":                           # many exact score ties (exact in fp16/bf16 too)
        b, _ = _inputs.clustered_boxes(500, seed + 1, objects=5)
        return b, rng.integers(0, 6, len(b)) / 8.0
    if name == "duplicates":                     # every box 5 times, ties among some copies
        base, _ = _inputs.clustered_boxes(60, seed + 2, objects=6)
        b = np.repeat(base, 5, axis=0)
        s = np.repeat(rng.uniform(0.1, 1.0, len(base)), 5)
        s[::2] = rng.uniform(0.1, 1.0, len(s[::2]))
        return b, s
    if name == "degenerate":                     # zero-area, inverted, half-inverted, touching
        clustered, _ = _inputs.clustered_boxes(120, seed + 3, objects=3)
        pts = np.repeat([[5.0, 5.0, 5.0, 5.0], [7, 0, 7, 9], [0, 3, 9, 3]], 4, axis=0)
        flat = clustered[:30].copy()
        flat[:, 3] = flat[:, 1]                  # zero height, inside the clusters
        inv = clustered[30:50][:, [2, 3, 0, 1]]  # inverted copies: positive area, IoU 0
        half = clustered[50:60][:, [0, 3, 2, 1]]  # half-inverted: negative area
        b = np.concatenate([_inputs.degenerate_boxes(), pts, flat, inv, half, clustered[60:]])
        return b, rng.uniform(0.0, 1.0, len(b))
    if name == "huge":                           # coordinates where float32 rounds
        far = _inputs.random_boxes(150, seed + 4) * 1e3 + 5e6
        near_dup, _ = _inputs.clustered_boxes(150, seed + 5, objects=3)
        overflow = np.array([[1e19, 1e19, 3e19, 3e19], [1.5e19, 1e19, 3e19, 3e19],
                             [0, 0, 2e19, 2e19], [0, 0, 2e19, 2e19]])   # float32 areas overflow
        b = np.concatenate([far, near_dup + 1e7, overflow])
        return b, rng.uniform(0.0, 1.0, len(b))
    raise ValueError(name)


def cast_pair(combo, boxes, scores, dtype: str, score_dt: str | None = None):
    """(boxes, scores) in the combo's library and ``dtype``, and the float64 values they hold."""
    x = combo.asarray(boxes, dtype)
    s = combo.asarray(scores, score_dt or dtype)
    return x, s, combo.rounded(x), combo.rounded(s)


# --------------------------------------------------------------------------- the oracle itself
def test_reference_nms_iou_is_the_box_iou_oracle():
    b = np.concatenate([nms_workload("degenerate")[0][:40], nms_workload("clustered")[0][:40]])
    for dtype in ("float32", "float64"):
        r = b.astype(dtype).astype(np.float64)
        mat = np.stack([ref.nms_iou(dtype, r, r[j]) for j in range(len(r))], axis=1)
        want = ref.iou(r, r)
        if dtype == "float64":
            np.testing.assert_allclose(mat, want, rtol=1e-15, atol=0)
        else:
            np.testing.assert_allclose(mat, want, rtol=2e-6, atol=1e-7)


def test_reference_known_values():
    assert ref.nms([[0, 0, 2, 2], [0, 0, 2, 1]], [0.9, 0.8], 0.5).tolist() == [0, 1]
    assert ref.nms([[0, 0, 2, 2], [0, 0, 2, 1]], [0.9, 0.8], 0.4999).tolist() == [0]
    assert ref.nms([[0, 0, 10, 1], [0, 0, 1, 1]], [0.9, 0.8], 0.1, "float32").tolist() == [0]
    assert ref.nms([[0, 0, 10, 1], [0, 0, 1, 1]], [0.9, 0.8], 0.1, "float64").tolist() == [0, 1]
    assert ref.rank([0.5, np.nan, 0.7, -np.inf, 0.7]) == [2, 4, 0, 3, 1]
    keep, s = ref.soft_nms([[0, 0, 2, 2], [0, 0, 2, 1], [5, 5, 6, 6]], [0.9, 0.8, 0.7], 0.5,
                           method="linear")
    assert keep.tolist() == [0, 2, 1] and np.allclose(s, [0.9, 0.7, 0.4])
    out = ref.matrix_nms([[0, 0, 2, 2], [0, 0, 2, 1]], [0.9, 0.8], [0, 0], "linear")
    assert np.allclose(out, [0.9, 0.4])


# --------------------------------------------------------------------------- nms parity
@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("workload", WORKLOADS)
def test_nms_matches_torchvision(combo, workload, dtype, threshold, tv_ops, tv_torch):
    boxes, scores = nms_workload(workload)
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    got = indices(combo, fastiou.nms(x, s, threshold))
    want = memo(("tv", workload, dtype, threshold),
                lambda: tv_nms(tv_ops, tv_torch, rb, rs, threshold, dtype))
    assert_indices(got, want, f"nms[{workload}, {dtype}, thr={threshold}] vs torchvision")
    oracle = memo(("ref", workload, dtype, threshold), lambda: ref.nms(rb, rs, threshold, dtype))
    assert_indices(got, oracle, f"nms[{workload}, {dtype}, thr={threshold}] vs reference")


def test_nms_workloads_are_meaningful():
    """The parity cases above exercise suppression, ties and duplicates (else they prove little)."""
    b, s = nms_workload("clustered")
    assert len(ref.nms(b, s, 0.5)) < len(b) / 4
    b, s = nms_workload("ties")
    assert len(np.unique(s)) <= 6
    b, s = nms_workload("duplicates")
    kept = ref.nms(b, s, 0.5)
    assert len(kept) < len(b) / 4 and len(ref.nms(b, s, 1.0)) == len(b)
    b, s = nms_workload("huge")
    far = b[:150].astype(np.float32).astype(np.float64)
    assert (far != b[:150]).any(), "float32 should round the far coordinates"


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7])
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("workload", ["random", "clustered", "ties", "duplicates", "degenerate"])
def test_nms_fp16_bf16(combo, workload, dtype, threshold, tv_ops, tv_torch):
    """fp16/bf16 boxes and scores: the reference on the rounded values, IoU in float32 (and
    torchvision on their float32 upcast, as its CUDA half path and autocast compute)."""
    boxes, scores = nms_workload(workload, seed=1)
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    got = indices(combo, fastiou.nms(x, s, threshold))
    want = memo(("ref-low", workload, dtype, threshold), lambda: ref.nms(rb, rs, threshold, "float32"))
    assert_indices(got, want, f"nms[{workload}, {dtype}, thr={threshold}] vs reference")
    tv = memo(("tv-low", workload, dtype, threshold), lambda: tv_nms(tv_ops, tv_torch, rb, rs, threshold))
    assert_indices(got, tv, f"nms[{workload}, {dtype}] vs torchvision on the float32 upcast")


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_nms_integer_boxes_are_computed_in_float64(combo, dtype, tv_ops, tv_torch):
    """Integer boxes near 3e7 with sides of a few units (float32 spacing there is 2): float64
    IoU, as torchvision on float64 boxes."""
    rng = np.random.default_rng(3)
    xy = np.array([3.0e7 + 1, 2.0e7 + 3]) + rng.integers(0, 40, size=(400, 2))
    boxes = np.concatenate([xy, xy + rng.integers(1, 12, size=(400, 2))], axis=1)
    scores = rng.uniform(0, 1, len(boxes))
    x = combo.asarray(boxes, dtype)
    s = combo.asarray(scores, "float64")
    for thr in (0.3, 0.5):
        got = indices(combo, fastiou.nms(x, s, thr))
        assert_indices(got, ref.nms(boxes, scores, thr, "float64"), "integer boxes vs reference")
        assert_indices(got, tv_nms(tv_ops, tv_torch, boxes, scores, thr, "float64"), "vs torchvision fp64")
        assert not np.array_equal(got, ref.nms(boxes, scores, thr, "float32")), "float32 would differ"


# --------------------------------------------------------------------------- threshold boundary
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int64"])
def test_nms_iou_exactly_at_the_threshold(combo, dtype, tv_ops, tv_torch):
    """[0,0,2,2] vs [0,0,2,1]: IoU exactly 0.5; strictly greater suppresses."""
    x = combo.asarray([[0, 0, 2, 2], [0, 0, 2, 1]], dtype)
    s = combo.asarray([0.9, 0.8], "float32")
    assert indices(combo, fastiou.nms(x, s, 0.5)).tolist() == [0, 1]
    assert indices(combo, fastiou.nms(x, s, 0.4999)).tolist() == [0]
    assert indices(combo, fastiou.nms(x, s, np.float32(0.5))).tolist() == [0, 1]
    b = tv_tensor(tv_torch, [[0, 0, 2, 2], [0, 0, 2, 1]])
    assert tv_ops.nms(b, tv_tensor(tv_torch, [0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert tv_ops.nms(b, tv_tensor(tv_torch, [0.9, 0.8]), 0.4999).tolist() == [0]


SUPPRESSED_AT_K = {1, 2, 3, 4, 6, 8}   # float32(k/10) > k/10 as doubles (SEMANTICS.md)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_nms_float32_iou_against_double_threshold(combo, dtype, tv_ops, tv_torch):
    """IoU exactly k/10 ([0,0,10,1] vs [0,0,k,1]): a float32 IoU is suppressed at threshold
    k/10 where float32(k/10) rounds above the double, for k in {1,2,3,4,6,8}; a float64 IoU
    never is."""
    for k in range(1, 11):
        boxes = [[0, 0, 10, 1], [0, 0, k, 1]]
        x = combo.asarray(boxes, dtype)
        s = combo.asarray([0.9, 0.8], dtype)
        got = indices(combo, fastiou.nms(x, s, k / 10)).tolist()
        suppressed = dtype != "float64" and k in SUPPRESSED_AT_K
        assert got == ([0] if suppressed else [0, 1]), f"k={k} [{dtype}]: got {got}"
        tvdt = "float64" if dtype == "float64" else "float32"
        assert tv_ops.nms(tv_tensor(tv_torch, boxes, tvdt), tv_tensor(tv_torch, [0.9, 0.8], tvdt),
                          k / 10).tolist() == got
        # the same pairs through batched_nms (one class) and nms_sweep
        one = combo.asarray([3, 3], "int64")
        assert indices(combo, fastiou.batched_nms(x, s, one, k / 10)).tolist() == got
        sweep = fastiou.nms_sweep(x, s, [k / 10, 1.0])
        assert indices(combo, sweep[0]).tolist() == got
        assert indices(combo, sweep[1]).tolist() == [0, 1]


# --------------------------------------------------------------------------- degenerate boxes
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nms_zero_area_and_inverted_boxes(combo, dtype, tv_ops, tv_torch):
    def run(boxes, scores, thr):
        return indices(combo, fastiou.nms(combo.asarray(boxes, dtype), combo.asarray(scores, dtype), thr)).tolist()

    points = [[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10]]
    for thr in (0.0, 0.5, 1.0):
        assert run(points, [0.9, 0.8, 0.7], thr) == [0, 1, 2], "zero-area boxes: NaN IoU never suppresses"
    # below 0, an IoU of 0 suppresses but the NaN of two points still does not
    assert run(points, [0.9, 0.8, 0.7], -0.1) == [0, 1]
    assert run(points, [0.7, 0.8, 0.9], -0.1) == [2]
    inverted = [[10, 10, 0, 0], [10, 10, 0, 0], [0, 0, 10, 10]]
    assert run(inverted, [0.9, 0.8, 0.7], 0.5) == [0, 1, 2], "inverted boxes: IoU 0 with everything"
    assert run(inverted, [0.9, 0.8, 0.7], 0.0) == [0, 1, 2]
    assert run(inverted, [0.9, 0.8, 0.7], -0.1) == [0]
    tvdt = "float64" if dtype == "float64" else "float32"
    for boxes in (points, inverted):
        for thr in (-0.1, 0.0, 0.5):
            want = tv_ops.nms(tv_tensor(tv_torch, boxes, tvdt), tv_tensor(tv_torch, [0.9, 0.8, 0.7], tvdt), thr)
            assert run(boxes, [0.9, 0.8, 0.7], thr) == want.tolist()


def test_nms_nan_coordinates_neither_suppress_nor_are_suppressed(combo):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, np.nan], [0, 0, 10, 10], [np.nan, 0, 10, 10]])
    x = combo.asarray(boxes, "float32")
    s = combo.asarray([0.5, 0.9, 0.4, 0.8], "float32")
    for thr in (-0.1, 0.0, 0.5):
        got = indices(combo, fastiou.nms(x, s, thr)).tolist()
        assert got == [1, 3, 0], f"thr={thr}: {got}"
        assert got == ref.nms(boxes, [0.5, 0.9, 0.4, 0.8], thr).tolist()


# --------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("n", [0, 1, 2, 1000])
def test_nms_sizes(combo, n, tv_ops, tv_torch):
    boxes, scores = _inputs.clustered_boxes(max(n, 1), seed=n, objects=max(1, n // 50))
    boxes, scores = boxes[:n], scores[:n]
    if n == 2:
        boxes[1] = boxes[0] + [0.5, 0.5, 0.5, 0.5]       # two real neighbours
    x, s, rb, rs = cast_pair(combo, boxes, scores, "float32")
    for thr in (0.0, 0.5):
        res = fastiou.nms(x, s, thr)
        got = indices(combo, res)
        want = tv_nms(tv_ops, tv_torch, rb, rs, thr)
        assert_indices(got, want, f"nms N={n} thr={thr}")
        if n == 2:
            assert got.tolist() == [int(np.argmax(rs))]


def test_nms_20000_boxes(combo, tv_ops, tv_torch):
    """One large case: 20 000 clustered boxes plus 2 000 scattered ones, tied scores included."""
    clustered, scores = _inputs.clustered_boxes(20000, seed=20, objects=200)
    scores = np.round(scores, 2)                          # ~100 distinct values: many ties
    x, s, rb, rs = cast_pair(combo, clustered, scores, "float32")
    for thr in (0.5, 0.7):
        got = indices(combo, fastiou.nms(x, s, thr))
        want = memo(("tv20k", thr), lambda: tv_nms(tv_ops, tv_torch, rb, rs, thr))
        assert_indices(got, want, f"nms N=20000 thr={thr}")
        assert 100 < len(got) < 20000


# --------------------------------------------------------------------------- ties and ranking
def test_nms_ties_keep_input_order(combo, tv_ops, tv_torch):
    same = [[0, 0, 10, 10]] * 4
    x = combo.asarray(same, "float32")
    assert indices(combo, fastiou.nms(x, combo.asarray([0.5, 0.7, 0.7, 0.7], "float32"), 0.5)).tolist() == [1]
    disjoint = [[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1]]
    x = combo.asarray(disjoint, "float32")
    s = combo.asarray([0.5, 0.5, 0.5, 0.5], "float32")
    assert indices(combo, fastiou.nms(x, s, 0.5)).tolist() == [0, 1, 2, 3]
    s = combo.asarray([0.5, 0.7, 0.5, 0.7], "float32")
    assert indices(combo, fastiou.nms(x, s, 0.5)).tolist() == [1, 3, 0, 2]
    # -0.0 and +0.0 are equal scores: input order
    s = combo.asarray([0.0, -0.0, 0.0, -0.0], "float32")
    assert indices(combo, fastiou.nms(x, s, 0.5)).tolist() == [0, 1, 2, 3]


def test_nms_scores_ranked_in_their_own_precision(combo):
    """float64 scores that float32 would merge still order the boxes."""
    x = combo.asarray([[0, 0, 10, 10]] * 3, "float32")
    s = combo.asarray([0.5, 0.5 + 1e-12, 0.5 - 1e-12], "float64")
    assert indices(combo, fastiou.nms(x, s, 0.5)).tolist() == [1]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nms_nan_and_infinite_scores(combo, dtype, tv_ops, tv_torch):
    """A NaN score ranks below every score, -inf included (torchvision's CPU sort puts it first)."""
    same = np.array([[0, 0, 10, 10]] * 4, dtype=np.float64)
    x = combo.asarray(same, dtype)
    assert indices(combo, fastiou.nms(x, combo.asarray([0.5, np.nan, 0.9, 0.1], dtype), 0.5)).tolist() == [2]
    disjoint = np.array([[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1], [8, 0, 9, 1], [10, 0, 11, 1]],
                        dtype=np.float64)
    scores = [0.5, np.nan, np.inf, -np.inf, np.nan, 0.1]
    got = indices(combo, fastiou.nms(combo.asarray(disjoint, dtype), combo.asarray(scores, dtype), 0.5))
    assert got.tolist() == [2, 0, 5, 3, 1, 4]
    tvdt = "float64" if dtype == "float64" else "float32"
    tv = tv_ops.nms(tv_tensor(tv_torch, disjoint, tvdt), tv_tensor(tv_torch, scores, tvdt), 0.5)
    assert tv.tolist() != got.tolist(), "torchvision's NaN-first ranking is the documented difference"
    # NaN scores on a realistic workload: NaN boxes come last and are suppressed by real ones
    boxes, sc = nms_workload("clustered", seed=3)
    sc = sc.copy()
    sc[::7] = np.nan
    x, s, rb, rs = cast_pair(combo, boxes, sc, dtype)
    for thr in (0.0, 0.5):
        got = indices(combo, fastiou.nms(x, s, thr))
        assert_indices(got, ref.nms(rb, rs, thr, compute_dtype(dtype)), f"NaN scores thr={thr}")


# --------------------------------------------------------------------------- batched_nms
def batched_workload(seed: int, n: int = 500, classes: int = 5, objects: int = 6):
    boxes, scores = _inputs.clustered_boxes(n, seed, objects=objects)
    labels = np.random.default_rng(seed).integers(0, classes, n)
    return boxes, scores, labels


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7])
@pytest.mark.parametrize("case", ["plain", "negative", "fp16", "fp64", "ties"])
def test_batched_nms_is_a_per_class_loop(combo, case, threshold, tv_ops, tv_torch):
    boxes, scores, labels = batched_workload(7)
    dtype = {"fp16": "float16", "fp64": "float64"}.get(case, "float32")
    if case == "negative":
        boxes = boxes - 700.0                  # most coordinates negative
    if case == "ties":
        scores = np.round(scores * 4) / 4
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    got = indices(combo, fastiou.batched_nms(x, s, combo.asarray(labels, "int64"), threshold))
    cdt = compute_dtype(dtype)
    want = memo(("tvloop", case, threshold), lambda: tv_per_class(tv_ops, tv_torch, rb, rs, labels, threshold, cdt))
    assert_indices(got, want, f"batched_nms[{case}, thr={threshold}] vs per-class torchvision")
    oracle = memo(("refb", case, threshold), lambda: ref.nms(rb, rs, threshold, cdt, idxs=labels))
    assert_indices(got, oracle, f"batched_nms[{case}] vs reference")
    assert_indices(oracle, ref.batched_nms_by_classes(rb, rs, labels, threshold, cdt), "the two references")


def test_batched_nms_1203_classes(combo, tv_ops, tv_torch):
    """LVIS-sized label space: 6000 boxes, 1203 classes."""
    boxes, scores, labels = batched_workload(8, n=6000, classes=1203, objects=8)
    x, s, rb, rs = cast_pair(combo, boxes, scores, "float32")
    got = indices(combo, fastiou.batched_nms(x, s, combo.asarray(labels, "int64"), 0.5))
    want = memo("lvis", lambda: tv_per_class(tv_ops, tv_torch, rb, rs, labels, 0.5))
    assert_indices(got, want, "batched_nms with 1203 classes")
    assert len(want) < 6000 - 100, "the workload should suppress within classes"
    # torchvision's own batched_nms takes its per-class loop path above 1000 CPU boxes: the same
    # boxes, but its final sort is not stable (float32 ties here), so compare as sets
    tv = memo("lvis-tv", lambda: tv_ops.batched_nms(tv_tensor(tv_torch, rb), tv_tensor(tv_torch, rs),
                                                    tv_torch.from_numpy(labels), 0.5).numpy())
    assert sorted(got.tolist()) == sorted(tv.tolist()), "batched_nms vs torchvision.ops.batched_nms"
    assert (np.diff(rs[got]) <= 0).all()


@pytest.mark.parametrize("idx_dtype", ["int8", "int16", "int32", "int64", "uint8", "float32", "float64"])
def test_batched_nms_idxs_dtypes(combo, idx_dtype, tv_ops, tv_torch):
    boxes, scores, labels = batched_workload(9, n=300)
    values = {"int8": [-3, 0, 5, 100, 127], "uint8": [0, 1, 7, 200, 255],
              "float32": [-3.5, 0.25, 0.5, 7.0, 1e6], "float64": [-3.5, 0.25, 0.5 + 1e-12, 0.5, 1e6]}
    ids = np.array(values.get(idx_dtype, [-70000 if idx_dtype != "int16" else -300, 0, 1, 2, 30000]))[labels]
    x, s, rb, rs = cast_pair(combo, boxes, scores, "float32")
    got = indices(combo, fastiou.batched_nms(x, s, combo.asarray(ids, idx_dtype), 0.5))
    want = memo("idx-dtypes", lambda: tv_per_class(tv_ops, tv_torch, rb, rs, labels, 0.5))
    assert_indices(got, want, f"batched_nms with {idx_dtype} idxs")
    if idx_dtype == "float64":   # 0.5 and 0.5 + 1e-12 are distinct classes
        assert len(np.unique(ids)) == 5


def test_batched_nms_one_class_equals_nms(combo):
    boxes, scores = nms_workload("clustered", seed=4)
    x, s, _, _ = cast_pair(combo, boxes, scores, "float32")
    for thr in (0.0, 0.5, 0.7):
        same = indices(combo, fastiou.batched_nms(x, s, combo.asarray(np.full(len(boxes), 7), "int64"), thr))
        assert_indices(same, indices(combo, fastiou.nms(x, s, thr)), f"one class, thr={thr}")
        apart = indices(combo, fastiou.batched_nms(x, s, combo.asarray(np.arange(len(boxes)), "int64"), thr))
        assert_indices(apart, ref.rank(combo.rounded(s)), "every box its own class: nothing suppressed")


def test_batched_nms_avoids_the_offset_trick_errors(combo, tv_ops, tv_torch):
    """Negative coordinates: torchvision's offset trick (boxes.max() + 1) lets classes overlap."""
    boxes = [[-100, -100, -10, -10], [-100, -100, -10, -10]]
    x = combo.asarray(boxes, "float32")
    s = combo.asarray([0.9, 0.8], "float32")
    got = indices(combo, fastiou.batched_nms(x, s, combo.asarray([0, 1], "int64"), 0.5))
    assert got.tolist() == [0, 1]
    trick = tv_ops.batched_nms(tv_tensor(tv_torch, boxes), tv_tensor(tv_torch, [0.9, 0.8]),
                               tv_torch.tensor([0, 1]), 0.5)
    assert trick.tolist() == [0], "torchvision's offset trick suppresses across classes here"
    # fp16: offsets of 80 classes x ~3000 overflow 65504; fastiou never adds offsets
    boxes, scores, _ = batched_workload(10, n=400)
    boxes = boxes * 2.5
    labels = np.random.default_rng(10).integers(0, 80, len(boxes))
    x, s, rb, rs = cast_pair(combo, boxes, scores, "float16")
    got = indices(combo, fastiou.batched_nms(x, s, combo.asarray(labels, "int64"), 0.5))
    assert_indices(got, tv_per_class(tv_ops, tv_torch, rb, rs, labels, 0.5), "fp16 with 80 classes")
    assert rb.max() * 80 > 65504


# --------------------------------------------------------------------------- nms_sweep
SWEEP = [0.0, 0.3, 0.5, 0.5, 0.7, 0.95, 1.0, -0.1]


@pytest.mark.parametrize("with_idxs", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nms_sweep_equals_nms_at_each_threshold(combo, dtype, with_idxs):
    boxes, scores, labels = batched_workload(11, n=400)
    scores = np.round(scores, 2)                       # ties too
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    idxs = combo.asarray(labels, "int64") if with_idxs else None
    res = fastiou.nms_sweep(x, s, SWEEP, idxs=idxs)
    assert isinstance(res, list) and len(res) == len(SWEEP)
    cdt = compute_dtype(dtype)
    for t, r in zip(SWEEP, res):
        got = indices(combo, r, f"sweep[{t}]")
        single = fastiou.batched_nms(x, s, idxs, t) if with_idxs else fastiou.nms(x, s, t)
        assert_indices(got, indices(combo, single), f"nms_sweep at {t} vs nms")
        want = memo(("sweep", dtype, with_idxs, t),
                    lambda: ref.nms(rb, rs, t, cdt, idxs=labels if with_idxs else None))
        assert_indices(got, want, f"nms_sweep at {t} vs reference")
    assert len(set(len(r) for r in res)) > 3, "the thresholds should keep different counts"
    # any sequence of numbers
    arr = fastiou.nms_sweep(x, s, np.array([0.5, 0.7]), idxs=idxs)
    assert_indices(indices(combo, arr[1]), indices(combo, res[4]), "thresholds as a numpy array")
    assert fastiou.nms_sweep(x, s, [], idxs=idxs) == []


def test_nms_sweep_empty_boxes(combo):
    x, s = combo.asarray(np.zeros((0, 4)), "float32"), combo.asarray(np.zeros(0), "float32")
    res = fastiou.nms_sweep(x, s, [0.3, 0.5])
    assert len(res) == 2
    for r in res:
        combo.check_native(r, dtype="int64", shape=(0,))


# --------------------------------------------------------------------------- soft_nms
@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("workload", ["random", "clustered"])
def test_soft_nms_matches_reference(combo, workload, dtype, method):
    boxes, scores = nms_workload(workload, seed=5)
    boxes, scores = boxes[:150], scores[:150]
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    params = dict(iou_threshold=0.3, sigma=0.5, min_score=0.05, method=method)
    keep, new = fastiou.soft_nms(x, s, **params)
    got = indices(combo, keep)
    combo.check_native(new, dtype=score_dtype(dtype), shape=got.shape)
    wk, ws = memo(("soft", workload, dtype, method),
                  lambda: ref.soft_nms(rb, rs, dtype=compute_dtype(dtype), **params))
    assert_indices(got, wk, f"soft_nms[{method}, {workload}, {dtype}] indices")
    assert_close(combo.to_numpy(new), ws, F64_TOL if dtype == "float64" else F32_TOL,
                 f"soft_nms[{method}] scores")
    ns = combo.to_numpy(new)
    assert (np.diff(ns) <= 0).all(), "new scores by decreasing value"
    assert (ns >= 0.05).all()
    if method != "hard" and workload == "clustered":
        assert (ns < rs[got]).any(), "the workload should decay some scores"


def test_soft_nms_known_values(combo):
    """IoU exactly 0.5 at threshold 0.5: linear and hard act (mmcv's `>=`), min_score is strict."""
    boxes = [[0, 0, 2, 2], [0, 0, 2, 1], [5, 5, 6, 6]]
    x = combo.asarray(boxes, "float32")
    s = combo.asarray([0.9, 0.75, 0.7], "float32")
    keep, new = fastiou.soft_nms(x, s, iou_threshold=0.5, min_score=1e-3, method="linear")
    assert indices(combo, keep).tolist() == [0, 2, 1]
    assert combo.to_numpy(new).tolist() == [np.float32(0.9), np.float32(0.7), 0.375]
    keep, new = fastiou.soft_nms(x, s, iou_threshold=0.5, method="hard")
    assert indices(combo, keep).tolist() == [0, 2]
    keep, _ = fastiou.soft_nms(x, s, iou_threshold=0.50001, method="hard")
    assert indices(combo, keep).tolist() == [0, 1, 2]
    # 0.75 * (1 - 0.5) = 0.375: kept at min_score 0.375, dropped just above
    keep, _ = fastiou.soft_nms(x, s, iou_threshold=0.5, min_score=0.375, method="linear")
    assert indices(combo, keep).tolist() == [0, 2, 1]
    keep, _ = fastiou.soft_nms(x, s, iou_threshold=0.5, min_score=0.376, method="linear")
    assert indices(combo, keep).tolist() == [0, 2]
    keep, new = fastiou.soft_nms(x, s, sigma=0.5, method="gaussian")
    assert indices(combo, keep).tolist() == [0, 2, 1]
    assert_close(combo.to_numpy(new), [0.9, 0.7, 0.75 * math.exp(-0.25 / 0.5)], 1e-6, "gaussian")


def test_soft_nms_tie_order_and_min_score(combo):
    disjoint = [[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1]]
    x = combo.asarray(disjoint, "float32")
    # equal current scores: lowest index first (fastiou's documented rule)
    keep, new = fastiou.soft_nms(x, combo.asarray([0.5, 0.5, 0.9, 0.5], "float32"))
    assert indices(combo, keep).tolist() == [2, 0, 1, 3]
    assert combo.to_numpy(new).tolist() == [np.float32(0.9), 0.5, 0.5, 0.5]
    # mmcv takes the best box before testing min_score, then drops every other box below it
    keep, _ = fastiou.soft_nms(x, combo.asarray([1e-4, 2e-4, 0.5, 5e-4], "float32"), min_score=3e-4)
    assert indices(combo, keep).tolist() == [2, 3]
    keep, _ = fastiou.soft_nms(x, combo.asarray([1e-4, 2e-4, 1e-5, 5e-5], "float32"), min_score=1e-3)
    assert indices(combo, keep).tolist() == [1]


def test_soft_nms_equal_decayed_scores_lowest_index_first(combo):
    """Boxes 1 and 3 overlap box 0 identically and tie after the decay; box 2 (higher) does not."""
    boxes = [[0, 0, 4, 4], [0, 0, 4, 2], [10, 10, 12, 12], [0, 2, 4, 4]]
    x = combo.asarray(boxes, "float32")
    keep, new = fastiou.soft_nms(x, combo.asarray([1.0, 0.5, 0.2, 0.5], "float32"),
                                 iou_threshold=0.3, method="linear")
    assert indices(combo, keep).tolist() == [0, 1, 3, 2]
    assert combo.to_numpy(new).tolist() == [1.0, 0.25, 0.25, np.float32(0.2)]
    wk, _ = ref.soft_nms(boxes, [1.0, 0.5, 0.2, 0.5], 0.3, method="linear")
    assert wk.tolist() == [0, 1, 3, 2]
    # the same with box 3 first in the input: still the lowest index first
    keep, _ = fastiou.soft_nms(combo.asarray([boxes[0], boxes[3], boxes[2], boxes[1]], "float32"),
                               combo.asarray([1.0, 0.5, 0.2, 0.5], "float32"), iou_threshold=0.3)
    assert indices(combo, keep).tolist() == [0, 1, 3, 2]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_soft_nms_empty_and_dtypes(combo, dtype):
    keep, new = fastiou.soft_nms(combo.asarray(np.zeros((0, 4)), dtype), combo.asarray(np.zeros(0), "float32"))
    combo.check_native(keep, dtype="int64", shape=(0,))
    combo.check_native(new, dtype=score_dtype(dtype), shape=(0,))
    keep, new = fastiou.soft_nms(combo.asarray([[0, 0, 4, 4], [0, 0, 4, 2]], dtype),
                                 combo.asarray([0.9, 0.8], "float32"))
    combo.check_native(keep, dtype="int64", shape=(2,))
    combo.check_native(new, dtype=score_dtype(dtype), shape=(2,))


@pytest.mark.parametrize("op", ["soft_nms", "matrix_nms", "multiclass_nms"])
def test_integer_boxes_give_float32_scores(combo, op):
    """API.md: float results follow torchvision's upcast rule, integer boxes -> float32
    (the soft_nms / matrix_nms / multiclass_nms docstrings: float32, float64 only for float64)."""
    boxes = np.array([[0, 0, 4, 4], [0, 0, 4, 2], [10, 10, 12, 12]])
    x = combo.asarray(boxes, "int64")
    s = combo.asarray([0.9, 0.8, 0.7], "float32")
    if op == "soft_nms":
        keep, new = fastiou.soft_nms(x, s, iou_threshold=0.3)
        assert indices(combo, keep).tolist() == [0, 2, 1]
        combo.check_native(new, dtype="float32", shape=(3,))
    elif op == "matrix_nms":
        res = fastiou.matrix_nms(x, s, combo.asarray([0, 0, 0], "int64"))
        combo.check_native(res, dtype="float32", shape=(3,))
    else:
        res = fastiou.multiclass_nms(x[None], combo.asarray([[[0.9], [0.8], [0.7]]], "float32"), 0.3)
        combo.check_native(res.scores, dtype="float32", shape=(1, 100))
        combo.check_native(res.boxes, dtype="float32", shape=(1, 100, 4))
        assert combo.to_numpy(res.indices)[0, :3].tolist() == [0, 2, -1]


# --------------------------------------------------------------------------- matrix_nms
@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_matrix_nms_matches_reference(combo, kernel, dtype):
    boxes, scores, labels = batched_workload(12, n=200, classes=3, objects=4)
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    res = fastiou.matrix_nms(x, s, combo.asarray(labels, "int64"), kernel=kernel, sigma=2.0)
    combo.check_native(res, dtype=score_dtype(dtype), shape=(len(boxes),))
    want = memo(("matrix", kernel, dtype),
                lambda: ref.matrix_nms(rb, rs, labels, kernel, 2.0, compute_dtype(dtype)))
    got = combo.to_numpy(res)
    assert_close(got, want, F64_TOL if dtype == "float64" else F32_TOL, f"matrix_nms[{kernel}, {dtype}]")
    assert (want < rs * 0.5).sum() > 20, "the workload should decay many scores"
    assert (got <= rs * (1 + 1e-6)).all()


def test_matrix_nms_known_values(combo):
    boxes = [[0, 0, 2, 2], [0, 0, 2, 1], [0, 0, 2, 1]]
    x = combo.asarray(boxes, "float64")
    s = combo.asarray([0.9, 0.8, 0.7], "float64")
    # label of box 2 differs: only box 1 is decayed, by box 0
    g = combo.to_numpy(fastiou.matrix_nms(x, s, combo.asarray([0, 0, 1], "int64"), "gaussian", 2.0))
    assert_close(g, [0.9, 0.8 * math.exp(-2.0 * 0.25), 0.7], 1e-15, "gaussian")
    lin = combo.to_numpy(fastiou.matrix_nms(x, s, combo.asarray([0, 0, 1], "int64"), "linear"))
    assert_close(lin, [0.9, 0.4, 0.7], 1e-15, "linear")
    # same label: box 2 overlaps box 1 (IoU 1, comp of box 1 = 0.5) and box 0 (IoU 0.5)
    g = combo.to_numpy(fastiou.matrix_nms(x, s, combo.asarray([4, 4, 4], "int64"), "gaussian", 2.0))
    d2 = min(1.0, math.exp(-2 * 0.25), math.exp(-2 * 1.0) / math.exp(-2 * 0.25))
    assert_close(g, [0.9, 0.8 * math.exp(-0.5), 0.7 * d2], 1e-15, "gaussian, one label")
    # sigma matters
    g1 = combo.to_numpy(fastiou.matrix_nms(x, s, combo.asarray([0, 0, 1], "int64"), "gaussian", 0.5))
    assert_close(g1, [0.9, 0.8 * math.exp(-0.5 * 0.25), 0.7], 1e-15, "sigma 0.5")


def test_matrix_nms_empty(combo):
    for dtype in ("float32", "float64"):
        res = fastiou.matrix_nms(combo.asarray(np.zeros((0, 4)), dtype), combo.asarray(np.zeros(0), dtype),
                                 combo.asarray(np.zeros(0), "int64"))
        combo.check_native(res, dtype=dtype, shape=(0,))


# --------------------------------------------------------------------------- multiclass_nms
def multiclass_inputs(bsz: int, shared: bool, seed: int = 13, n: int = 60, c: int = 4):
    rng = np.random.default_rng(seed)
    per = []
    for b in range(bsz):
        boxes, _ = _inputs.clustered_boxes(n * (1 if shared else c), seed + b, objects=5)
        per.append(boxes.reshape(n, 4) if shared else boxes.reshape(n, c, 4))
    scores = rng.uniform(0.0, 1.0, (bsz, n, c))
    scores[:, ::5, 1] = 0.5                 # exact ties (and exactly at a 0.5 threshold)
    return np.stack(per), scores


def check_multiclass(combo, res, want, dtype: str, what: str):
    num, boxes, scores, classes, idx = want
    bsz, k = classes.shape
    assert isinstance(res, tuple) and res._fields == ("num", "boxes", "scores", "classes", "indices")
    combo.check_native(res.num, dtype="int64", shape=(bsz,))
    combo.check_native(res.boxes, dtype=score_dtype(dtype), shape=(bsz, k, 4))
    combo.check_native(res.scores, dtype=score_dtype(dtype), shape=(bsz, k))
    combo.check_native(res.classes, dtype="int64", shape=(bsz, k))
    combo.check_native(res.indices, dtype="int64", shape=(bsz, k))
    assert combo.to_numpy(res.num).tolist() == num.tolist(), f"{what}: num"
    assert combo.to_numpy(res.indices).tolist() == idx.tolist(), f"{what}: indices"
    assert combo.to_numpy(res.classes).tolist() == classes.tolist(), f"{what}: classes"
    # boxes and scores are copies of the inputs (padded with 0): exact
    np.testing.assert_array_equal(combo.to_numpy(res.scores).astype(np.float64), scores, f"{what}: scores")
    np.testing.assert_array_equal(combo.to_numpy(res.boxes).astype(np.float64), boxes, f"{what}: boxes")


@pytest.mark.parametrize("max_detections", [5, 500])
@pytest.mark.parametrize("max_per_class", [None, 2])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-class"])
@pytest.mark.parametrize("bsz", [1, 3])
def test_multiclass_nms_matches_reference(combo, bsz, shared, max_per_class, max_detections):
    boxes, scores = multiclass_inputs(bsz, shared)
    x, s, rb, rs = cast_pair(combo, boxes, scores, "float32")
    res = fastiou.multiclass_nms(x, s, 0.5, score_threshold=0.05, max_per_class=max_per_class,
                                 max_detections=max_detections)
    want = memo(("mc", bsz, shared, max_per_class, max_detections),
                lambda: ref.multiclass_nms(rb, rs, 0.5, 0.05, max_per_class, max_detections))
    check_multiclass(combo, res, want, "float32", f"multiclass_nms B={bsz} shared={shared} "
                     f"cap={max_per_class} K={max_detections}")
    num = want[0]
    if max_detections == 5:
        assert (num == 5).all()
    else:
        assert (num < 500).all() and (num > 5).all(), "K larger than the candidates: rows padded"


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_multiclass_nms_dtypes_and_score_threshold(combo, dtype):
    boxes, scores = multiclass_inputs(2, False, seed=14)
    x, s, rb, rs = cast_pair(combo, boxes, scores, dtype)
    # score == 0.5 exactly is not a candidate (strictly greater)
    res = fastiou.multiclass_nms(x, s, 0.6, score_threshold=0.5, max_detections=40)
    want = ref.multiclass_nms(rb, rs, 0.6, 0.5, None, 40, compute_dtype(dtype))
    check_multiclass(combo, res, want, dtype, f"multiclass_nms[{dtype}]")
    assert (combo.to_numpy(res.scores)[combo.to_numpy(res.classes) >= 0] > 0.5).all()


def test_multiclass_nms_padding_and_empty(combo):
    boxes, scores = multiclass_inputs(2, True, seed=15, n=10, c=3)
    scores[1] = 0.0                                     # image 1: no candidates
    x, s = combo.asarray(boxes, "float32"), combo.asarray(scores, "float32")
    res = fastiou.multiclass_nms(x, s, 0.5, score_threshold=0.1, max_detections=50)
    num = combo.to_numpy(res.num)
    assert num[1] == 0 and 0 < num[0] < 50
    for b in range(2):
        k = num[b]
        assert (combo.to_numpy(res.boxes)[b, k:] == 0).all()
        assert (combo.to_numpy(res.scores)[b, k:] == 0).all()
        assert (combo.to_numpy(res.classes)[b, k:] == -1).all()
        assert (combo.to_numpy(res.indices)[b, k:] == -1).all()
        assert (combo.to_numpy(res.classes)[b, :k] >= 0).all()
    # empty batch, no boxes, no classes, K = 0
    for bsz, n, c, k in [(0, 5, 3, 7), (2, 0, 3, 7), (2, 5, 0, 7), (2, 5, 3, 0)]:
        res = fastiou.multiclass_nms(combo.asarray(np.zeros((bsz, n, 4)), "float32"),
                                     combo.asarray(np.ones((bsz, n, c)), "float32"), 0.5, max_detections=k)
        want = ref.multiclass_nms(np.zeros((bsz, n, 4)), np.ones((bsz, n, c)), 0.5, 0.0, None, k)
        check_multiclass(combo, res, want, "float32", f"empty B={bsz} N={n} C={c} K={k}")
    # max_per_class = 0 keeps nothing
    res = fastiou.multiclass_nms(x, s, 0.5, max_per_class=0)
    assert combo.to_numpy(res.num).tolist() == [0, 0]


@pytest.mark.parametrize("score_dt", ["float16", "float32", "float64"])
def test_multiclass_nms_uses_the_nms_iou_test(combo, score_dt):
    """Float32 boxes: the IoU is float32 whatever the scores' dtype, as in ``nms`` (an IoU of
    exactly 0.1 is suppressed at 0.1 because float32(0.1) > 0.1)."""
    boxes = np.array([[0, 0, 10, 1], [0, 0, 1, 1]], dtype=np.float64)
    x = combo.asarray(boxes, "float32")
    assert indices(combo, fastiou.nms(x, combo.asarray([0.9, 0.8], score_dt), 0.1)).tolist() == [0]
    scores = combo.asarray([[[0.9], [0.8]]], score_dt)
    for shaped in (boxes[None], boxes[None, :, None]):
        res = fastiou.multiclass_nms(combo.asarray(shaped, "float32"), scores, 0.1)
        assert combo.to_numpy(res.num).tolist() == [1], f"boxes {shaped.shape}, scores {score_dt}"
        assert combo.to_numpy(res.indices)[0, :2].tolist() == [0, -1]


def test_multiclass_nms_ties_by_box_then_class(combo):
    """Equal scores: by box index n, then class c."""
    boxes = np.array([[[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1]]], dtype=np.float64)
    scores = np.full((1, 3, 2), 0.5)
    res = fastiou.multiclass_nms(combo.asarray(boxes, "float32"), combo.asarray(scores, "float32"), 0.5,
                                 max_detections=4)
    assert combo.to_numpy(res.indices).tolist() == [[0, 0, 1, 1]]
    assert combo.to_numpy(res.classes).tolist() == [[0, 1, 0, 1]]


# --------------------------------------------------------------------------- results and inputs
def test_results_are_native_and_do_not_alias(combo):
    boxes, scores = nms_workload("clustered", seed=6)
    x, s, _, _ = cast_pair(combo, boxes[:100], scores[:100], "float32")
    before = combo.to_numpy(x), combo.to_numpy(s)
    for res in (fastiou.nms(x, s, 0.5), fastiou.batched_nms(x, s, combo.asarray(np.zeros(100), "int64"), 0.5),
                fastiou.nms_sweep(x, s, [0.5])[0], fastiou.soft_nms(x, s)[0]):
        indices(combo, res)
    combo.check_native(fastiou.soft_nms(x, s)[1], dtype="float32")
    np.testing.assert_array_equal(combo.to_numpy(x), before[0])
    np.testing.assert_array_equal(combo.to_numpy(s), before[1])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64"])
def test_empty_inputs(combo, dtype):
    e = combo.asarray(np.zeros((0, 4)), dtype)
    es = combo.asarray(np.zeros(0), "float32" if dtype == "int64" else dtype)
    combo.check_native(fastiou.nms(e, es, 0.5), dtype="int64", shape=(0,))
    combo.check_native(fastiou.batched_nms(e, es, combo.asarray(np.zeros(0), "int64"), 0.5), dtype="int64", shape=(0,))
    combo.check_native(fastiou.batched_nms(e, es, combo.asarray(np.zeros(0), "float32"), 0.5), dtype="int64",
                       shape=(0,))


@pytest.mark.parametrize("kind", ["transposed", "column_step", "row_step", "reversed"])
def test_non_contiguous_inputs(combo, kind):
    boxes, scores, labels = batched_workload(16, n=300)
    v = combo.view(boxes, "float32", kind)
    assert not combo.is_contiguous(v)
    wide = np.repeat(scores, 3)
    sv = combo.asarray(wide, "float32")[::3]
    lv = combo.asarray(np.repeat(labels, 2), "int64")[::2]
    assert not combo.is_contiguous(sv) and not combo.is_contiguous(lv)
    x, s = combo.asarray(boxes, "float32"), combo.asarray(scores, "float32")
    lab = combo.asarray(labels, "int64")
    assert_indices(indices(combo, fastiou.nms(v, sv, 0.5)), indices(combo, fastiou.nms(x, s, 0.5)), "nms")
    assert_indices(indices(combo, fastiou.batched_nms(v, sv, lv, 0.5)),
                   indices(combo, fastiou.batched_nms(x, s, lab, 0.5)), "batched_nms")
    assert_indices(indices(combo, fastiou.nms_sweep(v, sv, [0.3])[0]), indices(combo, fastiou.nms(x, s, 0.3)), "sweep")
    k1, s1 = fastiou.soft_nms(v, sv)
    k2, s2 = fastiou.soft_nms(x, s)
    assert_indices(indices(combo, k1), indices(combo, k2), "soft_nms")
    np.testing.assert_array_equal(combo.to_numpy(s1), combo.to_numpy(s2))
    np.testing.assert_array_equal(combo.to_numpy(fastiou.matrix_nms(v, sv, lv)),
                                  combo.to_numpy(fastiou.matrix_nms(x, s, lab)))
    mb = boxes[:60]
    ms = np.random.default_rng(16).uniform(0, 1, (1, 60, 3))
    mv = combo.view(mb, "float32", kind)[None]
    r1 = fastiou.multiclass_nms(mv, combo.asarray(ms, "float32"), 0.5)
    r2 = fastiou.multiclass_nms(combo.asarray(mb[None], "float32"), combo.asarray(ms, "float32"), 0.5)
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(combo.to_numpy(a), combo.to_numpy(b))


HOST_BACKENDS = ["cpp", "numba"]


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_multiclass_nms_reads_strided_scores(backend):
    """Host backends read scores through their strides: a transposed class-major (B, C, N) head
    (YOLO's), a sliced anchor-major view, and views they refuse (flipped, broadcast: copied by
    multiclass_nms) all give the contiguous result, exactly."""
    if not fastiou.backends()[backend]["available"]:
        pytest.skip(f"{backend} unavailable: {fastiou.backends()[backend]['reason']}")
    torch = pytest.importorskip("torch") if backend == "cpp" else None
    head = _inputs.yolo_head(2, seed=3, classes=12, dtype=np.float32)   # (B, 4 + C, N)
    p = head.swapaxes(1, 2)                                              # (B, N, 4 + C): a view
    boxes = np.ascontiguousarray(fastiou.box_convert(p[..., :4], "cxcywh", "xyxy"))
    _, more = multiclass_inputs(2, True, seed=21, n=boxes.shape[1], c=24)
    more = more.astype(np.float32)
    views = {"class-major": p[..., 4:],                                 # strides (.., 4, N * 4)
             "anchor-major slice": more[:, :, ::2],                      # strides (.., 96, 8)
             "flipped": np.ascontiguousarray(p[..., 4:][:, :, ::-1])[:, :, ::-1],
             "broadcast": np.broadcast_to(p[:1, :, 4:], p[..., 4:].shape)}
    with fastiou.use_backend(backend):
        for what, v in views.items():
            assert not v.flags.c_contiguous, what
            found = 0
            for conf, cap in ((0.25, None), (0.001, 2), (0.6, 0)):
                for args in ((boxes, v), (boxes[:, :, None].repeat(v.shape[2], 2), v)):
                    want = fastiou.multiclass_nms(args[0], np.ascontiguousarray(v), 0.7, conf, cap, 300)
                    found += int(want.num.sum())
                    got = fastiou.multiclass_nms(*args, 0.7, conf, cap, 300)
                    for f, a, b in zip(want._fields, got, want):
                        np.testing.assert_array_equal(a, b, f"{backend} {what} conf={conf}: {f}")
                    if torch is not None:
                        got = fastiou.multiclass_nms(torch.from_numpy(args[0]), torch.from_numpy(v.copy()).
                                                     transpose(1, 2).contiguous().transpose(1, 2), 0.7, conf, cap, 300)
                        for f, a, b in zip(want._fields, got, want):
                            np.testing.assert_array_equal(a.numpy(), b, f"torch {what} conf={conf}: {f}")
            assert found > 0, what


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_multiclass_nms_kernel_refuses_bad_strides(backend):
    """The kernels themselves (below multiclass_nms's copy) refuse strides they would read out of
    bounds or misaligned with: ValueError, never a read."""
    if not fastiou.backends()[backend]["available"]:
        pytest.skip(f"{backend} unavailable: {fastiou.backends()[backend]['reason']}")
    if backend == "cpp":
        from fastiou import _C as mod
    else:
        from fastiou._backends import numba_cpu as mod
    b, n, c, k = 2, 8, 3, 5
    boxes = np.zeros((b, n, 1, 4), np.float32)
    outs = (np.zeros(b, np.int64), np.zeros((b, k, 4), np.float32), np.zeros((b, k), np.float32),
            np.zeros((b, k), np.int64), np.zeros((b, k), np.int64))
    raw = np.zeros(b * n * c * 2 + 1, np.float32)
    bad = {"negative": np.ones((b, c, n), np.float32)[:, :, ::-1].swapaxes(1, 2),
           "zero": np.broadcast_to(np.ones((1, n, c), np.float32), (b, n, c)),
           "unaligned": raw.view(np.uint8)[1:1 + b * n * c * 4].view(np.float32).reshape(b, n, c),
           "odd": np.lib.stride_tricks.as_strided(raw, (b, n, c), (n * c * 4, c * 4, 2)),
           "past the end": np.lib.stride_tricks.as_strided(raw, (b, n, c), (n * c * 16, c * 4, 4)),
           "far past": np.lib.stride_tricks.as_strided(raw[1:], (b, n, c), (2 ** 60, 4, 4))}
    for what, s in bad.items():
        with pytest.raises(ValueError):
            mod.multiclass_nms(boxes, s, 0.5, 0.0, -1, *outs)
    # extent-1 axes may carry any stride: only index 0 is read
    one = np.lib.stride_tricks.as_strided(np.ones((1, n, 1), np.float32), (1, n, 1), (0, 4, -4))
    mod.multiclass_nms(boxes[:1], one, 0.5, 0.0, -1, *(o[:1] for o in outs))
    assert outs[0][0] == k and outs[4][0].tolist() == list(range(k))


# --------------------------------------------------------------------------- backends agree
def test_backends_agree(combo):
    """This combo against numpy on the other host backend: identical indices, scores within 1e-6."""
    baseline = "numba" if combo.backend == "cpp" else "cpp"
    if not fastiou.backends()[baseline]["available"]:
        pytest.skip(f"baseline backend {baseline} unavailable: {fastiou.backends()[baseline]['reason']}")
    boxes, scores, labels = batched_workload(17, n=800)
    boxes = np.concatenate([boxes, nms_workload("degenerate")[0]])
    scores = np.round(np.concatenate([scores, np.linspace(0, 1, len(boxes) - len(scores))]), 2)
    labels = np.concatenate([labels, np.zeros(len(boxes) - len(labels), np.int64)])
    mb, ms = multiclass_inputs(2, False, seed=17)

    def run(conv):
        b, s, lab = conv(boxes, "float32"), conv(scores, "float32"), conv(labels, "int64")
        out = {"nms": fastiou.nms(b, s, 0.5), "batched": fastiou.batched_nms(b, s, lab, 0.6)}
        for i, r in enumerate(fastiou.nms_sweep(b, s, [0.0, 0.4, 0.8], lab)):
            out[f"sweep{i}"] = r
        for m in ("linear", "gaussian", "hard"):
            out[f"soft-{m}"], out[f"soft-{m}-scores"] = fastiou.soft_nms(b[:300], s[:300], method=m)
        out["matrix"] = fastiou.matrix_nms(b[:300], s[:300], lab[:300])
        res = fastiou.multiclass_nms(conv(mb, "float32"), conv(ms, "float32"), 0.5, 0.1, 3, 30)
        out.update({f"mc-{k}": v for k, v in res._asdict().items()})
        return out

    got = {k: combo.to_numpy(v) for k, v in run(combo.asarray).items()}
    with fastiou.use_backend(baseline):
        want = run(host_cast)
    for k, w in want.items():
        g = got[k]
        assert g.dtype == w.dtype, f"{k}: dtype {g.dtype} vs {w.dtype}"
        if w.dtype.kind == "i":
            assert_indices(g.reshape(-1), w.reshape(-1), f"{k}: {combo} vs numpy-{baseline}")
        else:
            assert_close(g, w, 1e-6, f"{k}: {combo} vs numpy-{baseline}")


# --------------------------------------------------------------------------- bad input
SHAPE_MSG = re.compile(r"5,\s*3")


def test_shape_errors(combo):
    good = combo.asarray(_inputs.random_boxes(5, 0), "float32")
    gs = combo.asarray(np.linspace(0, 1, 5), "float32")
    bad = combo.asarray(np.zeros((5, 3)), "float32")
    lab = combo.asarray(np.zeros(5), "int64")
    calls = [lambda b, s: fastiou.nms(b, s, 0.5), lambda b, s: fastiou.batched_nms(b, s, lab, 0.5),
             lambda b, s: fastiou.nms_sweep(b, s, [0.5]), lambda b, s: fastiou.soft_nms(b, s),
             lambda b, s: fastiou.matrix_nms(b, s, lab)]
    for fn in calls:
        with pytest.raises(fastiou.InputError, match="boxes") as ei:
            fn(bad, gs)
        assert SHAPE_MSG.search(str(ei.value)), f"message does not show the received shape: {ei.value}"
        for wrong in (np.zeros(4), np.zeros((5, 4, 1, 1)), np.zeros(())):
            with pytest.raises(fastiou.InputError):
                fn(combo.asarray(wrong, "float32"), gs)
        if fn is not calls[-1]:          # matrix_nms reads (N, H, W) as masks
            with pytest.raises(fastiou.InputError):
                fn(combo.asarray(np.zeros((5, 4, 1)), "float32"), gs)
        for wrong in (np.zeros(6), np.zeros(4), np.zeros((5, 1)), np.zeros(())):
            with pytest.raises(fastiou.InputError, match="scores"):
                fn(good, combo.asarray(wrong, "float32"))
    for wrong in (np.zeros(6), np.zeros((5, 1)), np.zeros(4)):
        with pytest.raises(fastiou.InputError, match="idxs"):
            fastiou.batched_nms(good, gs, combo.asarray(wrong, "int64"), 0.5)
        with pytest.raises(fastiou.InputError, match="idxs"):
            fastiou.nms_sweep(good, gs, [0.5], idxs=combo.asarray(wrong, "int64"))
        with pytest.raises(fastiou.InputError, match="labels"):
            fastiou.matrix_nms(good, gs, combo.asarray(wrong, "int64"))
    with pytest.raises(fastiou.InputError) as ei:
        fastiou.nms(good, combo.asarray(np.zeros(6), "float32"), 0.5)
    assert "5" in str(ei.value) and "6" in str(ei.value), str(ei.value)


def test_multiclass_shape_errors(combo):
    b = combo.asarray(np.zeros((2, 5, 4)), "float32")
    s = combo.asarray(np.zeros((2, 5, 3)), "float32")
    for boxes, scores in [(b, combo.asarray(np.zeros((2, 5)), "float32")),     # scores not 3-D
                          (combo.asarray(np.zeros((2, 5, 3)), "float32"), s),  # last dim 3
                          (combo.asarray(np.zeros((2, 6, 4)), "float32"), s),  # N differs
                          (combo.asarray(np.zeros((3, 5, 4)), "float32"), s),  # B differs
                          (combo.asarray(np.zeros((2, 5, 2, 4)), "float32"), s),  # C differs
                          (combo.asarray(np.zeros((5, 4)), "float32"), s)]:
        with pytest.raises(fastiou.InputError):
            fastiou.multiclass_nms(boxes, scores, 0.5)


def test_bad_scalars(combo):
    x = combo.asarray(_inputs.random_boxes(5, 0), "float32")
    s = combo.asarray(np.linspace(0, 1, 5), "float32")
    lab = combo.asarray(np.zeros(5), "int64")
    mb, ms = combo.asarray(np.zeros((1, 5, 4)), "float32"), combo.asarray(np.ones((1, 5, 2)), "float32")
    for value in (math.nan, math.inf, -math.inf):
        for fn in (lambda v: fastiou.nms(x, s, v), lambda v: fastiou.batched_nms(x, s, lab, v),
                   lambda v: fastiou.nms_sweep(x, s, [0.5, v]), lambda v: fastiou.soft_nms(x, s, iou_threshold=v),
                   lambda v: fastiou.soft_nms(x, s, sigma=v), lambda v: fastiou.soft_nms(x, s, min_score=v),
                   lambda v: fastiou.matrix_nms(x, s, lab, sigma=v), lambda v: fastiou.multiclass_nms(mb, ms, v),
                   lambda v: fastiou.multiclass_nms(mb, ms, 0.5, score_threshold=v)):
            with pytest.raises(ValueError):
                fn(value)
    for value in ("0.5x", None, [0.5], object()):
        with pytest.raises(TypeError):
            fastiou.nms(x, s, value)
    with pytest.raises(TypeError):
        fastiou.nms_sweep(x, s, ["a", 0.5])
    with pytest.raises(TypeError):
        fastiou.batched_nms(x, s, None, 0.5)
    for method in ("naive", "Linear", "", "soft"):
        with pytest.raises(ValueError, match="method"):
            fastiou.soft_nms(x, s, method=method)
    for sigma in (0.0, -1.0):
        with pytest.raises(ValueError, match="sigma"):
            fastiou.soft_nms(x, s, sigma=sigma, method="gaussian")
    for kernel in ("gauss", "Linear", ""):
        with pytest.raises(ValueError, match="kernel"):
            fastiou.matrix_nms(x, s, lab, kernel=kernel)
    # (N, H, W) is read as masks (tests/test_masks.py): empty masks decay nothing
    res = fastiou.matrix_nms(combo.asarray(np.zeros((len(lab), 8, 8)), "uint8"), s, lab)
    combo.check_native(res, dtype="float32", shape=(len(lab),))
    assert np.array_equal(combo.to_numpy(res), combo.to_numpy(s).astype(np.float32))
    for cap in (-1, -5, 1.5, True):
        with pytest.raises(ValueError, match="max_per_class"):
            fastiou.multiclass_nms(mb, ms, 0.5, max_per_class=cap)
    for k in (-1, 2.0, False, None):
        with pytest.raises(ValueError, match="max_detections"):
            fastiou.multiclass_nms(mb, ms, 0.5, max_detections=k)
    # numpy integers are integers
    res = fastiou.multiclass_nms(mb, ms, 0.5, max_per_class=np.int64(1), max_detections=np.int32(3))
    combo.check_native(res.indices, dtype="int64", shape=(1, 3))


def test_wrong_types_are_type_errors(combo):
    s = combo.asarray(np.linspace(0, 1, 5), "float32")
    for value in ("boxes", None, object(), {"a": 1}):
        with pytest.raises(TypeError):
            fastiou.nms(value, s, 0.5)
        with pytest.raises(TypeError):
            fastiou.soft_nms(value, s)
    text = np.array([["a", "b", "c", "d"]] * 5)
    with pytest.raises(fastiou.InputError, match="boxes"):
        fastiou.nms(text, np.linspace(0, 1, 5), 0.5)
