"""``fastiou bench``: its baselines against the oracles of tests/reference.py, its registry
(a new area is one module), its result checks, its command line and JSON.

The baselines are what fastiou's speed is quoted against and what its results are checked
against in a run, so a baseline that computes something else (as the soft-NMS one did with
``>`` where mmcv uses ``>=``) makes the benchmark wrong twice. Every baseline that has an
oracle here is compared with it on small inputs, edge cases included.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import reference
from fastiou import _inputs
from fastiou.bench.workloads import boxes as wboxes
from fastiou.bench.workloads import masks as wmasks
from fastiou.bench.workloads import nms as wnms


def run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter outside the source tree (the installed fastiou, or the
    one PYTHONPATH names)."""
    env = {k: v for k, v in os.environ.items() if k != "FASTIOU_BACKEND"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=tempfile.gettempdir())


# --------------------------------------------------------------------------- inputs


def small_boxes(n: int, seed: int) -> np.ndarray:
    """Random boxes plus identical, touching, nested and disjoint pairs."""
    special = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [10, 0, 20, 10], [2, 2, 5, 5],
                        [100, 100, 110, 130], [0, 0, 10, 3]], dtype=np.float64)
    return np.concatenate([special, _inputs.random_boxes(n, seed=seed, max_size=300)])


