"""fastiou's mmdet convention against mmdet's own AnchorGenerator code, bit for bit.

mmdet does not import without mmcv's compiled ops, so this loads only its anchor_generator.py
(pure torch) with stub modules for the registry imports. Usage:

    pip download mmdet==3.3.0 --no-deps -d /tmp/mmdet_dl
    python -c "import zipfile; zipfile.ZipFile('/tmp/mmdet_dl/mmdet-3.3.0-py3-none-any.whl').extract(
        'mmdet/models/task_modules/prior_generators/anchor_generator.py', '/tmp/mmdet_src')"
    python benchmarks/check_mmdet_anchors.py /tmp/mmdet_src/mmdet/models/task_modules/prior_generators/anchor_generator.py

Prints one line per configuration (RetinaNet octave scales, Faster R-CNN FPN, center_offset 0.5,
scale_major False); exit code 1 if any differs.
"""

import importlib.util
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastiou  # noqa: E402


def load(path: str):
    for name in ("mmengine", "mmengine.utils", "mmdet", "mmdet.registry", "mmdet.structures",
                 "mmdet.structures.bbox"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["mmengine.utils"].is_tuple_of = lambda x, t: isinstance(x, tuple) and all(isinstance(i, t) for i in x)

    class _Registry:
        def register_module(self, *a, **k):
            return lambda c: c

    sys.modules["mmdet.registry"].TASK_UTILS = _Registry()
    sys.modules["mmdet.structures.bbox"].HorizontalBoxes = object
    spec = importlib.util.spec_from_file_location("mmdet_anchor_generator", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(path: str) -> int:
    mm = load(path)
    grids = [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)]
    cases = [
        dict(strides=[8, 16, 32, 64, 128], ratios=[0.5, 1.0, 2.0], octave_base_scale=4, scales_per_octave=3),
        dict(strides=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], scales=[8]),
        dict(strides=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], scales=[8], center_offset=0.5),
        dict(strides=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], scales=[8, 16], scale_major=False),
    ]
    bad = 0
    for kw in cases:
        ref = mm.AnchorGenerator(**kw).grid_priors(grids, device="cpu")
        got = fastiou.AnchorGenerator.from_mmdet(**kw).grid_anchors(grids, [(s, s) for s in kw["strides"]])
        ok = all(np.array_equal(g, r.numpy()) for g, r in zip(got, ref))
        bad += not ok
        print(kw, "bit-exact" if ok else "DIFFERS")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
