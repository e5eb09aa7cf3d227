"""The ``sweep`` benchmark: NMS at 17 IoU thresholds over every image of a detector's output.

Workload: reproducible synthetic COCO-like predictions, ``n_images`` images x 100 detections (20
objects per image, 5 jittered detections each, 80 classes, 10 % of the duplicates under another
class), 17 IoU thresholds (0.1, 0.15, ..., 0.9), class-aware.

* baseline: ``torchvision.ops.batched_nms`` re-run per threshold and per image (what one does by
  hand: 17 x n_images calls);
* ``fastiou.nms_sweep``: one call per image (one sort, one overlap pass, every threshold);
* ``fastiou.diagnostics.sweep``: the whole library function from the COCO results list (record
  checks, NMS, the overlapping pairs left per setting), without evaluation;
* masks: ``pycocotools.mask.iou`` + a greedy pass per threshold and per image against
  ``fastiou.rle.iou`` once per image + ``greedy_sweep``;
* COCOeval's own time for one setting (the evaluator's, not ours), reported apart.

Every fastiou row is checked against its baseline (the same kept indices, image by image).
``run_sweep_benchmark(quick)`` returns rows ``{"workload", "baseline", "baseline_s", "fastiou",
"fastiou_s", "ratio", "threads"}``; ``python benchmarks/bench_sweep.py`` prints them.
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np

THRESHOLDS = [round(0.1 + 0.05 * k, 2) for k in range(17)]


def synthetic_predictions(n_images: int = 5000, per_image: int = 100, seed: int = 0,
                          h: int = 480, w: int = 640) -> tuple:
    """``(per-image list of (boxes xyxy float64, scores float64, classes int64), COCO results
    list, ground truth dict)``; the same for the same arguments."""
    rng = np.random.default_rng(seed)
    n_obj = max(1, per_image // 5)
    images, results = [], []
    gt = {"images": [], "annotations": [], "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 81)]}
    aid = 1
    for iid in range(1, n_images + 1):
        wh = np.exp(rng.uniform(np.log(8), np.log(300), (n_obj, 2)))
        xy = rng.uniform(0, 1, (n_obj, 2)) * np.maximum(np.array([w, h]) - wh, 1)
        cls = rng.integers(1, 81, n_obj)
        k = np.arange(per_image) % n_obj
        jit = rng.normal(0, 0.08, (per_image, 4)) * np.concatenate([wh[k], wh[k]], 1)
        boxes = np.concatenate([xy[k], xy[k] + wh[k]], 1) + jit
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        boxes = np.clip(boxes, 0, [w, h, w, h])                # float64, as JSON gives them
        scores = rng.uniform(0.01, 1, per_image)
        c = np.where(rng.random(per_image) < 0.1, rng.integers(1, 81, per_image), cls[k]).astype(np.int64)
        images.append((boxes, scores, c))
        gt["images"].append({"id": iid, "height": h, "width": w})
        for o in range(n_obj):
            x0, y0 = (float(v) for v in xy[o])
            bw, bh = (float(v) for v in wh[o])
            gt["annotations"].append({"id": aid, "image_id": iid, "category_id": int(cls[o]),
                                      "bbox": [x0, y0, bw, bh], "area": bw * bh, "iscrowd": 0,
                                      "segmentation": [[x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]]})
            aid += 1
        boxes = np.concatenate([boxes[:, :2], boxes[:, :2] + (boxes[:, 2:] - boxes[:, :2])], 1)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)   # x + w == x2
        for j in range(per_image):
            results.append({"image_id": iid, "category_id": int(c[j]), "score": float(scores[j]),
                            "bbox": xywh[j].tolist()})
    return images, results, gt


def _best(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _threads(n):
    import torch

    import fastiou
    torch.set_num_threads(n)
    fastiou.set_num_threads(n)


def _box_rows(images, results, repeats, cores) -> list:
    import torch
    import torchvision

    import fastiou
    from .sweep import sweep
    tensors = [(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(c)) for b, s, c in images]

    def baseline():
        return [[torchvision.ops.batched_nms(b, s, c, t).numpy() for t in THRESHOLDS]
                for b, s, c in tensors]

    def ours():
        return [fastiou.nms_sweep(b, s, THRESHOLDS, c) for b, s, c in images]

    def whole():
        return sweep(results, iou=THRESHOLDS, workers=1)
    n = len(images)
    work = f"{n} images x {len(images[0][1])} boxes, {len(THRESHOLDS)} IoU thresholds, class-aware"
    rows = []
    for threads in sorted({1, cores}):
        _threads(threads)
        tb, ref = _best(baseline, repeats)
        tf, got = _best(ours, repeats)
        tw, res = _best(whole, repeats)
        # nms_sweep is batched_nms at each threshold; torchvision's CPU batched_nms shifts the
        # boxes by class (its coordinate trick), which can flip a pair at the boundary
        differ = 0
        for (b, s, c), r, g in zip(images, ref, got):
            for t, a, k in zip(THRESHOLDS, r, g):
                assert np.array_equal(np.asarray(k), np.asarray(fastiou.batched_nms(b, s, c, t)))
                differ += not np.array_equal(a, np.asarray(k))
        kept = [sum(len(k) for k in (g[t] for g in got)) for t in range(len(THRESHOLDS))]
        assert [s["kept"] for s in res.settings[:len(THRESHOLDS)]] == kept
        base = f"torchvision.ops.batched_nms x {len(THRESHOLDS)} thresholds x {n} images"
        rows.append({"workload": f"sweep boxes: {work}", "baseline": base, "baseline_s": tb,
                     "fastiou": "fastiou.nms_sweep per image", "fastiou_s": tf, "ratio": tb / tf,
                     "threads": threads, "kept_sets_differing_from_torchvision": differ,
                     "kept_sets": n * len(THRESHOLDS)})
        rows.append({"workload": f"sweep boxes: {work}", "baseline": base, "baseline_s": tb,
                     "fastiou": "fastiou.diagnostics.sweep (COCO results in; + pairs left per "
                                "setting; no evaluation)", "fastiou_s": tw, "ratio": tb / tw,
                     "threads": threads})
    return rows


def _mask_rows(n_images, repeats, cores) -> list:
    import pycocotools.mask as mu

    from .. import rle
    from .sweep import greedy_sweep
    rng = np.random.default_rng(1)
    h, w, per = 120, 160, 50
    data = []
    for _ in range(n_images):
        images, _, _ = synthetic_predictions(1, per, int(rng.integers(1 << 30)), h, w)
        boxes, scores, _ = images[0]
        m = np.zeros((per, h, w), np.uint8)
        for j, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
            m[j, y0:y1, x0:x1] = 1
        enc = mu.encode(np.asfortranarray(m.transpose(1, 2, 0)))
        data.append((enc, scores.astype(np.float64)))

    def baseline():   # the mask IoU per image (pycocotools), a greedy pass per threshold
        out = []
        for enc, s in data:
            iou = np.asarray(mu.iou(enc, enc, [0] * len(enc)))
            order = np.argsort(-s, kind="stable")
            per_t = []
            for t in THRESHOLDS:
                kept = []
                for i in order:
                    if not kept or not (iou[i, kept] > t).any():
                        kept.append(i)
                per_t.append(np.array(kept, np.int64))
            out.append(per_t)
        return out

    def ours():
        return [greedy_sweep(rle.iou(enc, enc, np.zeros(len(enc), bool)), s, THRESHOLDS)
                for enc, s in data]
    rows = []
    for threads in sorted({1, cores}):
        _threads(threads)
        tb, ref = _best(baseline, repeats)
        tf, got = _best(ours, repeats)
        for r, g in zip(ref, got):
            assert all(np.array_equal(a, b) for a, b in zip(r, g))
        rows.append({"workload": f"sweep masks: {n_images} images x {per} RLE masks {h}x{w}, "
                                 f"{len(THRESHOLDS)} IoU thresholds",
                     "baseline": "pycocotools.mask.iou per image + a greedy loop per threshold",
                     "baseline_s": tb, "fastiou": "fastiou.rle.iou per image + greedy_sweep",
                     "fastiou_s": tf, "ratio": tb / tf, "threads": threads})
    return rows


def coco_eval_seconds(results, gt) -> float:
    """COCOeval (pycocotools) on one setting: loadRes + evaluate + accumulate + summarize."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = gt
        g.createIndex()
        t = time.perf_counter()
        e = COCOeval(g, g.loadRes([dict(r) for r in results]), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return time.perf_counter() - t


def run_sweep_benchmark(quick: bool = False) -> list:
    """Rows ``{"workload", "baseline", "baseline_s", "fastiou", "fastiou_s", "ratio", "threads"}``:
    5000 images (500 with ``quick``), best of 3 (2 for the full size); the last row is COCOeval's
    own time for one setting (no ratio: it is the evaluator's)."""
    from .parallel import _cores
    n = 500 if quick else 5000
    repeats = 3 if quick else 2
    cores = _cores()
    images, results, gt = synthetic_predictions(n)
    rows = _box_rows(images, results, repeats, cores)
    rows += _mask_rows(n // 10, repeats, cores)
    k = min(n, 500)
    sub = [r for r in results if r["image_id"] <= k]
    gsub = {"images": gt["images"][:k], "categories": gt["categories"],
            "annotations": [a for a in gt["annotations"] if a["image_id"] <= k]}
    te = coco_eval_seconds(sub, gsub)
    rows.append({"workload": f"COCOeval bbox, one setting, {k} images x 100 detections",
                 "baseline": "-", "baseline_s": None, "fastiou": "pycocotools COCOeval (the "
                 "evaluator's own time, not fastiou's)", "fastiou_s": te, "ratio": None,
                 "threads": 1})
    return rows


def format_rows(rows) -> str:
    out = []
    for r in rows:
        ratio = "" if r["ratio"] is None else f"  {r['ratio']:.1f}x"
        base = "" if r["baseline_s"] is None else f"{r['baseline']}: {r['baseline_s']:.3f} s; "
        out.append(f"{r['workload']} [{r['threads']} thread{'s' if r['threads'] > 1 else ''}]\n"
                   f"    {base}{r['fastiou']}: {r['fastiou_s']:.3f} s{ratio}")
    return "\n".join(out)
