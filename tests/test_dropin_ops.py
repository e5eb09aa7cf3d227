"""torchvision's own op tests (test/test_ops.py: TestNMS, TestBoxIou, TestGeneralizedBoxIou,
TestDistanceBoxIoU, TestCompleteBoxIou, TestBoxArea, TestBoxConvert, TestMasksToBoxes), rewritten
in their style, run twice: on torchvision as installed, and under fastiou.patch_torchvision().

A user's existing test suite must not notice the patch, so every test calls ``torchvision.ops``
by its public names and asserts what torchvision's tests assert (values, dtypes, error types,
TorchScript). The wheel does not ship test_ops.py, hence this suite.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import require

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                                        "ignore::UserWarning")

try:
    import torch
except ImportError:  # the fixture below skips (or fails, in CI) without torchvision
    torch = None


@pytest.fixture(params=["torchvision", "patched"], autouse=True)
def ops(request):
    """``torchvision.ops``, as installed or under fastiou's patch for the test's duration."""
    tv = require("torchvision")
    if request.param == "patched":
        import fastiou
        from fastiou.compat import torchvision as compat
        with fastiou.patch_torchvision():
            assert tv.ops.nms is compat.nms
            yield tv.ops
        assert tv.ops.nms is compat.ORIGINALS["nms"]
    else:
        yield tv.ops


# ----------------------------------------------------------------------------------- NMS
def _reference_nms(boxes, scores, iou_threshold):
    """The obvious greedy NMS (torchvision's test reference)."""
    picked = []
    _, order = scores.sort(descending=True, stable=True)
    while order.numel() > 0:
        i = order[0]
        picked.append(int(i))
        if order.numel() == 1:
            break
        rest = order[1:]
        x1 = torch.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = torch.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = torch.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = torch.minimum(boxes[i, 3], boxes[rest, 3])
        inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.as_tensor(picked, dtype=torch.int64)


def _tensors_with_iou(n, iou_thresh):
    """Boxes whose last one has an IoU just above ``iou_thresh`` with the first (as torchvision's
    _create_tensors_with_iou), so the threshold test decides."""
    boxes = torch.rand(n, 4) * 100
    boxes[:, 2:] += boxes[:, :2]
    boxes[-1, :] = boxes[0, :]
    x0, y0, x1, y1 = boxes[-1].tolist()
    iou_thresh += 1e-5
    boxes[-1, 2] += (x1 - x0) * (1 - iou_thresh) / iou_thresh
    return boxes, torch.rand(n)


@pytest.mark.parametrize("iou", (0.2, 0.5, 0.8))
@pytest.mark.parametrize("seed", range(3))
def test_nms_ref(ops, iou, seed):
    torch.manual_seed(seed)
    boxes, scores = _tensors_with_iou(1000, iou)
    keep = ops.nms(boxes, scores, iou)
    assert keep.dtype == torch.int64
    torch.testing.assert_close(keep, _reference_nms(boxes, scores, iou))


def test_nms_exactly_at_the_threshold(ops):
    boxes = torch.tensor([[0.0, 0, 2, 2], [0, 0, 2, 1]])  # IoU exactly 0.5
    scores = torch.tensor([0.9, 0.8])
    assert ops.nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert ops.nms(boxes, scores, 0.4999).tolist() == [0]


def test_nms_input_errors(ops):
    with pytest.raises(RuntimeError):
        ops.nms(torch.rand(4), torch.rand(3), 0.5)
    with pytest.raises(RuntimeError):
        ops.nms(torch.rand(3, 5), torch.rand(3), 0.5)
    with pytest.raises(RuntimeError):
        ops.nms(torch.rand(3, 4), torch.rand(3, 2), 0.5)
    with pytest.raises(RuntimeError):
        ops.nms(torch.rand(3, 4), torch.rand(4), 0.5)


def test_nms_empty(ops):
    keep = ops.nms(torch.empty((0, 4)), torch.empty((0,)), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64


@pytest.mark.parametrize("iou", (0.2, 0.5, 0.8))
@pytest.mark.parametrize("scale, zero_point", ((1, 0), (2, 50), (3, 10)))
def test_qnms(ops, iou, scale, zero_point):
    torch.manual_seed(0)
    boxes, scores = _tensors_with_iou(1000, iou)
    scores *= 100
    qboxes = torch.quantize_per_tensor(boxes, scale=scale, zero_point=zero_point, dtype=torch.quint8)
    qscores = torch.quantize_per_tensor(scores, scale=scale, zero_point=zero_point, dtype=torch.quint8)
    keep = ops.nms(qboxes.dequantize(), qscores.dequantize(), iou)
    torch.testing.assert_close(ops.nms(qboxes, qscores, iou), keep)


@pytest.mark.parametrize("iou", (0.2, 0.5, 0.8))
@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
def test_autocast_cpu(ops, iou, dtype):
    dt = getattr(torch, dtype)
    torch.manual_seed(0)
    boxes, scores = _tensors_with_iou(1000, iou)
    with torch.autocast("cpu"):
        ref = ops.nms(boxes.to(dt).float(), scores.to(dt).float(), iou)
        got = ops.nms(boxes.to(dt), scores.to(dt), iou)
    torch.testing.assert_close(ref, got)


@pytest.mark.parametrize("seed", range(3))
def test_batched_nms_implementations(ops, seed):
    torch.manual_seed(seed)
    n = 1000
    boxes = torch.cat((torch.rand(n, 2), torch.rand(n, 2) + 10), dim=1)
    scores = torch.rand(n)
    idxs = torch.randint(0, 4, size=(n,))
    keep_vanilla = ops.boxes._batched_nms_vanilla(boxes, scores, idxs, 0.9)
    keep_trick = ops.boxes._batched_nms_coordinate_trick(boxes, scores, idxs, 0.9)
    torch.testing.assert_close(keep_vanilla, keep_trick)
    torch.testing.assert_close(ops.batched_nms(boxes, scores, idxs, 0.9), keep_vanilla)
    empty = torch.empty((0,), dtype=torch.int64)
    torch.testing.assert_close(empty, ops.batched_nms(empty, None, None, None))


@pytest.mark.parametrize("n", (100, 3000))  # both sides of torchvision's loop threshold
def test_batched_nms_matches_a_per_class_loop(ops, n):
    torch.manual_seed(n)
    boxes = torch.rand(n, 4) * 200
    boxes[:, 2:] += boxes[:, :2]
    scores = torch.rand(n)
    idxs = torch.randint(0, 7, (n,))
    keep = ops.batched_nms(boxes, scores, idxs, 0.5)
    expect = []
    for c in range(7):
        sel = torch.where(idxs == c)[0]
        expect.append(sel[_reference_nms(boxes[sel], scores[sel], 0.5)])
    expect = torch.cat(expect)
    expect = expect[scores[expect].sort(descending=True, stable=True)[1]]
    torch.testing.assert_close(keep, expect)


# ------------------------------------------------------------------------------ IoU family
INT_BOXES = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300], [0, 0, 25, 25]]
INT_BOXES2 = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300]]
FLOAT_BOXES = [[285.3538, 185.5758, 1193.5110, 851.4551], [285.1472, 188.7374, 1192.4984, 851.0669],
               [279.2440, 197.9812, 1189.4746, 849.2019]]
