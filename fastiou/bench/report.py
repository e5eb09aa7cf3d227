"""What ``fastiou bench`` shows and writes: the text table, the header naming the machine,
the JSON file (rewritten after every case) and the optional plot (matplotlib, when it is
installed)."""

from __future__ import annotations

import json
import os
from typing import Any


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"
    return f"{s * 1e6:.3g} us"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


_COLUMNS = [("workload", "<"), ("op", "<"), ("size", "<"), ("dtype", "<"), ("baseline", "<"),
            ("base time", ">"), ("fastiou", "<"), ("fastiou time", ">"), ("ratio", ">"),
            ("% floor", ">"), ("check", "<")]
_WIDTHS = [13, 19, 12, 5, 20, 9, 20, 12, 7, 7, 0]
_DTYPE_SHORT = {"float32": "f32", "float16": "f16", "float64": "f64", "bfloat16": "bf16"}


def _check_cell(row: dict) -> str:
    check = row.get("check")
    if row.get("skip"):
        check = "skip: " + row["skip"]
    elif check and check != "ok":
        check = "DIFF: " + check
    bcheck = row.get("baseline_check")
    if bcheck and bcheck != "ok" and not row.get("skip"):
        # the baseline itself differs from the case's reference (e.g. torchvision's inexact
        # batched_nms path): said beside fastiou's own check
        check = f"{check or '-'} ({row['baseline']}: {bcheck})"
    return check or "-"


def _cells(row: dict) -> list[str]:
    op = row["op"] + (" [busy]" if row.get("load") else "")  # the load is named in the notes
    return [
        row["workload"], op, row["size"], _DTYPE_SHORT.get(row["dtype"], row["dtype"]),
        row["baseline"] or "-", fmt_time(row["baseline_s"]), row["fastiou"] or "-",
        fmt_time(row["fastiou_s"]), fmt_ratio(row["ratio"]),
        "-" if row["pct_floor"] is None else f"{row['pct_floor']:.0f}%", _check_cell(row),
    ]


def format_row(row: dict) -> str:
    out = []
    for (name, align), w, cell in zip(_COLUMNS, _WIDTHS, _cells(row)):
        out.append(f"{cell:{align}{w}}" if w else cell)
    return "  ".join(out).rstrip()


def format_header() -> str:
    out = []
    for (name, align), w in zip(_COLUMNS, _WIDTHS):
        out.append(f"{name:{align}{w}}" if w else name)
    line = "  ".join(out).rstrip()
    return line + "\n" + "-" * len(line)


def case_key(row: dict) -> tuple:
    return (row["workload"], row["op"], row["size"], row["dtype"])


def format_table(rows: list[dict]) -> str:
    """The rows as the text table ``fastiou bench`` prints (a blank line between cases)."""
    lines = [format_header()]
    last = None
    for row in rows:
        if last is not None and case_key(row) != last:
            lines.append("")
        last = case_key(row)
        lines.append(format_row(row))
    return "\n".join(lines)


def format_context(doc: dict) -> str:
    """The header: machine, versions, settings, notes."""
    m, v = doc["machine"], doc["versions"]
    cpu = m["cpu"]
    line = f"machine: {cpu.get('model')} ({m.get('cores_usable', m['cores'])} cores"
    if m.get("isa"):
        line += f", fastiou ISA {m['isa']}"
    elif cpu.get("flags"):
        line += f", {' '.join(cpu['flags'])}"
    line += ")"
    if m.get("gpu"):
        line += f"; GPU {m['gpu']}"
    s = doc["settings"]
    th = doc.get("threads", {})
    lines = [line, "versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
             f"device {s['device']}, repeats {s['repeats']}, min sample {fmt_time(s['min_sample_s'])}, "
             f"torch threads {th.get('torch')}; git {(doc.get('git') or {}).get('revision')}"]
    lines += [f"note: {note}" for note in doc.get("notes", {}).values()]
    return "\n".join(lines)


FOOTER = ("ratio = baseline time / fastiou time (medians of interleaved repeats); "
          "% floor = time to allocate and fill a fresh float32 output of the same shape / fastiou time "
          "(none for NMS: its output is tiny, the work is compute).")


def write_json(path: str, doc: dict) -> None:
    """``doc`` to ``path`` atomically (a killed run leaves the previous complete file)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


def plot_available() -> str | None:
    """``None`` when ``--plot`` can work here, else why not."""
    try:
        import matplotlib  # noqa: F401
    except Exception as exc:
        return f"--plot needs matplotlib, which does not import here ({type(exc).__name__}); pip install matplotlib"
    return None


def _plot_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("ratio") and r.get("fastiou") and not r.get("skip")]


def write_plot(path: str, doc: dict) -> int:
    """A horizontal bar chart of the ratios (log scale, 1x marked) to ``path`` (any format
    matplotlib knows from the extension); returns the number of bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _plot_rows(doc["rows"])
    labels = [f"{r['workload']} {r['op']} {r['size']} {r['dtype']}: {r['fastiou']} vs {r['baseline']}"
              for r in rows]
    ratios = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.25 * len(rows) + 1.5))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=["tab:green" if q >= 1 else "tab:red" for q in ratios])
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("baseline time / fastiou time (same run, interleaved)")
    m = doc.get("machine", {})
    ax.set_title(f"fastiou bench, {m.get('cpu', {}).get('model', '?')}, {doc.get('created', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return len(rows)


def summaries(doc: dict, workloads: dict[str, Any]) -> list[str]:
    """The extra text of the workloads that have a ``summary`` (e.g. ``overhead``), for the
    rows of ``doc`` (a run, or a saved file for ``--report``)."""
    out = []
    for wid, w in workloads.items():
        rows = [r for r in doc["rows"] if r["workload"] == wid and not r.get("load")]
        if rows and w.summary is not None:
            out.append(w.summary(rows))
    return out
