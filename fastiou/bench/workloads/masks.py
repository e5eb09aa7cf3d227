"""Mask workloads: ``mask-iou``, ``rle-encode``, ``rle-iou``, ``mask-nms``.

Baselines are what users run today: the float32 matmul IoU of ultralytics / detectron2 /
mmdet (torch, and numpy when torch is missing), pycocotools (``encode`` on the Fortran-order
``(H, W, N)`` copy it requires, then ``iou``), a greedy loop over a torch IoU matrix for mask
NMS and mmdet's ``mask_matrix_nms`` formula in torch for Matrix NMS.
"""

from __future__ import annotations

import os
import zlib
from typing import Any, Callable

import numpy as np

from fastiou import _inputs
from fastiou.bench.env import Env
from fastiou.bench.threads import stacked, torch_threads
from fastiou.bench.registry import Case, Contender, case_workload

ORDER = 30


# --------------------------------------------------------------------------------------------
# Baselines


def torch_mask_iou(torch, m1, m2):
    """The float32 matmul IoU (ultralytics ``mask_iou``, detectron2, mmdet): uint8 masks to
    float, intersections by one matmul."""
    a = m1.reshape(m1.shape[0], -1).float()
    b = m2.reshape(m2.shape[0], -1).float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def np_mask_iou(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    a = m1.reshape(m1.shape[0], -1).astype(np.float32)
    b = m2.reshape(m2.shape[0], -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0).astype(np.float32)


def coco_encode(mask_util, masks: np.ndarray) -> list:
    """pycocotools.mask.encode from the (N, H, W) masks users hold: it takes (H, W, N) in
    Fortran order only, so the copy is part of the call."""
    return mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0)))


def coco_mask_iou(mask_util, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    r1, r2 = coco_encode(mask_util, m1), coco_encode(mask_util, m2)
    return np.asarray(mask_util.iou(r1, r2, [0] * len(r2)))


def torch_mask_nms(torch, masks, scores, thr: float) -> np.ndarray:
    """Greedy mask NMS over a torch float32 IoU matrix (the usual hand-rolled loop)."""
    order = torch.argsort(scores, descending=True, stable=True)
    m = masks[order]
    iou = torch_mask_iou(torch, m, m).cpu().numpy()
    n = len(order)
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i].astype(np.float64) > thr
    return order.cpu().numpy()[keep]


def torch_matrix_nms(torch, masks, scores, labels, kernel: str = "gaussian", sigma: float = 2.0):
    """mmdet ``mask_matrix_nms``'s decay, in torch, scores returned in input order (with a
    stable sort, as fastiou ranks)."""
    order = torch.argsort(scores, descending=True, stable=True)
    s, lab = scores[order], labels[order]
    m = masks[order]
    n = len(order)
    iou = torch_mask_iou(torch, m, m).triu(diagonal=1)
    same = (lab[:, None] == lab[None, :]).triu(diagonal=1)
    decay_iou = iou * same
    comp = decay_iou.max(0).values.expand(n, n).T
    if kernel == "gaussian":
        decay = (torch.exp(-sigma * decay_iou ** 2) / torch.exp(-sigma * comp ** 2)).min(0).values
    else:
        decay = ((1 - decay_iou) / (1 - comp)).min(0).values
    out = torch.empty_like(s)
    out[order] = s * decay
    return out


# --------------------------------------------------------------------------------------------
# Helpers


def _nbytes_note(n: int, m: int, h: int, w: int) -> dict:
    words = (w + 63) // 64
    packed = (n + m) * h * words * 8
    floats = (n + m) * h * w * 4
    return {"packed_bytes": packed, "float32_copies_bytes": floats,
            "memory_ratio": f"1/{floats / packed:.0f}"}


