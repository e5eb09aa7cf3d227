"""The ``check`` benchmark: ``fastiou.diagnostics.check`` against a straightforward pycocotools
script doing the same checks (``annToRLE`` + ``maskUtils.iou`` per image), on reproducible
synthetic COCO-like data; and an SA-1B-like set (large images, ~100 compressed-RLE masks each)
whose per-worker throughput gives the SA-1B-scale estimate.

``run_check_benchmark(quick)`` returns rows ``{"workload", "baseline", "baseline_s", "fastiou",
"fastiou_s", "ratio", ...}``; ``python benchmarks/bench_check.py`` prints them.
"""

from __future__ import annotations

import contextlib
import io
import os
import time

import numpy as np

SA1B_IMAGES = 11_000_000
SA1B_MASKS = 1_100_000_000


# ------------------------------------------------------------------------------ data

def _ellipse_runs(h, w, cy, cx, ry, rx):
    """COCO uncompressed RLE counts of a filled ellipse (column-major runs), without a mask."""
    counts, pos = [], 0
    for x in range(w):
        dx = (x - cx) / rx
        if abs(dx) >= 1:
            continue
        half = ry * np.sqrt(1 - dx * dx)
        y0, y1 = max(0, int(np.ceil(cy - half))), min(h, int(np.floor(cy + half)) + 1)
        if y1 <= y0:
            continue
        start = x * h + y0
        counts += [start - pos, y1 - y0]
        pos = start + y1 - y0
    counts.append(h * w - pos)
    return counts


def _shoelace(p):
    x, y = p[0::2], p[1::2]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def _polygon(rng, cx, cy, r, n):
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.7, 1.0, n)
    return np.round(np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1), 2).ravel()


def synthetic_coco(n_images: int = 5000, n_instances: int = 36000, seed: int = 0, h: int = 480,
                   w: int = 640, crowd_fraction: float = 0.01, duplicate_fraction: float = 0.02) -> dict:
    """A COCO-val-like instances dict: polygons (10% in two parts) of log-uniform sizes, some
    crowd regions in uncompressed RLE, a few planted duplicates; the same for the same seed."""
    rng = np.random.default_rng(seed)
    per = rng.multinomial(n_instances - n_images, np.full(n_images, 1 / n_images)) + 1
    cats = [{"id": i, "name": f"class{i}"} for i in range(1, 81)]
    images, anns, aid = [], [], 1
    for iid in range(1, n_images + 1):
        images.append({"id": iid, "height": h, "width": w, "file_name": f"{iid:012d}.jpg"})
        for _ in range(per[iid - 1]):
            r = float(np.exp(rng.uniform(np.log(6), np.log(160))))
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            cat = int(rng.integers(1, 81))
            if rng.random() < crowd_fraction:
                counts = _ellipse_runs(h, w, cy, cx, r, r * 1.3)
                seg = {"size": [h, w], "counts": counts}
                area = float(sum(counts[1::2]))
                box = [cx - r * 1.3, cy - r, 2.6 * r, 2 * r]
                crowd = 1
            else:
                parts = [_polygon(rng, cx, cy, r, int(rng.integers(8, 30)))]
                if rng.random() < 0.1:
                    parts.append(_polygon(rng, cx + r, cy + r, r / 3, int(rng.integers(5, 12))))
                xy = np.concatenate([p.reshape(-1, 2) for p in parts])
                lo, hi = xy.min(0), xy.max(0)
                box = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
                area = float(sum(_shoelace(p) for p in parts))  # COCO's polygon area
                seg = [p.tolist() for p in parts]
                crowd = 0
            anns.append({"id": aid, "image_id": iid, "category_id": cat, "segmentation": seg,
                         "area": area, "bbox": box, "iscrowd": crowd})
            aid += 1
            if not crowd and rng.random() < duplicate_fraction:
                anns.append({**anns[-1], "id": aid, "segmentation": [
                    (np.asarray(p) + 0.5).tolist() for p in seg]})
                aid += 1
    return {"images": images, "annotations": anns, "categories": cats}


