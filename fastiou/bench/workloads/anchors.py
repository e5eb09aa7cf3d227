"""Anchor workloads: ``anchors`` (the Faster R-CNN FPN anchors, batch 1 and 8, against
torchvision's ``AnchorGenerator`` module) and ``iou-anchors`` (``match_boxes`` on those 268k
anchors against torchvision ``Matcher(box_iou(gt, anchors))``). The cases come from
fastiou/_bench_anchors.py, whose ``python benchmarks/bench_anchors.py`` also reports the peak
memory of each side (a fresh process per measurement)."""

from __future__ import annotations

import numpy as np

from fastiou.bench.env import Env
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 50


def _torch_params(device: str, quick: bool, values) -> list[tuple]:
    if device != "cpu":
        return []
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return []
    return [(v,) for v in values]


def _canon(result) -> np.ndarray:
    if isinstance(result, (list, tuple)):
        return np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1) for r in result])
    return np.asarray(result, dtype=np.float64).reshape(-1)


@case_workload("anchors", "FPN anchors (torchvision AnchorGenerator module)",
               lambda device, quick: _torch_params(device, quick, (1, 8)))
def anchors_case(env: Env, batch: int) -> Case:
    from fastiou import _bench_anchors as B
    tv, variants = B._anchor_case(batch)
    cont = [Contender("torchvision AnchorGenerator", "baseline", call=tv, canon=_canon)]
    cont += [Contender(f"fastiou AnchorGenerator{suffix}", "fastiou", call=fn, canon=_canon)
             for suffix, fn in variants.items()]
    return Case("anchors", "anchors", f"FPN {B.IMAGE[0]}x{B.IMAGE[1]}, batch {batch}", "float32", "cpu",
                cont, compare="equal")


@case_workload("iou-anchors", "match_boxes on the FPN anchors (torchvision box_iou + Matcher)",
               lambda device, quick: _torch_params(device, quick, (7, 100) if quick else (7, 100, 900)))
def match_case(env: Env, m: int) -> Case:
    from fastiou import _bench_anchors as B
    tv, variants = B._match_case(m)
    cont = [Contender("torchvision box_iou + Matcher", "baseline", call=tv, canon=_canon)]
    cont += [Contender(f"fastiou.match_boxes{suffix}", "fastiou", call=fn, canon=_canon)
             for suffix, fn in variants.items()]
    return Case("iou-anchors", "match_boxes", f"268k anchors x {m} gt", "float32", "cpu", cont, compare="equal")
