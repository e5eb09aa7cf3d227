"""``fastiou anchors``: the command line over ``fastiou.diagnostics.anchors``.

Exit codes: 0 when the fit ran; 1 with ``--strict`` when a record is bad; 2 on unusable input or
arguments (a missing file, invalid JSON, an unknown preset, bad sizes). Bad records are messages
naming the file, the image id and the annotation id, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .anchors import PRESETS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastiou anchors",
        description="How well a detector's anchors fit a COCO dataset's boxes: the best recall the "
                    "matcher can reach per FPN level and COCO size bucket, the boxes no anchor "
                    "reaches, and (--suggest K) anchors that fit better, as config snippets.")
    p.add_argument("annotations", metavar="ANNOTATIONS.json", help="COCO instances file (read only)")
    p.add_argument("--preset", default="torchvision-fpn", choices=list(PRESETS),
                   help="the model's anchors, transform and matcher (default torchvision-fpn)")
    p.add_argument("--sizes", help="anchor sizes in pixels per level: 32,64,128,256,512 or "
                                   "32/40/50,64/80/101,... (several per level)")
    p.add_argument("--ratios", help="height/width aspect ratios for every level: 0.5,1,2")
    p.add_argument("--image-size", metavar="SHORT,LONG",
                   help="the transform's resize: shorter side, longer side at most (800,1333); "
                        "yolov5: one size, the longer side (640)")
    p.add_argument("--suggest", type=int, metavar="K", help="suggest K anchors (k-means, 1 - IoU)")
    p.add_argument("--plot", metavar="FILE.png", help="box shapes against the anchor shapes")
    p.add_argument("--json", metavar="FILE", help="every number as JSON (schema fastiou.anchors/1)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a record is bad")
    p.add_argument("--plain", action="store_true", help="plain-text tables")
    return p


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def print_report(r, plain=False, file=None) -> None:
    from .report import print_table
    file = file or sys.stdout
    pr = r.parameters
    yolo = pr["metric"] == "wh_ratio"
    lo, hi = ("bpr", "bpr") if yolo else (f"IoU>={pr['thresholds']['low']:g}",
                                            f"IoU>={pr['thresholds']['high']:g}")
    c = r.counts
    print(f"fastiou anchors: {r.source}: {c['boxes']} boxes on {c['images']} images "
          f"({c['crowd_skipped']} crowd regions left out), preset {r.preset} "
          f"({pr['convention']} anchors, resize {','.join(map(str, pr['image_size']))}, "
          f"{c['image_sizes']} padded image sizes; matcher: {pr['matcher']}) in {r.seconds:.2f} s",
          file=file)
    if yolo:
        cols = [("", "left"), ("boxes", "right"), (f"recall (ratio > 1/{pr['anchor_t']:g})", "right")]
    else:
        cols = [("", "left"), ("boxes", "right"), (f"recall {lo}", "right"), (f"recall {hi}", "right")]
    rows = []

    def row(name, n, d):
        rows.append([name, n, _pct(d["recall_low"])] + ([] if yolo else [_pct(d["recall_high"])]))
    row("all", r.overall["boxes"], r.overall)
    for b, d in r.buckets.items():
        row(f"{b} (COCO area)", d["boxes"], d)
    for lv in r.levels:
        sizes = "/".join(f"{s:.0f}" for s in lv["sizes"])
        row(f"level {lv['level']} (stride {lv['stride']}, size {sizes})", "", lv)
    print_table("best possible recall",
                cols, rows, file=file, plain=plain)
    extra = (f"anchors above threshold per box: {r.overall['anchors_per_box_high']:.2f}" if yolo else
             f"anchors per box with {hi}: {r.overall['anchors_per_box_high']:.2f}; mean best IoU "
             f"{r.overall['mean_best']:.3f}")
    print(extra, file=file)
    u = r.unreached
    if u["count"]:
        what = f"ratio metric <= 1/{pr['anchor_t']:g}" if yolo else f"best IoU < {pr['thresholds']['low']:g}"
        print(f"{u['count']} boxes no anchor reaches ({what}); the worst {len(u['worst'])}:", file=file)
        print_table("", [("image", "right"), ("annotation", "right"), ("category", "left"),
                         ("w x h", "right"), ("as the model sees it", "right"), ("best", "right")],
                    [[w["image_id"], w["annotation_id"], w["category"], f"{w['w']:.0f} x {w['h']:.0f}",
                      f"{w['scaled_w']:.0f} x {w['scaled_h']:.0f}", f"{w['best']:.3f}"]
                     for w in u["worst"]], file=file, plain=plain)
    s = r.suggestion
    if s:
        o = s["overall"]
        gain = (f"recall {_pct(o['recall_low'])} (now {_pct(r.overall['recall_low'])})" if yolo else
                f"recall {lo} {_pct(o['recall_low'])} (now {_pct(r.overall['recall_low'])}), "
                f"{hi} {_pct(o['recall_high'])} (now {_pct(r.overall['recall_high'])})")
        print(f"suggested anchors (k-means on the rescaled box shapes, K={s['k']}): {gain}", file=file)
        for fw, text in s["config"].items():
            print(f"  {fw}:", file=file)
            for line in text.splitlines():
                print(f"    {line}", file=file)
    if r.messages:
        print(f"{len(r.messages)} records left out:", file=file)
        for m in r.messages[:20]:
            where = ", ".join(x for x in (f"image {m['image_id']}" if m["image_id"] is not None else "",
                                          f"annotation {m['annotation_id']}"
                                          if m["annotation_id"] is not None else "") if x)
            print(f"  {r.source}: {where + ': ' if where else ''}{m['message']} [{m['kind']}]", file=file)
        if len(r.messages) > 20:
            print(f"  ... and {len(r.messages) - 20} more (all of them in --json)", file=file)


def plot(r, data_wh, path: str) -> str:
    """The boxes' (w, h) as the model sees them, against the anchor shapes (log-log)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError(f"--plot needs matplotlib ({e}): pip install 'fastiou[plot]'") from None
    import numpy as np
    fig, ax = plt.subplots(figsize=(6.5, 6), dpi=110)
    wh = np.asarray(data_wh, float).reshape(-1, 2)
    ax.scatter(wh[:, 0], wh[:, 1], s=6, alpha=0.35, color="C0", label="boxes (rescaled)")
    shapes = r.anchor_shapes()
    ax.scatter(shapes[:, 0], shapes[:, 1], s=70, marker="x", color="C3", label=f"anchors ({r.preset})")
    if r.suggestion:
        sh = np.asarray(r.suggestion["shapes"], float)
        if r.suggestion["sizes"] is not None:
            sh = np.array([[s / np.sqrt(a), s * np.sqrt(a)] for lv in r.suggestion["sizes"]
                           for s in lv for a in r.suggestion["ratios"]])
        ax.scatter(sh[:, 0], sh[:, 1], s=60, marker="+", color="C2", label="suggested anchors")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width (pixels, rescaled)")
    ax.set_ylabel("height (pixels, rescaled)")
    ax.set_title(f"fastiou anchors: {os.path.basename(r.source)}"
                 f" — {r.unreached['count']} boxes unreached", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .anchors import anchors_report
    from .cli import fail as _fail, overwritten_input, write_outputs
    from .coco import UnusableInput
    from .report import Progress

    def fail(msg):
        return _fail("anchors", msg)
    clash = overwritten_input([args.annotations], [("--json", args.json), ("--plot", args.plot)])
    if clash:
        return fail(clash)
    bar = Progress("fitting anchors", unit="image sizes")
    try:
        r = anchors_report(args.annotations, preset=args.preset, sizes=args.sizes, ratios=args.ratios,
                           image_size=args.image_size, suggest=args.suggest, progress=bar)
    except (UnusableInput, ValueError, TypeError, OSError) as e:
        return fail(str(e))
    finally:
        bar.close()
    print_report(r, plain=args.plain)
    status = write_outputs("anchors", args.json, r.to_dict,
                           files=[(args.plot, lambda: f"plot written to {plot(r, r.box_shapes, args.plot)}")])
    if status is not None:
        return status
    return 1 if args.strict and r.messages else 0


if __name__ == "__main__":
    sys.exit(main())
