#!/usr/bin/env python3
"""GPU smoke check of the suppression family (no pytest): results and one timing.

For an H100/H200 with torch, torchvision and (optionally) cupy, after
``pip install --no-build-isolation -e .`` with the CUDA module built:

    python benchmarks/gpu_nms_smoke.py [--quick]

Each GPU op runs on torch CUDA tensors with the backends "cuda" and "cupy" and is compared
with fastiou's CPU backend "cpp" on the same inputs (indices identical; floats within 1e-6
relative) and, for nms / batched_nms, with torchvision's CUDA ops (and torchvision's CPU nms
where the threshold test decides: torchvision's CUDA kernel compares the IoU in float32, its CPU
kernel and fastiou as a double, see fastiou/nms.py). One line per comparison:
MATCH / MISMATCH (with the first differing index) / SKIP / ERROR / NOT IMPLEMENTED.
The mask ops (fastiou.masks: pack_masks, unpack, mask_iou, mask_nms, matrix_nms on masks,
resolve_overlaps) are compared bit for bit with "cpp" (matrix_nms within 1e-6: exp).
Then nms on 10k sparse boxes is timed (CUDA events, median of 50 after warm-up) against
torchvision, and mask_iou of 100 masks at 1024^2 against torch's float32 matmul IoU.
Exit status 1 when any MISMATCH or ERROR was printed. About a minute on an H100.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback

import numpy as np
import torch
import torchvision

import fastiou
from fastiou import _inputs

SIZES = (0, 1, 2, 1000, 20000)
FAILURES: list[str] = []
DEVICE = "cuda"  # --cpu-dry-run: "cpu", to check this script itself on a machine without a GPU


def line(status: str, name: str, detail: str = "") -> None:
    if status in ("MISMATCH", "ERROR"):
        FAILURES.append(f"{status} {name}")
    print(f"{status:<16} {name:<58} {detail}", flush=True)


def np_of(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def first_diff(a, b) -> str:
    a, b = np_of(a), np_of(b)
    m = min(len(a), len(b))
    eq = a[:m] == b[:m]
    i = int(np.argmin(eq)) if m and not eq.all() else m
    fa = a[i] if i < len(a) else "end"
    fb = b[i] if i < len(b) else "end"
    return f"len {len(a)} vs {len(b)}; first difference at [{i}]: {fa} vs {fb}"


def compare_idx(name: str, got, want, *, set_ok: bool = False) -> None:
    g, w = np_of(got), np_of(want)
    if g.shape == w.shape and np.array_equal(g, w):
        line("MATCH", name, f"K={len(g)}")
    elif set_ok and g.shape == w.shape and np.array_equal(np.sort(g), np.sort(w)):
        line("MATCH", name, f"K={len(g)} (same set; the reference orders ties differently)")
    else:
        line("MISMATCH", name, first_diff(g, w))


def compare_float(name: str, got, want, rtol: float = 1e-6) -> None:
    g, w = np_of(got).astype(np.float64), np_of(want).astype(np.float64)
    if g.shape != w.shape:
        line("MISMATCH", name, f"shape {g.shape} vs {w.shape}")
        return
    close = np.isclose(g, w, rtol=rtol, atol=0, equal_nan=True)
    if close.all():
        exact = bool(np.array_equal(g, w, equal_nan=True))
        line("MATCH", name, f"n={len(g)}" + ("" if exact else f" (max rel {_maxrel(g, w):.1e})"))
    else:
        i = int(np.argmin(close))
        line("MISMATCH", name, f"first difference at [{i}]: {g[i]!r} vs {w[i]!r}")


def _maxrel(g, w) -> float:
    ok = np.isfinite(g) & np.isfinite(w) & (w != 0)
    return float(np.max(np.abs(g[ok] - w[ok]) / np.abs(w[ok]))) if ok.any() else 0.0


def run(name: str, fn):
    """fn() under a guard: a failure is reported, never fatal."""
    try:
        return fn()
    except NotImplementedError as e:
        line("NOT IMPLEMENTED", name, str(e))
    except Exception as e:  # noqa: BLE001 - a smoke check reports and goes on
        line("ERROR", name, f"{type(e).__name__}: {e}".splitlines()[0][:200])
        traceback.print_exc(limit=3, file=sys.stdout)
    return None


# ------------------------------------------------------------------------------ inputs

def case_random(n: int, seed: int = 0, dtype=torch.float32):
    b = _inputs.random_boxes(n, seed)
    s = np.random.default_rng(seed + 7).random(n)
    return torch.tensor(b, dtype=dtype), torch.tensor(s, dtype=torch.float32)


def case_clustered_ties(n: int, seed: int = 1):
    b, s = _inputs.clustered_boxes(n, seed) if n else (np.zeros((0, 4)), np.zeros(0))
    s = np.round(s, 1)  # ten distinct scores: ties everywhere
    if n >= 4:
        b[1::4] = b[0::4][: len(b[1::4])]  # exact duplicates too
    return torch.tensor(b, dtype=torch.float32), torch.tensor(s, dtype=torch.float32)


def case_at_threshold():
    """Pairs whose float32 IoU is exactly k/10 (box [0,0,10,10] vs [0,0,10,k]), each pair on its own,
    plus torchvision's own boundary pair ([0,0,2,2] vs [0,0,2,1], IoU 0.5)."""
    boxes, scores = [], []
    for k in range(1, 10):
        ox = 100.0 * k
        boxes += [[ox, 0, ox + 10, 10], [ox, 0, ox + 10, k]]
        scores += [1.0 - k / 100, 0.5 - k / 100]
    boxes += [[0, 500, 2, 502], [0, 500, 2, 501]]
    scores += [0.9, 0.8]
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32)


