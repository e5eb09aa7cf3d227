"""fastiou.patch_torchvision: the swap itself, and whole torchvision detectors run under it.

Oracle: the same torchvision model run unpatched. Detections (boxes, labels, scores, masks),
training losses and every parameter's gradient must be identical, not close.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import require

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                                        "ignore::UserWarning")


@pytest.fixture(scope="module")
def tv():
    torchvision = require("torchvision")
    import torchvision.models.detection  # noqa: F401  (loads rpn, roi_heads, transform, ...)
    import torchvision.ops.poolers  # noqa: F401
    return torchvision


def _originals():
    from fastiou.compat import torchvision as compat
    return compat.ORIGINALS


def _holders(names=None):
    """(module name, attribute, object) for every torchvision module attribute that is one of
    the swapped functions (fastiou's or torchvision's)."""
    from fastiou.compat import torchvision as compat
    watched = {id(f): f for pair in compat.REPLACEMENTS.values() for f in pair}
    out = []
    for mname, mod in list(sys.modules.items()):
        if mod is None or not (mname == "torchvision" or mname.startswith("torchvision.")):
            continue
        for attr, value in list(vars(mod).items()):
            if value is not None and watched.get(id(value)) is value:
                out.append((mname, attr, value))
    return sorted(out, key=lambda t: (t[0], t[1]))


def test_patch_swaps_every_holder_and_restores_the_same_objects(tv):
    import fastiou
    from fastiou.compat import torchvision as compat
    before = _holders()
    names = {(m, a) for m, a, _ in before}
    # torchvision's own modules that hold the functions by name
    for m, a in [("torchvision.ops", "nms"), ("torchvision.ops.boxes", "batched_nms"),
                 ("torchvision.ops.boxes", "box_iou"), ("torchvision.ops.poolers", "box_area"),
                 ("torchvision.ops", "masks_to_boxes"), ("torchvision.ops", "complete_box_iou")]:
        assert (m, a) in names
    assert all(obj is _originals()[a] for _, a, obj in before)
    with fastiou.patch_torchvision():
        during = _holders()
        assert [(m, a) for m, a, _ in during] == [(m, a) for m, a, _ in before]
        assert all(obj is compat.REPLACEMENTS[a][0] for _, a, obj in during)
        assert tv.ops.boxes.nms is compat.nms and tv.ops.box_iou is compat.box_iou
    after = _holders()
    assert [(m, a, id(o)) for m, a, o in after] == [(m, a, id(o)) for m, a, o in before]


def test_patch_restores_after_an_exception_and_when_nested(tv):
    import fastiou
    from fastiou.compat import torchvision as compat
    orig = tv.ops.boxes.batched_nms
    with pytest.raises(KeyError):
        with fastiou.patch_torchvision():
            assert tv.ops.boxes.batched_nms is compat.batched_nms
            raise KeyError("boom")
    assert tv.ops.boxes.batched_nms is orig
    with fastiou.patch_torchvision():
        with fastiou.patch_torchvision():
            assert tv.ops.boxes.batched_nms is compat.batched_nms
        assert tv.ops.boxes.batched_nms is compat.batched_nms  # the outer level is still on
    assert tv.ops.boxes.batched_nms is orig


def test_plain_call_and_unpatch(tv):
    import fastiou
    from fastiou import _patch
    from fastiou.compat import torchvision as compat
    orig = tv.ops.nms
    assert fastiou.unpatch_torchvision() is False  # nothing on
    fastiou.patch_torchvision()
    fastiou.patch_torchvision()
    try:
        assert tv.ops.nms is compat.nms and _patch.is_patched()
        assert fastiou.unpatch_torchvision() is True
        assert tv.ops.nms is compat.nms
    finally:
        assert fastiou.unpatch_torchvision() is True
    assert tv.ops.nms is orig and not _patch.is_patched()
    assert fastiou.unpatch_torchvision() is False


def test_module_imported_while_patched_is_restored(tv):
    import fastiou
    from fastiou.compat import torchvision as compat
    import types
    name = "torchvision._fastiou_test_late_import"
    with fastiou.patch_torchvision():
        late = types.ModuleType(name)
        late.box_iou = tv.ops.boxes.box_iou  # what `from torchvision.ops.boxes import box_iou` does
        sys.modules[name] = late
        assert late.box_iou is compat.box_iou
    try:
        assert late.box_iou is _originals()["box_iou"]
    finally:
        del sys.modules[name]


def test_custom_ops_are_registered_on_first_use_only():
    code = textwrap.dedent("""
        import torch, fastiou
        assert not hasattr(torch.ops.fastiou, "nms")
        import fastiou.compat
        assert not hasattr(torch.ops.fastiou, "nms")
        with fastiou.patch_torchvision():
            pass
        assert hasattr(torch.ops.fastiou, "nms") and hasattr(torch.ops.fastiou, "box_iou")
        print("ok")
    """)
    require("torchvision")
    import os
    import fastiou
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastiou.__file__)))  # the fastiou under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_patched_functions_run_fastiou(tv):
    """The patch is not a pass-through: fastiou's one documented difference shows (a NaN score
    ranks last, where torchvision's CPU sort puts it first)."""
    import torch
    import fastiou
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 3)
    scores = torch.tensor([0.5, float("nan"), 0.9])
    assert tv.ops.nms(boxes, scores, 0.5).tolist() == [1]
    with fastiou.patch_torchvision():
        assert tv.ops.nms(boxes, scores, 0.5).tolist() == [2]


# ------------------------------------------------------------------------------- detectors
# Small images and min/max sizes keep a CPU forward pass short; proposals are the defaults'
# order of magnitude (the box head then runs batched_nms over 300 x 90 candidates).
_SIZES = dict(min_size=128, max_size=192, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=300,
              rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=300)


