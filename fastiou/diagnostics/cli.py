"""``fastiou check``: the command line over ``fastiou.diagnostics.check``.

Exit codes: 0 when the check ran (whatever it found); 1 with ``--strict`` when a record is bad
(a finding of severity "error"); 2 on unusable input or arguments (a missing file, invalid JSON,
an output path that cannot be written). Bad input never gives a traceback: a message names the
file, the image id and the annotation id.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastiou check",
        description="Audit a COCO instances file for the annotation faults that make instance "
                    "masks overlap: same-class and cross-class overlapping pairs, duplicates, "
                    "crowd regions over instances, masks that disagree with their bbox or area, "
                    "degenerate or out-of-image polygons, RLE of the wrong size, dangling ids.")
    p.add_argument("annotations", metavar="ANNOTATIONS.json", help="COCO instances file (read only)")
    p.add_argument("--images", metavar="DIR", help="image folder: the report draws over the images")
    p.add_argument("--iou", type=float, default=0.5,
                   help="mask IoU above which a pair is reported (default 0.5); also the crowd "
                        "coverage (intersection over the instance) threshold")
    p.add_argument("--box-iou", type=float, default=0.7,
                   help="box IoU above which a same-class pair is reported (default 0.7)")
    p.add_argument("--report", metavar="DIR", help="write a self-contained HTML report DIR/index.html")
    p.add_argument("--json", metavar="FILE", help="write every finding as JSON (schema "
                                                  "fastiou.check/1, see fastiou.diagnostics)")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes (default: all cores; small files run in one process)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a dask.distributed scheduler")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when any record is bad (a finding of severity error)")
    p.add_argument("--plain", action="store_true", help="plain-text table, even when rich is installed")
    return p


def fail(command: str, msg: str) -> int:
    """Prints ``fastiou COMMAND: msg`` to stderr; the exit status of unusable input (2). Shared by
    the diagnostics commands (check, sweep, anchors)."""
    print(f"fastiou {command}: {msg}", file=sys.stderr)
    return 2


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def overwritten_input(inputs, outputs) -> str | None:
    """The message for the first ``(option, path)`` output that is one of the ``inputs`` (input
    files are never written to), else None."""
    for opt, out in outputs:
        if out and any(src and _same_file(src, out) for src in inputs):
            return f"{opt} {out}: would overwrite the input file"
    return None


def write_outputs(command: str, json_path, json_doc, written: str = "results", files=()) -> int | None:
    """The outputs of a diagnostics command: ``json_doc()`` as JSON to ``json_path`` when given,
    then each ``(path, write)`` of ``files`` whose path is given (``write()`` returns the line
    to print). None when all went well, else fail()'s status: a path that cannot be written
    (OSError) or a missing optional library (RuntimeError: matplotlib, jinja2) is a message,
    never a traceback."""
    try:
        if json_path:
            with open(json_path, "w", encoding="utf-8") as fh:
                json.dump(json_doc(), fh, indent=1)
            print(f"{written} written to {json_path}")
        for path, write in files:
            if path:
                print(write())
    except OSError as e:
        return fail(command, f"cannot write the output: {e}")
    except RuntimeError as e:
        return fail(command, str(e))
    return None


def _fail(msg: str) -> int:
    return fail("check", msg)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .api import check
    from .coco import UnusableInput, load
    from .report import Progress, print_summary, to_json_dict, write_html

    for name, v in (("--iou", args.iou), ("--box-iou", args.box_iou)):
        if not 0.0 <= v <= 1.0:
            return _fail(f"{name}: expected a number in [0, 1], got {v}")
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers: expected a positive number, got {args.workers}")
    if args.images and not os.path.isdir(args.images):
        return _fail(f"--images: {args.images}: no such folder")
    src = args.annotations
    clash = overwritten_input([src], [("--json", args.json), ("--report", args.report)])
    if clash:
        return _fail(clash)
    if args.report and os.path.isfile(args.report):
        return _fail(f"--report {args.report}: would overwrite a file")
    try:
        data, source = load(src)
    except UnusableInput as e:
        return _fail(str(e))
    bar = Progress()
    try:
        result = check(data, iou=args.iou, box_iou=args.box_iou, workers=args.workers,
                       dask=args.dask, progress=bar, source=source)
    except (RuntimeError, OSError) as e:  # dask missing or unreachable, processes failing to start
        return _fail(str(e))
    finally:
        bar.close()
    print_summary(result, plain=args.plain)
    status = write_outputs("check", args.json, lambda: to_json_dict(result), "findings", [
        (args.report, lambda: f"report written to {write_html(result, data, args.report, args.images)}")])
    if status is not None:
        return status
    return 1 if args.strict and result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
