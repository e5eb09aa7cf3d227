"""``overhead``: what one call costs on small inputs, where the call path, not the kernel,
decides — training and inference code calls these per image, per step.

Per case (CPU only), in the same process, interleaved: torchvision on torch CPU tensors;
fastiou (its default backend) on numpy arrays and on the same torch CPU tensors; and the bare
kernel: the backend function ``fastiou._C.<op>`` called directly with inputs already in the
dtype and layout it takes and a preallocated output. ``above kernel`` = fastiou's time - the
kernel's: argument checks, dtype conversions (float32 scores to the kernel's float64), the
output allocation, the return trim, the torch <-> numpy wrapping. Targets (issue 8): numpy
<= 5 us above the kernel, torch CPU tensors <= 10 us, fastiou on torch tensors never slower
than torchvision. The table's rows are medians, as everywhere; the summary after them uses
the fastest round of each contender (interference on a shared machine only adds time), from
many short rounds (``ROUNDS`` x ``SAMPLE_S``).

The kernel rows call private extension functions with their current signatures; when those
change, the kernel row shows ``skip: <error>`` instead of a number (the other rows still run).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable

import numpy as np

from fastiou import _inputs
from fastiou.bench.contenders import k_label
from fastiou.bench.env import Env
from fastiou.bench.probe import first_line
from fastiou.bench.registry import Case, Contender, case_workload
from fastiou.bench.report import fmt_ratio
from fastiou.bench.workloads.boxes import np_box_iou
from fastiou.bench.workloads.nms import np_batched_nms, np_nms, tv_batched_nms_exact

ORDER = 90

#: Targets, in seconds above the kernel, and the torch/torchvision rule.
NUMPY_ABOVE_KERNEL_S = 5e-6
TORCH_ABOVE_KERNEL_S = 10e-6
NUMPY_ROW, TORCH_ROW, KERNEL_ROW = "fastiou numpy", "fastiou torch", "kernel"
IOU_THRESHOLD = 0.5
#: Many short interleaved rounds (a 2 ms sample often falls between two interruptions of a
#: busy machine; the summary takes each contender's fastest): about 2 s for the workload.
ROUNDS, SAMPLE_S = 41, 0.002


def overhead_params(device: str, quick: bool) -> list[tuple]:
    """(op, n, m): nms on n boxes (m unused); box_iou n x m; batched_nms on n boxes of m
    classes. The same with and without --quick: the whole workload takes a few seconds."""
    if device != "cpu":
        return []
    return [("nms", 10, 0), ("nms", 100, 0), ("nms", 1000, 0), ("box_iou", 100, 20),
            ("batched_nms", 1000, 80)]


# --------------------------------------------------------------------------------------------
# The bare kernels: fastiou._C called with prepared arrays


def _extension():
    """``fastiou._C``, or the reason it is not there."""
    try:
        return importlib.import_module("fastiou._C"), None
    except Exception as exc:
        return None, f"fastiou._C not importable ({first_line(exc)})"


def _kernel_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None):
    """(call, canon) of ``_C.nms(boxes, scores float64, classes int64 | None, thr, keep)``."""
    C, why = _extension()
    if C is None:
        raise RuntimeError(why)
    b = np.ascontiguousarray(boxes, np.float32)
    s = np.ascontiguousarray(scores, np.float64)
    c = None if classes is None else np.ascontiguousarray(classes, np.int64)
    keep = np.empty(len(b), np.int64)
    return (lambda: C.nms(b, s, c, IOU_THRESHOLD, keep)), (lambda k: keep[:k].astype(np.float64))


def _kernel_box_iou(b1: np.ndarray, b2: np.ndarray):
    """(call, canon) of ``_C.box_pairwise(boxes1 (1,N,4), boxes2 (1,M,4), out (1,N,M), mode,
    fmt, eps)`` for the IoU of xyxy boxes (codes from the backend interface table)."""
    C, why = _extension()
    if C is None:
        raise RuntimeError(why)
    from fastiou._backends.interface import FORMATS, MODES

    mode, fmt = MODES["iou"], FORMATS["xyxy"]
    x1 = np.ascontiguousarray(b1, np.float32).reshape(1, -1, 4)
    x2 = np.ascontiguousarray(b2, np.float32).reshape(1, -1, 4)
    out = np.empty((1, x1.shape[1], x2.shape[1]), np.float32)

    def call():
        C.box_pairwise(x1, x2, out, mode, fmt, 0.0)
        return out

    return call, (lambda r: r[0].astype(np.float64))


def _kernel(build: Callable[[], tuple[Callable, Callable]]) -> Contender:
    try:
        call, canon = build()
    except Exception as exc:  # the extension or its interface moved: say so in the table
        return Contender(KERNEL_ROW, "kernel", skip=f"kernel call not available: {first_line(exc)}")
    return Contender(KERNEL_ROW, "kernel", call, canon=canon)


# --------------------------------------------------------------------------------------------
# Cases


def _inputs_of(op: str, n: int, m: int) -> tuple[tuple, dict[str, Any]]:
    """The host arrays of a case (float32 boxes and scores, int64 classes) and its notes."""
    if op == "nms":
        boxes, scores = _inputs.scored_boxes(n, seed=0)
        return (boxes.astype(np.float32), scores.astype(np.float32)), {"iou_threshold": IOU_THRESHOLD}
    if op == "box_iou":
        return (_inputs.random_boxes(n, seed=0).astype(np.float32),
                _inputs.random_boxes(m, seed=1).astype(np.float32)), {}
    boxes, scores, labels = _inputs.lvis_detections(n, classes=m, seed=0)
    return ((boxes.astype(np.float32), scores.astype(np.float32), labels.astype(np.int64)),
            {"iou_threshold": IOU_THRESHOLD, "classes_present": int(len(np.unique(labels)))})


def _calls(env: Env, op: str, host: tuple):
    """(torchvision's call or None, numpy fallback call, fastiou's fn, its extra args, the
    kernel builder) of ``op``."""
    thr = () if op == "box_iou" else (IOU_THRESHOLD,)
    np_fn = {"nms": np_nms, "box_iou": np_box_iou, "batched_nms": np_batched_nms}[op]
    kernel = {"nms": lambda: _kernel_nms(host[0], host[1], None),
              "box_iou": lambda: _kernel_box_iou(host[0], host[1]),
              "batched_nms": lambda: _kernel_nms(host[0], host[1], host[2])}[op]
    tv_fn = getattr(env.tv_ops, op) if env.tv_ops is not None else None
    return tv_fn, (lambda: np_fn(*host, *thr)), getattr(env.fastiou, op, None), thr, kernel


def _fastiou_rows(env: Env, fn: Callable | None, op: str, host: tuple, tens: tuple | None, thr: tuple,
                  expect_dtype: str) -> list[Contender]:
    skip = f"fastiou.{op} is missing" if fn is None else env.backend_skip("cpp")
    out = [Contender(NUMPY_ROW, "fastiou", None if skip else (lambda: fn(*host, *thr)), skip=skip,
                     expect_type="numpy", expect_dtype=expect_dtype)]
    tskip = skip or (None if tens is not None else "torch not installed")
    out.append(Contender(TORCH_ROW, "fastiou", None if tskip else (lambda: fn(*tens, *thr)), skip=tskip,
                         expect_type="torch:cpu", expect_dtype=expect_dtype))
    return out


@case_workload("overhead", "per-call cost on small inputs: fastiou (numpy, torch CPU) vs torchvision "
               "vs the bare kernel", overhead_params, summary=lambda rows: summary(rows))
def overhead_case(env: Env, op: str, n: int, m: int) -> Case:
    host, notes = _inputs_of(op, n, m)
    tens = tuple(env.torch.from_numpy(a) for a in host) if env.torch is not None else None
    tv_fn, np_call, fn, thr, kernel = _calls(env, op, host)
    if tv_fn is not None:
        contenders = [Contender("torchvision", "baseline", lambda: tv_fn(*tens, *thr))]
    else:
        contenders = [Contender("numpy", "baseline", np_call)]
    dtype_out = "float32" if op == "box_iou" else "int64"
    contenders += _fastiou_rows(env, fn, op, host, tens, thr, dtype_out)
    contenders.append(_kernel(kernel))
    forced = os.environ.get("FASTIOU_BACKEND", "").strip().lower()
    if forced not in ("", "cpp"):
        env.notes["overhead backend"] = (f"FASTIOU_BACKEND={forced}: the overhead workload's fastiou rows run "
                                         f"{forced}, its kernel rows fastiou._C (cpp)")
    notes = dict(notes, fastiou_backend=forced or "default (cpp)",
                 kernel="fastiou._C called with float32 boxes, float64 scores, int64 classes and a "
                        "preallocated output")
    size = {"nms": k_label(n), "box_iou": f"{n}x{m}", "batched_nms": f"{k_label(n)} c={m}"}[op]
    kw: dict[str, Any] = {"compare": "close"} if op == "box_iou" else {"compare": "equal", "rtol": 0, "atol": 0}
    if op == "batched_nms":
        # torchvision's batched_nms takes its inexact coordinate-offset path at 1k boxes:
        # fastiou and the kernel are checked against the exact per-class loop, torchvision as a set.
        if env.tv_ops is not None:
            kw["reference"] = lambda: env.to_numpy(tv_batched_nms_exact(env.tv_ops, env.torch, *tens,
                                                                       IOU_THRESHOLD))
        else:
            kw["reference"] = lambda: np_batched_nms(*host, IOU_THRESHOLD).astype(np.float64)
        kw["baseline_compare"] = "set"
    return Case("overhead", op, size, "float32", env.device, contenders, notes=notes,
                min_repeats=ROUNDS, min_sample=SAMPLE_S, **kw)


# --------------------------------------------------------------------------------------------
# The summary: µs above the kernel, against the targets


def _us(s: float | None, sign: bool = False) -> str:
    if s is None:
        return "-"
    return f"{s * 1e6:+.1f}" if sign else f"{s * 1e6:.1f}"


def _verdicts(tv: float | None, num: dict, tor: dict) -> str:
    out = []
    for label, row, limit in (("numpy", num, NUMPY_ABOVE_KERNEL_S), ("torch", tor, TORCH_ABOVE_KERNEL_S)):
        above = row.get("above_kernel_min_s")
        if above is not None:
            ok = above <= limit
            out.append(f"{label} +{limit * 1e6:.0f}: " + ("ok" if ok else f"MISS by {(above - limit) * 1e6:.1f}"))
    if tv is not None and tor.get("fastiou_min_s") is not None:
        out.append("torch <= tv: " + ("ok" if tor["fastiou_min_s"] <= tv else "MISS"))
    return "; ".join(out) or "-"


_HEAD = (f"{'op':12} {'size':11} {'torchvision':>11} {'kernel':>7} {'numpy':>7} {'above':>7} "
         f"{'torch':>7} {'above':>7} {'tv/torch':>8}  targets")


def summary(rows: list[dict]) -> str:
    """The ``overhead`` table: per case, µs per call of torchvision, the kernel, fastiou on
    numpy and on torch tensors with their µs above the kernel, and the targets' verdicts; each
    the fastest of the interleaved rounds (a round is the mean of a loop of >= min-sample
    seconds; the JSON rows also have the medians)."""
    cases: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cases.setdefault((r["op"], r["size"]), {})[r["fastiou"]] = r
    lines = ["overhead: us per call, same process, the fastest of the interleaved rounds; above = fastiou "
             "- kernel (fastiou._C with prepared arrays)", _HEAD, "-" * len(_HEAD)]
    for (op, size), by in cases.items():
        num, tor = by.get(NUMPY_ROW, {}), by.get(TORCH_ROW, {})
        any_row = num or tor
        tv = any_row.get("baseline_min_s") if any_row.get("baseline") == "torchvision" else None
        ratio = tv / tor["fastiou_min_s"] if tv and tor.get("fastiou_min_s") else None
        bad = [f"{name}: {r['check']}" for name, r in by.items() if r.get("check") not in (None, "ok")]
        if any_row.get("kernel_check") not in (None, "ok"):
            bad.append(f"kernel: {any_row['kernel_check']}")
        lines.append(f"{op:12} {size:11} {_us(tv):>11} {_us(any_row.get('kernel_min_s')):>7} "
                     f"{_us(num.get('fastiou_min_s')):>7} {_us(num.get('above_kernel_min_s'), True):>7} "
                     f"{_us(tor.get('fastiou_min_s')):>7} {_us(tor.get('above_kernel_min_s'), True):>7} "
                     f"{fmt_ratio(ratio):>8}  {_verdicts(tv, num, tor)}"
                     + (f"  DIFF {'; '.join(bad)}" if bad else ""))
    skips = sorted({r["skip"] for r in rows if r.get("skip")} | {f"kernel: {r['kernel_skip']}" for r in rows
                                                                 if r.get("kernel_skip")})
    lines += [f"skip: {s}" for s in skips]
    return "\n".join(lines)
