"""``fastiou sweep`` / ``fastiou.diagnostics.sweep``: every setting against oracles.

Oracles: torchvision's nms/batched_nms run per threshold and per image; pycocotools' mask IoU;
pycocotools' COCOeval run directly on the detections the oracle keeps; the published COCOeval
numbers of the real predictions in ../shared/data. Plus bad input, the engines (processes, dask)
and the command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import require

diag = pytest.importorskip("fastiou.diagnostics")
from fastiou.diagnostics.sweep import NO_NMS, STATS, greedy_sweep, parse_spec, sweep  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("FASTIOU_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
REAL_GT = os.path.join(SHARED_DATA, "coco_val2014_instances_100img.json")
REAL_BBOX = os.path.join(SHARED_DATA, "coco_val2014_bbox_results_100img.json")
REAL_SEGM = os.path.join(SHARED_DATA, "coco_val2014_segm_results_100img.json")


# ------------------------------------------------------------------------------ synthetic data

def synthetic(n_images=6, per_image=14, n_cats=3, h=48, w=64, seed=0, masks=True):
    """Ground truth (rectangles as polygons) and noisy, duplicated predictions with RLE masks."""
    mu = require("pycocotools.mask")
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": c + 1, "name": f"c{c + 1}"}
                                                           for c in range(n_cats)]}
    preds = []
    aid = 1
    for iid in range(1, n_images + 1):
        gt["images"].append({"id": iid, "height": h, "width": w, "file_name": f"{iid}.jpg"})
        objs = []
        for _ in range(4):
            x0, y0 = rng.integers(0, w - 16), rng.integers(0, h - 16)
            bw, bh = rng.integers(6, 16), rng.integers(6, 16)
            c = int(rng.integers(1, n_cats + 1))
            objs.append((x0, y0, bw, bh, c))
            poly = [x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]
            gt["annotations"].append({"id": aid, "image_id": iid, "category_id": c, "iscrowd": 0,
                                      "segmentation": [[float(v) for v in poly]],
                                      "bbox": [float(x0), float(y0), float(bw), float(bh)],
                                      "area": float(bw * bh)})
            aid += 1
        for k in range(per_image):
            x0, y0, bw, bh, c = objs[k % len(objs)]
            dx, dy = rng.integers(-3, 4, size=2)
            x1, y1 = int(np.clip(x0 + dx, 0, w - 2)), int(np.clip(y0 + dy, 0, h - 2))
            x2, y2 = min(w, x1 + bw + int(rng.integers(-2, 3))), min(h, y1 + bh + int(rng.integers(-2, 3)))
            if rng.random() < 0.2:   # the same object under another class
                c = int(rng.integers(1, n_cats + 1))
            score = float(np.round(rng.random(), 2))   # rounded: ties happen
            rec = {"image_id": iid, "category_id": c, "score": score,
                   "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
            if masks:
                m = np.zeros((h, w), np.uint8, order="F")
                m[y1:y2, x1:x2] = 1
                m[y1:y2:3, x1] = 0             # not quite rectangles
                r = mu.encode(m)
                rec["segmentation"] = {"size": [h, w], "counts": r["counts"].decode()}
            preds.append(rec)
    return gt, preds


def oracle_keep(preds, thr, mode="class", groups=None, masks=False):
    """Record indices kept per image by torchvision's batched_nms / nms (or a mask IoU loop)."""
    torch = require("torch")
    ops = require("torchvision.ops")
    mu = require("pycocotools.mask")
    by_image = {}
    for i, p in enumerate(preds):
        by_image.setdefault(p["image_id"], []).append(i)
    out = []
    for iid, idx in by_image.items():
        scores = torch.tensor([preds[i]["score"] for i in idx], dtype=torch.float64)
        cats = [preds[i]["category_id"] for i in idx]
        if mode == "class":
            key = cats
        elif mode == "agnostic":
            key = [0] * len(idx)
        else:
            g = {c: k for k, members in enumerate(groups) for c in members}
            key = [g.get(c, 1000 + c) for c in cats]
        if masks:
            rles = [preds[i]["segmentation"] for i in idx]
            iou = np.array(mu.iou(rles, rles, [0] * len(idx)))
            order = sorted(range(len(idx)), key=lambda j: -preds[idx[j]]["score"])  # stable
            kept = []
            for j in order:
                if all(not (key[j] == key[q] and iou[j, q] > thr) for q in kept):
                    kept.append(j)
        else:
            xywh = torch.tensor([preds[i]["bbox"] for i in idx], dtype=torch.float64)
            boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
            kept = ops.batched_nms(boxes, scores, torch.tensor(key), thr).tolist()
        out += [idx[j] for j in kept]
    return sorted(out)


