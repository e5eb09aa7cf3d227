"""Dense binary masks: pack_masks / PackedMasks, mask_iou, mask_nms, matrix_nms on masks,
resolve_overlaps, masks_to_boxes on PackedMasks.

Every test body that takes ``combo`` runs once per (array library, device, backend); see
conftest.py. Oracles: the float64 reference of tests/reference.py (IoU from dense float64
counts, greedy mask NMS, mmdet's mask_matrix_nms formula, a pixel-by-pixel resolve_overlaps),
pycocotools' RLE IoU on the encoded masks, and torch's float32 matmul IoU where it is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastiou
import reference as ref
from conftest import require
from fastiou import _inputs

SIZES = [(37, 130), (64, 128), (1, 1), (70, 65), (5, 200)]


def blob_masks(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """Random blobs plus the edge cases: an empty mask, one-pixel masks (corners included),
    masks touching every border, a full mask, and a near-duplicate of a blob."""
    m = _inputs.random_masks(n, h, w, seed=seed)
    rng = np.random.default_rng(seed)
    extra = np.zeros((7, h, w), np.uint8)
    extra[1, h - 1, w - 1] = 1                      # one pixel, bottom-right corner
    extra[2, rng.integers(h), rng.integers(w)] = 1  # one pixel anywhere
    extra[3, :, 0] = 1                              # left border column
    extra[3, 0, :] = 1                              # top border row
    extra[4, :, w - 1] = 1                          # right border
    extra[4, h - 1, :] = 1                          # bottom border
    extra[5] = 1                                    # full
    extra[6] = m[0]
    extra[6, rng.integers(h), rng.integers(w)] ^= 1  # a near-duplicate of blob 0
    return np.concatenate([m, extra])               # extra[0] stays empty


def as_masks(combo, m: np.ndarray, dtype: str):
    return combo.asarray(m if dtype != "bool" else m != 0, dtype)


def packed_numpy(combo, p: fastiou.PackedMasks):
    return (combo.to_numpy(p.bits).view(np.uint64), combo.to_numpy(p.boxes), combo.to_numpy(p.areas))


def tight_boxes(m: np.ndarray) -> np.ndarray:
    out = np.zeros((len(m), 4), np.int32)
    for k, mk in enumerate(m):
        ys, xs = np.nonzero(mk)
        if len(ys):
            out[k] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return out


def expected_bits(m: np.ndarray) -> np.ndarray:
    """The packed layout of mask_math.h, built the obvious way."""
    n, h, w = m.shape
    ww = (w + 63) // 64
    padded = np.zeros((n, h, ww * 64), bool)
    padded[:, :, :w] = m != 0
    bits = np.packbits(padded.reshape(n, h, ww, 64), axis=-1, bitorder="little")  # (n, h, ww, 8)
    return bits.view("<u8").reshape(n, h, ww)


# --------------------------------------------------------------------------- packing
@pytest.mark.parametrize("h,w", SIZES)
def test_pack_layout_boxes_areas_and_unpack(combo, h, w):
    m = blob_masks(6, h, w, seed=h * 7 + w)
    p = fastiou.pack_masks(as_masks(combo, m, "uint8"))
    assert isinstance(p, fastiou.PackedMasks)
    assert p.shape == (len(m), h, w) and len(p) == len(m)
    combo.check_native(p.bits, dtype="int64" if combo.library == "torch" else "uint64",
                       shape=(len(m), h, (w + 63) // 64))
    combo.check_native(p.boxes, dtype="int32", shape=(len(m), 4))
    combo.check_native(p.areas, dtype="int64", shape=(len(m),))
    bits, boxes, areas = packed_numpy(combo, p)
    assert np.array_equal(bits, expected_bits(m))
    assert np.array_equal(boxes, tight_boxes(m))
    assert np.array_equal(areas, (m != 0).sum((1, 2)))
    u = p.unpack()
    combo.check_native(u, dtype="bool", shape=m.shape)
    assert np.array_equal(combo.to_numpy(u), m != 0)
    # from_bits recomputes the same stats; masks_to_boxes reads the stored boxes
    q = fastiou.PackedMasks.from_bits(p.bits, w)
    assert np.array_equal(combo.to_numpy(q.boxes), boxes) and np.array_equal(combo.to_numpy(q.areas), areas)
    got = fastiou.masks_to_boxes(p)
    combo.check_native(got, dtype="float32", shape=(len(m), 4))
    assert np.array_equal(combo.to_numpy(got), combo.to_numpy(fastiou.masks_to_boxes(as_masks(combo, m, "uint8"))))


@pytest.mark.parametrize("threads", [1, 2])
def test_pack_large_masks_in_pieces(threads):
    """Masks of more than 256 kB are packed in pieces of rows (in parallel, joined after):
    objects that span pieces, lie in one piece only, or are empty; one huge mask; bits, boxes
    and areas as one piece gives them."""
    h, w = 1100, 700
    m = np.zeros((7, h, w), np.uint8)
    m[0, 10:1090, 5:690] = 1                  # spans every piece
    m[1, 300:310, 100:110] = 1                # inside one piece
    m[2, 0, 0] = m[2, h - 1, w - 1] = 1       # first and last pixel only
    m[4, 365:369, 640:] = 1                   # across a piece boundary (row 367), in the last word
    m[5] = blob_masks(1, h, w, seed=2)[0]     # m[3] stays empty
    m[6] = np.random.default_rng(0).random((h, w)) < 0.3
    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("fastiou._C is not built")
    before = fastiou.get_num_threads()
    fastiou.set_num_threads(threads)
    try:
        with fastiou.use_backend("cpp"):
            for x in (m, m[5:6], np.tile(m[6], (5, 1))[None]):
                p = fastiou.pack_masks(x)
                assert np.array_equal(p.bits, expected_bits(x))
                assert np.array_equal(p.boxes, tight_boxes(x))
                assert np.array_equal(p.areas, (x != 0).sum((1, 2)))
    finally:
        fastiou.set_num_threads(before)


def test_temporary_bits_are_reused_only_inside_calls():
    """mask_iou / mask_nms pack dense inputs into per-thread buffers kept between calls (no
    page faults again each call): results stay right when sizes grow and shrink and when
    threads call at once, and what pack_masks returns is never such a buffer."""
    import threading

    from fastiou import _packed

    sizes = [(20, 1024, 640), (12, 1100, 700), (24, 1024, 640), (4, 40, 30), (16, 1200, 800)]  # bits >= 1 MB but one
    cases = [(blob_masks(n, h, w, seed=i), blob_masks(n + 1, h, w, seed=i + 50)) for i, (n, h, w) in enumerate(sizes)]
    want = [ref.mask_iou(a, b).astype(np.float32) for a, b in cases]
    for _ in range(2):
        for (a, b), w in zip(cases, want):
            assert np.array_equal(fastiou.mask_iou(a, b), w)
            assert np.array_equal(fastiou.mask_iou(b, a), w.T)
    assert all(b is not None for b in _packed._TEMPORARY.bufs)  # the reuse above happened
    big = cases[0][0]
    p1, p2 = fastiou.pack_masks(big), fastiou.pack_masks(big)
    assert not np.shares_memory(p1.bits, p2.bits)
    bufs = getattr(_packed._TEMPORARY, "bufs", None) or []
    assert not any(b is not None and np.shares_memory(b, p1.bits) for b in bufs)
    errors = []

    def worker(k):
        try:
            for _ in range(5):
                for (a, b), w in zip(cases[k::2], want[k::2]):
                    assert np.array_equal(fastiou.mask_iou(a, b), w)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_masks_to_boxes_packed_matches_torchvision(tv_ops, tv_torch):
    m = blob_masks(5, 40, 90, seed=3)
    want = tv_ops.masks_to_boxes(tv_torch.from_numpy(m != 0)).numpy()
    assert np.array_equal(fastiou.masks_to_boxes(fastiou.pack_masks(m)), want)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int32", "float32", "float64"])
def test_non_zero_is_foreground(combo, dtype):
    m = blob_masks(4, 33, 70, seed=5).astype(np.float64)
    rng = np.random.default_rng(0)
    vals = {"bool": [1], "uint8": [1, 3, 255], "int32": [1, -1, 7], "float32": [0.5, -2.0, np.nan],
            "float64": [1e-300, -0.25, np.inf]}[dtype]
    m = np.where(m != 0, rng.choice(vals, size=m.shape), 0.0)  # 0 * inf would be NaN
    x = combo.asarray(m, dtype)
    fg = combo.to_numpy(x) != 0
    p = fastiou.pack_masks(x)
    assert np.array_equal(combo.to_numpy(p.unpack()), fg)
    got = combo.to_numpy(fastiou.mask_iou(x, x))
    assert np.array_equal(got, ref.mask_iou(fg, fg).astype(np.float32))


def test_bool_and_uint8_are_not_copied(monkeypatch):
    """bool is viewed as uint8 and uint8 passed as is (no extra dense copy): the pack backend
    sees the caller's memory."""
    from fastiou import _dispatch
    seen = []
    real = _dispatch.call

    def spy(op, device, *args, **kw):
        if op == "pack_masks":
            seen.append(args[0].lib.host(args[0].x))
        return real(op, device, *args, **kw)

    monkeypatch.setattr(_dispatch, "call", spy)
    for m in (np.zeros((2, 8, 70), np.uint8), np.zeros((2, 8, 70), bool)):
        fastiou.pack_masks(m)
        assert np.shares_memory(seen[-1], m)


