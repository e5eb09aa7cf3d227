"""``check``'s two ways through the same work give the same findings, finding for finding: the
compiled helpers of fastiou._C (check_annotations, check_polygons_unpack, check_numbers,
check_polygon_masks, check_rle_masks, check_pair_ious: a shard at a time) against the Python
readers and the declared ops that run without them (a numba-only install, another host backend
forced), on inputs that take every branch: well-formed and malformed records, polygons with odd,
huge, non-finite, integer, boolean, string or nested coordinates, compressed RLE as str and bytes
with list and tuple sizes, malformed or of the wrong size, uncompressed RLE; and any split of the
images into shards."""

from __future__ import annotations

import numpy as np
import pytest

from test_check import Builder, planted, random_dataset, rect, uncompressed

from fastiou import rle
from fastiou.diagnostics import audit, check, coco
from fastiou.diagnostics._bench import synthetic_coco


@pytest.fixture
def without_helpers(monkeypatch):
    """check with no compiled helper: the Python readers, the kernels through _dispatch."""
    def off():
        monkeypatch.setattr(coco, "_HELPERS", {n: None for n in (
            "check_annotations", "check_polygons_unpack", "check_numbers")})
        monkeypatch.setattr(audit, "_compiled", lambda: None)
    return off


def odd_inputs():
    """Records and segmentations that leave the fast paths, next to ones that take them."""
    b = Builder()
    b.image(1, 60, 80)
    b.poly(1, 1, 1, rect(5, 5, 30, 30))
    box = dict(bbox=[6.0, 6.0, 25.0, 25.0], area=625.0)
    b.poly(2, 1, 1, [int(v) for v in rect(6, 6, 31, 31)], **box)              # int coordinates
    b.poly(3, 1, 2, rect(40, 5, 70, 30), [1e30, 2.0, 3.0, 4.0, 5.0, 9.0])     # huge: dropped
    b.poly(4, 1, 2, rect(40, 35, 70, 55), [float("nan"), 1.0, 2.0, 3.0, 4.0, 5.0])
    b.poly(5, 1, 3, [True, 1.0, 20.0, 1.0, 20.0, 20.0], **box)               # a bool: not plain
    b.poly(6, 1, 3, [np.float64(3.0), 40.0, 20.0, 40.0, 20.0, 58.0], **box)   # a numpy scalar
    b.poly(7, 1, 1, rect(2, 35, 20, 55), ["2.5", 36.0, 19.0, 36.0, 19.0, 54.0])
    b.poly(8, 1, 1, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], **box)              # nested
    b.poly(9, 1, 2, rect(50, 40, 60, 50), [1.0, 2.0, 3.0])                   # odd
    a = b.poly(10, 1, 2, rect(0, 0, 1, 1), **box)
    a["segmentation"] = []                                                      # no polygon
    a = b.poly(11, 1, 3, rect(60, 2, 78, 20))
    a["segmentation"] = [rect(60, 2, 78, 20), 7.0]                            # a number as part
    a = b.poly(12, 1, 1, rect(30, 30, 60, 58))
    a["bbox"] = tuple(a["bbox"])                                               # a tuple field
    a = b.poly(13, 1, 1, rect(31, 31, 61, 59))
    a["bbox"], a["area"] = [True, 0.0, 10.0, 10.0], "12"
    a = b.poly(14, 1, 2, rect(1, 1, 9, 9))
    a["area"] = float("nan")
    b.image(2, 40, 50)
    m = np.zeros((40, 50), np.uint8)
    m[5:30, 10:40] = 1
    enc = rle.encode(m)
    b.anns += [
        {"id": 20, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 750.0,
         "bbox": [10.0, 5.0, 30.0, 25.0], "segmentation": {"size": [40, 50], "counts": enc["counts"]}},
        {"id": 21, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 750.0,
         "bbox": [10.0, 5.0, 30.0, 25.0],
         "segmentation": {"size": (40, 50), "counts": enc["counts"].decode()}},   # tuple, str
        {"id": 22, "image_id": 2, "category_id": 2, "iscrowd": 0, "area": 750.0,
         "bbox": [10.0, 5.0, 30.0, 25.0],
         "segmentation": {"size": [41, 50], "counts": rle.encode(np.zeros((41, 50), np.uint8))["counts"]}},
        {"id": 23, "image_id": 2, "category_id": 2, "iscrowd": True, "area": 750.0,
         "bbox": [10.0, 5.0, 30.0, 25.0], "segmentation": uncompressed(m)},
    ]
    b.poly(24, 2, 1, rect(12, 6, 30, 20))
    b.poly(25, 2, 1, rect(12, 6, 30, 21), rect(32, 22, 38, 28))
    return b.dataset()


def with_bad_string(data):
    """odd_inputs with one malformed compressed string in the batch (then one by one)."""
    data["annotations"].append({"id": 30, "image_id": 2, "category_id": 3, "iscrowd": 0,
                                "area": 1.0, "bbox": [0, 0, 1, 1],
                                "segmentation": {"size": [40, 50], "counts": "!!"}})
    return data


def records_off(data):
    """A record that breaks a rule: the per-record reader for every record."""
    data["annotations"].append({"id": 31, "image_id": "2", "category_id": 1, "segmentation": []})
    return data


DATASETS = {
    "planted": lambda: planted()[0],
    "random": lambda: random_dataset(n_images=8, per_image=20, spread=False, seed=3),
    "synthetic": lambda: synthetic_coco(60, 600, seed=2),
    "odd": odd_inputs,
    "odd+bad string": lambda: with_bad_string(odd_inputs()),
    "odd+bad record": lambda: records_off(odd_inputs()),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_compiled_helpers_and_python_paths_agree(name, without_helpers):
    args = dict(workers=1, iou=0.1, box_iou=0.3)
    fast = check(DATASETS[name](), **args)
    one_by_one = check(DATASETS[name](), shard_size=1, **args)
    without_helpers()
    slow = check(DATASETS[name](), **args)
    assert len(fast.findings) > 5
    assert [f.to_dict() for f in fast.findings] == [f.to_dict() for f in slow.findings]
    assert repr(fast.findings) == repr(slow.findings)  # (the types of the numbers too)
    assert fast.findings == one_by_one.findings
    assert fast.annotations_per_category == slow.annotations_per_category


def test_odd_inputs_are_named():
    kinds = {(f.kind, tuple(f.annotation_ids)) for f in check(odd_inputs(), workers=1).findings}
    for want in [("degenerate_polygon", (3,)), ("degenerate_polygon", (4,)),
                 ("degenerate_polygon", (8,)), ("degenerate_polygon", (9,)),
                 ("degenerate_polygon", (11,)), ("empty_mask", (10,)), ("bad_record", (13,)),
                 ("bad_record", (14,)), ("rle_size_mismatch", (22,)), ("duplicate", (20, 21))]:
        assert want in kinds, want


def test_check_image_takes_slim_dicts():
    data = odd_inputs()
    idx = coco.index(data)
    got = []
    for im, anns in zip(idx.images, idx.per_image):
        got += audit.check_image(im, anns, audit.Params())
    assert got == [f for f in check(data, workers=1).findings if f.kind != "no_annotations"
                   and f.image_id in (1, 2)]
