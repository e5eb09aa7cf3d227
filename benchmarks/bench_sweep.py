"""The ``sweep`` workload: NMS at 17 IoU thresholds over every image, fastiou (nms_sweep, the
whole ``fastiou.diagnostics.sweep``, the mask path) against re-running torchvision's batched_nms
(pycocotools' mask IoU for masks) per threshold and per image; COCOeval's own time apart.

    python benchmarks/bench_sweep.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="500 images instead of 5000")
    p.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    args = p.parse_args(argv)
    from fastiou.diagnostics._bench_sweep import format_rows, run_sweep_benchmark
    rows = run_sweep_benchmark(quick=args.quick)
    print(format_rows(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