def _rle_canon(rles) -> np.ndarray:
    """RLE dicts as comparable numbers: (h, w, crc32 of counts) per mask."""
    if isinstance(rles, dict):
        rles = [rles]
    rows = []
    for r in rles:
        c = r["counts"]
        c = c.encode() if isinstance(c, str) else bytes(c)
        rows.append((r["size"][0], r["size"][1], zlib.crc32(c)))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def _host_variants(env: Env, label: str, fn: Callable, args: tuple, canon=None,
                   expect_dtype: str | None = None) -> list[Contender]:
    """fastiou's ``fn(*args)`` on each host backend (cpp also on one thread), for ops whose
    results are not one array of the input's library (RLE lists)."""
    out = []
    for b in ("cpp", "numba"):
        skip = env.backend_skip(b)
        ctx = lambda b=b: env.fastiou.use_backend(b)  # noqa: E731
        out.append(Contender(f"fastiou[{b}]", "fastiou", None if skip else (lambda: fn(*args)), ctx, skip,
                             canon=canon, expect_dtype=expect_dtype))
        threads = env.fastiou_threads(1)
        if b == "cpp" and threads is not None:
            out.append(Contender(f"fastiou[{b}] 1-thread", "fastiou", None if skip else (lambda: fn(*args)),
                                 lambda c=ctx, t=threads: stacked(c(), t()), skip, canon=canon,
                                 expect_dtype=expect_dtype))
    return out


def _torch_baselines(env: Env, name: str, fn: Callable, args: tuple, canon=None) -> list[Contender]:
    if env.torch is None:
        return []
    out = [Contender(name, "baseline", lambda: fn(env.torch, *args), canon=canon)]
    if env.device == "cpu":
        out.append(Contender(f"{name} 1-thread", "baseline", lambda: fn(env.torch, *args),
                             lambda: torch_threads(env.torch, 1), canon=canon))
    return out


def _device_masks(env: Env, masks: np.ndarray):
    """(fastiou's input, torch's input) for uint8 masks on this env's device."""
    if env.device == "cuda":
        t = env.torch.from_numpy(masks).to("cuda")
        return t, t
    return masks, (env.torch.from_numpy(masks) if env.torch is not None else None)


# --------------------------------------------------------------------------------------------
# mask-iou


#: Object sizes of the mask workloads: ellipses this fraction of the image across.
ACROSS = {"": (1 / 40, 1 / 4), "large": (1 / 30, 2 / 5)}


def _size_label(base: str, objects: str) -> str:
    return f"{base} {objects}" if objects else base


def mask_iou_params(device: str, quick: bool) -> list[tuple]:
    sizes = [(100, 100, 480, 640, ""), (100, 100, 1024, 1024, ""), (100, 100, 1024, 1024, "large")]
    if not quick:
        sizes.append((300, 300, 800, 1333, ""))
    return sizes


@case_workload("mask-iou", "dense mask IoU, instance-like masks (clusters of 5 predictions; 'large': "
               "objects 1/30 to 2/5 of the image across)", mask_iou_params)
def mask_iou_case(env: Env, n: int, m: int, h: int, w: int, objects: str = "") -> Case:
    both = _inputs.instance_masks(n + m, h, w, seed=n + h, across=ACROSS[objects])
    m1, m2 = np.ascontiguousarray(both[0::2][:n]), np.ascontiguousarray(both[1::2][:m])
    (f1, t1), (f2, t2) = _device_masks(env, m1), _device_masks(env, m2)
    contenders = _torch_baselines(env, "torch matmul", torch_mask_iou, (t1, t2))
    if objects and env.torch is not None:
        # the same matmul on masks that are float32 already (the conversion not counted)
        g1, g2 = t1.float(), t2.float()
        contenders.append(Contender("torch matmul, floats given", "baseline",
                                    lambda: torch_mask_iou(env.torch, g1, g2)))
    if env.device == "cpu":
        if env.torch is None:
            contenders.append(Contender("numpy matmul", "baseline", lambda: np_mask_iou(m1, m2)))
        mask_util = env.optional("pycocotools.mask", "pycocotools")
        if mask_util is not None:
            contenders.append(Contender("pycocotools encode+iou", "baseline",
                                        lambda: coco_mask_iou(mask_util, m1, m2)))
    contenders += env.fastiou_variants("mask_iou", (f1, f2))
    pack = getattr(env.fastiou, "pack_masks", None)
    if pack is not None:
        p1, p2 = pack(f1), pack(f2)
        contenders.append(Contender("fastiou packed", "fastiou", lambda: env.fastiou.mask_iou(p1, p2),
                                    expect_type=env.type_of(f1), expect_dtype="float32"))
    return Case("mask-iou", "mask_iou", _size_label(f"{n}x{m}@{h}x{w}", objects), "uint8", env.device,
                contenders, rtol=1e-6, atol=0, notes=_nbytes_note(n, m, h, w))


