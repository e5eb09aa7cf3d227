"""How a case is measured, and the table rows (ratios) made of it.

1. every contender (baselines, fastiou variants, the floors, the bare kernel) is called once
   as a warm-up (JIT compilation, first-touch of caches); fastiou's (and the kernel's) results
   are checked against the baseline's or the case's reference there, so a fast wrong answer
   shows as ``DIFF`` rather than as a speed-up;
2. each contender gets an inner loop count ``k`` so that one sample lasts ``min_sample``
   seconds or more (fast calls are not timed one by one); a baseline whose warm-up already
   lasted ten samples gets ``k = 1`` without more calls;
3. repeats: one sample of every contender per round, the order rotated each round, the
   garbage collector off; the figure is the median of the rounds.
On CUDA a sample is bracketed by ``torch.cuda.synchronize()``, so it is the end-to-end time
per call of a ``k``-call loop (launches included), measured the same way for all.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastiou.bench.probe import first_line
from fastiou.bench.registry import Case, Contender

# ``Env`` in annotations is fastiou.bench.env.Env, not imported here: env imports this module.

#: The kinds whose results are checked against the reference.
CHECKED = ("fastiou", "kernel")


@dataclass
class _Run:
    c: Contender
    k: int = 1
    samples: list[float] = field(default_factory=list)
    warmup_s: float | None = None
    error: str | None = None


def sample(env: "Env", c: Contender, k: int) -> float:
    """Seconds per call of ``k`` calls of ``c`` in a row, inside ``c.context()``."""
    sync = env.sync
    call = c.call
    with c.context():
        sync()
        t0 = time.perf_counter()
        for _ in range(k):
            call()
        sync()
        return (time.perf_counter() - t0) / k


# --------------------------------------------------------------------------------------------
# Checking results


def _data_ptr(x) -> int | None:
    for get in (lambda: x.data_ptr(), lambda: x.__array_interface__["data"][0],
                lambda: x.__cuda_array_interface__["data"][0]):
        try:
            return int(get())
        except Exception:
            continue
    return None


def _same_buffer(x, buf) -> bool:
    """``x`` is ``buf`` or a view starting at its first byte (as a DLPack round trip gives)."""
    return x is buf or (_data_ptr(x) is not None and _data_ptr(x) == _data_ptr(buf))


def _canon(env: "Env", c: Contender, x: Any) -> np.ndarray | None:
    return c.canon(x) if c.canon is not None else env.to_numpy(x)


def _elements(a: np.ndarray) -> list:
    """The elements of a canonical result: scalars of a 1-D array, row tuples of a 2-D one."""
    return a.tolist() if a.ndim == 1 else [tuple(r) for r in a.reshape(len(a), -1).tolist()]


def _set_diff(got: np.ndarray, ref: np.ndarray) -> str | None:
    """``None`` when ``got`` and ``ref`` hold the same elements (as multisets), else how many
    are missing from / extra in ``got``."""
    g, r = Counter(_elements(got)), Counter(_elements(ref))
    if g == r:
        return None
    missing, extra = sum((r - g).values()), sum((g - r).values())
    return f"{missing} missing, {extra} extra (of {len(ref)})"


def _close_diff(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> str | None:
    problems = []
    nan_got, nan_ref = np.isnan(got), np.isnan(ref)
    if (nan_got != nan_ref).any():
        problems.append(f"NaN at {int((nan_got != nan_ref).sum())} places differs")
    both = ~(nan_got | nan_ref)
    if both.any():
        err = np.abs(got[both] - ref[both])
        bad = err > atol + rtol * np.abs(ref[both])
        if bad.any():
            problems.append(f"{int(bad.sum())} values differ, max |d| {float(err.max()):.3g}")
    return "; ".join(problems) or None


def compare_values(got: np.ndarray, ref: np.ndarray, mode: str = "close", rtol: float = 1e-4,
                   atol: float = 1e-5) -> str | None:
    """``None`` when ``got`` matches ``ref`` under ``mode`` (see :class:`Case`), else why not."""
    if mode == "set":
        if got.shape[1:] != ref.shape[1:]:
            return f"shape {got.shape} != {ref.shape}"
        return _set_diff(got, ref)
    if mode == "equal":
        if got.shape == ref.shape and np.array_equal(got, ref, equal_nan=True):
            return None
        if got.shape[1:] != ref.shape[1:]:
            return f"shape {got.shape} != {ref.shape}"
        diff = _set_diff(got, ref)
        if diff is not None:
            return diff
        neq = np.flatnonzero(np.any((got != ref).reshape(len(got), -1), axis=1))
        return f"same set, order differs from position {int(neq[0])}"
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    return _close_diff(got, ref, rtol, atol)


def check_result(env: "Env", case: Case, c: Contender, x: Any, ref: np.ndarray | None) -> str:
    """``ok`` or what is wrong with a result ``x`` of ``c`` (type, dtype, shape, values)."""
    problems = []
    xt = c.typed(x) if c.typed is not None else x
    if c.expect_type and env.type_of(xt) != c.expect_type:
        problems.append(f"type {env.type_of(xt)} != {c.expect_type}")
    if c.expect_result is not None and not _same_buffer(xt, c.expect_result):
        problems.append("out= buffer not returned")
    if c.expect_dtype and env.dtype_of(xt) != c.expect_dtype:
        problems.append(f"dtype {env.dtype_of(xt)} != {c.expect_dtype}")
    if ref is not None:
        got = _canon(env, c, x)
        if got is not None:
            why = compare_values(got, ref, case.compare, case.rtol, case.atol)
            if why:
                problems.append(why)
    return "ok" if not problems else "; ".join(problems)


def _check_warmup(env: "Env", case: Case, r: _Run, result: Any, ref: list, checks: dict) -> None:
    """The first baseline's result becomes the reference (when the case has none); further
    baselines (for information) and fastiou / the kernel are checked against it."""
    c = r.c
    try:
        if c.kind == "baseline":
            got = _canon(env, c, result)
            if got is None:
                return
            if not ref and case.reference is None:
                ref.append(got)
            elif ref:
                checks[c.name] = compare_values(got, ref[0], case.baseline_compare or case.compare,
                                                case.rtol, case.atol) or "ok"
        elif c.kind in CHECKED:
            checks[c.name] = check_result(env, case, c, result, ref[0] if ref else None)
    except Exception as exc:
        checks[c.name] = f"check failed: {first_line(exc)}"


# --------------------------------------------------------------------------------------------
# Measuring


def _warm_up(env: "Env", case: Case, r: _Run, ref: list, checks: dict, min_sample: float) -> None:
    """One call (timed as ``warmup_s``, its result checked), then the loop count ``k``."""
    with r.c.context():
        env.sync()
        t0 = time.perf_counter()
        result = r.c.call()
        env.sync()
        r.warmup_s = time.perf_counter() - t0
    _check_warmup(env, case, r, result, ref, checks)
    del result  # keep one result alive at a time
    # A slow baseline (no JIT to hide in its first call) is looped once: calibrating it would
    # only repeat a call that already lasts ten samples' worth.
    slow_baseline = r.c.kind != "fastiou" and r.warmup_s >= 10 * min_sample
    if r.warmup_s < max(1.0, 10 * min_sample) and not slow_baseline:
        # k from the fastest of a few calls after the warm-up (which may have compiled
        # something): a call caught by a scheduler stall would give a small k, and then every
        # sample would carry a whole stall.
        times: list[float] = []
        while len(times) < 4 and sum(times) < 2 * min_sample:
            times.append(sample(env, r.c, 1))
        r.k = max(1, min(100000, math.ceil(min_sample / max(min(times), 1e-9))))


def _rounds(env: "Env", live: list[_Run], repeats: int, min_repeats: int, case_budget: float,
            t_case: float) -> int:
    """Rounds of one sample per live contender, order rotated each round, GC off; returns
    how many rounds ran (at least ``min_repeats`` unless ``repeats`` is smaller, then until
    ``repeats`` or the case's time budget)."""
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    done = 0
    try:
        for rnd in range(repeats):
            order = live[rnd % len(live):] + live[: rnd % len(live)] if live else []
            for r in order:
                if r.error is not None:
                    continue
                try:
                    r.samples.append(sample(env, r.c, r.k))
                except Exception as exc:
                    r.error = first_line(exc)
            done = rnd + 1
            if done >= min_repeats and time.perf_counter() - t_case > case_budget:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return done


def _contender_record(r: _Run, check: str | None) -> dict:
    ok = r.error is None and r.samples
    return {
        "kind": r.c.kind,
        "median_s": statistics.median(r.samples) if ok else None,
        "min_s": min(r.samples) if ok else None,
        "samples_s": r.samples,
        "k": r.k,
        "warmup_s": r.warmup_s,
        "skip": r.error,
        "check": check,
    }


def measure(env: "Env", case: Case, repeats: int, min_sample: float, case_budget: float,
            min_repeats: int = 3) -> dict:
    """Measure every contender of ``case`` interleaved; return the case's JSON record."""
    if case.min_sample is not None:
        min_sample = case.min_sample
    runs = [_Run(c, error=c.skip) for c in case.contenders]
    live = [r for r in runs if r.error is None]
    gc.collect()
    t_case = time.perf_counter()
    ref: list = []  # [float64 reference] once known
    notes = dict(case.notes)
    checks: dict[str, str] = {}
    if case.reference is not None and live:
        try:
            ref.append(case.reference())
        except Exception as exc:
            notes["reference"] = f"reference failed: {first_line(exc)}"
    for r in live:  # warm-up and calibration, in contender order (baselines come first)
        try:
            _warm_up(env, case, r, ref, checks, min_sample)
        except Exception as exc:
            r.error = first_line(exc)
    live = [r for r in live if r.error is None]
    ref.clear()
    if repeats > 0 and case.min_repeats:
        repeats = max(repeats, case.min_repeats)
        min_repeats = max(min_repeats, case.min_repeats)
    done = _rounds(env, live, repeats, min_repeats, case_budget, t_case)
    return {
        "workload": case.workload, "op": case.op, "size": case.size, "dtype": case.dtype,
        "device": case.device, "repeats": done, "seconds": time.perf_counter() - t_case,
        "min_sample_s": min_sample,
        "contenders": {r.c.name: _contender_record(r, checks.get(r.c.name)) for r in runs},
        "notes": notes,
    }


# --------------------------------------------------------------------------------------------
# Rows


def _pairs(cs: dict) -> list[tuple[str | None, str | None]]:
    """(baseline, fastiou) name pairs of a case record: each fastiou variant against the first
    baseline (a "... 1-thread" variant against the "... 1-thread" baseline when there is one),
    then each further baseline against the first measured fastiou variant (not an out= one)."""
    base = [n for n, c in cs.items() if c["kind"] == "baseline"]
    fast = [n for n, c in cs.items() if c["kind"] == "fastiou"]
    if not fast:
        return [(b, None) for b in base]
    one = "1-thread"
    base1 = next((b for b in base if b.endswith(one)), None)
    measured = [f for f in fast if cs[f]["median_s"] is not None and not f.endswith(one)]
    main_fast = next((f for f in measured if not f.endswith(" out=")), measured[0] if measured else fast[0])
    first = base[0] if base else None
    pairs = [(base1 if f.endswith(one) and base1 else first, f) for f in fast]
    for b in base[1:]:
        if b == base1 and any(f.endswith(one) and cs[f]["median_s"] is not None for f in fast):
            continue
        pairs.append((b, main_fast))
    return pairs


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def rows_of(record: dict) -> list[dict]:
    """The table rows of a case record (see :func:`_pairs`). ``ratio`` = baseline time /
    fastiou time; ``pct_floor`` = floor time / fastiou time; with a ``kernel`` contender,
    ``kernel_s`` and ``above_kernel_s`` = fastiou time - kernel time (the call path's cost)."""
    cs = record["contenders"]
    floor = cs.get("floor", {}).get("median_s")
    floor_write = cs.get("floor write", {}).get("median_s")
    kernel = next((c for c in cs.values() if c["kind"] == "kernel"), None)
    kt = kernel["median_s"] if kernel else None
    rows = []
    load = record.get("load")
    for b, f in _pairs(cs):
        bt = cs[b]["median_s"] if b else None
        ft = cs[f]["median_s"] if f else None
        skips = [s for s in ((cs[b]["skip"] if b else None), (cs[f]["skip"] if f else None)) if s]
        skip = "; ".join(dict.fromkeys(skips))  # the same reason once
        row = {
            "workload": record["workload"], "op": record["op"], "size": record["size"],
            "dtype": record["dtype"], "device": record["device"],
            "baseline": b, "baseline_s": bt, "fastiou": f, "fastiou_s": ft,
            "ratio": _ratio(bt, ft),
            "floor_s": floor, "pct_floor": 100.0 * floor / ft if floor and ft else None,
            "floor_write_s": floor_write,
            "pct_floor_write": 100.0 * floor_write / ft if floor_write and ft else None,
            "check": cs[f]["check"] if f else None,
            "baseline_check": cs[b].get("check") if b else None,
            "skip": skip or None,
        }
        if load:
            row["load"] = load
        if kernel is not None:
            row.update(kernel_s=kt, above_kernel_s=ft - kt if ft is not None and kt is not None else None,
                       kernel_check=kernel["check"], kernel_skip=kernel["skip"])
            # The fastest round too: on a shared machine interference only adds, so the
            # minimum is the steadier estimate of a per-call cost (what timeit reports).
            bm, fm, km = (cs[b]["min_s"] if b else None), (cs[f]["min_s"] if f else None), kernel["min_s"]
            row.update(baseline_min_s=bm, fastiou_min_s=fm, kernel_min_s=km,
                       above_kernel_min_s=fm - km if fm is not None and km is not None else None)
        rows.append(row)
    return rows
