"""Prior predictive: dyads drawn from the change-point model itself (calibration checks).

Unlike :func:`alliancetraj.simulate_cohort` (which mimics real alliance data), these
data follow the stated model exactly, so posterior class probabilities must be
calibrated on them. Two samplers share the spec's configurations and designs and
differ in how they draw the constrained coefficient (a truncated normal given the
noise variance, or the joint prior restricted by rejection): both are the same
truncated prior; each keeps its own random stream so that seeded results stay put.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .spec import (
    CLASSES,
    DEFAULT_SIZE_FLOOR,
    MIN_SESSIONS,
    K,
    Settings,
    admissible,
    as_hyperparameters,
    design,
    extra_column,
    prior_moments,
)

__all__ = ["sample_on_sessions", "sample_prior_predictive"]


def sample_prior_predictive(
    hyperparameters: Any,
    n_dyads: int,
    n_sessions: int | tuple[int, int] = 12,
    *,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    seed: int | np.random.Generator | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw dyads from the engine's own model (for calibration checks).

    Returns ``(sessions, truth)``: long sessions (dyad, session, score) and, per
    dyad, ``true_class``, ``rupture_session``, ``repair_session``, ``depth``,
    ``turning_session``, ``noise_sd``. Unlike :func:`alliancetraj.simulate_cohort`
    (which mimics real alliance data), these data follow the stated model exactly,
    so the engine's probabilities must be calibrated on them.
    """
    from scipy.stats import truncnorm

    h = as_hyperparameters(hyperparameters)
    rng = np.random.default_rng(seed)
    settings = Settings(max_rupture_length=max_rupture_length, u_margin=u_margin)
    if isinstance(n_sessions, (int, np.integer)):
        lo = hi = int(n_sessions)
    else:
        lo, hi = (int(v) for v in n_sessions)
    if lo < MIN_SESSIONS:
        raise ValueError(f"n_sessions must be >= {MIN_SESSIONS}. Got {n_sessions!r} instead.")

    recs, truth = [], []
    pi = np.asarray(h.class_probs)
    for i in range(int(n_dyads)):
        n = int(rng.integers(lo, hi + 1))
        t = np.arange(1.0, n + 1.0)
        k = int(rng.choice(K, p=pi))
        cls = CLASSES[k]
        configs = admissible(t, settings)[cls]
        cfg = configs[int(rng.integers(len(configs)))]
        sig2 = h.noise_scale / rng.gamma(h.noise_shape, 1.0)
        m, v = prior_moments(h, cls)
        sd = np.sqrt(sig2 * v)
        theta = m + sd * rng.standard_normal(len(m))
        if cls != "linear":
            a = (h.size_floor * math.sqrt(sig2) - m[-1]) / sd[-1]   # c > kappa sigma
            theta[-1] = m[-1] + sd[-1] * truncnorm.rvs(a, np.inf, random_state=rng)
        y = design(t, cls, cfg) @ theta + math.sqrt(sig2) * rng.standard_normal(n)
        dyad = f"p{i:05d}"
        recs.append(pd.DataFrame({"dyad": dyad, "session": t.astype(np.int64), "score": y}))
        row = {"dyad": dyad, "true_class": cls, "noise_sd": math.sqrt(sig2),
               "rupture_session": np.nan, "repair_session": np.nan, "depth": np.nan,
               "turning_session": np.nan}
        if cls == "v_shaped":
            row.update(rupture_session=cfg[0], repair_session=cfg[1], depth=theta[-1])
        elif cls == "unrepaired_rupture":
            row.update(rupture_session=cfg, depth=theta[-1])
        elif cls == "u_shaped":
            row.update(turning_session=cfg[1])
        truth.append(row)
    sessions = pd.concat(recs, ignore_index=True)
    truth_df = pd.DataFrame(truth).set_index("dyad")
    truth_df["true_class"] = pd.Categorical(truth_df["true_class"], categories=list(CLASSES))
    return sessions, truth_df


def sample_on_sessions(
    sessions,
    hyperparameters: dict[str, Any],
    *,
    seed: int | np.random.Generator | None = None,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    id_prefix: str = "p",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate dyads observed at given sessions from the per-dyad models.

    Parameters
    ----------
    sessions : sequence of arrays
        Observed session numbers of each dyad (sorted, at least 4 each).
    hyperparameters : dict
        The exact engine's hyperparameters, original score scale.
    seed : int or Generator
    max_rupture_length, u_margin : as in the models.

    Returns
    -------
    (sessions, truth)
        Long session frame (dyad, session, score) and one row per dyad: true_class,
        noise_var, level, slope, coefficient (depth or amplitude), rupture_session,
        repair_session, depth, turning_session.

    Notes
    -----
    Class ~ ``class_probs`` (among the classes with an admissible configuration);
    configuration uniform over the admissible ones; ``(theta, sigma2)`` from the
    normal-inverse-gamma prior restricted to a depth/amplitude above ``size_floor``
    residual SDs by rejection (the joint truncation of the models).
    """
    rng = np.random.default_rng(seed)
    h = hyperparameters
    settings = Settings(max_rupture_length=max_rupture_length, u_margin=u_margin)
    pi = np.asarray(h["class_probs"], dtype=float)
    pi = pi / pi.sum()
    kappa = float(h.get("size_floor", DEFAULT_SIZE_FLOOR))
    rows, truth = [], []
    for i, t in enumerate(sessions):
        t = np.asarray(t, dtype=float)
        configs = admissible(t, settings)
        p = np.array([pi[k] if configs[c] else 0.0 for k, c in enumerate(CLASSES)])
        k = int(rng.choice(len(CLASSES), p=p / p.sum()))
        cls = CLASSES[k]
        cfg = configs[cls][int(rng.integers(len(configs[cls])))]
        x = t - 1.0
        m, v = (list(a) for a in prior_moments(h, cls))
        for _ in range(100000):
            s2 = 1.0 / rng.gamma(h["noise_shape"], 1.0 / h["noise_scale"])
            theta = rng.normal(m, np.sqrt(s2 * np.asarray(v)))
            if k == 0 or theta[-1] > kappa * math.sqrt(s2):
                break
        if k == 0:
            mean = theta[0] + theta[1] * x
        else:
            mean = theta[0] + theta[1] * x + theta[2] * extra_column(t, t, cls, cfg)
        y = mean + rng.normal(0.0, math.sqrt(s2), size=t.size)
        dyad = f"{id_prefix}{i:05d}"
        rows.append(pd.DataFrame({"dyad": dyad, "session": t.astype(np.int64), "score": y}))
        truth.append({
            "dyad": dyad, "true_class": cls, "noise_var": s2, "level": theta[0],
            "slope": theta[1],
            "coefficient": theta[-1] if k else np.nan,
            "rupture_session": cfg[0] if k == 2 else (cfg if k == 3 else np.nan),
            "repair_session": cfg[1] if k == 2 else np.nan,
            "depth": theta[2] if k >= 2 else np.nan,
            "turning_session": cfg[1] if k == 1 else np.nan,
        })
    return pd.concat(rows, ignore_index=True), pd.DataFrame(truth).set_index("dyad")
