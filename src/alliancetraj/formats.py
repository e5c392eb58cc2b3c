"""Table files in the formats researchers keep: CSV, Parquet, SPSS, Stata and Excel.

:func:`read_table` reads one table from a path, choosing the reader by the file's
ending; :func:`write_tables` writes one or more named tables (one Excel sheet per
table, or a CSV/Parquet file for one table), atomically. The readers are
pandas' own (CSV, Parquet through pyarrow, Excel through openpyxl) and pyreadstat
(SPSS ``.sav``/``.zsav``, Stata ``.dta``).

Missing-value codes
-------------------
SPSS and Stata files carry their own missing values. Values declared *user-missing*
in an SPSS file (discrete codes or ranges) and Stata's extended missing values
(``.a`` to ``.z``) are read as NaN in every column, and counted. Value labels
(``99 = "not rated"``) are kept in ``frame.attrs["value_labels"]``: a labelled code
in the *score* column is a code, not a rating, so :func:`alliancetraj.load_sessions`
reads it as missing too (unless it lies inside a declared ``scale``, where labels
name the scale's anchors) and says so in a :class:`~alliancetraj.errors.MissingCodesWarning`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ._files import write_atomic
from .errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported inside the functions: the command line checks file names with
# this module before anything heavy is imported.

__all__ = ["READ_FORMATS", "WRITE_FORMATS", "format_of", "read_table", "write_tables"]

#: File endings read, by format (lower case; the longest ending wins).
READ_FORMATS = {
    ".csv": "csv", ".csv.gz": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".tsv.gz": "tsv", ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".sav": "spss", ".zsav": "spss", ".dta": "stata", ".xlsx": "excel", ".xlsm": "excel",
}
#: File endings written, by format.
WRITE_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet",
                 ".xlsx": "excel"}
#: The package each format needs, and the extra that installs it.
_NEEDS = {"parquet": ("pyarrow", "parquet"), "spss": ("pyreadstat", "formats"),
          "stata": ("pyreadstat", "formats"), "excel": ("openpyxl", "formats")}
_NAMES = {"csv": "CSV", "tsv": "tab-separated", "parquet": "Parquet", "spss": "SPSS",
          "stata": "Stata", "excel": "Excel"}


def format_of(path: str | os.PathLike, table: Mapping[str, str] = READ_FORMATS) -> str | None:
    """The format of ``path`` by its ending (``None`` when unknown)."""
    name = Path(path).name.lower()
    for ending in sorted(table, key=len, reverse=True):
        if name.endswith(ending):
            return table[ending]
    return None


def require(fmt: str, path: str | os.PathLike) -> None:
    """Raise :class:`DataError` naming the extra to install when ``fmt``'s reader is missing."""
    need = _NEEDS.get(fmt)
    if need is not None and importlib.util.find_spec(need[0]) is None:
        raise DataError(
            f"Reading or writing {str(path)!r} ({_NAMES[fmt]}) needs {need[0]}: install it "
            f"with `pip install alliancetraj[{need[1]}]`."
        )


def read_table(path: str | os.PathLike, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Read one table from a file, choosing the reader by the file's ending.

    Parameters
    ----------
    path : path
        ``.csv`` (also ``.csv.gz``, ``.txt``), ``.tsv``, ``.parquet`` (or a folder of
        Parquet files), ``.sav``/``.zsav`` (SPSS), ``.dta`` (Stata) or
        ``.xlsx``/``.xlsm`` (Excel).
    sheet : str or int, optional
        The Excel sheet to read, by name or 0-based position (default: the first).

    Returns
    -------
    pandas.DataFrame
        For SPSS and Stata files, user-missing values are NaN; ``attrs`` holds
        ``"value_labels"`` ({column: {code: label}}) and ``"missing_codes"``
        ({column: {code: count}}, the codes read as NaN).

    Raises
    ------
    DataError
        For a missing file, an unknown ending, a file its reader cannot parse, a
        missing sheet, or a reader that is not installed (naming the extra).

    Examples
    --------
    >>> import pathlib, tempfile, pandas as pd
    >>> from alliancetraj.formats import read_table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.csv.gz"
    >>> pd.DataFrame({"dyad": ["a"], "session": [1], "score": [3.5]}).to_csv(path, index=False)
    >>> read_table(path)
      dyad  session  score
    0    a        1    3.5
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(
            f"File {str(p)!r} does not exist. Check the path (relative paths are read from "
            f"{str(Path.cwd())!r})."
        )
    fmt = "parquet" if p.is_dir() else format_of(p)
    if fmt is None:
        raise DataError(
            f"Unknown file type {p.suffix.lower() or '(none)'!r} for {str(p)!r}: give a .csv, "
            ".csv.gz, .tsv, .parquet, .sav (SPSS), .dta (Stata) or .xlsx (Excel) file, or pass "
            "a pandas DataFrame."
        )
    if sheet is not None and fmt != "excel":
        raise DataError(f"sheet={sheet!r} applies to Excel files only; {str(p)!r} is "
                        f"{_NAMES[fmt]}. Drop sheet=.")
    require(fmt, p)
    try:
        if fmt == "parquet":
            return pd.read_parquet(p)
        if fmt in ("csv", "tsv"):
            return pd.read_csv(p, sep="\t" if fmt == "tsv" else ",")
        if fmt == "excel":
            return _read_excel(p, sheet)
        return _read_stat(p, fmt)
    except DataError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"Could not parse {str(p)!r} as a {_NAMES[fmt]} file ({first}). Check that the file "
            "is complete and of the type its name says."
        ) from exc
    except Exception as exc:  # pyreadstat's ReadstatError and kin
        if type(exc).__module__.split(".")[0] not in ("pyreadstat", "openpyxl", "zipfile"):
            raise
        raise DataError(
            f"Could not parse {str(p)!r} as a {_NAMES[fmt]} file ({exc}). Check that the file "
            "is complete and of the type its name says."
        ) from exc