def exact_threshold_boxes() -> tuple[np.ndarray, np.ndarray]:
    """Box 1's IoU with box 0 is exactly float32(0.3) (30 / 100): a threshold of 0.3 tells
    ``>`` from ``>=`` and a float32 from a float64 comparison; box 2 overlaps box 1 only."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 3], [0, 2, 10, 4], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert np.float32(30) / np.float32(100) == np.float32(0.3)
    return boxes, scores


# --------------------------------------------------------------------------- box baselines


@pytest.mark.parametrize("name,oracle", [("box_iou", reference.iou), ("generalized_box_iou", reference.giou),
                                         ("distance_box_iou", reference.diou),
                                         ("complete_box_iou", reference.ciou)])
def test_numpy_iou_baselines_match_the_oracle(name, oracle):
    b1, b2 = small_boxes(20, 0), small_boxes(15, 1)
    got = wboxes.IOU_OPS[name](b1, b2)
    np.testing.assert_allclose(got, oracle(b1, b2), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- NMS baselines


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_np_nms_matches_the_oracle(thr):
    for seed in range(3):
        boxes, scores = _inputs.clustered_boxes(80, seed=seed, objects=6)
        b, s = boxes.astype(np.float32), scores.astype(np.float32)
        np.testing.assert_array_equal(wnms.np_nms(b, s, thr), reference.nms(b, s, thr))


def test_np_nms_compares_the_threshold_as_a_double():
    # IoU == float32(0.3) > 0.3 as doubles: torchvision (and the oracle) drop box 1.
    b, s = exact_threshold_boxes()
    want = reference.nms(b, s, 0.3)
    assert 1 not in want.tolist()
    np.testing.assert_array_equal(wnms.np_nms(b, s, 0.3), want)


def test_np_batched_nms_matches_the_oracle():
    boxes, scores, labels = _inputs.lvis_detections(120, classes=6, seed=2)
    b, s = boxes.astype(np.float32), scores.astype(np.float32)
    np.testing.assert_array_equal(wnms.np_batched_nms(b, s, labels, 0.5),
                                  reference.batched_nms_by_classes(b, s, labels, 0.5))


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_np_soft_nms_matches_the_oracle(method):
    for seed in range(3):
        boxes, scores = _inputs.clustered_boxes(40, seed=seed, objects=4)
        b, s = boxes.astype(np.float32), scores.astype(np.float32)
        keep, sc = wnms.np_soft_nms(b, s, 0.3, 0.5, 1e-3, method)
        want_keep, want_sc = reference.soft_nms(b, s, 0.3, 0.5, 1e-3, method)
        np.testing.assert_array_equal(keep, want_keep)
        np.testing.assert_allclose(sc, want_sc, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["linear", "hard"])
def test_np_soft_nms_decays_at_an_iou_equal_to_the_threshold(method):
    # mmcv: `if (ovr >= iou_threshold)`. Box 1's IoU with box 0 is exactly the threshold, so
    # its score is decayed (linear: by 1 - 0.3; hard: to 0, then dropped).
    b, s = exact_threshold_boxes()
    keep, sc = wnms.np_soft_nms(b, s, 0.3, 0.5, 1e-3, method)
    want_keep, want_sc = reference.soft_nms(b, s, 0.3, 0.5, 1e-3, method)
    np.testing.assert_array_equal(keep, want_keep)
    np.testing.assert_allclose(sc, want_sc, rtol=1e-6)
    if method == "linear":
        assert math.isclose(float(sc[keep.tolist().index(1)]), 0.8 * 0.7, rel_tol=1e-6)
    else:
        assert 1 not in keep.tolist()


def test_np_soft_nms_rejects_an_unknown_method():
    b, s = exact_threshold_boxes()
    with pytest.raises(ValueError, match="method"):
        wnms.np_soft_nms(b, s, method="linaer")


def test_tv_batched_nms_exact_matches_the_oracle(tv_ops, tv_torch):
    boxes, scores, labels = _inputs.lvis_detections(150, classes=8, seed=4)
    b, s = boxes.astype(np.float32), scores.astype(np.float32)
    got = wnms.tv_batched_nms_exact(tv_ops, tv_torch, tv_torch.from_numpy(b), tv_torch.from_numpy(s),
                                    tv_torch.from_numpy(labels), 0.5)
    np.testing.assert_array_equal(got.numpy(), reference.batched_nms_by_classes(b, s, labels, 0.5))


def _oracle_rows(num, classes, indices) -> np.ndarray:
    return wnms._index_rows([(i, indices[i, :num[i]], classes[i, :num[i]]) for i in range(len(num))])


def test_rcnn_postprocess_baseline_matches_the_oracle(tv_ops, tv_torch):
    # detectron2's per-image loop (exact per-class NMS) against EfficientNMS semantics: the
    # same (image, proposal, class) detections.
    heads = [_inputs.rcnn_box_head(60, 5, seed=i) for i in range(2)]
    boxes = np.stack([h[0] for h in heads]).astype(np.float32)
    scores = np.stack([h[1] for h in heads]).astype(np.float32)
    dets = wnms.tv_rcnn_postprocess(tv_ops, tv_torch, tv_torch.from_numpy(boxes), tv_torch.from_numpy(scores),
                                    0.05, 0.5, 20, exact=True)
    num, _, _, cls, idx = reference.multiclass_nms(boxes, scores, 0.5, 0.05, None, 20)
    assert num.sum() > 10
    np.testing.assert_array_equal(wnms.detections_rows(dets), _oracle_rows(num, cls, idx))


def test_yolo_postprocess_baseline_matches_the_oracle(tv_ops, tv_torch):
    pred = _inputs.yolo_head(2, seed=3, classes=6, dtype=np.float32)
    tp = tv_torch.from_numpy(pred)
    dets = wnms.tv_yolo_postprocess(tv_ops, tv_torch, tp, 0.25, 0.7, 50, exact=True)
    # The oracle gets the same float32 xyxy boxes the baseline computes.
    xyxy = wnms._xywh2xyxy(tv_torch, tp.transpose(-1, -2)[..., :4]).numpy()
    scores = pred[:, 4:].transpose(0, 2, 1)
    num, _, _, cls, idx = reference.multiclass_nms(xyxy, scores, 0.7, 0.25, None, 50)
    assert num.sum() > 5
    np.testing.assert_array_equal(wnms.detections_rows(dets), _oracle_rows(num, cls, idx))


# --------------------------------------------------------------------------- mask baselines


def _masks(n: int, seed: int) -> np.ndarray:
    m = _inputs.instance_masks(n, 24, 30, seed=seed, per_object=3)
    m[1] = 0  # an empty mask: IoU 0, not NaN
    return m


def test_np_mask_iou_matches_the_oracle():
    m1, m2 = _masks(9, 0), _masks(7, 1)
    np.testing.assert_allclose(wmasks.np_mask_iou(m1, m2), reference.mask_iou(m1, m2), rtol=1e-6, atol=0)


def test_torch_mask_iou_matches_the_oracle(tv_torch):
    m1, m2 = _masks(9, 0), _masks(7, 1)
    got = wmasks.torch_mask_iou(tv_torch, tv_torch.from_numpy(m1), tv_torch.from_numpy(m2)).numpy()
    np.testing.assert_allclose(got, reference.mask_iou(m1, m2), rtol=1e-6, atol=0)


def test_coco_mask_iou_matches_the_oracle(coco_mask):
    m1, m2 = _masks(9, 0), _masks(7, 1)
    np.testing.assert_allclose(wmasks.coco_mask_iou(coco_mask, m1, m2), reference.mask_iou(m1, m2),
                               rtol=1e-12, atol=0)


def test_torch_mask_nms_matches_the_oracle(tv_torch):
    masks = _inputs.instance_masks(30, 24, 30, seed=5, per_object=6)
    scores = np.random.default_rng(5).uniform(0.05, 1.0, 30).astype(np.float32)
    got = wmasks.torch_mask_nms(tv_torch, tv_torch.from_numpy(masks), tv_torch.from_numpy(scores), 0.5)
    np.testing.assert_array_equal(got, reference.mask_nms(masks, scores, 0.5))


@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_torch_matrix_nms_matches_the_oracle(tv_torch, kernel):
    masks = _inputs.instance_masks(20, 48, 60, seed=6, per_object=5)
    iou = reference.mask_iou(masks, masks)
    assert (iou[~np.eye(20, dtype=bool)] < 1).all()  # linear: 1 - comp would be 0 (inf decay)
    rng = np.random.default_rng(6)
    scores = rng.uniform(0.05, 1.0, 20).astype(np.float32)
    labels = rng.integers(0, 3, 20)
    got = wmasks.torch_matrix_nms(tv_torch, tv_torch.from_numpy(masks), tv_torch.from_numpy(scores),
                                  tv_torch.from_numpy(labels), kernel, 2.0).numpy()
    np.testing.assert_allclose(got, reference.mask_matrix_nms(masks, scores, labels, kernel, 2.0),
                               rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- checks in a run


def test_compare_values_says_what_differs():
    from fastiou.bench.measure import compare_values

    a = np.array([3.0, 1.0, 2.0])
    assert compare_values(a, a.copy(), "equal") is None
    assert "order differs" in compare_values(a, np.array([1.0, 3.0, 2.0]), "equal")
    assert compare_values(a, np.array([1.0, 3.0, 2.0]), "set") is None
    assert "1 missing, 1 extra" in compare_values(a, np.array([3.0, 1.0, 4.0]), "set")
    assert compare_values(a, a + 1e-9, "close") is None
    assert "1 values differ" in compare_values(a, a + np.array([0, 0, 1.0]), "close")
    assert "NaN" in compare_values(np.array([np.nan]), np.array([1.0]), "close")


def test_overhead_cases_check_fastiou_and_the_kernel_against_torchvision(tv_ops):
    # Every row of the overhead workload, the bare kernel included, computes torchvision's
    # answer (the exact per-class loop for batched_nms).
    from fastiou.bench.env import Env
    from fastiou.bench.measure import measure
    from fastiou.bench.workloads.overhead import overhead_case, overhead_params

    env = Env("cpu", quick=True)
    for p in overhead_params("cpu", True):
        case = overhead_case(env, *p)
        case.min_repeats = 0
        record = measure(env, case, 1, 1e-4, 0.0, min_repeats=1)
        for name, c in record["contenders"].items():
            assert c["skip"] is None, (p, name, c["skip"])
            if c["kind"] in ("fastiou", "kernel"):
                assert c["check"] == "ok", (p, name, c["check"])
            assert c["median_s"] > 0


# --------------------------------------------------------------------------- package, registry, CLI


def test_import_fastiou_imports_no_bench_and_bench_no_torch():
    proc = run_python("""
        import sys
        import fastiou
        print(sorted(m for m in sys.modules if m.startswith('fastiou.bench')))
        import fastiou.bench
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numba')))
        print(sorted(m for m in sys.modules if m.startswith('fastiou.bench.workloads.')))
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["[]", "[]", "[]"]