FLOAT_EXPECTED = [[1.0, 0.9933, 0.9673], [0.9933, 1.0, 0.9737], [0.9673, 0.9737, 1.0]]
EXPECTED = {
    "box_iou": [[1.0, 0.25, 0.0], [0.25, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0625, 0.25, 0.0]],
    "generalized_box_iou": [[1.0, 0.25, -0.7778], [0.25, 1.0, -0.8611], [-0.7778, -0.8611, 1.0],
                            [0.0625, 0.25, -0.8819]],
    "distance_box_iou": [[1.0, 0.1875, -0.4444], [0.1875, 1.0, -0.5625], [-0.4444, -0.5625, 1.0],
                         [-0.0781, 0.1875, -0.6267]],
    "complete_box_iou": [[1.0, 0.1875, -0.4444], [0.1875, 1.0, -0.5625], [-0.4444, -0.5625, 1.0],
                         [-0.0781, 0.1875, -0.6267]],
}
IOU_FNS = list(EXPECTED)


def _gen_box(size, dtype=None):
    xy1 = torch.rand((size, 2), dtype=dtype)
    return torch.cat([xy1, xy1 + torch.rand((size, 2), dtype=dtype)], dim=-1)


@pytest.mark.parametrize("fn", IOU_FNS)
@pytest.mark.parametrize("case", ["int", "float16", "float"])
def test_iou(ops, fn, case):
    f = getattr(ops, fn)
    if case == "int":
        cases = [(INT_BOXES, INT_BOXES2, d, 1e-4, EXPECTED[fn]) for d in ("int16", "int32", "int64")]
    elif case == "float16":
        cases = [(FLOAT_BOXES, FLOAT_BOXES, "float16", 0.002, FLOAT_EXPECTED)]
    else:
        cases = [(FLOAT_BOXES, FLOAT_BOXES, d, 1e-3, FLOAT_EXPECTED) for d in ("float32", "float64")]
    for b1, b2, dt, atol, expected in cases:
        out = f(torch.tensor(b1, dtype=getattr(torch, dt)), torch.tensor(b2, dtype=getattr(torch, dt)))
        assert out.dtype == (torch.float64 if dt == "float64" else torch.float32)
        torch.testing.assert_close(out, torch.tensor(expected), rtol=0.0, check_dtype=False, atol=atol)


