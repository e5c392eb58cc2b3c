"""Sudden gains and sudden losses: the Tang & DeRubeis (1999) criteria.

:func:`sudden_changes` applies the three criteria exactly as the R package
``suddengains`` (Wiedemann et al. 2020, PLOS ONE 15(3): e0230276; functions
``identify_sg``, ``identify_sl``, ``create_bysg`` and ``create_byperson``) does.
With a session-to-session change from the *pre-change session* ``n`` to the
*post-change session* ``n + 1``, and the change measured in the direction of
interest (``direction="decrease"``: ``d = x[n] - x[n+1]``, a sudden *gain* on a
symptom measure such as the BDI-II, a sudden *drop* (rupture) on an alliance
measure; ``direction="increase"``: ``d = x[n+1] - x[n]``):

criterion 1
    ``d >= cutoff``. With ``reliability=`` the cutoff is the reliable change
    value ``1.96 * sqrt(2) * sd * sqrt(1 - reliability)`` (Jacobson & Truax 1991;
    suddengains' ``define_crit1_cutoff``), ``sd`` defaulting to the standard
    deviation of the scores at the first session of the grid.
criterion 2
    ``d >= pct * x[n]`` (default ``pct = 0.25``: 25% of the pre-change score).
criterion 3
    With the pre window ``x[n-2], x[n-1], x[n]`` and the post window
    ``x[n+1], x[n+2], x[n+3]`` (missing scores dropped; windows clipped at the
    ends of the session grid), both windows need at least two scores; then
    ``mean(pre) - mean(post) > c * s_pooled`` (``mean(post) - mean(pre)`` for
    increases) with
    ``s_pooled = sqrt(((n_pre - 1) s_pre^2 + (n_post - 1) s_post^2) / (n_pre + n_post - 2))``
    (sample SDs) and ``c`` the two-tailed Student t critical value at ``alpha``
    with ``n_pre + n_post - 2`` degrees of freedom: 2.776 with complete
    windows, 3.182 when one score is missing on one side, 4.303 when one is
    missing on each side (``alpha = 0.05``). ``adjust=False`` uses
    ``critical_value`` (2.776) whatever is missing.

Missing data and the intervals tested
    Both ``x[n]`` and ``x[n+1]`` must be observed. As in suddengains (its loop over
    the columns of ``sg_var_list``), the first interval of the session grid
    (sessions 1 to 2 of ``bdi_s1 .. bdi_s12``) and the last one (11 to 12) are
    never tested. The grid is the wide columns, or in long data every integer
    session from the smallest to the largest session in the data.
Baseline
    ``baseline=True`` keeps a session-0 (pre-treatment) score, e.g. ``bdi_s0``,
    on the grid: this is suddengains' ``identify_sg_1to2 = TRUE`` (the interval
    from session 1 to 2 can then be tested). By default session-0 columns of wide
    data are dropped, as in suddengains' own example (``bdi_s1`` to ``bdi_s12``).
Reported session
    ``session`` is the pre-change session ``n``, which suddengains reports as
    ``sg_session_n`` (its interval ``sg_3to4`` gives ``sg_session_n = 3``);
    ``magnitude`` is ``d`` (positive), suddengains' ``sg_magnitude`` for gains.
Reversal
    A change is ``reversed`` when a later score undoes more than half of it:
    for a decrease, any score ``> x[n+1] + d/2``; for an increase, any score
    ``< x[n+1] - d/2``. As suddengains' ``create_bysg`` does, the later scores
    considered start at session ``n + 3`` (``n + 2`` with ``baseline=True``,
    where suddengains' session numbering shifts by one); ``reversal_lag``
    overrides this.
Multiple changes per dyad
    Every interval is tested on its own, so a dyad can have several changes.
    ``multiple="all"`` (default) returns them all (suddengains' ``create_bysg``,
    one row per gain); ``"first"``, ``"last"``, ``"smallest"`` or ``"largest"``
    keep one per dyad (``create_byperson``'s ``multiple_sg_select``; ties go to
    the earlier change).

Deviation from suddengains: for sudden *losses* suddengains' ``identify_sl``
tests criterion 2 as ``x[n] - x[n+1] <= pct * x[n]``, which every increase
meets; here criterion 2 is the mirror image of the gains rule
(``x[n+1] - x[n] >= pct * x[n]``). ``criteria=(1, 3)`` reproduces
``identify_sl`` (whose cutoff is negative: ``sg_crit1_cutoff = -7`` there is
``cutoff=7, direction="increase"`` here).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_bool, check_choice, check_number, parameter_error
from .errors import DataError
from .io import validate_sessions, wide_to_long

__all__ = ["check_criteria", "rci_cutoff", "sudden_changes"]

_FUNC = "sudden_changes"
_MULTIPLE = ("all", "first", "last", "smallest", "largest")
_COLUMNS = [
    "dyad",
    "session",
    "magnitude",
    "reversed",
    "post_session",
    "score_before",
    "score_after",
]


def rci_cutoff(sd: float, reliability: float) -> float:
    """Reliable change value ``1.96 * sqrt(2) * sd * sqrt(1 - reliability)``.

    This is the cut-off that suddengains' ``define_crit1_cutoff`` returns
    (Jacobson & Truax 1991).

    Examples
    --------
    >>> from alliancetraj.sudden import rci_cutoff
    >>> round(rci_cutoff(sd=10.5, reliability=0.931), 2)
    7.65
    """
    return float(1.96 * np.sqrt(2.0) * sd * np.sqrt(1.0 - reliability))


# ------------------------------------------------------------------------ core (arrays)
def check_criteria(func: str, criteria: Any) -> list[int]:
    """The sudden-change criteria to apply: a non-empty collection of 1, 2 and/or 3 (sorted).

    Examples
    --------
    >>> check_criteria("f", (3, 1, 1))
    [1, 3]
    """
    try:
        chosen = sorted({int(c) for c in criteria}) if not isinstance(criteria, str) else None
    except (TypeError, ValueError):
        chosen = None
    if not chosen or any(c not in (1, 2, 3) for c in chosen) or \
            any(isinstance(c, bool) for c in criteria):
        raise parameter_error(func, "criteria", "a non-empty collection of 1, 2 and/or 3",
                              criteria)
    return chosen


def _critical_values(alpha: float, adjust: bool, critical_value: float) -> np.ndarray:
    """Critical value by total number of scores in the two windows (index 4..6)."""
    from scipy import stats

    table = np.full(7, np.nan)
    for total in (4, 5, 6):
        table[total] = abs(stats.t.ppf(alpha / 2.0, total - 2)) if adjust else critical_value
    return table


def _window_stats(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample variance of each row, ignoring NaN (no warnings)."""
    ok = ~np.isnan(block)
    count = ok.sum(axis=1)
    filled = np.where(ok, block, 0.0)
    safe = np.maximum(count, 1)
    mean = filled.sum(axis=1) / safe
    dev = np.where(ok, block - mean[:, None], 0.0)
    var = (dev**2).sum(axis=1) / np.maximum(count - 1, 1)
    return count, mean, var


