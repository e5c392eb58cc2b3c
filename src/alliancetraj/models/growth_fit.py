"""Fitting a growth model's design: the fast profiled-likelihood engine and statsmodels.

:func:`fast_fit` maximises the profiled (RE)ML criterion on per-dyad sufficient
statistics (:mod:`alliancetraj.models.growth_engine`) on internally standardised
columns; :func:`statsmodels_fit` runs ``MixedLM.fit``; :func:`statsmodels_check`
confirms a fast optimum with statsmodels' own likelihood and score;
:func:`check_boundary` warns about variance components at zero; :func:`validate_frame`
and :func:`covariate_columns` prepare the data. Everything is
returned on the caller's scales (see :mod:`alliancetraj.models.growth`).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, DataError, format_ids
from ..io import validate_sessions
from . import growth_engine as engine

__all__ = ["ADVICE", "Design", "check_boundary", "covariate_columns", "fast_fit",
           "statsmodels_check", "statsmodels_fit", "validate_frame"]

ADVICE = (
    "Try: rescaling the score (e.g. to 0-1 or z-scores) and centring the session numbers "
    "(origin=...); fewer random effects (random='slope' or 'intercept'); or another "
    "optimizer (optimizer='lbfgs', 'bfgs', 'powell' or 'nm')."
)



# ============================================================================ data prep
def validate_frame(
    frame: pd.DataFrame,
    dyad: Hashable,
    session: Hashable,
    score: Hashable,
    min_sessions: int = 1,
) -> tuple[pd.DataFrame, int]:
    """Validate through :func:`validate_sessions`; accept session numbers < 1.

    Integer session numbers that start below 1 (e.g. lme4's ``Days`` 0..9) are
    shifted up for validation only; the returned offset undoes the shift, so
    estimates stay on the caller's time scale. The caller's frame is not modified.
    """
    offset = 0
    if isinstance(frame, pd.DataFrame) and session in frame.columns:
        raw = frame[session]
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            values = raw.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if len(finite) and finite.min() < 1 and np.all(np.mod(finite, 1) == 0):
                offset = 1 - int(finite.min())
                frame = frame.copy(deep=False)
                frame[session] = raw + offset
    data = validate_sessions(
        frame, dyad=dyad, session=session, score=score, min_sessions=min_sessions
    )
    return data, offset


def covariate_columns(
    data: pd.DataFrame, covariates: Sequence[Hashable]
) -> tuple[list[str], np.ndarray]:
    names: list[str] = []
    cols: list[np.ndarray] = []
    for cov in covariates:
        if cov not in data.columns:
            raise DataError(
                f"Covariate column {cov!r} is not in the data. Columns present: "
                f"{format_ids([str(c) for c in data.columns], limit=12)}. Pass the right name in "
                "covariates=[...]."
            )
        col = data[cov]
        if col.isna().any():
            bad = data.loc[col.isna().to_numpy(), "dyad"].unique().tolist()
            raise DataError(
                f"Covariate column {cov!r} has missing values (dyads {format_ids(bad)}). Fill "
                "them or drop those rows."
            )
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            x = col.to_numpy(dtype=float)
            if np.ptp(x) == 0:
                raise DataError(
                    f"Covariate column {cov!r} takes a single value; it cannot be estimated "
                    "next to the intercept. Leave it out."
                )
            names.append(str(cov))
            cols.append(x)
            continue
        levels = sorted(pd.unique(col.astype(str)))
        if len(levels) < 2:
            raise DataError(
                f"Covariate column {cov!r} has a single level ({levels[0]!r}); it cannot be "
                "estimated next to the intercept. Leave it out."
            )
        text = col.astype(str).to_numpy()
        for level in levels[1:]:  # treatment coding, first level is the reference
            names.append(f"{cov}[{level}]")
            cols.append((text == level).astype(float))
    return names, (np.column_stack(cols) if cols else np.empty((len(data), 0)))



@dataclass(frozen=True)
class Design:
    """The model's arrays: scores, fixed-effects design, random-effect columns, groups."""

    y: np.ndarray
    X: np.ndarray
    re_idx: list[int]
    names: list[str]
    starts: np.ndarray
    dyads: pd.Index
    time: np.ndarray  # caller's time scale (session - offset)


def _scaling(design: Design):
    """Standardise y and the non-intercept columns; return the map back."""
    y, X = design.y, design.X
    my, sy = float(y.mean()), float(y.std())
    if not sy > 0:
        raise DataError("Every score is the same: there is no variation to model.")
    m = X[:, 1:].mean(axis=0)
    s = X[:, 1:].std(axis=0)
    s = np.where(s > 0, s, 1.0)
    G = np.eye(X.shape[1])
    G[0, 1:] = -m / s
    G[np.arange(1, X.shape[1]), np.arange(1, X.shape[1])] = 1.0 / s
    Xs = X @ G
    ys = (y - my) / sy
    return ys, Xs, G, my, sy


def _back(
    design: Design,
    G,
    my,
    sy,
    theta_s,
    beta_s,
    sigma2_s,
    beta_cov_s,
    ll_s,
    reml,
    blup_s,
    blup_cov_s,
) -> dict[str, Any]:
    re = design.re_idx
    Gz = G[np.ix_(re, re)]
    L = engine.unpack(theta_s, len(re))
    beta = sy * (G @ beta_s)
    beta[0] += my
    p = design.X.shape[1]
    df = len(design.y) - p if reml else len(design.y)
    ll = ll_s - df * np.log(sy) + (np.log(abs(np.linalg.det(G))) if reml else 0.0)
    return {
        "beta": beta,
        "beta_cov": sy**2 * G @ beta_cov_s @ G.T,
        "psi": sy**2 * sigma2_s * Gz @ L @ L.T @ Gz.T,
        "sigma2": sy**2 * sigma2_s,
        "loglik": ll,
        "blup": sy * blup_s @ Gz.T,
        "blup_cov": sy**2 * np.einsum("ij,gjk,lk->gil", Gz, blup_cov_s, Gz),
        "theta_s": theta_s,
        "sigma2_s": sigma2_s,
    }


def _canonical(theta: np.ndarray, q: int) -> np.ndarray:
    """Flip column signs of L so that its diagonal is non-negative (same L L')."""
    L = engine.unpack(theta, q)
    L = L * np.where(np.diag(L) < 0, -1.0, 1.0)[None, :]
    return L[np.tril_indices(q)]


def fast_fit(design: Design, *, reml: bool, maxiter: int, start: str) -> dict[str, Any]:
    from scipy import optimize

    ys, Xs, G, my, sy = _scaling(design)
    Zs = Xs[:, design.re_idx]
    stats = engine.group_stats(ys, Xs, Zs, design.starts)
    q = stats.q
    theta0 = engine.moment_start(stats) if start == "ols" else np.eye(q)[np.tril_indices(q)]
    n = stats.n

    def objective(theta):
        ll, grad, _, _ = engine.profiled(theta, stats, reml, gradient=True)
        return -ll / n, -grad / n

    res = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-9},
    )
    gnorm = float(np.max(np.abs(res.jac)))
    nfev = int(res.nfev)
    if not (res.success and gnorm < 1e-5):
        res2 = optimize.minimize(
            objective, res.x, jac=True, method="BFGS", options={"maxiter": maxiter, "gtol": 1e-8}
        )
        nfev += int(res2.nfev)
        if res2.fun <= res.fun:
            res = res2
        gnorm = float(np.max(np.abs(res.jac)))
    converged = gnorm < 1e-4
    if not converged:
        warnings.warn(
            f"The growth model's optimiser stopped before convergence (largest gradient "
            f"{gnorm:.2g} per observation: {res.message}). {ADVICE}",
            ConvergenceWarning,
            stacklevel=4,
        )
    theta = _canonical(res.x, q)
    ll_s, beta_s, sigma2_s = engine.profiled(theta, stats, reml)
    _, _, _, _, XWX, _, _ = engine._pieces(theta, stats)
    beta_cov_s = sigma2_s * np.linalg.inv(XWX)
    blup_s, blup_cov_s = engine.conditional(theta, stats, beta_s, sigma2_s)
    out = _back(
        design, G, my, sy, theta, beta_s, sigma2_s, beta_cov_s, ll_s, reml, blup_s, blup_cov_s
    )
    out.update(
        converged=converged,
        diagnostics={
            "engine": "fast",
            "optimizer": "L-BFGS-B",
            "converged": converged,
            "max_gradient": gnorm,
            "n_evaluations": nfev,
            "polished": False,
        },
    )
    return out


