"""fastiou.rle and fastiou.compat.pycocotools_mask against pycocotools (2.0.11) itself.

Every op runs on both host backends (``cpp``, ``numba``); results must equal pycocotools' byte
for byte (counts strings) and bit for bit (IoU, boxes).
"""

from __future__ import annotations

import collections
import json
import os
import warnings

import numpy as np
import pytest

import fastiou
from conftest import require
from fastiou import rle
import fastiou.compat.pycocotools_mask as mask_util

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                    "coco_val2014_segm_results_100img.json")


@pytest.fixture(params=["cpp", "numba"])
def backend(request):
    info = fastiou.backends()[request.param]
    if not info["available"]:
        pytest.skip(f"backend {request.param} unavailable: {info['reason']}")
    with fastiou.use_backend(request.param):
        yield request.param


@pytest.fixture
def M():
    return require("pycocotools.mask")


def ref_encode(M, masks):
    """pycocotools' encode of (N, H, W) 0/1 masks (its own layout: (H, W, N) Fortran uint8)."""
    return M.encode(np.asfortranarray(np.asarray(masks, dtype=np.uint8).transpose(1, 2, 0)))


def ref_decode(M, r):
    """pycocotools' decode; its Masks.__array__ predates numpy 2's copy keyword (a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return M.decode(r)


# ------------------------------------------------------------------------------ inputs

def blobs(rng, n, h, w):
    """Random unions of ellipses and rectangles, some touching the borders."""
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        for _ in range(int(rng.integers(0, 4))):
            cy, cx = rng.uniform(-0.2 * h, 1.2 * h), rng.uniform(-0.2 * w, 1.2 * w)
            ry, rx = rng.uniform(0.5, h / 2 + 1), rng.uniform(0.5, w / 2 + 1)
            if rng.random() < 0.6:
                out[i] |= (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1).astype(np.uint8)
            else:
                out[i, max(0, int(cy - ry)):int(cy + ry) + 1, max(0, int(cx - rx)):int(cx + rx) + 1] = 1
    return out


def mask_cases(rng):
    """(N, H, W) uint8 stacks: blobs, noise, empty, full, one pixel, lines, odd sizes."""
    cases = []
    for h, w in [(1, 1), (1, 17), (23, 1), (2, 3), (7, 9), (31, 33), (64, 64), (65, 130),
                 (100, 37), (1, 200), (200, 1), (127, 255), (129, 65), (191, 300), (480, 640)]:
        cases.append(blobs(rng, 6, h, w))
        cases.append((rng.random((3, h, w)) < rng.random()).astype(np.uint8))
        special = np.zeros((4, h, w), np.uint8)
        special[1] = 1
        special[2, rng.integers(h), rng.integers(w)] = 1
        special[3, :, -1] = 1
        special[3, -1, :] = 1
        cases.append(special)
    for _ in range(250):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        cases.append(blobs(rng, int(rng.integers(1, 10)), h, w))
    return cases


# ------------------------------------------------------------------------------ encode / decode

def test_encode_matches_pycocotools(backend, M):
    rng = np.random.default_rng(0)
    total = 0
    for m in mask_cases(rng):
        ref = ref_encode(M, m)
        assert rle.encode(m) == ref
        total += len(m)
    assert total > 1000


def test_encode_layouts_and_dtypes(backend, M):
    rng = np.random.default_rng(1)
    for h, w in [(5, 7), (64, 70), (33, 128)]:
        m = blobs(rng, 4, h, w)
        ref = ref_encode(M, m)
        assert rle.encode(np.asfortranarray(m)) == ref
        assert rle.encode(m.transpose(0, 2, 1).copy().transpose(0, 2, 1)) == ref  # column-contiguous
        assert rle.encode(np.asfortranarray(m.transpose(1, 2, 0)).transpose(2, 0, 1)) == ref
        big = np.zeros((4, 2 * h, 3 * w), np.uint8)
        big[:, ::2, ::3] = m
        assert rle.encode(big[:, ::2, ::3]) == ref                      # strided view
        assert rle.encode(m[:, ::-1, :][:, ::-1, :]) == ref
        assert rle.encode(m[:, ::-1, :]) == ref_encode(M, m[:, ::-1, :])  # negative stride
        for dt in (bool, np.int8, np.int32, np.int64, np.float32, np.float64):
            assert rle.encode(m.astype(dt)) == ref
        assert rle.encode(m.astype(np.uint8) * 7) == ref                # non-zero is foreground
        assert rle.encode(m.tolist()) == ref
        for i in range(len(m)):
            assert rle.encode(m[i]) == ref[i]                             # (H, W) -> one dict


def test_encode_torch(backend, M):
    torch = require("torch")
    m = blobs(np.random.default_rng(2), 3, 40, 50)
    ref = ref_encode(M, m)
    t = torch.from_numpy(m)
    assert rle.encode(t) == ref
    assert rle.encode(t.bool()) == ref
    assert rle.encode(t.transpose(1, 2).contiguous().transpose(1, 2)) == ref


def test_decode_roundtrip(backend, M):
    rng = np.random.default_rng(3)
    for m in mask_cases(rng)[::3]:
        r = rle.encode(m)
        d = rle.decode(r)
        assert d.dtype == np.uint8 and d.flags.c_contiguous and d.shape == m.shape
        np.testing.assert_array_equal(d, m)
        np.testing.assert_array_equal(rle.decode(r[0]), m[0])
        # str counts (as json gives them) and uncompressed list counts
        as_str = [{"size": x["size"], "counts": x["counts"].decode()} for x in r]
        np.testing.assert_array_equal(rle.decode(as_str), m)
        ref = ref_decode(M, r)
        got = mask_util.decode(r)
        assert got.shape == ref.shape and got.flags.f_contiguous and got.dtype == np.uint8
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(mask_util.decode(r[0]), ref_decode(M, r[0]))


def test_uncompressed_counts(backend, M):
    rng = np.random.default_rng(4)
    m = blobs(rng, 5, 20, 30)
    for i in range(len(m)):
        flat = m[i].flatten(order="F")
        change = np.flatnonzero(np.diff(np.concatenate([[0], flat])) != 0)
        runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
        ucrle = {"size": [20, 30], "counts": runs}
        ref = M.frPyObjects(ucrle, 20, 30)
        assert rle.from_segmentation(ucrle, 20, 30) == ref
        assert mask_util.frPyObjects(ucrle, 20, 30) == ref
        assert mask_util.frPyObjects([ucrle], 20, 30) == M.frPyObjects([ucrle], 20, 30)
        np.testing.assert_array_equal(rle.decode(ucrle), m[i])


def test_area_bbox_merge(backend, M):
    rng = np.random.default_rng(5)
    for m in mask_cases(rng)[::2]:
        r = ref_encode(M, m)
        a = rle.area(r)
        assert a.dtype == np.uint32
        np.testing.assert_array_equal(a, M.area(r))
        assert isinstance(rle.area(r[0]), np.uint32) and rle.area(r[0]) == M.area(r[0])
        b = rle.to_bbox(r)
        assert b.dtype == np.float64 and b.shape == (len(r), 4)
        np.testing.assert_array_equal(b, M.toBbox(r))
        np.testing.assert_array_equal(mask_util.toBbox(r[0]), M.toBbox(r[0]))
        for inter in (0, 1):
            assert rle.merge(r, intersect=bool(inter)) == M.merge(r, inter)
            assert mask_util.merge(r, inter) == M.merge(r, inter)
            assert rle.merge(r[:1], intersect=bool(inter)) == M.merge(r[:1], inter)
            assert rle.merge(r[:2], intersect=bool(inter)) == M.merge(r[:2], inter)
    # merge: sizes differ / empty list
    a, b = ref_encode(M, np.ones((1, 3, 4))), ref_encode(M, np.ones((1, 4, 3)))
    assert rle.merge(a + b) == M.merge(a + b) == {"size": [0, 0], "counts": b""}
    assert rle.merge([]) == M.merge([])
    # zero-length foreground runs in hand-made counts: pycocotools' uint32 box arithmetic
    odd = [{"size": [3, 4], "counts": M.frPyObjects({"size": [3, 4], "counts": c}, 3, 4)["counts"]}
           for c in ([5, 0, 7], [0, 0, 12], [12, 0], [3, 2, 0, 0, 7])]
    np.testing.assert_array_equal(rle.to_bbox(odd), M.toBbox(odd))
    np.testing.assert_array_equal(rle.area(odd), M.area(odd))
    dec = rle.decode(odd).astype(bool)
    complete = 0
    for inter in (0, 1):
        for part in (odd, odd[:2], odd[2:], odd[::-1]):
            merged = rle.merge(part, intersect=bool(inter))
            want = (np.logical_and if inter else np.logical_or).reduce(rle.decode(part).astype(bool))
            np.testing.assert_array_equal(rle.decode(merged), want)
            ref = M.merge(part, inter)
            if sum(py_counts(ref["counts"])) == 12:  # pycocotools' walk reached the end
                assert merged == ref
                complete += 1
    assert complete > 0 and dec.shape == (4, 3, 4)


# ------------------------------------------------------------------------------ iou

def test_iou_rle(backend, M):
    rng = np.random.default_rng(6)
    minus_one = 0
    for trial in range(30):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        nd, ng = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        dt = ref_encode(M, blobs(rng, nd, h, w))
        gt = ref_encode(M, blobs(rng, ng, h, w))
        if trial % 3 == 0:   # some masks of another size: -1 exactly where boxes overlap
            gt[::2] = ref_encode(M, blobs(rng, len(gt[::2]), h + 1, w))
        crowd = rng.integers(0, 2, ng).astype(bool).tolist()
        ref = M.iou(dt, gt, crowd)
        got = rle.iou(dt, gt, crowd)
        assert got.dtype == np.float64 and got.shape == (nd, ng)
        np.testing.assert_array_equal(got, ref)
        assert (got == -1).sum() == (ref == -1).sum()
        minus_one += int((ref == -1).sum())
        np.testing.assert_array_equal(mask_util.iou(dt, gt, crowd), ref)
        np.testing.assert_array_equal(rle.iou(dt, gt, None), M.iou(dt, gt, [0] * ng))
        both = dt + gt   # the same list on both sides: each unordered pair is walked once
        crowd2 = rng.integers(0, 2, len(both)).tolist()
        np.testing.assert_array_equal(rle.iou(both, both, crowd2), M.iou(both, both, crowd2))
    assert minus_one > 0
    # empty sides
    r = ref_encode(M, np.ones((2, 4, 4)))
    assert rle.iou([], r, [0, 0]).shape == (0, 2) and rle.iou(r, [], []).shape == (2, 0)
    assert mask_util.iou([], r, [0, 0]) == [] == M.iou([], r, [0, 0])


def test_iou_rle_many_pairs_threads(M):
    """Enough overlapping pairs for the pair loop's threads (the per-thread scratch must be the
    caller's), with masks of one to many pieces a column (column tables of up to 4 slots, and
    the interval walk past that), against pycocotools."""
    rng = np.random.default_rng(17)
    n, h, w = 140, 40, 36
    masks = blobs(rng, n, h, w)
    for k in range(0, n, 3):  # horizontal stripes: k % 9 + 1 pieces in every column
        masks[k] = 0
        masks[k, 1:2 * (k % 9 + 1):2, 2:30] = 1
    masks[5] = 0  # an empty mask
    rles = ref_encode(M, masks)
    crowd = (np.arange(n) % 4 == 0).tolist()
    dt, gt = rles[:90], rles[30:]
    before = fastiou.get_num_threads()
    try:
        for threads in (2, 1):
            fastiou.set_num_threads(threads)
            np.testing.assert_array_equal(rle.iou(rles, rles, crowd), M.iou(rles, rles, crowd))
            np.testing.assert_array_equal(rle.iou(dt, gt, crowd[30:]), M.iou(dt, gt, crowd[30:]))
    finally:
        fastiou.set_num_threads(before)


def test_iou_boxes(backend, M):
    rng = np.random.default_rng(7)
    for _ in range(20):
        nd, ng = int(rng.integers(1, 15)), int(rng.integers(1, 15))
        d = np.round(rng.uniform(0, 50, (nd, 4)), int(rng.integers(0, 3)))
        g = np.round(rng.uniform(0, 50, (ng, 4)), int(rng.integers(0, 3)))
        g[0] = [d[0, 0] + d[0, 2], d[0, 1], 5, 5]   # touching: 0
        if ng > 1:
            g[1] = d[0]
            g[1, 2] = 0                               # zero width
        crowd = rng.integers(0, 2, ng)
        ref = M.iou(d, g, crowd)
        np.testing.assert_array_equal(rle.iou(d, g, crowd), ref)
        np.testing.assert_array_equal(rle.iou(d.tolist(), g.tolist(), crowd), ref)
        np.testing.assert_array_equal(rle.iou(d.astype(np.float32), g, crowd),
                                      M.iou(d.astype(np.float32).astype(np.float64), g, crowd))
        np.testing.assert_array_equal(mask_util.iou(d, g, crowd), ref)
    assert rle.iou(np.zeros((0, 4)), np.ones((3, 4)), None).shape == (0, 3)
    assert rle.iou(ref_encode(M, np.ones((2, 3, 3))), np.zeros((0, 4)), []).shape == (2, 0)


# ------------------------------------------------------------------------------ polygons

def random_polygon(rng, h, w):
    k = int(rng.integers(3, 12))
    kind = rng.random()
    if kind < 0.15:   # tiny
        c = rng.uniform(0, [w, h])
        pts = c + rng.uniform(-0.6, 0.6, (k, 2))
    elif kind < 0.25:  # degenerate: repeated or collinear points
        p = rng.uniform(0, [w, h], (2, 2))
        t = rng.uniform(0, 1, k)[:, None]
        pts = p[0] + t * (p[1] - p[0])
        pts[1] = pts[0]
    elif kind < 0.4:  # outside the image
        pts = rng.uniform(-0.5 * w, 1.5 * w, (k, 2)) * [1, h / w]
    else:
        c = rng.uniform(0, [w, h])
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.5, max(h, w) / 2, k)
        pts = c + np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
    if rng.random() < 0.3:
        pts = np.round(pts * 2) / 2  # on the half-pixel lattice: rounding ties
    return pts.reshape(-1).tolist()


def test_polygons_on_the_fifth_pixel_grid(M):
    """The rasteriser visits only the steps that can cross a pixel column: polygons whose
    vertices sit on the 1/5-pixel grid, integer vertices (many exact ties), tiny and partly
    outside polygons give pycocotools' strings byte for byte (cpp; numba walks every step)."""
    rng = np.random.default_rng(11)
    for trial in range(1500):
        h, w = int(rng.integers(1, 120)), int(rng.integers(1, 120))
        k = int(rng.integers(3, 9))
        kind = trial % 4
        if kind == 0:
            pts = rng.uniform(-20, [w + 20, h + 20], (k, 2))
        elif kind == 1:
            pts = np.round(rng.uniform(-5, [w + 5, h + 5], (k, 2)) * 5) / 5
        elif kind == 2:
            pts = rng.uniform(0, 3, (k, 2)) + rng.uniform(0, [w, h])
        else:
            pts = np.round(rng.uniform(-2, [w + 2, h + 2], (k, 2)))
        poly = [pts.ravel().tolist()]
        assert rle.from_segmentation(poly, h, w)["counts"] == M.frPyObjects(poly, h, w)[0]["counts"], poly


