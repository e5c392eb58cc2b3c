r"""The exact engine's per-dyad models written explicitly in PyMC (a Monte Carlo check).

Unlike the collapsed cohort model (:mod:`alliancetraj.models.pymc_mixture`), nothing
is integrated analytically here: for every dyad and every class NUTS samples the
noise variance :math:`\sigma^2 \sim \mathrm{InvGamma}(\alpha, \beta)` and the
coefficients :math:`\theta \mid \sigma^2 \sim \mathcal N(m, \sigma^2 \operatorname{diag} v)`
(the amplitude or depth above the size floor on a log transform, ``c = kappa sigma +
exp(u)``, so that the joint prior is truncated to ``c > kappa sigma`` exactly as in the
model; its normalising constant is the exact noncentral-t probability); the Gaussian likelihood is evaluated
from explicit residuals ``y - X theta`` of every admissible configuration, which are
enumerated directly from each dyad's sessions; the configuration (uniform within
the class) and the class (prior ``class_probs``) are marginalised by log-sum-exp.

This is the product-space formulation of the class mixture (Carlin & Chib 1995):
each class keeps its own parameters, and those of the classes a dyad does not
follow are drawn from *pseudo-priors* (multivariate t fitted to the class's
conditional posterior; any normalised density is valid and cancels, a good one lets
the sampler switch classes freely, which with the plain priors it rarely does), so :math:`P(k \mid y) = E[P(k \mid \theta, \sigma, y)]` and
:math:`P(\tau \mid y, k) = E[P(k \mid \cdot) P(\tau \mid k, \cdot)] / P(k \mid y)`
are Rao-Blackwellised averages over the draws. Hyperparameters are fixed. It is
meant for a handful of dyads (cost grows with dyads x configurations x sessions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..results import ClassificationResult
from .changepoint.spec import (
    CLASSES,
    DEFAULT_SIZE_FLOOR,
    NAMES,
    Settings,
    admissible,
    extra_column,
    prior_moments,
    standardisation,
    standardise_mapping,
)

__all__ = ["admissible_configurations", "build_explicit_model", "classify_explicit",
           "explicit_designs", "pseudo_priors"]

_K = len(CLASSES)


def admissible_configurations(t: np.ndarray, *, max_rupture_length: int = 4,
                              u_margin: float = 2.0) -> dict[str, list]:
    """Admissible configurations of one dyad with sorted sessions ``t`` (the spec's
    :func:`~alliancetraj.models.changepoint.spec.admissible`)."""
    return admissible(t, Settings(max_rupture_length=max_rupture_length, u_margin=u_margin))


def explicit_designs(frame: pd.DataFrame, *, loc: float, sd: float, max_rupture_length: int = 4,
                     u_margin: float = 2.0) -> dict[str, Any]:
    """Dense, padded arrays: scores, session masks and each class's design column per config."""
    groups = list(frame.groupby("dyad", sort=False))
    D = len(groups)
    T = max(len(g) for _, g in groups)
    y = np.zeros((D, T))
    x = np.zeros((D, T))
    obs = np.zeros((D, T), dtype=bool)
    configs = []
    for i, (_, g) in enumerate(groups):
        t = g["session"].to_numpy(float)
        y[i, :len(t)] = (g["score"].to_numpy(float) - loc) / sd
        x[i, :len(t)] = t - 1.0
        obs[i, :len(t)] = True
        configs.append(admissible_configurations(t, max_rupture_length=max_rupture_length,
                                                 u_margin=u_margin))
    out: dict[str, Any] = {"dyads": pd.Index([d for d, _ in groups], name="dyad"), "y": y, "x": x,
                           "obs": obs, "n": obs.sum(1).astype(float), "configs": configs}
    for cls in CLASSES[1:]:
        C = max(1, max(len(c[cls]) for c in configs))
        Z = np.zeros((D, C, T))
        ok = np.zeros((D, C), dtype=bool)
        for i, (_, g) in enumerate(groups):
            t = g["session"].to_numpy(float)
            for j, cfg in enumerate(configs[i][cls]):
                Z[i, j, :len(t)] = extra_column(t, t, cls, cfg)
                ok[i, j] = True
        out[cls] = (Z, ok)
    return out


