"""The command line that bench_anchors.py, bench_check.py and bench_sweep.py share: run a
workload module's ``run_*(quick)``, print its ``format_rows(rows)``, write the rows as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys

# Run from a checkout: the repository root before an installed fastiou.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(doc: str, module: str, run: str, quick_help: str, argv=None) -> int:
    """``module.run(quick)`` rows, printed by ``module.format_rows``; ``--json FILE`` writes them."""
    import importlib

    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    args = p.parse_args(argv)
    mod = importlib.import_module(module)
    rows = getattr(mod, run)(args.quick)
    print(mod.format_rows(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
