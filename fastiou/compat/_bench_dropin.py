"""The ``dropin`` benchmark: torchvision detectors' post-processing, patched vs unpatched.

Workloads (CPU, float32, torch tensors, models built with ``weights=None``):

* ``dropin-maskrcnn`` / ``dropin-fasterrcnn``: what runs after the networks in
  ``maskrcnn_resnet50_fpn`` / ``fasterrcnn_resnet50_fpn`` at the default 800 x 1088 input:
  the RPN's proposal selection (``RegionProposalNetwork.filter_proposals``: per-level top 1000
  of 217k anchors, clip, ``remove_small_boxes``, ``batched_nms`` at 0.7, top 1000), the box
  head's ``RoIHeads.postprocess_detections`` on those 1000 proposals x 90 classes (decode,
  clip, score > 0.05, ``batched_nms`` at 0.5, top 100) and, for Mask R-CNN,
  ``GeneralizedRCNNTransform.postprocess`` (box rescale and the paste of 100 28x28 masks into
  the 480 x 640 original image; 240 x 320 at batch 8). Batch 1 and batch 8.
* ``dropin-retinanet``: ``RetinaNet.postprocess_detections`` at 512 x 683 (sigmoid over
  ~56k anchors x 91 classes, per-level top 1000, decode, clip, ``batched_nms`` at 0.5).
* ``dropin-op``: single calls of the patched functions at small sizes (10 / 100 / 1000
  boxes), the per-call overhead a training loop sees.

Network outputs are synthetic (random logits and deltas with a fixed seed, scaled so that a
few classes per proposal pass the score threshold, as with a trained model); the
post-processing code is torchvision's own, run with and without ``fastiou.patch_torchvision``
in the same process, alternated, best of the repeats. Each workload's results are compared
(identical boxes, scores, labels, masks) before a time is reported.
"""

from __future__ import annotations

import time

import fastiou

# Interleaved rounds: the best of each side. Quick mode keeps the whole run to ~1 minute on a
# 2-core machine.
_ROUNDS = {True: 2, False: 7}


def _best(fn_a, fn_b, rounds: int, inner: int = 1):
    """Best seconds per call of fn_a (unpatched) and fn_b (patched), alternated."""
    ta = tb = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn_a()
        t1 = time.perf_counter()
        with fastiou.patch_torchvision():  # applying the patch is not part of a call's time
            t2 = time.perf_counter()
            for _ in range(inner):
                fn_b()
            t3 = time.perf_counter()
        ta, tb = min(ta, (t1 - t0) / inner), min(tb, (t3 - t2) / inner)
    return ta, tb


def _same(a, b) -> bool:
    import torch
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _anchor_boxes(torch, g, counts, sizes, h, w):
    """Random boxes around each level's anchor size, inside an h x w image (proposals)."""
    out = []
    for n, s in zip(counts, sizes):
        c = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
        wh = s * torch.exp(torch.randn(n, 2, generator=g) * 0.5)
        out.append(torch.cat([c - wh / 2, c + wh / 2], dim=1))
    return torch.cat(out)


