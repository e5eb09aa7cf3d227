"""Diagnostics workloads: ``sweep`` — ``fastiou.nms_sweep`` at 17 IoU thresholds per image against
torchvision's batched_nms re-run per threshold (fastiou/diagnostics/_bench_sweep.py builds the
data; the kept sets must be identical); ``check`` — ``fastiou.diagnostics.check`` against a
straightforward pycocotools script doing the same overlap checks (``annToRLE`` +
``maskUtils.iou`` per image) on reproducible synthetic COCO-like data (fastiou/diagnostics/_bench.py builds both). The results
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


# --------------------------------------------------------------------------- sweep

def _sweep_params(device: str, quick: bool) -> list[tuple]:
    if device != "cpu":
        return []
    return [(500,)] if quick else [(5000,)]


def _kept_array(per_image) -> np.ndarray:
    """Every image's kept indices at every threshold, as one float64 array (-1 between sets)."""
    parts = [np.append(np.asarray(k, np.float64), -1.0) for sets in per_image for k in sets]
    return np.concatenate(parts) if parts else np.zeros(0)


@case_workload("sweep", "NMS at 17 IoU thresholds per image: fastiou.nms_sweep vs "
               "torchvision batched_nms per threshold", _sweep_params)
def sweep_case(env: Env, n_images: int) -> Case:
    from fastiou.diagnostics import _bench_sweep
    images, _, _ = _bench_sweep.synthetic_predictions(n_images)
    ths = _bench_sweep.THRESHOLDS
    size = f"{n_images} images x 100 boxes, {len(ths)} thresholds, class-aware"
    torch = env.optional("torch", "sweep")
    tv = env.optional("torchvision.ops", "sweep")
    if torch is None or tv is None:
        base = Contender("torchvision batched_nms per threshold", "baseline",
                         skip="torch/torchvision not importable")
    else:
        tensors = [(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(c)) for b, s, c in images]
        base = Contender("torchvision batched_nms per threshold", "baseline",
                         call=lambda: [[tv.batched_nms(b, s, c, t).numpy() for t in ths]
                                       for b, s, c in tensors], canon=_kept_array)

    def ours():
        import fastiou
        return [fastiou.nms_sweep(b, s, ths, c) for b, s, c in images]
    return Case("sweep", "nms_sweep", size, "float64", "cpu",
                [base, Contender("fastiou.nms_sweep", "fastiou", call=ours, canon=_kept_array)],
                compare="equal")
