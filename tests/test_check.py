"""``fastiou check`` / ``fastiou.diagnostics.check``: planted faults, pycocotools as the oracle of
every measured IoU, the real COCO ground truth of ../shared/data, the engines (processes, dask)
against one process, the command line (exit codes, messages, JSON) and the HTML report as headless
Chromium renders it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import oracles_required, require

from fastiou.diagnostics import check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("FASTIOU_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
REAL_GT = os.path.join(SHARED_DATA, "coco_val2014_instances_100img.json")
PAIRS = ("duplicate", "mask_overlap", "box_overlap", "cross_class_overlap")


# ------------------------------------------------------------------------------ dataset builders

def rect(x0, y0, x1, y1):
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def shoelace(p):
    x, y = np.array(p[0::2]), np.array(p[1::2])
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def extent(parts):
    xy = np.concatenate([np.reshape(p, (-1, 2)) for p in parts])
    lo, hi = xy.min(0), xy.max(0)
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]


def uncompressed(mask):
    """COCO's uncompressed RLE of a 0/1 (H, W) mask (runs over the column-major order)."""
    flat = np.asarray(mask, np.uint8).T.ravel()
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0] + runs
    return {"size": list(mask.shape), "counts": runs}


class Builder:
    def __init__(self):
        self.images, self.anns = [], []
        self.categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]

    def image(self, iid, h, w, **extra):
        self.images.append({"id": iid, "height": h, "width": w, "file_name": f"{iid}.png", **extra})

    def poly(self, aid, iid, cat, *parts, bbox=None, area=None, **extra):
        parts = [list(p) for p in parts]
        good = [p for p in parts if len(p) >= 6 and len(p) % 2 == 0
                and all(isinstance(v, float) for v in p)]
        a = {"id": aid, "image_id": iid, "category_id": cat, "segmentation": parts, "iscrowd": 0,
             "bbox": extent(good) if bbox is None else bbox,
             "area": sum(shoelace(p) for p in good) if area is None else area}
        a.update(extra)
        self.anns.append(a)
        return a

    def crowd(self, aid, iid, cat, mask, **extra):
        ys, xs = np.nonzero(mask)
        a = {"id": aid, "image_id": iid, "category_id": cat, "segmentation": uncompressed(mask),
             "iscrowd": 1, "area": float(mask.sum()),
             "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                      float(ys.max() - ys.min() + 1)]}
        a.update(extra)
        self.anns.append(a)
        return a

    def dataset(self):
        return {"images": self.images, "annotations": self.anns, "categories": self.categories}


def planted():
    """A dataset with one of each fault, and the findings it must give: {(kind, image, ids)}.
    (Long: one short block per planted fault, each next to the finding it must give.)"""
    b = Builder()
    want = set()
    # image 1: pairs
    b.image(1, 100, 120)
    b.poly(1, 1, 1, rect(10, 10, 40, 40))
    b.poly(2, 1, 1, [v + 0.3 for v in rect(10, 10, 40, 40)])               # near-identical
    want.add(("duplicate", 1, (1, 2)))
    b.poly(3, 1, 1, rect(60, 10, 100, 40))
    b.poly(4, 1, 1, rect(70, 10, 110, 40))                                  # mask IoU 0.6
    want.add(("mask_overlap", 1, (3, 4)))
    b.poly(5, 1, 1, [10., 50., 50., 50., 10., 90.], bbox=[10., 50., 40., 40.])
    b.poly(6, 1, 1, [50., 50., 50., 90., 10., 90.], bbox=[10., 50., 40., 40.])  # same box
    want.add(("box_overlap", 1, (5, 6)))
    b.poly(7, 1, 2, rect(60, 50, 100, 90))
    b.poly(8, 1, 3, rect(60, 50, 100, 90))                                  # labelled twice
    want.add(("cross_class_overlap", 1, (7, 8)))
    b.poly(28, 1, 2, rect(102, 60, 118, 90), bbox=[1, 2, 3])
    want.add(("bad_record", 1, (28,)))
    a = b.poly(26, 1, 3, rect(0, 92, 10, 99))
    del a["segmentation"]
    want.add(("bad_record", 1, (26,)))
    # image 2: crowd, bbox and area fields
    b.image(2, 80, 80)
    m = np.zeros((80, 80), np.uint8)
    m[:40, :40] = 1
    b.crowd(100, 2, 1, m)
    b.poly(9, 2, 1, rect(5, 5, 25, 25))
    want.add(("crowd_overlap", 2, (9, 100)))
    b.poly(10, 2, 2, rect(10, 10, 20, 20))                # inside the crowd, another class: fine
    b.poly(11, 2, 2, rect(50, 50, 70, 70), bbox=[0., 0., 10., 10.])
    want.add(("bbox_mismatch", 2, (11,)))
    b.poly(12, 2, 3, rect(50, 5, 70, 25), area=1000.0)
    want.add(("area_mismatch", 2, (12,)))
    b.poly(1, 2, 3, rect(60, 60, 75, 75))                 # id 1 again
    want.add(("duplicate_id", 2, (1,)))
    # image 3: single masks, degenerate polygons
    b.image(3, 50, 50)
    b.anns.append({"id": 13, "image_id": 3, "category_id": 1, "iscrowd": 0, "area": 0,
                   "bbox": [0, 0, 0, 0], "segmentation": {"size": [50, 50], "counts": [2500]}})
    want.add(("empty_mask", 3, (13,)))
    b.poly(14, 3, 1, rect(10, 10, 12, 12))
    want.add(("tiny_mask", 3, (14,)))
    b.poly(15, 3, 2, rect(30, 30, 45, 45), [31., 31., 33., 33.])
    want.add(("degenerate_polygon", 3, (15,)))
    b.poly(16, 3, 3, rect(5, 30, 20, 45), [1., 2., 3.])
    want.add(("degenerate_polygon", 3, (16,)))
    # image 4
    b.image(4, 60, 60)
    b.poly(17, 4, 1, rect(5, 5, 20, 20), [5, 5, "x", 5, 10, 10])
    want.add(("degenerate_polygon", 4, (17,)))
    b.poly(18, 4, 2, rect(40, 10, 55, 25), [42., 12., 46., 12., 50., 12.])
    want.add(("degenerate_polygon", 4, (18,)))
    b.poly(19, 4, 3, rect(40, 40, 80, 55), bbox=[40., 40., 20., 15.], area=300.0)
    want.add(("outside_image", 4, (19,)))
    b.anns.append({"id": 20, "image_id": 4, "category_id": 1, "iscrowd": 0, "area": 10,
                   "bbox": [0, 0, 1, 1], "segmentation": {"size": [61, 60], "counts": [3660]}})
    want.add(("rle_size_mismatch", 4, (20,)))
    b.anns.append({"id": 21, "image_id": 4, "category_id": 2, "iscrowd": 0, "area": 10,
                   "bbox": [0, 0, 1, 1], "segmentation": {"size": [60, 60], "counts": "!!"}})
    want.add(("bad_segmentation", 4, (21,)))
    b.anns.append({"id": 22, "image_id": 4, "category_id": 3, "iscrowd": 0, "area": 10,
                   "bbox": [0, 0, 1, 1], "segmentation": 5})
    want.add(("bad_segmentation", 4, (22,)))
    b.poly(25, 4, 77, rect(5, 40, 20, 55))
    want.add(("unknown_category", 4, (25,)))
    # image 5: nothing; image 6: no size
    b.image(5, 40, 40)
    want.add(("no_annotations", 5, ()))
    b.images.append({"id": 6, "file_name": "6.png"})
    want.add(("bad_record", 6, ()))
    b.poly(23, 6, 1, rect(1, 1, 5, 5))
    # records
    b.poly(24, 999, 1, rect(1, 1, 5, 5))
    want.add(("unknown_image", None, (24,)))
    a = b.poly(27, 1, 1, rect(0, 0, 2, 2))
    del a["id"]
    want.add(("bad_record", 1, ()))
    b.anns.append("oops")
    want.add(("bad_record", None, ()))
    return b.dataset(), want


def keys(findings):
    return {(f.kind, f.image_id, tuple(f.annotation_ids)) for f in findings}


def random_dataset(n_images=12, per_image=14, seed=0, spread=True, crowd_every=3):
    """Random convex polygons (some in two parts) and crowd regions; ``spread=False`` puts them
    anywhere (many overlaps), ``spread=True`` one per grid cell (no overlap: a clean dataset)."""
    rng = np.random.default_rng(seed)
    b = Builder()
    aid = 1
    for iid in range(1, n_images + 1):
        h, w = 256, 320
        b.image(iid, h, w)
        cells = [(r, c) for r in range(4) for c in range(5)]
        rng.shuffle(cells)
        for k in range(per_image):
            cy, cx = ((cells[k][0] + 0.5) * 64, (cells[k][1] + 0.5) * 64) if spread else \
                (rng.uniform(30, h - 30), rng.uniform(30, w - 30))
            cat = int(rng.integers(1, 4))
            if crowd_every and k % crowd_every == 2 and iid % 2 == 0:
                yy, xx = np.mgrid[:h, :w]
                r = rng.uniform(12, 26)
                m = ((yy - cy) ** 2 / r ** 2 + (xx - cx) ** 2 / (r * 0.8) ** 2 <= 1).astype(np.uint8)
                b.crowd(aid, iid, cat, m)
            else:
                parts = []
                for _ in range(1 if rng.random() < 0.8 else 2):
                    r = rng.uniform(12, 26) / (1.0 if not parts else 2.5)
                    oy, ox = (0, 0) if not parts else (r * 1.5, -r * 1.5)
                    ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 14))))
                    rad = r * rng.uniform(0.8, 1.0, ang.size)
                    xy = np.stack([cx + ox + rad * np.cos(ang), cy + oy + rad * np.sin(ang)], 1)
                    parts.append(np.round(xy, 2).ravel().tolist())
                b.poly(aid, iid, cat, *parts)
            aid += 1
    return b.dataset()