def test_packed_indexing(combo):
    m = blob_masks(8, 30, 100, seed=11)
    p = fastiou.pack_masks(as_masks(combo, m, "bool"))
    for idx, sel in [(slice(2, 9, 3), np.arange(len(m))[2:9:3]), ([4, 0, 4], [4, 0, 4]),
                     (np.array([1, 3]), [1, 3]), (3, [3]), (-1, [len(m) - 1]),
                     (np.arange(len(m)) % 3 == 0, np.flatnonzero(np.arange(len(m)) % 3 == 0))]:
        q = p[idx]
        assert isinstance(q, fastiou.PackedMasks) and q.shape == (len(sel), 30, 100)
        assert np.array_equal(combo.to_numpy(q.unpack()), m[sel] != 0)
        assert np.array_equal(combo.to_numpy(q.areas), (m[sel] != 0).sum((1, 2)))
        # a strided selection works in every op
        got = combo.to_numpy(fastiou.mask_iou(q, p))
        assert np.array_equal(got, ref.mask_iou(m[sel], m).astype(np.float32))
    with pytest.raises(IndexError):
        p[len(m)]
    r = repr(p)
    assert "PackedMasks(" in r and f"n={len(m)}" in r and "width=100" in r


# --------------------------------------------------------------------------- mask_iou
@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("dtype", ["bool", "uint8"])
def test_mask_iou_matches_reference(combo, h, w, dtype):
    m1 = blob_masks(9, h, w, seed=h + w)
    m2 = blob_masks(5, h, w, seed=h + 2 * w)[::-1].copy()
    got = fastiou.mask_iou(as_masks(combo, m1, dtype), as_masks(combo, m2, dtype))
    combo.check_native(got, dtype="float32", shape=(len(m1), len(m2)))
    want = ref.mask_iou(m1, m2).astype(np.float32)
    assert np.array_equal(combo.to_numpy(got), want)
    empty2 = np.flatnonzero(~m2.reshape(len(m2), -1).any(1))
    assert len(empty2) >= 1 and (want[:, empty2] == 0).all()  # empty masks: IoU 0
    # packed either side, or both, gives the same values
    p1, p2 = fastiou.pack_masks(as_masks(combo, m1, dtype)), fastiou.pack_masks(as_masks(combo, m2, dtype))
    for a, b in [(p1, p2), (p1, as_masks(combo, m2, dtype)), (as_masks(combo, m1, dtype), p2)]:
        assert np.array_equal(combo.to_numpy(fastiou.mask_iou(a, b)), want)