def test_polygons(backend, M):
    rng = np.random.default_rng(8)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 80, 2))
        seg = [random_polygon(rng, h, w) for _ in range(int(rng.integers(1, 4)))]
        ref = M.frPyObjects(seg, h, w) if len(seg[0]) > 4 else None
        if ref is not None:
            assert mask_util.frPyObjects(seg, h, w) == ref
            # one flat polygon: pycocotools 2.0.11 raises TypeError (len() of a float); fastiou takes it
            assert mask_util.frPyObjects(seg[0], h, w) == M.frPyObjects(seg[:1], h, w)[0]
            assert rle.from_segmentation(seg, h, w) == M.merge(ref)  # COCO.annToRLE
    # two points only (4 coordinates) is a degenerate polygon for from_segmentation
    assert rle.area(rle.from_segmentation([[1, 1, 5, 5]], 8, 8)) == 0
    assert rle.from_segmentation([], 5, 6) == ref_encode(M, np.zeros((1, 5, 6)))[0]


def test_boxes_to_rle(backend, M):
    rng = np.random.default_rng(9)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        b = rng.uniform(-5, 60, (int(rng.integers(1, 6)), 4))
        b[:, 2:] = np.abs(b[:, 2:])
        ref = M.frPyObjects(b, h, w)
        assert mask_util.frPyObjects(b, h, w) == ref
        # lists of boxes / one box as a list: pycocotools 2.0.11 raises TypeError, fastiou takes them
        assert mask_util.frPyObjects(b.tolist(), h, w) == ref
        assert mask_util.frPyObjects(b[0].tolist(), h, w) == ref[0]