def _design_matrix(x_row: np.ndarray, obs_row: np.ndarray, cls: str, z_row=None) -> np.ndarray:
    x = x_row[obs_row]
    one = np.ones_like(x)
    if cls == "linear":
        return np.column_stack([one, x])
    z = z_row[obs_row]
    return np.column_stack([one, x, z])


def pseudo_priors(des: dict[str, Any], h: Mapping[str, Any], *, draws: int = 400,
                  seed: int = 0, dof: float = 4.0) -> dict[str, dict[str, np.ndarray]]:
    """Carlin-Chib pseudo-priors: a multivariate t fitted per (dyad, class) to draws of
    the class's conditional posterior, in the sampler's coordinates
    ``u = (log sigma2, theta_free..., log positive coefficient)``.

    Any normalised density is valid here (it cancels from the class posterior); a good
    one only makes the product-space sampler switch classes freely. The draws use the
    normal-inverse-gamma conjugacy of each configuration, with the configuration drawn
    from its conditional posterior and the constraint imposed by rejection.
    """
    rng = np.random.default_rng(seed)
    a0, b0 = float(h["noise_shape"]), float(h["noise_scale"])
    kappa = float(h.get("size_floor", DEFAULT_SIZE_FLOOR))
    y, x, obs = des["y"], des["x"], des["obs"]
    D = len(des["dyads"])
    out = {}
    for cls in CLASSES:
        m, v = prior_moments(h, cls)
        p = len(m)
        q = p + 1
        mus = np.zeros((D, q))
        linv = np.zeros((D, q, q))
        logdet = np.zeros(D)
        for i in range(D):
            yi = y[i, obs[i]]
            n = len(yi)
            if cls == "linear":
                zs = [None]
            else:
                Z, ok = des[cls]
                zs = [Z[i, j] for j in np.flatnonzero(ok[i])]
            if not zs:
                mus[i] = 0.0
                linv[i] = np.eye(q)
                continue
            parts = []
            for z in zs:
                X = _design_matrix(x[i], obs[i], cls, z)
                Ln = np.diag(1 / v) + X.T @ X
                cov = np.linalg.inv(Ln)
                mn = cov @ (m / v + X.T @ yi)
                an = a0 + n / 2
                bn = b0 + 0.5 * (yi @ yi + m @ (m / v) - mn @ Ln @ mn)
                le = -0.5 * np.linalg.slogdet(Ln)[1] - an * np.log(bn)
                if cls != "linear":
                    from scipy import special

                    le += np.log(max(special.stdtr(2 * an, mn[-1] / np.sqrt(bn / an * cov[-1, -1])),
                                     1e-300))
                parts.append((le, mn, cov, an, bn))
            lw = np.array([pt_[0] for pt_ in parts])
            w = np.exp(lw - lw.max())
            w /= w.sum()
            idx = rng.choice(len(parts), size=draws, p=w)
            U = np.empty((draws, q))
            for s_, j in enumerate(idx):
                _, mn, cov, an, bn = parts[j]
                for _ in range(10000):
                    s2 = 1.0 / rng.gamma(an, 1.0 / bn)
                    th = rng.multivariate_normal(mn, s2 * cov)
                    if cls == "linear" or th[-1] > kappa * np.sqrt(s2):
                        break
                else:  # pragma: no cover - the constraint is essentially never this binding
                    th[-1] = kappa * np.sqrt(s2) + abs(th[-1]) + 1e-6
                U[s_, 0] = np.log(s2)
                U[s_, 1:] = th
                if cls != "linear":
                    U[s_, -1] = np.log(th[-1] - kappa * np.sqrt(s2))
            mu = U.mean(0)
            C = np.cov(U.T) * 1.5**2 + 1e-8 * np.eye(q)
            Lc = np.linalg.cholesky(C)
            mus[i] = mu
            linv[i] = np.linalg.inv(Lc)
            logdet[i] = 2 * np.log(np.diag(Lc)).sum()
        from scipy.special import gammaln

        const = (gammaln((dof + q) / 2) - gammaln(dof / 2) - q / 2 * np.log(dof * np.pi)
                 - 0.5 * logdet)
        out[cls] = {"mu": mus, "linv": linv, "const": const, "dof": dof}
    return out


