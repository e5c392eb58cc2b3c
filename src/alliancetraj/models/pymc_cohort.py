r"""The PyMC cohort model: its data and its graph, built from the change-point spec.

:func:`prepare_cohort` standardises the scores and precomputes the model's constant
inputs (the spec's sufficient statistics, :mod:`alliancetraj.models.pymc_design`;
the noise shape, :func:`estimate_noise_shape`); :func:`build_cohort_model` builds the
``pm.Model`` (hyperpriors, the class evidence as the compiled kernel's PyTensor Op,
the class mixture, the optional outcome sub-model). Sampling and the result are in
:mod:`alliancetraj.models.pymc_mixture` (the model is described there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..errors import DataError, format_ids
from ..results import CLASSES
from . import pymc_design as pdz
from .changepoint.spec import DEFAULT_SIZE_FLOOR, NAMES, SIZE_PRIOR_MEAN, K, standardisation

__all__ = ["FIXED_BY_MODEL", "HYPERPARAMETERS", "RANDOM", "SCORE_MOMENTS", "CohortData", "build_cohort_model",
           "estimate_noise_shape", "prepare_cohort"]

#: Population hyperparameters (the spec's names); ``noise_shape`` is always fixed.
HYPERPARAMETERS = NAMES
RANDOM = tuple(n for n in HYPERPARAMETERS if n not in ("noise_shape", "size_floor"))
_LOG_SCALE = ("noise_scale", "level_var", "slope_var", "depth_var", "amplitude_var")
_MEANS = ("level_mean", "slope_mean", "depth_mean", "amplitude_mean")
#: Hyperparameters the model holds fixed unless the user fixes them otherwise: the size
#: priors' means (see ``changepoint.spec.SIZE_PRIOR_MEAN``; standardised = original: 0).
FIXED_BY_MODEL = {"depth_mean": SIZE_PRIOR_MEAN, "amplitude_mean": SIZE_PRIOR_MEAN}
#: The score-dependent moments (everything else depends on the session pattern only).
SCORE_MOMENTS = ("syy", "sy", "sxy", "u_yd", "v_yd", "un_yd")


# ============================================================================== cohort data
@dataclass
class CohortData:
    """Everything the model builder needs, as arrays (standardised scores).

    Attributes
    ----------
    stats : pymc_design.CohortStats
    loc, sd : float
        Score standardisation ``(score - loc) / sd``.
    noise_shape : float
    span : float
        Median observed span ``t_n - t_1`` (sets the scale of the slope priors).
    noise_var : float
        Typical within-dyad residual variance (standardised; centres the noise prior).
    outcome : dict or None
        ``y`` (D,), ``observed`` (D,) bool, ``X`` (D, p) standardised covariates,
        ``loc``, ``sd``, ``name``, ``covariates``.
    size_floor : float
        The smallest depth or amplitude in residual SDs (the spec's ``size_floor``).
    """

    stats: pdz.CohortStats
    loc: float
    sd: float
    noise_shape: float
    span: float
    noise_var: float
    outcome: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    size_floor: float = DEFAULT_SIZE_FLOOR

    @property
    def dyads(self) -> pd.Index:
        return self.stats.dyads


def estimate_noise_shape(stats: pdz.CohortStats) -> tuple[float, float]:
    """Maximum-likelihood ``(noise_shape, noise_scale)`` from per-dyad residual sums of squares.

    For each dyad the smallest least-squares residual sum of squares ``R`` over all
    classes and configurations is taken with ``k = n - p`` degrees of freedom; with
    ``R | s2 ~ s2 chi2_k`` and ``s2 ~ InvGamma(a, b)``, ``R / 2`` is beta-prime
    distributed and ``(a, b)`` maximise its likelihood. Standardised units.
    """
    flat = {"noise_shape": 1.0, "noise_scale": 1e-12, "level_mean": 0.0, "level_var": 1e8,
            "slope_mean": 0.0, "slope_var": 1e8, "depth_mean": 0.0, "depth_var": 1e8,
            "amplitude_mean": 0.0, "amplitude_var": 1e8}
    ev = pdz.config_log_evidence(stats, flat)
    best = []
    for key, p in (("linear", 2), ("u_shaped", 3), ("v_shaped", 3), ("unrepaired_rupture", 3)):
        rss = 2.0 * ev["post_bn"][key]
        if rss.ndim == 1:
            rss = rss[:, None]
            ok = np.ones_like(rss, dtype=bool)
        else:
            ok = {"u_shaped": stats.u_ok, "v_shaped": stats.v_ok,
                  "unrepaired_rupture": stats.un_ok}[key]
        r = np.where(ok, rss, np.inf).min(1)
        best.append((r, stats.n - p))
    R = np.minimum.reduce([b[0] for b in best])
    k = np.where(R == best[0][0], best[0][1], stats.n - 3).astype(float)
    keep = np.isfinite(R) & (R > 0) & (k >= 1)
    R, k = R[keep], k[keep]
    if len(R) < 3:
        return 3.0, 3.0 * float(np.median(R / np.maximum(k, 1))) if len(R) else 3.0

    def nll(p):
        a, b = np.exp(p)
        return -np.sum(a * np.log(b) + special.gammaln(a + k / 2) - special.gammaln(a)
                       - special.gammaln(k / 2) + (k / 2 - 1) * np.log(R / 2)
                       - (a + k / 2) * np.log(b + R / 2))

    s2 = float(np.median(R / k))
    fit = optimize.minimize(nll, x0=np.log([3.0, 2.0 * s2]), method="L-BFGS-B",
                            bounds=[(math.log(1.0), math.log(200.0)), (-20, 10)])
    a, b = np.exp(fit.x)
    return float(a), float(b)


def prepare_cohort(
    frame: pd.DataFrame,
    *,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    noise_shape: float | None = None,
    outcomes: pd.DataFrame | None = None,
    outcome: str | None = None,
    covariates: Sequence[str] | None = None,
    size_floor: float = DEFAULT_SIZE_FLOOR,
) -> CohortData:
    """Standardise the scores and precompute the model's constant inputs."""
    loc, sd = standardisation(frame)
    stats = pdz.cohort_stats(frame, loc=loc, sd=sd, max_rupture_length=max_rupture_length,
                             u_margin=u_margin)
    a_hat, b_hat = estimate_noise_shape(stats)
    if noise_shape is None:
        noise_shape = a_hat
    first = frame.groupby("dyad", sort=False)["session"].agg(["min", "max"])
    span = float(np.median(first["max"] - first["min"]))
    data = CohortData(stats=stats, loc=loc, sd=sd, noise_shape=float(noise_shape),
                      span=max(span, 1.0), noise_var=b_hat / max(a_hat - 1.0, 0.5),
                      size_floor=float(size_floor))
    if outcomes is not None or outcome is not None:
        data.outcome = _outcome_arrays(stats.dyads, outcomes, outcome, covariates)
    return data


def _outcome_arrays(dyads: pd.Index, outcomes, outcome, covariates) -> dict[str, Any]:
    if outcomes is None or outcome is None:
        raise ValueError(
            "The outcome sub-model needs both 'outcomes' (a DataFrame indexed by dyad) and "
            "'outcome' (its column name)."
        )
    if not isinstance(outcomes, pd.DataFrame):
        raise DataError(f"'outcomes' must be a pandas DataFrame indexed by dyad; got "
                        f"{type(outcomes).__name__}.")
    covariates = list(covariates or [])
    missing = [c for c in [outcome, *covariates] if c not in outcomes.columns]
    if missing:
        raise DataError(
            f"Column(s) {missing} are not in the outcomes table. Columns present: "
            f"{format_ids([str(c) for c in outcomes.columns], limit=12)}."
        )
    if outcomes.index.has_duplicates:
        dup = outcomes.index[outcomes.index.duplicated()].unique()
        raise DataError(f"The outcomes table has duplicated dyad ids: {format_ids(list(dup))}. "
                        "Keep one row per dyad.")
    tab = outcomes.reindex(dyads)
    y = pd.to_numeric(tab[outcome], errors="coerce").to_numpy(float)
    X = np.column_stack([pd.to_numeric(tab[c], errors="coerce").to_numpy(float)
                         for c in covariates]) if covariates else np.zeros((len(dyads), 0))
    observed = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    if observed.sum() < 5:
        raise DataError(
            f"Only {int(observed.sum())} dyad(s) have a finite {outcome!r} (and covariates); the "
            "outcome sub-model needs at least 5. Check that the outcomes are indexed by dyad id."
        )
    y_loc, y_sd = float(np.mean(y[observed])), float(np.std(y[observed])) or 1.0
    x_loc = X[observed].mean(0) if X.shape[1] else np.zeros(0)
    x_sd = X[observed].std(0) if X.shape[1] else np.zeros(0)
    x_sd = np.where(x_sd > 0, x_sd, 1.0)
    return {
        "name": str(outcome), "covariates": covariates, "observed": observed,
        "y": np.where(observed, (y - y_loc) / y_sd, 0.0),
        "X": np.where(observed[:, None], (X - x_loc) / x_sd, 0.0),
        "loc": y_loc, "sd": y_sd, "x_loc": x_loc, "x_sd": x_sd,
    }


# ============================================================================== the model
def _hyperprior_spec(data: CohortData) -> dict[str, tuple[str, float, float]]:
    """Hyperpriors on the standardised scale: name -> (kind, location, scale)."""
    span = data.span
    return {
        "level_mean": ("normal", 0.0, 1.5),
        "slope_mean": ("normal", 0.0, 1.0 / span),
        # log of variances in units of the residual variance
        "level_var": ("lognormal", math.log(3.0), 1.5),
        "slope_var": ("lognormal", math.log(1.0 / span**2), 2.0),
        # the size priors stay wide above the floor (a small cohort cannot shrink them)
        "depth_var": ("lognormal", math.log(25.0), 0.5),
        "amplitude_var": ("lognormal", math.log(25.0), 0.5),
        # noise_scale = noise_shape * typical residual variance
        "noise_scale": ("lognormal", math.log(data.noise_shape * data.noise_var), 1.0),
    }


def build_cohort_model(
    data: CohortData,
    *,
    fixed: Mapping[str, Any] | None = None,
    classes: Sequence[str] = CLASSES,
    mutable_scores: bool = False,
):
    """Build the collapsed cohort model (a pure function: arrays in, ``pm.Model`` out).

    Parameters
    ----------
    data : CohortData
        From :func:`prepare_cohort`.
    fixed : mapping, optional
        Hyperparameters held fixed, on the **standardised** scale (any subset of
        :data:`HYPERPARAMETERS` except ``noise_shape``, which is ``data.noise_shape``).
    classes : sequence of str
        Classes in the mixture (others get probability 0), e.g. without the rupture
        classes for a LOO comparison.
    mutable_scores : bool, default False
        Hold the score-dependent moments (``syy``, ``sy``, ``sxy``, ``u_yd``,
        ``v_yd``, ``un_yd``) in ``pm.Data`` containers, so that a compiled model can be
        refitted to another cohort with the same session patterns (e.g. nutpie's
        ``compiled.with_data(...)`` in a simulation study).

    Returns
    -------
    pymc.Model
        Free variables: the non-fixed hyperparameters (``class_probs`` Dirichlet on the
        included classes) and, with an outcome, ``outcome_intercept``,
        ``class_effect`` (dims ``effect``), ``covariate_effect`` and ``outcome_sigma``.
        Deterministics: ``class_prob`` and ``dyad_loglik`` (``classify_pymc`` does
        not store them while sampling but evaluates them for every draw afterwards,
        which is cheaper).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from . import pymc_kernel as pk
    from .changepoint.kernels import NEG

    fixed = {**FIXED_BY_MODEL, **dict(fixed or {})}
    stats = data.stats
    idx = [CLASSES.index(c) for c in classes]
    coords = {"dyad": np.asarray(stats.dyads), "class": list(CLASSES)}
    if data.outcome is not None:
        coords["effect"] = list(CLASSES[1:])
        coords["covariate"] = list(data.outcome["covariates"])
    spec = _hyperprior_spec(data)
    with pm.Model(coords=coords) as model:
        h: dict[str, Any] = {"noise_shape": data.noise_shape}
        for name in RANDOM:
            if name == "class_probs":
                continue
            if name in fixed:
                h[name] = float(fixed[name])
                continue
            kind, mu, s = spec[name]
            if kind == "normal":
                h[name] = pm.Normal(name, mu, s)
            else:
                h[name] = pm.LogNormal(name, mu, s)
        if "class_probs" in fixed:
            pi = np.asarray(fixed["class_probs"], dtype=float)
            log_pi = pt.as_tensor(np.log(np.where(pi > 0, pi, 1e-300)))
        elif len(idx) == K:
            pi_rv = pm.Dirichlet("class_probs", a=np.ones(K), dims="class")
            log_pi = pt.log(pi_rv)
        else:
            sub = pm.Dirichlet("class_probs_included", a=np.ones(len(idx)))
            full = pt.zeros(K)
            full = pt.set_subtensor(full[idx], sub)
            pm.Deterministic("class_probs", full, dims="class")
            log_pi = pt.log(pt.maximum(full, 1e-300))
        mask_cls = np.zeros(K, dtype=bool)
        mask_cls[idx] = True
        log_pi = pt.where(mask_cls, log_pi, NEG)

        if mutable_scores:
            stats = replace(stats, **{k: pm.Data(k, getattr(stats, k)) for k in SCORE_MOMENTS})
        # (D, 4) log p(y_i | class, hyperparameters): one fused numba kernel (value + gradient)
        L = pk.class_log_evidence_pt(stats, h, data.noise_shape, data.size_floor)
        joint = L + log_pi[None, :]
        if data.outcome is not None:
            o = data.outcome
            b0 = pm.Normal("outcome_intercept", 0.0, 2.0)
            eff = pm.Normal("class_effect", 0.0, 1.0, dims="effect")
            mu = b0 + pt.concatenate([pt.zeros(1), eff])[None, :]
            if o["X"].shape[1]:
                beta = pm.Normal("covariate_effect", 0.0, 1.0, dims="covariate")
                mu = mu + pt.dot(o["X"], beta)[:, None]
            s = pm.HalfNormal("outcome_sigma", 1.0)
            ll_out = -0.5 * ((o["y"][:, None] - mu) / s) ** 2 - pt.log(s) - 0.5 * math.log(
                2 * math.pi)
            joint = joint + pt.where(o["observed"][:, None], ll_out, 0.0)
        dyad_ll = pt.logsumexp(joint, axis=1)
        pm.Potential("mixture", dyad_ll.sum())
        pm.Deterministic("class_prob", pt.exp(joint - dyad_ll[:, None]), dims=("dyad", "class"))
        pm.Deterministic("dyad_loglik", dyad_ll, dims="dyad")
    return model