def _read_excel(p: Path, sheet: str | int | None) -> pd.DataFrame:
    import pandas as pd

    book = pd.ExcelFile(p, engine="openpyxl")
    try:
        names = book.sheet_names
        if sheet is None:
            sheet = 0
        if isinstance(sheet, str) and sheet not in names:
            raise DataError(f"Sheet {sheet!r} is not in {str(p)!r}; its sheets are "
                            f"{', '.join(repr(n) for n in names)}. Pass one with sheet=.")
        if isinstance(sheet, int) and not 0 <= sheet < len(names):
            raise DataError(f"Sheet {sheet} is not in {str(p)!r}: it has {len(names)} "
                            "sheet(s), numbered from 0. Pass one with sheet=.")
        return pd.read_excel(book, sheet_name=sheet)
    finally:
        book.close()


def _read_stat(p: Path, fmt: str) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    import pyreadstat

    reader = pyreadstat.read_sav if fmt == "spss" else pyreadstat.read_dta
    frame, meta = reader(str(p), user_missing=True)
    codes: dict[str, dict[object, int]] = {}
    for col, ranges in (meta.missing_ranges or {}).items():   # SPSS user-missing values
        values = pd.to_numeric(frame[col], errors="coerce") if col in frame else None
        if values is None:
            continue
        hit = np.zeros(len(frame), bool)
        for r in ranges:
            hit |= ((values >= r["lo"]) & (values <= r["hi"])).to_numpy()
        if hit.any():
            codes[col] = _counts(frame.loc[hit, col])
            frame.loc[hit, col] = np.nan
    for col in frame.columns:      # Stata's .a-.z arrive as letters in a numeric column
        if frame[col].dtype == object:
            letters = frame[col].map(lambda v: isinstance(v, str) and len(v) == 1
                                     and v.isalpha()).to_numpy(bool)
            rest = frame.loc[~letters, col]
            if letters.any() and pd.to_numeric(rest, errors="coerce").notna().sum() \
                    == rest.notna().sum():
                codes[col] = {f".{k}": v for k, v in _counts(frame.loc[letters, col]).items()}
                frame[col] = pd.to_numeric(frame[col].where(~letters), errors="coerce")
    frame.attrs["value_labels"] = {str(k): dict(v)
                                   for k, v in (meta.variable_value_labels or {}).items()}
    frame.attrs["missing_codes"] = codes
    return frame


def _counts(values: pd.Series) -> dict[object, int]:
    return {(k.item() if hasattr(k, "item") else k): int(v)
            for k, v in values.value_counts(sort=False).items()}


def write_tables(path: str | os.PathLike, tables: Mapping[str, pd.DataFrame], *,
                 index: bool | Mapping[str, bool] = True) -> Path:
    """Write named tables to ``path`` atomically; return the path.

    An Excel file (``.xlsx``) gets one sheet per table, in the order given (sheet
    names are cut to Excel's 31 characters). A CSV or Parquet file holds one table:
    give exactly one.

    Parameters
    ----------
    path : path
    tables : mapping of str to DataFrame
    index : bool or mapping of str to bool
        Write each table's index (per table when a mapping).

    Examples
    --------
    >>> import pathlib, tempfile, pandas as pd
    >>> from alliancetraj.formats import read_table, write_tables
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.xlsx"
    >>> _ = write_tables(path, {"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"y": [2]})},
    ...                  index=False)
    >>> read_table(path, sheet="b")
       y
    0  2
    """
    import pandas as pd

    fmt = format_of(path, WRITE_FORMATS)
    if fmt is None:
        raise DataError(f"Cannot write {str(path)!r}: give a .csv, .csv.gz, .parquet or .xlsx "
                        "file name.")
    require(fmt, path)

    def keep_index(name: str) -> bool:
        return bool(index.get(name, True)) if isinstance(index, Mapping) else bool(index)

    if fmt != "excel":
        if len(tables) != 1:
            raise DataError(f"{str(path)!r} holds one table, but {len(tables)} were given; "
                            "write .xlsx (one sheet per table) or one file per table.")
        (name, frame), = tables.items()
        if fmt == "parquet":
            return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=keep_index(name)))
        return write_atomic(path, lambda tmp: frame.to_csv(
            tmp, index=keep_index(name), compression="gzip" if str(path).lower().endswith(
                ".gz") else None))

    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as book:
            for name, frame in tables.items():
                frame.to_excel(book, sheet_name=str(name)[:31], index=keep_index(name))

    return write_atomic(path, write)
