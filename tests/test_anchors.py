"""Anchors and matching: parity with torchvision (AnchorGenerator, box_iou + Matcher), with
float64 references of detectron2's and mmdet's published formulas, and the bounded memory of
the fused matcher.

Every test taking ``combo`` runs per (array library, device, backend) as in conftest.py.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastiou
from conftest import require
from fastiou.anchors import AnchorGenerator, box_iou_max, match_boxes

FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
FPN_RATIOS = ((0.5, 1.0, 2.0),) * 5


def _grids(h, w, strides=(4, 8, 16, 32, 64)):
    return [(math.ceil(h / s), math.ceil(w / s)) for s in strides]


# --------------------------------------------------------------------------- torchvision
def _tv_anchors(torch, sizes, ratios, image_hw, grids, batch=2, dtype="float32"):
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TV
    from torchvision.models.detection.image_list import ImageList

    tv = TV(sizes, ratios)
    img = ImageList(torch.zeros(batch, 3, *image_hw), [tuple(image_hw)] * batch)
    feats = [torch.zeros(batch, 1, h, w, dtype=getattr(torch, dtype)) for h, w in grids]
    return tv, img, feats, tv(img, feats)


@pytest.mark.parametrize("image_hw, sizes, ratios", [
    ((800, 1344), FPN_SIZES, FPN_RATIOS),                       # Faster R-CNN FPN, padded 800x1333
    ((333, 517), FPN_SIZES, FPN_RATIOS),                        # odd sizes: strides by floor division
    ((70, 70), ((37, 50), (20, 90.5)), ((0.25, 0.5, 1.0, 3.0), (1.0, 1.7))),  # several per level
    ((600, 1000), (32, 64, 128), (0.5, 1.0, 2.0)),              # flat: one size per level
])
def test_torchvision_bit_exact(image_hw, sizes, ratios, tv_ops, tv_torch):
    torch = tv_torch
    ns = len(sizes)
    grids = _grids(*image_hw)[:ns] if ns != 2 else [(4, 4), (3, 5)]
    tv, img, feats, ref = _tv_anchors(torch, sizes, ratios, image_hw, grids)
    gen = AnchorGenerator(sizes, ratios)
    got = gen(img, feats)
    assert len(got) == len(ref) == 2
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype and a.device == b.device and a.shape == b.shape
        assert torch.equal(a, b)
    assert got[0].data_ptr() != got[1].data_ptr()  # one tensor per image, as torchvision
    for c, r in zip(gen.cell_anchors, tv.cell_anchors):
        np.testing.assert_array_equal(c, r.numpy())
    assert gen.num_anchors_per_location() == tv.num_anchors_per_location()
    # The same anchors from shapes alone, as numpy.
    flat = gen(image_hw, grids)
    assert isinstance(flat, np.ndarray) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, ref[0].numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_torchvision_dtypes(dtype, tv_ops, tv_torch):
    torch = tv_torch
    image_hw = (2403, 3001)  # odd centres past 2048: float16 rounds them before the add, as torch
    grids = _grids(*image_hw, strides=(8, 16, 32, 64, 128))
    _, img, feats, ref = _tv_anchors(torch, FPN_SIZES, FPN_RATIOS, image_hw, grids, batch=1, dtype=dtype)
    got = AnchorGenerator()(img, feats)
    assert got[0].dtype == getattr(torch, dtype)
    assert torch.equal(got[0], ref[0])


def test_torch_module_in_a_model(tv_ops, tv_torch):
    torch = tv_torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    from torchvision.models.detection.image_list import ImageList

    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    old = model.rpn.anchor_generator
    model.rpn.anchor_generator = AnchorGenerator().torch_module()  # nn.Module: assignable
    img = ImageList(torch.zeros(1, 3, 256, 320), [(250, 320)])
    feats = [torch.zeros(1, 1, 256 // s, 320 // s) for s in (4, 8, 16, 32)] + [torch.zeros(1, 1, 4, 5)]
    assert torch.equal(model.rpn.anchor_generator(img, feats)[0], old(img, feats)[0])


def test_anchors_on_every_backend(combo):
    feats = [combo.empty((1, 2, h, w), "float32") for h, w in _grids(800, 1344)]
    got = combo.to_numpy(AnchorGenerator()((800, 1344), feats))
    with fastiou.use_backend("cpp"):
        want = AnchorGenerator()((800, 1344), _grids(800, 1344))
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- detectron2 / mmdet
def _d2_reference(sizes, ratios, strides, offset, grids):
    """detectron2 DefaultAnchorGenerator's formula in float64 (SEMANTICS.md 2.5)."""
    out = []
    for (h, w), s, sz, rt in zip(grids, strides, sizes, ratios):
        cells = []
        for size in sz:                       # size-major
            for ar in rt:
                cw = math.sqrt(size * size / ar)
                ch = ar * cw
                cells.append([-cw / 2, -ch / 2, cw / 2, ch / 2])
        cells = np.asarray(cells)
        sx = (np.arange(w) + offset) * s
        sy = (np.arange(h) + offset) * s
        yy, xx = np.meshgrid(sy, sx, indexing="ij")
        shifts = np.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        out.append((shifts + cells[None]).reshape(-1, 4))
    return out


