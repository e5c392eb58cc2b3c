"""Reading and validating session-level data (the data contract).

Long format, one row per rated session: a dyad id (any hashable), a session
number (a positive integer; gaps allowed) and a score (float). Column names are
given by the caller. :func:`load_sessions` reads a DataFrame or a CSV, Parquet,
SPSS, Stata or Excel file (:mod:`alliancetraj.formats`), validates it and returns a
sorted copy with the canonical columns ``dyad``, ``session`` and ``score`` (other
columns are kept after them).
:func:`wide_to_long` turns a wide table (one column per session, as users of R's
``suddengains`` hold their data) into that long format.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError, ExcludedDyadsWarning, MissingCodesWarning, format_ids
from .formats import read_table

__all__ = ["PanelArrays", "load_sessions", "to_panel", "validate_sessions", "wide_to_long"]

CANONICAL = ("dyad", "session", "score")
#: Highest session number accepted: the engines lay a dyad's sessions out on a dense
#: grid up to it (memory grows with it).
MAX_SESSION = 1000
#: Largest absolute score accepted: squares and sums of squares must stay finite.
MAX_ABS_SCORE = 1e100
_VALIDATED_FLAG = "alliancetraj_validated"


# --------------------------------------------------------------------------- reading
def _as_frame(source: object, sheet: str | int | None = None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        if sheet is not None:
            raise DataError(f"sheet={sheet!r} applies to an Excel file; the sessions were "
                            "given as a DataFrame. Drop sheet=.")
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_table(source, sheet=sheet)
    raise DataError(
        f"Sessions must be a pandas DataFrame or a path to a CSV, Parquet, SPSS, Stata or "
        f"Excel file; got {type(source).__name__}."
    )


def _codes_as_missing(frame: pd.DataFrame, score: Hashable,
                      scale: tuple[float, float] | None) -> pd.DataFrame:
    """Read the score column's missing-value codes and labelled codes as NaN, and say so.

    ``frame.attrs`` come from :func:`~alliancetraj.formats.read_table` (SPSS, Stata):
    user-missing values are NaN already; a value-labelled code is a code, not a rating,
    unless it lies inside the declared scale (labels of the scale's anchors).
    """
    labels = frame.attrs.get("value_labels", {}).get(str(score), {})
    codes = dict(frame.attrs.get("missing_codes", {}).get(str(score), {}))
    if score not in frame.columns or not (labels or codes):
        return frame
    values = pd.to_numeric(frame[score], errors="coerce")
    low, high = _check_scale(scale) if scale is not None else (np.inf, -np.inf)
    coded = {k: v for k, v in labels.items()
             if isinstance(k, (int, float)) and not low <= k <= high}
    hit = values.isin(list(coded)).to_numpy()
    if hit.any():
        counts = values[hit].value_counts(sort=False)
        frame = frame.copy()
        frame.loc[hit, score] = np.nan
        for k, n in counts.items():
            codes[f"{k:g} ({coded[k]!r})"] = int(n)
    if codes:
        shown = ", ".join(f"{k}: {n}" for k, n in codes.items())
        warnings.warn(
            f"Column {score!r} (score): {sum(codes.values())} value(s) are missing-value "
            f"codes of the file, read as missing, not as scores ({shown}). Pass dropna=True to "
            "drop those rows, or recode them in the file.",
            MissingCodesWarning, stacklevel=4,
        )
    return frame


# ------------------------------------------------------------------------ validation
def _resolve_column(frame: pd.DataFrame, name: Hashable, role: str, canonical: str) -> Hashable:
    if name in frame.columns:
        return name
    # A frame returned by load_sessions carries canonical names: accept them.
    if frame.attrs.get(_VALIDATED_FLAG) and canonical in frame.columns:
        return canonical
    close = difflib.get_close_matches(str(name), [str(c) for c in frame.columns], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(
        f"Column {name!r} (the {role} column) is not in the data. Columns present: "
        f"{format_ids([str(c) for c in frame.columns], limit=12)}.{hint} Pass the right name "
        f"with {role}=..."
    )


def _pairs(frame: pd.DataFrame, mask: np.ndarray, with_session: bool = True) -> str:
    sub = frame.loc[mask]
    if with_session:
        items = [f"(dyad {d!r}, session {s!r})" for d, s in zip(sub["dyad"], sub["session"])]
    else:
        items = [repr(d) for d in sub["dyad"]]
    return format_ids(items)


def validate_sessions(
    data: pd.DataFrame,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    scale: tuple[float, float] | None = None,
    dropna: bool = False,
    min_sessions: int = 1,
) -> pd.DataFrame:
    """Validate a long session table and return a canonical, sorted copy.

    Parameters are those of :func:`load_sessions`, minus the source. Raises
    :class:`~alliancetraj.DataError` on any violation of the data contract; dyads
    with fewer than ``min_sessions`` sessions are excluded with an
    :class:`~alliancetraj.errors.ExcludedDyadsWarning` that counts them. The ids of
    excluded dyads are stored in ``result.attrs["excluded_dyads"]``.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"Sessions must be a pandas DataFrame; got {type(data).__name__}.")
    if not isinstance(min_sessions, (int, np.integer)) or isinstance(min_sessions, bool) \
            or min_sessions < 1:
        raise ValueError(
            f"The 'min_sessions' parameter must be an int >= 1. Got {min_sessions!r} instead."
        )
    if scale is not None:
        scale = _check_scale(scale)
    if data.columns.has_duplicates:
        repeated = pd.unique(data.columns[data.columns.duplicated()])
        raise DataError(
            f"Column name(s) {format_ids([str(c) for c in repeated])} appear more than once in "
            "the data. Rename or drop the repeated columns so every column name is unique."
        )
    cols = {
        "dyad": _resolve_column(data, dyad, "dyad", "dyad"),
        "session": _resolve_column(data, session, "session", "session"),
        "score": _resolve_column(data, score, "score", "score"),
    }
    if len(set(cols.values())) < 3:
        raise DataError(
            f"The dyad, session and score columns must be three different columns; got "
            f"dyad={dyad!r}, session={session!r}, score={score!r}."
        )
    if len(data) == 0:
        raise DataError("The session data are empty (0 rows): nothing to analyse.")

    extra = [c for c in data.columns if c not in cols.values() and c not in CANONICAL]
    frame = pd.DataFrame(
        {
            # .array keeps the id dtype (a string column stays Arrow-backed: no round trip
            # through Python objects); copy-on-write protects the caller's frame
            "dyad": data[cols["dyad"]].array,
            "session": data[cols["session"]].to_numpy(),
            "score": data[cols["score"]].to_numpy(),
        }
    )
    for c in extra:
        frame[c] = data[c].to_numpy()

    # dyad ids --------------------------------------------------------------------
    bad = pd.isna(frame["dyad"]).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"Column {cols['dyad']!r} (dyad) has {bad.sum()} missing id(s), at row(s) "
            f"{format_ids(rows.tolist())}. Give every row a dyad id or drop those rows."
        )

    # session numbers ---------------------------------------------------------------
    raw = frame["session"]
    if pd.api.types.is_bool_dtype(raw.dtype) or _holds_bools(raw):
        raise DataError(
            f"Column {cols['session']!r} (session) holds booleans; session numbers must be "
            "positive integers (1, 2, 3, ...)."
        )
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy())
    with np.errstate(invalid="ignore"):
        values = num.fillna(1).to_numpy()
        bad |= ~bad & ((values < 1) | (np.mod(values, 1) != 0))
    if bad.any():
        shown = format_ids(
            [f"(dyad {d!r}, session {s!r})" for d, s in zip(frame["dyad"][bad], raw[bad])]
        )
        raise DataError(
            f"Column {cols['session']!r} (session) must hold positive integers (1, 2, 3, ...); "
            f"{bad.sum()} value(s) are not: {shown}. Number sessions from 1; a "
            "missing session is simply left out."
        )
    # the engines lay each dyad out on a grid of sessions 1..max: bound it before they do
    big = values > MAX_SESSION
    if big.any():
        shown = format_ids(
            [f"(dyad {d!r}, session {s!r})" for d, s in zip(frame["dyad"][big], raw[big])]
        )
        raise DataError(
            f"Column {cols['session']!r} (session) has {big.sum()} session number(s) above "
            f"{MAX_SESSION:,}: {shown}. Session numbers count a dyad's sessions from 1 (not "
            "dates or visit codes); renumber them 1, 2, 3, ... within each dyad (a missing "
            "session is simply left out)."
        )
    frame["session"] = num.to_numpy().astype(np.int64)

    # scores ------------------------------------------------------------------------
    raw = frame["score"]
    if pd.api.types.is_bool_dtype(raw.dtype) or _holds_bools(raw):
        raise DataError(f"Column {cols['score']!r} (score) holds booleans, not numeric scores.")
    numeric = pd.to_numeric(raw, errors="coerce").astype("float64")
    not_numeric = (numeric.isna() & raw.notna()).to_numpy()
    if not_numeric.any():
        shown = format_ids(
            [f"(dyad {d!r}, session {s!r}): {v!r}" for d, s, v in
             zip(frame["dyad"][not_numeric], frame["session"][not_numeric], raw[not_numeric])]
        )
        raise DataError(
            f"Column {cols['score']!r} (score) has {not_numeric.sum()} non-numeric value(s): "
            f"{shown}. Convert them to numbers or remove those rows."
        )
    frame["score"] = numeric.to_numpy()
    values = frame["score"].to_numpy()
    inf = np.isinf(values)
    if inf.any():
        raise DataError(
            f"Column {cols['score']!r} (score) has {inf.sum()} infinite value(s) at "
            f"{_pairs(frame, inf)}. Replace them with valid scores or remove those rows."
        )
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > MAX_ABS_SCORE
    if huge.any():
        raise DataError(
            f"Column {cols['score']!r} (score) has {huge.sum()} value(s) beyond "
            f"+/-{MAX_ABS_SCORE:g} at {_pairs(frame, huge)}; sums of squared scores would "
            "overflow. Rescale the scores (e.g. divide by a power of ten) or fix the values."
        )
    nan = np.isnan(values)
    if nan.any():
        if not dropna:
            raise DataError(
                f"Column {cols['score']!r} (score) has {nan.sum()} missing (NaN) value(s) at "
                f"{_pairs(frame, nan)}. Drop those rows, or pass dropna=True to drop them "
                "with a warning."
            )
        warnings.warn(
            f"Dropped {nan.sum()} row(s) with a missing score in column {cols['score']!r} "
            f"(first: {_pairs(frame, nan)}).",
            ExcludedDyadsWarning,
            stacklevel=3,
        )
        frame = frame.loc[~nan].reset_index(drop=True)
        if len(frame) == 0:
            raise DataError(
                f"Every score in column {cols['score']!r} is missing: nothing to analyse."
            )

    # scale ---------------------------------------------------------------------------
    if scale is not None:
        low, high = scale
        out = ((frame["score"] < low) | (frame["score"] > high)).to_numpy()
        if out.any():
            raise DataError(
                f"Column {cols['score']!r} (score) has {out.sum()} value(s) outside the declared "
                f"scale [{low:g}, {high:g}] at {_pairs(frame, out)}. Fix the values or declare "
                "the right scale=(low, high)."
            )

    # duplicates and order: one integer key per row, (rank of the dyad id, session) ----------
    try:
        codes, uniques = pd.factorize(frame["dyad"], sort=False)
    except TypeError as exc:
        raise DataError(
            f"Column {cols['dyad']!r} (dyad) holds ids that cannot be compared ({exc}). Use "
            "strings or integers as dyad ids."
        ) from exc
    try:
        id_order = np.argsort(np.asarray(uniques), kind="stable")
    except TypeError:
        # mixed id types (e.g. ints and strings): order by type name, then string form
        keys = np.array([f"{type(d).__name__}\x00{d}" for d in uniques])
        id_order = np.argsort(keys, kind="stable")
    rank_of_code = np.empty(len(uniques), dtype=np.int64)
    rank_of_code[id_order] = np.arange(len(uniques))
    sessions = frame["session"].to_numpy()
    key = rank_of_code[codes] * (int(sessions.max()) + 1) + sessions
    in_order = bool(np.all(key[1:] >= key[:-1]))
    order = None if in_order else np.argsort(key, kind="stable")
    sorted_key = key if in_order else key[order]
    repeat = sorted_key[1:] == sorted_key[:-1]
    if repeat.any():
        dup_keys = np.unique(sorted_key[1:][repeat])
        dup = np.isin(key, dup_keys)
        first = frame.loc[dup].drop_duplicates(["dyad", "session"])
        shown = format_ids(
            [f"(dyad {d!r}, session {s})" for d, s in zip(first["dyad"], first["session"])]
        )
        raise DataError(
            f"Columns {cols['dyad']!r}/{cols['session']!r} have {len(first)} duplicated "
            f"(dyad, session) pair(s): {shown}. Keep one rating per dyad and session "
            "(average or drop the repeats)."
        )
    # too short dyads -----------------------------------------------------------------------
    excluded: list[object] = []
    if min_sessions > 1:
        counts = np.bincount(codes, minlength=len(uniques))
        short = np.flatnonzero(counts < min_sessions)
        if len(short):
            short = short[np.argsort(rank_of_code[short])]      # in sorted id order
            excluded = list(np.asarray(uniques, dtype=object)[short])
            if len(short) == len(counts):
                raise DataError(
                    f"Every dyad has fewer than {min_sessions} sessions (the minimum for this "
                    f"model); e.g. {format_ids(excluded)}. Collect more sessions or choose a "
                    "method that needs fewer."
                )
            warnings.warn(
                f"Excluded {len(short)} of {len(counts)} dyad(s) with fewer than {min_sessions} "
                f"sessions: {format_ids(excluded)}.",
                ExcludedDyadsWarning,
                stacklevel=3,
            )
            keep = counts[codes] >= min_sessions
            order = np.flatnonzero(keep) if order is None else order[keep[order]]
    if order is not None:
        frame = frame.iloc[order]
    frame = frame.reset_index(drop=True)

    frame.attrs = {
        _VALIDATED_FLAG: True,
        "scale": scale,
        "excluded_dyads": excluded,
        "source_columns": {k: str(v) for k, v in cols.items()},
    }
    return frame


