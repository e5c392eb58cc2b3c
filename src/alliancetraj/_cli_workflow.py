"""The command line's last two steps: ``relate`` (classes -> outcome effects) and
``report`` (sessions [+ outcomes] -> an HTML report).

As everywhere in the command line, every option and path is checked before any
computation, and every output is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._cli_base import (
    _SEEDED,
    _add_columns,
    _CliError,
    _input_file,
    _int_at_least,
    _load,
    _same_file,
    _scale,
    _sheet,
    _table_target,
    _write_table,
)
from ._files import check_file_target

__all__ = ["add_workflow_commands"]

_FAMILIES = ("gaussian", "binomial")
_ESTIMATORS = ("bch", "ml", "draws", "modal")


def _outcome_checks(args: argparse.Namespace, option: str = "OUTCOMES") -> Path | None:
    """Check the outcome options; return the outcomes file (None when not given)."""
    path = getattr(args, "outcomes", None)
    if path is None:
        for flag, value in (("--outcome", args.outcome), ("--covariate", args.covariate)):
            if value:
                raise _CliError(f"{flag} needs an outcomes file: add --outcomes FILE")
        return None
    source = _input_file(path, option)
    if not args.outcome:
        raise _CliError(f"{option} {path!r} needs --outcome COLUMN: the outcome to relate the "
                        "classes to")
    return source


def _read_outcomes(args: argparse.Namespace, source: Path):
    """Read the outcomes file and check its columns (before anything is computed)."""
    from .errors import DataError, format_ids
    from .formats import read_table

    sheet = _sheet(argparse.Namespace(sheet=args.outcomes_sheet))
    table = read_table(source, sheet=sheet)
    if args.dyad not in table.columns and args.dyad == "dyad" and len(table.columns) \
            and str(table.columns[0]).startswith("Unnamed"):
        table = table.rename(columns={table.columns[0]: "dyad"})   # an unnamed index column
    wanted = [("--dyad", args.dyad), ("--outcome", args.outcome),
              *(("--covariate", c) for c in args.covariate or [])]
    for option, column in wanted:
        if column not in table.columns:
            raise DataError(
                f"Column {column!r} ({option}) is not in the outcomes file {str(source)!r}. "
                f"Columns present: {format_ids([str(c) for c in table.columns], limit=12)}. "
                f"Pass the right name with {option}."
            )
    return table


def _relate(args: argparse.Namespace, result, outcomes):
    from .outcomes import relate_outcomes

    options = {}
    if args.seed is not None and args.estimator == "draws":
        options["seed"] = args.seed
    return relate_outcomes(result, outcomes, outcome=args.outcome,
                           covariates=list(args.covariate or []), family=args.family,
                           method=args.estimator, dyad=args.dyad, **options)


def _cmd_relate(args: argparse.Namespace) -> int:
    classes = _input_file(args.classes, "CLASSES")
    source = _outcome_checks(args, "OUTCOMES")
    out, fmt = _table_target(args.out)
    for given in (classes, source):
        if _same_file(out, given):
            raise _CliError(f"--out {args.out!r} is an input file; choose another name")
    if args.seed is not None and args.estimator != "draws":
        raise _CliError(f"--seed: --estimator {args.estimator} draws no random numbers; "
                        "drop --seed")
    from .formats import read_table
    from .results import ClassificationResult

    outcomes = _read_outcomes(args, source)
    result = ClassificationResult.from_frame(
        read_table(classes, sheet=_sheet(argparse.Namespace(sheet=args.classes_sheet))),
        dyad=args.classes_dyad)
    fit = _relate(args, result, outcomes)
    notes = fit.notes or []
    extra = {"notes": _notes_frame(notes)} if notes else {}
    _write_table(fit.effects, out, fmt, sheets=extra)
    print(fit.summary())
    print(f"wrote the effects to {out}")
    return 0


def _notes_frame(notes):
    import pandas as pd

    return pd.DataFrame({"note": list(notes)})


def _cmd_report(args: argparse.Namespace) -> int:
    sessions_path = _input_file(args.file)
    _scale(args.scale)
    outcomes = _outcome_checks(args)
    classes = _input_file(args.classes, "--classes") if args.classes else None
    if classes is not None and args.seed is not None:
        raise _CliError("--seed: with --classes nothing is classified; drop --seed")
    if args.seed is not None and args.method not in _SEEDED:
        raise _CliError(f"--seed: --method {args.method} draws no random numbers; drop --seed")
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise _CliError(f"--out {args.out!r}: the report is an HTML file; give a name ending "
                        "in .html")
    check_file_target(out, what="--out")
    for given in (sessions_path, outcomes, classes):
        if given is not None and _same_file(out, given):
            raise _CliError(f"--out {args.out!r} is an input file; choose another name")

    from .report import write_report

    table = _read_outcomes(args, outcomes) if outcomes is not None else None
    sessions = _load(args, sessions_path)
    if classes is not None:
        from .formats import read_table
        from .results import ClassificationResult

        result = ClassificationResult.from_frame(read_table(classes))
    else:
        from .dispatch import classify

        options = {} if args.seed is None else {"seed": args.seed}
        if args.method == "exact":
            options["progress"] = not args.no_progress and sys.stderr.isatty()
        result = classify(sessions, method=args.method, **options)
    fit = _relate(args, result, table) if table is not None else None
    meta = {"sessions file": str(sessions_path)}
    if outcomes is not None:
        meta["outcomes file"] = str(outcomes)
    write_report(out, result, sessions, effects=fit, title=args.title, meta=meta,
                 units=args.units, scale=_scale(args.scale))
    print(f"classified {len(result)} dyads with method={result.method!r}; wrote {out}")
    return 0


def _add_outcome_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outcome", default=None,
                   help="the outcome column of the outcomes file (numeric; 0/1 with "
                        "--family binomial)")
    p.add_argument("--covariate", action="append", default=None, metavar="COLUMN",
                   help="a numeric covariate column of the outcomes file (repeat for several)")
    p.add_argument("--family", default="gaussian", choices=_FAMILIES,
                   help="gaussian: effects are mean differences; binomial: log-odds ratios "
                        "(default: gaussian)")
    p.add_argument("--estimator", default="bch", choices=_ESTIMATORS,
                   help="bch: bias-adjusted three-step (default); ml: maximum-likelihood "
                        "three-step; draws, modal: naive baselines")
    p.add_argument("--outcomes-sheet", default=None,
                   help="sheet of an Excel outcomes file, by name or 0-based number")


def add_workflow_commands(sub) -> None:
    """Add ``relate`` and ``report`` to the command line's subparsers."""
    p = sub.add_parser(
        "relate", help="relate trajectory classes to an outcome (class effects)",
        description="Estimate each class's effect on an outcome, relative to 'linear', from "
                    "the table classify wrote and a file with one row per dyad.")
    p.add_argument("classes", metavar="CLASSES",
                   help="the classes table written by `alliancetraj classify` (.csv, .parquet "
                        "or .xlsx)")
    p.add_argument("outcomes", metavar="OUTCOMES",
                   help="outcomes, one row per dyad (.csv, .parquet, .sav, .dta or .xlsx)")
    p.add_argument("--out", required=True,
                   help="effects table (.csv, .csv.gz, .parquet or .xlsx)")
    _add_outcome_options(p)
    p.add_argument("--dyad", default="dyad",
                   help="dyad id column of the outcomes file (default: dyad)")
    p.add_argument("--classes-dyad", default="dyad",
                   help="dyad id column of the classes table (default: dyad)")
    p.add_argument("--classes-sheet", default=None,
                   help="sheet of an Excel classes table (default: the first)")
    p.add_argument("--seed", type=_int_at_least(0), default=None,
                   help="random seed for --estimator draws, an integer >= 0")
    p.set_defaults(func=_cmd_relate, parser_=p)

    p = sub.add_parser(
        "report", help="classify a sessions file and write an HTML report (with outcomes: "
                       "class effects)",
        description="Write a self-contained HTML report, written as a paper's results "
                    "section: methods, classes, example dyads and, with --outcomes, class "
                    "effects on the outcome.")
    p.add_argument("file", help="sessions, long format (.csv, .csv.gz, .parquet, .sav, .dta "
                                "or .xlsx)")
    p.add_argument("--out", required=True, help="the report (.html)")
    p.add_argument("--outcomes", default=None,
                   help="outcomes, one row per dyad (.csv, .parquet, .sav, .dta or .xlsx)")
    _add_outcome_options(p)
    p.add_argument("--classes", default=None,
                   help="a classes table written by `alliancetraj classify` (default: classify "
                        "FILE now)")
    p.add_argument("--method", default="exact",
                   choices=["exact", "pymc", "growth", "rules", "pelt"],
                   help="classification method when --classes is not given (default: exact)")
    p.add_argument("--seed", type=_int_at_least(0), default=None,
                   help="random seed of the classification, an integer >= 0 (methods exact, "
                        "pymc, growth)")
    p.add_argument("--units", default=None,
                   help="the outcome's units, for the report's text (e.g. 'RAS points')")
    p.add_argument("--title", default="Alliance trajectories", help="the report's title")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_columns(p)
    p.set_defaults(func=_cmd_report, parser_=p)
