"""Outputs of ``check``: the JSON document, the terminal summary, the progress bar, the HTML report.

The terminal uses ``rich`` when it is installed (``pip install 'fastiou[diagnostics]'``) and plain
text otherwise; the HTML report needs ``jinja2`` (and Pillow to draw over the images of
``--images``). Pictures are PNGs encoded here (numpy and zlib) and embedded as base64, so the
report is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import math
import os
import struct
import sys
import time
import zlib
from collections import Counter, defaultdict

import numpy as np

from .findings import KINDS

SCHEMA = "fastiou.check/1"
PAIR_KINDS = ("duplicate", "cross_class_overlap", "mask_overlap", "crowd_overlap", "box_overlap")


# ------------------------------------------------------------------------------ summaries

def _fmt(v) -> str:
    if v is None:
        return ""
    if float(v).is_integer() and abs(v) >= 1:
        return f"{int(v)}"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"


def summarize(result) -> dict:
    """``{"by_kind": ..., "by_category": ...}`` as in the JSON schema."""
    by_kind: dict = {}
    for i, f in enumerate(result.findings):
        s = by_kind.setdefault(f.kind, {"count": 0, "worst_value": None, "worst": None})
        s["count"] += 1
        if f.value is not None and (s["worst"] is None or
                                    f.badness() > result.findings[s["worst"]].badness()):
            s["worst"], s["worst_value"] = i, f.value
    by_kind = {k: by_kind[k] for k in KINDS if k in by_kind}
    per_cat: dict = defaultdict(Counter)
    for f in result.findings:
        for name in set(f.categories):
            per_cat[name][f.kind] += 1
    by_cat = {}
    names = set(result.annotations_per_category) | set(per_cat)
    for name in sorted(names, key=lambda n: (-sum(per_cat[n].values()), n)):
        by_cat[name] = {"annotations": result.annotations_per_category.get(name, 0),
                        "findings": sum(per_cat[name].values()), "by_kind": dict(per_cat[name])}
    return {"by_kind": by_kind, "by_category": by_cat}


def counts(result) -> dict:
    errors = sum(f.severity == "error" for f in result.findings)
    return {"images": result.n_images, "annotations": result.n_annotations,
            "categories": result.n_categories, "findings": len(result.findings),
            "errors": errors, "warnings": len(result.findings) - errors}


def to_json_dict(result) -> dict:
    """The JSON document of ``fastiou check --json`` (schema in ``fastiou.diagnostics``)."""
    return {"schema": SCHEMA, "source": result.source, "engine": result.engine,
            "seconds": result.seconds, "parameters": result.params.to_dict(),
            "counts": counts(result),
            "kinds": {k: v._asdict() for k, v in KINDS.items()},
            "summary": summarize(result),
            "findings": [f.to_dict() for f in result.findings]}


def _kind_rows(result, summary) -> list:
    rows = []
    for kind, s in summary["by_kind"].items():
        k = KINDS[kind]
        w = result.findings[s["worst"]] if s["worst"] is not None else \
            next(f for f in result.findings if f.kind == kind)
        rows.append({"kind": kind, "severity": k.severity, "count": s["count"], "metric": k.metric,
                     "worst_text": _fmt(s["worst_value"]), "where": w.where(),
                     "description": k.description})
    return rows


def _category_rows(summary, limit=None) -> list:
    rows = []
    for name, s in summary["by_category"].items():
        if not s["findings"]:
            continue
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(s["by_kind"].items(), key=lambda x: -x[1]))
        rows.append({"name": name, "annotations": s["annotations"], "findings": s["findings"],
                     "kinds": kinds})
    return rows[:limit] if limit else rows


# ------------------------------------------------------------------------------ terminal

def print_summary(result, file=None, max_messages: int = 20, plain=None) -> None:
    """The terminal summary: counts, findings by type and by category, the bad records."""
    file = file or sys.stdout
    summary = summarize(result)
    c = counts(result)
    title = (f"fastiou check: {result.source}: {c['images']} images, {c['annotations']} annotations, "
             f"{c['categories']} categories; {c['findings']} findings ({c['errors']} errors, "
             f"{c['warnings']} warnings) in {result.seconds:.2f} s [{result.engine}]")
    kinds = _kind_rows(result, summary)
    cats = _category_rows(summary, 15)
    errors = result.errors
    try:
        if plain:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        _print_plain(title, kinds, cats, errors, result.source, file, max_messages)
        return
    tty = hasattr(file, "isatty") and file.isatty()
    con = Console(file=file, highlight=False, width=None if tty else 120)
    con.print(title, markup=False, soft_wrap=True)
    if kinds:
        t = Table(title="findings by type", title_justify="left")
        for col, just in (("kind", "left"), ("severity", "left"), ("count", "right"),
                          ("metric", "left"), ("worst", "right"), ("worst at", "left")):
            t.add_column(col, justify=just)
        for r in kinds:
            t.add_row(*(Text(str(x)) for x in (r["kind"], r["severity"], r["count"],
                                                r["metric"] or "", r["worst_text"], r["where"])))
        con.print(t)
        t = Table(title=f"findings by category (the {len(cats)} with most)", title_justify="left")
        for col, just in (("category", "left"), ("annotations", "right"), ("findings", "right"),
                          ("by kind", "left")):
            t.add_column(col, justify=just)
        for r in cats:
            t.add_row(*(Text(str(x)) for x in (r["name"], r["annotations"], r["findings"], r["kinds"])))
        con.print(t)
    else:
        con.print("no findings")
    for line in _error_lines(errors, result.source, max_messages):
        con.print(line, markup=False, soft_wrap=True)


def _error_lines(errors, source, limit) -> list:
    if not errors:
        return []
    out = [f"{len(errors)} bad record{'s' if len(errors) != 1 else ''}:"]
    out += [f"  {source}: {f.where()}: {f.message}" for f in errors[:limit]]
    if len(errors) > limit:
        out.append(f"  ... and {len(errors) - limit} more (all of them in --json)")
    return out


def _print_plain(title, kinds, cats, errors, source, file, limit):
    print(title, file=file)
    if not kinds:
        print("no findings", file=file)

    def table(head, rows):
        w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for r in [head, ["-" * n for n in w]] + rows:
            print("  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip(), file=file)
    if kinds:
        print("\nfindings by type", file=file)
        table(["kind", "severity", "count", "metric", "worst", "worst at"],
              [[r["kind"], r["severity"], r["count"], r["metric"] or "", r["worst_text"], r["where"]]
               for r in kinds])
        print(f"\nfindings by category (the {len(cats)} with most)", file=file)
        table(["category", "annotations", "findings", "by kind"],
              [[r["name"], r["annotations"], r["findings"], r["kinds"]] for r in cats])
    lines = _error_lines(errors, source, limit)
    if lines:
        print("", file=file)
    for line in lines:
        print(line, file=file)


class Progress:
    """``progress(done, total)`` callback: a bar (rich) on stderr once a run passes a second."""

    def __init__(self, label: str = "checking images", delay: float = 1.0, stream=None):
        self.label, self.delay, self.stream = label, delay, stream or sys.stderr
        self.t0 = time.monotonic()
        self.bar = self.task = None
        self.last_plain = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.t0 < self.delay:
            return
        if self.bar is None:
            try:
                from rich.console import Console
                from rich.progress import Progress as RichProgress
                self.bar = RichProgress(console=Console(file=self.stream), transient=False)
                self.bar.start()
                self.task = self.bar.add_task(self.label, total=total)
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.update(self.task, completed=done)
        elif now - self.last_plain >= 2.0 or done == total:
            self.last_plain = now
            print(f"{self.label}: {done}/{total} images ({now - self.t0:.0f} s)", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


# ------------------------------------------------------------------------------ pictures

def png(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes (8-bit RGB, no filter, zlib)."""
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), np.ascontiguousarray(rgb).reshape(h, w * 3)], 1)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


