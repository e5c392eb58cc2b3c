"""The weighted GLM equations every estimator solves, and the classification-error matrix.

All estimators of :func:`alliancetraj.relate_outcomes` reduce to (possibly weighted,
weights possibly negative) estimating equations of a GLM with a canonical link::

    sum_i w_i z_i (y_i - mu(z_i' b)) = 0

Gaussian (identity link): the equations are linear in ``b`` and are solved exactly
(weighted least squares). Binomial (logit link): full Newton steps, halved while the
Newton decrement ``g' H^-1 g`` grows (the decrement does not change under a linear
reparametrisation of ``b``, so neither does the path: changing the reference class or
rescaling a covariate re-expresses the same fit). Convergence is declared when the
decrement falls below ``1e-24`` per unit weight, a criterion free of units. A
linear predictor beyond +-30 at convergence (fitted probabilities within 1e-13 of 0 or
1) means the equations have no finite solution (separation): :class:`NoSolution`.

``firth=True`` adds Firth's (1993) bias-reducing penalty, in the weighted form
``sum_i z_i [w_i (y_i - mu_i) + h_i (1/2 - mu_i)]`` with
``h_i = w_i mu_i (1 - mu_i) z_i' I^-1 z_i`` (the leverages of the weighted information
``I``): the penalised equations have a finite solution under separation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ETA_SEPARATED", "NoSolution", "design", "error_matrix", "glm_fit", "mean_fn",
           "weighted_fit"]

#: linear predictors beyond this at convergence: fitted probabilities are 0 or 1
ETA_SEPARATED = 30.0


class NoSolution(Exception):
    """The estimating equations have no finite solution (or cannot be solved)."""


def design(codes: np.ndarray, active: list[int], ref: int, X: np.ndarray) -> np.ndarray:
    """``[1, one dummy per active non-reference class, covariates]``."""
    dummies = [(codes == k).astype(float) for k in active if k != ref]
    return np.column_stack([np.ones(len(codes)), *dummies, X])


def mean_fn(family: str, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and its derivative with respect to the linear predictor (canonical links)."""
    if family == "gaussian":
        return eta, np.ones_like(eta)
    mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -700, 700)))
    return mu, mu * (1 - mu)


def error_matrix(P: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """``D[k, s] = sum_i p_ik 1[modal_i = s] / sum_i p_ik``: P(assigned s | true k)."""
    K = P.shape[1]
    a = np.zeros((K, K))
    for s in range(K):
        a[:, s] = P[modal == s].sum(axis=0)
    return a / a.sum(axis=1, keepdims=True)


def _solve(hess: np.ndarray, score: np.ndarray) -> np.ndarray:
    try:
        step = np.linalg.solve(hess, score)
    except np.linalg.LinAlgError as exc:
        raise NoSolution("singular weighted information matrix (rank-deficient design)") \
            from exc
    if not np.all(np.isfinite(step)):
        raise NoSolution("singular weighted information matrix (rank-deficient design)")
    return step


def _equations(Z, y, w, beta, free, firth):
    mu, dmu = mean_fn("binomial", Z @ beta)
    Zf = Z[:, free]
    resid = w * (y - mu)
    info = (Z * (w * dmu)[:, None]).T @ Z
    if firth:
        try:
            iinv = np.linalg.inv(info)
        except np.linalg.LinAlgError as exc:
            raise NoSolution("singular weighted information matrix") from exc
        h = w * dmu * np.einsum("ij,jk,ik->i", Z, iinv, Z)
        resid = resid + h * (0.5 - mu)
    score = Zf.T @ resid
    hess = info[np.ix_(free, free)]
    return score, hess


def weighted_fit(Z: np.ndarray, y: np.ndarray, w: np.ndarray, family: str,
                 start: np.ndarray, fixed: int | None = None, *,
                 firth: bool = False, max_iter: int = 200) -> np.ndarray:
    """Solve ``sum w z (y - mu(z'b)) = 0`` (weights may be negative).

    With ``fixed``, that coefficient stays at its value in ``start`` and only the
    equations of the others are solved (the constrained fit of a score test).
    """
    beta = np.array(start, dtype=float)
    p = Z.shape[1]
    free = np.arange(p) if fixed is None else np.delete(np.arange(p), fixed)
    if family == "gaussian":
        Zf = Z[:, free]
        target = y - (Z[:, fixed] * beta[fixed] if fixed is not None else 0.0)
        hess = (Zf * w[:, None]).T @ Zf
        beta[free] = _solve(hess, Zf.T @ (w * target))
        return beta
    scale = float(np.abs(w).sum())
    tol = 1e-24 * max(scale, 1.0)
    score, hess = _equations(Z, y, w, beta, free, firth)
    step = _solve(hess, score)
    dec = float(score @ step)
    for _ in range(max_iter):
        if abs(dec) < tol:
            break
        t = 1.0
        for _ in range(40):  # halve the step while the Newton decrement grows
            trial = beta.copy()
            trial[free] = beta[free] + t * step
            s_new, h_new = _equations(Z, y, w, trial, free, firth)
            try:
                st_new = _solve(h_new, s_new)
            except NoSolution:
                st_new = None
            if st_new is not None:
                d_new = float(s_new @ st_new)
                if np.isfinite(d_new) and abs(d_new) <= abs(dec) * (1 - 1e-4 * t) + tol:
                    break
            t /= 2
        else:
            if abs(dec) < 1e-14 * max(scale, 1.0):
                break  # at the floor of floating-point precision
            raise NoSolution("no convergence (the Newton decrement does not decrease)")
        beta, score, hess, step, dec = trial, s_new, h_new, st_new, d_new
    else:
        raise NoSolution("no convergence")
    if not np.all(np.isfinite(beta)):
        raise NoSolution("estimates diverge")
    if not firth and np.max(np.abs(Z @ beta)[w != 0], initial=0.0) > ETA_SEPARATED:
        raise NoSolution("fitted probabilities numerically 0 or 1 (separation)")
    return beta


def glm_fit(Z: np.ndarray, y: np.ndarray, family: str, *, firth: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """An unweighted GLM: estimates and model-based covariance.

    Gaussian: ``sigma^2 (Z'Z)^-1`` with ``sigma^2`` the residual sum of squares over
    ``n - p`` (as ``statsmodels.GLM``); binomial: the inverse Fisher information (at the
    penalised estimate with ``firth=True``).
    """
    n, p = Z.shape
    start = np.zeros(p)
    if family == "binomial":
        pbar = np.clip(y.mean(), 0.5 / n, 1 - 0.5 / n)
        start[0] = np.log(pbar / (1 - pbar))
    beta = weighted_fit(Z, y, np.ones(n), family, start, firth=firth)
    mu, dmu = mean_fn(family, Z @ beta)
    info = (Z * dmu[:, None]).T @ Z
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError as exc:
        raise NoSolution("singular information matrix (rank-deficient design)") from exc
    if family == "gaussian":
        cov = cov * float(((y - mu) ** 2).sum() / max(n - p, 1))
    return beta, cov