def case_nasty():
    """Degenerate boxes, NaN / inf scores, equal scores (fastiou ranks NaN last: vs cpp only)."""
    b = _inputs.degenerate_boxes()
    b = np.concatenate([b, b[::-1], [[np.nan, 0, 1, 1], [0, 0, 5, 5]]])
    s = np.linspace(0, 1, len(b))
    s[[1, 4, 9]] = np.nan
    s[[2, 3]] = 0.5
    s[5] = np.inf
    s[6] = -np.inf
    return torch.tensor(b, dtype=torch.float32), torch.tensor(s, dtype=torch.float32)


# ------------------------------------------------------------------------------ checks

def gpu_backends() -> list[str]:
    if DEVICE == "cpu":
        return ["cpp"]
    avail = fastiou.backends()
    out = []
    for b in ("cuda", "cupy"):
        if avail[b]["available"]:
            out.append(b)
        else:
            line("SKIP", f"backend {b}", avail[b]["reason"])
    return out


def with_backend(name, fn, *args, **kw):
    with fastiou.use_backend(name):
        out = fn(*args, **kw)
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return out


def check_nms(backends, quick: bool):
    cases = []
    for n in SIZES:
        cases.append((f"random-{n}", *case_random(n), 0.5, "tv"))
        cases.append((f"clustered-ties-{n}", *case_clustered_ties(n), 0.7 if n % 2 else 0.5, "tv"))
    cases.append(("random-1000-fp64", *case_random(1000, 3, torch.float64), 0.5, "tv"))
    # > 63k boxes: the reduce's column-per-thread path; > 327k: its removed[] in global memory
    cases.append(("random-70000", *case_random(70000, 4), 0.5, "tv"))
    if not quick:
        cases.append(("random-340000", *case_random(340000, 5), 0.7, None))
    b, s = case_at_threshold()
    for thr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.4999):
        cases.append((f"iou-at-threshold thr={thr}", b, s, thr, "tv-cpu"))
    cases.append(("degenerate+nan-scores", *case_nasty(), 0.5, None))
    for name, bx, sc, thr, oracle in cases:
        with fastiou.use_backend("cpp"):
            want = fastiou.nms(bx, sc, thr)
        tv = None
        if oracle == "tv":
            tv = torchvision.ops.nms(bx.to(DEVICE), sc.to(DEVICE).to(bx.dtype), thr)
        elif oracle == "tv-cpu":  # the rule torchvision's CPU kernel and fastiou share
            tv = torchvision.ops.nms(bx, sc.to(bx.dtype), thr)
        for be in backends:
            got = run(f"nms {be} {name}", lambda: with_backend(be, fastiou.nms, bx.to(DEVICE), sc.to(DEVICE), thr))
            if got is None:
                continue
            compare_idx(f"nms {be} {name} vs cpp", got, want)
            if tv is not None:
                compare_idx(f"nms {be} {name} vs torchvision-{'cuda' if oracle == 'tv' else 'cpu'}", got, tv)


