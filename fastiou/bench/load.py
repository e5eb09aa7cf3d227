"""The shared-core mode of ``fastiou bench`` (``--shared-core``): every case is measured a
second time while another process keeps one core busy, as a data-loader worker or a second job
does in training.

The busy process is a Python loop pinned to the last core this process may use (where the OS
lets a process be pinned); it is started once, stopped (SIGSTOP) between the loaded
measurements and killed at the end. :func:`summary` compares, per case, fastiou's default
threads with its own 1-thread run under that load: a kernel whose threads wait on a thread that
lost its core shows there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

#: Where rows and case records measured under load say so (``"load"``).
LABEL = "1 core busy"
#: The most a kernel's default-thread time may exceed its 1-thread time under that load.
LIMIT = 1.2


class Unavailable(RuntimeError):
    """No busy process can be started and paused here (no SIGSTOP: not a POSIX system)."""


class BusyCore:
    """A process spinning on one core, running only inside :meth:`on`."""

    def __init__(self) -> None:
        if not hasattr(signal, "SIGSTOP"):
            raise Unavailable("--shared-core needs SIGSTOP / SIGCONT (a POSIX system)")
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.cpu = None
        try:
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(self.proc.pid, {cpus[-1]})
            self.cpu = cpus[-1]
        except (AttributeError, OSError):  # no affinity API (macOS): the OS places it
            pass
        os.kill(self.proc.pid, signal.SIGSTOP)

    @property
    def description(self) -> str:
        where = f"pinned to CPU {self.cpu}" if self.cpu is not None else "not pinned (no affinity API)"
        return f"a busy Python loop (pid {self.proc.pid}, {where}) runs during the '{LABEL}' measurements"

    @contextlib.contextmanager
    def on(self, tick=None):
        """The busy process runs inside; ``tick`` (a cheap fastiou call) is called every 20 ms
        for 0.3 s first, as a training loop's calls would, so that fastiou's load readings
        (every 0.1 s, taken by kernel calls) have seen the busy core before the first sample."""
        os.kill(self.proc.pid, signal.SIGCONT)
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            if tick is not None:
                tick()
            time.sleep(0.02)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _threads_pairs(cs: dict) -> list[tuple[str, str]]:
    """(default-thread, 1-thread) fastiou contender names of a case record."""
    one = " 1-thread"
    return [(name[: -len(one)], name) for name, c in cs.items()
            if c["kind"] == "fastiou" and name.endswith(one) and name[: -len(one)] in cs]


def comparisons(cases: list[dict]) -> list[dict]:
    """Per case measured under load, and per fastiou contender with a 1-thread twin: the four
    times (idle and loaded, default and one thread) and ``ratio`` = loaded default / loaded
    1-thread (the figure held to :data:`LIMIT`)."""
    idle = {(c["workload"], c["op"], c["size"], c["dtype"]): c for c in cases if not c.get("load")}
    out = []
    for rec in cases:
        if not rec.get("load"):
            continue
        key = (rec["workload"], rec["op"], rec["size"], rec["dtype"])
        base = idle.get(key)
        for name, name1 in _threads_pairs(rec["contenders"]):
            t, t1 = rec["contenders"][name]["median_s"], rec["contenders"][name1]["median_s"]
            i, i1 = ((base["contenders"].get(n) or {}).get("median_s") if base else None
                     for n in (name, name1))
            out.append({"workload": key[0], "op": key[1], "size": key[2], "fastiou": name,
                        "idle_s": i, "idle_1t_s": i1, "busy_s": t, "busy_1t_s": t1,
                        "ratio": t / t1 if t and t1 else None})
    return out


def summary(cases: list[dict]) -> str | None:
    """The text table of :func:`comparisons`, or ``None`` when nothing ran under load."""
    from fastiou.bench.report import fmt_time

    rows = comparisons(cases)
    if not rows:
        return None
    lines = [f"shared core ({LABEL}): fastiou's default threads vs its own 1 thread; "
             f"target: default <= {LIMIT}x the 1-thread time under load",
             f"{'workload':13}  {'op':19}  {'size':14}  {'idle':>9}  {'idle 1t':>9}  {'busy':>9}  "
             f"{'busy 1t':>9}  {'busy/1t':>7}"]
    for r in rows:
        ratio = r["ratio"]
        verdict = "" if ratio is None else ("ok" if ratio <= LIMIT else "OVER")
        lines.append(f"{r['workload']:13}  {r['op']:19}  {r['size']:14}  {fmt_time(r['idle_s']):>9}  "
                     f"{fmt_time(r['idle_1t_s']):>9}  {fmt_time(r['busy_s']):>9}  "
                     f"{fmt_time(r['busy_1t_s']):>9}  "
                     f"{'-' if ratio is None else f'{ratio:.2f}x':>7}  {verdict}".rstrip())
    return "\n".join(lines)


__all__ = ["LABEL", "LIMIT", "Unavailable", "BusyCore", "comparisons", "summary"]