# ------------------------------------------------------------------------------ real data

def _real():
    if not os.path.exists(DATA):
        pytest.skip(f"real predictions not found at {DATA}")
    with open(DATA) as f:
        return json.load(f)


def test_real_predictions(backend, M):
    data = _real()
    per_image = collections.defaultdict(list)
    for det in data:
        per_image[det["image_id"]].append(det["segmentation"])
    rng = np.random.default_rng(10)
    for segs in per_image.values():
        masks = rle.decode(segs)
        np.testing.assert_array_equal(masks, ref_decode(M, segs).transpose(2, 0, 1))
        assert [r["counts"] for r in rle.encode(masks)] == [s["counts"].encode() for s in segs]
        crowd = rng.integers(0, 2, len(segs)).tolist()
        np.testing.assert_array_equal(rle.iou(segs, segs, crowd), M.iou(segs, segs, crowd))
        np.testing.assert_array_equal(rle.to_bbox(segs), M.toBbox(segs))
        np.testing.assert_array_equal(rle.area(segs), M.area(segs))


# ------------------------------------------------------------------------------ errors

GOOD = {"size": [3, 4], "counts": b"<"}   # 12 background pixels


@pytest.mark.parametrize("bad, match", [
    ({"size": [3, 4], "counts": b"<<"}, "more than h \\* w"),
    ({"size": [3, 4], "counts": b"9"}, "less than h \\* w"),
    ({"size": [3, 4], "counts": b"\x7f"}, "outside"),
    ({"size": [3, 4], "counts": b"/"}, "outside"),
    ({"size": [3, 4], "counts": b"1o"}, "ends inside a count"),
    ({"size": [3, 4], "counts": b"oooooooo0"}, "longer than 7"),
    ({"size": [3, 4], "counts": b"4004O"}, "negative"),
    ({"size": [3, 4], "counts": "é"}, "non-ASCII"),
    ({"size": [3, 4], "counts": b""}, "less than h \\* w"),
    ({"size": [3, -4], "counts": b""}, "non-negative"),
    ({"size": [3], "counts": b""}, "size"),
    ({"size": [3.0, 4], "counts": b"<"}, "non-negative integers"),
    ({"counts": b"<"}, "size"),
    ({"size": [3, 4]}, "counts"),
    ({"size": [3, 4], "counts": [5, 8]}, "add up to"),
    ({"size": [3, 4], "counts": [-1, 13]}, "run lengths"),
    ({"size": [3, 4], "counts": {"a": 1}}, "counts"),
])
def test_malformed_rle(backend, bad, match):
    for f in (rle.decode, rle.area, rle.to_bbox):
        with pytest.raises(ValueError, match=match):
            f([GOOD, bad])
    with pytest.raises(ValueError, match=match):
        rle.merge([GOOD, bad])
    with pytest.raises(ValueError, match=match):
        rle.iou([GOOD], [GOOD, bad], None)