def build_explicit_model(des: dict[str, Any], h: Mapping[str, Any],
                         pseudo: dict[str, dict[str, np.ndarray]]):
    """PyMC model of the explicit per-dyad mixture (hyperparameters ``h``, standardised).

    For every class and dyad the free variable ``u_<class>`` holds ``(log sigma2,
    theta...)`` with the constrained coefficient as ``log(c - kappa sigma)``. Its density is set by one
    potential, the Carlin-Chib product-space joint
    ``sum_k g_k(u_k) * sum_z [pi_z L_z(u_z) p_z(u_z) / g_z(u_z)]`` with prior ``p_z``
    (normal-inverse-gamma, truncated and renormalised, with the Jacobian of ``u``),
    pseudo-priors ``g_k`` and likelihood ``L_z`` summed over configurations.
    """
    import pymc as pm
    import pytensor.tensor as pt
    from scipy import special

    y, x, obs, n = des["y"], des["x"], des["obs"], des["n"]
    a0, b0 = float(h["noise_shape"]), float(h["noise_scale"])
    kappa = float(h.get("size_floor", DEFAULT_SIZE_FLOOR))
    pi = np.asarray(h["class_probs"], dtype=float)
    D = len(des["dyads"])
    coords = {"dyad": np.asarray(des["dyads"]), "class": list(CLASSES)}
    with pm.Model(coords=coords) as model:
        comps, log_g_all, cfg_weights = [], [], {}
        for cls in CLASSES:
            m, v = prior_moments(h, cls)
            p = len(m)
            g = pseudo[cls]
            u = pm.Flat(f"u_{cls}", shape=(D, p + 1), initval=g["mu"])
            log_s2 = u[:, 0]
            s2 = pt.exp(log_s2)
            theta = [u[:, 1 + j] for j in range(p)]
            if cls != "linear":
                theta[-1] = kappa * pt.exp(0.5 * log_s2) + pt.exp(u[:, p])
            # prior density in u coordinates
            lp = (a0 * np.log(b0) - special.gammaln(a0) - (a0 + 1) * log_s2 - b0 / s2 + log_s2)
            for j in range(p):
                lp = lp - 0.5 * np.log(2 * np.pi * v[j]) - 0.5 * log_s2 \
                    - 0.5 * (theta[j] - m[j]) ** 2 / (s2 * v[j])
            if cls != "linear":
                # P(c > kappa sigma) under the prior: a noncentral-t CDF (Student t at kappa 0)
                mass = special.nctdtr(2 * a0, kappa / np.sqrt(v[-1]),
                                      m[-1] / np.sqrt(b0 / a0 * v[-1]))
                lp = lp + u[:, p] - np.log(mass)
            # pseudo-prior (multivariate t)
            diff = u - g["mu"]
            maha = pt.sum(pt.sum(g["linv"] * diff[:, None, :], axis=2) ** 2, axis=1)
            log_g = g["const"] - 0.5 * (g["dof"] + p + 1) * pt.log1p(maha / g["dof"])
            log_g_all.append(log_g)
            # likelihood, explicit residuals
            mean = theta[0][:, None] + theta[1][:, None] * x
            if cls == "linear":
                resid = pt.where(obs, y - mean, 0.0)
                ll = -0.5 * n * (np.log(2 * np.pi) + log_s2) - 0.5 * pt.sum(resid**2, 1) / s2
            else:
                Z, ok = des[cls]
                mu_c = mean[:, None, :] + theta[-1][:, None, None] * Z
                resid = pt.where(obs[:, None, :], y[:, None, :] - mu_c, 0.0)
                ll_c = (-0.5 * n[:, None] * (np.log(2 * np.pi) + log_s2[:, None])
                        - 0.5 * pt.sum(resid**2, axis=2) / s2[:, None])
                n_ok = ok.sum(1)
                ll_c = pt.where(ok, ll_c - np.log(np.maximum(n_ok, 1))[:, None], -1e30)
                ll = pt.logsumexp(ll_c, axis=1)
                cfg_weights[cls] = pt.exp(ll_c - ll[:, None])
                ll = pt.where(n_ok > 0, ll, -1e30)
            comps.append(ll + lp - log_g)
        joint = pt.stack(comps, axis=1) + np.log(np.where(pi > 0, pi, 1e-300))[None, :]
        total = pt.logsumexp(joint, axis=1)
        pm.Potential("mixture", total.sum() + sum(lg.sum() for lg in log_g_all))
        pm.Deterministic("class_prob", pt.exp(joint - total[:, None]), dims=("dyad", "class"))
        for cls, w in cfg_weights.items():
            pm.Deterministic(f"config_prob_{cls}", w)
    return model


