"""Benchmark workloads of the anchor ops, against torchvision in the same run.

Self-contained (the bench package registers it): ``run_anchor_benchmarks(quick)`` returns one
row per (workload, thread count):

* ``anchors-fpn-b1`` / ``anchors-fpn-b8``: the Faster R-CNN FPN anchors (sizes 32..512, ratios
  0.5/1/2, 800x1344 padded, 5 levels) for a batch of 1 / 8, torchvision's ``AnchorGenerator``
  against fastiou's as a torch module (same call, same list of tensors, checked equal);
  ``anchors-fpn-b8 shared``: the module with ``shared=True`` (one tensor for every image).
* ``match-267k-x{7,100,900}``: torchvision ``Matcher(0.7, 0.3, True)(box_iou(gt, anchors))``
  against ``fastiou.match_boxes`` on those 268,569 anchors (labels checked equal), with the
  peak memory of each (RSS growth of one call in a fresh process).

Times are medians of repeated calls (quick: fewer). Both libraries get the same thread count
(``torch.set_num_threads`` and ``fastiou.set_num_threads``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

IMAGE = (800, 1344)
STRIDES = (4, 8, 16, 32, 64)
GT_COUNTS = (7, 100, 900)


def _grids():
    return [(-(-IMAGE[0] // s), -(-IMAGE[1] // s)) for s in STRIDES]


def _gt(m: int, seed: int = 0) -> np.ndarray:
    """m boxes in the image, log-uniform sizes 8..600 px, aspect ratios 1/3..3 (seeded)."""
    rng = np.random.default_rng(seed + m)
    size = np.exp(rng.uniform(np.log(8), np.log(600), m))
    ar = np.exp(rng.uniform(np.log(1 / 3), np.log(3), m))
    w, h = size / np.sqrt(ar), size * np.sqrt(ar)
    x = rng.uniform(0, IMAGE[1] - np.minimum(w, IMAGE[1] - 1))
    y = rng.uniform(0, IMAGE[0] - np.minimum(h, IMAGE[0] - 1))
    return np.stack([x, y, np.minimum(x + w, IMAGE[1]), np.minimum(y + h, IMAGE[0])], 1).astype(np.float32)


def _median_time(fn, repeats: int, budget: float) -> tuple[float, object]:
    """(median seconds of repeated calls, the last result). A first call that alone takes
    longer than ``budget`` is the only sample (torchvision's 900-gt matcher takes ~30 s here)."""
    t = time.perf_counter()
    out = fn()  # warm-up (loads, compiles, caches)
    first = time.perf_counter() - t
    if first > budget:
        return first, out
    samples = []
    t0 = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t)
        if time.perf_counter() - t0 > budget and len(samples) >= 3:
            break
    return statistics.median(samples), out


def _same(a, b) -> bool:
    import torch

    if isinstance(a, list):
        return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


