"""The ``check`` workload: ``fastiou.diagnostics.check`` against a straightforward pycocotools
script doing the same checks (annToRLE + maskUtils.iou per image), on reproducible synthetic
COCO-val-sized data (5k images, 36k instances) and on SA-1B-shaped images, with the SA-1B-scale
estimate from the measured throughput per worker.

    python benchmarks/bench_check.py [--quick] [--json FILE]
"""

from __future__ import annotations

import sys

from _rows_script import main as _main


def main(argv=None) -> int:
    return _main(__doc__, "fastiou.diagnostics._bench", "run_check_benchmark", "500 images instead of 5000", argv)


if __name__ == "__main__":
    sys.exit(main())
