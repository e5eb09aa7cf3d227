"""The workload registry of ``fastiou bench``: what a case is, and how workloads are found.

A *workload* (an id of BENCHMARKS.md, e.g. ``nms-sparse``) is a generator of :class:`Case`
objects; a case is one (op, size, dtype, device) cell with its :class:`Contender` objects
(baselines, fastiou variants, floors, the bare kernel). Workloads live in the modules of
:mod:`fastiou.bench.workloads`; :func:`load_workloads` imports every module there, so a new
area is one new module in that folder (benchmarks/README.md of the source repository,
"The package, and adding a workload").

This module imports nothing but the standard library: the registry is cheap to import.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator

# ``Env`` in annotations is fastiou.bench.env.Env (which imports this module), ``np`` numpy:
# neither is imported here, so that the registry stays a leaf.

#: The kinds of contender. ``kernel``: the backend function called directly with prepared
#: arrays (the ``overhead`` workload), the floor of fastiou's own call path.
KINDS = ("baseline", "fastiou", "floor", "kernel")


@dataclass
class Contender:
    """One measured callable of a case.

    ``kind`` is one of :data:`KINDS`; ``context`` is entered around every sample (outside the
    timer): a forced backend, a thread count. ``skip`` says why a contender is not measured;
    it then appears in the table with that reason.
    """

    name: str
    kind: str
    call: Callable[[], Any] | None = None
    context: Callable[[], ContextManager] = contextlib.nullcontext
    skip: str | None = None
    expect_type: str | None = None  # "numpy", "torch:cpu", "torch:cuda": what fastiou must return
    expect_dtype: str | None = None
    expect_result: Any = None  # the out= buffer, which the call must return
    #: the part of the result whose type and dtype are checked (default: the result itself),
    #: e.g. the kept indices of a (keep, scores) pair
    typed: Callable[[Any], Any] | None = None
    #: the result as the float64 numpy array that is compared (default: ``Env.to_numpy``);
    #: returning ``None`` means "not comparable" (no check)
    canon: Callable[[Any], "np.ndarray | None"] | None = None


@dataclass
class Case:
    """One (workload, op, size, dtype, device) cell, with everything measured in it.

    Rows of the table: every fastiou contender against the first baseline, then the first
    fastiou contender against each further baseline. ``reference`` returns the float64 numpy
    array that fastiou results are checked against; ``None`` means "the first baseline's
    warm-up result". With a ``reference``, the baselines are checked against it too (their
    check is reported beside fastiou's, e.g. torchvision's inexact batched_nms path).

    ``compare``: ``"close"`` (values within ``rtol``/``atol``), ``"equal"`` (identical,
    in order: index results), ``"set"`` (the same elements, or rows, in any order: detections
    whose order at equal scores is not defined). ``baseline_compare`` (default ``compare``)
    is how the baselines are checked against ``reference``. ``min_repeats``: at least this
    many timed rounds; ``min_sample``: this case's shortest sample in seconds, instead of the
    run's (``overhead`` takes many short rounds: on a shared machine a short sample has a
    better chance to fall between two interruptions, and its figures are the fastest rounds).
    """

    workload: str
    op: str
    size: str
    dtype: str
    device: str
    contenders: list[Contender]
    reference: Callable[[], "np.ndarray"] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    notes: dict = field(default_factory=dict)
    compare: str = "close"
    baseline_compare: str | None = None
    min_repeats: int = 0
    min_sample: float | None = None


@dataclass
class Workload:
    """A registered workload: ``build(env)`` yields its cases. ``summary(rows)``, when given,
    returns extra text printed after the run (e.g. ``overhead``'s table of µs above the
    kernel); ``area`` is the name of the module that registered it."""

    id: str
    title: str
    build: Callable[["Env"], Iterator[Case]]
    area: str = ""
    summary: Callable[[list[dict]], str] | None = None


#: Workload id (as in BENCHMARKS.md) -> :class:`Workload`, in registration order.
WORKLOADS: dict[str, Workload] = {}

#: Workload id -> ``(params(device, quick), case(env, *params))`` for the workloads registered
#: with :func:`case_workload` (benchmarks/_registry_cases.py builds their cases one at a time).
CASE_WORKLOADS: dict[str, tuple[Callable[[str, bool], list[tuple]], Callable[..., Case]]] = {}


def _area_of(fn: Callable) -> str:
    return getattr(fn, "__module__", "").rsplit(".", 1)[-1]


def workload(id: str, title: str, *, summary: Callable[[list[dict]], str] | None = None):
    """Register ``fn(env) -> Iterator[Case]`` as the workload ``id``."""

    def deco(fn):
        if id in WORKLOADS and WORKLOADS[id].build is not fn:
            raise ValueError(f"fastiou bench: workload {id!r} registered twice "
                             f"({WORKLOADS[id].area} and {_area_of(fn)})")
        WORKLOADS[id] = Workload(id, title, fn, _area_of(fn), summary)
        return fn

    return deco


def case_workload(id: str, title: str, params: Callable[[str, bool], list[tuple]], *,
                  summary: Callable[[list[dict]], str] | None = None):
    """Register ``case(env, *p)`` for every ``p`` in ``params(device, quick)`` as workload
    ``id``, and ``(params, case)`` in :data:`CASE_WORKLOADS`."""

    def deco(case_fn):
        CASE_WORKLOADS[id] = (params, case_fn)

        def build(env: "Env") -> Iterator[Case]:
            for p in params(env.device, env.quick):
                yield case_fn(env, *p)

        build.__module__ = case_fn.__module__
        workload(id, title, summary=summary)(build)
        return case_fn

    return deco


def area_cases(area: str) -> dict:
    """The :data:`CASE_WORKLOADS` entries registered by the workload module ``area``."""
    load_workloads()
    return {wid: CASE_WORKLOADS[wid] for wid, w in WORKLOADS.items()
            if w.area == area and wid in CASE_WORKLOADS}


_LOADED: list[str] = []


def load_workloads() -> list[str]:
    """Import every module of :mod:`fastiou.bench.workloads` (each registers its workloads),
    in the order of their ``ORDER`` constant (then by name); returns their names. Modules whose
    name starts with ``_`` are helpers, not areas. Idempotent."""
    if _LOADED:
        return list(_LOADED)
    from fastiou.bench import workloads as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        found.append((getattr(mod, "ORDER", 1000), info.name))
    # Registration happened at import, in import order: put WORKLOADS in ORDER.
    order = [name for _, name in sorted(found)]
    items = sorted(WORKLOADS.items(), key=lambda kv: order.index(kv[1].area) if kv[1].area in order
                   else len(order))
    WORKLOADS.clear()
    WORKLOADS.update(items)
    _LOADED.extend(order)
    return list(order)


def selected(only: list[str] | None) -> list[Workload]:
    """The workloads named by ``--only`` (repeatable, comma-separated); all without it."""
    load_workloads()
    if not only:
        return list(WORKLOADS.values())
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"fastiou bench: unknown workload(s) {', '.join(unknown)}; "
                         f"known: {', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in names]
