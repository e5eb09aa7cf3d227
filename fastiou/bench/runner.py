"""The ``fastiou bench`` command: arguments, the run loop, what is printed and written.

:func:`run` is the programmatic entry (returns the JSON document); :func:`main` is the
command line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from typing import TextIO

from fastiou.bench import load, probe, report
from fastiou.bench.measure import measure, rows_of
from fastiou.bench.registry import WORKLOADS, Workload, load_workloads, selected

SCHEMA = 1


class BenchUnavailable(RuntimeError):
    """The run asked for cannot happen here (``--device cuda`` without a CUDA device)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastiou bench",
        description="Time fastiou against torchvision (or numpy) side by side, in one process, "
                    "and against the floor of writing the output. Prints a table, writes JSON.")
    p.add_argument("--quick", action="store_true",
                   help="fewer sizes and repeats (about two minutes on 2 CPU cores)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu: numpy inputs for fastiou, torch CPU tensors for torchvision; "
                        "cuda: torch CUDA tensors for both (float32 and float16)")
    p.add_argument("--only", action="append", metavar="WORKLOAD",
                   help="run only this workload (repeatable, or comma-separated); see --list")
    p.add_argument("--json", default="bench-results.json", metavar="PATH",
                   help="where to write the results (default: %(default)s; '-' for none)")
    p.add_argument("--plot", metavar="PATH",
                   help="also draw the ratios as a bar chart to PATH (.png, .svg, .pdf; needs matplotlib)")
    p.add_argument("--repeats", type=int, metavar="K",
                   help="timed rounds per case (default 7, --quick 3); the median is reported")
    p.add_argument("--min-sample", type=float, metavar="SECONDS",
                   help="shortest timed sample; fast calls are looped to reach it")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="stop starting new cases after this many seconds (they are listed as skipped)")
    p.add_argument("--shared-core", action="store_true",
                   help="measure every case again while another process keeps one core busy, and "
                        "compare fastiou's default threads with its 1-thread run under that load")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--report", metavar="PATH", help="print the table of a saved JSON file and exit")
    return p


def _new_doc(env, argv: list[str], selected_ids: list[str], settings: dict) -> dict:
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": ["fastiou", "bench", *argv],
        "settings": dict(settings, workloads=selected_ids),
        "machine": probe.machine_info(env),
        "versions": probe.versions(),
        "git": probe.git_revision(),
        "fastiou_info": probe.fastiou_info(env.fastiou),
        "backends": env.backends,
        "threads": probe.thread_settings(env),
        "notes": dict(env.notes),
        "rows": [],
        "cases": [],
    }


def _print(out: TextIO | None, text: str = "") -> None:
    if out is not None:
        print(text, file=out, flush=True)


def _summaries(doc: dict) -> list[str]:
    """The workloads' summaries, then the shared-core comparison when there is one."""
    out = report.summaries(doc, WORKLOADS)
    shared = load.summary(doc.get("cases", []))
    return out + [shared] if shared else out


def _tick(env):
    """A cheap fastiou kernel call (see load.BusyCore.on), or None without one."""
    import numpy as np

    area = getattr(env.fastiou, "box_area", None)
    if area is None:
        return None
    box = np.array([[0.0, 0.0, 1.0, 1.0]], np.float32)
    return lambda: area(box)


def _run_cases(env, workloads: list[Workload], doc: dict, settings: dict, json_path: str | None,
               out: TextIO | None, busy: load.BusyCore | None = None) -> None:
    """Every case of ``workloads``, measured, printed and added to ``doc`` (the JSON rewritten
    after each: a killed run keeps its rows); with ``busy``, measured again with it running."""
    t_start = time.perf_counter()
    budget = settings["budget_s"]
    last_key = None
    for w in workloads:
        for case in w.build(env):
            if budget is not None and time.perf_counter() - t_start > budget:
                for c in case.contenders:
                    c.skip = c.skip or "time budget spent"
                records = [measure(env, case, 0, settings["min_sample_s"], 0.0, min_repeats=0)]
            else:
                records = [measure(env, case, settings["repeats"], settings["min_sample_s"],
                                   settings["case_budget_s"])]
                if busy is not None:
                    with busy.on(_tick(env)):
                        loaded = measure(env, case, settings["repeats"], settings["min_sample_s"],
                                         settings["case_budget_s"])
                    loaded["load"] = load.LABEL
                    records.append(loaded)
            doc["notes"] = dict(env.notes)  # builders add notes (an optional peer missing)
            if last_key is not None:
                _print(out)
            last_key = (case.workload, case.op, case.size, case.dtype)
            for record in records:
                rows = rows_of(record)
                doc["cases"].append(record)
                doc["rows"].extend(rows)
                for row in rows:
                    _print(out, report.format_row(row))
            if json_path:
                report.write_json(json_path, doc)


