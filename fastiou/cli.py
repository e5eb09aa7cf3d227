"""The ``fastiou`` command line: ``fastiou info``, ``fastiou bench``, ``fastiou check``."""

from __future__ import annotations

import argparse
import json
import sys


def _info(argv) -> int:
    p = argparse.ArgumentParser(prog="fastiou info", description="Build, backends and hardware.")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    import fastiou
    data = fastiou.info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"fastiou {data['version']} (Python {data['python']}, {data['machine']})")
    for k, v in data["build"].items():
        print(f"  {k}: {v}")
    print("backends:")
    for name, b in data["backends"].items():
        state = "available" if b["available"] else f"missing — {b['reason']}"
        print(f"  {name:6s} ({b['device']}): {state}")
    if "cuda_build" in data:
        print(f"  cuda build: {data['cuda_build']}")
    print("gpus: " + (", ".join(data["gpus"]) if data["gpus"] else "none seen"))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"info": "build, backends and hardware", "bench": "benchmarks against the baselines",
                "check": "audit a COCO dataset for overlapping or broken annotations"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: fastiou {" + ",".join(commands) + "} [options]\n")
        for c, d in commands.items():
            print(f"  {c:8s} {d}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "info":
        return _info(rest)
    if cmd == "check":
        from .diagnostics.cli import main as check_main
        return check_main(rest)
    from . import bench
    return bench.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