# --------------------------------------------------------------------------------------------
# rle-encode


def rle_encode_params(device: str, quick: bool) -> list[tuple]:
    if device != "cpu":
        return []
    return [(100, 480, 640, ""), (100, 1024, 1024, ""), (200, 480, 640, "large"), (100, 1024, 1024, "large")]


def _read_floor(masks: np.ndarray) -> Contender:
    """Reading the masks once (numpy's count_nonzero, one thread): the floor of any encoder."""
    return Contender("floor", "floor", lambda: np.count_nonzero(masks))


@case_workload("rle-encode", "COCO RLE encode from (N, H, W) masks ('large': objects 1/30 to 2/5 of the "
               "image across, each its own)", rle_encode_params)
def rle_encode_case(env: Env, n: int, h: int, w: int, objects: str = "") -> Case:
    masks = _inputs.instance_masks(n, h, w, seed=7, across=ACROSS[objects], per_object=1 if objects else 5)
    mask_util = env.optional("pycocotools.mask", "pycocotools")
    contenders = []
    if mask_util is not None:
        contenders.append(Contender("pycocotools", "baseline", lambda: coco_encode(mask_util, masks),
                                    canon=_rle_canon))
    contenders += _host_variants(env, "rle.encode", env.fastiou.rle.encode, (masks,), canon=_rle_canon)
    contenders.append(_read_floor(masks))
    return Case("rle-encode", "rle.encode", _size_label(f"{n}@{h}x{w}", objects), "uint8", env.device,
                contenders, rtol=0, atol=0, compare="equal",
                notes={"baseline": "includes the (H, W, N) Fortran copy",
                       "floor": "% floor = reading the masks once (np.count_nonzero) / fastiou time"})


# --------------------------------------------------------------------------------------------
# rle-iou


def rle_iou_params(device: str, quick: bool) -> list[tuple]:
    if device != "cpu":
        return []
    return [("eval", 50 if quick else 500), ("worst", 100), ("real", 100)]


def _eval_images(encode: Callable, images: int, seed: int = 11) -> list[tuple]:
    """``images`` COCO-eval calls: 100 detections against 7 ground-truth masks (one crowd)
    at 480 x 640, built from 10 distinct images reused in turn; ``encode``: masks (N, H, W)
    -> RLE dicts."""
    distinct = []
    for k in range(10):
        m = _inputs.instance_masks(107, 480, 640, seed=seed + k, per_object=15)
        rles = encode(m)
        iscrowd = [0] * 6 + [1]
        distinct.append((rles[7:], rles[:7], iscrowd))
    return [distinct[i % len(distinct)] for i in range(images)]


def _real_images(path: str) -> list[tuple] | None:
    """(dt, dt, iscrowd) per image of the real predictions: every detection against every
    other, a fifth of them taken as crowd regions."""
    import json

    if not os.path.exists(path):
        return None
    with open(path) as f:
        dets = json.load(f)
    by_image: dict[int, list] = {}
    for d in dets:
        by_image.setdefault(d["image_id"], []).append(d["segmentation"])
    out = []
    for rles in by_image.values():
        iscrowd = [i % 5 == 0 for i in range(len(rles))]
        out.append((rles, rles, iscrowd))
    return out


REAL_SEGM = "../shared/data/coco_val2014_segm_results_100img.json"