def classify_explicit(
    frame: pd.DataFrame,
    *,
    hyperparameters: Mapping[str, Any],
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    seed: int = 0,
    progress: bool = False,
    cores: int | None = None,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    size_floor: float = DEFAULT_SIZE_FLOOR,
) -> ClassificationResult:
    """Sample the explicit per-dyad models with every hyperparameter fixed.

    Called by ``classify(method="pymc", model="explicit", hyperparameters=...)``.
    ``result.extras`` holds ``"idata"``, ``"config_probs"`` (per class: DataFrame dyad x
    configuration posterior given the class) and ``"mc_se"`` (Monte Carlo standard
    errors of the class probabilities, from the ESS of the per-draw conditional
    probabilities).
    """
    import arviz as az

    from .pymc_sampling import diagnostics, sample, warn_diagnostics

    missing = [k for k in NAMES if k not in hyperparameters and k != "size_floor"]
    if missing:
        raise ValueError(f"model='explicit' needs every hyperparameter fixed; missing {missing}. "
                         "Pass e.g. the exact engine's result.hyperparameters.")
    loc, sd = standardisation(frame)
    h = standardise_mapping(dict(hyperparameters), loc, sd)
    h["size_floor"] = float(size_floor)
    des = explicit_designs(frame, loc=loc, sd=sd, max_rupture_length=max_rupture_length,
                           u_margin=u_margin)
    pseudo = pseudo_priors(des, h, seed=seed)
    model = build_explicit_model(des, h, pseudo)
    idata, timings = sample(model, sampler=sampler, draws=draws, tune=tune, chains=chains,
                             seed=seed, progress=progress, cores=cores)
    free = [v for v in idata.posterior.data_vars if v.startswith("u_")]
    diag = diagnostics(idata, free)
    diag.update(timings)
    warn_diagnostics(diag)
    cp = idata.posterior["class_prob"]
    probs = cp.mean(("chain", "draw")).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = az.ess(cp.to_dataset(name="p"), method="mean")["p"].to_numpy()
        mcse = cp.std(("chain", "draw")).to_numpy() / np.sqrt(ess)
    cpd = cp.to_numpy().reshape(-1, len(des["dyads"]), _K)
    config_probs = {}
    for k, cls in enumerate(CLASSES[1:], start=1):
        w = idata.posterior[f"config_prob_{cls}"].to_numpy()
        w = w.reshape(-1, *w.shape[2:])
        num = (cpd[:, :, k][:, :, None] * w).mean(0)
        config_probs[cls] = num / np.maximum(num.sum(1, keepdims=True), 1e-300)
    return ClassificationResult.from_probabilities(
        probs, index=des["dyads"], method="pymc", settings={
            "model": "explicit", "draws": draws, "tune": tune, "chains": chains,
            "sampler": sampler, "seed": seed, "max_rupture_length": max_rupture_length,
            "u_margin": float(u_margin), "size_floor": float(size_floor)},
        hyperparameters=dict(hyperparameters, source="fixed"), diagnostics=diag, exact=False,
        extras={"idata": idata, "config_probs": config_probs, "configs": des["configs"],
                "mc_se": pd.DataFrame(mcse, index=des["dyads"], columns=list(CLASSES))},
    )