def sa1b_like(n_images: int = 20, masks: int = 100, seed: int = 1, h: int = 1500,
              w: int = 2250) -> dict:
    """SA-1B-shaped data: large images, ~100 masks each in compressed RLE (SA-1B's format),
    nested and overlapping as SAM's automatic masks are."""
    from .. import rle
    rng = np.random.default_rng(seed)
    images, anns, aid = [], [], 1
    for iid in range(1, n_images + 1):
        images.append({"id": iid, "height": h, "width": w, "file_name": f"sa_{iid}.jpg"})
        for _ in range(masks):
            r = float(np.exp(rng.uniform(np.log(8), np.log(500))))
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            poly = _polygon(rng, cx, cy, r, int(rng.integers(8, 40)))
            seg = rle.from_segmentation([poly], h, w)
            seg = {"size": seg["size"], "counts": seg["counts"].decode("ascii")}
            xy = poly.reshape(-1, 2)
            lo, hi = xy.min(0), xy.max(0)
            anns.append({"id": aid, "image_id": iid, "category_id": 1, "segmentation": seg,
                         "area": float(rle.area(seg)), "iscrowd": 0,
                         "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]})
            aid += 1
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "object"}]}


# ------------------------------------------------------------------------------ the baseline

def pycocotools_check(data: dict, iou: float = 0.5, box_iou: float = 0.7) -> list:
    """What a user writes today with pycocotools: per image, annToRLE every annotation, then
    maskUtils.iou for the pairs (and the crowd rule), area / toBbox against the fields."""
    from pycocotools import mask as mu
    from pycocotools.coco import COCO
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    found = []
    for img_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        if not anns:
            found.append(("no_annotations", img_id))
            continue
        rles = [coco.annToRLE(a) for a in anns]
        areas = mu.area(rles)
        boxes = mu.toBbox(rles)
        fields = [a["bbox"] for a in anns]
        own = mu.iou(list(boxes), fields, [0] * len(anns))
        for k, a in enumerate(anns):
            if areas[k] == 0:
                found.append(("empty", a["id"]))
            elif own[k, k] < 0.5:
                found.append(("bbox", a["id"]))
            if areas[k] and abs(a["area"] - areas[k]) / areas[k] > 0.2:
                found.append(("area", a["id"]))
        inst = [k for k, a in enumerate(anns) if not a["iscrowd"]]
        crowd = [k for k, a in enumerate(anns) if a["iscrowd"]]
        if len(inst) > 1:
            r = [rles[k] for k in inst]
            m = mu.iou(r, r, [0] * len(r))
            b = mu.iou([fields[k] for k in inst], [fields[k] for k in inst], [0] * len(r))
            for x in range(len(inst)):
                for y in range(x + 1, len(inst)):
                    ax, ay = anns[inst[x]], anns[inst[y]]
                    if m[x, y] > iou or (ax["category_id"] == ay["category_id"] and b[x, y] > box_iou):
                        found.append(("pair", ax["id"], ay["id"], m[x, y]))
        if inst and crowd:
            c = mu.iou([rles[k] for k in inst], [rles[k] for k in crowd], [1] * len(crowd))
            for x, k in enumerate(inst):
                for y, j in enumerate(crowd):
                    if anns[k]["category_id"] == anns[j]["category_id"] and c[x, y] > iou:
                        found.append(("crowd", anns[k]["id"], anns[j]["id"]))
    return found


# ------------------------------------------------------------------------------ timing

def _pairs(found):
    return {(f[1], f[2]) for f in found if f[0] == "pair"}


@contextlib.contextmanager
def _threads(n):
    import fastiou
    old = fastiou.get_num_threads()
    fastiou.set_num_threads(n)
    try:
        yield
    finally:
        fastiou.set_num_threads(old)