TV_BATCHED = getattr(torchvision.ops.boxes, "_batched_nms_vanilla", torchvision.ops.batched_nms)


def check_batched(backends, quick: bool):
    cases = []
    for n in SIZES:
        bx, sc = case_random(n, 11)
        cls = torch.tensor(np.random.default_rng(n).integers(0, 80, n))
        cases.append((f"random-{n} x80 classes", bx, sc, cls))
        bx, sc = case_clustered_ties(n, 12)
        cls = torch.tensor(np.random.default_rng(n + 1).integers(-2, 3, n))  # negative ids too
        cases.append((f"clustered-ties-{n} x5 classes", bx, sc, cls))
    for name, bx, sc, cls in cases:
        with fastiou.use_backend("cpp"):
            want = fastiou.batched_nms(bx, sc, cls, 0.5)
        # torchvision's per-class loop: its coordinate-offset path (N < 25000 on the GPU) loses
        # boxes to float32 rounding of the offset coordinates (see fastiou.batched_nms).
        tv = TV_BATCHED(bx.to(DEVICE), sc.to(DEVICE), cls.to(DEVICE), 0.5)
        for be in backends:
            got = run(f"batched_nms {be} {name}",
                      lambda: with_backend(be, fastiou.batched_nms, bx.to(DEVICE), sc.to(DEVICE), cls.to(DEVICE), 0.5))
            if got is None:
                continue
            compare_idx(f"batched_nms {be} {name} vs cpp", got, want)
            compare_idx(f"batched_nms {be} {name} vs torchvision-{DEVICE} per-class", got, tv, set_ok=True)


def check_sweep(backends, quick: bool):
    ths = [0.3, 0.5, 0.7]
    many = [round(0.05 * k, 2) for k in range(1, 19)]  # 18 thresholds: three mask launches
    for n in (0, 2, 1000, 20000):
        bx, sc = case_clustered_ties(n, 21)
        cls = torch.tensor(np.random.default_rng(5).integers(0, 4, n))
        for label, t, c in (("3 thr", ths, None), ("18 thr", many, None), ("3 thr x4 classes", ths, cls)):
            if n == 20000 and label == "18 thr":
                continue
            with fastiou.use_backend("cpp"):
                want = fastiou.nms_sweep(bx, sc, t, c)
            for be in backends:
                got = run(f"nms_sweep {be} {n} {label}",
                          lambda: with_backend(be, fastiou.nms_sweep, bx.to(DEVICE), sc.to(DEVICE), t,
                                               None if c is None else c.to(DEVICE)))
                if got is None:
                    continue
                bad = [i for i in range(len(t)) if not np.array_equal(np_of(got[i]), np_of(want[i]))]
                if len(got) != len(want) or bad:
                    i = bad[0] if bad else 0
                    line("MISMATCH", f"nms_sweep {be} {n} {label} vs cpp",
                         f"threshold {t[i]}: " + first_diff(got[i], want[i]))
                else:
                    line("MATCH", f"nms_sweep {be} {n} {label} vs cpp", f"K={[len(x) for x in got]}")


def check_soft(backends, quick: bool):
    cases = [(f"clustered-{n}", *case_clustered_ties(n, 31)) for n in (0, 1, 2, 1000, 5000)]
    cases.append(("random-2000", *case_random(2000, 32)))
    for name, bx, sc in cases:
        n = len(sc)
        sc = sc + torch.linspace(0, 1e-3, n)  # fewer exact ties: the gaussian path may differ by ulps
        for method in ("linear", "gaussian", "hard"):
            with fastiou.use_backend("cpp"):
                wk, ws = fastiou.soft_nms(bx, sc, 0.3, 0.5, 1e-3, method)
            for be in backends:
                got = run(f"soft_nms {be} {name} {method}",
                          lambda: with_backend(be, fastiou.soft_nms, bx.to(DEVICE), sc.to(DEVICE), 0.3, 0.5, 1e-3, method))
                if got is None:
                    continue
                compare_idx(f"soft_nms {be} {name} {method} keep vs cpp", got[0], wk)
                if len(got[1]) == len(ws):
                    # gaussian: expf differs by an ulp or two between libm and CUDA, and a box's
                    # score is a product of many such factors
                    compare_float(f"soft_nms {be} {name} {method} scores vs cpp", got[1], ws,
                                  rtol=1e-5 if method == "gaussian" else 1e-6)