DEMO_AREA = '''
import numpy as np
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 95

@case_workload("zz-demo", "a demo area dropped into the workloads folder",
               lambda device, quick: [(4,), (6,)])
def demo_case(env, n):
    right = np.arange(n)
    return Case("zz-demo", "arange", str(n), "int64", env.device, [
        Contender("numpy", "baseline", lambda: np.arange(n)),
        Contender("fastiou right", "fastiou", lambda: right.copy(), expect_type="numpy",
                  expect_dtype="int64"),
        Contender("fastiou wrong", "fastiou", lambda: right[::-1].copy()),
    ], rtol=0, atol=0, compare="equal")
'''


THREADS_AREA = '''
import numpy as np
import fastiou
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 96

@case_workload("zz-threads", "box_iou on the default threads and on one",
               lambda device, quick: [(1200,)])
def threads_case(env, n):
    b = np.random.default_rng(0).uniform(0, 100, (n, 4)).astype(np.float32)
    b[:, 2:] += b[:, :2]
    one = env.fastiou_threads(1)
    return Case("zz-threads", "box_iou", str(n), "float32", env.device, [
        Contender("numpy", "baseline", lambda: fastiou.box_iou(b, b)),
        Contender("fastiou[cpp]", "fastiou", lambda: fastiou.box_iou(b, b)),
        Contender("fastiou[cpp] 1-thread", "fastiou", lambda: fastiou.box_iou(b, b), one),
    ], rtol=0, atol=0)
'''


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="the busy process is pinned with sched_setaffinity")
def test_shared_core_mode_measures_each_case_again_under_load(tmp_path):
    """--shared-core: each case twice (idle, then with a busy process on one core), rows and
    records marked with the load, the default-vs-1-thread summary, the busy process gone."""
    (tmp_path / "zz_threads.py").write_text(THREADS_AREA)
    out = tmp_path / "res.json"
    proc = run_python(f"""
        import fastiou.bench.workloads as w
        w.__path__.append({str(tmp_path)!r})
        from fastiou.bench import main
        raise SystemExit(main(['--only', 'zz-threads', '--shared-core', '--json', {str(out)!r},
                               '--repeats', '2', '--min-sample', '0.002']))
        """)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["settings"]["shared_core"] is True
    assert [c.get("load") for c in doc["cases"]] == [None, "1 core busy"]
    loaded = [r for r in doc["rows"] if r.get("load")]
    assert loaded and all(r["check"] == "ok" for r in doc["rows"])
    table, summary = proc.stdout.split("shared core (1 core busy)")
    ops = [line.split()[1:3] for line in table.splitlines() if line.startswith("zz-threads")]
    assert ["box_iou", "[busy]"] in ops and any(o[1] != "[busy]" for o in ops)
    row = next(line for line in summary.splitlines() if line.startswith("zz-threads"))
    assert row.split()[-1] in ("ok", "OVER") and row.split()[-2].endswith("x")
    note = doc["notes"]["shared core"]
    assert "pinned to CPU" in note
    pid = int(note.split("pid ")[1].split(",")[0])
    assert not os.path.exists(f"/proc/{pid}") or "while True" not in open(f"/proc/{pid}/cmdline").read()