# ------------------------------------------------------------------------------ planted faults

@pytest.fixture(params=["cpp", "numba"])
def host_backend(request):
    """Each audit test body once per host backend (the RLE kernels ``check`` runs on)."""
    import fastiou
    info = fastiou.backends()[request.param]
    if not info["available"]:
        if request.param == "numba" and oracles_required():
            pytest.fail(f"numba backend unavailable: {info['reason']}", pytrace=False)
        pytest.skip(f"{request.param}: {info['reason']}")
    with fastiou.use_backend(request.param):
        yield request.param


def test_every_planted_fault_is_found_and_nothing_else(host_backend):
    data, want = planted()
    got = check(data, workers=1)
    assert keys(got.findings) == want
    by = {(f.kind, tuple(f.annotation_ids)): f for f in got.findings}
    assert by[("cross_class_overlap", (7, 8))].value == 1.0
    assert by[("cross_class_overlap", (7, 8))].categories == ["dog", "bird"]
    assert by[("crowd_overlap", (9, 100))].value == 1.0
    assert by[("outside_image", (19,))].value == 20.0
    assert by[("unknown_category", (25,))].categories == ["?"]
    assert 0.55 < by[("mask_overlap", (3, 4))].value < 0.65
    assert by[("duplicate", (1, 2))].value >= 0.95
    assert by[("box_overlap", (5, 6))].value == 1.0
    assert by[("box_overlap", (5, 6))].details["mask_iou"] < 0.2
    reasons = {f.annotation_ids[0]: f.details.get("reason") for f in got.findings
               if f.kind == "degenerate_polygon"}
    assert reasons == {15: "fewer than 3 points", 16: "odd coordinate count", 17: "non-numbers",
                       18: "zero area"}
    assert {f.severity for f in got.findings if f.kind in PAIRS} == {"warning"}
    assert got.n_images == 6 and got.n_annotations == len(data["annotations"])


