"""The ``dropin`` workloads: torchvision detectors' post-processing and single ops, with and
without ``fastiou.patch_torchvision()``, in one process (see fastiou/compat/_bench_dropin.py).

    python benchmarks/bench_dropin.py [--quick] [--json FILE] [--threads N]

Prints one row per case: the unpatched (torchvision) time, the patched time and their ratio.
Every case's patched results are checked equal to torchvision's before it is timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings


def _fmt(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else (f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    ap.add_argument("--threads", type=int, default=None, help="torch and fastiou CPU threads")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch

    import fastiou
    from fastiou.compat._bench_dropin import run_dropin_benchmarks

    if args.threads:
        torch.set_num_threads(args.threads)
        fastiou.set_num_threads(args.threads)
    rows = run_dropin_benchmarks(quick=args.quick)
    try:
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"dropin (CPU, {torch.get_num_threads()} threads)")
        for c in ("workload", "baseline", "torchvision", "patched", "ratio"):
            t.add_column(c, justify="right" if c in ("torchvision", "patched", "ratio") else "left")
        for r in rows:
            t.add_row(r["workload"], r["baseline"], _fmt(r["baseline_s"]), _fmt(r["fastiou_s"]), f"{r['ratio']:.2f}x")
        Console().print(t)
    except ImportError:  # rich is optional: a plain table
        for r in rows:
            print(f"{r['workload']:<62} {_fmt(r['baseline_s']):>10} {_fmt(r['fastiou_s']):>10} {r['ratio']:6.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": torch.get_num_threads(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
