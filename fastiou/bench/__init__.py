"""``fastiou bench``: fastiou against its peers, side by side in one process.

Every figure this runner prints is a *ratio* against a baseline measured in the same run,
interleaved with fastiou (absolute times on shared machines move by 2.5x between runs; the
ratios hold), plus the distance from the physical floor (the time to allocate and write a
fresh output of the same size) or, in the ``overhead`` workload, from the bare kernel.
The workloads, the JSON and how to add an area are described in benchmarks/README.md of
the source repository; ``fastiou bench --help`` and ``--list`` here.

The package:

- :mod:`~fastiou.bench.registry`: :class:`Case`, :class:`Contender`, the workload registry
  and the discovery of workload modules;
- :mod:`~fastiou.bench.env`: :class:`Env`, what a workload builder gets (device, libraries,
  backends, thread control), with the contender factories of :mod:`~fastiou.bench.contenders`;
- :mod:`~fastiou.bench.probe`: the machine and environment (CPU, GPU, versions, git);
- :mod:`~fastiou.bench.measure`: interleaved timing, result checks, the rows (ratios);
- :mod:`~fastiou.bench.report`: the table, the JSON, the plot;
- :mod:`~fastiou.bench.runner`: :func:`run` and the command line :func:`main`;
- :mod:`fastiou.bench.workloads`: one module per area (``boxes``, ``nms``, ``masks``,
  ``overhead``); a new area is a new module there, found by :func:`load_workloads`.

Nothing here asserts a speed: this is reporting. ``import fastiou.bench`` imports neither
torch nor numba nor the workload modules; :data:`WORKLOADS` is filled on first use, and
:func:`main` imports torch when it is installed. ``import fastiou`` never imports this package.
"""

from __future__ import annotations

from fastiou.bench.env import Env
from fastiou.bench.registry import (CASE_WORKLOADS, Case, Contender, Workload, case_workload,
                                    load_workloads, selected, workload)
from fastiou.bench.runner import SCHEMA, build_parser, main, run


def __getattr__(name: str):
    # WORKLOADS is the registry's dict, filled with every workload module on first access, so
    # that ``fastiou.bench.WORKLOADS`` lists them all (as ``fastiou bench --list`` does).
    if name == "WORKLOADS":
        from fastiou.bench import registry

        registry.load_workloads()
        return registry.WORKLOADS
    raise AttributeError(f"module 'fastiou.bench' has no attribute {name!r}")


__all__ = ["CASE_WORKLOADS", "Case", "Contender", "Env", "SCHEMA", "WORKLOADS", "Workload", "build_parser",
           "case_workload", "load_workloads", "main", "run", "selected", "workload"]