def _holds_bools(values: pd.Series) -> bool:
    """Does an object column hold Python/NumPy booleans (which would read as 0/1)?"""
    if values.dtype != object:
        return False
    return any(isinstance(v, (bool, np.bool_)) for v in values.to_numpy())


def _check_scale(scale: object) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in scale)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(
            f"The 'scale' parameter must be a pair (low, high) of numbers. Got {scale!r} instead."
        ) from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"The 'scale' parameter must be a pair (low, high) with low < high. Got {scale!r}."
        )
    return low, high


def load_sessions(
    source: str | os.PathLike | pd.DataFrame,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    scale: tuple[float, float] | None = None,
    dropna: bool = False,
    min_sessions: int = 1,
    sheet: str | int | None = None,
) -> pd.DataFrame:
    """Read and validate session-level alliance data.

    Parameters
    ----------
    source : str, path or DataFrame
        A file in long format (one row per rated session): CSV (``.csv``, ``.csv.gz``,
        ``.tsv``), Parquet (a file or a dataset folder), SPSS (``.sav``), Stata
        (``.dta``) or Excel (``.xlsx``); or a DataFrame. SPSS and Stata need
        ``pip install alliancetraj[formats]`` (pyreadstat), Excel too (openpyxl).
        Missing-value codes of SPSS/Stata files (user-missing values, ``.a``-``.z``,
        value-labelled codes of the score column outside ``scale``) are read as
        missing, never as scores, with a :class:`~alliancetraj.errors.MissingCodesWarning`
        that counts them (see :mod:`alliancetraj.formats`).
    dyad, session, score : column names
        The columns holding the dyad id, the session number (positive integer) and
        the score.
    scale : (low, high), optional
        The instrument's range; scores outside it raise :class:`DataError`.
    dropna : bool, default False
        Drop rows whose score is missing (with a warning counting them) instead of
        raising.
    min_sessions : int, default 1
        Dyads with fewer sessions are excluded with a warning that counts them.
    sheet : str or int, optional
        The sheet of an Excel file (name or 0-based position; default: the first).

    Returns
    -------
    pandas.DataFrame
        A new frame with columns ``dyad``, ``session`` (int64), ``score`` (float64),
        then any other columns, sorted by dyad and session. The input is never
        modified.

    Raises
    ------
    DataError
        For a missing file, an unparsable file, missing or repeated column names,
        empty data, missing dyad ids, non-integer or non-positive sessions, session
        numbers above ``MAX_SESSION`` (1,000), boolean, non-numeric, infinite or
        missing scores, scores beyond ``MAX_ABS_SCORE`` (1e100) in absolute value,
        duplicated (dyad, session) pairs, or scores off the scale.

    Examples
    --------
    >>> import pandas as pd
    >>> import alliancetraj as at
    >>> raw = pd.DataFrame({"id": ["a", "a", "b"], "week": [2, 1, 1],
    ...                     "wai": [4.1, 3.9, 2.5]})
    >>> at.load_sessions(raw, dyad="id", session="week", score="wai", scale=(1, 5))
      dyad  session  score
    0    a        1    3.9
    1    a        2    4.1
    2    b        1    2.5
    """
    frame = _codes_as_missing(_as_frame(source, sheet), score, scale)
    return validate_sessions(
        frame, dyad=dyad, session=session, score=score, scale=scale, dropna=dropna,
        min_sessions=min_sessions,
    )


