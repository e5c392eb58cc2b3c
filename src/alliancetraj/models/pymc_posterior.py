"""After sampling the PyMC mixture: per-dyad posteriors from the population draws.

NUTS samples only the population parameters (:mod:`alliancetraj.models.pymc_mixture`);
the per-dyad quantities follow here by Rao-Blackwellisation: for every posterior draw
:math:`\\phi^{(s)}` the class probabilities :math:`P(k \\mid y_i, \\phi^{(s)})` and the
change-point probabilities :math:`P(\tau \\mid y_i, k, \\phi^{(s)})` are exact, and
their average over the draws is the posterior. Also here: the InferenceData's
per-dyad variables and ``log_likelihood`` group (for LOO), posterior summaries of the
hyperparameters and of the outcome effects, and the exact result when every
hyperparameter is fixed (nothing to sample).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

from .._version import __version__
from ..results import CLASSES, ClassificationResult
from . import pymc_design as pdz
from .changepoint.spec import K, unstandardise_mapping
from .pymc_cohort import HYPERPARAMETERS, RANDOM, CohortData

__all__ = ["changepoint_posterior", "dyad_class_draws", "fixed_result", "hyper_draws",
           "outcome_effects", "posterior_hyperparameters", "tidy_idata", "xr_dyad_n"]


def hyper_draws(idata, data: CohortData, fixed: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Standardised hyperparameters per draw, flattened over (chain, draw)."""
    post = idata.posterior
    n = int(post.sizes["chain"] * post.sizes["draw"])
    out: dict[str, np.ndarray] = {"noise_shape": np.full(n, data.noise_shape)}
    for name in RANDOM:
        if name in fixed:
            val = np.asarray(fixed[name], dtype=float)
            out[name] = np.broadcast_to(val, (n, *val.shape)).copy()
        else:
            arr = post[name].to_numpy()
            out[name] = arr.reshape(n, *arr.shape[2:])
    return out