@pytest.mark.parametrize("offset", [0.0, 0.5, 0.3])
@pytest.mark.parametrize("stride", [8, 12, 7])
def test_detectron2_torch_arithmetic(offset, stride, tv_torch):
    """detectron2's grid as torch computes it (SEMANTICS.md 2.5: float32 arange from
    offset * stride by stride, plus float32 cell anchors), bit for bit."""
    torch = tv_torch
    sizes, ratios, grid = [[32, 45.25, 64]], [[0.5, 1.0, 2.0, 3.3]], (9, 13)
    cells = torch.tensor(AnchorGenerator(sizes, ratios, convention="detectron2", strides=[stride],
                                         offset=offset).cell_anchors[0])
    rows = []  # detectron2's generate_cell_anchors: Python floats, size-major, then float32
    for size in sizes[0]:
        for ar in ratios[0]:
            w = math.sqrt(size ** 2.0 / ar)
            h = ar * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    assert torch.equal(cells, torch.tensor(rows))
    sx = torch.arange(offset * stride, grid[1] * stride, step=stride, dtype=torch.float32)
    sy = torch.arange(offset * stride, grid[0] * stride, step=stride, dtype=torch.float32)
    yy, xx = torch.meshgrid(sy, sx, indexing="ij")
    shifts = torch.stack((xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)), dim=1)
    want = (shifts.view(-1, 1, 4) + cells.view(1, -1, 4)).reshape(-1, 4)
    gen = AnchorGenerator(sizes, ratios, convention="detectron2", strides=[stride], offset=offset)
    np.testing.assert_array_equal(gen.grid_anchors([grid], [stride])[0], want.numpy())


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_detectron2_formula(offset):
    sizes = [[32, 40.3, 50.8], [64, 80.6, 101.6]]
    ratios = [[0.5, 1.0, 2.0]]
    strides = [8, 16]
    grids = [(7, 9), (4, 5)]
    gen = AnchorGenerator(sizes, ratios, convention="detectron2", offset=offset, strides=strides)
    got = gen.grid_anchors(grids, strides)
    ref = _d2_reference(sizes, [ratios[0]] * 2, strides, offset, grids)
    for g, r in zip(got, ref):
        assert g.dtype == np.float32
        # float32 cell anchors and one float32 addition: within float32 rounding of the formula
        np.testing.assert_allclose(g, r, rtol=0, atol=np.abs(r).max() * 2 ** -23 * 2)
    whole = gen((56, 72), grids)
    np.testing.assert_array_equal(whole, np.concatenate(got))
    # size-major order: the first three cells share a size (area), ratios vary
    c = gen.cell_anchors[0].astype(np.float64)
    areas = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
    np.testing.assert_allclose(areas[:3], 32.0 ** 2, rtol=1e-6)
    # flat sizes are broadcast to every level (detectron2's _broadcast_params)
    flat = AnchorGenerator([32, 64], [1.0], convention="detectron2", strides=[8, 16])
    assert flat.num_anchors_per_location() == [2, 2]


