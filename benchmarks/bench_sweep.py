"""The ``sweep`` workload: NMS at 17 IoU thresholds over every image, fastiou (nms_sweep, the
whole ``fastiou.diagnostics.sweep``, the mask path) against re-running torchvision's batched_nms
(pycocotools' mask IoU for masks) per threshold and per image; COCOeval's own time apart.

    python benchmarks/bench_sweep.py [--quick] [--json FILE]
"""

from __future__ import annotations

import sys

from _rows_script import main as _main


def main(argv=None) -> int:
    return _main(__doc__, "fastiou.diagnostics._bench_sweep", "run_sweep_benchmark", "500 images instead of 5000", argv)


if __name__ == "__main__":
    sys.exit(main())
