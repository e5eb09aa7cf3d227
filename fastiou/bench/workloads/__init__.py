"""The workload modules of ``fastiou bench``, one per area.

Every module here (not starting with ``_``) is imported by
:func:`fastiou.bench.registry.load_workloads` and registers its workloads with
``@workload`` or ``@case_workload``; its ``ORDER`` constant places them in ``--list`` and in
a full run. A new area is a new module in this folder (benchmarks/README.md of the
source repository has an example).
"""