def _mmdet_reference(base_sizes, scales, ratios, strides, center_offset, scale_major, grids):
    """mmdet AnchorGenerator's formula in float64."""
    out = []
    for b, s, (h, w) in zip(base_sizes, strides, grids):
        hr = np.sqrt(np.asarray(ratios, float))
        wr = 1 / hr
        sc = np.asarray(scales, float)
        if scale_major:
            ws, hs = (b * wr[:, None] * sc[None]).ravel(), (b * hr[:, None] * sc[None]).ravel()
        else:
            ws, hs = (b * sc[:, None] * wr[None]).ravel(), (b * sc[:, None] * hr[None]).ravel()
        xc = yc = center_offset * b
        cells = np.stack([xc - 0.5 * ws, yc - 0.5 * hs, xc + 0.5 * ws, yc + 0.5 * hs], -1)
        sx, sy = np.arange(w) * s, np.arange(h) * s
        yy, xx = np.meshgrid(sy, sx, indexing="ij")
        shifts = np.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        out.append((cells[None] + shifts).reshape(-1, 4))
    return out


@pytest.mark.parametrize("scale_major", [True, False])
@pytest.mark.parametrize("center_offset", [0.0, 0.5])
def test_mmdet_retinanet_formula(scale_major, center_offset):
    strides = [8, 16, 32]
    grids = [(6, 7), (3, 4), (2, 2)]
    gen = AnchorGenerator.from_mmdet(strides, [0.5, 1.0, 2.0], octave_base_scale=4, scales_per_octave=3,
                                     scale_major=scale_major, center_offset=center_offset)
    scales = [2 ** (i / 3) * 4 for i in range(3)]
    ref = _mmdet_reference(strides, scales, [0.5, 1.0, 2.0], strides, center_offset, scale_major, grids)
    got = gen((48, 56), grids)
    np.testing.assert_allclose(got, np.concatenate(ref), rtol=0, atol=256 * 2 ** -23 * 4)
    assert gen.num_anchors_per_location() == [9, 9, 9]
    # The mmdet convention from sizes (base size x scale): the same boxes, within rounding.
    if scale_major and center_offset == 0:
        g2 = AnchorGenerator([[8 * s for s in scales]], [0.5, 1.0, 2.0], convention="mmdet", strides=[8])
        np.testing.assert_allclose(g2.grid_anchors(grids[:1], [8])[0], ref[0], rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=((32,), ())), r"sizes\[1\].*empty"),
    (dict(sizes=((32,), (0,))), r"sizes\[1\]"),
    (dict(sizes=((32,), (-4,))), r"sizes\[1\]"),
    (dict(sizes=((32,),), aspect_ratios=((0.0,),)), r"aspect_ratios\[0\]"),
    (dict(sizes=((32,), (64,)), aspect_ratios=((1.0,), (1.0,), (2.0,))), r"aspect_ratios: 3 levels"),
    (dict(sizes=(), aspect_ratios=(1.0,)), r"sizes"),
    (dict(convention="yolo"), r"convention"),
    (dict(convention="detectron2", offset=1.0), r"offset"),
    (dict(sizes=((32,), (64,)), aspect_ratios=(1.0,), convention="detectron2", strides=[8]), r"strides"),
    (dict(strides=[8] * 5), r"strides"),
])
def test_bad_generator_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AnchorGenerator(**kwargs)


def test_bad_call_arguments():
    gen = AnchorGenerator()
    with pytest.raises(ValueError, match=r"feature_shapes: 2 feature maps.*5 levels"):
        gen((800, 800), [(200, 200), (100, 100)])
    with pytest.raises(ValueError, match=r"feature_shapes\[0\].*larger than the image"):
        gen((100, 100), [(200, 200)] + [(1, 1)] * 4)
    with pytest.raises(ValueError, match=r"feature_shapes\[1\].*empty"):
        gen((100, 100), [(20, 20), (0, 5)] + [(1, 1)] * 3)
    with pytest.raises(ValueError, match=r"strides"):
        gen.grid_anchors([(2, 2)] * 5, [8, 16])