def check_matrix(backends, quick: bool):
    for n in SIZES:
        bx, sc = case_clustered_ties(n, 41)
        lab = torch.tensor(np.random.default_rng(3).integers(0, 10, n))
        for kernel in ("gaussian", "linear"):
            with fastiou.use_backend("cpp"):
                want = fastiou.matrix_nms(bx, sc, lab, kernel, 2.0)
            for be in backends:
                got = run(f"matrix_nms {be} {n} {kernel}",
                          lambda: with_backend(be, fastiou.matrix_nms, bx.to(DEVICE), sc.to(DEVICE), lab.to(DEVICE), kernel, 2.0))
                if got is not None:
                    compare_float(f"matrix_nms {be} {n} {kernel} vs cpp", got, want)


def check_multiclass(backends, quick: bool):
    rng = np.random.default_rng(9)
    for bsz, n, c, shared in ((2, 300, 5, True), (3, 200, 4, False), (1, 0, 3, True), (2, 2000, 20, True)):
        base = torch.tensor(np.stack([_inputs.random_boxes(n, i) for i in range(bsz)]), dtype=torch.float32)
        boxes = base if shared else base[:, :, None, :].repeat(1, 1, c, 1) + torch.rand(bsz, n, c, 4)
        scores = torch.tensor(np.round(rng.random((bsz, n, c)), 2), dtype=torch.float32)
        args = (0.5, 0.2, 30, 100)
        with fastiou.use_backend("cpp"):
            want = fastiou.multiclass_nms(boxes, scores, *args)
        for be in backends:
            name = f"multiclass_nms {be} B={bsz} N={n} C={c} {'shared' if shared else 'per-class'} boxes"
            got = run(name, lambda: with_backend(be, fastiou.multiclass_nms, boxes.to(DEVICE), scores.to(DEVICE), *args))
            if got is None:
                continue
            compare_idx(name + " num vs cpp", got.num, want.num)
            compare_idx(name + " indices vs cpp", got.indices.flatten(), want.indices.flatten())
            compare_idx(name + " classes vs cpp", got.classes.flatten(), want.classes.flatten())
            compare_float(name + " scores vs cpp", got.scores.flatten(), want.scores.flatten())
            compare_float(name + " boxes vs cpp", got.boxes.flatten(), want.boxes.flatten())


def check_cupy_inputs(backends, quick: bool):
    """The same ops on cupy arrays (results must be cupy arrays on the same device)."""
    if DEVICE != "cuda":
        return
    try:
        import cupy as cp
    except ImportError as e:
        line("SKIP", "cupy inputs", str(e))
        return
    bx, sc = case_clustered_ties(3000, 61)
    cls = np.random.default_rng(4).integers(0, 5, 3000)
    with fastiou.use_backend("cpp"):
        want = fastiou.nms(bx, sc, 0.5)
        want_b = fastiou.batched_nms(bx, sc, torch.tensor(cls), 0.5)
        boxes3 = torch.tensor(np.stack([_inputs.random_boxes(500, i) for i in range(3)]), dtype=torch.float32)
        scores3 = torch.tensor(np.round(np.random.default_rng(8).random((3, 500, 6)), 2), dtype=torch.float32)
        want_m = fastiou.multiclass_nms(boxes3, scores3, 0.5, 0.3, 20, 50)
    cb, cs, cc = cp.asarray(bx.numpy()), cp.asarray(sc.numpy()), cp.asarray(cls)
    for be in backends:
        got = run(f"nms {be} cupy-arrays", lambda: with_backend(be, fastiou.nms, cb, cs, 0.5))
        if got is not None:
            ok = isinstance(got, cp.ndarray)
            compare_idx(f"nms {be} cupy-arrays vs cpp{'' if ok else ' (NOT a cupy array)'}", cp.asnumpy(got), want)
        got = run(f"batched_nms {be} cupy-arrays", lambda: with_backend(be, fastiou.batched_nms, cb, cs, cc, 0.5))
        if got is not None:
            compare_idx(f"batched_nms {be} cupy-arrays vs cpp", cp.asnumpy(got), want_b)
        got = run(f"multiclass_nms {be} cupy-arrays",
                  lambda: with_backend(be, fastiou.multiclass_nms, cp.asarray(boxes3.numpy()),
                                       cp.asarray(scores3.numpy()), 0.5, 0.3, 20, 50))
        if got is not None:
            compare_idx(f"multiclass_nms {be} cupy-arrays indices vs cpp", cp.asnumpy(got.indices).ravel(),
                        want_m.indices.ravel())
            compare_idx(f"multiclass_nms {be} cupy-arrays classes vs cpp", cp.asnumpy(got.classes).ravel(),
                        want_m.classes.ravel())
    cp.cuda.Device().synchronize()