def coco_stats(gt, dets, iou_type):
    """COCOeval run directly: the 12 stats."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = json.loads(json.dumps(gt))
        g.createIndex()
        r = g.loadRes([dict(d) for d in dets])
        e = COCOeval(g, r, iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(x) for x in e.stats]


def kept_records(result_dict_unused, preds, keep):
    return [preds[i] for i in keep]


# ------------------------------------------------------------------------------ SPEC

@pytest.mark.parametrize("spec,want", [
    ("0.5", [0.5]), (0.5, [0.5]), ("0.3,0.5,0.7", [0.3, 0.5, 0.7]), ("0.7,0.3,0.3", [0.3, 0.7]),
    ("0.3:0.9:0.05", [round(0.3 + 0.05 * k, 10) for k in range(13)]),
    ("0.3:0.5:0.15", [0.3, 0.45, 0.5]), ("0.5:0.5:0.1", [0.5]), ([0.1, 1.0], [0.1, 1.0]),
])
def test_parse_spec(spec, want):
    got = parse_spec(spec, "--iou")
    assert got == pytest.approx(want, abs=1e-12) and len(got) == len(want)
    assert got[0] == want[0] and got[-1] == want[-1]   # both ends exactly


@pytest.mark.parametrize("spec", ["", "a", "0.3:0.9", "0.9:0.3:0.1", "0.3:0.9:0", "1.5", "-0.1",
                                  "nan", "0.3,,0.5"])
def test_parse_spec_rejects(spec):
    with pytest.raises(ValueError, match="--iou"):
        parse_spec(spec, "--iou")


# ------------------------------------------------------------------------------ the greedy pass

def test_greedy_sweep_matches_torchvision_nms_per_threshold():
    torch = require("torch")
    ops = require("torchvision.ops")
    import fastiou
    rng = np.random.default_rng(1)
    ths = [0.0, 0.1, 0.3, 0.5, 0.55, 0.7, 0.9, 1.0]
    for trial in range(20):
        n = int(rng.integers(0, 60))
        xy = rng.uniform(0, 50, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], 1)
        boxes[: n // 4] = np.round(boxes[: n // 4])
        scores = np.round(rng.random(n), 1)           # many ties
        cats = rng.integers(0, 3, n)
        iou = np.asarray(fastiou.box_iou(boxes, boxes), np.float64)
        for idxs in (None, cats):
            got = greedy_sweep(iou, scores, ths, idxs)
            ref_sweep = fastiou.nms_sweep(boxes, scores, ths, idxs)
            for t, thr in enumerate(ths):
                tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
                ref = ops.nms(tb, ts, thr) if idxs is None else \
                    ops.batched_nms(tb, ts, torch.from_numpy(idxs), thr)
                assert got[t].tolist() == ref.tolist(), (trial, thr, idxs is None)
                assert np.asarray(ref_sweep[t]).tolist() == ref.tolist()


def test_greedy_sweep_masks_match_mask_nms():
    import fastiou
    from fastiou import rle
    rng = np.random.default_rng(2)
    masks = np.zeros((30, 40, 50), np.uint8)
    for k in range(30):
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        masks[k, y:y + rng.integers(3, 12), x:x + rng.integers(3, 12)] = 1
    scores = rng.random(30)
    rles = rle.encode(masks)
    iou = rle.iou(rles, rles, np.zeros(30, bool))
    for t, keep in zip([0.2, 0.4, 0.6], greedy_sweep(iou, scores, [0.2, 0.4, 0.6])):
        assert keep.tolist() == np.asarray(fastiou.mask_nms(masks, scores, t)).tolist()


def test_greedy_sweep_bad_matrix():
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        greedy_sweep(np.zeros((2, 2)), np.zeros(3), [0.5])


# ------------------------------------------------------------------------------ against the oracles

@pytest.mark.parametrize("mode", ["class", "agnostic", "groups"])
def test_box_sweep_matches_torchvision_and_cocoeval(mode):
    gt, preds = synthetic(seed=3)
    groups = [[1, 2]] if mode == "groups" else None
    ths = [0.3, 0.5, 0.7]
    r = sweep(preds, gt=gt, iou=ths, score="0.4", mode=mode, groups=groups, workers=1,
              evaluator="pycocotools")
    assert r.parameters["iou"] == ths + [NO_NMS] and r.parameters["score"] == [None, 0.4]
    assert len(r.settings) == 8 and r.messages == []
    for s in r.settings:
        keep = oracle_keep(preds, s["iou"], mode, groups) if s["iou"] < 1 else list(range(len(preds)))
        keep = [i for i in keep if s["score"] is None or preds[i]["score"] > s["score"]]
        assert s["kept"] == len(keep)
        assert [s[k] for k in STATS] == coco_stats(gt, [preds[i] for i in keep], "bbox")
        same, cross = oracle_pairs(preds, keep, masks=True)   # every prediction has a mask
        assert (s["same_class_pairs"], s["cross_class_pairs"]) == (same, cross)


def oracle_pairs(preds, keep, masks, thr=0.5):
    mu = require("pycocotools.mask")
    same = cross = 0
    for a in range(len(keep)):
        for b in range(a + 1, len(keep)):
            p, q = preds[keep[a]], preds[keep[b]]
            if p["image_id"] != q["image_id"]:
                continue
            if masks:
                v = mu.iou([p["segmentation"]], [q["segmentation"]], [0])[0][0]
            else:
                v = mu.iou(np.array([p["bbox"]]), np.array([q["bbox"]]), [0])[0][0]
            if v > thr:
                same += p["category_id"] == q["category_id"]
                cross += p["category_id"] != q["category_id"]
    return same, cross


@pytest.mark.parametrize("mode", ["class", "agnostic"])
def test_mask_sweep_matches_oracle_and_cocoeval(mode):
    gt, preds = synthetic(seed=4)
    r = sweep(preds, gt=gt, iou="0.2:0.6:0.2", masks=True, mode=mode, workers=1,
              evaluator="pycocotools")
    assert r.parameters["iou_type"] == "segm" and r.parameters["overlaps_on"] == "mask"
    for s in r.settings:
        keep = oracle_keep(preds, s["iou"], mode, masks=True) if s["iou"] < 1 else \
            list(range(len(preds)))
        assert s["kept"] == len(keep)
        assert [s[k] for k in STATS] == coco_stats(gt, [preds[i] for i in keep], "segm")
        assert (s["same_class_pairs"], s["cross_class_pairs"]) == oracle_pairs(preds, keep, True)


def test_groups_that_cover_everything_are_agnostic_and_singletons_are_class_aware():
    gt, preds = synthetic(seed=5, masks=False)
    strip = lambda r: [{k: v for k, v in s.items()} for s in r.settings]  # noqa: E731
    agn = sweep(preds, iou="0.3,0.6", mode="agnostic", workers=1)
    cls = sweep(preds, iou="0.3,0.6", mode="class", workers=1)
    assert strip(sweep(preds, iou="0.3,0.6", mode="groups", groups=[[1, 2, 3]], workers=1)) == strip(agn)
    assert strip(sweep(preds, iou="0.3,0.6", mode="groups", groups=[[1], [2]], workers=1)) == strip(cls)
    assert strip(agn) != strip(cls)                # the data has cross-class duplicates


def test_groups_file_and_bad_groups(tmp_path):
    gt, preds = synthetic(seed=5, masks=False)
    f = tmp_path / "groups.json"
    f.write_text("[[1, 2], [3]]")
    a = sweep(preds, iou="0.5", mode=f"groups:{f}", workers=1)
    b = sweep(preds, iou="0.5", mode="groups", groups=[[1, 2], [3]], workers=1)
    assert a.settings == b.settings and a.parameters["groups"] == [[1, 2], [3]]
    f.write_text("[[1, 2], [2]]")
    with pytest.raises(ValueError, match="category 2 is in group 0 and in group 1"):
        sweep(preds, mode=f"groups:{f}")
    f.write_text('{"a": 1}')
    with pytest.raises(ValueError, match="list of lists of category ids"):
        sweep(preds, mode=f"groups:{f}")
    with pytest.raises(ValueError, match="mode"):
        sweep(preds, mode="hybrid")


def test_resolve_overlaps_matches_a_pixel_oracle():
    mu = require("pycocotools.mask")
    gt, preds = synthetic(seed=6, n_images=3)
    r = sweep(preds, gt=gt, iou="0.5", masks=True, resolve_overlaps=True, workers=1,
              evaluator="pycocotools")
    for s in r.settings:
        keep = oracle_keep(preds, s["iou"], masks=True) if s["iou"] < 1 else list(range(len(preds)))
        assert s["same_class_pairs"] == s["cross_class_pairs"] == 0   # no pixel in two masks
        dets = []
        for iid in sorted({preds[i]["image_id"] for i in keep}):
            idx = sorted((i for i in keep if preds[i]["image_id"] == iid),
                         key=lambda i: -preds[i]["score"])              # stable: ties in order
            taken = np.zeros((48, 64), bool)
            for i in idx:
                with warnings.catch_warnings():   # pycocotools' decode under numpy 2
                    warnings.simplefilter("ignore", DeprecationWarning)
                    m = mu.decode(preds[i]["segmentation"]).astype(bool) & ~taken
                taken |= m
                d = dict(preds[i])
                d["segmentation"] = mu.encode(np.asfortranarray(m.astype(np.uint8)))
                dets.append(d)
        assert [s[k] for k in STATS] == coco_stats(gt, dets, "segm")


def test_resolve_needs_masks():
    with pytest.raises(ValueError, match="masks"):
        sweep([], resolve_overlaps=True)


# ------------------------------------------------------------------------------ bad input

def test_bad_records_are_named_and_the_sweep_goes_on():
    gt, preds = synthetic(seed=7, n_images=2)
    good = len(preds)
    bad = [dict(preds[0], image_id=999),                       # not in the ground truth
           dict(preds[1], category_id=77),                     # not a category
           dict(preds[2], segmentation={"size": [10, 10], "counts": preds[2]["segmentation"]["counts"]}),
           dict(preds[3], bbox=[1, 2, 3]),                     # not 4 numbers
           dict(preds[4], score="high"),
           dict(preds[5], segmentation={"size": [48, 64], "counts": "%%%garbage"}),
           "not a record"]
    r = sweep(preds + bad, gt=gt, iou="0.5", masks=True, workers=1, evaluator="pycocotools")
    kinds = [(m["kind"], m["prediction"]) for m in r.messages]
    assert kinds == [("unknown_image", good), ("unknown_category", good + 1),
                     ("mask_size_mismatch", good + 2), ("bad_record", good + 3),
                     ("bad_record", good + 4), ("bad_mask", good + 5), ("bad_record", good + 6)]
    m = r.messages[0]
    assert m["image_id"] == 999 and "999" in m["message"] and "ground truth" in m["message"]
    assert "10x10" in r.messages[2]["message"] and "48x64" in r.messages[2]["message"]
    assert r.counts["used"] == good and r.counts["predictions"] == good + 7
    ref = sweep(preds, gt=gt, iou="0.5", masks=True, workers=1, evaluator="pycocotools")
    assert r.settings == ref.settings                          # the good records, as if alone


def test_empty_predictions():
    gt, _ = synthetic(seed=8, n_images=2, masks=False)
    r = sweep([], gt=gt, iou="0.5", workers=1)
    assert [m["kind"] for m in r.messages] == ["no_predictions"]
    assert all(s["kept"] == 0 and s["AP"] is None for s in r.settings)


# ------------------------------------------------------------------------------ engines

def _same(a, b):
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("engine"), d.pop("seconds")
    assert da == db


def test_processes_and_dask_give_identical_results():
    distributed = pytest.importorskip("distributed")
    gt, preds = synthetic(seed=9, n_images=10)
    kw = dict(gt=gt, iou="0.3,0.6", score="0.5", masks=True, resolve_overlaps=True,
              evaluator="pycocotools", shard_size=3)
    serial = sweep(preds, workers=1, **kw)
    procs = sweep(preds, workers=2, **kw)
    assert procs.engine == "processes (2)"
    _same(serial, procs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        by_client = sweep(preds, dask=client, **kw)
        by_address = sweep(preds, dask=cluster.scheduler_address, **kw)
    assert by_client.engine.startswith("dask")
    _same(serial, by_client)
    _same(serial, by_address)


# ------------------------------------------------------------------------------ real data

def _real(path):
    for p in (path, REAL_GT):
        if not os.path.isfile(p):
            pytest.skip(f"the real COCO data is not next to the repository ({p} is missing; see "
                        f"../shared/data/README.md, or set FASTIOU_SHARED_DATA)")
    return path


def test_real_bbox_no_nms_gives_the_published_ap():
    r = sweep(_real(REAL_BBOX), gt=REAL_GT, iou="0.5", workers=1, evaluator="pycocotools")
    base = r.settings[r.baseline]
    assert base["iou"] == NO_NMS and base["kept"] == 734
    assert (round(base["AP"], 3), round(base["AP50"], 3), round(base["AP75"], 3)) == (0.505, 0.697, 0.573)
    with open(REAL_BBOX) as f:
        preds = json.load(f)
    with open(REAL_GT) as f:
        gt = json.load(f)
    assert [base[k] for k in STATS] == coco_stats(gt, preds, "bbox")   # COCOeval on the file
    s = r.setting(0.5)
    keep = oracle_keep(preds, 0.5)
    assert s["kept"] == len(keep) < 734
    assert [s[k] for k in STATS] == coco_stats(gt, [preds[i] for i in keep], "bbox")


def test_real_segm_no_nms_gives_the_published_ap():
    r = sweep(_real(REAL_SEGM), gt=REAL_GT, iou="0.5", masks=True, workers=1,
              evaluator="pycocotools")
    base = r.settings[r.baseline]
    assert (round(base["AP"], 3), round(base["AP50"], 3), round(base["AP75"], 3)) == (0.320, 0.562, 0.299)
    assert r.messages == [] and r.parameters["overlaps_on"] == "mask"


# ------------------------------------------------------------------------------ command line

def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastiou.cli", "sweep", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_cli_table_json_plot(tmp_path):
    gt, preds = synthetic(seed=10, n_images=3)
    preds.append(dict(preds[0], image_id=12345))
    (tmp_path / "p.json").write_text(json.dumps(preds))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    before = (tmp_path / "p.json").read_bytes()
    out = tmp_path / "r.json"
    plot = tmp_path / "r.png"
    args = [str(tmp_path / "p.json"), "--gt", str(tmp_path / "gt.json"), "--iou", "0.4:0.6:0.1",
            "--score", "0.3", "--json", str(out), "--plain", "--evaluator", "pycocotools"]
    p = _cli(*args, "--plot", str(plot) if _has("matplotlib") else str(out))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert f"predictions[{len(preds) - 1}], image 12345" in p.stdout and "unknown_image" in p.stdout
    assert "best:" in p.stdout and "no NMS" not in p.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "fastiou.sweep/1" and len(doc["settings"]) == 8
    assert doc["settings"][doc["best"]]["AP"] == max(s["AP"] for s in doc["settings"])
    assert (tmp_path / "p.json").read_bytes() == before
    for s in doc["settings"]:      # every number of the table is in the JSON
        assert f"{s['AP']:.3f}" in p.stdout
    if _has("matplotlib"):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _cli(*args, "--strict").returncode == 1


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("args,msg", [
    (["missing.json"], "missing.json: no such file"),
    (["p.json", "--iou", "0.3:x"], "--iou: expected"),
    (["p.json", "--score", ""], "--score: expected"),
    (["p.json", "--mode", "groups:nofile.json"], "groups:nofile.json: cannot be read"),
    (["p.json", "--resolve-overlaps"], "needs mask NMS"),
    (["dict.json"], "expected a JSON list of predictions"),
    (["p.json", "--json", "p.json"], "would overwrite the input file"),
])
def test_cli_unusable_input(tmp_path, args, msg):
    (tmp_path / "p.json").write_text("[]")
    (tmp_path / "dict.json").write_text("{}")
    p = _cli(*args, cwd=tmp_path)
    assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_faster_coco_eval_gives_the_same_numbers():
    pytest.importorskip("faster_coco_eval", reason="faster-coco-eval is optional (extra 'eval')")
    gt, preds = synthetic(seed=11, n_images=4)
    for masks in (False, True):
        a = sweep(preds, gt=gt, iou="0.4,0.7", masks=masks, workers=1, evaluator="pycocotools")
        b = sweep(preds, gt=gt, iou="0.4,0.7", masks=masks, workers=1, evaluator="faster-coco-eval")
        assert b.evaluator == "faster-coco-eval"
        for x, y in zip(a.settings, b.settings):
            assert [y[k] for k in STATS] == pytest.approx([x[k] for k in STATS], abs=1e-12)


def test_best_without_ground_truth_follows_the_mode():
    gt, preds = synthetic(seed=12, masks=False)
    cls = sweep(preds, iou="0.3,0.5,0.7", workers=1)
    agn = sweep(preds, iou="0.3,0.5,0.7", mode="agnostic", workers=1)
    b = cls.settings[cls.best]
    assert b["same_class_pairs"] == min(s["same_class_pairs"] for s in cls.settings)
    assert b["kept"] == max(s["kept"] for s in cls.settings
                            if s["same_class_pairs"] == b["same_class_pairs"])
    pairs = [s["same_class_pairs"] + s["cross_class_pairs"] for s in agn.settings]
    a = agn.settings[agn.best]
    assert a["same_class_pairs"] + a["cross_class_pairs"] == min(pairs)