def _real_path(rel: str = REAL_SEGM) -> str:
    """A file of the real data (the predictions by default): ``shared/data`` inside the source
    tree or beside it, or beside one of its two parent folders (a worktree next to the main
    checkout), else ``rel`` relative to the working directory."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    name = os.path.basename(rel)
    for up in ("", "..", os.path.join("..", ".."), os.path.join("..", "..", "..")):
        here = os.path.normpath(os.path.join(root, up, "shared", "data", name))
        if os.path.exists(here):
            return here
    return rel


@case_workload("rle-iou", "COCO RLE iou with iscrowd: eval-style per image, 100x100 worst case, real "
               "predictions", rle_iou_params)
def rle_iou_case(env: Env, kind: str, count: int) -> Case:
    mask_util = env.optional("pycocotools.mask", "pycocotools")
    # The inputs are encoded by fastiou (its strings are pycocotools' byte for byte, as the tests
    # check), so that the fastiou rows run without pycocotools too.
    encode = env.fastiou.rle.encode
    notes: dict[str, Any] = {}
    skip = None
    calls: list[tuple] = []
    if kind == "eval":
        calls = _eval_images(encode, count)
        size = f"{count}img 100x7"
    elif kind == "worst":
        m = _inputs.instance_masks(2 * count, 1024, 1024, seed=5, per_object=2 * count)
        r = encode(m)
        calls = [(r[:count], r[count:], [0] * count)]
        size = f"{count}x{count}@1024"
    else:  # "real"
        got = _real_images(_real_path())
        if got is None:
            skip = f"{REAL_SEGM} not found"
        else:
            calls = got
            notes["detections"] = sum(len(c[0]) for c in calls)
        size = f"{len(calls)}img dt x dt"

    def run(fn):
        return [fn(d, g, c) for d, g, c in calls]

    def canon(res) -> np.ndarray:
        return np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in res]) if res else np.zeros(0)

    base_skip = skip or (None if mask_util is not None else "pycocotools not installed")
    contenders = [Contender("pycocotools", "baseline", None if base_skip else (lambda: run(mask_util.iou)),
                            skip=base_skip, canon=canon)]
    contenders += [c if not skip else Contender(c.name, c.kind, None, c.context, skip, canon=canon)
                   for c in _host_variants(env, "rle.iou", run, (env.fastiou.rle.iou,), canon=canon)]
    return Case("rle-iou", f"rle.iou {kind}", size, "rle", env.device, contenders, rtol=0, atol=0,
                compare="equal", notes=notes)


# --------------------------------------------------------------------------------------------
# rle-codec: decode and polygons, where `fastiou check` and `sweep` spend their time


REAL_GT = "../shared/data/coco_val2014_instances_100img.json"


def rle_codec_params(device: str, quick: bool) -> list[tuple]:
    if device != "cpu":
        return []
    return [("decode", "real"), ("decode", "large"), ("polygons", "real")]


def _coco_decode(mask_util, rles):
    """pycocotools' decode, its own (H, W, N) Fortran layout (no copy to (N, H, W) counted)."""
    import warnings

    with warnings.catch_warnings():  # its Masks.__array__ predates numpy 2's copy keyword
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_util.decode(rles)


def _ann_to_rle(mask_util, seg, h: int, w: int):
    """pycocotools' COCO.annToRLE for a polygon list: frPyObjects, then merge."""
    return mask_util.merge(mask_util.frPyObjects(seg, h, w))


@case_workload("rle-codec", "COCO RLE decode (real predictions per image; 100 large masks at 1024x1024) "
               "and polygons to RLE (the real ground truth, annToRLE per annotation)", rle_codec_params)