def test_bad_arguments(backend):
    with pytest.raises(ValueError, match="masks: expected shape"):
        rle.encode(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="masks: expected shape"):
        rle.encode(np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="same size"):
        rle.decode([GOOD, {"size": [4, 3], "counts": b"<"}])
    with pytest.raises(TypeError, match="rles"):
        rle.area("abc")
    with pytest.raises(TypeError, match=r"rles\[1\]"):
        rle.area([GOOD, 3])
    with pytest.raises(ValueError, match="iscrowd"):
        rle.iou([GOOD], [GOOD, GOOD], [0])
    with pytest.raises(ValueError, match="iscrowd"):
        rle.iou(np.ones((2, 4)), np.ones((3, 4)), [0, 0])
    with pytest.raises(ValueError, match="same kind"):
        rle.iou([GOOD], np.ones((1, 4)), None)
    with pytest.raises(ValueError, match="gt"):
        rle.iou(np.ones((2, 4)), np.ones((3, 5)), None)
    with pytest.raises(ValueError, match="even number"):
        rle.from_segmentation([[1, 2, 3, 4, 5, 6, 7]], 10, 10)
    with pytest.raises(ValueError, match="finite"):
        rle.from_segmentation([[1, 2, 3, np.nan, 5, 6]], 10, 10)
    with pytest.raises(ValueError, match="finite"):
        rle.from_segmentation([[1, 2, 3, 1e12, 5, 6]], 10, 10)
    with pytest.raises(ValueError, match="h:"):
        rle.from_segmentation([[1, 2, 3, 4, 5, 6]], -1, 10)
    with pytest.raises(TypeError, match="segmentation"):
        rle.from_segmentation("abc", 10, 10)
    with pytest.raises(ValueError, match="bimask"):
        mask_util.encode(np.zeros((2, 2, 2, 2), np.uint8))