def statsmodels_fit(
    design: Design,
    *,
    reml: bool,
    theta0: np.ndarray | None,
    method: str,
    maxiter: int,
    start: str = "ols",
    prior: dict | None = None,
) -> dict[str, Any]:
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning as SMConvergenceWarning

    ys, Xs, G, my, sy = _scaling(design)
    Zs = Xs[:, design.re_idx]
    q = len(design.re_idx)
    if theta0 is None:
        if start == "ols":
            theta0 = engine.moment_start(engine.group_stats(ys, Xs, Zs, design.starts))
        else:
            theta0 = np.eye(q)[np.tril_indices(q)]
    groups = np.repeat(np.arange(len(design.starts)), np.diff(np.append(design.starts, len(ys))))
    model = MixedLM(ys, Xs, groups=groups, exog_re=Zs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(
            reml=reml, start_params=_canonical(theta0, q), method=[method], maxiter=maxiter
        )
    messages = []
    for w in caught:
        if issubclass(w.category, SMConvergenceWarning) or "converge" in str(w.message).lower():
            text = str(w.message)
            # statsmodels' boundary test compares variances with an absolute 0.01, which
            # depends on units; the package applies its own scale-free test instead.
            if "boundary of the parameter space" in text:
                continue
            messages.append(text)
        elif not issubclass(w.category, (DeprecationWarning, FutureWarning)):
            messages.append(str(w.message))
    converged = bool(result.converged) and not messages
    if messages:
        warnings.warn(
            f"statsmodels MixedLM (method={method!r}) reported: {'; '.join(dict.fromkeys(messages))}"
            f". {ADVICE}",
            ConvergenceWarning,
            stacklevel=4,
        )
    cov_re_unscaled = np.asarray(result.cov_re) / result.scale
    try:
        L = np.linalg.cholesky(cov_re_unscaled)
    except np.linalg.LinAlgError:
        w_, v_ = np.linalg.eigh(cov_re_unscaled)
        L = np.linalg.cholesky((v_ * np.maximum(w_, 1e-12)) @ v_.T)
    theta = L[np.tril_indices(q)]
    stats = engine.group_stats(ys, Xs, Zs, design.starts)
    beta_s = np.asarray(result.fe_params, dtype=float)
    sigma2_s = float(result.scale)
    p = Xs.shape[1]
    beta_cov_s = np.asarray(result.cov_params())[:p, :p]
    blup_s, blup_cov_s = engine.conditional(theta, stats, beta_s, sigma2_s)
    out = _back(
        design,
        G,
        my,
        sy,
        theta,
        beta_s,
        sigma2_s,
        beta_cov_s,
        float(result.llf),
        reml,
        blup_s,
        blup_cov_s,
    )
    diagnostics = (
        dict(prior["diagnostics"])
        if prior is not None
        else {"engine": "statsmodels", "optimizer": method}
    )
    diagnostics.update(
        polished=prior is not None,
        statsmodels_converged=bool(result.converged),
        converged=converged,
    )
    out.update(converged=converged, diagnostics=diagnostics, sm_result=result)
    return out


def statsmodels_check(
    design: Design, *, reml: bool, out: dict[str, Any], maxiter: int
) -> dict[str, Any]:
    """Confirm the fast optimum with statsmodels' own ``MixedLM.loglike`` and ``score``.

    One pass of each over the dyads (no Hessian). If statsmodels disagrees (its
    gradient is not ~0 or its log-likelihood differs), ``MixedLM.fit`` is run from
    the fast optimum instead.
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    ys, Xs, _, _, _ = _scaling(design)
    Zs = Xs[:, design.re_idx]
    groups = np.repeat(np.arange(len(design.starts)), np.diff(np.append(design.starts, len(ys))))
    model = MixedLM(ys, Xs, groups=groups, exog_re=Zs)
    # MixedLM.fit sets these before it evaluates the likelihood; set them the same way.
    model.reml, model.cov_pen, model.fe_pen = reml, None, None
    model._cov_sing, model._freepat = 0, None
    theta = out["theta_s"]
    stats = engine.group_stats(ys, Xs, Zs, design.starts)
    ll_fast = engine.profiled(theta, stats, reml)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ll_sm = float(model.loglike(theta))
            grad_sm = np.asarray(model.score(theta), dtype=float)
        except (np.linalg.LinAlgError, ValueError, AttributeError):
            ll_sm, grad_sm = np.nan, np.full(len(theta), np.nan)
    gmax = float(np.max(np.abs(grad_sm))) / len(ys)
    ok = (
        np.isfinite(ll_sm) and abs(ll_sm - ll_fast) <= 1e-7 * max(1.0, abs(ll_fast)) and gmax < 1e-4
    )
    if not ok:
        return statsmodels_fit(
            design, reml=reml, theta0=theta, method="lbfgs", maxiter=maxiter, prior=out
        )
    out = dict(out)
    out["diagnostics"] = {
        **out["diagnostics"],
        "polished": "check",
        "statsmodels_loglik_check": float(ll_sm - ll_fast),
        "statsmodels_max_gradient": gmax,
    }
    return out


def check_boundary(out: dict[str, Any], design: Design) -> None:
    """Warn when the random-effects covariance is (nearly) singular."""
    L = engine.unpack(out["theta_s"], len(design.re_idx))
    psi = L @ L.T  # relative to the residual variance, standardised units
    sd = np.sqrt(np.clip(np.diag(psi), 0, None))
    names = [design.names[j] for j in design.re_idx]
    problems = [f"the random {n!r} SD is ~0" for n, s in zip(names, sd, strict=True) if s < 1e-3]
    for i in range(len(sd)):
        for j in range(i):
            if sd[i] >= 1e-3 and sd[j] >= 1e-3 and abs(psi[i, j] / (sd[i] * sd[j])) > 0.999:
                problems.append(f"the correlation of {names[j]!r} and {names[i]!r} is ~±1")
    if problems:
        out["diagnostics"]["boundary"] = problems
        warnings.warn(
            f"Singular (boundary) growth-model fit: {'; '.join(problems)}. The data do not "
            f"support this many random effects: fit fewer (random='slope' or 'intercept') and "
            f"compare the fits with compare_growth(). {ADVICE}",
            ConvergenceWarning,
            stacklevel=4,
        )