def test_thresholds_are_strict_and_move_the_findings():
    data, _ = planted()
    v = next(f.value for f in check(data, workers=1).findings if f.kind == "mask_overlap")
    at = keys(check(data, workers=1, iou=v).findings)          # IoU > iou, strictly
    assert ("mask_overlap", 1, (3, 4)) not in at
    assert ("box_overlap", 1, (3, 4)) not in at                 # box IoU 0.6 < 0.7
    below = keys(check(data, workers=1, iou=v, box_iou=0.5).findings)
    assert ("box_overlap", 1, (3, 4)) in below


def test_clean_random_dataset_has_no_findings(host_backend):
    data = random_dataset(n_images=10, spread=True, seed=3)
    got = check(data, workers=1)
    assert got.findings == [], [f.message for f in got.findings[:5]]
    assert sum(a["iscrowd"] for a in data["annotations"]) > 0


def test_input_dict_is_not_modified():
    data, _ = planted()
    before = json.dumps(data, sort_keys=True)
    check(data, workers=1)
    assert json.dumps(data, sort_keys=True) == before


# ------------------------------------------------------------------------------ pycocotools oracle

def _coco(data):
    coco_mod = require("pycocotools.coco")
    c = coco_mod.COCO()
    c.dataset = data
    c.createIndex()
    return c