def test_mask_iou_meaningful():
    m = blob_masks(9, 37, 130, seed=37 + 130)
    iou = ref.mask_iou(m, m)
    off = iou[~np.eye(len(m), dtype=bool)]
    assert ((off > 0) & (off < 1)).sum() > 10, "the blobs should overlap partially"
    assert (iou[len(m) - 7] == 0).all(), "the empty mask has IoU 0 with everything, itself included"


@pytest.mark.parametrize("h,w", [(37, 130), (64, 64), (70, 65)])
def test_mask_iou_matches_pycocotools(combo, h, w):
    coco = require("pycocotools.mask")
    m1 = blob_masks(9, h, w, seed=2 * h + w)
    m2 = blob_masks(6, h, w, seed=3 * h + w)
    got = combo.to_numpy(fastiou.mask_iou(as_masks(combo, m1, "uint8"), as_masks(combo, m2, "uint8")))
    r1 = coco.encode(np.asfortranarray(m1.transpose(1, 2, 0)))
    r2 = coco.encode(np.asfortranarray(m2.transpose(1, 2, 0)))
    want = np.asarray(coco.iou(r1, r2, [0] * len(r2)), dtype=np.float64)
    assert want.shape == got.shape
    assert np.array_equal(np.float32(want), got)


def test_mask_iou_matches_torch_float32_matmul(combo):
    """The float32 matmul IoU (ultralytics / detectron2) is exact for these sizes: equal."""
    torch = require("torch")
    m1 = blob_masks(9, 64, 150, seed=1)
    m2 = blob_masks(7, 64, 150, seed=2)
    keep1, keep2 = m1.reshape(len(m1), -1).any(1), m2.reshape(len(m2), -1).any(1)
    m1, m2 = m1[keep1], m2[keep2]  # no empty pair: the matmul gives NaN there, fastiou 0
    a = torch.from_numpy(m1).reshape(len(m1), -1).float()
    b = torch.from_numpy(m2).reshape(len(m2), -1).float()
    inter = a @ b.T
    want = (inter / (a.sum(1)[:, None] + b.sum(1)[None, :] - inter)).numpy()
    got = combo.to_numpy(fastiou.mask_iou(as_masks(combo, m1, "uint8"), as_masks(combo, m2, "uint8")))
    assert np.array_equal(got, want)