# --------------------------------------------------------------------------- matching
def _random_case(rng, n, m, grid=False):
    if grid:  # integer boxes on a coarse grid: many exact ties
        xy = rng.integers(0, 6, (n, 2)) * 4.0
        a = np.concatenate([xy, xy + rng.integers(1, 4, (n, 2)) * 4.0], 1)
        gxy = rng.integers(0, 6, (m, 2)) * 4.0
        g = np.concatenate([gxy, gxy + rng.integers(1, 4, (m, 2)) * 4.0], 1)
    else:
        xy = rng.uniform(0, 200, (n, 2))
        a = np.concatenate([xy, xy + rng.uniform(4, 80, (n, 2))], 1)
        gxy = rng.uniform(0, 220, (m, 2))
        g = np.concatenate([gxy, gxy + rng.uniform(2, 120, (m, 2))], 1)
        a[: n // 10] = a[n // 10: 2 * (n // 10)]  # duplicate anchors: ties in the columns
        g[m // 2:] = g[: m - m // 2]              # duplicate gt: ties in the rows
    return a, g


def _tv_match(torch, anchors, gt, high, low, lowq):
    from torchvision.models.detection._utils import Matcher
    from torchvision.ops import box_iou

    return Matcher(high, low, lowq)(box_iou(gt, anchors))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grid", [False, True])
@pytest.mark.parametrize("lowq", [True, False])
def test_match_boxes_equals_torchvision(combo, dtype, grid, lowq, tv_ops, tv_torch):
    torch = tv_torch
    rng = np.random.default_rng(7 + grid)
    for n, m in ((600, 9), (300, 1), (1500, 40)):
        a, g = _random_case(rng, n, m, grid)
        ta, tg = torch.from_numpy(a.astype(dtype)), torch.from_numpy(g.astype(dtype))
        for high, low in ((0.7, 0.3), (0.5, 0.4), (0.5, 0.5)):
            want = _tv_match(torch, ta, tg, high, low, lowq).numpy()
            got = match_boxes(combo.asarray(a, dtype), combo.asarray(g, dtype), high, low, lowq)
            combo.check_native(got, dtype="int64", shape=(n,))
            np.testing.assert_array_equal(combo.to_numpy(got), want)
        v, i = box_iou_max(combo.asarray(a, dtype), combo.asarray(g, dtype))
        rv, ri = tv_ops.box_iou(ta, tg).max(dim=1)
        np.testing.assert_array_equal(combo.to_numpy(v), rv.numpy())  # bit for bit
        np.testing.assert_array_equal(combo.to_numpy(i), ri.numpy())


def test_thresholds_exactly_at_high_and_low(combo, tv_ops, tv_torch):
    torch = tv_torch
    # IoU of [0,0,10,10] with [0,0,10,h] is h/10: exactly 0.3, 0.5, 0.7 as float32 values
    # rounded from the quotient, equal to float32(0.3) etc. when the thresholds are compared.
    anchors = np.array([[0, 0, 10, h] for h in (3, 5, 7, 2, 10)], np.float32)
    gt = np.array([[0, 0, 10, 10]], np.float32)
    for high, low in ((0.7, 0.3), (0.5, 0.3), (0.7, 0.5), (0.3, 0.3)):
        for lowq in (False, True):
            want = _tv_match(torch, torch.from_numpy(anchors), torch.from_numpy(gt), high, low, lowq).numpy()
            got = combo.to_numpy(match_boxes(combo.asarray(anchors), combo.asarray(gt), high, low, lowq))
            np.testing.assert_array_equal(got, want)
    iou = (anchors[:, 3] * 10) / np.float32(100)
    assert iou[0] == np.float32(0.3) and iou[2] == np.float32(0.7)


def test_low_quality_rule_restores_the_anchors_own_best(combo, tv_ops, tv_torch):
    torch = tv_torch
    # Anchor 0 holds gt 1's best IoU (0.25) but its own best gt is 0 (IoU 0.5 < high): the
    # rule restores gt 0 (torchvision's all_matches), not gt 1.
    anchors = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    gt = np.array([[0, 0, 10, 5], [0, 0, 20, 20], [200, 200, 210, 210]], np.float32)
    want = _tv_match(torch, torch.from_numpy(anchors), torch.from_numpy(gt), 0.7, 0.3, True).numpy()
    got = combo.to_numpy(match_boxes(combo.asarray(anchors), combo.asarray(gt)))
    np.testing.assert_array_equal(got, want)
    # gt 2 overlaps nothing: its best IoU is 0, so every anchor ties it and gets its own best back
    assert got.tolist() == [0, 0]


def test_nan_and_degenerate_boxes(combo, tv_ops, tv_torch):
    torch = tv_torch
    anchors = np.array([[0, 0, 10, 10], [5, 5, 5, 5], [np.nan, 0, 4, 4], [3, 3, 1, 1], [0, 0, 10, 10]],
                       np.float32)
    gt = np.array([[5, 5, 5, 5], [0, 0, 8, 8], [2, 2, 12, 12]], np.float32)
    want = _tv_match(torch, torch.from_numpy(anchors), torch.from_numpy(gt), 0.7, 0.3, True).numpy()
    got = combo.to_numpy(match_boxes(combo.asarray(anchors), combo.asarray(gt)))
    np.testing.assert_array_equal(got, want)
    v, i = box_iou_max(combo.asarray(anchors), combo.asarray(gt))
    rv, ri = tv_ops.box_iou(torch.from_numpy(anchors), torch.from_numpy(gt)).max(dim=1)
    np.testing.assert_array_equal(combo.to_numpy(v), rv.numpy())
    np.testing.assert_array_equal(combo.to_numpy(i), ri.numpy())


def test_batched_list_and_padded(combo, tv_ops, tv_torch):
    torch = tv_torch
    rng = np.random.default_rng(3)
    a, _ = _random_case(rng, 700, 1)
    gts = [_random_case(rng, 1, m)[1] for m in (5, 0, 17)]
    got = match_boxes(combo.asarray(a, "float32"), [combo.asarray(g.reshape(-1, 4), "float32") for g in gts])
    assert isinstance(got, list) and len(got) == 3
    for g, r in zip(gts, got):
        if len(g):
            want = _tv_match(torch, torch.from_numpy(a.astype(np.float32)),
                             torch.from_numpy(g.astype(np.float32)), 0.7, 0.3, True).numpy()
        else:
            want = np.full(len(a), -1)  # no gt: all below low (detectron2's rule)
        np.testing.assert_array_equal(combo.to_numpy(r), want)
    pad = np.zeros((3, 17, 4))
    for k, g in enumerate(gts):
        pad[k, :len(g)] = g
    counts = np.array([len(g) for g in gts])
    padded = combo.to_numpy(match_boxes(combo.asarray(a, "float32"), combo.asarray(pad, "float32"),
                                        counts=combo.asarray(counts, "int64")))
    assert padded.shape == (3, 700)
    for k in range(3):
        np.testing.assert_array_equal(padded[k], combo.to_numpy(got[k]))
    v, i = box_iou_max(combo.asarray(a, "float32"), combo.asarray(pad, "float32"), counts=combo.asarray(counts, "int64"))
    v, i = combo.to_numpy(v), combo.to_numpy(i)
    assert (v[1] == 0).all() and (i[1] == -1).all()


def test_matching_bad_input():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="low"):
        match_boxes(a, a, high=0.3, low=0.5)
    with pytest.raises(fastiou.InputError, match="anchors"):
        match_boxes(np.zeros((3, 5)), a)
    with pytest.raises(fastiou.InputError, match="counts"):
        match_boxes(a, np.zeros((2, 3, 4)), counts=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="counts"):
        match_boxes(a, np.zeros((2, 3, 4)), counts=np.array([1, 4]))
    with pytest.raises(TypeError, match="high"):
        match_boxes(a, a, high="x")


_MEMORY_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, sys.argv[1])
    import fastiou
    from fastiou.anchors import match_boxes, box_iou_max
    from fastiou._bench_anchors import call_peak_bytes
    backend = sys.argv[2]
    n, m = int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 4000, (n, 2)).astype(np.float32)
    a = np.concatenate([xy, xy + rng.uniform(8, 200, (n, 2)).astype(np.float32)], 1)
    gxy = rng.uniform(0, 4000, (m, 2)).astype(np.float32)
    g = np.concatenate([gxy, gxy + rng.uniform(8, 400, (m, 2)).astype(np.float32)], 1)
    del xy, gxy
    control = call_peak_bytes(lambda: np.ones(64 << 20, np.uint8).sum())  # the probe sees 64 MB
    with fastiou.use_backend(backend):
        match_boxes(a[:1000], g[:10]); box_iou_max(a[:1000], g[:10])  # load / compile first
        out = []
        grown = call_peak_bytes(lambda: out.append((match_boxes(a, g), box_iou_max(a, g))))
    labels, (v, i) = out[0]
    print(grown, control, int((labels >= 0).sum()), int((i >= 0).sum()))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from Linux /proc")
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_matcher_memory_is_bounded(backend):
    """1M anchors x 2k gt (an 8 GB float32 IoU matrix) in a few tens of MB more than the inputs."""
    n, m = (1_000_000, 2_000) if backend == "cpp" else (200_000, 500)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastiou.__file__)))
    res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, root, backend, str(n), str(m)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    grown, control, matched, indexed = (int(x) for x in res.stdout.split())
    matrix = n * m * 4
    assert control >= 60 << 20, "the peak-RSS probe does not see a 64 MB allocation"
    assert indexed == n and matched > 0
    # outputs are n int64 + n float32 + n int64 (24 MB at 1M); the matrix alone would be 8 GB
    assert grown < n * 40 + (64 << 20), f"peak RSS grew by {grown / 2**20:.0f} MiB"
    assert grown < matrix / 20