def oracle_pairs(data, iou, box_iou):
    """The pair findings of a well-formed dataset as a pycocotools script finds them:
    {(kind, image, (a, b)): value}, with pycocotools' annToRLE, mask.iou and its box IoU."""
    mu = require("pycocotools.mask")
    c = _coco(data)
    out = {}
    for iid in c.getImgIds():
        anns = c.loadAnns(c.getAnnIds(imgIds=iid))
        rles = [c.annToRLE(a) for a in anns]
        areas = mu.area(rles) if rles else []
        inst = [k for k, a in enumerate(anns) if not a["iscrowd"] and areas[k] > 0]
        crowd = [k for k, a in enumerate(anns) if a["iscrowd"] and areas[k] > 0]
        if len(inst) > 1:
            m = mu.iou([rles[k] for k in inst], [rles[k] for k in inst], [0] * len(inst))
            bb = mu.iou([anns[k]["bbox"] for k in inst], [anns[k]["bbox"] for k in inst], [0] * len(inst))
            for x in range(len(inst)):
                for y in range(x + 1, len(inst)):
                    a, b = anns[inst[x]], anns[inst[y]]
                    key = (iid, (a["id"], b["id"]))
                    if a["category_id"] != b["category_id"]:
                        if m[x, y] > iou:
                            out[("cross_class_overlap",) + key] = m[x, y]
                    elif m[x, y] >= 0.95:
                        out[("duplicate",) + key] = m[x, y]
                    elif m[x, y] > iou:
                        out[("mask_overlap",) + key] = m[x, y]
                    elif bb[x, y] > box_iou:
                        out[("box_overlap",) + key] = bb[x, y]
        if inst and crowd:
            ioa = mu.iou([rles[k] for k in inst], [rles[k] for k in crowd], [1] * len(crowd))
            for x, k in enumerate(inst):
                for y, j in enumerate(crowd):
                    if anns[k]["category_id"] == anns[j]["category_id"] and ioa[x, y] > iou:
                        out[("crowd_overlap", iid, (anns[k]["id"], anns[j]["id"]))] = ioa[x, y]
    return out


def found_pairs(result):
    return {(f.kind, f.image_id, tuple(f.annotation_ids)): f.value for f in result.findings
            if f.kind in PAIRS + ("crowd_overlap",)}


@pytest.mark.parametrize("iou,box_iou", [(0.5, 0.7), (0.1, 0.3)])
def test_pairs_match_a_pycocotools_script(iou, box_iou, host_backend):
    data = random_dataset(n_images=8, per_image=16, spread=False, seed=11)
    got = check(data, iou=iou, box_iou=box_iou, workers=1)
    want = oracle_pairs(data, iou, box_iou)
    assert len(want) > (10 if iou < 0.5 else 2)
    assert found_pairs(got) == want          # same pairs, the same values bit for bit


