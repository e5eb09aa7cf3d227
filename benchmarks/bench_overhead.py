"""pytest-benchmark benchmarks of the ``overhead`` workload: per-call cost on small inputs,
fastiou on numpy arrays and on torch CPU tensors, torchvision, and the bare kernel
(``fastiou._C`` with prepared arrays).

Run explicitly: ``pytest benchmarks/bench_overhead.py --benchmark-group-by=group``. The cases
are those of ``fastiou bench --only overhead`` (``fastiou.bench.workloads.overhead``), so this
file and the runner measure the same thing; ``fastiou bench`` is the reference figure
(interleaved, results checked, µs above the kernel), this file is for pytest-benchmark's
history between commits.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

import _registry_cases as cases  # noqa: E402  (benchmarks/, on sys.path as the test's folder)

ROLES = {"cpu": ["baseline", "fastiou numpy", "fastiou torch", "kernel"], "cuda": []}


@pytest.mark.parametrize("wid,p,device,role", list(cases.params("overhead", ROLES)))
def test_overhead(benchmark, wid, p, device, role):
    cases.run(benchmark, "overhead", wid, p, device, role)
