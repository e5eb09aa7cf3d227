"""The ``dropin`` workload: torchvision detectors' post-processing run unpatched and under
``fastiou.patch_torchvision()`` in the same process (cases from fastiou/compat/_bench_dropin.py,
whose ``python benchmarks/bench_dropin.py`` also times single patched ops at small sizes). The
detections must be identical."""

from __future__ import annotations

import numpy as np

from fastiou.bench.env import Env
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 85

_KINDS = ("maskrcnn", "fasterrcnn", "retinanet")


def _params(device: str, quick: bool) -> list[tuple]:
    if device != "cpu":
        return []
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return []
    return [(k, b) for b in ((1,) if quick else (1, 8)) for k in _KINDS]


def _canon(dets) -> np.ndarray:
    parts = [np.asarray(d[key].detach(), dtype=np.float64).reshape(-1) for d in dets for key in sorted(d)]
    return np.concatenate(parts) if parts else np.zeros(0)


@case_workload("dropin", "detector post-processing, patched vs unpatched torchvision", _params)
def dropin_case(env: Env, kind: str, batch: int) -> Case:
    import fastiou
    from fastiou.compat import _bench_dropin as B
    run = B._retinanet_case(batch) if kind == "retinanet" else B._rcnn_case(kind, batch)
    what = f"{kind} post-processing" + ("" if kind == "retinanet" else ", 1000 proposals")
    cont = [Contender(f"torchvision {kind}", "baseline", call=run, canon=_canon),
            Contender(f"patched {kind}", "fastiou", call=run, context=fastiou.patch_torchvision,
                      canon=_canon)]
    return Case("dropin", kind, f"{what}, batch {batch}", "float32", "cpu", cont, compare="equal")