def detect(
    panel: np.ndarray,
    *,
    cutoff: float | None,
    direction: str = "decrease",
    criteria: Sequence[int] = (1, 2, 3),
    pct: float = 0.25,
    alpha: float = 0.05,
    adjust: bool = True,
    critical_value: float = 2.776,
    reversal_lag: int = 3,
) -> list[tuple[int, int, float, bool, float]]:
    """Sudden changes in a dense (n_dyads, n_grid) array with NaN for missing.

    Returns ``(row, pre_position, magnitude, reversed, reversal_value)`` tuples,
    sorted by row then position. Used by :func:`sudden_changes` and the
    ``rules`` classifier.
    """
    x = np.asarray(panel, dtype=float)
    g = x.shape[1]
    sign = 1.0 if direction == "decrease" else -1.0
    crit = _critical_values(alpha, adjust, critical_value)
    use = set(criteria)
    out: list[tuple[int, int, float, bool, float]] = []
    # pre-change position p (0-based) from 1 to g - 3: suddengains' columns 3..ncol-1
    for p in range(1, g - 2):
        before, after = x[:, p], x[:, p + 1]
        d = sign * (before - after)
        hit = ~np.isnan(d)
        if 1 in use:
            hit &= d >= cutoff  # type: ignore[operator]
        if 2 in use:
            hit &= d >= pct * before
        if 3 in use:
            n_pre, m_pre, v_pre = _window_stats(x[:, max(0, p - 2) : p + 1])
            n_post, m_post, v_post = _window_stats(x[:, p + 1 : min(g, p + 4)])
            enough = (n_pre >= 2) & (n_post >= 2)
            total = np.where(enough, n_pre + n_post, 4)
            pooled = np.sqrt(
                ((n_pre - 1) * v_pre + (n_post - 1) * v_post) / np.maximum(total - 2, 1)
            )
            hit &= enough & (sign * (m_pre - m_post) > crit[total] * pooled)
        for r in np.flatnonzero(hit):
            mag = float(d[r])
            rev_value = float(after[r] + sign * mag / 2.0)
            later = x[r, p + reversal_lag :]
            later = later[~np.isnan(later)]
            reversed_ = bool(np.any(sign * (later - rev_value) > 0))
            out.append((int(r), p, mag, reversed_, rev_value))
    out.sort(key=lambda item: (item[0], item[1]))
    return out