def _anchor_case(batch: int):
    import torch
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TV
    from torchvision.models.detection.image_list import ImageList

    import fastiou

    sizes, ratios = ((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5
    img = ImageList(torch.zeros(batch, 3, *IMAGE), [(800, 1333)] * batch)
    feats = [torch.zeros(batch, 1, h, w) for h, w in _grids()]
    tv = TV(sizes, ratios)
    fast = fastiou.AnchorGenerator(sizes, ratios).torch_module()
    shared = fastiou.AnchorGenerator(sizes, ratios).torch_module(shared=True)
    variants = {"": lambda: fast(img, feats)}
    if batch > 1:
        variants[" shared"] = lambda: shared(img, feats)
    return (lambda: tv(img, feats)), variants


def _match_case(m: int):
    import torch
    from torchvision.models.detection._utils import Matcher
    from torchvision.ops import box_iou

    import fastiou

    anchors = torch.from_numpy(fastiou.AnchorGenerator()(IMAGE, _grids()))
    gt = torch.from_numpy(_gt(m))
    matcher = Matcher(0.7, 0.3, allow_low_quality_matches=True)
    return (lambda: matcher(box_iou(gt, anchors))), {"": lambda: fastiou.match_boxes(anchors, gt)}


# A fresh process measures one call's peak memory: the peak RSS during the call (VmHWM, reset
# just before it through /proc/self/clear_refs) minus the RSS before it. (ru_maxrss would not do:
# a child inherits its parent's high-water mark across fork and exec.)
_PEAK_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
from fastiou import _bench_anchors as B
which, m = sys.argv[2], int(sys.argv[3])
import fastiou
from torchvision.models.detection._utils import Matcher
from torchvision.ops import box_iou
anchors = torch.from_numpy(fastiou.AnchorGenerator()(B.IMAGE, B._grids()))
gt = torch.from_numpy(B._gt(m))
matcher = Matcher(0.7, 0.3, allow_low_quality_matches=True)
if which == "torchvision":
    fn = lambda a, g: matcher(box_iou(g, a))
else:
    fn = lambda a, g: fastiou.match_boxes(a, g)
fn(anchors[:1000], gt[:3])
print(json.dumps({"peak_bytes": B.call_peak_bytes(lambda: fn(anchors, gt))}))
"""


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def call_peak_bytes(fn) -> int:
    """The peak RSS growth of one call of ``fn`` in this process (Linux /proc; OSError elsewhere)."""
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    fn()
    return max(0, _status_kb("VmHWM") - before) * 1024


def _peak_bytes(which: str, m: int) -> int | None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        res = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, root, which, str(m)],
                             capture_output=True, text=True, timeout=300)
        return int(json.loads(res.stdout.strip().splitlines()[-1])["peak_bytes"])
    except Exception:  # a failed measurement leaves the column empty, never the run
        return None


def run_anchor_benchmarks(quick: bool) -> list[dict]:
    """Rows: workload, op, size, threads, baseline, baseline_s, fastiou, fastiou_s, ratio,
    baseline_peak_bytes, fastiou_peak_bytes, memory_ratio, check (results equal)."""
    import torch

    import fastiou

    repeats, budget = (5, 1.0) if quick else (20, 4.0)
    threads = sorted({1, os.cpu_count() or 1})
    cases = [(f"anchors-fpn-b{b}", "AnchorGenerator", f"268569x4 b{b}", "torchvision AnchorGenerator",
              lambda b=b: _anchor_case(b), None) for b in (1, 8)]
    cases += [(f"match-267k-x{m}", "match_boxes", f"268569x{m}", "torchvision box_iou+Matcher",
               lambda m=m: _match_case(m), m) for m in GT_COUNTS]
    rows = []
    old_torch, old_fast = torch.get_num_threads(), fastiou.get_num_threads()
    try:
        peaks = {}
        for workload, op, size, base_name, make, m in cases:
            base_fn, fast_fns = make()
            if m is not None:
                peaks[m] = (_peak_bytes("torchvision", m), _peak_bytes("fastiou", m))
            bp, fp = peaks.get(m, (None, None))
            for t in threads:
                torch.set_num_threads(t)
                fastiou.set_num_threads(t)
                bt, ref = _median_time(base_fn, repeats, budget)
                for suffix, fast_fn in fast_fns.items():
                    ft, got = _median_time(fast_fn, repeats, budget)
                    ok = _same(ref, got)
                    rows.append({
                        "workload": workload + suffix, "op": op, "size": size, "dtype": "float32",
                        "device": "cpu", "threads": t, "baseline": base_name, "baseline_s": bt,
                        "fastiou": f"fastiou {t}-thread{suffix}", "fastiou_s": ft,
                        "ratio": bt / ft if ft else None, "baseline_peak_bytes": bp, "fastiou_peak_bytes": fp,
                        "memory_ratio": (bp / fp) if bp and fp else None, "check": bool(ok),
                    })
    finally:
        torch.set_num_threads(old_torch)
        fastiou.set_num_threads(old_fast)
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of the rows."""
    def mb(b):
        return "-" if b is None else f"{b / 2**20:.1f} MiB"
    out = [f"{'workload':<20} {'thr':>3} {'baseline':>10} {'fastiou':>10} {'ratio':>8} "
           f"{'base peak':>11} {'fastiou peak':>12} {'equal':>5}"]
    for r in rows:
        out.append(f"{r['workload']:<20} {r['threads']:>3} {r['baseline_s'] * 1e3:>8.2f}ms "
                   f"{r['fastiou_s'] * 1e3:>8.2f}ms {r['ratio']:>7.1f}x {mb(r['baseline_peak_bytes']):>11} "
                   f"{mb(r['fastiou_peak_bytes']):>12} {str(r['check']):>5}")
    return "\n".join(out)
