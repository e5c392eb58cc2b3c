"""The BCH estimating equations (Bolck, Croon & Hagenaars 2004; Vermunt 2010).

Each dyad ``i`` enters the outcome regression once per class ``k`` with weight
``w_ik = (D^-1)[modal_i, k]``, where ``D[k, s] = P(modal s | true k)`` is the
classification-error matrix. The coefficients solve the weighted GLM equations of
:func:`~alliancetraj.outcomes.solver.weighted_fit` (exactly, by weighted least squares,
for the gaussian family). Standard errors: a dyad-clustered sandwich of the stacked
estimating equations (outcome model and the means that define ``D``). Binomial
intervals: inversion of the robust score test (Boos 1992).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from .solver import NoSolution, design, error_matrix, mean_fn, weighted_fit

__all__ = ["BCH"]


class BCH:
    """The BCH estimating equations of one data set: the expanded design (dyad i repeated
    for every class k, weight ``W[modal_i, k]`` with ``W = inv(D)``)."""

    def __init__(self, P: np.ndarray, y: np.ndarray, X: np.ndarray, family: str, ref: int,
                 D_given: np.ndarray | None):
        n, K = P.shape
        self.family, self.n, self.K = family, n, K
        self.modal = np.argmax(P, axis=1)
        self.estimate_D = D_given is None
        self.D = error_matrix(P, self.modal) if D_given is None else D_given
        try:
            W = np.linalg.inv(self.D)
        except np.linalg.LinAlgError as exc:
            raise NoSolution("the classification-error matrix is singular") from exc
        codes = np.tile(np.arange(K), n)
        rows = np.repeat(np.arange(n), K)
        self.Z = design(codes, list(range(K)), ref, X[rows])
        self.w = W[self.modal[rows], codes]
        self.yy = y[rows]
        self.start = np.zeros(self.Z.shape[1])
        if family == "binomial":
            pbar = np.clip(y.mean(), 0.5 / n, 1 - 0.5 / n)
            self.start[0] = np.log(pbar / (1 - pbar))
        if self.estimate_D:
            # D is a function of the means a[k, s] = mean_i p_ik 1[modal_i = s]; their
            # per-dyad deviations (phi) do not depend on the coefficients
            self.a_hat = np.zeros((K, K))
            for s in range(K):
                self.a_hat[:, s] = P[self.modal == s].sum(axis=0) / n
            phi = np.zeros((n, K, K))
            phi[np.arange(n), :, self.modal] = P
            self.phi = phi.reshape(n, K * K) - self.a_hat.reshape(1, K * K)

    def fit(self, start: np.ndarray | None = None, fixed: int | None = None) -> np.ndarray:
        """Solve the BCH equations (with ``fixed``: all but that coefficient)."""
        return weighted_fit(self.Z, self.yy, self.w, self.family,
                            self.start if start is None else start, fixed)

    def influence(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bread ``sum w mu' z z'`` and the per-dyad estimating functions (n, p), the
        latter with the influence of the estimated error matrix when it comes from the
        probabilities."""
        Z, n, K, modal = self.Z, self.n, self.K, self.modal
        mu, dmu = mean_fn(self.family, Z @ beta)
        resid = self.yy - mu
        bread = (Z * (self.w * dmu)[:, None]).T @ Z
        psi = (Z * (self.w * resid)[:, None]).reshape(n, K, -1).sum(axis=1)  # per dyad
        if self.estimate_D:
            # the estimating equations depend on D through W, D on the means a_hat:
            # stack their influence.
            zr = (Z * resid[:, None]).reshape(n, K, -1)  # z_ik r_ik
            T = np.zeros((K, K, Z.shape[1]))  # T[s, k] = sum_{modal_i = s} z_ik r_ik / n
            for s in range(K):
                T[s] = zr[modal == s].sum(axis=0) / n
            a_hat = self.a_hat

            def mean_score(a: np.ndarray) -> np.ndarray:
                Wa = np.linalg.inv(a / a.sum(axis=1, keepdims=True))
                return np.einsum("sk,skp->p", Wa, T)

            G = np.zeros((Z.shape[1], K * K))
            for j in range(K * K):
                h = 1e-6 * max(abs(a_hat.flat[j]), 1e-3)
                up = a_hat.copy()
                dn = a_hat.copy()
                up.flat[j] += h
                dn.flat[j] -= h
                G[:, j] = (mean_score(up) - mean_score(dn)) / (2 * h)
            psi = psi + self.phi @ G.T
        return bread, psi

    def sandwich(self, beta: np.ndarray) -> np.ndarray:
        """Dyad-clustered sandwich covariance of the coefficients."""
        bread, psi = self.influence(beta)
        try:
            binv = np.linalg.inv(bread)
        except np.linalg.LinAlgError as exc:
            raise NoSolution("singular weighted information matrix") from exc
        return binv @ (psi.T @ psi * self.n / (self.n - 1)) @ binv

    def score_statistic(self, beta: np.ndarray, j: int, value: float) -> float:
        """Robust (sandwich) score statistic for ``beta_j = value`` (Boos 1992):
        the efficient score of coefficient j at the constrained fit over its variance."""
        start = beta.copy()
        start[j] = value
        try:
            b = self.fit(start, fixed=j)
        except NoSolution:
            return np.inf
        bread, psi = self.influence(b)
        free = np.delete(np.arange(len(b)), j)
        lam = np.zeros(len(b))
        lam[j] = 1.0
        try:
            lam[free] = -np.linalg.solve(bread[np.ix_(free, free)], bread[free, j])
        except np.linalg.LinAlgError:
            return np.inf
        u = psi @ lam
        return float(u.sum() ** 2 / (u @ u * self.n / (self.n - 1)))

    def score_interval(self, beta: np.ndarray, se: float, j: int, alpha: float
                       ) -> tuple[float, float, float]:
        """Interval {c: statistic(c) <= chi2_1(1 - alpha)} and the p-value of c = 0."""
        crit = stats.chi2.ppf(1 - alpha, 1)

        def excess(c: float) -> float:
            return self.score_statistic(beta, j, c) - crit

        bounds = []
        for sign in (-1.0, 1.0):
            inner, step = beta[j], max(se, 1e-6)
            outer = inner + sign * stats.norm.ppf(1 - alpha / 2) * step
            for _ in range(30):   # walk out until the statistic exceeds the critical value
                if excess(outer) > 0:
                    break
                inner, outer = outer, outer + sign * step
                step *= 2
            else:
                bounds.append(sign * np.inf)
                continue
            bounds.append(optimize.brentq(lambda c: min(excess(c), 1e6), inner, outer,
                                          xtol=1e-4 * max(se, 1e-6)))
        stat0 = self.score_statistic(beta, j, 0.0)
        # no constrained fit at 0 (the equations have no solution there): no p-value
        p = float(stats.chi2.sf(stat0, 1)) if np.isfinite(stat0) else np.nan
        return bounds[0], bounds[1], p


