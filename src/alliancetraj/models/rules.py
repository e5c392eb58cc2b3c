"""``classify(method="rules")``: rupture detection by rules from the literature.

A transparent baseline: the rules researchers apply by hand to session-by-session
alliance ratings. Two detectors find ruptures; the shared labelling of
:mod:`alliancetraj.models._labelling` turns them into classes.

``rule="deflection"`` (default): Stiles-type deflection
    (Stiles et al. 2004; Strauss et al. 2006; the crisis–repair sequences of
    BMC Med Res Methodol 2012;12:10). For each dyad, the *threshold* is ``k``
    standard deviations, where the SD is

    * ``threshold="within"``: the dyad's own SD of its scores (sample SD over
      all its sessions), the classic Stiles-type rule; on a nearly flat series
      any small wobble is then "at least 1 SD", so it over-detects;
    * ``threshold="between"``: the SD of all scores of the cohort (between-person
      variation);
    * ``threshold="stricter"`` (default): the larger of the two, as the 2012
      crisis–repair paper proposes.

    Session ``i`` (with at least two observed sessions before it) is a rupture when
    its score lies at least the threshold below the *pre-drop level*, the mean of
    the (up to) ``window`` preceding observed sessions, and strictly below it.
    The rupture is **repaired** when a later score returns to the pre-drop level,
    within half the threshold (``score >= pre_level - threshold / 2``), at most
    ``max_length`` sessions after the rupture. ``k = 1`` and ``k = 2`` are the
    documented variants (``k=1`` default).
``rule="sudden"``: sudden losses of alliance by Tang & DeRubeis (1999)
    The criteria of :func:`alliancetraj.sudden_changes` with
    ``direction="decrease"`` (criterion 1 needs ``cutoff=`` or ``reliability=``;
    ``pct``, ``criteria`` and ``alpha`` as there). The rupture starts at the
    post-change session ``n + 1``; the pre-drop level is ``x[n]``; it is
    **repaired** when a later score undoes at least half of the drop
    (``score >= x[n+1] + magnitude / 2``, Tang & DeRubeis' reversal rule) at most
    ``max_length`` sessions after the rupture. Criterion 3 asks the three sessions
    after the change to stay low, so a dip of one or two sessions is rarely found
    (by design: Tang & DeRubeis wanted stable changes); ``criteria=(1, 2)``
    relaxes this.

Several ruptures in one dyad: the first rupture that is not repaired makes the
dyad ``unrepaired_rupture``; otherwise the first repaired rupture makes it
``v_shaped`` (a repair also needs at least one observed session after it; see
:mod:`~alliancetraj.models._labelling`). Without a rupture, a convex quadratic
with an interior minimum (t-test of the quadratic term at ``u_alpha``) gives
``u_shaped``, anything else ``linear``. The change points are the rupture's first
session, the repair session and the depth (pre-drop level minus the mean of the
drop sessions), without uncertainty; ``turning_session`` is the quadratic's
minimum for ``u_shaped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_number
from ..results import ClassificationResult
from ._labelling import Rupture, build_result, find_repair, label_dyad

__all__ = ["MIN_SESSIONS", "classify_rules"]

#: Shortest series classified (two sessions before a drop, the drop, one after).
MIN_SESSIONS = 4

_FUNC = "classify_rules"


def _deflection_ruptures(
    t: np.ndarray, y: np.ndarray, threshold: float, window: int, max_length: int
) -> list[tuple[Rupture, bool]]:
    out: list[tuple[Rupture, bool]] = []
    i = 2
    while i < len(y):
        pre = float(np.mean(y[max(0, i - window) : i]))
        drop = pre - y[i]
        if drop > 0 and drop >= threshold:
            rupture = Rupture(index=i, pre_level=pre, repair_level=pre - threshold / 2.0)
            j = find_repair(t, y, i, rupture.repair_level, max_length)
            out.append((rupture, j is not None))
            if j is None:
                break
            i = j + 1
            continue
        i += 1
    return out


def _choose(ruptures: list[tuple[Rupture, bool]]) -> Rupture | None:
    for rupture, repaired in ruptures:
        if not repaired:
            return rupture
    return ruptures[0][0] if ruptures else None


def classify_rules(
    frame: pd.DataFrame,
    *,
    rule: str = "deflection",
    k: float = 1.0,
    threshold: str = "stricter",
    window: int = 3,
    max_length: int = 4,
    cutoff: float | None = None,
    reliability: float | None = None,
    pct: float = 0.25,
    criteria: Sequence[int] = (1, 2, 3),
    alpha: float = 0.05,
    u_alpha: float = 0.05,
) -> ClassificationResult:
    """Classify trajectories by literature rupture rules (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The validated canonical frame (``dyad``, ``session``, ``score``) that
        :func:`alliancetraj.classify` passes.
    rule : {"deflection", "sudden"}, default "deflection"
        Stiles-type deflection, or Tang & DeRubeis sudden losses.
    k : float, default 1
        Deflection: the threshold in standard deviations (1 and 2 are the
        documented variants).
    threshold : {"within", "between", "stricter"}, default "stricter"
        Deflection: which SD the threshold uses.
    window : int, default 3
        Deflection: number of preceding sessions whose mean is the pre-drop level.
    max_length : int, default 4
        A repair must come at most this many sessions after the rupture's first
        session.
    cutoff : float, optional
        Sudden: criterion 1 cutoff in score units.
    reliability : float, optional
        Sudden: criterion 1 uses the reliable change value instead of ``cutoff``.
    pct, criteria, alpha
        Sudden: as in :func:`alliancetraj.sudden_changes`.
    u_alpha : float, default 0.05
        Level of the test of the quadratic term for ``u_shaped``.

    Returns
    -------
    ClassificationResult
        One-hot probabilities, ``exact=False``; change points without uncertainty.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=40, seed=3)
    >>> res = at.classify(cohort.sessions, method="rules", k=1)
    >>> res.method, len(res)
    ('rules', 40)
    >>> bool(res.labels.isin(at.CLASSES).all())
    True
    """
    rule = check_choice(_FUNC, "rule", rule, ("deflection", "sudden"))
    threshold = check_choice(_FUNC, "threshold", threshold, ("within", "between", "stricter"))
    k = check_number(_FUNC, "k", k, low=0, low_open=True)
    window = check_number(_FUNC, "window", window, low=1, integer=True)
    max_length = check_number(_FUNC, "max_length", max_length, low=1, integer=True)
    u_alpha = check_number(_FUNC, "u_alpha", u_alpha, low=0, high=1, low_open=True)
    settings: dict[str, Any] = {"rule": rule, "max_length": max_length, "u_alpha": u_alpha}

    groups = {
        d: (g["session"].to_numpy(np.int64), g["score"].to_numpy(float))
        for d, g in frame.groupby("dyad", sort=False)
    }
    chosen: dict[Any, Rupture | None] = {}

    if rule == "deflection":
        between = float(np.std(frame["score"].to_numpy(float), ddof=1)) if len(frame) > 1 else 0.0
        settings.update({"k": k, "threshold": threshold, "window": window, "between_sd": between})
        for dyad, (t, y) in groups.items():
            within = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
            sd = {"within": within, "between": between, "stricter": max(within, between)}[threshold]
            thr = k * sd
            chosen[dyad] = _choose(_deflection_ruptures(t, y, thr, window, max_length))
    else:
        from ..io import to_panel
        from ..sudden import check_criteria, detect, rci_cutoff

        if cutoff is None and reliability is None and 1 in set(criteria):
            raise ValueError(
                "The 'cutoff' parameter of classify_rules must be a number >= 0 when "
                "rule='sudden' applies criterion 1 (or give reliability=...). Got None instead."
            )
        reliability = check_number(
            _FUNC, "reliability", reliability, low=0, high=1, allow_none=True
        )
        panel = to_panel(frame)
        x = np.where(panel.mask, panel.scores, np.nan)
        if reliability is not None:
            first = x[:, 0][~np.isnan(x[:, 0])]
            cutoff = rci_cutoff(float(np.std(first, ddof=1)), reliability)
        elif cutoff is not None:
            cutoff = check_number(_FUNC, "cutoff", cutoff, low=0)
        pct = check_number(_FUNC, "pct", pct, low=0)
        alpha = check_number(_FUNC, "alpha", alpha, low=0, high=1, low_open=True)
        crit = check_criteria(_FUNC, criteria)
        settings.update(
            {
                "cutoff": cutoff,
                "reliability": reliability,
                "pct": pct,
                "criteria": crit,
                "alpha": alpha,
            }
        )
        found = detect(x, cutoff=cutoff, direction="decrease", criteria=crit, pct=pct, alpha=alpha)
        per_dyad: dict[Any, list[tuple[Rupture, bool]]] = {d: [] for d in groups}
        for row, p, _mag, _rev, rev_value in found:
            dyad = panel.dyads[row]
            t, y = groups[dyad]
            i = int(np.searchsorted(t, panel.grid[p + 1]))
            rupture = Rupture(index=i, pre_level=float(x[row, p]), repair_level=rev_value)
            j = find_repair(t, y, i, rev_value, max_length)
            per_dyad[dyad].append((rupture, j is not None))
        chosen = {d: _choose(r) for d, r in per_dyad.items()}

    labels: dict[Any, str] = {}
    cps: dict[Any, dict[str, float]] = {}
    for dyad, (t, y) in groups.items():
        labels[dyad], cps[dyad] = label_dyad(
            t, y, chosen.get(dyad), max_length=max_length, u_alpha=u_alpha
        )
    return build_result(labels, cps, method="rules", settings=settings)