def test_mask_iou_empty_shapes(combo):
    m = blob_masks(3, 20, 30, seed=0)
    x = as_masks(combo, m, "uint8")
    empty = combo.asarray(np.zeros((0, 20, 30)), "uint8")
    for a, b, shape in [(x, empty, (len(m), 0)), (empty, x, (0, len(m))), (empty, empty, (0, 0))]:
        combo.check_native(fastiou.mask_iou(a, b), dtype="float32", shape=shape)
    for hw in [(0, 30), (20, 0)]:
        z = combo.asarray(np.zeros((2,) + hw), "uint8")
        got = fastiou.mask_iou(z, z)
        combo.check_native(got, dtype="float32", shape=(2, 2))
        assert (combo.to_numpy(got) == 0).all()


def test_mask_iou_same_argument_twice(combo):
    m = blob_masks(6, 45, 99, seed=4)
    x = as_masks(combo, m, "bool")
    assert np.array_equal(combo.to_numpy(fastiou.mask_iou(x, x)), ref.mask_iou(m, m).astype(np.float32))


def test_mask_iou_bad_input(combo):
    a = as_masks(combo, blob_masks(2, 20, 30, seed=0), "uint8")
    b = as_masks(combo, blob_masks(2, 20, 31, seed=0), "uint8")
    with pytest.raises(fastiou.InputError, match=r"masks1.*masks2"):
        fastiou.mask_iou(a, b)
    with pytest.raises(fastiou.InputError, match=r"masks1.*masks2"):
        fastiou.mask_iou(fastiou.pack_masks(a), fastiou.pack_masks(b))
    with pytest.raises(fastiou.InputError, match=r"masks1: expected masks of shape \(N, H, W\)"):
        fastiou.mask_iou(a[0], a)
    with pytest.raises(fastiou.InputError, match=r"masks2: expected masks of shape \(N, H, W\)"):
        fastiou.mask_iou(a, a[None])
    with pytest.raises(TypeError, match="masks1"):
        fastiou.mask_iou("masks", a)
    with pytest.raises(fastiou.InputError, match="bits"):
        fastiou.PackedMasks.from_bits(fastiou.pack_masks(a).bits, 65)


