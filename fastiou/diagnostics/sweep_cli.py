"""``fastiou sweep``: the command line over ``fastiou.diagnostics.sweep``.

Exit codes: 0 when the sweep ran (whatever it found); 1 with ``--strict`` when a prediction record
is bad; 2 on unusable input or arguments (a missing file, invalid JSON, a bad SPEC or groups file,
an output path that cannot be written, the evaluator or dask missing). Bad records never give a
traceback: a message names the file, the prediction's index, its image id and category id.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from .sweep import DEFAULT_IOU, NO_NMS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastiou sweep",
        description="Re-run NMS over COCO-format predictions at every IoU and score threshold "
                    "(one sort and one overlap pass per image) and measure each setting: "
                    "detections kept, overlapping pairs left, and with --gt the COCO AP/AR "
                    "from pycocotools' COCOeval.")
    p.add_argument("predictions", metavar="PREDICTIONS.json", help="COCO results file (read only)")
    p.add_argument("--gt", metavar="ANNOTATIONS.json", help="COCO instances ground truth: AP/AR")
    p.add_argument("--iou", default=DEFAULT_IOU, metavar="SPEC",
                   help=f"NMS IoU thresholds: 0.5, 0.3,0.5,0.7 or START:STOP:STEP (both ends "
                        f"included; default {DEFAULT_IOU}); 1.0 (no NMS) is always added")
    p.add_argument("--score", metavar="SPEC",
                   help="score thresholds (a detection stays when its score is above); no score "
                        "threshold is always swept too")
    p.add_argument("--masks", action="store_true",
                   help="mask NMS on the predictions' RLE masks, and segm AP (default: box NMS, bbox AP)")
    p.add_argument("--mode", default="class", metavar="class|agnostic|groups:FILE",
                   help="class-aware (default), class-agnostic, or agnostic within the groups of "
                        "FILE (a JSON list of lists of category ids)")
    p.add_argument("--resolve-overlaps", action="store_true",
                   help="after mask NMS, give each pixel to the best-scoring mask (needs --masks)")
    p.add_argument("--overlap-iou", type=float, default=0.5,
                   help="IoU above which two kept detections count as overlapping (default 0.5)")
    p.add_argument("--evaluator", default="auto", choices=("auto", "pycocotools", "faster-coco-eval"),
                   help="auto: faster-coco-eval when installed, else pycocotools (same numbers)")
    p.add_argument("--plot", metavar="FILE.png", help="AP and overlaps against the IoU threshold "
                                                     "(needs matplotlib)")
    p.add_argument("--json", metavar="FILE", help="write every number as JSON (schema "
                                                  "fastiou.sweep/1, see fastiou.diagnostics.sweep)")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes (default: all cores; small files run in one process)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a dask.distributed scheduler")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a record is bad")
    p.add_argument("--plain", action="store_true", help="plain-text table, even when rich is installed")
    return p


def _num(v, digits=3) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def _thr(s) -> str:
    return "none" if s is None else f"{s:g}"


def _iou_text(t) -> str:
    return "1.0 (no NMS)" if t == NO_NMS else f"{t:g}"


def setting_text(s: dict) -> str:
    nms = "no NMS" if s["iou"] == NO_NMS else f"NMS IoU {s['iou']:g}"
    return nms + ("" if s["score"] is None else f", score > {s['score']:g}")


def summary_lines(r) -> list:
    """The title and the verdict lines (the table is printed between them)."""
    p, c = r.parameters, r.counts
    what = "mask" if p["masks"] else "box"
    mode = {"class": "class-aware", "agnostic": "class-agnostic"}.get(
        p["mode"], f"agnostic within {len(p['groups'] or [])} groups of classes")
    head = (f"fastiou sweep: {r.source}: {c['predictions']} predictions, {c['used']} swept on "
            f"{c['images']} images ({c['categories']} categories); {what} NMS, {mode}"
            f"{', resolve_overlaps' if p['resolve_overlaps'] else ''}; {len(p['iou'])} IoU x "
            f"{len(p['score'])} score thresholds [{r.engine}]; NMS and overlaps "
            f"{r.seconds['nms']:.2f} s")
    if r.gt:
        head += f"; {p['iou_type']} AP from {r.evaluator} against {r.gt}: {r.seconds['eval']:.1f} s"
    tail = []
    if r.best is not None:
        b = r.settings[r.best]
        line = f"best: {setting_text(b)}"
        if b.get("AP") is not None:
            line += f": AP {b['AP']:.3f}"
        line += (f", {b['kept']} kept, {b['same_class_pairs']} same-class and "
                 f"{b['cross_class_pairs']} cross-class pairs with {p['overlaps_on']} IoU > "
                 f"{p['overlap_iou']:g} left")
        if r.baseline is not None and r.baseline != r.best:
            z = r.settings[r.baseline]
            line += (" (as predicted: " + (f"AP {z['AP']:.3f}, " if z.get("AP") is not None else "")
                     + f"{z['kept']} kept, {z['same_class_pairs']} + {z['cross_class_pairs']} pairs)")
        tail.append(line)
    return [head], tail


def rows(r) -> tuple:
    """The settings table: ``(columns, rows)``; every COCOeval number is in --json."""
    cols = [("score >", "right"), ("NMS IoU", "right"), ("kept", "right"),
            ("same-class", "right"), ("cross-class", "right")]
    shown = ("AP", "AP50", "AP75", "AR100") if r.gt else ()
    cols += [(k, "right") for k in shown] + [("", "left")]
    out = []
    for k, s in enumerate(r.settings):
        out.append([_thr(s["score"]), "none" if s["iou"] == NO_NMS else f"{s['iou']:g}", s["kept"],
                    s["same_class_pairs"], s["cross_class_pairs"]]
                   + [_num(s.get(x)) for x in shown] + ["best" if k == r.best else ""])
    return cols, out


def message_lines(r, limit: int = 20) -> list:
    if not r.messages:
        return []
    out = [f"{len(r.messages)} record{'s' if len(r.messages) != 1 else ''} left out or noted:"]
    for m in r.messages[:limit]:
        where = []
        if m["prediction"] is not None:
            where.append(f"predictions[{m['prediction']}]")
        if m["image_id"] is not None:
            where.append(f"image {m['image_id']}")
        if m["category_id"] is not None:
            where.append(f"category {m['category_id']}")
        src = r.gt if m["kind"] == "eval_failed" else r.source
        out.append(f"  {src}: {', '.join(where) + ': ' if where else ''}{m['message']} [{m['kind']}]")
    if len(r.messages) > limit:
        out.append(f"  ... and {len(r.messages) - limit} more (all of them in --json)")
    return out


def plot(r, path: str) -> str:
    """AP (left axis) and the overlapping pairs left (right axis) against the IoU threshold."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError(f"--plot needs matplotlib ({e}): pip install 'fastiou[plot]'") from None
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax2 = ax.twinx()
    ious = r.parameters["iou"]
    for k, s in enumerate(r.parameters["score"]):
        part = r.settings[k * len(ious):(k + 1) * len(ious)]
        tag = "" if s is None else f", score > {s:g}"
        color = f"C{k % 10}"
        if r.gt:
            ap = [math.nan if x.get("AP") is None else x["AP"] for x in part]
            ax.plot(ious, ap, "o-", color=color, label=f"AP{tag}")
        ax2.plot(ious, [x["same_class_pairs"] for x in part], "s--", color=color, alpha=0.6,
                 label=f"same-class pairs{tag}")
        ax2.plot(ious, [x["cross_class_pairs"] for x in part], "^:", color=color, alpha=0.6,
                 label=f"cross-class pairs{tag}")
    ax.set_xlabel("NMS IoU threshold (1.0: no NMS)")
    ax.set_ylabel(f"COCO {r.parameters['iou_type']} AP" if r.gt else "(no ground truth: no AP)")
    ax2.set_ylabel(f"pairs left with {r.parameters['overlaps_on']} IoU > {r.parameters['overlap_iou']:g}")
    if r.best is not None:
        ax.axvline(r.settings[r.best]["iou"], color="grey", lw=0.8)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    ax.set_title(f"fastiou sweep: {os.path.basename(r.source)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .cli import fail as _fail, overwritten_input, write_outputs
    from .coco import UnusableInput
    from .report import Progress, print_table
    from .sweep import parse_spec, sweep

    def fail(msg):
        return _fail("sweep", msg)
    if args.workers is not None and args.workers < 1:
        return fail(f"--workers: expected a positive number, got {args.workers}")
    clash = overwritten_input([args.predictions, args.gt], [("--json", args.json), ("--plot", args.plot)])
    if clash:
        return fail(clash)
    try:
        ious = parse_spec(args.iou, "--iou")
        scores = parse_spec(args.score, "--score", -math.inf, math.inf)
    except ValueError as e:
        return fail(str(e))
    if not 0.0 <= args.overlap_iou <= 1.0:
        return fail(f"--overlap-iou: expected a number in [0, 1], got {args.overlap_iou}")
    if args.resolve_overlaps and not args.masks:
        return fail("--resolve-overlaps needs mask NMS (--masks)")
    bar, ebar = Progress("sweeping images"), Progress("COCOeval", unit="settings")
    try:
        r = sweep(args.predictions, gt=args.gt, iou=ious, score=scores or None, masks=args.masks,
                  mode=args.mode, resolve_overlaps=args.resolve_overlaps, workers=args.workers,
                  dask=args.dask, overlap_iou=args.overlap_iou, evaluator=args.evaluator,
                  progress=bar, eval_progress=ebar)
    except (UnusableInput, ValueError, TypeError, RuntimeError, OSError) as e:
        return fail(str(e))
    finally:
        bar.close()
        ebar.close()
    head, tail = summary_lines(r)
    for line in head:
        print(line)
    cols, body = rows(r)
    p = r.parameters
    print_table(f"settings: detections kept, pairs left with {p['overlaps_on']} IoU > "
                f"{p['overlap_iou']:g}" + (f", COCO {p['iou_type']} AP/AR" if r.gt else ""),
                cols, body, plain=args.plain)
    for line in tail + message_lines(r):
        print(line)
    status = write_outputs("sweep", args.json, r.to_dict,
                           files=[(args.plot, lambda: f"plot written to {plot(r, args.plot)}")])
    if status is not None:
        return status
    bad = [m for m in r.messages if m["prediction"] is not None]
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    sys.exit(main())
