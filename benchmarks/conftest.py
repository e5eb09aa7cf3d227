"""Collects ``bench_*.py`` here, and only when benchmarks/ is asked for.

The project's test run is ``pytest tests/``, which never enters this folder. ``pytest
benchmarks/`` (or a file in it) runs the pytest-benchmark benchmarks; this hook is what makes
pytest see ``bench_*.py`` files without changing the project's ``python_files`` setting.
"""

from __future__ import annotations

from fnmatch import fnmatch

import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path):
        return None  # named on the command line: pytest's own collector takes it
    if any(fnmatch(file_path.name, pat) for pat in parent.config.getini("python_files")):
        return None  # already matched by the project's python_files setting
    return pytest.Module.from_parent(parent, path=file_path)