def test_masks_match_pycocotools_annToRLE():
    """Areas and boxes the single-mask checks use come from masks identical to annToRLE's."""
    mu = require("pycocotools.mask")
    data = random_dataset(n_images=4, spread=False, seed=5)
    c = _coco(data)
    from fastiou import rle
    for a in data["annotations"]:
        im = c.imgs[a["image_id"]]
        ours = rle.from_segmentation(a["segmentation"], im["height"], im["width"])
        theirs = c.annToRLE(a)
        assert mu.area(theirs) == rle.area(ours)
        assert ours == {"size": theirs["size"], "counts": theirs["counts"]}   # byte for byte


# ------------------------------------------------------------------------------ real data

@pytest.fixture(scope="module")
def real_gt():
    if not os.path.isfile(REAL_GT):
        pytest.skip(f"the real COCO data is not next to the repository ({REAL_GT} is missing; "
                    f"see ../shared/data/README.md, or set FASTIOU_SHARED_DATA)")
    with open(REAL_GT) as f:
        return json.load(f)


def test_real_coco_ground_truth(real_gt):
    got = check(REAL_GT, workers=1)
    assert got.n_images == 100 and got.n_annotations == 839 and got.n_categories == 80
    assert got.errors == []                          # real COCO records are well-formed
    # what a pycocotools script finds, no more, no less, the same values
    assert found_pairs(got) == oracle_pairs(real_gt, 0.5, 0.7)
    kinds = {f.kind for f in got.findings}
    assert "cross_class_overlap" in kinds            # e.g. a truck also labelled car
    assert not kinds & {"area_mismatch", "bbox_mismatch", "empty_mask", "rle_size_mismatch"}


def test_real_coco_crowd_regions_low_threshold(real_gt):
    got = check(real_gt, iou=0.1, box_iou=0.5, workers=1)
    want = oracle_pairs(real_gt, 0.1, 0.5)
    assert found_pairs(got) == want
    crowd_ids = {a["id"] for a in real_gt["annotations"] if a["iscrowd"]}
    assert len(crowd_ids) == 9
    crowd = [f for f in got.findings if f.kind == "crowd_overlap"]
    assert crowd                                        # some crowd regions cover instances
    anns = {a["id"]: a for a in real_gt["annotations"]}
    for f in crowd:
        inst, reg = (anns[i] for i in f.annotation_ids)
        assert reg["id"] in crowd_ids and not inst["iscrowd"]
        assert inst["category_id"] == reg["category_id"] and f.value > 0.1
    # ... and only those: crowd regions that cover no instance of their class give nothing
    assert {f.annotation_ids[1] for f in crowd} < crowd_ids


# ------------------------------------------------------------------------------ engines

def _engine_data():
    data, _ = planted()
    extra = random_dataset(n_images=30, per_image=12, spread=False, seed=21)
    off = 1000
    for im in extra["images"]:
        data["images"].append({**im, "id": im["id"] + off})
    for a in extra["annotations"]:
        data["annotations"].append({**a, "id": a["id"] + 10 * off, "image_id": a["image_id"] + off})
    return data


def test_processes_give_the_serial_findings():
    data = _engine_data()
    one = check(data, workers=1, iou=0.1, box_iou=0.3)
    many = check(data, workers=2, shard_size=4, iou=0.1, box_iou=0.3)
    assert many.engine == "processes (2)"
    assert len(one.findings) > 50
    assert many.findings == one.findings


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_dask_local_cluster_gives_the_serial_findings(tmp_path):
    distributed = pytest.importorskip("distributed") if not oracles_required() else \
        require("distributed")
    data = _engine_data()
    one = check(data, workers=1, iou=0.1, box_iou=0.3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        by_client = check(data, dask=client, shard_size=3, iou=0.1, box_iou=0.3)
        by_address = check(data, dask=cluster.scheduler_address, shard_size=7, iou=0.1, box_iou=0.3)
        path = tmp_path / "instances.json"
        path.write_text(json.dumps(data))
        r = run_cli(path, "--dask", cluster.scheduler_address, "--iou", "0.1", "--box-iou", "0.3",
                    "--json", tmp_path / "dask.json")
    assert by_client.engine.startswith("dask")
    assert by_client.findings == one.findings
    assert by_address.findings == one.findings
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "dask.json").read_text())
    assert doc["engine"].startswith("dask") and doc["findings"] == [f.to_dict() for f in one.findings]