@pytest.mark.parametrize("fn", IOU_FNS)
def test_iou_jit(ops, fn):
    f = getattr(ops, fn)
    box = torch.tensor(INT_BOXES, dtype=torch.float)
    expected = f(box, box)
    scripted = torch.jit.script(f)
    torch.testing.assert_close(scripted(box, box), expected)


@pytest.mark.parametrize("fn", IOU_FNS)
def test_iou_cartesian(ops, fn):
    f = getattr(ops, fn)
    torch.manual_seed(0)
    b1, b2 = _gen_box(5), _gen_box(7)
    a = torch.zeros((5, 7))
    for i in range(5):
        for j in range(7):
            a[i, j] = f(b1[i].unsqueeze(0), b2[j].unsqueeze(0))
    torch.testing.assert_close(a, f(b1, b2))


@pytest.mark.parametrize("fn", IOU_FNS)
def test_iou_batched(ops, fn):
    f = getattr(ops, fn)
    torch.manual_seed(1)
    b1, b2 = _gen_box(2 * 3 * 5).reshape(2, 3, 5, 4), _gen_box(2 * 3 * 4).reshape(2, 3, 4, 4)
    out = f(b1, b2)
    assert out.shape == (2, 3, 5, 4)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(out[i, j], f(b1[i, j], b2[i, j]))


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_iou_fmt(ops, fmt):
    torch.manual_seed(2)
    b1, b2 = _gen_box(6), _gen_box(9)
    out = ops.box_iou(ops.box_convert(b1, "xyxy", fmt), ops.box_convert(b2, "xyxy", fmt), fmt=fmt)
    torch.testing.assert_close(out, ops.box_iou(b1, b2), rtol=1e-5, atol=1e-6)


def test_box_iou_unknown_fmt(ops):
    with pytest.raises(ValueError):
        ops.box_iou(_gen_box(2), _gen_box(2), fmt="yxyx")


def test_box_iou_rotated_fmt(ops):
    b = torch.tensor([[10.0, 10, 4, 2, 0], [10, 10, 4, 2, 90]])
    out = ops.box_iou(b, b, fmt="cxcywhr")
    assert out.shape == (2, 2) and float(out[0, 0]) == pytest.approx(1.0, abs=1e-5)


def test_zero_area_boxes_give_nan(ops):
    z = torch.tensor([[5.0, 5, 5, 5]])
    assert math.isnan(float(ops.box_iou(z, z)[0, 0]))