def test_a_module_in_the_workloads_folder_is_a_new_area(tmp_path):
    (tmp_path / "zz_demo.py").write_text(DEMO_AREA)
    proc = run_python(f"""
        import fastiou.bench.workloads as w
        w.__path__.append({str(tmp_path)!r})
        from fastiou.bench import main, WORKLOADS
        main(['--list'])
        print('area', WORKLOADS['zz-demo'].area)
        main(['--only', 'zz-demo', '--json', '-', '--repeats', '1', '--min-sample', '0.0001'])
        """)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    listed = [line.split()[0] for line in lines[: lines.index("area zz_demo")]]
    assert listed[-2:] == ["overhead", "zz-demo"] and listed[0] == "iou-square"
    rows = [line for line in lines if line.startswith("zz-demo") and " arange " in line]
    assert len(rows) == 4
    assert all(" ok" in r for r in rows if "fastiou right" in r)
    assert all("DIFF: same set, order differs" in r for r in rows if "fastiou wrong" in r)


def test_cli_writes_the_json_fields_and_the_overhead_summary(tmp_path, tv_ops):
    out = tmp_path / "res.json"
    proc = run_python(f"""
        from fastiou.bench import main
        raise SystemExit(main(['--quick', '--only', 'overhead', '--json', {str(out)!r},
                               '--repeats', '1', '--min-sample', '0.0005']))
        """)
    assert proc.returncode == 0, proc.stderr
    assert "above" in proc.stdout and "targets" in proc.stdout
    doc = json.loads(out.read_text())
    for key in ("schema", "created", "command", "settings", "machine", "versions", "git", "fastiou_info",
                "backends", "threads", "notes", "rows", "cases", "seconds"):
        assert key in doc, key
    assert doc["settings"]["workloads"] == ["overhead"]
    assert {"cpu", "cores"} <= set(doc["machine"])
    row_keys = {"workload", "op", "size", "dtype", "device", "baseline", "baseline_s", "fastiou", "fastiou_s",
                "ratio", "floor_s", "pct_floor", "floor_write_s", "pct_floor_write", "check", "baseline_check",
                "skip", "kernel_s", "above_kernel_s", "kernel_min_s", "above_kernel_min_s"}
    assert doc["rows"] and all(row_keys <= set(r) for r in doc["rows"])
    assert {(r["op"], r["fastiou"]) for r in doc["rows"]} >= {("nms", "fastiou numpy"), ("nms", "fastiou torch"),
                                                            ("box_iou", "fastiou torch"),
                                                            ("batched_nms", "fastiou numpy")}
    assert all(r["check"] == "ok" and r["kernel_check"] == "ok" for r in doc["rows"])
    for r in doc["rows"]:
        assert math.isclose(r["above_kernel_s"], r["fastiou_s"] - r["kernel_s"])
        assert math.isclose(r["above_kernel_min_s"], r["fastiou_min_s"] - r["kernel_min_s"])
        assert r["kernel_min_s"] <= r["kernel_s"] and r["fastiou_min_s"] <= r["fastiou_s"]
    saved = run_python(f"from fastiou.bench import main; main(['--report', {str(out)!r}])")
    assert saved.returncode == 0, saved.stderr
    assert "fastiou numpy" in saved.stdout and "above" in saved.stdout


def test_cli_plot_needs_matplotlib_or_draws(tmp_path):
    png = tmp_path / "r.png"
    proc = run_python(f"""
        from fastiou.bench import main
        raise SystemExit(main(['--only', 'overhead', '--json', '-', '--repeats', '1', '--min-sample', '0.0005',
                               '--plot', {str(png)!r}]))
        """)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert proc.returncode == 2 and "matplotlib" in proc.stderr
        assert not png.exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert png.stat().st_size > 1000


def test_unknown_workload_is_refused_with_the_known_ones():
    proc = run_python("from fastiou.bench import main; main(['--only', 'nms-sparse,nope'])")
    assert proc.returncode != 0
    assert "unknown workload(s) nope" in proc.stderr and "overhead" in proc.stderr