# ------------------------------------------------------------------------------ masks

def mask_case(n: int, h: int, w: int, seed: int):
    """Blobs plus the edge cases (an empty mask, one pixel in a corner, full, borders, a
    duplicate) as uint8 (N, H, W), scores with ties and a NaN, and labels of 3 classes."""
    m = _inputs.random_masks(n, h, w, seed=seed, empty_every=9)
    extra = np.zeros((5, h, w), np.uint8)
    extra[1, h - 1, w - 1] = 1
    extra[2] = 1
    extra[3, :, 0] = extra[3, 0, :] = 1
    extra[4] = m[min(1, n - 1)]
    m = np.concatenate([m, extra])
    rng = np.random.default_rng(seed + 1)
    s = np.round(rng.random(len(m)), 1)  # ten distinct scores: ties everywhere
    s[len(m) // 2] = np.nan
    lab = rng.integers(0, 3, len(m))
    return torch.tensor(m), torch.tensor(s, dtype=torch.float32), torch.tensor(lab)


def compare_exact(name: str, got, want) -> None:
    """Bit-for-bit equality of any arrays (flattened; NaN equal to NaN)."""
    g, w = np_of(got).ravel(), np_of(want).ravel()
    if g.shape == w.shape and np.array_equal(g, w, equal_nan=g.dtype.kind == "f"):
        line("MATCH", name, f"n={len(g)} (bit-exact)")
    else:
        line("MISMATCH", name, first_diff(g, w))


def check_masks(backends, quick: bool):
    """pack_masks / unpack / mask_iou / mask_nms / matrix_nms / resolve_overlaps on the GPU
    against the cpp backend: the mask ops are integer counts and one rounding, so bit-exact."""
    try:
        from fastiou import masks as fm
    except ImportError as e:
        line("SKIP", "masks", f"fastiou.masks not importable: {e}")
        return
    shapes = [(37, 61, 130), (1, 1, 1), (70, 65, 64), (20, 200, 5)]
    if not quick:
        shapes.append((120, 256, 300))  # 4 x 4 tiles of mask_iou; one split per tile
    for n, h, w in shapes:
        m, s, lab = mask_case(n, h, w, seed=n + h)
        m2, _, _ = mask_case(max(1, n // 2), h, w, seed=n + h + 5)
        tag = f"{len(m)}x{h}x{w}"
        with fastiou.use_backend("cpp"):
            pw = fm.pack_masks(m)
            want = {"iou": fm.mask_iou(m, m2), "iou_self": fm.mask_iou(pw, pw),
                    "resolve": fm.resolve_overlaps(m, s)}
            for thr in (0.3, 0.5, 0.0):
                want[f"nms {thr}"] = fm.mask_nms(pw, s, thr)
            for kernel in ("gaussian", "linear"):
                want[f"matrix {kernel}"] = fastiou.matrix_nms(pw, s, lab, kernel, 2.0)
        md, m2d, sd, labd = m.to(DEVICE), m2.to(DEVICE), s.to(DEVICE), lab.to(DEVICE)
        for be in backends:
            pg = run(f"pack_masks {be} {tag}", lambda: with_backend(be, fm.pack_masks, md))
            if pg is not None:
                compare_exact(f"pack_masks {be} {tag} bits vs cpp", pg.bits, pw.bits)
                compare_exact(f"pack_masks {be} {tag} boxes vs cpp", pg.boxes, pw.boxes)
                compare_exact(f"pack_masks {be} {tag} areas vs cpp", pg.areas, pw.areas)
                got = run(f"unpack {be} {tag}", lambda: with_backend(be, pg.unpack))
                if got is not None:
                    compare_exact(f"unpack {be} {tag} vs the masks", got, m != 0)
                got = run(f"from_bits {be} {tag}", lambda: with_backend(be, fm.PackedMasks.from_bits, pg.bits, w))
                if got is not None:
                    compare_exact(f"packed_stats {be} {tag} boxes vs cpp", got.boxes, pw.boxes)
                    compare_exact(f"packed_stats {be} {tag} areas vs cpp", got.areas, pw.areas)
                got = run(f"mask_iou {be} {tag} packed self",
                          lambda: with_backend(be, fm.mask_iou, pg, pg))
                if got is not None:
                    compare_exact(f"mask_iou {be} {tag} packed self vs cpp", got, want["iou_self"])
            got = run(f"mask_iou {be} {tag}", lambda: with_backend(be, fm.mask_iou, md, m2d))
            if got is not None:
                compare_exact(f"mask_iou {be} {tag} vs cpp", got, want["iou"])
            for thr in (0.3, 0.5, 0.0):
                got = run(f"mask_nms {be} {tag} thr={thr}", lambda: with_backend(be, fm.mask_nms, md, sd, thr))
                if got is not None:
                    compare_idx(f"mask_nms {be} {tag} thr={thr} vs cpp", got, want[f"nms {thr}"])
            for kernel in ("gaussian", "linear"):
                got = run(f"matrix_nms masks {be} {tag} {kernel}",
                          lambda: with_backend(be, fastiou.matrix_nms, md, sd, labd, kernel, 2.0))
                if got is not None:  # the same float32 math; exp may differ by an ulp between libms
                    compare_float(f"matrix_nms masks {be} {tag} {kernel} vs cpp", got, want[f"matrix {kernel}"])
            got = run(f"resolve_overlaps {be} {tag}", lambda: with_backend(be, fm.resolve_overlaps, md, sd))
            if got is not None:
                compare_exact(f"resolve_overlaps {be} {tag} vs cpp", got, want["resolve"])
    if DEVICE != "cuda":
        return
    try:
        import cupy as cp
    except ImportError as e:
        line("SKIP", "masks cupy-arrays", str(e))
        return
    m, s, _ = mask_case(40, 90, 150, seed=77)
    with fastiou.use_backend("cpp"):
        want_iou = fm.mask_iou(m, m)
        want_keep = fm.mask_nms(m, s, 0.4)
    cm, cs = cp.asarray(m.numpy()), cp.asarray(s.numpy())
    for be in backends:  # cupy stores the bits as uint64 (torch: int64)
        got = run(f"mask_iou {be} cupy-arrays", lambda: with_backend(be, fm.mask_iou, cm, cm))
        if got is not None:
            compare_exact(f"mask_iou {be} cupy-arrays vs cpp", cp.asnumpy(got), want_iou)
        got = run(f"mask_nms {be} cupy-arrays", lambda: with_backend(be, fm.mask_nms, cm, cs, 0.4))
        if got is not None:
            compare_idx(f"mask_nms {be} cupy-arrays vs cpp", cp.asnumpy(got), want_keep)
    cp.cuda.Device().synchronize()


# ------------------------------------------------------------------------------ timing

def cuda_median_ms(fn, reps: int = 50, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def timing(backends):
    print(f"\n-- timing on {torch.cuda.get_device_name(0)} (CUDA events, median of 50 after 10 warm-up)")
    rows = []
    for label, n, cls_count in (("nms sparse", 10000, 0), ("nms sparse", 1000, 0), ("nms sparse", 30000, 0),
                                ("nms clustered", 10000, 0), ("batched_nms sparse x80", 10000, 80)):
        bx, sc = case_clustered_ties(n, 52) if "clustered" in label else case_random(n, 51)
        bx, sc = bx.to(DEVICE), sc.to(DEVICE)
        cls = torch.tensor(np.random.default_rng(2).integers(0, 80, n)).to(DEVICE) if cls_count else None
        if cls is None:
            tv = cuda_median_ms(lambda: torchvision.ops.nms(bx, sc, 0.5))
        else:
            tv = cuda_median_ms(lambda: torchvision.ops.batched_nms(bx, sc, cls, 0.5))
        for be in backends:
            def one():
                with fastiou.use_backend(be):
                    if cls is None:
                        return cuda_median_ms(lambda: fastiou.nms(bx, sc, 0.5))
                    return cuda_median_ms(lambda: fastiou.batched_nms(bx, sc, cls, 0.5))
            ms = run(f"timing {label} {n} {be}", one)
            if ms is not None:
                rows.append((f"{label} {n} fp32", be, ms, tv))
    rows += run("timing mask_iou", lambda: mask_iou_timing(backends)) or []
    print("reference: torchvision for nms; torch float32 matmul IoU of float masks for mask_iou")
    print(f"{'workload':<34}{'backend':<8}{'fastiou us':>12}{'reference us':>16}{'speedup':>9}")
    for w, be, ms, tv in rows:
        print(f"{w:<34}{be:<8}{ms * 1e3:>12.1f}{tv * 1e3:>16.1f}{tv / ms:>8.2f}x")
    if "cuda" in backends:
        run("profile", lambda: profile_nms(10000))


def mask_iou_timing(backends, n: int = 100, size: int = 1024):
    """mask_iou of n blobs at size x size, with itself: fastiou from PackedMasks (packed once)
    and from the dense uint8 masks (packing included), against torch's float32 matmul IoU of the
    masks already flattened to float32 (TF32 off, torch's default: exact counts)."""
    from fastiou import masks as fm
    m = torch.tensor(_inputs.random_masks(n, size, size, seed=5)).to(DEVICE)
    f = m.reshape(n, -1).float()

    def torch_iou():
        inter = f @ f.T
        area = f.sum(1)
        return inter / (area[:, None] + area[None, :] - inter)

    ref = cuda_median_ms(torch_iou)
    rows = []
    for be in backends:
        with fastiou.use_backend(be):
            p = fm.pack_masks(m)
            rows.append((f"mask_iou {n}x{n} {size}^2 packed", be, cuda_median_ms(lambda: fm.mask_iou(p, p)), ref))
            rows.append((f"mask_iou {n}x{n} {size}^2 dense", be, cuda_median_ms(lambda: fm.mask_iou(m, m)), ref))
    return rows


def profile_nms(n: int):
    """Where the time of one fastiou cuda nms call goes (kernels seen by torch.profiler / CUPTI)."""
    from torch.profiler import ProfilerActivity, profile
    bx, sc = case_random(n, 51)
    bx, sc = bx.to(DEVICE), sc.to(DEVICE)
    with fastiou.use_backend("cuda"):
        for _ in range(3):
            fastiou.nms(bx, sc, 0.5)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                fastiou.nms(bx, sc, 0.5)
            torch.cuda.synchronize()
    print(f"\n-- fastiou cuda nms {n} sparse, 10 calls profiled:")
    print(prof.key_averages().table(sort_by="device_time_total", row_limit=16, max_name_column_width=60))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the timing")
    ap.add_argument("--cpu-dry-run", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global DEVICE
    if args.cpu_dry_run:
        DEVICE = "cpu"
        args.quick = True
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    t0 = time.perf_counter()
    print(f"fastiou {fastiou.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{torch.cuda.get_device_name(0) if DEVICE == 'cuda' else 'CPU dry run'}")
    backends = gpu_backends()
    for check in (check_nms, check_batched, check_sweep, check_soft, check_matrix, check_multiclass,
                  check_cupy_inputs, check_masks):
        t = time.perf_counter()
        run(check.__name__, lambda: check(backends, args.quick))
        print(f"   ({check.__name__}: {time.perf_counter() - t:.1f} s)", flush=True)
    if not args.quick and backends:
        run("timing", lambda: timing(backends))
    print(f"\n{len(FAILURES)} failures in {time.perf_counter() - t0:.1f} s")
    for f in FAILURES[:30]:
        print("  ", f)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