# --------------------------------------------------------------------------- anchor fit
def test_anchor_fit_known_answers():
    anchors = [np.array([[0, 0, 10, 10], [0, 0, 20, 20]], np.float32),
               np.array([[100, 100, 110, 110]], np.float32)]
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [50, 50, 60, 60], [0, 0, 200, 100]], np.float32)
    fit = fastiou.anchor_fit(anchors, gt, thresholds=(0.5, 0.7))
    np.testing.assert_allclose(fit.best_iou, [1.0, 0.5, 0.0, 400 / 20000])
    assert fit.best_anchor.tolist() == [0, 0, 0, 1]  # first anchor on the 0.5 tie; all-zero row -> 0
    assert fit.recall == {0.5: 0.5, 0.7: 0.25}
    assert fit.anchors_per_gt == {0.5: 0.75, 0.7: 0.25}  # gt0: 1, gt1: 2 at 0.5; gt0 only at 0.7
    assert fit.recall_per_level == [{0.5: 0.5, 0.7: 0.25}, {0.5: 0.0, 0.7: 0.0}]
    assert fit.size_buckets["small"]["count"] == 3 and fit.size_buckets["large"]["count"] == 1
    assert fit.size_buckets["small"]["recall"] == {0.5: 2 / 3, 0.7: 1 / 3}
    assert fit.size_buckets["medium"]["recall"] == {0.5: None, 0.7: None}
    # one array with level_counts and a per-image list of gt give the same figures
    fit2 = fastiou.anchor_fit(np.concatenate(anchors), [gt[:2], gt[2:]], level_counts=[2, 1])
    assert fit2.recall == fit.recall and fit2.recall_per_level == fit.recall_per_level


