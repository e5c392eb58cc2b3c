"""Classifiers on the independent worlds (alliancetraj.worlds): per world and method.

Writes ``<tag>_results.csv`` (one row per world x size x method x replicate),
``<tag>_table.csv`` (medians per world and method), ``<tag>_worst.csv`` (the worst
world per method and score), ``<tag>_confusion.csv``, ``<tag>_summary.md`` (both
tables in Markdown, with the command line and the load average) and ``<tag>_meta.json``
to ``--out``.

Examples::

    nice python benchmarks/bench_worlds.py --methods exact rules pelt growth \
        --n-dyads 400 --seeds 2
    nice python benchmarks/bench_worlds.py --methods exact --n-dyads 30 --seeds 5 \
        --tag worlds_n30
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from alliancetraj.bench import DEFAULT_METHODS, run_worlds
from alliancetraj.worlds import WORLDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", default=["all"],
                        help=f"world names or 'all' (default); any of {', '.join(WORLDS)}")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help="methods of alliancetraj.classify (default: exact growth rules "
                        "pelt)")
    parser.add_argument("--n-dyads", nargs="+", type=int, default=None,
                        help="cohort size(s); default: each world's own (30 to 5,000)")
    parser.add_argument("--seeds", type=int, default=2, help="replicate cohorts per world")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    parser.add_argument("--tag", default="worlds", help="file-name prefix")
    args = parser.parse_args(argv)
    raw = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/bench_worlds.py " + shlex.join(raw)
    worlds = "all" if args.worlds == ["all"] else args.worlds
    res = run_worlds(Path(args.out), worlds=worlds, methods=args.methods, seed=args.seed,
                     n_dyads=args.n_dyads, n_seeds=args.seeds, prefix=args.tag,
                     command=command.strip())
    print(res.summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