def wide_to_long(
    data: pd.DataFrame,
    *,
    dyad: Hashable = "id",
    columns: Sequence[Hashable] | Mapping[Hashable, int] | None = None,
    prefix: str | None = None,
) -> pd.DataFrame:
    """Turn a wide table (one column per session) into the long format.

    Parameters
    ----------
    data : DataFrame
        One row per dyad.
    dyad : column name
        The dyad id column.
    columns : list of column names, or mapping column -> session number, optional
        The session columns. With a list, the session number is the trailing integer
        of each name (``bdi_s3`` -> 3). A mapping gives the numbers explicitly.
    prefix : str, optional
        Take every column whose name is ``prefix`` followed by digits
        (e.g. ``prefix="bdi_s"`` takes ``bdi_s1`` ... ``bdi_s12``, not ``bdi_fu1``).

    Returns
    -------
    DataFrame
        Columns ``dyad``, ``session``, ``score``; missing (NaN) cells are left out,
        since a missing session is simply absent in long format.

    Examples
    --------
    >>> import pandas as pd
    >>> import alliancetraj as at
    >>> wide = pd.DataFrame({"id": [1, 2], "s1": [20.0, 30.0], "s2": [15.0, None]})
    >>> at.wide_to_long(wide, dyad="id", prefix="s")
       dyad  session  score
    0     1        1   20.0
    1     1        2   15.0
    2     2        1   30.0
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"Wide data must be a pandas DataFrame; got {type(data).__name__}.")
    _resolve_column(data, dyad, "dyad", "dyad")
    if (columns is None) == (prefix is None):
        raise ValueError("Give exactly one of 'columns' (names or a mapping) and 'prefix'.")
    if prefix is not None:
        pattern = re.compile(re.escape(prefix) + r"(\d+)$")
        mapping = {c: int(m.group(1)) for c in data.columns
                   if isinstance(c, str) and (m := pattern.match(c))}
        if not mapping:
            raise DataError(
                f"No column matches the prefix {prefix!r} followed by a session number. Columns "
                f"present: {format_ids([str(c) for c in data.columns], limit=12)}."
            )
    elif isinstance(columns, Mapping):
        mapping = dict(columns)
        bad = {c: n for c, n in mapping.items() if not _is_session_number(n)}
        if bad:
            shown = format_ids([f"{c!r}: {n!r}" for c, n in bad.items()])
            raise DataError(
                f"The 'columns' mapping gives {len(bad)} session number(s) that are not "
                f"positive integers: {shown}. Map each column to its session number "
                "(1, 2, 3, ...), e.g. {'bdi_s1': 1, 'bdi_s2': 2}."
            )
        mapping = {c: int(n) for c, n in mapping.items()}
    else:
        mapping = {}
        for c in columns:  # type: ignore[union-attr]
            m = re.search(r"(\d+)$", str(c))
            if m is None:
                raise DataError(
                    f"Column {c!r} has no trailing session number; pass a mapping "
                    "{column: session number} as columns=."
                )
            mapping[c] = int(m.group(1))
    missing = [c for c in mapping if c not in data.columns]
    if missing:
        raise DataError(f"Session column(s) {format_ids(missing)} are not in the data.")
    if len(set(mapping.values())) != len(mapping):
        raise DataError("Two session columns map to the same session number; check 'columns'.")
    ordered = sorted(mapping.items(), key=lambda kv: kv[1])
    long = data[[dyad, *[c for c, _ in ordered]]].melt(
        id_vars=[dyad], var_name="_col", value_name="score"
    )
    long["session"] = long["_col"].map(dict(ordered)).astype(np.int64)
    long = long.rename(columns={dyad: "dyad"})[["dyad", "session", "score", "_col"]]
    raw = long["score"]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = (numeric.isna() & raw.notna()).to_numpy()
    if bad.any():
        shown = format_ids(
            [f"(dyad {d!r}, column {c!r}): {v!r}"
             for d, c, v in zip(long["dyad"][bad], long["_col"][bad], raw[bad])]
        )
        raise DataError(
            f"The session columns hold {bad.sum()} non-numeric value(s): {shown}. Convert them to "
            "numbers, or to NaN where the session is missing."
        )
    long["score"] = numeric.astype("float64")
    long = long.loc[long["score"].notna(), ["dyad", "session", "score"]]
    try:
        long = long.sort_values(["dyad", "session"], kind="stable")
    except TypeError:
        pass
    return long.reset_index(drop=True)


def _is_session_number(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return value >= 1
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value) and value >= 1 and float(value).is_integer())
    return False


# ------------------------------------------------------------------------ panel arrays
@dataclass(frozen=True)
class PanelArrays:
    """Sessions of a validated frame laid out on a dense grid of session numbers.

    ``scores[i, j]`` is dyad ``dyads[i]``'s score at session ``grid[j]``; ``mask``
    says which cells were observed (unobserved cells hold 0.0).
    """

    dyads: pd.Index
    grid: np.ndarray
    scores: np.ndarray
    mask: np.ndarray

    @property
    def n_obs(self) -> np.ndarray:
        return self.mask.sum(axis=1)


def to_panel(frame: pd.DataFrame) -> PanelArrays:
    """Lay a validated (canonical, sorted) frame out as dense dyad x session arrays."""
    codes, dyads = pd.factorize(frame["dyad"], sort=False)
    sessions = frame["session"].to_numpy(dtype=np.int64)
    first, last = int(sessions.min()), int(sessions.max())
    grid = np.arange(first, last + 1, dtype=np.int64)
    scores = np.zeros((len(dyads), len(grid)))
    mask = np.zeros((len(dyads), len(grid)), dtype=bool)
    scores[codes, sessions - first] = frame["score"].to_numpy(dtype=float)
    mask[codes, sessions - first] = True
    return PanelArrays(dyads=pd.Index(dyads, name="dyad"), grid=grid, scores=scores, mask=mask)