def _yolo_reference(wh, k, thr):
    """YOLOv5 utils/autoanchor.py check_anchors.metric, written out in float32."""
    wh, k = np.asarray(wh, np.float32), np.asarray(k, np.float32)
    r = wh[:, None] / k[None]
    x = np.minimum(r, 1 / r).min(2)
    best = x.max(1)
    return float((best > 1 / thr).astype(np.float32).mean()), float((x > 1 / thr).astype(np.float32).sum(1).mean())


def test_anchor_fit_yolov5_wh_ratio():
    # (10, 40) against (10, 10): ratio metric 0.25, not above 1/4; against (10, 20): 0.5
    anchors = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], np.float32)
    gt = np.array([[0, 0, 10, 40], [0, 0, 10, 10]], np.float32)
    fit = fastiou.anchor_fit(anchors, gt, metric="wh_ratio")
    assert fit.wh_ratio["bpr"] == 0.5 and fit.wh_ratio["aat"] == 0.5  # one unique shape (10, 10)
    fit = fastiou.anchor_fit(np.array([[0, 0, 10, 10], [0, 0, 10, 20]], np.float32), gt, metric="wh_ratio")
    assert fit.wh_ratio["bpr"] == 1.0 and fit.wh_ratio["aat"] == 1.5
    rng = np.random.default_rng(1)
    wh = rng.uniform(2, 300, (500, 2)).astype(np.float32)
    k = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]],
                 np.float32)  # YOLOv5's default anchors
    got = fastiou.anchors.yolo_wh_metric(wh, k, 4.0)
    assert (got["bpr"], got["aat"]) == pytest.approx(_yolo_reference(wh, k, 4.0), rel=1e-6)  # float32 means there