def rle_codec_case(env: Env, op: str, data: str) -> Case:
    import json

    mask_util = env.optional("pycocotools.mask", "pycocotools")
    rle = env.fastiou.rle
    skip = None
    notes: dict[str, Any] = {}
    if op == "decode":
        if data == "real":
            got = _real_images(_real_path())
            groups = [g[0] for g in got] if got is not None else []
            skip = None if got is not None else f"{REAL_SEGM} not found"
            size = f"{len(groups)}img"
            notes["masks"] = sum(len(g) for g in groups)
        else:
            groups = [rle.encode(_inputs.instance_masks(100, 1024, 1024, seed=3, across=ACROSS["large"],
                                                        per_object=1))]
            size = "100@1024x1024 large"
        base = lambda: [_coco_decode(mask_util, g) for g in groups]  # noqa: E731
        mine = lambda: [rle.decode(g) for g in groups]  # noqa: E731
        canon_base = lambda res: np.concatenate([np.ascontiguousarray(x.transpose(2, 0, 1)).ravel() for x in res])  # noqa: E731
        canon_mine = lambda res: np.concatenate([x.ravel() for x in res])  # noqa: E731
        notes["layout"] = "pycocotools returns (H, W, N) Fortran order, fastiou (N, H, W) C order; neither copies"
        notes["floor"] = "% floor = allocating and filling the same uint8 outputs / fastiou time"
        shapes = [(len(g), *g[0]["size"]) for g in groups]
        floor = [Contender("floor", "floor", lambda: [np.ones(sh, np.uint8) for sh in shapes])]
    else:
        path = _real_path(REAL_GT)
        anns: list[tuple] = []
        if os.path.exists(path):
            with open(path) as f:
                coco = json.load(f)
            hw = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
            anns = [(a["segmentation"], *hw[a["image_id"]]) for a in coco["annotations"]
                    if isinstance(a["segmentation"], list)]
        else:
            skip = f"{REAL_GT} not found"
        size = f"{len(anns)} annotations"
        notes["points"] = sum(len(p) // 2 for seg, _, _ in anns for p in seg)
        base = lambda: [_ann_to_rle(mask_util, seg, h, w) for seg, h, w in anns]  # noqa: E731
        mine = lambda: [rle.from_segmentation(seg, h, w) for seg, h, w in anns]  # noqa: E731
        canon_base = canon_mine = _rle_canon
        floor = []
    base_skip = skip or (None if mask_util is not None else "pycocotools not installed")
    contenders = [Contender("pycocotools", "baseline", None if base_skip else base, skip=base_skip,
                            canon=canon_base)]
    for c in _host_variants(env, f"rle.{op}", mine, (), canon=canon_mine):
        contenders.append(c if not skip else Contender(c.name, c.kind, None, c.context, skip, canon=canon_mine))
    contenders += [] if skip else floor
    return Case("rle-codec", "rle.decode" if op == "decode" else "rle.from_segmentation", size,
                "rle" if op == "decode" else "poly", env.device, contenders, rtol=0, atol=0,
                compare="equal", notes=notes)


# --------------------------------------------------------------------------------------------
# mask-nms


def mask_nms_params(device: str, quick: bool) -> list[tuple]:
    cases = [("mask_nms", 500, 200, 333), ("matrix_nms", 500, 200, 333)]
    if not quick:
        cases += [("mask_nms", 3000, 256, 256), ("matrix_nms", 3000, 256, 256)]
    return cases


@case_workload("mask-nms", "mask NMS (IoU 0.5) and Matrix NMS (gaussian, sigma 2) on instance masks",
               mask_nms_params)
def mask_nms_case(env: Env, op: str, n: int, h: int, w: int) -> Case:
    masks = _inputs.instance_masks(n, h, w, seed=n, per_object=10)
    rng = np.random.default_rng(n)
    scores = rng.uniform(0.05, 1.0, n).astype(np.float32)
    labels = rng.integers(0, 4, n)
    fm, tm = _device_masks(env, masks)
    if env.device == "cuda":
        fs = env.torch.from_numpy(scores).to("cuda")
        fl = env.torch.from_numpy(labels).to("cuda")
        ts, tl = fs, fl
    else:
        fs, fl = scores, labels
        ts = env.torch.from_numpy(scores) if env.torch is not None else None
        tl = env.torch.from_numpy(labels) if env.torch is not None else None
    if op == "mask_nms":
        contenders = _torch_baselines(env, "torch matmul + greedy", torch_mask_nms, (tm, ts, 0.5))
        contenders += env.fastiou_variants("mask_nms", (fm, fs, 0.5), expect_dtype="int64")
        return Case("mask-nms", op, f"{n}@{h}x{w}", "uint8", env.device, contenders, rtol=0, atol=0,
                    compare="equal", notes={"iou_threshold": 0.5})
    contenders = _torch_baselines(env, "torch (mmdet formula)", torch_matrix_nms, (tm, ts, tl))
    contenders += env.fastiou_variants("matrix_nms", (fm, fs, fl))
    return Case("mask-nms", op, f"{n}@{h}x{w}", "uint8", env.device, contenders, rtol=1e-5, atol=1e-6,
                notes={"kernel": "gaussian", "sigma": 2.0, "labels": 4})
