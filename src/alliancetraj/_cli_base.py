"""The command line's shared parts: option types, path checks, table writing.

Nothing here imports pandas, numpy or the models: ``alliancetraj --help`` and every
check made before computing stay fast (see ``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ._files import check_file_target
from .formats import READ_FORMATS, WRITE_FORMATS, format_of, write_tables

EXIT_USAGE = 2
EXIT_INTERRUPT = 130
EXIT_TERMINATED = 143

#: Table formats written, by (lower-case) file-name ending.
_TABLE_FORMATS = dict(WRITE_FORMATS)
#: Methods that draw random numbers (take ``seed``).
_SEEDED = ("exact", "pymc", "growth")


class _CliError(Exception):
    """An error to report in one line."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that partial outputs are removed."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- option types
def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def _scale(values: Sequence[str] | None) -> tuple[float, float] | None:
    if values is None:
        return None
    try:
        low, high = (float(v) for v in values)
    except ValueError:
        raise _CliError(f"--scale takes two numbers LOW HIGH; got {' '.join(values)}") from None
    if not (low < high) or any(v in (float("inf"), float("-inf")) for v in (low, high)):
        raise _CliError(f"--scale takes two finite numbers LOW < HIGH; got {' '.join(values)}")
    return low, high


# ------------------------------------------------------------------------ path checks
def _table_target(raw: str, option: str = "--out") -> tuple[Path, str]:
    """Check an output table path before computing; return it and its format."""
    if raw.endswith(("/", os.sep)):
        raise _CliError(
            f"{option} {raw!r} names a directory, but a table file is written; give a file "
            "name ending in .csv, .csv.gz, .parquet or .xlsx"
        )
    path = Path(raw)
    if path.is_dir():
        check_file_target(path, what=option)     # says: an existing directory
    fmt = format_of(path, _TABLE_FORMATS)
    if fmt is None:
        raise _CliError(
            f"{option} {raw!r}: unknown file type {path.suffix or '(none)'!r}; write .csv, "
            ".csv.gz, .parquet or .xlsx (Excel)"
        )
    need = {"parquet": ("pyarrow", "parquet"), "excel": ("openpyxl", "formats")}.get(fmt)
    if need and importlib.util.find_spec(need[0]) is None:
        raise _CliError(f"{option} {raw!r}: writing {fmt.capitalize()} needs {need[0]}: "
                        f"`pip install alliancetraj[{need[1]}]`")
    check_file_target(path, what=option)
    return path, fmt


def _input_file(raw: str, option: str = "FILE", *, folder: bool = False) -> Path:
    """Check an input table before computing: it exists, its type is read, its reader is
    installed (a folder of Parquet files where ``folder``)."""
    path = Path(raw)
    if not path.exists():
        raise _CliError(f"{option} {raw!r} does not exist; check the path (relative paths "
                        f"are read from {str(Path.cwd())!r})")
    if path.is_dir():
        if not folder:
            raise _CliError(f"{option} {raw!r} is a folder; give a file")
        return path
    fmt = format_of(path, READ_FORMATS)
    if fmt is None:
        raise _CliError(f"{option} {raw!r}: unknown file type {path.suffix or '(none)'!r}; "
                        "give .csv, .csv.gz, .tsv, .parquet, .sav, .dta or .xlsx")
    need = {"parquet": ("pyarrow", "parquet"), "spss": ("pyreadstat", "formats"),
            "stata": ("pyreadstat", "formats"), "excel": ("openpyxl", "formats")}.get(fmt)
    if need and importlib.util.find_spec(need[0]) is None:
        raise _CliError(f"{option} {raw!r}: reading it needs {need[0]}: "
                        f"`pip install alliancetraj[{need[1]}]`")
    return path


def _folder_target(raw: str, option: str = "--out") -> Path:
    """Check an output folder (demo, benchmark) before computing."""
    path = Path(raw)
    if path.exists() and not path.is_dir():
        raise _CliError(f"{option} {raw!r} is an existing file, but a folder is written there; "
                        "give a folder name")
    probe = path / "_"
    check_file_target(probe, what=option)  # the nearest existing folder must be writable
    return path


def _write_table(frame, path: Path, fmt: str, *, index: bool = True,
                 sheets: Mapping[str, object] | None = None) -> None:
    """Write ``frame`` (an Excel file: one sheet per table, ``frame`` first as "results")."""
    if fmt == "excel":
        tables = {"results": frame, **(sheets or {})}
        write_tables(path, tables, index={"results": index})
    else:
        write_tables(path, {"results": frame}, index=index)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:  # pragma: no cover
        return False



def _add_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dyad", default="dyad", help="dyad id column (default: dyad)")
    p.add_argument("--session", default="session", help="session number column (default: session)")
    p.add_argument("--score", default="score", help="score column (default: score)")
    p.add_argument("--scale", nargs=2, metavar=("LOW", "HIGH"),
                   help="declared score range; values outside are an error")
    p.add_argument("--dropna", action="store_true", help="drop rows with a missing score")
    p.add_argument("--sheet", default=None,
                   help="sheet of an Excel input, by name or 0-based number (default: the "
                        "first)")


def _sheet(args: argparse.Namespace) -> str | int | None:
    sheet = getattr(args, "sheet", None)
    return int(sheet) if sheet is not None and sheet.isdigit() else sheet


def _load(args: argparse.Namespace, source: str | Path):
    """The sessions of a file input, read with the column options (after every check)."""
    from .io import load_sessions

    return load_sessions(source, dyad=args.dyad, session=args.session, score=args.score,
                         scale=_scale(args.scale), dropna=args.dropna, sheet=_sheet(args))