# ------------------------------------------------------------------------------ command line

def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "fastiou.cli", "check", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=300)


@pytest.fixture
def planted_file(tmp_path):
    data, want = planted()
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, data, want


def test_cli_reports_and_keeps_going(planted_file, tmp_path):
    path, data, want = planted_file
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    out_json = tmp_path / "findings.json"
    r = run_cli(path, "--json", out_json, "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    # bad records are named: file, image id, annotation id
    assert f"{path}: image 4, annotation 20: RLE size [61, 60]" in r.stdout
    assert f"{path}: no image, annotation 24: annotations[" in r.stdout
    assert "mask_overlap" in r.stdout and "cross_class_overlap" in r.stdout
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "fastiou.check/1"
    assert {(f["kind"], f["image_id"], tuple(f["annotation_ids"])) for f in doc["findings"]} == want
    assert doc["counts"]["findings"] == len(want)
    assert doc["counts"]["errors"] == sum(f["severity"] == "error" for f in doc["findings"])
    worst = doc["summary"]["by_kind"]["mask_overlap"]
    assert doc["findings"][worst["worst"]]["value"] == worst["worst_value"]
    assert set(doc["kinds"]) >= {f["kind"] for f in doc["findings"]}
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before   # never written
    assert run_cli(path, "--strict", "--workers", "1").returncode == 1


def test_cli_strict_passes_on_clean_data(tmp_path):
    path = tmp_path / "clean.json"
    path.write_text(json.dumps(random_dataset(n_images=3, spread=True, seed=2)))
    r = run_cli(path, "--strict", "--plain")
    assert r.returncode == 0 and "no findings" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ('{"images": [', "not valid JSON: Expecting value at line 1, column 13"),
    ("[1, 2]", "expected a JSON object"),
    (b"{\"images\": \"\xff\"}", "not a UTF-8 text file"),
])
def test_cli_unusable_input(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    r = run_cli(path)
    assert r.returncode == 2
    assert f"{path}: {message}" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_cli_missing_keys_are_bad_records_not_crashes(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"annotations": [{"id": 1, "image_id": 3}], "info": {}}))
    r = run_cli(path, "--plain")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "the top-level key 'images' is missing" in r.stdout
    assert "the top-level key 'categories' is missing" in r.stdout
    assert "no image, annotation 1: annotations[0]: image_id 3 is not in images" in r.stdout
    assert run_cli(path, "--strict").returncode == 1


def test_cli_bad_arguments(planted_file, tmp_path):
    path, _, _ = planted_file
    assert run_cli(path, "--images", tmp_path / "nope").returncode == 2
    r = run_cli(path, "--json", path)
    assert r.returncode == 2 and "would overwrite the input file" in r.stderr
    assert run_cli(path, "--iou", "1.5").returncode == 2


def test_plain_summary_without_rich(planted_file):
    import io
    from fastiou.diagnostics.report import print_summary
    path, data, want = planted_file
    buf = io.StringIO()
    print_summary(check(data, workers=1, source=str(path)), file=buf, plain=True)
    text = buf.getvalue()
    assert "findings by type" in text and "duplicate" in text and "unknown_image" in text