# --------------------------------------------------------------------------- frontend
def _is_wide(frame: pd.DataFrame, session: Hashable, score: Hashable) -> bool:
    return session not in frame.columns and score not in frame.columns


def sudden_changes(
    frame: pd.DataFrame,
    cutoff: float | None = 7,
    direction: str = "decrease",
    dyad: Hashable = "id",
    session: Hashable = "session",
    score: Hashable = "bdi",
    *,
    prefix: str | None = None,
    columns: Sequence[Hashable] | Mapping[Hashable, int] | None = None,
    baseline: bool = False,
    criteria: Sequence[int] = (1, 2, 3),
    pct: float = 0.25,
    alpha: float = 0.05,
    adjust: bool = True,
    critical_value: float = 2.776,
    reliability: float | None = None,
    sd: float | None = None,
    multiple: str = "all",
    reversal_lag: int | None = None,
) -> pd.DataFrame:
    """Find sudden gains or sudden losses (Tang & DeRubeis 1999) as R's suddengains does.

    The rules (criteria, missing data, reversal, the reported session) are those of
    the module :mod:`alliancetraj.sudden`; they reproduce suddengains' ``create_bysg``
    on its example data (see :func:`alliancetraj.datasets.load_sgdata`).

    Parameters
    ----------
    frame : DataFrame
        Long data (one row per rated session: ``dyad``, ``session``, ``score``
        columns) or wide data (one row per dyad, one column per session). Wide data
        are recognised by ``prefix=`` or ``columns=``, or when neither ``session`` nor
        ``score`` is a column and columns ``f"{score}_s<number>"`` exist (so the
        defaults read suddengains' ``sgdata``: ``id``, ``bdi_s1`` ... ``bdi_s12``).
    cutoff : float or None, default 7
        Criterion 1: the smallest change counted (in score units, positive whatever
        the direction). Replaced by the reliable change value when ``reliability``
        is given.
    direction : {"decrease", "increase"}, default "decrease"
        The direction of a sudden change: ``"decrease"`` finds sudden gains on a
        symptom measure (suddengains' ``identify = "sg"``) and ruptures (sudden
        drops) on an alliance measure; ``"increase"`` finds sudden losses on a
        symptom measure (``identify = "sl"``).
    dyad, session, score : column names, default "id", "session", "bdi"
        Long data: the three columns. Wide data: ``dyad`` is the id column and
        ``score`` the measure's name (column prefix ``f"{score}_s"``).
    prefix : str, optional
        Wide data: session columns are ``prefix`` followed by the session number.
    columns : list or mapping column -> session, optional
        Wide data: the session columns (see :func:`alliancetraj.wide_to_long`).
    baseline : bool, default False
        Keep a session-0 (pre-treatment) score on the grid (suddengains'
        ``identify_sg_1to2 = TRUE``). When False, session-0 columns of wide data
        are dropped.
    criteria : sequence of {1, 2, 3}, default (1, 2, 3)
        The criteria applied (suddengains switches them off with
        ``sg_crit1_cutoff = NULL``, ``sg_crit2_pct = NULL``, ``sg_crit3 = FALSE``).
    pct : float, default 0.25
        Criterion 2: the change must be at least this share of the pre-change score.
    alpha : float, default 0.05
        Criterion 3: two-tailed level of the Student t critical value.
    adjust : bool, default True
        Criterion 3: adjust the critical value for missing scores in the windows;
        False uses ``critical_value`` throughout.
    critical_value : float, default 2.776
        Criterion 3 critical value when ``adjust=False``.
    reliability : float, optional
        Reliability of the measure (0 < r < 1): criterion 1 then uses the reliable
        change value ``1.96 * sqrt(2) * sd * sqrt(1 - reliability)``.
    sd : float, optional
        Standard deviation for the reliable change value; default: the SD of the
        scores at the first session of the grid.
    multiple : {"all", "first", "last", "smallest", "largest"}, default "all"
        Keep every change, or one per dyad.
    reversal_lag : int, optional
        Later scores from session ``n + reversal_lag`` on are checked for a
        reversal; default 3 (2 with ``baseline=True``), as suddengains.

    Returns
    -------
    pandas.DataFrame
        One row per sudden change, sorted by dyad and session, with columns
        ``dyad``, ``session`` (the pre-change session ``n``, suddengains'
        ``sg_session_n``), ``magnitude`` (the change, positive), ``reversed``
        (bool), ``post_session`` (``n + 1``), ``score_before`` (``x[n]``) and
        ``score_after`` (``x[n+1]``). ``attrs["settings"]`` records the options,
        including the cutoff used.

    Raises
    ------
    DataError
        For bad data (missing columns, non-numeric scores, duplicated sessions ...).
    ValueError
        For a bad parameter value.

    Examples
    --------
    >>> import alliancetraj as at
    >>> sgdata = at.datasets.load_sgdata()
    >>> gains = at.sudden_changes(sgdata, cutoff=7)
    >>> len(gains), gains["dyad"].nunique()
    (24, 15)
    >>> gains.head(3)[["dyad", "session", "magnitude", "reversed"]]
       dyad  session  magnitude  reversed
    0     1        3       11.0      True
    1     1        7       12.0     False
    2     3        8        9.0     False
    """
    direction = check_choice(_FUNC, "direction", direction, ("decrease", "increase"))
    multiple = check_choice(_FUNC, "multiple", multiple, _MULTIPLE)
    baseline = check_bool(_FUNC, "baseline", baseline)
    adjust = check_bool(_FUNC, "adjust", adjust)
    crit_set = check_criteria(_FUNC, criteria)
    pct = check_number(_FUNC, "pct", pct, low=0)
    alpha = check_number(_FUNC, "alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    critical_value = check_number(_FUNC, "critical_value", critical_value, low=0, low_open=True)
    reliability = check_number(_FUNC, "reliability", reliability, low=0, high=1,
                               high_open=True, allow_none=True)
    sd = check_number(_FUNC, "sd", sd, low=0, low_open=True, allow_none=True)
    if reversal_lag is None:
        reversal_lag = 2 if baseline else 3
    reversal_lag = check_number(_FUNC, "reversal_lag", reversal_lag, low=1, integer=True)
    if reliability is None and 1 in crit_set:
        cutoff = check_number(_FUNC, "cutoff", cutoff, low=0)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"Data must be a pandas DataFrame; got {type(frame).__name__}.")

    # ---- long canonical frame + session grid
    wide = prefix is not None or columns is not None
    if not wide and _is_wide(frame, session, score) and isinstance(score, str):
        auto = f"{score}_s"
        if any(
            isinstance(c, str) and c.startswith(auto) and c[len(auto) :].isdigit()
            for c in frame.columns
        ):
            prefix, wide = auto, True
    if wide:
        long = wide_to_long(frame, dyad=dyad, columns=columns, prefix=prefix)
        if prefix is not None:
            import re

            pattern = re.compile(re.escape(prefix) + r"(\d+)$")
            numbers = [
                int(m.group(1))
                for c in frame.columns
                if isinstance(c, str) and (m := pattern.match(c))
            ]
        elif isinstance(columns, Mapping):
            numbers = [int(v) for v in columns.values()]
        else:
            numbers = sorted(long["session"].unique().tolist())
        if not baseline:
            long = long.loc[long["session"] >= 1]
            numbers = [s for s in numbers if s >= 1]
        cols = {"dyad": "dyad", "session": "session", "score": "score"}
        names = {"dyad": dyad, "session": "session", "score": prefix or "score"}
    else:
        long = frame
        cols = {"dyad": dyad, "session": session, "score": score}
        names = cols
        numbers = None
    shift = 1 if baseline else 0
    if shift:
        long = long.copy()
        long[cols["session"]] = pd.to_numeric(long[cols["session"]], errors="coerce") + shift
    if len(long) == 0:
        raise DataError(
            f"No scores to analyse in the {names['score']!r} columns (all missing, or only "
            "session 0 with baseline=False)."
        )
    canon = validate_sessions(long, dyad=cols["dyad"], session=cols["session"], score=cols["score"])
    canon = canon.assign(session=canon["session"] - shift)
    lo = int(canon["session"].min())
    hi = int(canon["session"].max())
    if numbers:
        lo, hi = min(lo, min(numbers)), max(hi, max(numbers))
    grid = np.arange(lo, hi + 1, dtype=np.int64)
    codes, dyads = pd.factorize(canon["dyad"], sort=False)
    panel = np.full((len(dyads), len(grid)), np.nan)
    panel[codes, canon["session"].to_numpy() - lo] = canon["score"].to_numpy(float)

    # ---- criterion 1 cutoff
    if reliability is not None:
        if sd is None:
            first = panel[:, 0]
            first = first[~np.isnan(first)]
            if len(first) < 2:
                raise DataError(
                    f"Fewer than two scores at session {lo}: cannot estimate the SD for the "
                    "reliable change value. Pass sd=... explicitly."
                )
            sd = float(np.std(first, ddof=1))
        cutoff = rci_cutoff(sd, reliability)
    elif 1 not in crit_set:
        cutoff = None

    found = detect(
        panel,
        cutoff=cutoff,
        direction=direction,
        criteria=crit_set,
        pct=pct,
        alpha=alpha,
        adjust=bool(adjust),
        critical_value=critical_value,
        reversal_lag=reversal_lag,
    )
    rows = [
        {
            "dyad": dyads[r],
            "session": int(grid[p]),
            "magnitude": mag,
            "reversed": rev,
            "post_session": int(grid[p + 1]),
            "score_before": float(panel[r, p]),
            "score_after": float(panel[r, p + 1]),
        }
        for r, p, mag, rev, _ in found
    ]
    out = pd.DataFrame(rows, columns=_COLUMNS)
    out = out.astype(
        {
            "session": np.int64,
            "post_session": np.int64,
            "magnitude": float,
            "reversed": bool,
            "score_before": float,
            "score_after": float,
        }
    )
    if multiple != "all" and len(out):
        grouped = out.groupby("dyad", sort=False)
        if multiple == "first":
            keep = grouped["session"].idxmin()
        elif multiple == "last":
            keep = grouped["session"].idxmax()
        elif multiple == "largest":
            keep = grouped["magnitude"].idxmax()
        else:
            keep = grouped["magnitude"].idxmin()
        out = out.loc[sorted(keep.to_numpy())]
    out = out.reset_index(drop=True)
    out.attrs["settings"] = {
        "cutoff": cutoff,
        "direction": direction,
        "criteria": list(crit_set),
        "pct": pct,
        "alpha": alpha,
        "adjust": bool(adjust),
        "critical_value": critical_value,
        "reliability": reliability,
        "sd": sd,
        "baseline": bool(baseline),
        "multiple": multiple,
        "reversal_lag": reversal_lag,
        "grid": [int(grid[0]), int(grid[-1])],
    }
    return out