_COLORS = (np.array([210, 60, 60], np.float32), np.array([42, 110, 230], np.float32))


def _edge(m):
    p = np.pad(m, 1)
    return m & ~(p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])


def _dashed_box(canvas, box, color):
    h, w, _ = canvas.shape
    x0, y0 = int(math.floor(box[0])), int(math.floor(box[1]))
    x1, y1 = int(math.ceil(box[0] + box[2])), int(math.ceil(box[1] + box[3]))
    xs = [x for x in range(max(x0, 0), min(x1, w - 1) + 1) if (x // 4) % 2 == 0]
    ys = [y for y in range(max(y0, 0), min(y1, h - 1) + 1) if (y // 4) % 2 == 0]
    for y in (y0, y1):
        if 0 <= y < h:
            canvas[y, xs] = color
    for x in (x0, x1):
        if 0 <= x < w:
            canvas[ys, x] = color


def draw(background: np.ndarray, masks: list, boxes: list, max_side: int = 320) -> np.ndarray:
    """Masks (H, W bool) tinted and outlined over ``background`` (H, W, 3), cropped to them."""
    canvas = background.astype(np.float32)
    for m, color in zip(masks, _COLORS):
        canvas[m] = canvas[m] * 0.55 + color * 0.45
    for m, color in zip(masks, _COLORS):
        canvas[_edge(m)] = color
    for b, color in zip(boxes, _COLORS):
        if b is not None:
            _dashed_box(canvas, b, color)
    h, w = masks[0].shape
    union = np.zeros((h, w), bool)
    for m in masks:
        union |= m
    for b in boxes:  # the crop shows the bbox fields too
        if b is not None:
            x0, y0 = int(max(math.floor(b[0]), 0)), int(max(math.floor(b[1]), 0))
            x1, y1 = int(min(math.ceil(b[0] + b[2]), w - 1)), int(min(math.ceil(b[1] + b[3]), h - 1))
            if x0 <= x1 and y0 <= y1:
                union[y0, x0] = union[y1, x1] = True
    ys, xs = np.nonzero(union)
    if len(ys):
        pad = 16
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
        canvas = canvas[y0:y1, x0:x1]
    step = max(1, math.ceil(max(canvas.shape[:2]) / max_side))
    canvas = canvas[::step, ::step]
    grow = max(1, (max_side // 2) // max(canvas.shape[:2]))  # small objects: nearest upscaling
    if grow > 1:
        canvas = canvas.repeat(grow, 0).repeat(grow, 1)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _background(image: dict, images_dir, notes: list) -> np.ndarray:
    h, w = image["height"], image["width"]
    blank = np.full((h, w, 3), 245, np.uint8)
    if not images_dir:
        return blank
    name = image.get("file_name")
    path = os.path.join(images_dir, name) if isinstance(name, str) else None
    if path is None or not os.path.isfile(path):
        notes.append(f"image {image['id']}: {path or 'no file_name'} not found; drawn on a blank canvas")
        return blank
    try:
        from PIL import Image
    except ImportError:
        notes.append("Pillow is not installed: pictures drawn on a blank canvas (pip install pillow)")
        return blank
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except Exception as e:  # any unreadable image file: draw on the blank canvas and say so
        notes.append(f"image {image['id']}: {path} cannot be read ({e}); drawn on a blank canvas")
        return blank
    if rgb.shape[:2] != (h, w):
        notes.append(f"image {image['id']}: {path} is {rgb.shape[1]}x{rgb.shape[0]}, the annotations "
                     f"say {w}x{h}; drawn on a blank canvas")
        return blank
    return rgb


def _pictures(result, data, images_dir, limit, notes) -> list:
    """PNG pictures of the worst pair findings (and bbox mismatches), as template records."""
    from .. import rle as _rle
    order = PAIR_KINDS + ("bbox_mismatch",)
    ranked = sorted((i for i, f in enumerate(result.findings) if f.kind in order and f.value is not None),
                    key=lambda i: (order.index(result.findings[i].kind), -result.findings[i].badness(), i))
    per_kind, picked = Counter(), []
    for i in ranked:  # the worst of each kind first, a third of the pictures at most per kind
        per_kind[result.findings[i].kind] += 1
        if per_kind[result.findings[i].kind] <= max(1, limit // 3):
            picked.append(i)
    ranked = picked
    ranked = ranked[:limit]
    if not ranked:
        return []
    want_anns = {a for i in ranked for a in result.findings[i].annotation_ids}
    want_imgs = {result.findings[i].image_id for i in ranked}
    anns: dict = {}  # by (image, id): an id used twice is told apart by its image
    for a in data.get("annotations", []):
        if isinstance(a, dict) and a.get("id") in want_anns:
            anns.setdefault((a.get("image_id"), a.get("id")), a)
    imgs = {im["id"]: im for im in data.get("images", []) if isinstance(im, dict)
            and im.get("id") in want_imgs}
    out = []
    for i in ranked:
        f = result.findings[i]
        image = imgs.get(f.image_id)
        try:
            pair = [anns[(f.image_id, a)] for a in f.annotation_ids]
            h, w = image["height"], image["width"]
            masks = [_rle.decode(_rle.from_segmentation(a["segmentation"], h, w)).astype(bool)
                     for a in pair]
        except Exception:  # a record that changed shape since the check: leave its picture out
            continue
        boxes = [a.get("bbox") if isinstance(a.get("bbox"), list) else None for a in pair]
        rgb = draw(_background(image, images_dir, notes), masks, boxes)
        names = " / ".join(f"{a['id']} ({c})" for a, c in zip(pair, f.categories))
        out.append({"index": i, "kind": f.kind, "value_text": f"{f.metric} {_fmt(f.value)}",
                    "caption": f"image {f.image_id}: {names}", "width": rgb.shape[1],
                    "height": rgb.shape[0], "png": base64.b64encode(png(rgb)).decode("ascii")})
    return out


# ------------------------------------------------------------------------------ HTML

def write_html(result, data: dict, out_dir, images_dir=None, max_pictures: int = 24,
               max_rows: int = 20000) -> str:
    """Writes ``out_dir/index.html`` (self-contained) and returns its path.

    Args:
        result (CheckResult): what ``check`` found.
        data (dict): the COCO dict checked (the masks of the pictures are drawn from it).
        out_dir (str): created when missing.
        images_dir (str or None): where the images' ``file_name`` are; None: a blank canvas.
        max_pictures (int): pictures of the worst pairs.
        max_rows (int): rows of the findings table (the worst ones; the JSON has all).
    """
    try:
        import jinja2
    except ImportError as e:
        raise RuntimeError(f"--report needs jinja2 ({e}); pip install 'fastiou[diagnostics]'") from None
    env = jinja2.Environment(loader=jinja2.PackageLoader("fastiou.diagnostics", "templates"),
                             autoescape=True)
    summary = summarize(result)
    notes: list = []
    pictures = _pictures(result, data, images_dir, max_pictures, notes)
    order = sorted(range(len(result.findings)),
                   key=lambda i: (result.findings[i].severity != "error",
                                  list(KINDS).index(result.findings[i].kind),
                                  -result.findings[i].badness(), i))
    rows = []
    for i in order[:max_rows]:
        f = result.findings[i]
        rows.append({"index": i, "kind": f.kind, "severity": f.severity, "image_id": f.image_id,
                     "image_sort": f.image_id if isinstance(f.image_id, int) else -1,
                     "annotation_ids": f.annotation_ids, "categories": f.categories,
                     "value_text": _fmt(f.value),
                     "value_sort": "" if f.value is None else repr(float(f.value)),
                     "message": f.message})
    note = ("Drawn over the images of " + html.escape(str(images_dir)) + "." if images_dir
            else "Drawn on a blank canvas (give --images DIR to draw over the images).")
    if notes:
        note += " " + "; ".join(dict.fromkeys(notes))
    page = env.get_template("report.html.j2").render(
        source=result.source, counts=counts(result), engine=result.engine, seconds=result.seconds,
        parameters=result.params.to_dict(), by_kind=_kind_rows(result, summary),
        by_category=_category_rows(summary), pictures=pictures, picture_note=note, rows=rows,
        truncated=len(rows) < len(result.findings))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path