def test_encode_gpu(M):
    torch = require("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    m = blobs(np.random.default_rng(13), 3, 30, 41)
    assert rle.encode(torch.from_numpy(m).cuda()) == ref_encode(M, m)  # copied to the host


def test_encode_too_large(backend):
    big = np.broadcast_to(np.zeros(1, np.uint8), (2, 65536, 65536))  # no memory behind it
    with pytest.raises(ValueError, match="2\\*\\*32"):
        rle.encode(big)


def test_fuzz_decode(backend, M):
    """Random strings: decode returns (the same masks as pycocotools) or raises ValueError."""
    rng = np.random.default_rng(11)
    ok = compared = 0
    for i in range(3000):
        n = int(rng.integers(0, 12))
        h, w = (int(v) for v in rng.integers(0, 8, 2))
        if i % 3 == 0:
            s = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        elif i % 3 == 1:
            s = bytes(rng.integers(46, 114, n, dtype=np.uint8))  # mostly in the alphabet
        else:  # valid runs (empty ones too), written by pycocotools, sometimes one byte changed
            cuts = np.sort(rng.integers(0, h * w + 1, int(rng.integers(0, 8))))
            runs = np.diff(np.concatenate([[0], cuts, [h * w]])).tolist()
            s = bytearray(M.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"])
            if s and rng.random() < 0.5:
                s[int(rng.integers(len(s)))] = int(rng.integers(40, 120))
            s = bytes(s)
        r = {"size": [h, w], "counts": s}
        try:
            got = rle.decode([r])
        except ValueError:
            continue
        ok += 1
        np.testing.assert_array_equal(got, ref_decode(M, [r]).transpose(2, 0, 1))
        if h * w == 0:  # pycocotools aborts on some RLEs of no pixels; nothing to compare
            continue
        # the other ops on what decodes (runs of length 0 included) agree with pycocotools too,
        # except where its run walks stop early: runs of length 0 inside both masks at once
        other = rle.encode(got[0][::-1])
        pair = [r, other]
        np.testing.assert_array_equal(rle.area([r]), M.area([r]))
        np.testing.assert_array_equal(rle.to_bbox([r]), M.toBbox([r]))
        got_iou = rle.iou(pair, pair, [0, 1])
        np.testing.assert_array_equal(got_iou, mask_iou(M, pair, [0, 1]))
        # (pycocotools' merge can also write past its buffer on such runs: not called there)
        plain = 0 not in py_counts(s)[1:]
        if plain:
            np.testing.assert_array_equal(got_iou, M.iou(pair, pair, [0, 1]))
        for inter in (0, 1):
            merged = rle.merge(pair, intersect=bool(inter))
            op = np.logical_and if inter else np.logical_or
            np.testing.assert_array_equal(rle.decode(merged), op(got[0], got[0][::-1]))
            if plain:
                assert merged == M.merge(pair, inter)
                compared += 1
    assert ok > 400 and compared > 200


def py_counts(s: bytes) -> list:
    """The run lengths of a counts string, decoded as maskApi.c's rleFrString (no checks)."""
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def mask_iou(M, rles, crowd):
    """pycocotools' IoU rule on decoded masks: 0 without box overlap, i / u (crowd: i / area)."""
    masks = [rle.decode(r).astype(bool) for r in rles]
    boxes = M.iou(M.toBbox(rles), M.toBbox(rles), crowd)
    out = np.zeros((len(rles), len(rles)))
    for d in range(len(rles)):
        for g in range(len(rles)):
            if boxes[d, g] > 0:
                i = int((masks[d] & masks[g]).sum())
                u = int(masks[d].sum()) if crowd[g] else int((masks[d] | masks[g]).sum())
                out[d, g] = i / u if i else 0.0
    return out


def test_huge_sizes(backend, M):
    """h * w just below 2**32: uint32 counts, deltas of 7 characters, boxes and IoU exact."""
    h, w = 65536, 65535
    hw = h * w
    shapes = [[hw - 10, 10], [0, 5, hw - 5], [hw // 2, 3 * h, hw - hw // 2 - 3 * h], [hw], [0, hw],
              [5, 0, hw - 5], [h - 1, 2, hw - h - 1]]
    rles = [M.frPyObjects({"size": [h, w], "counts": c}, h, w) for c in shapes]
    assert [rle.from_segmentation({"size": [h, w], "counts": c}, h, w) for c in shapes] == rles
    np.testing.assert_array_equal(rle.area(rles), M.area(rles))
    np.testing.assert_array_equal(rle.to_bbox(rles), M.toBbox(rles))
    crowd = [0, 1, 0, 1, 0, 0, 1]
    np.testing.assert_array_equal(rle.iou(rles, rles, crowd), M.iou(rles, rles, crowd))
    np.testing.assert_array_equal(rle.iou(rles, rles[::-1], crowd), M.iou(rles, rles[::-1], crowd))
    for inter in (0, 1):
        assert rle.merge(rles, intersect=bool(inter)) == M.merge(rles, inter)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        rle.area([{"size": [65536, 65536], "counts": b"0"}])


def test_gpu_backend_forced_runs_on_host(M):
    m = blobs(np.random.default_rng(12), 2, 9, 11)
    for name in ("cuda", "cupy"):
        with fastiou.use_backend(name):
            assert rle.encode(m) == ref_encode(M, m)
            np.testing.assert_array_equal(rle.decode(rle.encode(m)), m)
            r = ref_encode(M, m)  # the per-call fast paths of iou and polygons too
            np.testing.assert_array_equal(rle.iou(r, r, [0, 1]), M.iou(r, r, [0, 1]))
            poly = [[1.0, 1.0, 7.5, 1.0, 7.5, 6.0, 1.0, 6.0]]
            assert rle.from_segmentation(poly, 9, 11) == M.merge(M.frPyObjects(poly, 9, 11))
