"""Start-up time of ``import alliancetraj`` and ``alliancetraj --help`` (issue 19).

    nice python benchmarks/bench_startup.py [--repeats 10]

Each command runs ``--repeats`` times in a fresh interpreter (wall-clock time of the
whole process, interpreter start included); the bare interpreter (``python -c pass``)
is timed the same way for reference. Writes the medians to
``benchmarks/results/startup_benchmark.{json,md}`` with the load average. Target:
both under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import alliancetraj": [sys.executable, "-c", "import alliancetraj"],
    "alliancetraj --help": [sys.executable, "-m", "alliancetraj.cli", "--help"],
    "alliancetraj classify --help": [sys.executable, "-m", "alliancetraj.cli", "classify",
                                     "--help"],
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs per command (default 10)")
    args = parser.parse_args()
    for cmd in COMMANDS.values():      # warm the file-system cache and bytecode once
        timed(cmd)
    load_before = os.getloadavg()
    rows = {}
    for name, cmd in COMMANDS.items():
        times = [timed(cmd) for _ in range(args.repeats)]
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times),
                      "max_s": max(times)}
    load_after = os.getloadavg()
    command = f"nice python benchmarks/bench_startup.py --repeats {args.repeats}"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup_benchmark.json").write_text(json.dumps(
        {"command": command, "repeats": args.repeats, "load_average_1min":
         [load_before[0], load_after[0]], "results": rows}, indent=2) + "\n")
    lines = [f"# Start-up time (median of {args.repeats} fresh processes)", "",
             f"`{command}`; load average {load_before[0]:.1f} -> {load_after[0]:.1f} "
             "(2 shared cores).", "", "| command | median s | min s | max s |",
             "| --- | --- | --- | --- |"]
    lines += [f"| `{k}` | {v['median_s']:.3f} | {v['min_s']:.3f} | {v['max_s']:.3f} |"
              for k, v in rows.items()]
    (OUT / "startup_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