def _rcnn_case(kind: str, batch: int):
    """(run: callable returning the detections, name) for a Mask / Faster R-CNN batch."""
    import torch
    from torchvision.models import detection as det

    torch.manual_seed(0)
    build = det.maskrcnn_resnet50_fpn if kind == "maskrcnn" else det.fasterrcnn_resnet50_fpn
    model = build(weights=None, weights_backbone=None).eval()
    g = torch.Generator().manual_seed(1)
    # A 480 x 640 image (batch 8: 240 x 320, to keep the 800 pasted masks to 250 MB) resized to
    # min_size 800 and padded to a multiple of 32.
    h, w = 800, 1088
    original = (480, 640) if batch == 1 else (240, 320)
    counts = [(h // s) * (w // s) * 3 for s in (4, 8, 16, 32)] + [(h // 64 + 1) * (w // 64 + 1) * 3]
    sizes = [32, 64, 128, 256, 512]
    proposals = torch.stack([_anchor_boxes(torch, g, counts, sizes, h, w) for _ in range(batch)])
    objectness = torch.randn(batch * sum(counts), 1, generator=g)
    shapes = [(h, 1066)] * batch
    rois = 1000
    class_logits = torch.randn(batch * rois, 91, generator=g) * 2.5
    box_regression = torch.randn(batch * rois, 91 * 4, generator=g) * 0.2
    masks = torch.rand(100, 1, 28, 28, generator=g)

    def run():
        with torch.no_grad():
            props, _ = model.rpn.filter_proposals(proposals, objectness, shapes, counts)
            props = [p[:rois] for p in props]
            n = sum(len(p) for p in props)
            boxes, scores, labels = model.roi_heads.postprocess_detections(
                class_logits[:n], box_regression[:n], props, shapes)
            dets = [{"boxes": b, "scores": s, "labels": lab} for b, s, lab in zip(boxes, scores, labels)]
            if kind == "maskrcnn":
                for d in dets:
                    d["masks"] = masks[: len(d["boxes"])]
                dets = model.transform.postprocess(dets, shapes, [original] * batch)
            return dets

    return run


def _retinanet_case(batch: int):
    import torch
    from torchvision.models import detection as det

    torch.manual_seed(0)
    model = det.retinanet_resnet50_fpn(weights=None, weights_backbone=None).eval()
    g = torch.Generator().manual_seed(2)
    h, w = 512, 704
    counts = [((h + s - 1) // s) * ((w + s - 1) // s) * 9 for s in (8, 16, 32, 64, 128)]
    sizes = [32, 64, 128, 256, 512]
    anchors = [list(_anchor_boxes(torch, g, counts, sizes, h, w).split(counts)) for _ in range(batch)]
    logits = (torch.randn(batch, sum(counts), 91, generator=g) * 1.5 - 4.0).split(counts, dim=1)
    deltas = (torch.randn(batch, sum(counts), 4, generator=g) * 0.2).split(counts, dim=1)
    head = {"cls_logits": list(logits), "bbox_regression": list(deltas)}
    shapes = [(h, 683)] * batch

    def run():
        with torch.no_grad():
            return model.postprocess_detections(head, anchors, shapes)

    return run


def _op_cases():
    import torch
    import torchvision.ops as tv_ops

    g = torch.Generator().manual_seed(3)
    cases = []
    for n in (10, 100, 1000):
        b = torch.rand(n, 4, generator=g) * 500
        b[:, 2:] += b[:, :2] * 0.2 + 1
        s = torch.rand(n, generator=g)
        c = torch.randint(0, 10, (n,), generator=g)
        m = torch.rand(min(n, 100), 64, 64, generator=g) > 0.7
        cases += [
            (f"nms {n}", "nms", (b, s, 0.5)),
            (f"batched_nms {n} (10 classes)", "batched_nms", (b, s, c, 0.5)),
            (f"box_iou {n}x{n}", "box_iou", (b, b)),
            (f"generalized_box_iou {n}x{n}", "generalized_box_iou", (b, b)),
            (f"box_area {n}", "box_area", (b,)),
            (f"box_convert xyxy->cxcywh {n}", "box_convert", (b, "xyxy", "cxcywh")),
        ]
        if n <= 100:
            cases.append((f"masks_to_boxes {len(m)} x 64x64", "masks_to_boxes", (m,)))
    return [(label, name, args, tv_ops) for label, name, args in cases]


def run_dropin_benchmarks(quick: bool) -> list[dict]:
    """Runs the dropin workloads; one row per case.

    Returns:
        list[dict]: ``workload``, ``baseline`` (what the unpatched side runs), ``baseline_s`` and
        ``fastiou_s`` (best seconds per call), ``ratio`` (baseline_s / fastiou_s).
    """
    import torch

    rounds = _ROUNDS[bool(quick)]
    rows = []

    def add(workload, baseline, fn):
        ref = fn()
        with fastiou.patch_torchvision():
            got = fn()
        if not _same(ref, got):
            raise AssertionError(f"{workload}: patched results differ from torchvision's")
        ta, tb = _best(fn, fn, rounds)
        rows.append({"workload": workload, "baseline": baseline, "baseline_s": ta, "fastiou_s": tb,
                     "ratio": ta / tb})

    for batch in (1, 8):
        add(f"dropin-maskrcnn post-processing, 1000 proposals, batch {batch}",
            "torchvision maskrcnn_resnet50_fpn (RPN filter + box head + mask paste)",
            _rcnn_case("maskrcnn", batch))
        add(f"dropin-fasterrcnn post-processing, 1000 proposals, batch {batch}",
            "torchvision fasterrcnn_resnet50_fpn (RPN filter + box head)", _rcnn_case("fasterrcnn", batch))
        add(f"dropin-retinanet post-processing, batch {batch}",
            "torchvision retinanet_resnet50_fpn postprocess_detections", _retinanet_case(batch))

    sample = 0.01 if quick else 0.03  # seconds of calls per timed sample
    for label, name, args, tv_ops in _op_cases():
        fn = lambda: getattr(tv_ops, name)(*args)  # noqa: E731  (resolved at call: patched or not)
        ref = fn()
        t0 = time.perf_counter()
        fn()  # calibrates on a warm call
        inner = max(3, min(1000, int(sample / max(time.perf_counter() - t0, 1e-6))))
        with fastiou.patch_torchvision():
            got = fn()
        if not _same(ref, got) and not (name in ("box_iou", "generalized_box_iou")
                                        and torch.allclose(ref, got, rtol=0, atol=0, equal_nan=True)):
            raise AssertionError(f"dropin-op {label}: patched result differs from torchvision's")
        ta, tb = _best(fn, fn, max(rounds, 5), inner)
        rows.append({"workload": f"dropin-op {label}", "baseline": f"torchvision.ops.{name}",
                     "baseline_s": ta, "fastiou_s": tb, "ratio": ta / tb})
    return rows
