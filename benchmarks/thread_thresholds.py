"""Where threads start to pay, per CPU kernel: 1 thread vs all threads over a ladder of sizes.

Each kernel starts its OpenMP team only above a size written in its source (kParallelMin and
the op-specific constants in csrc/cpu/); below it a parallel region costs more than it saves.
This script measures, for sizes around those constants, the all-thread time over the 1-thread
time (fastiou's load-aware team cut turned off, so that the team really runs), interleaved and
best of several rounds:

    python benchmarks/thread_thresholds.py [--quick] [--only box_iou,nms,...]

A ratio below 1 is a speed-up; ``threads`` says whether the kernel started its team at that
size (from the constants, as the kernels decide). A size where the team starts and the ratio is
above ~1.05 is a threshold set too low. Run it on a quiet machine: a busy core makes any
multi-thread figure meaningless (that case is `fastiou bench --shared-core`'s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastiou
from fastiou import _C, _inputs

K_MIN = 1 << 14  # kParallelMin (csrc/cpu/cpu_common.h)


def _boxes(n, seed=0):
    return _inputs.random_boxes(n, seed=seed).astype(np.float32)


def cases():
    """name -> (sizes, make(size) -> call, starts(size) -> bool, unit)."""
    out = {}
    out["box_iou"] = ([16, 64, 96, 128, 160, 256, 512], lambda n: (lambda b=_boxes(n): fastiou.box_iou(b, b)),
                      lambda n: n * n > K_MIN, "N (N x N pairs)")
    out["box_area"] = ([1 << 14, 1 << 16, 1 << 17, 1 << 18, 1 << 20],
                       lambda n: (lambda b=_boxes(n): fastiou.box_area(b)), lambda n: n > 8 * K_MIN, "boxes")
    out["nms"] = ([1000, 4000, 10000, 30000],
                  lambda n: (lambda b=_inputs.clustered_boxes(n, seed=1)[0].astype(np.float32),
                             s=np.random.default_rng(1).random(n).astype(np.float32): fastiou.nms(b, s, 0.5)),
                  None, "boxes")
    out["masks_to_boxes"] = ([1, 4, 16, 64, 256],
                             lambda n: (lambda m=_inputs.instance_masks(n, 64, 64, seed=2): fastiou.masks_to_boxes(m)),
                             lambda n: n > 1 and n * 64 * 64 > K_MIN, "masks of 64x64")
    out["pack_masks"] = ([2, 8, 32, 128],
                         lambda n: (lambda m=_inputs.instance_masks(n, 128, 128, seed=3): fastiou.pack_masks(m)),
                         lambda n: n * 128 * 128 > (1 << 20), "masks of 128x128")
    out["mask_iou packed"] = ([4, 8, 16, 32, 64],
                              lambda n: (lambda p=fastiou.pack_masks(_inputs.instance_masks(n, 256, 256, seed=4)):
                                         fastiou.mask_iou(p, p)),
                              lambda n: n > 4 and n * n * 256 * 4 > K_MIN, "masks of 256x256 (N x N)")
    out["rle.encode"] = ([2, 8, 16, 64],
                         lambda n: (lambda m=_inputs.instance_masks(n, 256, 256, seed=5): fastiou.rle.encode(m)),
                         lambda n: n > 1 and n * 256 * 256 > (1 << 20), "masks of 256x256")
    out["rle.decode"] = ([2, 8, 16, 64],
                         lambda n: (lambda r=fastiou.rle.encode(_inputs.instance_masks(n, 256, 256, seed=6)):
                                    fastiou.rle.decode(r)),
                         lambda n: n > 1 and n * 256 * 256 > (1 << 20), "masks of 256x256")
    return out


def best(fn, rounds: int, min_time: float = 0.02) -> float:
    fn()
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        if time.perf_counter() - t0 >= min_time or k >= 1 << 16:
            break
        k *= 2
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        out.append((time.perf_counter() - t0) / k)
    return min(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    p.add_argument("--only", help="comma-separated case names")
    args = p.parse_args(argv)
    rounds = 3 if args.quick else 7
    all_threads = max(2, fastiou.get_num_threads())
    _C.set_load_aware(False)
    chosen = cases()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    print(f"{'kernel':16} {'size':>8}  {'1 thread':>10}  {f'{all_threads} threads':>10}  {'ratio':>6}  threads start")
    for name, (sizes, make, starts, unit) in chosen.items():
        for n in sizes:
            call = make(n)
            t = {}
            for r in range(2):  # interleaved: 1, all, 1, all
                for th in ((1, all_threads) if r == 0 else (all_threads, 1)):
                    fastiou.set_num_threads(th)
                    t[th] = min(t.get(th, 1e9), best(call, rounds))
            started = "-" if starts is None else ("yes" if starts(n) else "no")
            print(f"{name:16} {n:>8}  {t[1] * 1e6:>8.1f}us  {t[all_threads] * 1e6:>8.1f}us  "
                  f"{t[all_threads] / t[1]:>6.2f}  {started}   ({unit})", flush=True)
    fastiou.set_num_threads(all_threads)
    _C.set_load_aware(True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
