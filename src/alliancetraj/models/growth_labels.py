"""``classify(method="growth")``: label each dyad from its growth-model trajectory.

A quadratic (or piecewise) :class:`~alliancetraj.models.growth.GrowthModel` with
random intercept, slope and curvature is fitted to the cohort; each dyad's predicted
(BLUP) trajectory is labelled by the rules of :func:`_rule_labels` (a convex dip,
narrow or wide; a concave drop not recovered by the last session), and the labels'
uncertainty comes from draws of the BLUPs' conditional distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import parameter_error
from ..results import CLASSES, ClassificationResult
from .growth import GrowthModel

__all__ = ["MIN_SESSIONS", "classify_growth"]

#: Shortest series :func:`classify_growth` labels (a quadratic needs >= 4 points to
#: leave any residual information).
MIN_SESSIONS = 4


def _rule_labels(a, b, c, t0, t1, min_change, max_dip_width):
    """Apply the labelling rules to trajectories ``a + b t + c t^2`` on ``[t0, t1]``.

    Arrays broadcast; returns integer class codes (index into CLASSES) and the
    vertex ``v`` and the half-depth half-width ``h`` used for change points.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(c != 0, -b / (2 * c), np.nan)
    f0 = a + b * t0 + c * t0**2
    f1 = a + b * t1 + c * t1**2
    fv = a + b * v + c * v**2
    inside = (v > t0) & (v < t1)
    bend = np.abs(c) * (t1 - t0) ** 2 / 4  # largest gap between the curve and its chord
    curved = bend >= min_change / 2
    dip_depth = np.minimum(f0, f1) - fv
    rise = np.maximum(f0, f1) - fv
    convex_dip = curved & (c > 0) & inside & (rise >= min_change) & (dip_depth >= min_change / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.sqrt(np.abs(dip_depth) / (2 * np.abs(c)))
    narrow = 2 * half <= max_dip_width
    fmax = np.where((c < 0) & inside, fv, np.maximum(f0, f1))
    drop = fmax - f1
    unrepaired = curved & (c < 0) & (drop >= min_change) & (np.where(inside, v, t0) < t1)
    code = np.zeros(np.broadcast(a, b, c, t0).shape, dtype=int)
    code = np.where(convex_dip & ~narrow, 1, code)
    code = np.where(convex_dip & narrow, 2, code)
    code = np.where(unrepaired & ~convex_dip, 3, code)
    return code, v, half, dip_depth, drop


def _half_drop_session(a, b, c, v, t0, t1, drop):
    """Where a concave curve has lost half of ``drop`` below its maximum on ``[t0, t1]``."""
    peak = np.where((v > t0) & (v < t1), v, t0)
    fpeak = a + b * peak + c * peak**2
    target = fpeak - drop / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        disc = np.sqrt(np.clip(b**2 - 4 * c * (a - target), 0, None))
        r1 = (-b + disc) / (2 * c)
        r2 = (-b - disc) / (2 * c)
    # the crossing after the peak: the larger root for c < 0 is (-b - disc) / (2c)
    return np.where(r2 >= peak, r2, r1)


def classify_growth(
    frame: pd.DataFrame,
    *,
    time: str = "quadratic",
    random: str = "curvature",
    reml: bool = True,
    min_change: float | None = None,
    max_dip_width: float = 3.0,
    n_draws: int = 200,
    seed: int | np.random.Generator | None = 0,
    polish: bool = False,
) -> ClassificationResult:
    """Label each dyad from its predicted growth trajectory (``classify(method="growth")``).

    A quadratic growth model with random intercept, slope and curvature is fitted
    to all dyads; each dyad's predicted trajectory ``f(t) = a + b t + c t^2`` on its
    observed span ``[t0, t1]`` is then labelled by these rules, with ``delta =
    min_change``:

    1. ``linear`` unless the curve bends: ``|c| (t1 - t0)^2 / 4 >= delta / 2`` (the
       largest gap between curve and chord).
    2. A convex dip (``c > 0``, vertex ``v`` strictly inside the span, one end at
       least ``delta`` and the other at least ``delta / 2`` above ``f(v)``) is
       ``v_shaped`` when its width at half depth (of the lower end) is at most
       ``max_dip_width`` sessions, else ``u_shaped``.
    3. A concave curve (``c < 0``) that ends at least ``delta`` below its maximum
       over the span is an ``unrepaired_rupture``.

    Probabilities are a documented approximation: the share of ``n_draws`` draws
    from each dyad's conditional (empirical-Bayes) distribution of its random
    effects, fixed effects and variances held at their estimates, that the rules
    give each class (``n_draws=0`` gives one-hot probabilities of the predicted
    trajectory). A smooth quadratic cannot follow a sudden drop of a few sessions,
    so brief ruptures are mostly missed or called ``u_shaped``: this is the
    classic approach and its known weakness.

    Parameters
    ----------
    frame : DataFrame
        Validated canonical frame (``dyad``, ``session``, ``score``).
    time, random, reml
        Passed to :class:`GrowthModel`.
    min_change : float, optional
        Smallest change (score units) that counts; default the model's residual SD.
    max_dip_width : float, default 3
        Widest dip, in sessions at half depth, still called ``v_shaped``.
    n_draws : int, default 200
        Draws per dyad for the probabilities (0: one-hot).
    seed : int, Generator or None, default 0
        Randomness of the draws (the default makes results reproducible).
    polish : bool, default False
        Passed to :class:`GrowthModel` (statsmodels standard errors are not needed
        for labelling).

    Returns
    -------
    ClassificationResult
        ``changepoints``: ``turning_session`` (vertex) for ``u_shaped``; rupture and
        repair sessions (dip edges at half depth) and depth for ``v_shaped``;
        rupture session (half-depth point after the maximum) and depth for
        ``unrepaired_rupture``; point values (no intervals). ``extras["growth_model"]``
        holds the fitted model.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=80, seed=3)
    >>> res = at.classify(cohort.sessions, method="growth")
    >>> res.method, list(res.probabilities.columns) == list(at.CLASSES)
    ('growth', True)
    """
    if time not in ("quadratic", "piecewise"):
        raise parameter_error("classify_growth", "time", "'quadratic' or 'piecewise'", time)
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 0:
        raise parameter_error("classify_growth", "n_draws", "an int >= 0", n_draws)
    if not (np.isfinite(max_dip_width) and max_dip_width > 0):
        raise parameter_error("classify_growth", "max_dip_width", "a number > 0", max_dip_width)
    if time == "piecewise":
        raise ValueError(
            "classify_growth labels quadratic trajectories; time='piecewise' is available "
            "through GrowthModel directly."
        )
    gm = GrowthModel(time=time, random=random, reml=reml, polish=polish)
    gm.fit(frame, dyad="dyad", session="session", score="score")
    delta = gm.residual_sd_ if min_change is None else float(min_change)
    if not (np.isfinite(delta) and delta > 0):
        raise parameter_error("classify_growth", "min_change", "a number > 0", min_change)

    d = gm._design_
    n_rows = np.diff(np.append(d.starts, len(d.y)))
    t0 = d.time[d.starts]
    t1 = d.time[d.starts + n_rows - 1]
    beta = gm.fixed_effects_.to_numpy()[:3]
    coef = np.zeros((len(d.dyads), 3))
    q = len(d.re_idx)
    coef[:, :] = beta
    coef[:, :q] += gm.random_effects_.to_numpy()
    a, b, c = coef.T
    code, v, half, dip_depth, drop = _rule_labels(a, b, c, t0, t1, delta, max_dip_width)

    if n_draws > 0:
        rng = np.random.default_rng(seed)
        cov = gm.random_effects_conditional_cov_
        w, vec = np.linalg.eigh(cov)
        root = vec * np.sqrt(np.clip(w, 0, None))[:, None, :]
        z = rng.standard_normal((n_draws, len(d.dyads), q))
        draws = np.repeat(coef[None], n_draws, axis=0)
        draws[..., :q] += np.einsum("gij,kgj->kgi", root, z)
        dcode, *_ = _rule_labels(
            draws[..., 0], draws[..., 1], draws[..., 2], t0, t1, delta, max_dip_width
        )
        probs = np.stack([(dcode == k).mean(axis=0) for k in range(len(CLASSES))], axis=1)
    else:
        probs = np.eye(len(CLASSES))[code]
    label = probs.argmax(axis=1)

    cp = pd.DataFrame(
        np.nan,
        index=d.dyads,
        columns=[
            "rupture_session",
            "rupture_low",
            "rupture_high",
            "repair_session",
            "repair_low",
            "repair_high",
            "depth",
            "depth_low",
            "depth_high",
            "turning_session",
        ],
    )
    is_u, is_v, is_un = label == 1, label == 2, label == 3
    ok = np.isfinite(v) & (c > 0)
    cp.loc[is_u & ok, "turning_session"] = v[is_u & ok]
    sel = is_v & ok
    cp.loc[sel, "rupture_session"] = np.clip(np.round(v - half), t0, t1)[sel]
    cp.loc[sel, "repair_session"] = np.clip(np.round(v + half), t0, t1)[sel]
    cp.loc[sel, "depth"] = dip_depth[sel]
    sel = is_un & (c < 0)
    after = _half_drop_session(a, b, c, v, t0, t1, drop)
    cp.loc[sel, "rupture_session"] = np.clip(np.round(after), t0, t1)[sel]
    cp.loc[sel, "depth"] = drop[sel]
    for stem, col in (
        ("rupture", "rupture_session"),
        ("repair", "repair_session"),
        ("depth", "depth"),
    ):
        cp[f"{stem}_low"] = cp[col]
        cp[f"{stem}_high"] = cp[col]

    vc = gm.variance_components()["estimate"]
    return ClassificationResult.from_probabilities(
        probs,
        index=d.dyads,
        method="growth",
        changepoints=cp,
        settings={
            "time": time,
            "random": random,
            "reml": bool(reml),
            "min_change": delta,
            "max_dip_width": float(max_dip_width),
            "n_draws": int(n_draws),
            "seed": seed if isinstance(seed, (int, np.integer)) else None,
            "probabilities": "empirical-Bayes draws" if n_draws else "one-hot",
        },
        hyperparameters={
            "fixed_effects": gm.fixed_effects_.to_dict(),
            "variance_components": vc.to_dict(),
        },
        diagnostics={**gm.diagnostics_, "loglik": gm.loglik_},
        exact=False,
        extras={"growth_model": gm},
    )
