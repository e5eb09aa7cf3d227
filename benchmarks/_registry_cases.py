"""What benchmarks/bench_nms.py, bench_masks.py and bench_overhead.py share: the cases of the
``fastiou bench`` workloads of one area (a module of ``fastiou.bench.workloads``; same inputs,
same calls, same thread settings as the runner) as pytest parameters, one per
(workload, parameters, device, contender role), and the benchmark of one contender.

A role is a contender name of ``fastiou.bench``, or ``"baseline"`` (a case's first baseline)
and ``"baseline 1-thread"`` (its one-thread run).
"""

from __future__ import annotations

import functools
import os

import pytest

from fastiou import bench
from fastiou.bench.registry import area_cases

try:
    import torch
except Exception:  # torch absent or broken: numpy / pycocotools baselines only
    torch = None

HAS_CUDA = torch is not None and torch.cuda.is_available()
QUICK = os.environ.get("FASTIOU_BENCH_QUICK", "") not in ("", "0")
#: area (module of fastiou.bench.workloads) -> workload id -> (params(device, quick), case(env, *params))
REGISTRIES = {area: area_cases(area) for area in ("nms", "masks", "overhead")}


def params(registry: str, roles: dict[str, list[str]]):
    """pytest parameters ``(wid, p, device, role)`` of every case of ``REGISTRIES[registry]``."""
    for device in ("cpu", "cuda"):
        marks = [] if device == "cpu" or HAS_CUDA else [pytest.mark.skip(reason="no CUDA device")]
        for wid, (case_params, _) in REGISTRIES[registry].items():
            for p in case_params(device, QUICK):
                for role in roles[device]:
                    pid = "-".join(str(x) for x in (wid, *p, device, role.replace(" ", "_")))
                    yield pytest.param(wid, p, device, role, marks=marks, id=pid)


@functools.lru_cache(maxsize=None)
def env(device: str) -> bench.Env:
    return bench.Env(device, QUICK)


@functools.lru_cache(maxsize=1)  # the tests of one case run one after the other
def _case(registry: str, device: str, wid: str, p: tuple) -> bench.Case:
    return REGISTRIES[registry][wid][1](env(device), *p)


def contender(case: bench.Case, role: str) -> bench.Contender | None:
    baselines = [c for c in case.contenders if c.kind == "baseline"]
    if role == "baseline":
        return baselines[0] if baselines else None
    if role == "baseline 1-thread":
        return next((c for c in baselines[1:] if c.name.endswith("1-thread")), None)
    if role in (c.name for c in baselines[:1]):
        return None  # the first baseline is the "baseline" role
    return next((c for c in case.contenders if c.name == role), None)


def run(benchmark, registry: str, wid: str, p: tuple, device: str, role: str) -> None:
    """Benchmarks contender ``role`` of the case ``REGISTRIES[registry][wid]`` with parameters ``p``."""
    case = _case(registry, device, wid, p)
    c = contender(case, role)
    if c is None:
        pytest.skip(f"no {role} contender here (see the notes of `fastiou bench`)")
    if c.skip:
        pytest.skip(c.skip)
    benchmark.group = f"{case.workload} {case.op} {case.size} {case.dtype} {device}"
    benchmark.extra_info["contender"] = c.name
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    call = c.call

    def timed():
        r = call()
        sync()
        return r

    with c.context():
        result = benchmark(timed)
    assert result is not None