def run(workloads: list[str] | None = None, *, device: str = "cpu", quick: bool = False,
        repeats: int | None = None, min_sample: float | None = None, budget: float | None = None,
        json_path: str | None = None, out: TextIO | None = None, argv: list[str] | None = None,
        shared_core: bool = False) -> dict:
    """Run the named workloads (all without a list) and return the JSON document; print the
    header and the rows to ``out`` as they come, and rewrite ``json_path`` after each case.
    ``shared_core``: each case again with one core kept busy (:mod:`fastiou.bench.load`)."""
    from fastiou.bench.env import Env

    chosen = selected(workloads)
    env = Env(device, quick)
    if device == "cuda" and (env.torch is None or not env.torch.cuda.is_available()):
        raise BenchUnavailable("fastiou bench: --device cuda needs torch with a CUDA device "
                           f"({env.notes.get('torch') or 'torch.cuda.is_available() is False'})")
    settings = {"device": device, "quick": quick, "repeats": repeats or (3 if quick else 7),
                "min_sample_s": min_sample or (0.02 if quick else 0.05),
                "case_budget_s": 8.0 if quick else 40.0, "budget_s": budget, "shared_core": shared_core}
    if shared_core and device != "cpu":
        raise BenchUnavailable("fastiou bench: --shared-core measures the CPU kernels (--device cpu)")
    try:
        busy = load.BusyCore() if shared_core else None
    except load.Unavailable as exc:
        raise BenchUnavailable(f"fastiou bench: {exc}") from None
    if busy is not None:
        env.notes["shared core"] = busy.description
    doc = _new_doc(env, list(argv if argv is not None else []), [w.id for w in chosen], settings)
    _print(out, report.format_context(doc))
    notes_shown = set(doc["notes"])
    _print(out, report.format_header())
    t_start = time.perf_counter()
    try:
        _run_cases(env, chosen, doc, settings, json_path, out, busy)
    finally:
        if busy is not None:
            busy.close()
        doc["seconds"] = time.perf_counter() - t_start
        if json_path:
            report.write_json(json_path, doc)
    _print(out)
    doc["notes"] = dict(env.notes)
    for k, note in doc["notes"].items():
        if k not in notes_shown:
            _print(out, f"note: {note}")
    _print(out, report.FOOTER)
    for text in _summaries(doc):
        _print(out)
        _print(out, text)
    return doc


def _print_saved(path: str, out: TextIO) -> int:
    with open(path) as f:
        doc = json.load(f)
    load_workloads()
    print(report.format_context(doc), file=out)
    print(report.format_table(doc["rows"]), file=out)
    for text in _summaries(doc):
        print(file=out)
        print(text, file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``fastiou bench [--quick] [--only W,...] [--json FILE] [--plot FILE] ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    out = sys.stdout
    if args.list:
        for w in selected(None):
            print(f"{w.id:16} {w.title}", file=out)
        return 0
    if args.report:
        return _print_saved(args.report, out)
    if args.plot:
        why = report.plot_available()
        if why:  # said before the run, not after minutes of it
            print(f"fastiou bench: {why}", file=sys.stderr)
            return 2
    json_path = None if args.json == "-" else args.json
    try:
        doc = run(args.only, device=args.device, quick=args.quick, repeats=args.repeats,
                  min_sample=args.min_sample, budget=args.budget, json_path=json_path, out=out, argv=argv,
                  shared_core=args.shared_core)
    except BenchUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if json_path:
        print(f"wrote {json_path} ({doc['seconds']:.0f} s)", file=out)
    if args.plot:
        n = report.write_plot(args.plot, doc)
        print(f"wrote {args.plot} ({n} bars)", file=out)
    return 0


__all__ = ["SCHEMA", "BenchUnavailable", "build_parser", "run", "main"]
