"""Shared labelling logic of the baseline classifiers (``rules`` and ``pelt``).

Both baselines first look for a *sudden drop* (a rupture) in each dyad's series,
each in its own way (:mod:`~alliancetraj.models.rules` by literature rules,
:mod:`~alliancetraj.models.pelt` by PELT change points). This module turns what
they found into one of :data:`alliancetraj.CLASSES`, always by the same rules:

1. **A rupture was found** (first session of the drop ``rupture_session``, the
   pre-drop level and the repair threshold given by the detector):

   * it is **repaired** at the first later observed session whose score is back
     at or above the repair threshold, provided that session comes at most
     ``max_length`` sessions after ``rupture_session``
     (``repair_session - rupture_session <= max_length``) and **at least one
     observed session follows it** (DESIGN: a ``v_shaped`` trajectory has at
     least one observed session after repair);
   * repaired -> ``v_shaped``; otherwise -> ``unrepaired_rupture`` (a repair
     seen only at the last observed session is not confirmed and counts as not
     repaired).

   ``depth`` is the pre-drop level minus the mean score of the drop sessions
   (from ``rupture_session`` up to, not including, ``repair_session``; up to the
   last session when unrepaired).

2. **No rupture**: a quadratic ``score ~ 1 + t + t^2`` is fitted by least
   squares (needs >= 4 sessions). The dyad is ``u_shaped`` when the quadratic
   coefficient is positive (convex), its two-sided t-test has ``p < u_alpha``,
   and the fitted minimum (``turning_session = -b / 2c``) lies strictly inside
   the observed span, at least ``u_margin`` of the span away from the first and
   the last session. Otherwise the dyad is ``linear`` (stable, steady rise or
   steady fall).

Change points are reported without uncertainty: the ``*_low``/``*_high``
columns repeat the point value; NaN where the class has no such quantity.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..results import CHANGEPOINT_COLUMNS, ClassificationResult

__all__ = [
    "Rupture",
    "build_result",
    "find_repair",
    "label_dyad",
    "quadratic_u",
]


@dataclass(frozen=True)
class Rupture:
    """A sudden drop found by a detector.

    Attributes
    ----------
    index : int
        Position (in the dyad's observed sessions) of the first session of the drop.
    pre_level : float
        Level before the drop (what a repair returns to).
    repair_level : float
        A later score at or above this counts as repaired.
    """

    index: int
    pre_level: float
    repair_level: float


# ---------------------------------------------------------------------------- pieces
def find_repair(
    sessions: np.ndarray, scores: np.ndarray, start: int, repair_level: float, max_length: int
) -> int | None:
    """Index of the first observed session after ``start`` that repairs the drop.

    A repair is a score ``>= repair_level`` at a session at most ``max_length``
    sessions after ``sessions[start]``, followed by at least one observed session.
    """
    limit = sessions[start] + max_length
    for j in range(start + 1, len(scores)):
        if sessions[j] > limit:
            break
        if scores[j] >= repair_level:
            return j if j < len(scores) - 1 else None
    return None


def quadratic_u(
    sessions: np.ndarray, scores: np.ndarray, *, u_alpha: float = 0.05, u_margin: float = 0.1
) -> tuple[bool, float]:
    """Is the series convex with an interior minimum? Returns ``(is_u, turning_session)``."""
    from scipy import stats

    t = np.asarray(sessions, dtype=float)
    y = np.asarray(scores, dtype=float)
    n = len(y)
    if n < 4 or np.ptp(t) == 0:
        return False, float("nan")
    centre = t.mean()
    scale = max(np.ptp(t) / 2.0, 1.0)
    z = (t - centre) / scale
    design = np.column_stack([np.ones(n), z, z**2])
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < 3:
        return False, float("nan")
    resid = y - design @ coef
    dof = n - 3
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    c = coef[2]
    if c <= 0:
        return False, float("nan")
    se = float(np.sqrt(cov[2, 2]))
    p_value = 0.0 if se == 0 else 2.0 * stats.t.sf(abs(c) / se, dof)
    vertex = centre - scale * coef[1] / (2.0 * c)
    lo, hi = t.min(), t.max()
    margin = u_margin * (hi - lo)
    interior = (lo + margin) < vertex < (hi - margin)
    return bool(p_value < u_alpha and interior), float(vertex)


def label_dyad(
    sessions: np.ndarray,
    scores: np.ndarray,
    rupture: Rupture | None,
    *,
    max_length: int,
    u_alpha: float = 0.05,
    u_margin: float = 0.1,
    trend_scores: np.ndarray | None = None,
) -> tuple[str, dict[str, float]]:
    """Label one dyad (see the module docstring) and return its change points.

    ``scores`` are what the repair rule and ``depth`` use (the raw scores for
    ``rules``, the fitted segment levels for ``pelt``); ``trend_scores`` (default
    ``scores``) are what the quadratic check uses.
    """
    if rupture is not None:
        i = rupture.index
        j = find_repair(sessions, scores, i, rupture.repair_level, max_length)
        end = j if j is not None else len(scores)
        depth = float(rupture.pre_level - np.mean(scores[i:end]))
        cps = {"rupture_session": float(sessions[i]), "depth": depth}
        if j is not None:
            cps["repair_session"] = float(sessions[j])
            return "v_shaped", cps
        return "unrepaired_rupture", cps
    raw = scores if trend_scores is None else trend_scores
    is_u, vertex = quadratic_u(sessions, raw, u_alpha=u_alpha, u_margin=u_margin)
    if is_u:
        return "u_shaped", {"turning_session": vertex}
    return "linear", {}


def build_result(
    labels: dict[Hashable, str],
    changepoints: dict[Hashable, dict[str, float]],
    *,
    method: str,
    settings: dict[str, Any],
    diagnostics: dict[str, Any] | None = None,
) -> ClassificationResult:
    """One-hot :class:`ClassificationResult` with point change points (low = high = point)."""
    index = pd.Index(list(labels), name="dyad")
    cp = pd.DataFrame(np.nan, index=index, columns=list(CHANGEPOINT_COLUMNS))
    for dyad, row in changepoints.items():
        for key, value in row.items():
            cp.loc[dyad, key] = value
    for point, low, high in (
        ("rupture_session", "rupture_low", "rupture_high"),
        ("repair_session", "repair_low", "repair_high"),
        ("depth", "depth_low", "depth_high"),
    ):
        cp[low] = cp[point]
        cp[high] = cp[point]
    lab = pd.Series([labels[d] for d in index], index=index, name="label")
    return ClassificationResult.from_labels(
        lab,
        method=method,
        changepoints=cp,
        settings=settings,
        diagnostics=diagnostics or {},
        exact=False,
    )
