"""Anchor workloads against torchvision: ``python benchmarks/bench_anchors.py [--quick] [--json FILE]``.

The workloads are in fastiou/_bench_anchors.py (see its docstring).
"""

from __future__ import annotations

import sys

from _rows_script import main as _main


def main(argv=None) -> int:
    return _main(__doc__, "fastiou._bench_anchors", "run_anchor_benchmarks", "fewer repeats", argv)


if __name__ == "__main__":
    sys.exit(main())