def run_check_benchmark(quick: bool = False) -> list:
    """Rows: the pycocotools script (one process, as users run it) against ``check`` on one core
    (one process, one thread) and on every core (one process on every core's OpenMP threads; one
    worker process per core), for a
    COCO-val-sized synthetic set (500 images in quick mode) and an SA-1B-shaped set; the runs
    are interleaved and the best of the repeats kept (a shared machine's noise); ``first_s``
    is each one's first call (for worker processes it includes starting the fork server, which
    later calls reuse). The SA-1B row also gives the estimate for 11M images from the one-core
    throughput."""
    from .api import check
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # (shard sizes: check's own choice, as a user gets it)
    sets = [("check coco-val-like", synthetic_coco(500, 3600) if quick else synthetic_coco(), None),
            ("check sa1b-like", sa1b_like(6 if quick else 40), None)]
    repeat = 2 if quick else 3
    rows = []
    for name, data, shard in sets:
        n_img, n_ann = len(data["images"]), len(data["annotations"])
        # (label, workers, OpenMP threads): one core; one process on every core's threads
        # (the polygon and IoU kernels are multithreaded); one worker process per core
        runs = [("1 process, 1 thread", 1, 1)]
        if cores > 1:
            runs += [(f"1 process, {cores} threads", 1, cores), (f"{cores} processes", cores, 1)]
        best = {"base": float("inf"), **{label: float("inf") for label, _, _ in runs}}
        first: dict = {}  # the first call of each (process rows: it starts the fork server)
        same = True
        for _ in range(repeat):
            t = time.perf_counter()
            base = pycocotools_check(data)
            best["base"] = min(best["base"], time.perf_counter() - t)
            for label, workers, threads in runs:
                with _threads(threads):
                    t = time.perf_counter()
                    res = check(data, workers=workers, shard_size=shard)
                    best[label] = min(best[label], time.perf_counter() - t)
                    first.setdefault(label, time.perf_counter() - t)
                ours = {tuple(f.annotation_ids) for f in res.findings
                        if f.kind in ("duplicate", "mask_overlap", "box_overlap", "cross_class_overlap")}
                same = same and ours == _pairs(base)
        for label, workers, threads in runs:
            s = best[label]
            rows.append({
                "workload": f"{name} ({n_img} images, {n_ann} masks)",
                "baseline": "pycocotools script (1 process)", "baseline_s": best["base"],
                "fastiou": f"fastiou.diagnostics.check, {label}", "fastiou_s": s,
                "ratio": best["base"] / s, "workers": workers, "threads": threads,
                "first_s": first[label],
                "images_per_s": n_img / s, "same_pairs": same,
                "sa1b_worker_hours": (SA1B_IMAGES / (n_img / s) / 3600)
                if "sa1b" in name and workers == 1 and threads == 1 else None,
            })
    return rows


def format_rows(rows) -> str:
    lines = [f"{'workload':48s} {'baseline':>9s} {'fastiou':>9s} {'ratio':>6s}  fastiou run"]
    for r in rows:
        lines.append(f"{r['workload']:48s} {r['baseline_s']:8.2f}s {r['fastiou_s']:8.2f}s "
                     f"{r['ratio']:5.2f}x  {r['fastiou'].split(', ', 1)[1]}"
                     + (f" (first call {r['first_s']:.2f}s: {r['baseline_s'] / r['first_s']:.2f}x)"
                        if r.get("workers", 1) > 1 and "first_s" in r else "")
                     + ("" if r["same_pairs"] else "  (pairs differ from the script's!)"))
        if r["sa1b_worker_hours"]:
            h = r["sa1b_worker_hours"]
            lines.append(f"    SA-1B scale ({SA1B_IMAGES:,} images, {SA1B_MASKS:,} masks) at "
                         f"{r['images_per_s']:.1f} images/s per worker: {h:,.0f} worker-hours "
                         f"(~{h / 64:.1f} h on 64 workers, ~{h / 1000 * 60:.0f} min on 1000)")
    return "\n".join(lines)
