"""``fastiou demo``: a small COCO dataset and predictions with planted problems, and every
diagnostic run on them.

``build_demo()`` returns ``(instances dict, predictions list, planted)`` where ``planted`` lists
each planted problem and the ids that carry it:

* ground truth: one person annotated twice (``duplicate``), two dogs whose masks overlap
  (``mask_overlap``), one car also labelled truck (``cross_class_overlap``), a crowd region over
  two persons (``crowd_overlap``), thin and tiny objects that no default anchor reaches;
* predictions: a person detected twice (a same-class duplicate) and a car also predicted as a
  truck (a cross-class duplicate); found when the baseline has both kinds of pairs and the best
  NMS setting removes them and raises the AP.

``run_demo(out_dir)`` writes the dataset, runs ``check`` (JSON and the HTML report), ``anchors``
(torchvision-fpn, with ``--suggest``) and ``sweep`` (class-agnostic box NMS against the ground
truth) on it, writes their reports to ``out_dir`` and says for each planted problem whether it was
found (``DemoResult.found``, ``summary.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

H, W = 480, 640
CATEGORIES = [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}, {"id": 3, "name": "truck"},
              {"id": 4, "name": "dog"}, {"id": 5, "name": "pole"}]


def _rect(x, y, w, h) -> list:
    return [float(v) for v in (x, y, x + w, y, x + w, y + h, x, y + h)]


def _crowd_rle(x, y, w, h) -> dict:
    """COCO's uncompressed RLE (column-major runs) of a rectangle, as crowd regions are stored."""
    counts, pos = [], 0
    for col in range(x, x + w):
        start = col * H + y
        counts += [start - pos, h]
        pos = start + h
    counts.append(H * W - pos)
    return {"size": [H, W], "counts": counts}


def build_demo():
    """``(instances, predictions, planted)``: see the module docstring."""
    from .. import rle
    images = [{"id": i, "file_name": f"demo_{i}.jpg", "height": H, "width": W} for i in range(1, 7)]
    anns = []

    def ann(aid, iid, cat, x, y, w, h, crowd=False):
        seg = _crowd_rle(x, y, w, h) if crowd else [_rect(x, y, w, h)]
        anns.append({"id": aid, "image_id": iid, "category_id": cat, "iscrowd": int(crowd),
                     "segmentation": seg, "bbox": [float(x), float(y), float(w), float(h)],
                     "area": float(w * h)})
    ann(101, 1, 1, 100, 100, 80, 200)
    ann(102, 1, 1, 101, 101, 80, 200)            # the same person, annotated twice
    ann(201, 2, 2, 200, 200, 160, 100)
    ann(202, 2, 3, 200, 200, 160, 100)           # the same car, also labelled truck
    ann(301, 3, 4, 50, 50, 200, 150)
    ann(302, 3, 4, 90, 70, 200, 150)             # two dogs whose masks overlap (IoU 0.53)
    ann(401, 4, 1, 300, 100, 250, 250, crowd=True)
    ann(402, 4, 1, 320, 120, 60, 120)            # persons inside a person crowd region
    ann(403, 4, 1, 420, 150, 60, 120)
    ann(501, 5, 5, 100, 100, 3, 90)              # a thin pole and tiny objects: no default
    ann(502, 5, 5, 300, 50, 120, 3)              # anchor reaches them
    ann(503, 5, 1, 500, 400, 5, 5)
    ann(601, 6, 1, 50, 60, 100, 250)
    ann(602, 6, 2, 300, 300, 200, 120)
    for k, (x, y, w, h) in enumerate([(180, 40, 40, 90), (240, 60, 30, 70), (520, 40, 90, 200),
                                      (20, 380, 120, 80), (200, 420, 50, 40), (560, 300, 60, 150)]):
        ann(603 + k, 6, 1 if h > w else 4, x, y, w, h)     # well-formed objects
    data = {"info": {"description": "fastiou demo: planted problems"}, "images": images,
            "annotations": anns, "categories": CATEGORIES}
    preds = []
    for a in anns:
        if a["iscrowd"] or a["id"] in (102, 202):
            continue
        x, y, w, h = a["bbox"]
        m = rle.from_segmentation(a["segmentation"], H, W)
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"],
                      "bbox": [x + 1, y + 1, w, h], "score": round(0.95 - 0.02 * len(preds), 2),
                      "segmentation": {"size": m["size"], "counts": m["counts"].decode()}})
    p601, p602 = (next(p for p in preds if p["bbox"][:2] == [x + 1, y + 1])
                  for x, y in ((50, 60), (300, 300)))
    # the same person twice, a car also as a truck; scored just below the true ones, above others
    preds.append(dict(p601, bbox=[58, 71, 100, 250], score=round(p601["score"] - 0.01, 3)))
    preds.append(dict(p602, category_id=3, bbox=[303, 302, 198, 120],
                      score=round(p602["score"] - 0.01, 3)))
    planted = {
        "duplicate annotation": {"command": "check", "kind": "duplicate", "ids": [101, 102]},
        "overlapping annotations": {"command": "check", "kind": "mask_overlap", "ids": [301, 302]},
        "one object labelled with two classes": {"command": "check", "kind": "cross_class_overlap",
                                                 "ids": [201, 202]},
        "crowd region over instances": {"command": "check", "kind": "crowd_overlap",
                                        "ids": [402, 401]},
        "boxes the default anchors do not reach": {"command": "anchors", "ids": [501, 502, 503]},
        "duplicate predictions (same class, across classes)": {"command": "sweep"},
    }
    return data, preds, planted


