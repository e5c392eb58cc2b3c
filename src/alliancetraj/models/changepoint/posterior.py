"""The exact posterior of one dyad, for plots and inspection.

Every configuration's conjugate update is written with explicit matrices
(:func:`~alliancetraj.models.changepoint.evidence.config_posterior`); the trajectory
band is a Monte Carlo average over draws from the exact posterior.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ...errors import DataError
from ...io import validate_sessions
from .evidence import config_posterior
from .spec import CLASSES, Hyperparameters, Settings, admissible, as_hyperparameters, design_on

__all__ = ["dyad_posterior"]


def _one_dyad(sessions) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(sessions, pd.DataFrame):
        cols = list(sessions.columns)
        frame = sessions if "dyad" in cols else sessions.assign(dyad="dyad")
        frame = validate_sessions(frame)
        if frame["dyad"].nunique() != 1:
            raise DataError(
                "dyad_posterior takes the sessions of one dyad; got "
                f"{frame['dyad'].nunique()} dyads. Select one with frame[frame.dyad == id]."
            )
        return frame["session"].to_numpy(float), frame["score"].to_numpy(float)
    t, y = sessions
    return np.asarray(t, dtype=float), np.asarray(y, dtype=float)


def dyad_posterior(
    sessions,
    hyperparameters: Hyperparameters | Mapping[str, Any],
    cls: str | None = None,
    *,
    n_draws: int = 2000,
    level: float = 0.9,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    seed: int | np.random.Generator | None = None,
) -> dict[str, Any]:
    """The exact posterior of one dyad, for plots and inspection.

    Parameters
    ----------
    sessions : DataFrame (columns session, score; optionally dyad) or (t, y) arrays
    hyperparameters : ExactHyperparameters or mapping
        Usually ``result.hyperparameters`` of an exact classification.
    cls : str, optional
        Class to condition on (default: the most probable class).
    n_draws : int, default 2000
        Monte Carlo draws from the exact posterior for the trajectory band.
    level : float, default 0.9
        Level of the pointwise band.
    seed : int or Generator, optional
        Seed of the Monte Carlo band (the probabilities are exact).

    Returns
    -------
    dict
        ``probabilities`` (Series over CLASSES), ``class``, ``configurations``
        (DataFrame: the configuration's sessions and posterior probability under
        ``class``), ``trajectory`` (DataFrame indexed by session on a fine grid with
        ``mean``, ``low``, ``high``), ``log_evidence`` (Series over CLASSES).
    """
    h = as_hyperparameters(hyperparameters)
    t, y = _one_dyad(sessions)
    settings = Settings(max_rupture_length=max_rupture_length, u_margin=u_margin)
    configs = admissible(t, settings)
    logev = {}
    per_config = {}
    for c in CLASSES:
        rows = [(cfg, *config_posterior(t, y, h, c, cfg)) for cfg in configs[c]]
        per_config[c] = rows
        if rows:
            le = np.array([r[1] for r in rows])
            logev[c] = float(special.logsumexp(le) - math.log(len(le)))
        else:
            logev[c] = -np.inf
    L = np.array([logev[c] for c in CLASSES])
    logpost = L + np.log(np.asarray(h.class_probs) + 1e-300)
    probs = np.exp(logpost - special.logsumexp(logpost))
    if cls is None:
        cls = CLASSES[int(np.argmax(probs))]
    if cls not in CLASSES:
        raise ValueError(f"Unknown class {cls!r}. Valid classes: {list(CLASSES)}.")
    rows = per_config[cls]
    le = np.array([r[1] for r in rows])
    w = np.exp(le - special.logsumexp(le))
    if cls == "u_shaped":
        cfg_frame = pd.DataFrame({"dip_start": [r[0][0] for r in rows],
                                  "turning_session": [r[0][1] for r in rows],
                                  "dip_end": [r[0][2] for r in rows], "probability": w})
    elif cls == "v_shaped":
        cfg_frame = pd.DataFrame({"rupture_session": [r[0][0] for r in rows],
                                  "repair_session": [r[0][1] for r in rows], "probability": w})
    elif cls == "unrepaired_rupture":
        cfg_frame = pd.DataFrame({"rupture_session": [r[0] for r in rows], "probability": w})
    else:
        cfg_frame = pd.DataFrame({"probability": w})

    rng = np.random.default_rng(seed)
    grid = np.round(np.arange(t[0], t[-1] + 1e-9, 0.25), 6)
    picks = rng.choice(len(rows), size=n_draws, p=w)
    curves = np.empty((n_draws, len(grid)))
    for k in np.unique(picks):
        idx = np.flatnonzero(picks == k)
        cfg, _, mn, Vn, an, bn = rows[k]
        sig2 = bn / rng.gamma(an, 1.0, size=len(idx))
        p = len(mn)
        if cls == "linear":
            z = rng.standard_normal((len(idx), p)) @ np.linalg.cholesky(Vn).T
            theta = mn + z * np.sqrt(sig2)[:, None]
        else:
            from scipy.stats import truncnorm

            sd_last = np.sqrt(sig2 * Vn[-1, -1])
            a = (h.size_floor * np.sqrt(sig2) - mn[-1]) / sd_last   # c > kappa sigma
            last = mn[-1] + sd_last * truncnorm.rvs(a, np.inf, size=len(idx), random_state=rng)
            # the others given the last: Gaussian conditional
            cov_ol = Vn[:-1, -1] / Vn[-1, -1]
            cond_cov = Vn[:-1, :-1] - np.outer(Vn[:-1, -1], Vn[:-1, -1]) / Vn[-1, -1]
            chol = np.linalg.cholesky(cond_cov)
            z = rng.standard_normal((len(idx), p - 1)) @ chol.T
            others = mn[:-1] + np.outer(last - mn[-1], cov_ol) + z * np.sqrt(sig2)[:, None]
            theta = np.column_stack([others, last])
        Xg = design_on(grid, t, cls, cfg)
        curves[idx] = theta @ Xg.T
    alpha = (1 - level) / 2
    traj = pd.DataFrame(
        {"mean": curves.mean(axis=0), "low": np.quantile(curves, alpha, axis=0),
         "high": np.quantile(curves, 1 - alpha, axis=0)},
        index=pd.Index(grid, name="session"),
    )
    return {
        "probabilities": pd.Series(probs, index=list(CLASSES)),
        "log_evidence": pd.Series(L, index=list(CLASSES)),
        "class": cls,
        "configurations": cfg_frame,
        "trajectory": traj,
    }
