"""The ``check`` workload: ``fastiou.diagnostics.check`` against a straightforward pycocotools
script doing the same checks (annToRLE + maskUtils.iou per image), on reproducible synthetic
COCO-val-sized data (5k images, 36k instances) and on SA-1B-shaped images, with the SA-1B-scale
estimate from the measured throughput per worker.

    python benchmarks/bench_check.py [--quick] [--json FILE]
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
    from fastiou.diagnostics._bench import format_rows, run_check_benchmark
    rows = run_check_benchmark(quick=args.quick)
    print(format_rows(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
