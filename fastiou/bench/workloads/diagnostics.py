"""Diagnostics workloads: ``check`` — ``fastiou.diagnostics.check`` against a straightforward
pycocotools script doing the same overlap checks (``annToRLE`` + ``maskUtils.iou`` per image) on
reproducible synthetic COCO-like data (fastiou/diagnostics/_bench.py builds both). The results
compared are the overlapping annotation pairs each finds; they must be the same set.
"""

from __future__ import annotations

import numpy as np

from fastiou.bench.env import Env
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 80

_PAIR_KINDS = ("duplicate", "mask_overlap", "box_overlap", "cross_class_overlap")


def _pairs_array(pairs) -> np.ndarray:
    return np.array(sorted(tuple(int(i) for i in p) for p in pairs), dtype=np.float64).reshape(-1, 2)


def _params(device: str, quick: bool) -> list[tuple]:
    if device != "cpu":
        return []
    return [(500, 3600)] if quick else [(5000, 36000)]


@case_workload("check", "fastiou check vs a pycocotools overlap script", _params)
def check_case(env: Env, n_images: int, n_instances: int) -> Case:
    from fastiou.diagnostics import _bench
    data = _bench.synthetic_coco(n_images, n_instances)
    size = f"{n_images} images, {len(data['annotations'])} masks"
    try:
        import pycocotools  # noqa: F401
        base = Contender("pycocotools script", "baseline", call=lambda: _bench.pycocotools_check(data),
                         canon=lambda r: _pairs_array(_bench._pairs(r)))
    except ImportError as e:
        base = Contender("pycocotools script", "baseline", skip=f"pycocotools not installed ({e})")

    def run():
        from fastiou.diagnostics import check
        return check(data, workers=1)

    ours = Contender("fastiou.diagnostics.check", "fastiou", call=run,
                     canon=lambda r: _pairs_array(tuple(f.annotation_ids) for f in r.findings
                                                  if f.kind in _PAIR_KINDS))
    return Case("check", "check", size, "-", "cpu", [base, ours], compare="equal")
