"""The patched functions inside graphs: torch.jit.script, torch.jit.trace, torch.compile
(fullgraph) and torch.export, through fastiou's torch.library custom ops.

Oracle: the same module run eagerly on torchvision, unpatched. Each test also checks that the
graph really holds a ``fastiou::`` op (not a silent fallback to torchvision).

torch.compile uses the ``aot_eager`` backend: it runs dynamo and AOTAutograd (which call the
fake kernels) without compiling C++, which inductor would spend a minute on with this CI's CPUs;
the custom ops are opaque to inductor, so nothing fastiou-specific is left untested.
"""

from __future__ import annotations

import pytest

from conftest import require

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                                        "ignore::UserWarning")


@pytest.fixture(scope="module")
def tv():
    tv = require("torchvision")
    import torchvision.models.detection  # noqa: F401
    return tv


def _inputs(n=400, seed=0, classes=5):
    import torch
    g = torch.Generator().manual_seed(seed)
    b = torch.rand(n, 4, generator=g) * 100
    b[:, 2:] += b[:, :2]
    return b, torch.rand(n, generator=g), torch.randint(0, classes, (n,), generator=g)


def _post(tv):
    import torch
    box_ops = tv.ops.boxes

    class Post(torch.nn.Module):
        """A detector head's post-processing: class-aware NMS, top 50, best IoU with the rest."""

        def forward(self, boxes, scores, labels):
            keep = box_ops.batched_nms(boxes, scores, labels, 0.5)[:50]
            iou = box_ops.box_iou(boxes[keep], boxes)
            area = box_ops.box_area(boxes[keep])
            return keep, boxes[keep], scores[keep], iou.max(dim=1).values, area

    return Post()


def _equal(a, b):
    import torch
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_jit_script_module(tv):
    import fastiou
    post = _post(tv)
    args = _inputs()
    ref = post(*args)
    with fastiou.patch_torchvision():
        import torch
        scripted = torch.jit.script(post)
    graph = str(scripted.inlined_graph)
    assert "fastiou::batched_nms" in graph and "fastiou::box_iou" in graph
    assert _equal(scripted(*args), ref)
    args2 = _inputs(n=900, seed=1)  # another size: the scripted graph is not specialised
    assert _equal(scripted(*args2), post(*args2))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_jit_trace(tv):
    import torch
    import fastiou
    post = _post(tv)
    args = _inputs()
    ref = post(*args)
    with fastiou.patch_torchvision():
        traced = torch.jit.trace(post, args, check_trace=False)
    graph = str(traced.inlined_graph)
    assert "fastiou::batched_nms" in graph and "fastiou::box_iou" in graph
    assert _equal(traced(*args), ref)
    args2 = _inputs(n=250, seed=2)
    assert _equal(traced(*args2), post(*args2))


def test_compile_fullgraph(tv):
    import torch
    import fastiou
    post = _post(tv)
    args = _inputs()
    ref = post(*args)
    seen = []

    def backend(gm, example_inputs):
        seen.append(str(gm.graph))
        from torch._dynamo.backends.common import aot_autograd
        return aot_autograd(fw_compiler=lambda g, _: g)(gm, example_inputs)

    torch._dynamo.reset()
    with fastiou.patch_torchvision():
        compiled = torch.compile(post, fullgraph=True, backend=backend)
        assert _equal(compiled(*args), ref)
        args2 = _inputs(n=700, seed=3)
        assert _equal(compiled(*args2), post(*args2))
    assert seen and "fastiou.batched_nms" in seen[0] and "fastiou.box_iou" in seen[0]


@pytest.mark.parametrize("strict", [False, True])
def test_export_postprocess(tv, strict):
    import torch
    import fastiou
    post = _post(tv)
    args = _inputs()
    ref = post(*args)
    with fastiou.patch_torchvision():
        ep = torch.export.export(post, args, strict=strict)
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert "fastiou.batched_nms.default" in targets and "fastiou.box_iou.default" in targets
    assert _equal(ep.module()(*args), ref)


def test_export_detector_postprocess(tv):
    """The case users ask for: a torchvision detector's box post-processing (RoIHeads.
    postprocess_detections: decode, clip, score filter, remove_small_boxes, batched_nms, top-k),
    exported with a data-dependent number of detections."""
    import torch
    import fastiou
    torch.manual_seed(0)
    model = tv.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                                        num_classes=6, box_score_thresh=0.2).eval()
    heads = model.roi_heads

    class BoxPost(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = heads

        def forward(self, class_logits, box_regression, proposals):
            boxes, scores, labels = self.heads.postprocess_detections(
                class_logits, box_regression, [proposals], [(200, 300)])
            return boxes[0], scores[0], labels[0]

    g = torch.Generator().manual_seed(4)
    props = torch.rand(300, 4, generator=g) * 150
    props[:, 2:] += props[:, :2]
    args = (torch.randn(300, 6, generator=g) * 2, torch.randn(300, 24, generator=g) * 0.1, props)
    post = BoxPost()
    with torch.no_grad():
        ref = post(*args)
        assert ref[0].shape[0] > 0
        with fastiou.patch_torchvision():
            ep = torch.export.export(post, args, strict=False)
        targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert "fastiou.batched_nms.default" in targets
        assert _equal(ep.module()(*args), ref)


def test_batched_nms_ties_in_torchvision_order(tv):
    """Above 1000 boxes torchvision orders the kept boxes with an unstable sort; the patched
    function, eager and scripted, returns the same order (many exactly tied scores here)."""
    import torch
    import fastiou
    g = torch.Generator().manual_seed(7)
    n = 1500
    boxes = torch.rand(n, 4, generator=g) * 300
    boxes[:, 2:] += boxes[:, :2]
    scores = (torch.rand(n, generator=g) * 10).round() / 10  # 11 distinct values
    labels = torch.randint(0, 3, (n,), generator=g)
    ref = tv.ops.batched_nms(boxes, scores, labels, 0.5)
    kept = ref.sort()[0]
    stable = kept[scores[kept].sort(descending=True, stable=True)[1]]
    assert not torch.equal(ref, stable), "no tie reordered: the test would prove nothing"
    with fastiou.patch_torchvision():
        eager = tv.ops.batched_nms(boxes, scores, labels, 0.5)
        scripted = torch.jit.script(tv.ops.batched_nms)
    assert torch.equal(eager, ref)
    assert torch.equal(scripted(boxes, scores, labels, 0.5), ref)
