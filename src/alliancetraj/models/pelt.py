"""``classify(method="pelt")``: change points by PELT (``ruptures``), then labelling.

What a Python user would do today: run the PELT search of the ``ruptures``
library (Killick, Fearnhead & Eckley 2012) on each dyad's series and read the
classes off the segments. Needs ``pip install alliancetraj[baselines]``.

Per dyad (sessions ``t``, scores ``y``, ``n`` observed sessions):

1. **Trend.** By default the segmentation runs on the scores themselves
   (``r = y``). With ``detrend=True`` a Theil–Sen line is subtracted first, so that
   a steady rise or fall is not cut into steps (but a long unrepaired drop is then
   partly absorbed by the trend, so it is not the default).
2. **Noise level.** ``sigma = 1.4826 * median(|diff(r)|) / sqrt(2)``, a robust
   estimate that level shifts hardly move (falls back to ``std(diff(r)) / sqrt(2)``
   when the median is 0; a constant series is ``linear``).
3. **PELT.** ``ruptures.Pelt(model=cost, min_size=min_size, jump=1)`` (``jump=1``:
   every session is a candidate; ``min_size=1`` lets a one-session rupture be its
   own segment) with the penalty rule ``penalty="bic"``:
   ``pen = 2 * log(n) * sigma^2`` (the Schwarz/BIC penalty for a change in mean
   with the ``l2`` cost, which sums squared residuals); ``penalty="mbic"``:
   ``3 * log(n) * sigma^2``; a number ``c``: ``c * sigma^2``.
4. **Rupture.** The first segment boundary where the segment mean drops by at
   least ``k * sigma`` is the rupture (its first session is ``rupture_session``;
   the pre-drop level is the mean of the segment before it). It is repaired at the
   first later session whose *segment level* undoes at least half of the drop
   (``level >= pre_level - drop / 2``) within ``max_length`` sessions, with at
   least one observed session after it. **Gradual, not sudden:** the rupture is
   discarded when a quadratic in ``t`` (3 parameters) has a lower BIC than the
   segmentation (``m`` segment means and ``m - 1`` change points), i.e. when the
   segments only staircase a smooth curve.
5. **Labels** by the shared rules of :mod:`alliancetraj.models._labelling`:
   repaired -> ``v_shaped``, not repaired -> ``unrepaired_rupture``; no rupture ->
   ``u_shaped`` when a quadratic fit of the scores is convex with an interior
   minimum (t-test at ``u_alpha``), else ``linear``. ``depth`` is the drop of the
   segment levels below the pre-rupture trend.

Change points are points without uncertainty (``*_low = *_high``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_bool, check_choice, check_number
from ..results import ClassificationResult
from ._labelling import Rupture, build_result, label_dyad

__all__ = ["MIN_SESSIONS", "classify_pelt"]

#: Shortest series classified.
MIN_SESSIONS = 4

_FUNC = "classify_pelt"
_COSTS = ("l2", "l1", "normal", "rbf")


def _import_ruptures():
    try:
        import ruptures
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "classify(method='pelt') needs the 'ruptures' package: install it with "
            "`pip install alliancetraj[baselines]` (or `pip install ruptures`)."
        ) from exc
    return ruptures


def _noise_sd(r: np.ndarray) -> float:
    d = np.diff(r)
    if len(d) == 0:
        return 0.0
    sigma = 1.4826 * float(np.median(np.abs(d))) / np.sqrt(2.0)
    if sigma == 0.0:
        sigma = float(np.std(d)) / np.sqrt(2.0)
    return sigma


def _bic(rss: float, n: int, n_params: int) -> float:
    # a floor at the smallest normal float, not at 1e-12: the comparison must not
    # depend on the units of the scores
    return n * np.log(max(rss, np.finfo(float).tiny) / n) + n_params * np.log(n)


def _quadratic_wins(t: np.ndarray, r: np.ndarray, fitted: np.ndarray, n_segments: int) -> bool:
    """Does a smooth quadratic explain the series better (BIC) than the segments?"""
    n = len(r)
    if n < 4:
        return False
    z = (t - t.mean()) / max(np.ptp(t), 1)
    design = np.column_stack([np.ones(n), z, z**2])
    coef = np.linalg.lstsq(design, r, rcond=None)[0]
    rss_quad = float(np.sum((r - design @ coef) ** 2))
    rss_seg = float(np.sum((r - fitted) ** 2))
    return _bic(rss_quad, n, 3) < _bic(rss_seg, n, 2 * n_segments - 1)


def _segment_levels(r: np.ndarray, bkps: list[int]) -> tuple[np.ndarray, list[int]]:
    starts = [0, *bkps[:-1]]
    fitted = np.empty_like(r)
    for a, b in zip(starts, bkps, strict=True):
        fitted[a:b] = r[a:b].mean()
    return fitted, starts


def classify_pelt(
    frame: pd.DataFrame,
    *,
    penalty: str | float = "bic",
    cost: str = "l2",
    min_size: int = 1,
    detrend: bool = False,
    k: float = 1.0,
    max_length: int = 4,
    u_alpha: float = 0.05,
) -> ClassificationResult:
    """Classify trajectories from PELT change points (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The validated canonical frame that :func:`alliancetraj.classify` passes.
    penalty : {"bic", "mbic"} or float, default "bic"
        Penalty rule, in units of the dyad's noise variance ``sigma^2``:
        ``2 log n``, ``3 log n`` or the given number.
    cost : {"l2", "l1", "normal", "rbf"}, default "l2"
        The ``ruptures`` cost model.
    min_size : int, default 1
        Shortest segment (sessions).
    detrend : bool, default False
        Subtract a Theil–Sen trend before segmenting.
    k : float, default 1
        Smallest drop between segment levels that counts as a rupture, in ``sigma``.
    max_length : int, default 4
        A repair must come at most this many sessions after the rupture's first
        session.
    u_alpha : float, default 0.05
        Level of the test of the quadratic term for ``u_shaped``.

    Returns
    -------
    ClassificationResult
        One-hot probabilities, ``exact=False``; change points without uncertainty.
        ``diagnostics["n_changepoints"]`` counts PELT's change points per dyad.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=30, seed=4)
    >>> res = at.classify(cohort.sessions, method="pelt")
    >>> res.method, len(res)
    ('pelt', 30)
    >>> res.settings["penalty"]
    'bic'
    """
    rpt = _import_ruptures()
    from scipy import stats

    if isinstance(penalty, str):
        penalty = check_choice(_FUNC, "penalty", penalty, ("bic", "mbic"))
    else:
        penalty = check_number(_FUNC, "penalty", penalty, low=0, low_open=True)
    cost = check_choice(_FUNC, "cost", cost, _COSTS)
    min_size = check_number(_FUNC, "min_size", min_size, low=1, integer=True)
    detrend = check_bool(_FUNC, "detrend", detrend)
    k = check_number(_FUNC, "k", k, low=0, low_open=True)
    max_length = check_number(_FUNC, "max_length", max_length, low=1, integer=True)
    u_alpha = check_number(_FUNC, "u_alpha", u_alpha, low=0, high=1, low_open=True)

    labels: dict[Any, str] = {}
    cps: dict[Any, dict[str, float]] = {}
    n_cp: dict[str, int] = {}
    for dyad, g in frame.groupby("dyad", sort=False):
        t = g["session"].to_numpy(np.int64)
        y = g["score"].to_numpy(float)
        n = len(y)
        if detrend and np.ptp(t) > 0:
            slope, intercept = stats.theilslopes(y, t)[:2]
            r = y - (intercept + slope * t)
        else:
            r = y - np.median(y)
        sigma = _noise_sd(r)
        rupture = None
        fitted = r
        if sigma > 0 and n >= 2 * min_size:
            if penalty == "bic":
                factor = 2.0 * np.log(n)
            elif penalty == "mbic":
                factor = 3.0 * np.log(n)
            else:
                factor = float(penalty)
            pen = factor * sigma**2
            algo = rpt.Pelt(model=cost, min_size=min_size, jump=1).fit(r.reshape(-1, 1))
            bkps = algo.predict(pen=pen)
            n_cp[str(dyad)] = len(bkps) - 1
            fitted, starts = _segment_levels(r, bkps)
            for a in range(1, len(starts)):
                before, after = fitted[starts[a] - 1], fitted[starts[a]]
                drop = before - after
                if drop >= k * sigma:
                    rupture = Rupture(
                        index=starts[a],
                        pre_level=float(before),
                        repair_level=float(before - drop / 2.0),
                    )
                    break
            if rupture is not None and _quadratic_wins(t, r, fitted, len(bkps)):
                rupture, fitted = None, r
        labels[dyad], cps[dyad] = label_dyad(
            t, fitted, rupture, max_length=max_length, u_alpha=u_alpha, trend_scores=y
        )
    settings = {
        "penalty": penalty,
        "cost": cost,
        "min_size": min_size,
        "detrend": bool(detrend),
        "k": k,
        "max_length": max_length,
        "u_alpha": u_alpha,
        "jump": 1,
    }
    return build_result(
        labels, cps, method="pelt", settings=settings, diagnostics={"n_changepoints": n_cp}
    )