def _build(tv, kind: str):
    import torch
    det = tv.models.detection
    torch.manual_seed(0)
    if kind == "retinanet":
        m = det.retinanet_resnet50_fpn(weights=None, weights_backbone=None, min_size=128, max_size=192,
                                       score_thresh=0.01, topk_candidates=300)
    else:
        fn = det.maskrcnn_resnet50_fpn if kind == "maskrcnn" else det.fasterrcnn_resnet50_fpn
        m = fn(weights=None, weights_backbone=None, box_score_thresh=0.0, **_SIZES)
        m.roi_heads.score_thresh = 0.0
    return m


def _images():
    import torch
    g = torch.Generator().manual_seed(1)
    return [torch.rand(3, 120, 160, generator=g), torch.rand(3, 96, 136, generator=g)]


def _targets(kind: str):
    import torch
    t = [{"boxes": torch.tensor([[10.0, 12, 70, 90], [40, 30, 150, 110], [5, 5, 30, 40]]),
          "labels": torch.tensor([1, 3, 1])},
         {"boxes": torch.tensor([[20.0, 10, 100, 80], [0, 40, 60, 95]]), "labels": torch.tensor([2, 5])}]
    if kind == "maskrcnn":
        for tgt, (h, w) in zip(t, [(120, 160), (96, 136)]):
            masks = torch.zeros(len(tgt["boxes"]), h, w, dtype=torch.uint8)
            for i, (x1, y1, x2, y2) in enumerate(tgt["boxes"].int().tolist()):
                masks[i, y1:y2, x1:x2] = 1
            tgt["masks"] = masks
    return t


@pytest.fixture(scope="module", params=["maskrcnn", "fasterrcnn", "retinanet"])
def detector(request, tv):
    return request.param, _build(tv, request.param)


def test_detector_eval_identical(detector):
    import torch
    import fastiou
    kind, model = detector
    model.eval()
    imgs = _images()
    with torch.no_grad():
        ref = model(imgs)
        with fastiou.patch_torchvision():
            got = model(imgs)
    assert len(ref) == len(got) == 2
    keys = {"boxes", "labels", "scores"} | ({"masks"} if kind == "maskrcnn" else set())
    for r, g in zip(ref, got):
        assert set(r) == set(g) == keys
        assert r["boxes"].shape[0] > 0, "no detections: the comparison would prove nothing"
        for k in keys:
            assert r[k].dtype == g[k].dtype and torch.equal(r[k], g[k]), k


def test_detector_train_identical(detector):
    import torch
    import fastiou
    kind, model = detector
    model.train()
    imgs, targets = _images(), _targets(kind)

    def step():
        model.zero_grad(set_to_none=True)
        torch.manual_seed(123)  # the fg/bg samplers draw from torch's RNG
        losses = model(imgs, targets)
        sum(losses.values()).backward()
        return ({k: v.detach().clone() for k, v in losses.items()},
                {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})

    ref_losses, ref_grads = step()
    with fastiou.patch_torchvision():
        got_losses, got_grads = step()
    model.eval()
    assert ref_losses.keys() == got_losses.keys() and len(ref_losses) >= 2
    for k in ref_losses:
        assert torch.equal(ref_losses[k], got_losses[k]), k
    assert ref_grads.keys() == got_grads.keys() and len(ref_grads) > 10
    for n in ref_grads:
        assert torch.equal(ref_grads[n], got_grads[n]), n


@pytest.mark.parametrize("n", [0, 1, 17])
def test_paste_masks_in_image_identical(tv, n):
    """The mask paste of Mask R-CNN's transform: bit-identical, boxes partly outside the image,
    one-pixel and inverted boxes included."""
    import torch
    from fastiou.compat import torchvision as compat
    g = torch.Generator().manual_seed(n)
    masks = torch.rand(n, 1, 28, 28, generator=g)
    xy = torch.rand(n, 2, generator=g) * 80 - 10  # starts inside the image, as a detector's clipped boxes
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 90], dim=1)
    if n > 2:
        boxes[0] = torch.tensor([5.0, 5, 5, 5])       # one pixel
        boxes[1] = torch.tensor([-30.0, -8, 200, 150])  # beyond every edge
    for shape in [(120, 160), (97, 131)]:
        ref = compat.ORIGINALS["paste_masks_in_image"](masks, boxes, shape)
        got = compat.paste_masks_in_image(masks, boxes, shape)
        assert got.shape == ref.shape == (n, 1) + shape and got.dtype == ref.dtype
        assert torch.equal(got, ref)
    if n:  # a box starting beyond the image: torchvision's slices may not fit; ours likewise
        for far_box in ([300.0, 10, 320, 30], [10.0, 200, 30, 340]):
            far = boxes.clone()
            far[0] = torch.tensor(far_box)
            outcomes = []
            for fn in (compat.ORIGINALS["paste_masks_in_image"], compat.paste_masks_in_image):
                try:
                    outcomes.append(fn(masks, far, (120, 160)))
                except RuntimeError:
                    outcomes.append("RuntimeError")
            assert type(outcomes[0]) is type(outcomes[1])
            if outcomes[0] != "RuntimeError":
                assert torch.equal(outcomes[0], outcomes[1])
        assert "RuntimeError" in outcomes  # the second box is one torchvision refuses
    import fastiou
    with fastiou.patch_torchvision():
        assert tv.models.detection.transform.paste_masks_in_image is compat.paste_masks_in_image
        assert tv.models.detection.roi_heads.paste_masks_in_image is compat.paste_masks_in_image
    assert tv.models.detection.transform.paste_masks_in_image is compat.ORIGINALS["paste_masks_in_image"]