def _hpd_set(weights: np.ndarray, values: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mode and the bounds of the smallest set of values holding ``level`` of the weight."""
    order = np.argsort(-weights, kind="stable")
    cum = np.cumsum(weights[order])
    k = int(np.searchsorted(cum, level * cum[-1] - 1e-12)) + 1
    chosen = values[order[:k]]
    return float(values[order[0]]), float(chosen.min()), float(chosen.max())


def changepoint_posterior(data: CohortData, hdraws: dict[str, np.ndarray], class_prob_draws: np.ndarray,
                  probs: np.ndarray, *, n_draws: int, level: float, rng: np.random.Generator
                  ) -> pd.DataFrame:
    """Rao-Blackwellised change-point posteriors under each dyad's most probable class.

    ``P(tau | y, k) = E[P(k | y, phi) P(tau | y, k, phi)] / E[P(k | y, phi)]`` over a
    thinned subset of the draws.
    """
    stats = data.stats
    D = len(stats.n)
    total = class_prob_draws.shape[0]
    pick = np.unique(np.linspace(0, total - 1, min(n_draws, total)).round().astype(int))
    labels = np.argmax(probs, 1)
    acc = {"u_shaped": np.zeros((D, len(stats.u_shape))),
           "v_shaped": np.zeros((D, len(stats.v_rupture))),
           "unrepaired_rupture": np.zeros((D, len(stats.un_rupture)))}
    depth_parts: dict[str, list] = {"v_shaped": [], "unrepaired_rupture": []}
    for s in pick:
        h = {k: (v[s] if np.ndim(v) else v) for k, v in hdraws.items()}
        h["size_floor"] = data.size_floor
        ev = pdz.config_log_evidence(stats, h)
        L = pdz.class_log_evidence(ev)
        for j, key in ((1, "u_shaped"), (2, "v_shaped"), (3, "unrepaired_rupture")):
            with np.errstate(invalid="ignore", over="ignore"):
                w = np.exp(ev[key] - L[:, j][:, None])
            w = np.where(np.isfinite(w), w, 0.0) * class_prob_draws[s, :, j][:, None]
            acc[key] += w
            if key in depth_parts:
                loc, scale = ev["post"][key]
                depth_parts[key].append((w, loc, scale))
    cols = {c: np.full(D, np.nan) for c in (
        "rupture_session", "rupture_low", "rupture_high", "repair_session", "repair_low",
        "repair_high", "depth", "depth_low", "depth_high", "turning_session")}
    dof = 2.0 * data.noise_shape + stats.n
    u_sel = (labels == 1) & (acc["u_shaped"].sum(axis=1) > 0)
    cols["turning_session"][u_sel] = stats.turning_sessions(
        np.argmax(acc["u_shaped"], axis=1))[u_sel]
    for i in range(D):
        k = labels[i]
        if k in (2, 3):
            key = CLASSES[k]
            w = acc[key][i]
            if w.sum() <= 0:
                continue
            rup = stats.v_rupture if k == 2 else stats.un_rupture
            vals = np.unique(rup)
            marg = np.array([w[rup == r].sum() for r in vals])
            cols["rupture_session"][i], cols["rupture_low"][i], cols["rupture_high"][i] = \
                _hpd_set(marg, vals, level)
            if k == 2:
                vals = np.unique(stats.v_repair)
                marg = np.array([w[stats.v_repair == r].sum() for r in vals])
                cols["repair_session"][i], cols["repair_low"][i], cols["repair_high"][i] = \
                    _hpd_set(marg, vals, level)
            # depth: Monte Carlo from the mixture of truncated Student-t posteriors
            W = np.stack([p[0][i] for p in depth_parts[key]])        # (S, C)
            loc = np.stack([p[1][i] for p in depth_parts[key]])
            scale = np.stack([p[2][i] for p in depth_parts[key]])
            flat = W.ravel() / W.sum()
            m = 400
            comp = rng.choice(flat.size, size=m, p=flat)
            lo_c = sps.t.cdf(-loc.ravel()[comp] / scale.ravel()[comp], dof[i])
            u = lo_c + (1.0 - lo_c) * rng.random(m)
            d = loc.ravel()[comp] + scale.ravel()[comp] * sps.t.ppf(np.clip(u, 1e-15, 1 - 1e-15),
                                                                  dof[i])
            d = d * data.sd
            cols["depth"][i] = float(np.mean(d))
            cols["depth_low"][i], cols["depth_high"][i] = np.quantile(
                d, [(1 - level) / 2, (1 + level) / 2])
    return pd.DataFrame(cols, index=stats.dyads)


def outcome_effects(idata, data: CohortData) -> pd.DataFrame:
    o = data.outcome
    eff = idata.posterior["class_effect"].to_numpy().reshape(-1, K - 1) * o["sd"]
    lo, hi = np.quantile(eff, [0.025, 0.975], axis=0)
    tail = np.minimum((eff > 0).mean(0), (eff < 0).mean(0))
    return pd.DataFrame(
        {"estimate": eff.mean(0), "std_error": eff.std(0, ddof=1), "ci_low": lo, "ci_high": hi,
         "p_value": np.minimum(1.0, 2.0 * tail)},
        index=pd.Index(CLASSES[1:], name="class"),
    )


def posterior_hyperparameters(hdraws: dict[str, np.ndarray], data: CohortData) -> dict[str, Any]:
    orig = unstandardise_mapping(hdraws, data.loc, data.sd)
    hyper: dict[str, Any] = {}
    sds: dict[str, Any] = {}
    for k in HYPERPARAMETERS:
        if k == "size_floor":   # a convention, not estimated
            hyper[k] = float(data.size_floor)
            continue
        v = np.asarray(orig[k], dtype=float)
        if k == "class_probs":
            hyper[k] = [float(x) for x in v.mean(0)]
            sds[k] = [float(x) for x in v.std(0)]
        else:
            hyper[k] = float(v.mean())
            sds[k] = float(v.std())
    hyper["posterior_sd"] = sds
    hyper["source"] = "posterior_mean"
    return hyper


def tidy_idata(idata, data: CohortData, fixed: Mapping[str, Any], classes: Sequence[str]):
    """Add the per-dyad posteriors, the log-likelihood group (for LOO) and score-scale attrs.

    ``class_prob`` (``P(class | y_i, phi)``) and ``dyad_loglik`` (``log p(y_i | phi)``,
    standardised scores) are the model's deterministics, evaluated for every draw
    after sampling with the model's own kernel rather than inside the sampler.
    """
    import xarray as xr

    post = idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    class_prob, dyad_ll = dyad_class_draws(idata, data, fixed, classes)
    coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy(),
              "dyad": np.asarray(data.dyads), "class": list(CLASSES)}
    idata.posterior = post.assign(
        class_prob=xr.DataArray(class_prob.reshape(*shape, *class_prob.shape[1:]),
                                dims=("chain", "draw", "dyad", "class"), coords=coords),
        dyad_loglik=xr.DataArray(dyad_ll.reshape(*shape, -1), dims=("chain", "draw", "dyad"),
                                 coords={k: coords[k] for k in ("chain", "draw", "dyad")}))
    ll = idata.posterior["dyad_loglik"] - float(np.log(data.sd)) * xr_dyad_n(idata, data)
    idata.add_groups(log_likelihood=ll.to_dataset(name="trajectory"))
    idata.posterior.attrs.update(
        {"method": "pymc", "alliancetraj_version": __version__, "score_loc": data.loc,
         "score_sd": data.sd, "noise_shape": data.noise_shape,
         "note": "hyperparameters in the posterior are on the standardised score scale"})
    return idata


def dyad_class_draws(idata, data: CohortData, fixed: Mapping[str, Any],
                      classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per draw ``P(class | y_i, phi)`` (S, D, 4) and ``log p(y_i | phi)`` (S, D).

    The same expressions as the ``class_prob`` and ``dyad_loglik`` deterministics of
    :func:`build_cohort_model` (trajectory evidence from the model's kernel, class
    prior and, with an outcome, the outcome likelihood), in numpy.
    """
    from . import pymc_kernel as pk
    from .changepoint.kernels import NEG

    post = idata.posterior
    hd = hyper_draws(idata, data, fixed)
    L = pk.class_log_evidence_draws(data.stats, data.noise_shape, hd, data.size_floor)
    S = L.shape[0]
    if "class_probs" in fixed:
        pi = np.broadcast_to(np.asarray(fixed["class_probs"], dtype=float), (S, K))
    else:
        pi = post["class_probs"].to_numpy().reshape(S, K)
    log_pi = np.log(np.maximum(pi, 1e-300))
    log_pi[:, [c not in classes for c in CLASSES]] = NEG
    joint = L + log_pi[:, None, :]
    if data.outcome is not None:
        o = data.outcome
        flat = {v: post[v].to_numpy().reshape(S, -1) for v in
                ("outcome_intercept", "class_effect", "outcome_sigma")}
        mu = flat["outcome_intercept"][:, :, None] + np.concatenate(
            [np.zeros((S, 1)), flat["class_effect"]], axis=1)[:, None, :]     # (S, 1, 4)
        if o["X"].shape[1]:
            beta = post["covariate_effect"].to_numpy().reshape(S, -1)
            mu = mu + (beta @ o["X"].T)[:, :, None]                            # (S, D, 4)
        sig = flat["outcome_sigma"][:, :, None]
        ll_out = (-0.5 * ((o["y"][None, :, None] - mu) / sig) ** 2 - np.log(sig)
                  - 0.5 * math.log(2 * math.pi))
        joint = joint + np.where(o["observed"][None, :, None], ll_out, 0.0)
    dyad_ll = special.logsumexp(joint, axis=2)
    return np.exp(joint - dyad_ll[:, :, None]), dyad_ll


def xr_dyad_n(idata, data: CohortData):
    """Number of sessions per dyad as an xarray (dim ``dyad``), aligned to the posterior."""
    import xarray as xr

    return xr.DataArray(data.stats.n, dims=("dyad",),
                        coords={"dyad": idata.posterior["dyad"].to_numpy()})


def fixed_result(data, fixed, settings, credible_level, rng) -> ClassificationResult:
    """All hyperparameters fixed, no outcome: the collapsed model is exact, nothing to sample."""
    h = dict(fixed)
    h["noise_shape"] = data.noise_shape
    ev = pdz.config_log_evidence(data.stats, h)
    L = pdz.class_log_evidence(ev)
    pi = np.asarray(fixed["class_probs"], dtype=float)
    with np.errstate(divide="ignore"):
        joint = L + np.log(pi)[None, :]
    m = joint.max(1, keepdims=True)
    probs = np.exp(joint - m)
    probs /= probs.sum(1, keepdims=True)
    hd = {k: np.asarray(v, dtype=float)[None, ...] for k, v in h.items()}
    cps = changepoint_posterior(data, hd, probs[None], probs, n_draws=1, level=credible_level, rng=rng)
    hyper = unstandardise_mapping(h, data.loc, data.sd)
    hyper["class_probs"] = [float(x) for x in pi]
    hyper["source"] = "fixed"
    log_ev = pd.DataFrame(L - data.stats.n[:, None] * math.log(data.sd), index=data.dyads,
                          columns=list(CLASSES))
    settings = dict(settings, sampled=False)
    return ClassificationResult.from_probabilities(
        probs, index=data.dyads, method="pymc", changepoints=cps, settings=settings,
        hyperparameters=hyper, diagnostics={"sampled": False, "n_dyads": len(data.dyads)},
        log_evidence=log_ev, exact=True, credible_level=credible_level, extras={},
    )