def test_progress_bar_after_the_delay():
    import io
    from fastiou.diagnostics.report import Progress
    buf = io.StringIO()
    quiet = Progress(delay=60, stream=buf)
    quiet(5, 10)
    quiet.close()
    assert buf.getvalue() == ""                      # runs under the delay show nothing
    bar = Progress(delay=0, stream=buf)
    bar(5, 10)
    bar(10, 10)
    bar.close()
    assert "checking images" in buf.getvalue()


# ------------------------------------------------------------------------------ the report in a browser

def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if oracles_required():
            pytest.fail("headless Chromium is needed for the report test (apt-get install chromium)",
                        pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


def render(url, tmp_path):
    r = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
                        "--virtual-time-budget=5000", "--dump-dom", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_html_report_in_headless_chromium(planted_file, tmp_path):
    from html.parser import HTMLParser

    from fastiou.diagnostics.report import png
    path, data, want = planted_file
    images = tmp_path / "images"
    images.mkdir()
    rgb = np.zeros((100, 120, 3), np.uint8)
    rgb[..., 1] = 200                                  # image 1 exists; the others are missing
    (images / "1.png").write_bytes(png(rgb))
    out = tmp_path / "report"
    r = run_cli(path, "--report", out, "--images", images, "--workers", "1")
    assert r.returncode == 0, r.stderr
    html_path = out / "index.html"
    page = html_path.read_text()
    assert "<script src" not in page and "http://" not in page   # self-contained

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.cell, self.in_findings, self.attrs = [], None, False, {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "table":
                self.in_findings = a.get("id") == "findings"
                if self.in_findings:
                    self.attrs["sorted"] = a.get("data-sorted")
            if tag == "body":
                self.attrs["decoded"] = a.get("data-pictures-decoded")
            if tag == "figure":
                self.attrs["figures"] = self.attrs.get("figures", 0) + 1
            if self.in_findings and tag == "tr":
                self.rows.append([])
            if self.in_findings and tag == "td":
                self.cell = a.get("data-v", "")
                self.rows[-1].append(self.cell)

        def handle_data(self, data):
            if self.in_findings and self.rows and self.cell == "" and self.rows[-1]:
                self.rows[-1][-1] += data.strip()

        def handle_endtag(self, tag):
            if tag == "td":
                self.cell = None
            if tag == "table":
                self.in_findings = False

    def rendered(fragment):
        p = Rows()
        p.feed(render(html_path.as_uri() + fragment, tmp_path))
        return p

    p = rendered("#sort=value:desc")
    rows = [r for r in p.rows if r]
    assert len(rows) == len(want)
    assert p.attrs["sorted"] == "value:desc"               # the sort script ran
    values = [float(r[6]) for r in rows if r[6] != ""]
    assert values == sorted(values, reverse=True) and len(values) > 8
    assert p.attrs["figures"] >= 5
    assert p.attrs["decoded"] == str(p.attrs["figures"])     # every picture decodes in Chromium
    p = rendered("#sort=kind:asc")
    kinds = [r[1] for r in p.rows if r]
    assert kinds == sorted(kinds) and p.attrs["sorted"] == "kind:asc"
    # no sort asked: the page as written (errors first)
    p = rendered("")
    assert p.attrs["sorted"] == "" and [r for r in p.rows if r][0][2] == "error"
    assert "not found; drawn on a blank canvas" in page or "Drawn over the images" in page


def test_pictures_draw_the_masks():
    from fastiou.diagnostics.report import draw, png
    bg = np.full((50, 60, 3), 245, np.uint8)
    a = np.zeros((50, 60), bool)
    a[10:20, 10:30] = True
    b = np.zeros((50, 60), bool)
    b[15:25, 20:40] = True
    img = draw(bg, [a, b], [None, [20.0, 15.0, 20.0, 10.0]])
    assert img.dtype == np.uint8 and img.ndim == 3
    assert len({tuple(c) for c in img.reshape(-1, 3)}) > 3   # tints, outlines, background
    data = png(img)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    PIL = pytest.importorskip("PIL.Image")
    import io
    back = np.asarray(PIL.open(io.BytesIO(data)).convert("RGB"))
    assert (back == img).all()