def test_bad_packed_boxes_are_refused(host_combo):
    """Stats that do not fit the bits raise ValueError in the backend, never read out of bounds."""
    m = blob_masks(3, 20, 30, seed=0)
    p = fastiou.pack_masks(m)
    for bad in ([0, 0, 65, 5], [-1, 0, 5, 5], [0, 0, 5, 21]):
        boxes = p.boxes.copy()
        boxes[1] = bad
        with pytest.raises(ValueError, match="boxes"):
            fastiou.mask_iou(fastiou.PackedMasks(p.bits, boxes, p.areas, 30), p)


# --------------------------------------------------------------------------- mask_nms
def nms_masks(seed: int = 0):
    """Clustered masks (copies of a few blobs with pixels flipped), with tied scores."""
    rng = np.random.default_rng(seed)
    base = _inputs.random_masks(5, 40, 100, seed=seed)
    m = base[rng.integers(len(base), size=24)].copy()
    m[rng.random(m.shape) < 0.1] = 0      # copies differ: IoU about 0.8
    m[5] = 0                              # an empty mask
    m[6] = 0
    m[6, 3, 7] = 1                        # a one-pixel mask
    scores = rng.random(len(m)).round(1)  # ties
    scores[3] = np.nan
    return m, scores


@pytest.mark.parametrize("threshold", [-0.1, 0.0, 0.3, 0.5, 0.9, 1.0])
def test_mask_nms_matches_reference(combo, threshold):
    m, s = nms_masks()
    want = ref.mask_nms(m, s, threshold)
    for x in (as_masks(combo, m, "uint8"), fastiou.pack_masks(as_masks(combo, m, "bool"))):
        got = fastiou.mask_nms(x, combo.asarray(s, "float64"), threshold)
        combo.check_native(got, dtype="int64")
        assert np.array_equal(combo.to_numpy(got), want), (threshold, combo.to_numpy(got), want)
    if threshold == 0.5:
        assert 1 < len(want) < len(m) / 2, "the workload should suppress"
        # the kept indices select from PackedMasks directly
        p = fastiou.pack_masks(as_masks(combo, m, "uint8"))
        kept = p[fastiou.mask_nms(p, combo.asarray(s, "float64"), threshold)]
        assert np.array_equal(combo.to_numpy(kept.unpack()), m[want] != 0)


