"""Simulated cohorts with known truth.

:func:`simulate_cohort` draws client–provider dyads of each trajectory class in
:data:`alliancetraj.CLASSES` and returns the session scores, an outcome table and
the truth (class, change points, depth, slope, noise level) so that every model
can be checked by how well it recovers what was put in. This module knows
nothing of the models.

Trajectory shapes (session numbers ``t = 1 .. n``; ``a`` level, ``b`` slope)

``linear``
    ``a + b t``.
``u_shaped``
    ``a + c (t - v)^2`` with its minimum ``v`` (``turning_session``) inside the
    middle of treatment and ``c > 0`` set so that the higher end lies ``amplitude``
    above the minimum: gradual high–low–high.
``v_shaped``
    ``a + b t - depth`` for ``rupture_session <= t < repair_session`` and the trend
    ``a + b t`` elsewhere: a sudden drop lasting ``rupture_length`` sessions, then
    repair back to the pre-rupture trend, with at least two sessions after repair.
``unrepaired_rupture``
    ``a + b t - depth`` from ``rupture_session`` to the last session (at least two
    sessions in the drop).

Every rupture has at least two sessions before it. Residuals are added with a
per-dyad standard deviation, optionally AR(1) and/or Student-t; scores are then
clipped to the scale (the ceiling) and rounded to the instrument's resolution.

The study simulators (:func:`simulate_mediation`, :func:`simulate_alliance_symptoms`)
live in :mod:`alliancetraj.simulate_studies` and are reachable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_int, check_number, check_range, check_seed, parameter_error
from .results import CLASSES

# the study simulators live in simulate_studies; reachable here as before
from .simulate_studies import (
    AllianceSymptoms,
    MediationData,
    simulate_alliance_symptoms,
    simulate_mediation,
)

__all__ = ["DEFAULT_BINARY_EFFECTS", "DEFAULT_OUTCOME_EFFECTS", "AllianceSymptoms", "Cohort",
           "MediationData", "simulate_alliance_symptoms", "simulate_cohort", "simulate_mediation"]

#: Default effect of each class on the continuous recovery score, in outcome SD
#: units, relative to ``linear``: repaired ruptures best (Stiles et al. 2004;
#: Eubanks et al. 2018), unrepaired ruptures worst (McLaughlin et al. 2014).
DEFAULT_OUTCOME_EFFECTS: dict[str, float] = {
    "linear": 0.0,
    "u_shaped": 0.3,
    "v_shaped": 0.5,
    "unrepaired_rupture": -0.5,
}
#: Default log-odds effects on reliable improvement, relative to ``linear``.
DEFAULT_BINARY_EFFECTS: dict[str, float] = {
    "linear": 0.0,
    "u_shaped": 0.4,
    "v_shaped": 0.8,
    "unrepaired_rupture": -0.8,
}


class Cohort(NamedTuple):
    """A simulated cohort: ``sessions`` (long), ``outcomes`` and ``truth`` (one row per dyad)."""

    sessions: pd.DataFrame
    outcomes: pd.DataFrame
    truth: pd.DataFrame


def _class_probs(class_mix) -> np.ndarray:
    if class_mix is None:
        return np.array([0.4, 0.2, 0.2, 0.2])
    if isinstance(class_mix, Mapping):
        unknown = sorted(set(class_mix) - set(CLASSES))
        if unknown:
            raise ValueError(
                f"Unknown class name(s) {unknown} in 'class_mix'. Valid names: {list(CLASSES)}."
            )
        p = np.array([float(class_mix.get(c, 0.0)) for c in CLASSES])
    else:
        p = np.asarray(class_mix, dtype=float)
        if p.shape != (len(CLASSES),):
            raise ValueError(
                f"The 'class_mix' parameter of simulate_cohort must be a mapping class -> share or "
                f"{len(CLASSES)} shares in the order {list(CLASSES)}. Got {class_mix!r} instead."
            )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(
            f"The 'class_mix' parameter must hold non-negative shares with a positive sum. "
            f"Got {class_mix!r}."
        )
    return p / p.sum()


def _effects(name: str, given: Mapping[str, float] | None,
             default: Mapping[str, float]) -> np.ndarray:
    eff = dict(default)
    if given is not None:
        unknown = sorted(set(given) - set(CLASSES))
        if unknown:
            raise ValueError(f"Unknown class name(s) {unknown} in '{name}'. "
                             f"Valid names: {list(CLASSES)}.")
        eff.update({k: float(v) for k, v in given.items()})
    return np.array([eff[c] for c in CLASSES])


def simulate_cohort(
    n_dyads: int = 400,
    *,
    seed: int | np.random.Generator | None = None,
    class_mix: Mapping[str, float] | Sequence[float] | None = None,
    n_sessions: int | tuple[int, int] = (8, 20),
    noise: float = 0.25,
    noise_spread: float = 0.25,
    level: float = 3.6,
    level_sd: float = 0.45,
    slope: float = 0.02,
    slope_sd: float = 0.02,
    depth: float | tuple[float, float] = (0.6, 1.2),
    rupture_length: int | tuple[int, int] = (1, 3),
    amplitude: float | tuple[float, float] = (0.6, 1.2),
    scale: tuple[float, float] | None = (1.0, 5.0),
    resolution: float | None = 1 / 12,
    ar1: float = 0.0,
    df: float | None = None,
    missing: float = 0.0,
    dropout: float = 0.0,
    outcome_effects: Mapping[str, float] | None = None,
    binary_effects: Mapping[str, float] | None = None,
    severity_effect: float = -0.4,
    binary_severity_effect: float = -0.5,
    binary_intercept: float = 0.0,
    outcome_sd: float = 1.0,
    id_prefix: str = "d",
) -> Cohort:
    """Simulate a cohort of dyads with known trajectory classes and outcomes.

    Parameters
    ----------
    n_dyads : int, default 400
        Number of client–provider dyads (>= 1).
    seed : int, numpy Generator or None
        The only source of randomness: the same seed gives the same cohort.
    class_mix : mapping or 4 shares, default ``(0.4, 0.2, 0.2, 0.2)``
        Expected share of each class, in the order of :data:`CLASSES`
        (``linear, u_shaped, v_shaped, unrepaired_rupture``).
    n_sessions : int or (min, max), default (8, 20)
        Planned sessions per dyad, drawn uniformly from the range (>= 6).
    noise : float, default 0.25
        Median residual standard deviation (score units).
    noise_spread : float, default 0.25
        SD of the log residual SD across dyads (0 gives every dyad ``noise``).
    level, level_sd : float, default 3.6, 0.45
        Mean and SD of the alliance level at session 1 (WAI-SR item mean, 1-5).
    slope, slope_sd : float, default 0.02, 0.02
        Mean and SD of the per-session slope of the underlying trend.
    depth : float or (min, max), default (0.6, 1.2)
        Rupture depth (score units), uniform over the range.
    rupture_length : int or (min, max), default (1, 3)
        Sessions a repaired rupture lasts before repair (``v_shaped``).
    amplitude : float or (min, max), default (0.6, 1.2)
        Height of the higher end above the minimum for ``u_shaped``.
    scale : (low, high) or None, default (1, 5)
        Scores are clipped to this range (ceiling and floor effects).
    resolution : float or None, default 1/12
        Scores are rounded to multiples of this (WAI-SR: mean of 12 items).
    ar1 : float, default 0
        AR(1) coefficient of the residuals, in [0, 1).
    df : float or None, default None
        Student-t degrees of freedom of the residuals (> 2, scaled to the same SD);
        None gives Gaussian residuals.
    missing : float, default 0
        Probability that a session is missing (never the first session, a rupture's
        first session or its repair session).
    dropout : float, default 0
        Probability that a dyad ends early; its length is then uniform between 6
        and the planned length. Change points are placed within the observed span.
    outcome_effects, binary_effects : mapping class -> effect, optional
        Effects on the recovery score (SD units) and on the log-odds of reliable
        improvement, relative to ``linear``; defaults
        :data:`DEFAULT_OUTCOME_EFFECTS` and :data:`DEFAULT_BINARY_EFFECTS`.
    severity_effect, binary_severity_effect : float
        Effects of standardised baseline severity on the two outcomes.
    binary_intercept : float, default 0
        Log-odds of reliable improvement for a ``linear`` dyad of average severity.
    outcome_sd : float, default 1
        Residual SD of the recovery score.
    id_prefix : str, default "d"
        Dyad ids are ``f"{id_prefix}{i:05d}"``.

    Returns
    -------
    Cohort
        ``sessions``: columns dyad, session, score (long, sorted).
        ``outcomes``: index dyad; baseline_severity, recovery, reliable_improvement.
        ``truth``: index dyad; true_class, n_sessions, level, slope, noise_sd,
        rupture_session, repair_session, depth, turning_session, amplitude, curvature
        (NaN where a class has no such quantity). ``rupture_session`` is the first
        session of the drop; ``repair_session`` the first session back on the trend.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=8, seed=1)
    >>> list(cohort.sessions.columns)
    ['dyad', 'session', 'score']
    >>> bool(cohort.truth["true_class"].isin(at.CLASSES).all())
    True
    """
    func = "simulate_cohort"
    n_dyads = check_int(func, "n_dyads", n_dyads, low=1)
    rng = check_seed(func, seed)
    probs = _class_probs(class_mix)
    n_lo, n_hi = check_range(func, "n_sessions", n_sessions, low=6, integer=True)
    d_lo, d_hi = check_range(func, "depth", depth, low=0)
    l_lo, l_hi = check_range(func, "rupture_length", rupture_length, low=1, integer=True)
    a_lo, a_hi = check_range(func, "amplitude", amplitude, low=0)
    for name, val in (("noise", noise), ("noise_spread", noise_spread), ("level_sd", level_sd),
                      ("slope_sd", slope_sd), ("outcome_sd", outcome_sd)):
        check_number(func, name, val, low=0)
    for name, val in (("ar1", ar1), ("missing", missing), ("dropout", dropout)):
        check_number(func, name, val, low=0, high=1, high_open=True)
    check_number(func, "df", df, low=2, low_open=True, allow_none=True)
    if scale is not None:
        scale = (float(scale[0]), float(scale[1]))
        if not scale[0] < scale[1]:
            raise parameter_error(func, "scale", "a (low, high) pair with low < high or None",
                                  scale)
    check_number(func, "resolution", resolution, low=0, low_open=True, allow_none=True)
    out_eff = _effects("outcome_effects", outcome_effects, DEFAULT_OUTCOME_EFFECTS)
    bin_eff = _effects("binary_effects", binary_effects, DEFAULT_BINARY_EFFECTS)

    n = int(n_dyads)
    cls = rng.choice(len(CLASSES), size=n, p=probs)
    planned = rng.integers(n_lo, n_hi + 1, size=n)
    drops = rng.random(n) < dropout
    short = rng.integers(6, planned + 1)
    length = np.where(drops, np.minimum(short, planned), planned)
    tmax = int(length.max())
    t = np.arange(1, tmax + 1, dtype=float)[None, :]
    in_series = t <= length[:, None]

    lvl = level + level_sd * rng.standard_normal(n)
    slp = slope + slope_sd * rng.standard_normal(n)
    sig = noise * np.exp(noise_spread * rng.standard_normal(n))
    dep = rng.uniform(d_lo, d_hi, size=n)
    rlen = rng.integers(l_lo, l_hi + 1, size=n)
    amp = rng.uniform(a_lo, a_hi, size=n)
    u_pos = rng.uniform(0.3, 0.7, size=n)
    r_unif = rng.random(n)

    is_u = cls == 1
    is_v = cls == 2
    is_un = cls == 3
    # rupture placement: >= 2 sessions before; v: >= 2 sessions after repair;
    # unrepaired: >= 2 sessions in the drop
    rlen = np.minimum(rlen, np.maximum(length - 4, 1))
    v_last = length - rlen - 1  # last admissible rupture session for v
    un_last = length - 1
    last = np.where(is_v, v_last, un_last)
    rupture = 3 + np.floor(r_unif * (last - 3 + 1)).astype(int)
    repair = rupture + rlen

    mean = lvl[:, None] + slp[:, None] * (t - 1)
    drop_v = (t >= rupture[:, None]) & (t < repair[:, None])
    drop_un = t >= rupture[:, None]
    mean = mean - dep[:, None] * np.where(is_v[:, None], drop_v, 0)
    mean = mean - dep[:, None] * np.where(is_un[:, None], drop_un, 0)
    vertex = 1 + u_pos * (length - 1)
    half = np.maximum(vertex - 1, length - vertex)
    curv = amp / half**2
    u_mean = lvl[:, None] - 0.5 * amp[:, None] + curv[:, None] * (t - vertex[:, None]) ** 2
    mean = np.where(is_u[:, None], u_mean, mean)

    z = rng.standard_normal((n, tmax))
    if df is not None:
        chi = rng.chisquare(df, size=(n, tmax))
        z = z / np.sqrt(chi / df) * np.sqrt((df - 2) / df)
    if ar1 > 0:
        e = np.empty_like(z)
        e[:, 0] = z[:, 0]
        scale_innov = np.sqrt(1 - ar1**2)
        for j in range(1, tmax):
            e[:, j] = ar1 * e[:, j - 1] + scale_innov * z[:, j]
        z = e
    y = mean + sig[:, None] * z
    if scale is not None:
        y = np.clip(y, scale[0], scale[1])
    if resolution is not None:
        y = np.round(y / resolution) * resolution
        if scale is not None:
            y = np.clip(y, scale[0], scale[1])

    observed = in_series.copy()
    if missing > 0:
        gone = rng.random((n, tmax)) < missing
        gone[:, 0] = False
        rup = is_v | is_un
        protect = (t == rupture[:, None]) & rup[:, None]
        protect |= (t == repair[:, None]) & is_v[:, None]
        observed &= ~(gone & ~protect)

    ids = np.array([f"{id_prefix}{i:05d}" for i in range(n)], dtype=object)
    rows, cols = np.nonzero(observed)
    sessions = pd.DataFrame(
        {"dyad": ids[rows], "session": (cols + 1).astype(np.int64), "score": y[rows, cols]}
    )

    index = pd.Index(ids, name="dyad")
    nan = np.nan
    truth = pd.DataFrame(
        {
            "true_class": pd.Categorical.from_codes(cls, categories=list(CLASSES)),
            "n_sessions": observed.sum(axis=1),
            "last_session": length,
            "level": lvl,
            "slope": np.where(is_u, nan, slp),
            "noise_sd": sig,
            "rupture_session": np.where(is_v | is_un, rupture, nan),
            "repair_session": np.where(is_v, repair, nan),
            "depth": np.where(is_v | is_un, dep, nan),
            "turning_session": np.where(is_u, vertex, nan),
            "amplitude": np.where(is_u, amp, nan),
            "curvature": np.where(is_u, curv, nan),
        },
        index=index,
    )

    severity = rng.standard_normal(n)
    recovery = out_eff[cls] + severity_effect * severity + outcome_sd * rng.standard_normal(n)
    logit = binary_intercept + bin_eff[cls] + binary_severity_effect * severity
    improved = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    outcomes = pd.DataFrame(
        {
            "baseline_severity": severity,
            "recovery": recovery,
            "reliable_improvement": improved.astype(np.int64),
        },
        index=index,
    )
    return Cohort(sessions=sessions, outcomes=outcomes, truth=truth)