@pytest.mark.parametrize("fn", IOU_FNS)
def test_iou_gradients_kept(ops, fn):
    """IoU functions used in losses keep their gradients (torchvision computes them)."""
    f = getattr(ops, fn)
    torch.manual_seed(3)
    b1 = _gen_box(4, torch.float64).requires_grad_()
    b2 = _gen_box(3, torch.float64).requires_grad_()
    out = f(b1, b2)
    assert out.requires_grad
    (g1, g2) = torch.autograd.grad((out * torch.arange(12.0, dtype=out.dtype).reshape(4, 3)).sum(), (b1, b2))
    from fastiou.compat.torchvision import ORIGINALS
    ref = ORIGINALS[fn](b1, b2)
    (r1, r2) = torch.autograd.grad((ref * torch.arange(12.0, dtype=out.dtype).reshape(4, 3)).sum(), (b1, b2))
    assert torch.equal(out, ref) and torch.equal(g1, r1) and torch.equal(g2, r2)
    if fn != "complete_box_iou":  # torchvision computes CIoU's alpha under no_grad: not a true gradient
        torch.autograd.gradcheck(f, (b1, b2))
    with torch.no_grad():
        assert not f(b1, b2).requires_grad


def test_meta_tensors(ops):
    m = torch.empty((5, 4), device="meta")
    assert ops.box_iou(m, m[:3]).shape == (5, 3)
    assert ops.box_area(m).shape == (5,)


# ------------------------------------------------------------------------------- box_area
@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
def test_box_area_int(ops, dtype):
    out = ops.box_area(torch.tensor([[0, 0, 100, 100], [0, 0, 0, 0]], dtype=getattr(torch, dtype)))
    assert out.dtype == (torch.int64 if dtype == "int64" else torch.int32)
    torch.testing.assert_close(out, torch.tensor([10000, 0], dtype=torch.int32), rtol=0.0, atol=1e-4,
                               check_dtype=False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_box_area_float(ops, dtype):
    out = ops.box_area(torch.tensor(FLOAT_BOXES, dtype=getattr(torch, dtype)))
    torch.testing.assert_close(out, torch.tensor([604723.0806, 600965.4666, 592761.0085],
                                                 dtype=getattr(torch, dtype)), rtol=0.0, atol=1e-4)


def test_box_area_float16(ops):
    b = torch.tensor([[2.825, 1.8625, 3.90, 4.85], [2.825, 4.875, 19.20, 5.10], [2.925, 1.80, 8.90, 4.90]],
                     dtype=torch.float16)
    torch.testing.assert_close(ops.box_area(b), torch.tensor([3.2170, 3.7108, 18.5071]), rtol=0.0, atol=0.01,
                               check_dtype=False)


@pytest.mark.parametrize("n", [3, 20000])
@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_area_fmt_and_size(ops, n, fmt):
    torch.manual_seed(4)
    b = _gen_box(n) * 100
    expect = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) if fmt == "xyxy" else b[:, 2] * b[:, 3]
    assert torch.equal(ops.box_area(b, fmt=fmt), expect)


def test_box_area_jit(ops):
    b = torch.tensor([[0, 0, 100, 100], [0, 0, 0, 0]], dtype=torch.float)
    torch.testing.assert_close(torch.jit.script(ops.box_area)(b), ops.box_area(b))


# ---------------------------------------------------------------------------- box_convert
_BOX = [[0, 0, 100, 100], [0, 0, 0, 0], [10, 15, 30, 35], [23, 35, 93, 95]]


def test_bbox_same(ops):
    b = torch.tensor(_BOX, dtype=torch.float)
    for fmt in ("xyxy", "xywh", "cxcywh"):
        out = ops.box_convert(b, in_fmt=fmt, out_fmt=fmt)
        assert torch.equal(out, b) and out.data_ptr() != b.data_ptr()


def test_bbox_xyxy_xywh_cxcywh(ops):
    b = torch.tensor(_BOX, dtype=torch.float)
    xywh = torch.tensor([[0, 0, 100, 100], [0, 0, 0, 0], [10, 15, 20, 20], [23, 35, 70, 60]], dtype=torch.float)
    cxcywh = torch.tensor([[50, 50, 100, 100], [0, 0, 0, 0], [20, 25, 20, 20], [58, 65, 70, 60]],
                          dtype=torch.float)
    assert torch.equal(ops.box_convert(b, in_fmt="xyxy", out_fmt="xywh"), xywh)
    assert torch.equal(ops.box_convert(xywh, in_fmt="xywh", out_fmt="xyxy"), b)
    assert torch.equal(ops.box_convert(b, in_fmt="xyxy", out_fmt="cxcywh"), cxcywh)
    assert torch.equal(ops.box_convert(cxcywh, in_fmt="cxcywh", out_fmt="xyxy"), b)
    assert torch.equal(ops.box_convert(xywh, in_fmt="xywh", out_fmt="cxcywh"), cxcywh)
    assert torch.equal(ops.box_convert(cxcywh, in_fmt="cxcywh", out_fmt="xywh"), xywh)