def test_mask_nms_edge_cases(combo):
    m = combo.asarray(np.zeros((0, 5, 5)), "uint8")
    combo.check_native(fastiou.mask_nms(m, combo.asarray(np.zeros(0), "float32"), 0.5), dtype="int64", shape=(0,))
    x = as_masks(combo, blob_masks(3, 10, 10, seed=1), "uint8")
    with pytest.raises(fastiou.InputError, match="scores"):
        fastiou.mask_nms(x, combo.asarray(np.zeros(4), "float32"), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        fastiou.mask_nms(x, combo.asarray(np.zeros(len(x)), "float32"), float("nan"))


# --------------------------------------------------------------------------- matrix_nms
@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_matrix_nms_on_masks_matches_reference(combo, kernel):
    m, s = nms_masks(seed=2)
    s = np.nan_to_num(s, nan=0.05)
    labels = np.arange(len(m)) % 2
    want = ref.mask_matrix_nms(m, s, labels, kernel, 2.0)
    outs = []
    for x in (as_masks(combo, m, "uint8"), fastiou.pack_masks(as_masks(combo, m, "uint8"))):
        got = fastiou.matrix_nms(x, combo.asarray(s, "float32"), combo.asarray(labels, "int64"), kernel, 2.0)
        combo.check_native(got, dtype="float32", shape=(len(m),))
        outs.append(combo.to_numpy(got))
        np.testing.assert_allclose(outs[-1], want, rtol=2e-6, atol=1e-7)
    assert np.array_equal(outs[0], outs[1])
    assert (want < np.float32(s) * 0.5).sum() >= 3, "the workload should decay scores"


def test_matrix_nms_on_masks_known_values(combo):
    m = np.zeros((3, 4, 4), np.uint8)
    m[0, :2, :] = 1        # 8 pixels
    m[1, :1, :] = 1        # 4 pixels, inside mask 0: IoU 0.5
    m[2, 3, :] = 1         # disjoint
    s = combo.asarray([0.9, 0.8, 0.7], "float32")
    g = combo.to_numpy(fastiou.matrix_nms(as_masks(combo, m, "uint8"), s, combo.asarray([0, 0, 0], "int64")))
    np.testing.assert_allclose(g, [0.9, 0.8 * math.exp(-2.0 * 0.25), 0.7], rtol=1e-6)
    lin = combo.to_numpy(fastiou.matrix_nms(as_masks(combo, m, "uint8"), s, combo.asarray([0, 0, 0], "int64"), "linear"))
    np.testing.assert_allclose(lin, [0.9, 0.4, 0.7], rtol=1e-6)


# --------------------------------------------------------------------------- resolve_overlaps
@pytest.mark.parametrize("dtype", ["bool", "uint8", "float32"])
def test_resolve_overlaps_matches_reference(combo, dtype):
    m, s = nms_masks(seed=5)
    m = m[:10, :24, :70].astype(np.float64) * np.random.default_rng(1).choice([1, 2, 0.5], size=(10, 24, 70))
    if dtype == "bool":
        m = m != 0
    s = s[:10]
    x = combo.asarray(m, dtype)
    held = combo.to_numpy(x)
    got = fastiou.resolve_overlaps(x, combo.asarray(s, "float64"))
    combo.check_native(got, dtype=dtype, shape=m.shape)
    out = combo.to_numpy(got)
    want = ref.resolve_overlaps(held, s)
    assert np.array_equal(out, want)
    fg_in, fg = held != 0, out != 0
    assert (fg.sum(0) <= 1).all(), "no pixel in two masks"
    assert np.array_equal(fg.any(0), fg_in.any(0)), "the union is unchanged"
    assert not (fg & ~fg_in).any(), "pixels only leave masks"
    # never from a higher- to a lower-ranked mask: a pixel removed from mask i is held by a
    # mask ranked before i
    order = ref.rank(s)
    pos = np.empty(len(s), int)
    pos[order] = np.arange(len(s))
    lost = fg_in & ~fg
    holder = np.where(fg.any(0), fg.argmax(0), -1)
    for i in range(len(s)):
        ys, xs = np.nonzero(lost[i])
        assert (pos[holder[ys, xs]] < pos[i]).all()
    assert lost.any(), "the workload should overlap"
    assert np.array_equal(combo.to_numpy(x), held), "the input is not modified"
    # PackedMasks in, PackedMasks out, with fresh stats
    p = fastiou.resolve_overlaps(fastiou.pack_masks(x), combo.asarray(s, "float64"))
    assert isinstance(p, fastiou.PackedMasks)
    assert np.array_equal(combo.to_numpy(p.unpack()), want != 0)
    assert np.array_equal(combo.to_numpy(p.areas), (want != 0).sum((1, 2)))
    assert np.array_equal(combo.to_numpy(p.boxes), tight_boxes(want))


def test_resolve_overlaps_ties_and_nan(combo):
    m = np.ones((4, 3, 5), np.uint8)
    s = np.array([np.nan, 0.5, 0.5, 0.1])
    got = combo.to_numpy(fastiou.resolve_overlaps(as_masks(combo, m, "uint8"), combo.asarray(s, "float64")))
    assert got[1].all() and not got[[0, 2, 3]].any(), "ties: the lower index wins; NaN ranks last"


def test_resolve_overlaps_bad_input(combo):
    x = as_masks(combo, blob_masks(2, 8, 8, seed=0), "uint8")
    with pytest.raises(fastiou.InputError, match="scores"):
        fastiou.resolve_overlaps(x, combo.asarray(np.zeros(3), "float64"))
    with pytest.raises(fastiou.InputError, match="masks"):
        fastiou.resolve_overlaps(x[0], combo.asarray(np.zeros(8), "float64"))


# --------------------------------------------------------------------------- baseline ISA
_BASELINE_SCRIPT = r"""
import numpy as np, fastiou
m = np.load(__import__("sys").argv[1])
p = fastiou.pack_masks(m)
np.savez(__import__("sys").argv[2], bits=p.bits, boxes=p.boxes, areas=p.areas,
         iou=fastiou.mask_iou(m, m[::-1].copy()), keep=fastiou.mask_nms(p, np.linspace(1, 0, len(m)), 0.3),
         stats=fastiou.PackedMasks.from_bits(p.bits, m.shape[2]).boxes,
         rle=np.array([r["counts"] for r in fastiou.rle.encode(m)]))
"""


def test_cpp_baseline_isa_path(tmp_path):
    """The plain loops (CPUs without popcnt / AVX2: the byte-flag packing, libgcc popcount)
    give the same results as the dispatched ones; FASTIOU_MASK_ISA=baseline forces them."""
    import os
    import subprocess
    import sys

    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("fastiou._C is not built")
    m = blob_masks(6, 45, 200, seed=9)
    m[2] *= 3  # non-binary
    src = tmp_path / "m.npy"
    np.save(src, m)
    outs = []
    for isa in ("", "baseline"):
        dst = tmp_path / f"out{isa}.npz"
        env = dict(os.environ, FASTIOU_MASK_ISA=isa, FASTIOU_BACKEND="cpp")
        subprocess.run([sys.executable, "-c", _BASELINE_SCRIPT, str(src), str(dst)], env=env, check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(fastiou.__file__))))
        outs.append(dict(np.load(dst)))
    assert np.array_equal(outs[1]["bits"], expected_bits(m))
    assert np.array_equal(outs[1]["boxes"], tight_boxes(m))
    assert np.array_equal(outs[1]["stats"], tight_boxes(m))
    assert np.array_equal(outs[1]["iou"], ref.mask_iou(m, m[::-1]).astype(np.float32))
    coco = require("pycocotools.mask")  # rle.encode packs its rows with the same loops
    want = coco.encode(np.asfortranarray((m != 0).astype(np.uint8).transpose(1, 2, 0)))
    assert outs[1]["rle"].tolist() == [r["counts"] for r in want]
    for k in outs[0]:
        assert np.array_equal(outs[0][k], outs[1][k]), k


def test_host_backends_agree_bit_for_bit():
    """cpp and numba give the same bits, boxes, IoUs, kept indices and decayed scores."""
    info = fastiou.backends()
    if not (info["cpp"]["available"] and info["numba"]["available"]):
        pytest.skip("needs both host backends")
    m, s = nms_masks(seed=7)
    labels = np.arange(len(m)) % 3
    res = {}
    for be in ("cpp", "numba"):
        with fastiou.use_backend(be):
            p = fastiou.pack_masks(m)
            res[be] = [p.bits, p.boxes, p.areas, fastiou.mask_iou(m, m[::2].copy()),
                       fastiou.mask_nms(p, s, 0.4), fastiou.resolve_overlaps(m, s)]
            for kernel in ("gaussian", "linear"):
                res[be].append(fastiou.matrix_nms(p, s, labels, kernel, 0.7))
    for a, b in zip(res["cpp"], res["numba"]):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
