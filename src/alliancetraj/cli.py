"""Command line: ``alliancetraj demo | simulate | validate | classify | benchmark``.

Errors in the user's data or arguments print one line to stderr and exit with
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import DataError

__all__ = ["main"]

EXIT_USAGE = 2


class _CliError(Exception):
    """An error to report in one line."""


def _scale(values: Sequence[str] | None) -> tuple[float, float] | None:
    if values is None:
        return None
    try:
        low, high = (float(v) for v in values)
    except ValueError:
        raise _CliError(f"--scale takes two numbers LOW HIGH; got {' '.join(values)}") from None
    return low, high


def _write_table(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        frame.to_parquet(path)
    elif suffix == ".nc":
        raise _CliError("write tables as .csv or .parquet")
    else:
        frame.to_csv(path)


# ----------------------------------------------------------------------------- commands
def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_cohort

    cohort = simulate_cohort(
        n_dyads=args.n_dyads, seed=args.seed,
        n_sessions=(args.min_sessions, args.max_sessions),
        noise=args.noise, ar1=args.ar1, df=args.df, missing=args.missing,
    )
    out = Path(args.out)
    if out.suffix.lower() in {".parquet", ".pq"}:
        out.parent.mkdir(parents=True, exist_ok=True)
        cohort.sessions.to_parquet(out, index=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        cohort.sessions.to_csv(out, index=False)
    stem = out.with_suffix("")
    outcomes_path = stem.parent / f"{stem.name}_outcomes.csv"
    truth_path = stem.parent / f"{stem.name}_truth.csv"
    cohort.outcomes.to_csv(outcomes_path)
    cohort.truth.to_csv(truth_path)
    print(f"wrote {len(cohort.sessions)} sessions of {args.n_dyads} dyads to {out}")
    print(f"wrote outcomes to {outcomes_path} and the truth to {truth_path}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .io import load_sessions

    frame = load_sessions(
        args.file, dyad=args.dyad, session=args.session, score=args.score,
        scale=_scale(args.scale), dropna=args.dropna,
    )
    per = frame.groupby("dyad", sort=False)["session"]
    n_obs = per.size()
    span = per.max() - per.min() + 1
    missing = 1.0 - n_obs.sum() / span.sum()
    print(f"{args.file}: valid")
    print(f"  dyads: {len(n_obs)}; rated sessions: {len(frame)}")
    print(f"  sessions per dyad: min {n_obs.min()}, median {n_obs.median():g}, "
          f"max {n_obs.max()}")
    print(f"  missing sessions within each dyad's span: {missing:.1%}")
    print(f"  score: min {frame['score'].min():g}, mean {frame['score'].mean():.3f}, "
          f"max {frame['score'].max():g}")
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    from .classify import classify

    options = {}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.method == "exact":
        options["progress"] = not args.no_progress
    if args.workers is not None:
        options["workers"] = args.workers
    if args.scheduler is not None:
        options["scheduler"] = args.scheduler
    source = args.file
    if Path(source).is_dir():
        options["out"] = args.out
    result = classify(
        source, method=args.method, dyad=args.dyad, session=args.session, score=args.score,
        scale=_scale(args.scale), dropna=args.dropna, **options,
    )
    if Path(source).is_dir():
        print(f"wrote results to {args.out}")
        return 0
    out = Path(args.out)
    _write_table(result.to_frame(), out)
    counts = result.labels.value_counts()
    mix = ", ".join(f"{k} {counts.get(k, 0)}" for k in result.probabilities.columns)
    print(f"classified {len(result)} dyads with method={args.method!r} ({mix}); wrote {out}")
    if result.excluded:
        print(f"excluded {len(result.excluded)} dyad(s) with too few sessions")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out=Path(args.out), n_dyads=args.n_dyads, seed=args.seed, echo=print)
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    run_benchmark(out=Path(args.out), quick=args.quick, methods=args.methods, seed=args.seed,
                  echo=print, n_dyads=args.n_dyads, n_seeds=args.n_seeds)
    return 0


# ------------------------------------------------------------------------------- parser
def _add_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dyad", default="dyad", help="dyad id column (default: dyad)")
    p.add_argument("--session", default="session", help="session number column (default: session)")
    p.add_argument("--score", default="score", help="score column (default: score)")
    p.add_argument("--scale", nargs=2, metavar=("LOW", "HIGH"),
                   help="declared score range; values outside are an error")
    p.add_argument("--dropna", action="store_true", help="drop rows with a missing score")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="alliancetraj",
        description="Therapeutic-alliance trajectories: classify, simulate, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"alliancetraj {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="simulate a cohort, classify it, relate classes to recovery, "
                                    "write a report")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--n-dyads", type=int, default=300)
    p.add_argument("--seed", type=int, default=2024)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("simulate", help="write a simulated cohort (sessions, outcomes, truth)")
    p.add_argument("--out", required=True, help="sessions file (.csv or .parquet)")
    p.add_argument("--n-dyads", type=int, default=400)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-sessions", type=int, default=8)
    p.add_argument("--max-sessions", type=int, default=20)
    p.add_argument("--noise", type=float, default=0.25)
    p.add_argument("--ar1", type=float, default=0.0)
    p.add_argument("--df", type=float, default=None, help="Student-t residual df")
    p.add_argument("--missing", type=float, default=0.0, help="share of missing sessions")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("validate", help="check a sessions file and print a summary")
    p.add_argument("file")
    _add_columns(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("classify", help="classify every dyad's trajectory")
    p.add_argument("file", help="CSV/Parquet file, or a directory of Parquet files (Dask)")
    p.add_argument("--out", required=True, help="output table (.csv/.parquet) or directory")
    p.add_argument("--method", default="exact",
                   choices=["exact", "pymc", "growth", "rules", "pelt"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="Dask workers (directory input)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_columns(p)
    p.set_defaults(func=_cmd_classify)

    p = sub.add_parser("benchmark", help="compare methods on simulated cohorts")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument("--quick", action="store_true", help="small grid (about a minute)")
    p.add_argument("--methods", nargs="+", default=None,
                   help="methods to run (default: all available but pymc)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-dyads", type=int, default=None, help="dyads per simulated cohort")
    p.add_argument("--n-seeds", type=int, default=None, help="replicate cohorts per cell")
    p.set_defaults(func=_cmd_benchmark)

    from .monitor import add_cli_parser as _add_monitor

    _add_monitor(sub)  # alliancetraj monitor: rupture alerts (logic in monitor.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alliancetraj`` command. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (DataError, _CliError, FileNotFoundError) as exc:
        print(f"alliancetraj {args.command}: error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # invalid option values reported by the library
        print(f"alliancetraj {args.command}: error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"alliancetraj {args.command}: error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
