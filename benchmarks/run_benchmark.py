"""Run the classification benchmark (issue 7) and write it to ``benchmarks/results/``.

A thin wrapper of :func:`alliancetraj.bench.run_benchmark` (also behind
``alliancetraj benchmark``) that can also pick a sub-grid. The full grid
(sessions 8/12/20/30 x noise low/high x five conditions, 3 cohorts of 500 dyads per
cell) takes hours on two cores; ``--quick`` takes about a minute. The files are
``benchmark_*`` (``benchmark_quick_*`` for ``--quick``); the summary records this
command.

Run:
    nice python benchmarks/run_benchmark.py                      # full grid
    python benchmarks/run_benchmark.py --quick                   # about a minute
    nice python benchmarks/run_benchmark.py --n-dyads 200 --n-seeds 2 \\
        --sessions 8 12 20 30 --noise low high                   # a medium grid
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from alliancetraj.bench import CONDITIONS, FULL_GRID, NOISE_LEVELS, QUICK_GRID, BenchmarkGrid

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS), help="output folder")
    parser.add_argument("--quick", action="store_true", help="two cells, 150 dyads, 1 cohort")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="methods (default: every available method but pymc)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-dyads", type=int, default=None)
    parser.add_argument("--n-seeds", type=int, default=None)
    parser.add_argument(
        "--sessions",
        type=int,
        nargs="+",
        default=None,
        help="sub-grid: sessions per dyad (of 8 12 20 30)",
    )
    parser.add_argument("--noise", nargs="+", default=None, choices=list(NOISE_LEVELS))
    parser.add_argument("--conditions", nargs="+", default=None, choices=list(CONDITIONS))
    parser.add_argument(
        "--scan-sizes",
        type=int,
        nargs="*",
        default=None,
        help="cohort sizes of the runtime scan (none: skip it)",
    )
    parser.add_argument("--memory", choices=["first", "all", "scan", "none"], default=None)
    args = parser.parse_args(argv)

    from alliancetraj.bench import run_benchmark

    grid = None
    if args.sessions or args.noise or args.conditions:
        base = QUICK_GRID if args.quick else FULL_GRID
        grid = BenchmarkGrid.factorial(
            sessions=args.sessions or sorted({c.n_sessions for c in FULL_GRID.cells}),
            noise=args.noise or list(NOISE_LEVELS),
            conditions=args.conditions or list(CONDITIONS),
            n_dyads=base.n_dyads,
            n_seeds=base.n_seeds,
            scan_sizes=base.scan_sizes,
        )
    command = shlex.join(["python", "benchmarks/run_benchmark.py", *argv])
    run_benchmark(
        args.out,
        quick=args.quick,
        methods=args.methods,
        seed=args.seed,
        n_dyads=args.n_dyads,
        n_seeds=args.n_seeds,
        grid=grid,
        scan_sizes=args.scan_sizes,
        memory=args.memory,
        command=command,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