@dataclass
class DemoResult:
    out_dir: str
    check: object
    anchors: object
    sweep: object
    found: dict          # planted problem -> bool
    files: list


def _found(planted, chk, anc, swp) -> dict:
    pairs = {(f.kind, tuple(f.annotation_ids)) for f in chk.findings}
    out = {}
    for name, p in planted.items():
        if p["command"] == "check":
            out[name] = (p["kind"], tuple(p["ids"])) in pairs
        elif p["command"] == "anchors":
            missed = {w["annotation_id"] for w in anc.unreached["worst"]}
            out[name] = set(p["ids"]) <= missed
        else:
            base, best = swp.settings[swp.baseline], swp.settings[swp.best]
            out[name] = (base["same_class_pairs"] > 0 and base["cross_class_pairs"] > 0
                         and best["cross_class_pairs"] == 0
                         and best["same_class_pairs"] < base["same_class_pairs"]
                         and best["AP"] > base["AP"])
    return out


def run_demo(out_dir: str = "fastiou-demo", plots: bool = True) -> DemoResult:
    """Writes the demo data and every report to ``out_dir``; see the module docstring."""
    from .anchors import anchors_report
    from .api import check
    from .report import to_json_dict, write_html
    from .sweep import sweep
    data, preds, planted = build_demo()
    os.makedirs(out_dir, exist_ok=True)
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731
    files = []

    def dump(name, obj):
        with open(path(name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
        files.append(path(name))
    dump("instances.json", data)
    dump("predictions.json", preds)
    chk = check(path("instances.json"), workers=1)
    dump("check.json", to_json_dict(chk))
    files.append(write_html(chk, data, path("check")))
    anc = anchors_report(path("instances.json"), preset="torchvision-fpn", suggest=15)
    dump("anchors.json", anc.to_dict())
    swp = sweep(path("predictions.json"), gt=path("instances.json"), iou="0.3:0.9:0.1",
                mode="agnostic", workers=1)
    dump("sweep.json", swp.to_dict())
    if plots:
        try:
            from .anchors_cli import plot as anchors_plot
            from .sweep_cli import plot as sweep_plot
            files.append(anchors_plot(anc, anc.box_shapes, path("anchors.png")))
            files.append(sweep_plot(swp, path("sweep.png")))
        except RuntimeError:   # matplotlib missing: the plots are optional
            pass
    found = _found(planted, chk, anc, swp)
    dump("summary.json", {"planted": planted, "found": found})
    return DemoResult(out_dir, chk, anc, swp, found, files)


def main(argv=None) -> int:
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="fastiou demo", description="A small COCO dataset with planted "
                                "problems; check, anchors and sweep run on it, reports in DIR.")
    p.add_argument("--out", metavar="DIR", default="fastiou-demo", help="where to write (default "
                                                                        "./fastiou-demo)")
    p.add_argument("--plain", action="store_true", help="plain-text tables")
    args = p.parse_args(argv)
    from .anchors_cli import print_report
    from .report import print_summary, print_table
    from .sweep_cli import message_lines, rows, summary_lines
    try:
        r = run_demo(args.out)
    except OSError as e:
        print(f"fastiou demo: cannot write to {args.out}: {e}", file=sys.stderr)
        return 2
    print(f"$ fastiou check {args.out}/instances.json --report {args.out}/check")
    print_summary(r.check, plain=args.plain)
    print(f"\n$ fastiou anchors {args.out}/instances.json --suggest 15")
    print_report(r.anchors, plain=args.plain)
    print(f"\n$ fastiou sweep {args.out}/predictions.json --gt {args.out}/instances.json "
          f"--iou 0.3:0.9:0.1 --mode agnostic")
    head, tail = summary_lines(r.sweep)
    for line in head:
        print(line)
    cols, body = rows(r.sweep)
    print_table("settings", cols, body, plain=args.plain)
    for line in tail + message_lines(r.sweep):
        print(line)
    print()
    print_table("planted problems", [("problem", "left"), ("found by", "left"), ("found", "left")],
                [[k, v["command"], "yes" if r.found[k] else "NO"] for k, v in
                 build_demo()[2].items()], plain=args.plain)
    print(f"reports written to {args.out}/: " + ", ".join(os.path.relpath(f, args.out) for f in r.files))
    return 0 if all(r.found.values()) else 1


if __name__ == "__main__":
    import sys
    sys.exit(main())
