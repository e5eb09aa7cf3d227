"""``fastiou demo``: the planted problems are found, the reports are written, the CLI prints them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("fastiou.diagnostics")
pytest.importorskip("pycocotools")
from fastiou.diagnostics.demo import build_demo, run_demo  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_planted_problem_is_found(tmp_path):
    r = run_demo(str(tmp_path), plots=False)
    _, _, planted = build_demo()
    assert set(r.found) == set(planted) and all(r.found.values()), r.found
    # and nothing the demo did not plant in the ground truth
    kinds = {f.kind for f in r.check.findings}
    assert kinds == {"duplicate", "mask_overlap", "cross_class_overlap", "crowd_overlap"}
    unreached = {w["annotation_id"] for w in r.anchors.unreached["worst"]}
    assert unreached == {501, 502, 503}
    for name in ("instances.json", "predictions.json", "check.json", "anchors.json", "sweep.json",
                 "summary.json", os.path.join("check", "index.html")):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "summary.json").read_text())["found"] == r.found


def test_demo_data_is_deterministic():
    assert build_demo()[:2] == build_demo()[:2]


def test_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "demo"
    p = subprocess.run([sys.executable, "-m", "fastiou.cli", "demo", "--out", str(out), "--plain"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    for text in ("$ fastiou check", "$ fastiou anchors", "$ fastiou sweep", "planted problems",
                 "reports written to"):
        assert text in p.stdout
    assert " NO" not in p.stdout and "Traceback" not in p.stderr
