"""Simulated studies beyond a classification cohort, each with its known truth.

:func:`simulate_mediation` draws exposure -> alliance level -> recovery data with a
known indirect effect (for :mod:`alliancetraj.mediation`);
:func:`simulate_alliance_symptoms` draws paired session-level alliance and symptom
series with known within- and between-dyad effects (for
:mod:`alliancetraj.models.alliance_symptom`). Like :mod:`alliancetraj.simulate`,
this module knows nothing of the models.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ._validation import check_int, check_number, check_range, check_seed

__all__ = ["AllianceSymptoms", "MediationData", "simulate_alliance_symptoms",
           "simulate_mediation"]


class MediationData(NamedTuple):
    """Simulated mediation data: ``sessions`` (long), ``data`` (one row per dyad), ``truth``."""

    sessions: pd.DataFrame
    data: pd.DataFrame
    truth: dict


def simulate_mediation(
    n_dyads: int = 72,
    *,
    seed: int | np.random.Generator | None = None,
    a: float = 0.3,
    b: float = 0.5,
    direct: float = 0.1,
    n_sessions: int | tuple[int, int] = (8, 12),
    level: float = 3.6,
    level_sd: float = 0.4,
    slope_sd: float = 0.02,
    noise: float = 0.25,
    outcome_sd: float = 1.0,
    scale: tuple[float, float] | None = (1.0, 5.0),
    id_prefix: str = "d",
) -> MediationData:
    """Simulate exposure -> alliance -> recovery data with a known indirect effect.

    Modelled on Moran et al. (2014): providers' recovery-promoting strategies
    (``strategies``, standardised) raise the dyad's alliance level, which raises
    personal recovery (``recovery``, outcome SD units). Per dyad ``i``::

        alliance level  L_i = level + a * x_i + level_sd * e_i
        session score   y_it = L_i + s_i (t - mean t) + noise * u_it   (s_i ~ N(0, slope_sd))
        recovery        r_i = direct * x_i + b * (L_i - level) + outcome_sd * v_i

    so the indirect effect of one unit of exposure is ``a * b``. The mean of the
    observed scores measures ``L_i`` with a small error (``noise^2 / n_sessions``),
    which attenuates ``b`` slightly; scores are clipped to ``scale``.

    Parameters
    ----------
    n_dyads : int, default 72 (the size of Moran et al.'s sample)
    seed : int, numpy Generator or None
    a : float, default 0.3
        Effect of one SD of exposure on the alliance level (score units).
    b : float, default 0.5
        Effect of one score unit of alliance on recovery (outcome units).
    direct : float, default 0.1
        Direct effect of exposure on recovery.
    n_sessions : int or (min, max), default (8, 12)
    level, level_sd, slope_sd, noise, outcome_sd : float
    scale : (low, high) or None, default (1, 5)
    id_prefix : str, default "d"

    Returns
    -------
    MediationData
        ``sessions``: dyad, session, score. ``data``: index dyad; ``strategies``,
        ``alliance_level`` (true ``L_i``), ``recovery``. ``truth``: dict with ``a``,
        ``b``, ``direct``, ``indirect`` (= a * b) and ``total``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> sim = at.simulate_mediation(n_dyads=10, seed=0)
    >>> round(sim.truth["indirect"], 3)
    0.15
    """
    func = "simulate_mediation"
    n_dyads = check_int(func, "n_dyads", n_dyads, low=1)
    n_lo, n_hi = check_range(func, "n_sessions", n_sessions, low=2, integer=True)
    for name, val in (("level_sd", level_sd), ("slope_sd", slope_sd), ("noise", noise),
                      ("outcome_sd", outcome_sd)):
        check_number(func, name, val, low=0)
    rng = check_seed(func, seed)
    n = int(n_dyads)
    x = rng.standard_normal(n)
    lvl = level + a * x + level_sd * rng.standard_normal(n)
    slp = slope_sd * rng.standard_normal(n)
    length = rng.integers(n_lo, n_hi + 1, size=n)
    ids = np.array([f"{id_prefix}{i:05d}" for i in range(n)], dtype=object)
    rows = np.repeat(np.arange(n), length)
    t = np.concatenate([np.arange(1, k + 1) for k in length]).astype(float)
    centre = (length[rows] + 1) / 2
    y = lvl[rows] + slp[rows] * (t - centre) + noise * rng.standard_normal(len(rows))
    if scale is not None:
        y = np.clip(y, scale[0], scale[1])
    sessions = pd.DataFrame({"dyad": ids[rows], "session": t.astype(np.int64), "score": y})
    recovery = direct * x + b * (lvl - level) + outcome_sd * rng.standard_normal(n)
    data = pd.DataFrame({"strategies": x, "alliance_level": lvl, "recovery": recovery},
                        index=pd.Index(ids, name="dyad"))
    truth = {"a": float(a), "b": float(b), "direct": float(direct),
             "indirect": float(a * b), "total": float(direct + a * b)}
    return MediationData(sessions=sessions, data=data, truth=truth)


class AllianceSymptoms(NamedTuple):
    """Paired alliance and symptom series: ``sessions`` (long), ``truth`` (per dyad), ``effects``."""

    sessions: pd.DataFrame
    truth: pd.DataFrame
    effects: dict


def simulate_alliance_symptoms(
    n_dyads: int = 200,
    *,
    seed: int | np.random.Generator | None = None,
    n_sessions: int = 12,
    within_effect: float = -1.5,
    between_effect: float = -3.0,
    time_effect: float = -0.4,
    alliance_mean: float = 3.8,
    alliance_trait_sd: float = 0.5,
    alliance_state_sd: float = 0.4,
    alliance_ar1: float = 0.3,
    symptom_level: float = 15.0,
    symptom_level_sd: float = 3.0,
    noise: float = 2.0,
    id_prefix: str = "d",
) -> AllianceSymptoms:
    """Simulate session-level alliance and symptom series with known within/between effects.

    Alliance ``A_it = alliance_mean + trait_i + state_it`` (trait ~ N(0, trait_sd²), state
    an AR(1) series with SD ``alliance_state_sd``). Symptoms at session ``t >= 2``::

        S_it = symptom_level + v_i + time_effect * t
               + between_effect * (m_i - alliance_mean) + within_effect * (A_i,t-1 - m_i) + e_it

    with ``m_i`` the dyad's mean of its lagged alliance ratings (sessions 1 .. n-1),
    the person-mean decomposition of Falkenström et al. (2013), so that a model with
    that decomposition is correctly specified. Session 1's symptoms have no lag term.
    Scores are neither clipped nor rounded.

    Parameters
    ----------
    n_dyads : int, default 200
    seed : int, numpy Generator or None
        The only source of randomness.
    n_sessions : int, default 12
        Sessions per dyad (>= 3).
    within_effect, between_effect : float
        Effect of one alliance point above the dyad's own mean (state-like) and of
        one point of mean alliance (trait-like) on next-session symptoms.
    time_effect : float
        Symptom change per session.
    alliance_mean, alliance_trait_sd, alliance_state_sd, alliance_ar1 : float
    symptom_level, symptom_level_sd, noise : float
        Mean and between-dyad SD of the symptom level; residual SD.
    id_prefix : str, default "d"

    Returns
    -------
    AllianceSymptoms
        ``sessions``: dyad, session, alliance, symptoms. ``truth``: index dyad;
        trait_alliance, person_mean, symptom_level. ``effects``: within, between,
        time, intercept (of the model with raw person means).

    Examples
    --------
    >>> import alliancetraj as at
    >>> sim = at.simulate_alliance_symptoms(n_dyads=5, seed=1)
    >>> list(sim.sessions.columns)
    ['dyad', 'session', 'alliance', 'symptoms']
    """
    func = "simulate_alliance_symptoms"
    n_dyads = check_int(func, "n_dyads", n_dyads, low=1)
    n_sessions = check_int(func, "n_sessions", n_sessions, low=3)
    for name, val in (("alliance_trait_sd", alliance_trait_sd),
                      ("alliance_state_sd", alliance_state_sd),
                      ("symptom_level_sd", symptom_level_sd), ("noise", noise)):
        check_number(func, name, val, low=0)
    check_number(func, "alliance_ar1", alliance_ar1, low=0, high=1, high_open=True)
    rng = check_seed(func, seed)
    n, T = int(n_dyads), int(n_sessions)
    trait = alliance_trait_sd * rng.standard_normal(n)
    z = rng.standard_normal((n, T))
    state = np.empty((n, T))
    state[:, 0] = z[:, 0]
    innov = np.sqrt(1 - alliance_ar1**2)
    for j in range(1, T):
        state[:, j] = alliance_ar1 * state[:, j - 1] + innov * z[:, j]
    alliance = alliance_mean + trait[:, None] + alliance_state_sd * state
    person_mean = alliance[:, :-1].mean(axis=1)
    level = symptom_level + symptom_level_sd * rng.standard_normal(n)
    t = np.arange(1, T + 1, dtype=float)[None, :]
    lagged = np.concatenate([person_mean[:, None], alliance[:, :-1]], axis=1)
    symptoms = (level[:, None] + time_effect * t
                + between_effect * (person_mean[:, None] - alliance_mean)
                + within_effect * (lagged - person_mean[:, None])
                + noise * rng.standard_normal((n, T)))
    ids = np.array([f"{id_prefix}{i:05d}" for i in range(n)], dtype=object)
    sessions = pd.DataFrame({
        "dyad": np.repeat(ids, T),
        "session": np.tile(np.arange(1, T + 1, dtype=np.int64), n),
        "alliance": alliance.ravel(),
        "symptoms": symptoms.ravel(),
    })
    truth = pd.DataFrame({"trait_alliance": alliance_mean + trait, "person_mean": person_mean,
                          "symptom_level": level}, index=pd.Index(ids, name="dyad"))
    effects = {"within": float(within_effect), "between": float(between_effect),
               "time": float(time_effect),
               "intercept": float(symptom_level - between_effect * alliance_mean)}
    return AllianceSymptoms(sessions=sessions, truth=truth, effects=effects)
