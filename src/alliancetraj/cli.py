"""Command line: ``alliancetraj demo | simulate | validate | classify | relate | report |
benchmark | monitor``.

Every option and every output path is checked *before* any computation. Expected
failures (bad data, a bad option, an unwritable path, too little memory, a Dask
cluster that does not start) print one line to stderr and exit with status 2;
an interrupt (Ctrl-C, SIGTERM) exits with 130 (143 for SIGTERM), never a
traceback. Messages name the command-line options (``--dyad``), not the Python
keywords. Outputs are written atomically (see :mod:`alliancetraj._files`): an
interrupted run leaves a previous output at the same path intact.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ._cli_base import (
    _SEEDED,
    _TABLE_FORMATS,
    EXIT_INTERRUPT,
    EXIT_TERMINATED,
    EXIT_USAGE,
    _add_columns,
    _CliError,
    _finite_float,
    _folder_target,
    _input_file,
    _int_at_least,
    _load,
    _Parser,
    _same_file,
    _scale,
    _table_target,
    _Terminated,
    _write_table,
)
from ._cli_workflow import add_workflow_commands
from ._files import atomic_dir, atomic_paths, check_dir_target, check_file_target
from .errors import DataError
from .formats import write_tables

__all__ = ["main"]

# ----------------------------------------------------------------------------- commands
#: Dyads per file of a simulated Parquet folder (``simulate --format parquet``).
_DYADS_PER_PART = 500


def _simulate_targets(args: argparse.Namespace) -> tuple[Path, str, list[Path]]:
    """The sessions target, its format and the files beside it; checked, nothing written."""
    if args.format == "parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise _CliError("--format parquet needs pyarrow: `pip install alliancetraj[parquet]`")
        out = Path(args.out.rstrip("/" + os.sep) or args.out)
        check_dir_target(out, _owned_part, what="--out")
        stem, fmt = out.name, "folder"
    else:
        if args.out.endswith(("/", os.sep)):
            raise _CliError(f"--out {args.out!r} names a directory, but a table file is written; "
                            "give a file name, or add --format parquet to write a folder of "
                            "Parquet files (what classify reads on Dask)")
        out, fmt = _table_target(args.out)
        ending = next(e for e in sorted(_TABLE_FORMATS, key=len, reverse=True)
                      if out.name.lower().endswith(e))
        stem = out.name[: len(out.name) - len(ending)]
    extras = [] if fmt == "excel" else [out.with_name(f"{stem}_outcomes.csv"),
                                         out.with_name(f"{stem}_truth.csv")]
    for extra in extras:
        check_file_target(extra, what="--out")
    return out, fmt, extras


def _owned_part(name: str) -> bool:
    return re.fullmatch(r"part-\d{4}\.parquet", name) is not None


def _cmd_simulate(args: argparse.Namespace) -> int:
    out, fmt, extras = _simulate_targets(args)
    if args.min_sessions > args.max_sessions:
        raise _CliError(f"--min-sessions ({args.min_sessions}) must be <= --max-sessions "
                        f"({args.max_sessions})")
    from .simulate import simulate_cohort

    cohort = simulate_cohort(
        n_dyads=args.n_dyads, seed=args.seed,
        n_sessions=(args.min_sessions, args.max_sessions),
        noise=args.noise, ar1=args.ar1, df=args.df, missing=args.missing,
    )
    if fmt == "excel":
        write_tables(out, {"sessions": cohort.sessions, "outcomes": cohort.outcomes,
                           "truth": cohort.truth}, index={"sessions": False})
        print(f"wrote {len(cohort.sessions)} sessions of {args.n_dyads} dyads to {out} "
              "(sheets sessions, outcomes, truth)")
        return 0
    # the files belong together: all written, then all moved into place
    with atomic_paths(*extras) as (tmp_outcomes, tmp_truth):
        cohort.outcomes.to_csv(tmp_outcomes)
        cohort.truth.to_csv(tmp_truth)
        if fmt == "folder":
            _write_parts(cohort.sessions, out)
        else:
            _write_table(cohort.sessions, out, fmt, index=False)
    kind = "a folder of Parquet files " if fmt == "folder" else ""
    print(f"wrote {len(cohort.sessions)} sessions of {args.n_dyads} dyads to {kind}{out}")
    print(f"wrote outcomes to {extras[0]} and the truth to {extras[1]}")
    return 0


def _write_parts(sessions, out: Path) -> None:
    """Sessions as a Parquet folder: whole dyads per file, files in dyad order."""
    sessions = sessions.sort_values(["dyad", "session"], kind="stable")
    dyads = sessions["dyad"].unique()
    with atomic_dir(out, _owned_part) as tmp:
        for i, start in enumerate(range(0, len(dyads), _DYADS_PER_PART)):
            part = sessions[sessions["dyad"].isin(dyads[start:start + _DYADS_PER_PART])]
            part.to_parquet(tmp / f"part-{i:04d}.parquet", index=False)


def _cmd_validate(args: argparse.Namespace) -> int:
    _input_file(args.file, folder=True)
    _scale(args.scale)
    frame = _load(args, args.file)
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


def _classify_checks(args: argparse.Namespace) -> tuple[Path, bool, Path, str | None]:
    """Check every classify option and the output path; nothing is computed yet."""
    source = _input_file(args.file, folder=True)
    on_dask = source.is_dir()
    if not on_dask:
        for option, value in (("--workers", args.workers), ("--scheduler", args.scheduler)):
            if value is not None:
                raise _CliError(
                    f"{option} runs Dask on a directory of Parquet files, but {args.file!r} is "
                    f"a file; drop {option}, or give the directory"
                )
    if on_dask and args.sheet is not None:
        raise _CliError(f"--sheet reads an Excel file, but {args.file!r} is a directory; "
                        "drop --sheet")
    if on_dask and args.method != "exact":
        raise _CliError(f"--method {args.method}: a directory of Parquet files (Dask) is "
                        "classified with --method exact only")
    if args.seed is not None and args.method not in _SEEDED:
        raise _CliError(f"--seed: --method {args.method} draws no random numbers; drop --seed")
    if args.scheduler is not None and not re.fullmatch(r"[a-z0-9+]+://\S+|[^\s:/]+:\d+",
                                                       args.scheduler):
        raise _CliError(f"--scheduler {args.scheduler!r} is not a scheduler address; give "
                        "HOST:PORT or tcp://HOST:PORT")
    _scale(args.scale)
    if on_dask:
        from .scale import _prepare_out

        out = _prepare_out(args.out, overwrite=False)
        fmt = None
    else:
        out, fmt = _table_target(args.out)
        if _same_file(out, source):
            raise _CliError(f"--out {args.out!r} is the input file; choose another name")
    return source, on_dask, out, fmt


def _quiet_local_cluster(workers: int | None) -> list:
    """[client, cluster] of a local Dask cluster whose worker processes ignore Ctrl-C.

    Ctrl-C in a terminal reaches every process of the group; the workers would each
    print a KeyboardInterrupt traceback. They are started with SIGINT ignored (an
    ignored signal stays ignored in child processes); this process handles the
    interrupt and shuts them down.
    """
    from .scale import local_cluster

    try:
        import distributed
    except ImportError as exc:
        raise _CliError("a directory input runs on Dask: `pip install alliancetraj[dask]`") \
            from exc
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = local_cluster(workers)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        return [distributed.Client(cluster), cluster]
    except BaseException:
        cluster.close()
        raise


def _cmd_classify(args: argparse.Namespace) -> int:
    source, on_dask, out, fmt = _classify_checks(args)
    from .dispatch import classify

    options = {}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.method == "exact":   # a bar only in a terminal: a log gets no \r-drawn bar
        options["progress"] = not args.no_progress and sys.stderr.isatty()
    if args.workers is not None:
        options["workers"] = args.workers
    if args.scheduler is not None:
        options["scheduler"] = args.scheduler
    columns = {"dyad": args.dyad, "session": args.session, "score": args.score,
               "scale": _scale(args.scale), "dropna": args.dropna}
    if on_dask:
        owned = []
        try:
            if args.scheduler is None:
                owned = _quiet_local_cluster(args.workers)
                options.pop("workers", None)
                options["scheduler"] = owned[0]
            classify(str(source), method=args.method, out=str(out), **columns, **options)
        except (OSError, RuntimeError) as exc:  # a cluster that does not start or dies
            raise _CliError(f"the Dask computation failed: {exc}") from exc
        finally:
            for obj in owned:
                obj.close()
        print(f"wrote results to {out}")
        return 0
    result = classify(_load(args, source), method=args.method, **options)
    _write_table(result.to_frame(), out, fmt, sheets={"summary": result.summary()})
    counts = result.labels.value_counts()
    mix = ", ".join(f"{k} {counts.get(k, 0)}" for k in result.probabilities.columns)
    print(f"classified {len(result)} dyads with method={args.method!r} ({mix}); wrote {out}")
    if result.excluded:
        print(f"excluded {len(result.excluded)} dyad(s) with too few sessions")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    out = _folder_target(args.out)
    run_demo(out=out, n_dyads=args.n_dyads, seed=args.seed, echo=print)
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    out = _folder_target(args.out)
    run_benchmark(out=out, quick=args.quick, methods=args.methods, seed=args.seed,
                  echo=print, n_dyads=args.n_dyads, n_seeds=args.n_seeds)
    return 0


# ------------------------------------------------------------------------------- parser

def _cmd_monitor(args: argparse.Namespace) -> int:
    from .monitor import DEFAULT_THRESHOLD, MIN_SESSIONS, fit_priors, monitor, save_priors

    source = _input_file(args.file)
    _scale(args.scale)
    if args.fit_priors:
        if args.out is not None or args.threshold is not None or args.all_sessions:
            raise _CliError("--fit-priors writes only --priors; drop --out, --threshold and "
                            "--all-sessions (score the caseload in a second run)")
        target = Path(args.priors)
        if target.suffix.lower() != ".json":
            raise _CliError(f"--priors {args.priors!r}: priors are written as .json")
        check_file_target(target, what="--priors")
        priors = fit_priors(_load(args, source))
        path = save_priors(priors, target)
        print(f"fitted priors on {priors.reference['n_dyads']} dyads; wrote {path}")
        return 0
    if args.out is None:
        raise _CliError("monitor needs --out ALERTS.csv (or --fit-priors to fit priors)")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 < threshold < 1:
        raise _CliError(f"--threshold must be a number in (0, 1); got {threshold!r}")
    if not Path(args.priors).is_file():
        raise _CliError(f"--priors {args.priors!r} does not exist; fit priors first with "
                        "`alliancetraj monitor PAST.csv --fit-priors --priors FILE.json`")
    out, fmt = _table_target(args.out)
    if _same_file(out, source):
        raise _CliError(f"--out {args.out!r} is the input file; choose another name")
    table = monitor(_load(args, source), args.priors, threshold=threshold,
                    latest_only=not args.all_sessions)
    _write_table(table, out, fmt, index=False)
    latest = table.groupby("dyad", sort=False).tail(1)
    n_alert, n_new = int(latest["alert"].sum()), int(latest["new_alert"].sum())
    waiting = int((latest["status"] != "scored").sum())
    print(f"scored {latest['dyad'].nunique()} dyads at their latest session: {n_alert} "
          f"alert(s), {n_new} new, at threshold {threshold:g}"
          + (f"; {waiting} with fewer than {MIN_SESSIONS} sessions" if waiting else "")
          + f"; wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _Parser(
        prog="alliancetraj",
        description="Therapeutic-alliance trajectories: read your sessions file, classify every "
                    "dyad, relate the classes to an outcome, write a report.",
    )
    parser.add_argument("--version", action="version", version=f"alliancetraj {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seed_help = "random seed, an integer >= 0 (default: %(default)s)"

    p = sub.add_parser("demo", help="simulate a cohort, classify it, relate classes to recovery, "
                                    "write a report")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--n-dyads", type=_int_at_least(10), default=300,
                   help="dyads in the simulated cohort (default: 300)")
    p.add_argument("--seed", type=_int_at_least(0), default=2024, help=seed_help)
    p.set_defaults(func=_cmd_demo, parser_=p)

    p = sub.add_parser("simulate", help="write a simulated cohort (sessions, outcomes, truth)")
    p.add_argument("--out", required=True,
                   help="sessions file (.csv, .csv.gz or .parquet; the outcomes and the true "
                        "classes go beside it as NAME_outcomes.csv and NAME_truth.csv), an "
                        ".xlsx workbook (sheets sessions, outcomes, truth), or a folder with "
                        "--format parquet")
    p.add_argument("--format", default=None, choices=["parquet"],
                   help="parquet: write the sessions as a folder of Parquet files, whole dyads "
                        "per file (what `classify FOLDER` runs on Dask); default: the type of "
                        "the --out name")
    p.add_argument("--n-dyads", type=_int_at_least(1), default=400,
                   help="number of dyads (default: 400)")
    p.add_argument("--seed", type=_int_at_least(0), default=1, help=seed_help)
    p.add_argument("--min-sessions", type=_int_at_least(1), default=8,
                   help="fewest sessions per dyad (default: 8)")
    p.add_argument("--max-sessions", type=_int_at_least(1), default=20,
                   help="most sessions per dyad (default: 20)")
    p.add_argument("--noise", type=_finite_float, default=0.25,
                   help="residual SD of the scores, in scale points (default: 0.25)")
    p.add_argument("--ar1", type=_finite_float, default=0.0,
                   help="AR(1) autocorrelation of the residuals, in (-1, 1) (default: 0)")
    p.add_argument("--df", type=_finite_float, default=None,
                   help="Student-t residual degrees of freedom (default: normal residuals)")
    p.add_argument("--missing", type=_finite_float, default=0.0,
                   help="share of sessions missing at random, in [0, 1) (default: 0)")
    p.set_defaults(func=_cmd_simulate, parser_=p)

    p = sub.add_parser("validate", help="check a sessions file and print a summary")
    p.add_argument("file", help="sessions file, long format (.csv, .csv.gz, .tsv, .parquet, "
                                ".sav, .dta or .xlsx)")
    _add_columns(p)
    p.set_defaults(func=_cmd_validate, parser_=p)

    p = sub.add_parser("classify", help="classify every dyad's trajectory")
    p.add_argument("file", help="sessions file (.csv, .csv.gz, .tsv, .parquet, .sav, .dta or "
                                ".xlsx), or a directory of Parquet files (runs on Dask)")
    p.add_argument("--out", required=True,
                   help="output table (.csv, .csv.gz, .parquet, or .xlsx with sheets results "
                        "and summary) for a file input; a new, empty or alliancetraj-written "
                        "directory for a directory input")
    p.add_argument("--method", default="exact",
                   choices=["exact", "pymc", "growth", "rules", "pelt"],
                   help="classification method (default: exact)")
    p.add_argument("--seed", type=_int_at_least(0), default=None,
                   help="random seed, an integer >= 0 (methods exact, pymc, growth)")
    p.add_argument("--workers", type=_int_at_least(1), default=None,
                   help="number of local Dask workers (directory input only)")
    p.add_argument("--scheduler", default=None,
                   help="address HOST:PORT of a running Dask scheduler (directory input only)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_columns(p)
    p.set_defaults(func=_cmd_classify, parser_=p)

    p = sub.add_parser("benchmark", help="compare methods on simulated cohorts")
    p.add_argument("--out", default="benchmarks/results",
                   help="output folder (default: benchmarks/results)")
    p.add_argument("--quick", action="store_true", help="small grid (about a minute)")
    p.add_argument("--methods", nargs="+", default=None,
                   help="methods to run (default: all available but pymc)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help=seed_help)
    p.add_argument("--n-dyads", type=_int_at_least(1), default=None,
                   help="dyads per simulated cohort")
    p.add_argument("--n-seeds", type=_int_at_least(1), default=None,
                   help="replicate cohorts per cell")
    p.set_defaults(func=_cmd_benchmark, parser_=p)

    p = sub.add_parser(
        "monitor", help="session-by-session rupture alerts for a caseload (or fit priors)",
        description="Score every dyad's latest session: the probability of an unrepaired "
                    "rupture, its onset and depth, and an alert. With --fit-priors, FILE is a "
                    "reference cohort of past treatments and the fitted priors are written "
                    "to --priors.")
    p.add_argument("file", help="sessions (.csv, .parquet, .sav, .dta or .xlsx): the caseload, "
                                "or the reference cohort with --fit-priors")
    p.add_argument("--priors", required=True,
                   help="priors JSON file (read, or written with --fit-priors)")
    p.add_argument("--out", default=None,
                   help="alerts table (.csv, .csv.gz, .parquet or .xlsx); needed unless "
                        "--fit-priors")
    p.add_argument("--fit-priors", action="store_true",
                   help="fit priors on FILE (a reference cohort) and write them to --priors")
    p.add_argument("--threshold", type=float, default=None,
                   help="alert threshold on the probability, in (0, 1) (default 0.7)")
    p.add_argument("--all-sessions", action="store_true",
                   help="one row per session instead of each dyad's latest session")
    _add_columns(p)
    p.set_defaults(func=_cmd_monitor, parser_=p)
    add_workflow_commands(sub)
    return parser


# --------------------------------------------------------------------------- messages
#: Python keywords whose command-line option is not ``--`` + the keyword.
_OPTION_OF = {"n_sessions": "--min-sessions/--max-sessions"}


def _cli_words(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Say ``--dyad`` where a library message says ``dyad=`` (for this command's options)."""
    options = set(re.findall(r"--[a-z][a-z-]*", parser.format_help())) if parser else set()

    def option(name: str) -> str | None:
        flag = "--" + name.replace("_", "-")
        return flag if flag in options else _OPTION_OF.get(name)

    def keyword(m: re.Match) -> str:
        flag = option(m.group(1))
        if flag is None:
            return m.group(0)
        return flag if m.group(2) else f"{flag} "

    message = re.sub(r"\bscale=\(low, high\)", "--scale LOW HIGH", message)
    message = re.sub(r"\b([a-z][a-z_]*)=(True|\.\.\.)?", keyword, message)
    message = re.sub(r"The '([a-z_]+)' parameter of [\w.]+",
                     lambda m: option(m.group(1)) or m.group(0), message)
    return message