def test_bbox_int_keeps_dtype(ops):
    out = ops.box_convert(torch.tensor([[1, 2, 3, 4]]), "xywh", "xyxy")
    assert out.dtype == torch.int64 and out.tolist() == [[1, 2, 4, 6]]


@pytest.mark.parametrize("n", [4, 20000])
@pytest.mark.parametrize("pair", [("xyxy", "cxcywh"), ("cxcywh", "xyxy"), ("xywh", "cxcywh"), ("xyxy", "xywh")])
def test_bbox_convert_bit_identical(ops, n, pair):
    torch.manual_seed(5)
    b = _gen_box(n) * 640
    from fastiou.compat.torchvision import ORIGINALS
    assert torch.equal(ops.box_convert(b, *pair), ORIGINALS["box_convert"](b, *pair))


@pytest.mark.parametrize("inv_infmt", ["xwyh", "cxwyh"])
@pytest.mark.parametrize("inv_outfmt", ["xwcx", "xhwcy"])
def test_bbox_invalid(ops, inv_infmt, inv_outfmt):
    with pytest.raises(ValueError):
        ops.box_convert(torch.tensor(_BOX, dtype=torch.float), inv_infmt, inv_outfmt)


def test_bbox_rotated_formats(ops):
    b = torch.tensor([[10.0, 20, 4, 2, 30]])
    out = ops.box_convert(b, "xywhr", "cxcywhr")
    assert out.shape == (1, 5)
    with pytest.raises(NotImplementedError):
        ops.box_convert(b, "xywhr", "xyxy")


def test_bbox_convert_jit(ops):
    b = torch.tensor(_BOX, dtype=torch.float)
    scripted = torch.jit.script(ops.box_convert)
    torch.testing.assert_close(scripted(b, "xyxy", "xywh"), ops.box_convert(b, in_fmt="xyxy", out_fmt="xywh"))
    torch.testing.assert_close(scripted(b, "xyxy", "cxcywh"), ops.box_convert(b, in_fmt="xyxy", out_fmt="cxcywh"))


# ------------------------------------------------------------------------- masks_to_boxes
def _masks():
    rng = np.random.default_rng(6)
    masks = np.zeros((7, 60, 80), np.uint8)
    boxes = []
    for i in range(7):
        x1, y1 = rng.integers(0, 60), rng.integers(0, 45)
        x2, y2 = x1 + rng.integers(0, 19), y1 + rng.integers(0, 14)
        masks[i, y1:y2 + 1, x1:x2 + 1] = rng.random((y2 - y1 + 1, x2 - x1 + 1)) < 0.9
        masks[i, y1, x1] = masks[i, y2, x2] = 1
        boxes.append([x1, y1, x2, y2])
    return torch.from_numpy(masks), torch.tensor(boxes, dtype=torch.float)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "uint8", "bool"])
def test_masks_box(ops, dtype):
    masks, expected = _masks()
    out = ops.masks_to_boxes(masks.to(getattr(torch, dtype)))
    assert out.dtype == torch.float
    torch.testing.assert_close(out, expected, rtol=0.0, atol=1e-4, check_dtype=True)


def test_masks_empty(ops):
    masks = torch.zeros((3, 10, 12), dtype=torch.bool)
    masks[1, 4, 5] = True
    assert ops.masks_to_boxes(masks).tolist() == [[0, 0, 0, 0], [5, 4, 5, 4], [0, 0, 0, 0]]
    out = ops.masks_to_boxes(torch.zeros((0, 10, 12)))
    assert out.shape == (0, 4) and out.dtype == torch.float
