"""The maximum-likelihood three-step estimator (Vermunt 2010; Bakk, Tekle & Vermunt 2013).

The outcome model is a latent-class model whose class indicator is the modal class with
the fixed error matrix ``D``:
``sum_i log sum_k pi_k(z_i) D[k, modal_i] f(y_i | k, z_i)``, with class proportions
``pi_k(z)`` multinomial-logistic in the covariates. Maximised by BFGS from the modal
regression, then polished by Newton steps on the observed information (Newton steps do
not depend on the parametrisation, so the reference class only re-expresses the fit).
Standard errors: a dyad-level sandwich (``D`` treated as known).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from .solver import ETA_SEPARATED, NoSolution, design, error_matrix, weighted_fit

__all__ = ["MIN_DYADS_PER_PARAMETER", "fit_ml"]

#: fewer dyads per parameter of the ML likelihood than this: no fit (it overfits and its
#: sandwich SEs are far too narrow; with 20 dyads of pure noise p-values of 1e-12)
MIN_DYADS_PER_PARAMETER = 2


def _ml_loglik(theta: np.ndarray, Zk: np.ndarray, y: np.ndarray, A: np.ndarray,
               logD: np.ndarray, family: str, ref: int, score: bool = False):
    """Per-dyad log-likelihood of the ML three-step model (and per-dyad scores)."""
    n, K, q = Zk.shape
    beta = theta[:q]
    gauss = family == "gaussian"
    log_sigma = theta[q] if gauss else 0.0
    alpha = theta[q + gauss:].reshape(K - 1, A.shape[1])
    logits = np.zeros((n, K))
    others = [k for k in range(K) if k != ref]
    logits[:, others] = A @ alpha.T
    log_pi = logits - _logsumexp(logits)[:, None]
    eta = Zk @ beta  # (n, K)
    if gauss:
        mu = eta
        sigma2 = np.exp(2 * log_sigma)
        resid = y[:, None] - mu
        logf = -0.5 * np.log(2 * np.pi) - log_sigma - 0.5 * resid**2 / sigma2
    else:
        eta = np.clip(eta, -35, 35)
        mu = 1.0 / (1.0 + np.exp(-eta))
        resid = y[:, None] - mu
        logf = y[:, None] * eta - np.logaddexp(0.0, eta)
    joint = log_pi + logD + logf
    ll = _logsumexp(joint)
    if not score:
        return ll
    r = np.exp(joint - ll[:, None])  # posterior class responsibilities
    scale = r * resid / sigma2 if gauss else r * resid
    parts = [np.einsum("nk,nkq->nq", scale, Zk)]
    if gauss:
        parts.append((r * (resid**2 / sigma2 - 1.0)).sum(axis=1, keepdims=True))
    pi = np.exp(log_pi)
    parts.append(((r - pi)[:, others][:, :, None] * A[:, None, :]).reshape(n, -1))
    return ll, np.hstack(parts)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = np.max(a, axis=1)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return m + np.log(np.exp(a - m[:, None]).sum(axis=1))


def fit_ml(P: np.ndarray, y: np.ndarray, X: np.ndarray, family: str, ref: int,
           D_given: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ML three-step estimate and sandwich covariance of the outcome coefficients.

    Returns (beta, cov, D); ``cov`` covers the outcome coefficients only.
    """
    n, K = P.shape
    modal = np.argmax(P, axis=1)
    D = error_matrix(P, modal) if D_given is None else D_given
    with np.errstate(divide="ignore"):
        logD = np.log(D[:, modal].T)  # (n, K): log P(modal_i | class k)
    codes = np.tile(np.arange(K), n)
    rows = np.repeat(np.arange(n), K)
    Zk = design(codes, list(range(K)), ref, X[rows]).reshape(n, K, -1)
    q = Zk.shape[2]
    A = np.column_stack([np.ones(n), X])
    gauss = family == "gaussian"
    n_params = q + gauss + (K - 1) * A.shape[1]
    if n < MIN_DYADS_PER_PARAMETER * n_params:
        raise NoSolution(f"{n} dyads for the {n_params} parameters of the latent-class "
                         "likelihood (outcome model, residual SD and class proportions): "
                         "overfitted, with sandwich SEs far too narrow")
    # start: the modal-class regression and the modal class shares
    Zm = Zk[np.arange(n), modal]
    start = np.zeros(q)
    if not gauss:
        pbar = np.clip(y.mean(), 0.5 / n, 1 - 0.5 / n)
        start[0] = np.log(pbar / (1 - pbar))
    try:
        start = weighted_fit(Zm, y, np.ones(n), family, start)
    except NoSolution:
        start = np.zeros(q)
    counts = np.bincount(modal, minlength=K) + 0.5
    alpha0 = np.zeros((K - 1, A.shape[1]))
    alpha0[:, 0] = np.log(np.delete(counts, ref) / counts[ref])
    extra = [np.log(max(np.std(y - Zm @ start), 1e-3))] if gauss else []
    theta0 = np.concatenate([start, extra, alpha0.ravel()])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, S = _ml_loglik(theta, Zk, y, A, logD, family, ref, score=True)
        return -float(ll.sum()), -S.sum(axis=0)

    with np.errstate(over="ignore", invalid="ignore"):
        opt = optimize.minimize(objective, theta0, jac=True, method="BFGS",
                                options={"gtol": 1e-8 * n, "maxiter": 2000})
    theta = opt.x
    if not np.all(np.isfinite(theta)):
        raise NoSolution(f"no convergence ({opt.message})")

    def information(theta: np.ndarray) -> np.ndarray:
        """Observed information by central differences of the analytic gradient."""
        m = len(theta)
        H = np.zeros((m, m))
        for j in range(m):
            h = 1e-5 * max(1.0, abs(theta[j]))
            up = theta.copy()
            dn = theta.copy()
            up[j] += h
            dn[j] -= h
            H[:, j] = (objective(up)[1] - objective(dn)[1]) / (2 * h)
        return (H + H.T) / 2

    # polish by Newton steps: BFGS stops at a gradient tolerance that depends on the
    # parametrisation; Newton's iterates do not (the reference class re-expresses the fit)
    H = information(theta)
    for _ in range(4):
        _, grad = objective(theta)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError as exc:
            raise NoSolution("singular information matrix (weakly identified class "
                             "effects)") from exc
        if not np.all(np.isfinite(step)):
            raise NoSolution("singular information matrix")
        trial = theta - step
        if objective(trial)[0] > objective(theta)[0] + 1e-9 * n:
            break
        theta = trial
        if np.max(np.abs(step)) < 1e-13 * max(1.0, np.max(np.abs(theta))):
            break
        H = information(theta)
    _, grad = objective(theta)
    if np.max(np.abs(grad)) > 1e-4 * n:
        raise NoSolution("the likelihood has no finite maximum" if opt.success
                         else f"no convergence ({opt.message})")
    if not gauss and np.max(np.abs(Zk @ theta[:q])) > ETA_SEPARATED:
        raise NoSolution("fitted probabilities numerically 0 or 1 (separation): the "
                         "likelihood has no finite maximum")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        _, S = _ml_loglik(theta, Zk, y, A, logD, family, ref, score=True)
    meat = S.T @ S * n / (n - 1)
    if not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
        raise NoSolution("the information matrix is not positive definite (weakly "
                         "identified class effects)")
    hinv = np.linalg.inv(H)
    cov = (hinv @ meat @ hinv)[:q, :q]
    if not np.all(np.isfinite(cov)) or np.diag(cov).min() <= 0:
        raise NoSolution("the sandwich covariance is not positive definite")
    return theta[:q], cov, D