def _one_line(command: str | None, message: str, parser) -> str:
    text = _cli_words(str(message), parser).strip().splitlines()
    first = text[0] if text else "failed"
    return f"alliancetraj {command}: error: {first}" if command else f"alliancetraj: error: {first}"


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alliancetraj`` command. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    sub = args.parser_
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        previous = None

    def fail(exc: BaseException | str) -> int:
        print(_one_line(args.command, exc, sub), file=sys.stderr)
        return EXIT_USAGE

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        # a warning is one line naming the command, not a source line of the package
        first = (str(message).strip().splitlines() or [category.__name__])[0]
        print(f"alliancetraj {args.command}: warning: {first}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return func(args)
    except _Terminated:
        print(f"alliancetraj {args.command}: terminated; no partial output was left",
              file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"alliancetraj {args.command}: interrupted; no partial output was left",
              file=sys.stderr)
        return EXIT_INTERRUPT
    except MemoryError as exc:
        return fail(f"out of memory ({exc or 'allocation failed'}); classify fewer dyads at a "
                    "time, or give a directory of Parquet files to run on Dask with --workers")
    except (DataError, _CliError, FileNotFoundError, ImportError, ValueError) as exc:
        return fail(exc)
    except OSError as exc:  # unwritable paths, a full disk, a Dask cluster that is not there
        return fail(exc)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