def test_suggest_anchors_raises_recall_and_is_reproducible():
    rng = np.random.default_rng(5)
    # a skewed dataset: tall thin boxes (h / w about 4) of 20..60 px
    s = rng.uniform(20, 60, 800)
    ar = rng.uniform(3.0, 5.0, 800)
    w, h = s / np.sqrt(ar), s * np.sqrt(ar)
    xy = rng.uniform(0, 500, (800, 2))
    gt = np.concatenate([xy, xy + np.stack([w, h], 1)], 1)
    default = AnchorGenerator()
    sug = fastiou.suggest_anchors(gt, 9, anchors=default, seed=0)
    assert sug.recall_after[0.7] > sug.recall_before[0.7] + 0.3
    assert sug.mean_iou_after > sug.mean_iou_before
    again = fastiou.suggest_anchors(gt, 9, anchors=default, seed=0)
    np.testing.assert_array_equal(sug.shapes, again.shapes)
    assert np.median(np.asarray(sug.aspect_ratios[0])) > 2.5  # found the tall shapes
    fpn = fastiou.suggest_anchors(gt, 15, num_levels=5, num_ratios=3, anchors=default)
    assert len(fpn.sizes) == 5 and all(len(x) == 1 for x in fpn.sizes) and len(fpn.aspect_ratios[0]) == 3
    assert fpn.recall_after[0.5] > fpn.recall_before[0.5]
    # the suggestion is usable as a generator, and its positional fit beats the default's
    gen = AnchorGenerator(fpn.sizes, fpn.aspect_ratios)
    grids = _grids(600, 600)
    before = fastiou.anchor_fit(default((600, 600), grids), gt)
    after = fastiou.anchor_fit(gen((600, 600), grids), gt)
    assert after.recall[0.5] > before.recall[0.5]


def test_fit_bad_input():
    with pytest.raises(ValueError, match="metric"):
        fastiou.anchor_fit(np.zeros((1, 4)), np.zeros((1, 4)), metric="giou")
    with pytest.raises(ValueError, match="thresholds"):
        fastiou.anchor_fit(np.zeros((1, 4)), np.zeros((1, 4)), thresholds=(1.5,))
    with pytest.raises(ValueError, match="level_counts"):
        fastiou.anchor_fit(np.zeros((3, 4)), np.zeros((1, 4)), level_counts=[1, 1])
    with pytest.raises(ValueError, match="num_anchors"):
        fastiou.suggest_anchors(np.zeros((3, 4)), 0)
    with pytest.raises(ValueError, match="gt_boxes"):
        fastiou.suggest_anchors(np.array([[0, 0, 1, 1]]), 9)
