"""``fastiou anchors`` / ``fastiou.diagnostics.anchors``: the fit against torchvision's own transform,
anchor generator and box_iou; YOLOv5's autoanchor metric; bad input; JSON, plot, suggestions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import require

pytest.importorskip("fastiou.diagnostics")
from fastiou.diagnostics.anchors import PRESETS, anchors_report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("FASTIOU_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
REAL_GT = os.path.join(SHARED_DATA, "coco_val2014_instances_100img.json")


def dataset(seed=0):
    """Images of three sizes, boxes from tiny to large and elongated, a crowd region."""
    rng = np.random.default_rng(seed)
    sizes = [(480, 640), (427, 640), (640, 500)]
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    aid = 1
    for iid in range(1, 7):
        h, w = sizes[iid % 3]
        data["images"].append({"id": iid, "height": h, "width": w})
        for _ in range(12):
            bw = float(np.exp(rng.uniform(np.log(3), np.log(w * 0.8))))
            bh = float(np.clip(bw * np.exp(rng.normal(0, 0.9)), 2, h * 0.9))
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            data["annotations"].append({"id": aid, "image_id": iid, "category_id": int(rng.integers(1, 3)),
                                        "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0,
                                        "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]})
            aid += 1
    data["annotations"].append({"id": aid, "image_id": 1, "category_id": 1, "iscrowd": 1,
                                "bbox": [0, 0, 50, 50], "area": 2500,
                                "segmentation": {"size": [480, 640], "counts": [0, 2500, 480 * 640 - 2500]}})
    return data


def torchvision_best_iou(data, preset="torchvision-fpn"):
    """Per non-crowd box, in image order: the best IoU over the anchors of its image, with the
    image and boxes through torchvision's GeneralizedRCNNTransform, anchors from torchvision's
    AnchorGenerator on the feature maps of that padded image, IoU by torchvision's box_iou; and
    per level, the best IoU over that level's anchors."""
    torch = require("torch")
    ops = require("torchvision.ops")
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.transform import GeneralizedRCNNTransform
    p = PRESETS[preset]
    tf = GeneralizedRCNNTransform(800, 1333, [0.0] * 3, [1.0] * 3).eval()
    gen = AnchorGenerator(tuple(tuple(s) for s in p["sizes"]), tuple(tuple(r) for r in p["ratios"]))
    best, per_level, above = [], [], []
    for im in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == im["id"] and not a["iscrowd"]]
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32)
        boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        target = {"boxes": boxes, "labels": torch.ones(len(anns), dtype=torch.int64)}
        il, tg = tf([torch.zeros(3, im["height"], im["width"])], [target])
        H, W = il.tensors.shape[-2:]
        feats = [torch.zeros(1, 1, -(-H // s), -(-W // s)) for s in p["strides"]]
        anchors = gen(ImageList(il.tensors, il.image_sizes), feats)[0]
        iou = ops.box_iou(tg[0]["boxes"].double(), anchors.double())
        best.append(iou.max(1).values)
        above.append((iou >= 0.7).sum(1))
        counts = [f.shape[-2] * f.shape[-1] * len(c) for f, c in zip(feats, gen.cell_anchors)]
        per_level.append(torch.stack([x.max(1).values for x in iou.split(counts, 1)], 1))
    return torch.cat(best).numpy(), torch.cat(per_level).numpy(), torch.cat(above).numpy()


def test_torchvision_preset_matches_torchvision():
    data = dataset()
    r = anchors_report(data, preset="torchvision-fpn")
    best, per_level, above = torchvision_best_iou(data)
    assert r.counts["boxes"] == len(best) == 72 and r.counts["crowd_skipped"] == 1
    # the same boxes in the same order (records in image order within each padded size)
    got = {(w["image_id"], w["annotation_id"]): w["best"] for w in r.unreached["worst"]}
    assert r.overall["recall_low"] == pytest.approx(float((best >= 0.3).mean()), abs=1e-12)
    assert r.overall["recall_high"] == pytest.approx(float((best >= 0.7).mean()), abs=1e-12)
    assert r.overall["anchors_per_box_high"] == pytest.approx(float(above.mean()), abs=1e-9)
    assert r.overall["mean_best"] == pytest.approx(float(best.mean()), abs=1e-6)
    for k, lv in enumerate(r.levels):
        assert lv["recall_high"] == pytest.approx(float((per_level[:, k] >= 0.7).mean()), abs=1e-12)
        assert lv["recall_low"] == pytest.approx(float((per_level[:, k] >= 0.3).mean()), abs=1e-12)
    assert r.unreached["count"] == int((best < 0.3).sum()) > 0
    assert sorted(got.values()) == pytest.approx(sorted(best[best < 0.3])[:20], abs=1e-6)
    area = np.array([a["bbox"][2] * a["bbox"][3] for im in data["images"] for a in data["annotations"]
                     if a["image_id"] == im["id"] and not a["iscrowd"]])
    small = area < 32 ** 2
    assert r.buckets["small"]["boxes"] == int(small.sum())
    assert r.buckets["small"]["recall_low"] == pytest.approx(float((best[small] >= 0.3).mean()))


def test_detectron2_and_mmdet_presets_agree():
    """Both: unrounded cell anchors of the same shapes, centres at x * stride (offset 0), the same
    resize rule: the same fit."""
    data = dataset(1)
    a = anchors_report(data, preset="detectron2-fpn")
    b = anchors_report(data, preset="mmdet-fpn")
    assert a.overall == pytest.approx(b.overall) and a.buckets == b.buckets


def test_yolov5_preset_is_autoanchors_metric():
    data = dataset(2)
    r = anchors_report(data, preset="yolov5")
    k = np.array([s for lv in PRESETS["yolov5"]["anchors"] for s in lv], np.float32)
    wh = []
    for im in data["images"]:
        s = 640 / max(im["height"], im["width"])
        wh += [[a["bbox"][2] * s, a["bbox"][3] * s] for a in data["annotations"]
               if a["image_id"] == im["id"] and not a["iscrowd"]]
    wh = np.array(wh, np.float32)
    rr = wh[:, None] / k[None]
    x = np.minimum(rr, 1 / rr).min(2)          # YOLOv5 utils/autoanchor.py metric()
    bpr = float((x.max(1) > 1 / 4.0).mean())
    aat = float((x > 1 / 4.0).sum(1).mean())
    assert r.overall["recall_low"] == pytest.approx(bpr)
    assert r.overall["anchors_per_box_high"] == pytest.approx(aat)
    assert r.unreached["count"] == int((x.max(1) <= 1 / 4.0).sum())


def test_sizes_ratios_and_image_size_are_used():
    data = dataset(3)
    a = anchors_report(data, sizes="16,32,64,128,256", ratios="0.25,1,4", image_size="600,1000")
    assert a.parameters["sizes"] == [[16], [32], [64], [128], [256]]
    assert a.parameters["ratios"][0] == [0.25, 1, 4] and a.parameters["image_size"] == [600, 1000]
    b = anchors_report(data)
    assert a.overall != b.overall


def test_suggest_gives_configs_and_their_recall():
    data = dataset(4)
    r = anchors_report(data, suggest=15)
    s = r.suggestion
    assert s["config"]["torchvision"].startswith("AnchorGenerator(sizes=((")
    assert "ANCHOR_GENERATOR.SIZES" in s["config"]["detectron2"]
    assert "type='AnchorGenerator'" in s["config"]["mmdet"]
    again = anchors_report(data, sizes=",".join(str(lv[0]) for lv in s["sizes"]),
                           ratios=",".join(str(x) for x in s["ratios"]))
    assert again.overall == pytest.approx(s["overall"])   # the recall it claims is the fit's
    y = anchors_report(data, preset="yolov5", suggest=9)
    assert y.suggestion["config"]["yolov5"].startswith("anchors:\n  - [")


@pytest.mark.parametrize("kw,msg", [
    ({"preset": "ssd"}, "--preset"), ({"sizes": "32,64"}, "5 levels"), ({"ratios": "a"}, "--ratios"),
    ({"image_size": "800x1333"}, "--image-size"), ({"suggest": 3}, "K >= 15"),
    ({"preset": "yolov5", "sizes": "1,2,3"}, "yolov5"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        anchors_report(dataset(), **kw)


def test_bad_records_are_named():
    data = dataset(5)
    data["annotations"][3]["bbox"] = [1, 2, 0, 5]
    data["annotations"][7]["bbox"] = "x"
    data["annotations"][9]["image_id"] = 999
    r = anchors_report(data)
    kinds = {(m["kind"], m["annotation_id"]) for m in r.messages}
    assert ("bad_bbox", 4) in kinds and ("bad_bbox", 8) in kinds and ("unknown_image", 10) in kinds
    assert r.counts["boxes"] == 72 - 3


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastiou.cli", "anchors", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_cli(tmp_path):
    data = dataset(6)
    data["annotations"][0]["bbox"] = [1, 2, -3, 4]
    f = tmp_path / "gt.json"
    f.write_text(json.dumps(data))
    p = _cli(str(f), "--suggest", "15", "--json", str(tmp_path / "a.json"), "--plot",
             str(tmp_path / "a.png"), "--plain")
    assert p.returncode == 0, p.stderr
    assert "boxes no anchor reaches" in p.stdout and "AnchorGenerator(sizes=" in p.stdout
    assert "image 1, annotation 1:" in p.stdout and "Traceback" not in p.stderr
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["schema"] == "fastiou.anchors/1" and doc["counts"]["boxes"] == 71
    assert f"{100 * doc['overall']['recall_low']:.1f}%" in p.stdout
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert _cli(str(f), "--strict").returncode == 1
    for args, msg in ((["missing.json"], "no such file"), ([str(f), "--preset", "x"], "invalid choice"),
                      ([str(f), "--sizes", "1,2"], "5 levels")):
        q = _cli(*args, cwd=tmp_path)
        assert q.returncode == 2 and msg in q.stderr and "Traceback" not in q.stderr


def test_real_coco_ground_truth():
    if not os.path.isfile(REAL_GT):
        pytest.skip(f"the real COCO data is not next to the repository ({REAL_GT} is missing; see "
                    f"../shared/data/README.md, or set FASTIOU_SHARED_DATA)")
    r = anchors_report(REAL_GT, preset="retinanet")
    assert r.counts["boxes"] == 830 and r.counts["crowd_skipped"] == 9 and r.messages == []
    assert 0.5 < r.overall["recall_high"] < 1.0 and r.unreached["count"] > 0
