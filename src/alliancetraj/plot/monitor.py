"""Figures of session-by-session monitoring (:func:`alliancetraj.monitor`).

- :func:`plot_monitor_dyad` — one dyad's alert probability over sessions, under its
  scores, with the threshold, the alerted sessions and the estimated onset;
- :func:`plot_caseload` — a caseload overview: each dyad's latest probability,
  sorted, with alerts and new alerts marked.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from ._common import CLASS_COLORS, new_axes, session_axis

__all__ = ["plot_caseload", "plot_monitor_dyad"]

_ALERT = CLASS_COLORS["unrepaired_rupture"]
_QUIET = "#999999"
_NEW = "#CC79A7"
_NEEDED = ("dyad", "session", "score", "p_unrepaired", "alert", "new_alert")


def _check_table(table: pd.DataFrame, func: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{func} takes the DataFrame returned by alliancetraj.monitor; got "
                        f"{type(table).__name__}.")
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ValueError(f"{func} needs the columns of alliancetraj.monitor's table; {missing} "
                         "missing. Pass the table monitor() returned.")


def _threshold(table: pd.DataFrame, threshold: float | None) -> float | None:
    if threshold is not None:
        return float(threshold)
    value = table.attrs.get("threshold")
    return None if value is None else float(value)


def plot_monitor_dyad(table: pd.DataFrame, dyad: Hashable, *, threshold: float | None = None,
                      ax: Any = None):
    """One dyad's probability of an unrepaired rupture, session by session, under its scores.

    Parameters
    ----------
    table : DataFrame
        The table of :func:`alliancetraj.monitor` (every session, not ``latest_only``).
    dyad : hashable
        The dyad to draw.
    threshold : float, optional
        The alert threshold drawn (default: the one the table was made with).
    ax : Axes, optional
        Where to draw the probability. When None, a new figure with two panels is
        made: the scores on top, the probability below (the returned Axes); when
        given, the scores go on a twin y axis of ``ax``.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes of the probability.
    """
    _check_table(table, "plot_monitor_dyad")
    rows = table.loc[table["dyad"] == dyad].sort_values("session")
    if rows.empty:
        raise ValueError(f"Dyad {dyad!r} is not in the monitoring table.")
    if ax is None:
        import matplotlib.pyplot as plt

        _fig, (ax_score, ax) = plt.subplots(2, 1, sharex=True, figsize=(6.4, 5.0),
                                           layout="constrained", height_ratios=(1, 1))
    else:
        ax_score = ax.twinx()
    t = rows["session"].to_numpy(dtype=float)
    p = rows["p_unrepaired"].to_numpy(dtype=float)
    alert = rows["alert"].to_numpy(dtype=bool)

    ax_score.plot(t, rows["score"], "o-", color="0.3", lw=1, ms=4, label="score")
    ax_score.set_ylabel("alliance score")
    ax.plot(t, p, "-", color=_ALERT, lw=1.5, label="P(unrepaired rupture | sessions so far)")
    ax.scatter(t[~alert], p[~alert], s=14, color=_QUIET, zorder=3)
    ax.scatter(t[alert], p[alert], s=30, color=_ALERT, zorder=3, label="alert")
    new = rows["new_alert"].to_numpy(dtype=bool)
    for s in t[new]:
        for a in (ax, ax_score):
            a.axvline(s, color=_NEW, lw=1, ls=":")
    thr = _threshold(table, threshold)
    if thr is not None:
        ax.axhline(thr, color="0.2", lw=0.8, ls="--", label=f"threshold {thr:g}")
    if "onset_mode" in rows.columns and alert.any():
        last = rows.loc[alert].iloc[-1]
        if np.isfinite(last["onset_mode"]):
            ax_score.axvspan(last["onset_low"] - 0.5, last["onset_high"] + 0.5, color=_ALERT,
                             alpha=0.12, lw=0, label="onset (credible set)")
    ax.set_ylim(-0.02, 1.02)
    session_axis(ax)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    ax_score.legend(loc="lower left", fontsize="small", frameon=False)
    ax_score.set_title(f"dyad {dyad}: unrepaired-rupture alert, session by session")
    return ax


def plot_caseload(table: pd.DataFrame, *, threshold: float | None = None,
                  max_dyads: int = 30, ax: Any = None):
    """A caseload overview: each dyad's latest probability of an unrepaired rupture.

    Dyads are sorted by probability (highest on top; at most ``max_dyads``);
    alerts are coloured and new alerts (first session of an alert) marked.

    Parameters
    ----------
    table : DataFrame
        The table of :func:`alliancetraj.monitor` (the last row of each dyad is used,
        so a full table or a ``latest_only`` one both work).
    threshold : float, optional
        The alert threshold drawn (default: the one the table was made with).
    max_dyads : int, default 30
        Show the dyads with the highest probabilities only.
    ax : Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_table(table, "plot_caseload")
    latest = table.sort_values(["dyad", "session"]).groupby("dyad", sort=False).tail(1)
    latest = latest.assign(_p=latest["p_unrepaired"].fillna(-1.0))
    latest = latest.sort_values("_p", ascending=False, kind="stable").head(int(max_dyads))
    latest = latest.iloc[::-1]
    ax = new_axes(ax, figsize=(6.4, max(2.5, 0.22 * len(latest) + 1.2)))
    y = np.arange(len(latest))
    p = latest["p_unrepaired"].to_numpy(dtype=float)
    alert = latest["alert"].to_numpy(dtype=bool)
    new = latest["new_alert"].to_numpy(dtype=bool)
    ax.hlines(y, 0, np.nan_to_num(p), color="0.85", lw=2)
    ax.scatter(p[~alert], y[~alert], color=_QUIET, s=25, zorder=3, label="no alert")
    ax.scatter(p[alert & ~new], y[alert & ~new], color=_ALERT, s=35, zorder=3,
               label="alert (continuing)")
    ax.scatter(p[new], y[new], color=_NEW, marker="D", s=40, zorder=4, label="new alert")
    thr = _threshold(table, threshold)
    if thr is not None:
        ax.axvline(thr, color="0.2", lw=0.8, ls="--", label=f"threshold {thr:g}")
    labels = [f"{d} (s{int(s)})" for d, s in zip(latest["dyad"], latest["session"])]
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("P(unrepaired rupture) at the latest session")
    ax.set_title(f"caseload: {latest['alert'].sum()} of {len(latest)} shown on alert")
    ax.legend(loc="lower right", fontsize="small", frameon=True)
    return ax
