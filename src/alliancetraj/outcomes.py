"""Relating trajectory classes to recovery outcomes (three-step estimators).

:func:`relate_outcomes` estimates the effect of each trajectory class, relative to a
reference class (``linear``), on a continuous (``family="gaussian"``) or binary
(``family="binomial"``, log-odds) outcome, adjusting for covariates. Classes are not
observed; they are estimated with error. The methods differ in how they carry that
error into the outcome model:

``"bch"`` (default)
    Bias-adjusted three-step estimator of Bolck, Croon & Hagenaars (2004) in the form
    of Vermunt (2010). The classification-error matrix
    ``D[k, s] = P(modal class s | true class k)`` is estimated from the class
    probabilities, ``D[k, s] = sum_i p_ik 1[modal_i = s] / sum_i p_ik``, and each dyad
    enters the outcome regression once per class ``k`` with weight
    ``w_ik = (D^-1)[modal_i, k]`` (weights may be negative). Standard errors come from
    a cluster (dyad) sandwich of the weighted estimating equations that also carries
    the sampling error of ``D`` (stacked estimating equations). Intervals and
    p-values: Wald for ``gaussian``; for ``binomial`` by inverting the robust
    (sandwich) score test of each effect (Boos 1992), because with heavy
    classification error a logistic effect's Wald SE grows with the estimate's error
    and Wald intervals over-cover (0.996 in the hard scenario of the coverage study,
    0.95 with score intervals). For methods that
    output hard labels, pass an ``error_matrix`` estimated on simulated cohorts
    (:func:`estimate_error_matrix`). Unbiased and at nominal coverage in
    ``benchmarks/bench_outcomes_coverage.py`` when the probabilities are calibrated.
``"ml"``
    Maximum-likelihood three-step estimator (Vermunt 2010; Bakk, Tekle & Vermunt
    2013): the outcome model is fitted as a latent-class model whose class
    indicator is the modal class with the same fixed error matrix ``D``,
    ``sum_i log sum_k pi_k(z_i) D[k, modal_i] f(y_i | k, z_i)``, with class
    proportions ``pi_k(z)`` multinomial-logistic in the covariates. No negative
    weights, so the logistic model always has a proper likelihood; more efficient
    than BCH, but it relies on the outcome distribution within classes (normal with
    one residual variance for ``gaussian``) where BCH does not. Standard errors: a
    dyad-level sandwich of the log-likelihood (``D`` treated as known).
``"draws"``
    Pseudo-class draws: classes drawn from each dyad's probabilities ``n_draws``
    times, a statsmodels GLM fitted per draw, pooled by Rubin's rules. Naive: known
    to shrink class effects toward zero when classification is uncertain (Bray,
    Lanza & Tan 2015).
``"modal"``
    A statsmodels GLM on the most probable class. Naive baseline: ignores
    classification error and is attenuated in the same way.
``"joint"``
    Class effects estimated inside a joint Bayesian model; available only for
    results whose ``extras["outcome_effects"]`` holds them (PyMC results fitted with
    a joint outcome model).

The key assumption of all three-step estimators is that classification error is
independent of the outcome and covariates given the true class.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .errors import AllianceTrajWarning, DataError, ExcludedDyadsWarning, format_ids
from .results import CLASSES, ClassificationResult

__all__ = [
    "METHODS",
    "OutcomeFit",
    "estimate_error_matrix",
    "relate_outcomes",
]

#: Estimators of :func:`relate_outcomes` and whether each is a naive baseline.
METHODS: dict[str, str] = {
    "bch": "bias-adjusted three-step (BCH, Vermunt 2010), dyad-clustered sandwich SEs",
    "ml": "maximum-likelihood three-step (Vermunt 2010; Bakk et al. 2013), sandwich SEs",
    "draws": "naive: pseudo-class draws pooled by Rubin's rules (attenuated)",
    "modal": "naive: regression on the most probable class (attenuated)",
    "joint": "joint Bayesian outcome sub-model (PyMC results with a joint outcome model)",
}
_FAMILIES = ("gaussian", "binomial")
_EFFECT_COLUMNS = ["estimate", "std_error", "ci_low", "ci_high", "p_value"]


# ------------------------------------------------------------------------ result type
@dataclass(eq=False)
class OutcomeFit:
    """Class effects on an outcome, as returned by :func:`relate_outcomes`.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per non-reference class (index ``class``), columns ``estimate``,
        ``std_error``, ``ci_low``, ``ci_high`` (at ``1 - alpha``, 95% by default)
        and ``p_value``. Estimates are mean differences (gaussian) or log-odds
        ratios (binomial) relative to ``reference``. NaN for a class no dyad was
        assigned to.
    omnibus : dict
        Joint test that class matters (all class effects zero): ``test``,
        ``statistic``, ``df`` (and ``df_denom`` for an F test), ``p_value``.
    coefficients : pandas.DataFrame
        Every coefficient of the outcome model (intercept, class effects,
        covariates) with the same columns as ``effects``.
    method, family, outcome, reference : str
    covariates : list of str
    n_dyads : int
        Dyads used in the fit.
    excluded : list
        Dyads of the classification result left out (no outcome or a missing
        covariate), reported with an ``ExcludedDyadsWarning``.
    error_matrix : pandas.DataFrame or None
        BCH and ML only: ``D[true, assigned]``, the classification-error matrix used.
    naive : bool
        True for the naive baselines (``modal``, ``draws``).
    classifier : str
        The ``method`` of the classification result.
    settings : dict
        Options the estimator ran with.
    notes : list of str
        Caveats raised during fitting (also issued as warnings).
    """

    effects: pd.DataFrame
    omnibus: dict[str, Any]
    coefficients: pd.DataFrame
    method: str
    family: str
    outcome: str
    reference: str
    covariates: list[str]
    n_dyads: int
    excluded: list[Any] = field(default_factory=list)
    error_matrix: pd.DataFrame | None = None
    naive: bool = False
    classifier: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"OutcomeFit(method={self.method!r}, family={self.family!r}, "
                f"outcome={self.outcome!r}, n_dyads={self.n_dyads}, "
                f"n_excluded={len(self.excluded)})")

    def summary(self) -> str:
        """A readable report: method, sample, class effects and the omnibus test."""
        scale = "log-odds ratio" if self.family == "binomial" else "mean difference"
        lines = [
            f"Class effects on {self.outcome!r} ({self.family}; {scale} vs {self.reference!r})",
            f"Method: {self.method} - {METHODS[self.method]}",
            f"Classifier: {self.classifier or 'unknown'}",
            f"Covariates: {', '.join(self.covariates) if self.covariates else 'none'}",
            f"Dyads: {self.n_dyads} used, {len(self.excluded)} excluded"
            + (f" ({format_ids(self.excluded)})" if self.excluded else ""),
        ]
        if self.settings.get("interval") == "score":
            lines.append("Intervals and p-values of the class effects: robust score test "
                         "(inverted), not Wald")
        if self.naive:
            lines.append("NOTE: naive estimator - ignores classification error, so class "
                         "effects are shrunk toward zero when classes are uncertain.")
        table = self.effects.copy()
        lines.append("")
        lines.append(table.to_string(float_format=lambda v: f"{v: .4f}"))
        om = self.omnibus
        if np.isfinite(om.get("statistic", np.nan)):
            dfs = f"{om['df']:g}" + (f", {om['df_denom']:.1f}" if "df_denom" in om else "")
            lines.append("")
            lines.append(f"Omnibus test that class matters: {om['test']}({dfs}) = "
                         f"{om['statistic']:.3f}, p = {om['p_value']:.4g}")
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- validation
def _check_choice(name: str, value: object, valid: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(
            f"The {name!r} parameter of relate_outcomes must be one of {list(valid)}. "
            f"Got {value!r} instead."
        )
    return value


def _prepare(
    result: ClassificationResult,
    outcomes: pd.DataFrame,
    outcome: Hashable,
    covariates: Sequence[Hashable],
    family: str,
    dyad: Hashable | None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[Any]]:
    """Align outcomes with the result; return (probabilities, y, X_cov, excluded)."""
    if not isinstance(result, ClassificationResult):
        raise TypeError(
            "The 'result' parameter of relate_outcomes must be a ClassificationResult "
            f"(from alliancetraj.classify). Got {type(result).__name__} instead."
        )
    if not isinstance(outcomes, pd.DataFrame):
        raise DataError(f"Outcomes must be a pandas DataFrame; got {type(outcomes).__name__}.")
    frame = outcomes
    if dyad is not None:
        if dyad not in frame.columns:
            raise DataError(
                f"Column {dyad!r} (dyad) is not in the outcomes; columns are "
                f"{format_ids(list(frame.columns), 10)}. Pass dyad=None to use the index."
            )
        frame = frame.set_index(dyad)  # a new frame: the caller's is not modified
    needed = [outcome, *covariates]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"Column(s) {format_ids(missing)} are not in the outcomes; columns are "
            f"{format_ids(list(frame.columns), 10)}. Check the outcome= and covariates= names."
        )
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()].unique().tolist()
        raise DataError(
            f"The outcomes have {len(dup)} duplicated dyad id(s): {format_ids(dup)}. Keep one "
            "row per dyad."
        )
    known = set(result.dyads)
    known_excluded = set(result.excluded)
    unknown = [d for d in frame.index if d not in known and d not in known_excluded]
    if unknown:
        hint = ""
        sample = result.dyads[:1].tolist()
        if sample and type(sample[0]) is not type(unknown[0]):
            hint = (f" The result's ids are {type(sample[0]).__name__} (e.g. {sample[0]!r}); "
                    f"the outcomes' are {type(unknown[0]).__name__}.")
        raise DataError(
            f"The outcomes' dyad ids do not match the classification result: {len(unknown)} "
            f"id(s) are not in it: {format_ids(unknown)}.{hint} Index the outcomes by the "
            "dyad ids used in classify() (or pass dyad='column'), or subset them with "
            "outcomes.loc[outcomes.index.intersection(result.dyads)]."
        )
    frame = frame.reindex(result.dyads)
    columns: dict[Hashable, np.ndarray] = {}
    for col in needed:
        raw = frame[col]
        if pd.api.types.is_bool_dtype(raw.dtype):
            columns[col] = raw.astype(float).to_numpy()
            continue
        if isinstance(raw.dtype, pd.CategoricalDtype):
            raw = raw.astype(object)
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = (num.isna() & raw.notna()).to_numpy()
        if bad.any():
            ids = frame.index[bad].tolist()
            role = "outcome" if col == outcome else "covariate"
            raise DataError(
                f"Column {col!r} ({role}) has {bad.sum()} non-numeric value(s) for dyad(s) "
                f"{format_ids(ids)} (e.g. {raw[bad].iloc[0]!r}). Convert it to numbers "
                "(dummy-code categorical covariates)."
            )
        values = num.to_numpy()
        if np.isinf(values).any():
            ids = frame.index[np.isinf(values)].tolist()
            raise DataError(
                f"Column {col!r} has infinite value(s) for dyad(s) {format_ids(ids)}. Replace "
                "them with valid values or NaN."
            )
        columns[col] = values
    y = columns[outcome]
    if family == "binomial":
        bad = ~np.isnan(y) & ~np.isin(y, (0.0, 1.0))
        if bad.any():
            ids = frame.index[bad].tolist()
            raise DataError(
                f"Column {outcome!r} (outcome) must hold 0/1 for family='binomial'; dyad(s) "
                f"{format_ids(ids)} have other values. Recode it as 0/1 or use "
                "family='gaussian'."
            )
    X = np.column_stack([columns[c] for c in covariates]) if covariates else \
        np.empty((len(y), 0))
    drop = np.isnan(y) | np.isnan(X).any(axis=1)
    excluded: list[Any] = []
    if drop.any():
        excluded = result.dyads[drop].tolist()
        no_y = int(np.isnan(y).sum())
        no_x = int((~np.isnan(y) & np.isnan(X).any(axis=1)).sum())
        if drop.all():
            raise DataError(
                f"No dyad of the classification result has both the outcome {outcome!r} and "
                f"the covariates: nothing to fit (e.g. {format_ids(excluded)})."
            )
        warnings.warn(
            f"Excluded {drop.sum()} of {len(y)} dyad(s) from the outcome model: {no_y} without "
            f"an outcome {outcome!r}" + (f", {no_x} with a missing covariate" if no_x else "")
            + f" ({format_ids(excluded)}).",
            ExcludedDyadsWarning,
            stacklevel=3,
        )
    probs = result.probabilities.loc[:, list(CLASSES)].iloc[~drop]
    return probs, y[~drop], X[~drop], excluded


# ----------------------------------------------------------------------- numerics
def _effects_frame(names: Sequence[str], est, se, alpha: float, dist=None) -> pd.DataFrame:
    est = np.asarray(est, float)
    se = np.asarray(se, float)
    if dist is None:
        crit = stats.norm.ppf(1 - alpha / 2)
        z = est / se
        p = 2 * stats.norm.sf(np.abs(z))
    else:  # per-coefficient t degrees of freedom (Rubin's rules)
        crit = stats.t.ppf(1 - alpha / 2, dist)
        p = 2 * stats.t.sf(np.abs(est / se), dist)
    return pd.DataFrame(
        {"estimate": est, "std_error": se, "ci_low": est - crit * se,
         "ci_high": est + crit * se, "p_value": p},
        index=pd.Index(list(names), name="term"),
    )


def _wald(est: np.ndarray, cov: np.ndarray) -> dict[str, Any]:
    k = len(est)
    if k == 0 or not np.all(np.isfinite(cov)):
        return {"test": "chi2", "statistic": np.nan, "df": k, "p_value": np.nan}
    stat = float(est @ np.linalg.solve(cov, est))
    return {"test": "chi2", "statistic": stat, "df": k, "p_value": float(stats.chi2.sf(stat, k))}


def _design(codes: np.ndarray, active: list[int], ref: int, X: np.ndarray) -> np.ndarray:
    """[1, one dummy per active non-reference class, covariates]."""
    dummies = [(codes == k).astype(float) for k in active if k != ref]
    return np.column_stack([np.ones(len(codes)), *dummies, X])


def _mean_fn(family: str, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and its derivative wrt the linear predictor (canonical links)."""
    if family == "gaussian":
        return eta, np.ones_like(eta)
    mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -35, 35)))
    return mu, mu * (1 - mu)


def _weighted_fit(Z: np.ndarray, y: np.ndarray, w: np.ndarray, family: str,
                  start: np.ndarray, fixed: int | None = None) -> np.ndarray:
    """Solve sum w z (y - mu(z'b)) = 0 (weights may be negative) by Newton steps.

    With ``fixed``, that coefficient stays at its value in ``start`` and only the
    equations of the others are solved (the constrained fit of a score test).
    """
    beta = start.copy()
    free = np.arange(Z.shape[1]) if fixed is None else np.delete(np.arange(Z.shape[1]), fixed)
    Zf = Z[:, free]
    for _ in range(200):
        mu, dmu = _mean_fn(family, Z @ beta)
        score = Zf.T @ (w * (y - mu))
        hess = (Zf * (w * dmu)[:, None]).T @ Zf
        try:
            step = np.linalg.solve(hess, score)
        except np.linalg.LinAlgError as exc:
            raise _NoSolution("singular weighted information matrix") from exc
        big = np.max(np.abs(step))
        if big > 2.0:  # damp: weighted logistic equations can overshoot
            step = step * (2.0 / big)
        beta[free] = beta[free] + step
        if family == "gaussian" or big < 1e-10:
            break
    else:
        raise _NoSolution("no convergence")
    if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 30:
        raise _NoSolution("estimates diverge")
    return beta


class _NoSolution(Exception):
    """The BCH estimating equations have no finite solution."""


def _error_matrix(P: np.ndarray, modal: np.ndarray) -> np.ndarray:
    K = P.shape[1]
    a = np.zeros((K, K))
    for s in range(K):
        a[:, s] = P[modal == s].sum(axis=0)
    return a / a.sum(axis=1, keepdims=True)


class _BCH:
    """The BCH estimating equations of one data set: the expanded design (dyad i repeated
    for every class k, weight ``W[modal_i, k]`` with ``W = inv(D)``)."""

    def __init__(self, P: np.ndarray, y: np.ndarray, X: np.ndarray, family: str, ref: int,
                 D_given: np.ndarray | None):
        n, K = P.shape
        self.family, self.n, self.K = family, n, K
        self.modal = np.argmax(P, axis=1)
        self.estimate_D = D_given is None
        self.D = _error_matrix(P, self.modal) if D_given is None else D_given
        W = np.linalg.inv(self.D)
        codes = np.tile(np.arange(K), n)
        rows = np.repeat(np.arange(n), K)
        self.Z = _design(codes, list(range(K)), ref, X[rows])
        self.w = W[self.modal[rows], codes]
        self.yy = y[rows]
        self.start = np.zeros(self.Z.shape[1])
        if family == "binomial":
            pbar = np.clip(y.mean(), 1e-3, 1 - 1e-3)
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
        return _weighted_fit(self.Z, self.yy, self.w, self.family,
                             self.start if start is None else start, fixed)

    def influence(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bread ``sum w mu' z z'`` and the per-dyad estimating functions (n, p), the
        latter with the influence of the estimated error matrix when it comes from the
        probabilities."""
        Z, n, K, modal = self.Z, self.n, self.K, self.modal
        mu, dmu = _mean_fn(self.family, Z @ beta)
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
        bread, psi = self.influence(beta)
        binv = np.linalg.inv(bread)
        return binv @ (psi.T @ psi * self.n / (self.n - 1)) @ binv

    def score_statistic(self, beta: np.ndarray, j: int, value: float) -> float:
        """Robust (sandwich) score statistic for ``beta_j = value`` (Boos 1992):
        the efficient score of coefficient j at the constrained fit over its variance."""
        start = beta.copy()
        start[j] = value
        try:
            b = self.fit(start, fixed=j)
        except _NoSolution:
            return np.inf
        bread, psi = self.influence(b)
        free = np.delete(np.arange(len(b)), j)
        lam = np.zeros(len(b))
        lam[j] = 1.0
        lam[free] = -np.linalg.solve(bread[np.ix_(free, free)], bread[free, j])
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
        p = float(stats.chi2.sf(self.score_statistic(beta, j, 0.0), 1))
        return bounds[0], bounds[1], p


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


def _fit_ml(P: np.ndarray, y: np.ndarray, X: np.ndarray, family: str, ref: int,
            D_given: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ML three-step estimate and sandwich covariance of the outcome coefficients.

    Returns (beta, cov, D); ``cov`` covers the outcome coefficients only.
    """
    n, K = P.shape
    modal = np.argmax(P, axis=1)
    D = _error_matrix(P, modal) if D_given is None else D_given
    with np.errstate(divide="ignore"):
        logD = np.log(D[:, modal].T)  # (n, K): log P(modal_i | class k)
    codes = np.tile(np.arange(K), n)
    rows = np.repeat(np.arange(n), K)
    Zk = _design(codes, list(range(K)), ref, X[rows]).reshape(n, K, -1)
    q = Zk.shape[2]
    A = np.column_stack([np.ones(n), X])
    gauss = family == "gaussian"
    # start: the modal-class regression and the modal class shares
    Zm = Zk[np.arange(n), modal]
    start = np.zeros(q)
    if not gauss:
        pbar = np.clip(y.mean(), 1e-3, 1 - 1e-3)
        start[0] = np.log(pbar / (1 - pbar))
    try:
        start = _weighted_fit(Zm, y, np.ones(n), family, start)
    except _NoSolution:
        pass
    counts = np.bincount(modal, minlength=K) + 0.5
    alpha0 = np.zeros((K - 1, A.shape[1]))
    alpha0[:, 0] = np.log(np.delete(counts, ref) / counts[ref])
    extra = [np.log(max(np.std(y - Zm @ start), 1e-3))] if gauss else []
    theta0 = np.concatenate([start, extra, alpha0.ravel()])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, S = _ml_loglik(theta, Zk, y, A, logD, family, ref, score=True)
        return -float(ll.sum()), -S.sum(axis=0)

    with np.errstate(over="ignore", invalid="ignore"):
        opt = optimize.minimize(objective, theta0, jac=True, method="BFGS",
                                options={"gtol": 1e-7 * n, "maxiter": 2000})
    theta = opt.x
    _, grad = objective(theta)
    if not np.all(np.isfinite(theta)) or np.max(np.abs(theta[:q])) > 30 or \
            np.max(np.abs(grad)) > 1e-3 * n:
        raise _NoSolution("the likelihood has no finite maximum" if opt.success
                          else f"no convergence ({opt.message})")
    # observed information by central differences of the analytic gradient
    m = len(theta)
    H = np.zeros((m, m))
    for j in range(m):
        h = 1e-5 * max(1.0, abs(theta[j]))
        up = theta.copy()
        dn = theta.copy()
        up[j] += h
        dn[j] -= h
        H[:, j] = (objective(up)[1] - objective(dn)[1]) / (2 * h)
    H = (H + H.T) / 2
    _, S = _ml_loglik(theta, Zk, y, A, logD, family, ref, score=True)
    meat = S.T @ S * n / (n - 1)
    if not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
        raise _NoSolution("the information matrix is not positive definite (weakly "
                          "identified class effects)")
    hinv = np.linalg.inv(H)
    cov = (hinv @ meat @ hinv)[:q, :q]
    if not np.all(np.isfinite(cov)) or np.diag(cov).min() <= 0:
        raise _NoSolution("the sandwich covariance is not positive definite")
    return theta[:q], cov, D


def _glm(y: np.ndarray, Z: np.ndarray, family: str):
    import statsmodels.api as sm

    fam = sm.families.Binomial() if family == "binomial" else sm.families.Gaussian()
    return sm.GLM(y, Z, family=fam).fit()


# --------------------------------------------------------------------------- API
def relate_outcomes(
    result: ClassificationResult,
    outcomes: pd.DataFrame,
    outcome: Hashable,
    covariates: Sequence[Hashable] | None = None,
    family: str = "gaussian",
    method: str = "bch",
    *,
    reference: str = "linear",
    dyad: Hashable | None = None,
    error_matrix: pd.DataFrame | np.ndarray | None = None,
    n_draws: int = 20,
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> OutcomeFit:
    """Estimate the effect of each trajectory class on a recovery outcome.

    Parameters
    ----------
    result : ClassificationResult
        Output of :func:`alliancetraj.classify` (any method).
    outcomes : DataFrame
        One row per dyad, indexed by dyad id (or with a ``dyad`` column). Dyads of
        ``result`` without a row, or with a missing outcome or covariate, are left
        out and counted in an :class:`~alliancetraj.errors.ExcludedDyadsWarning`.
        Rows for dyads unknown to ``result`` raise :class:`~alliancetraj.DataError`
        (rows for dyads that ``classify`` excluded are ignored).
    outcome : column name
        The outcome (numeric; 0/1 for ``family="binomial"``).
    covariates : list of column names, optional
        Numeric covariates (e.g. baseline severity); dummy-code categorical ones.
    family : {"gaussian", "binomial"}, default "gaussian"
        Identity link (effects are mean differences) or logit link (log-odds ratios).
    method : {"bch", "ml", "draws", "modal", "joint"}, default "bch"
        ``bch``: bias-adjusted three-step estimator (Vermunt 2010) with dyad-clustered
        sandwich standard errors (``binomial``: intervals and p-values from the robust
        score test); unbiased with nominal 95% coverage in the coverage study when the
        class probabilities are calibrated. ``ml``: maximum-likelihood
        three-step estimator (same error matrix; no negative weights, more stable for
        ``binomial`` outcomes under heavy classification error). ``draws`` (pseudo-class
        draws, Rubin's rules) and ``modal`` (most probable class) are naive baselines
        that shrink effects toward zero. ``joint``: effects from a joint Bayesian
        outcome model stored in ``result.extras["outcome_effects"]``.
    reference : str, default "linear"
        The reference class.
    dyad : column name, optional
        Column of ``outcomes`` holding the dyad id (default: the index).
    error_matrix : DataFrame (index true class, columns assigned class) or array, optional
        BCH and ML only: ``P(assigned | true)`` to use instead of the matrix implied by the
        probabilities; needed for methods that output hard labels (see
        :func:`estimate_error_matrix`). Treated as known in the standard errors.
    n_draws : int, default 20
        Number of pseudo-class draws (``method="draws"``).
    alpha : float, default 0.05
        1 - confidence level of the intervals.
    seed : int or numpy Generator, optional
        Randomness of ``method="draws"``.

    Returns
    -------
    OutcomeFit
        ``effects`` (one row per non-reference class), ``omnibus``, ``summary()``.

    Raises
    ------
    DataError
        Outcomes that do not match the result's dyads, non-numeric outcomes or
        covariates, missing columns.
    ValueError
        Unknown options; ``method="joint"`` without a joint outcome model.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=300, seed=3)
    >>> truth = cohort.truth["true_class"]
    >>> probs = pd.get_dummies(truth).astype(float) * 0.9 + 0.025  # a stand-in classifier
    >>> res = at.ClassificationResult.from_probabilities(probs, method="example")
    >>> fit = at.relate_outcomes(res, cohort.outcomes, outcome="recovery",
    ...                          covariates=["baseline_severity"])
    >>> list(fit.effects.index)
    ['u_shaped', 'v_shaped', 'unrepaired_rupture']
    >>> list(fit.effects.columns)
    ['estimate', 'std_error', 'ci_low', 'ci_high', 'p_value']
    """
    family = _check_choice("family", family, _FAMILIES)
    method = _check_choice("method", method, list(METHODS))
    reference = _check_choice("reference", reference, CLASSES)
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ValueError(
            f"The 'alpha' parameter of relate_outcomes must be a float in (0, 1). "
            f"Got {alpha!r} instead."
        )
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
        raise ValueError(
            f"The 'n_draws' parameter of relate_outcomes must be an int >= 2. "
            f"Got {n_draws!r} instead."
        )
    if covariates is None:
        covariates = []
    elif isinstance(covariates, (str, bytes)) or not isinstance(covariates, Sequence):
        covariates = [covariates]
    covariates = list(covariates)
    if outcome in covariates:
        raise ValueError(f"The outcome {outcome!r} cannot also be a covariate.")
    others = [c for c in CLASSES if c != reference]
    common = {
        "method": method, "family": family, "outcome": str(outcome), "reference": reference,
        "covariates": [str(c) for c in covariates], "classifier": result.method
        if isinstance(result, ClassificationResult) else "",
    }

    if method == "joint":
        return _joint(result, others, common)

    probs, y, X, excluded = _prepare(result, outcomes, outcome, covariates, family, dyad)
    P = probs.to_numpy(float)
    n = len(y)
    notes: list[str] = []
    D_given = None
    if error_matrix is not None:
        if method not in ("bch", "ml"):
            raise ValueError("error_matrix is used by method='bch' and method='ml' only.")
        D_given = _check_error_matrix(error_matrix)
    elif method in ("bch", "ml") and np.all(np.isclose(P.max(axis=1), 1.0)):
        notes.append(
            f"The {result.method!r} classifier gives hard labels (probabilities 0/1), so the "
            "error matrix implied by them is the identity and the three-step estimate reduces "
            "to the naive modal estimate. Pass error_matrix=estimate_error_matrix(method=...) to correct for "
            "misclassification."
        )

    # classes no dyad is assigned to cannot be estimated
    modal = np.argmax(P, axis=1)
    counts = np.bincount(modal, minlength=len(CLASSES))
    ref = CLASSES.index(reference)
    active = [k for k in range(len(CLASSES)) if counts[k] > 0]
    if counts[ref] == 0:
        raise DataError(
            f"No dyad is assigned to the reference class {reference!r}; choose another "
            f"reference (reference=...). Assigned counts: "
            f"{dict(zip(CLASSES, counts.tolist(), strict=True))}."
        )
    empty = [CLASSES[k] for k in range(len(CLASSES)) if counts[k] == 0]
    if empty:
        notes.append(
            f"No dyad is assigned to class(es) {empty}: their effects are not estimable "
            "(NaN); their probability mass was spread over the other classes."
        )
    if D_given is not None:
        D_given = D_given[np.ix_(active, active)]
        D_given = D_given / D_given.sum(axis=1, keepdims=True)
    Pa = P[:, active]
    Pa = Pa / Pa.sum(axis=1, keepdims=True)
    ref_a = active.index(ref)
    eff_names = [CLASSES[k] for k in active if k != ref]
    cov_names = [str(c) for c in covariates]
    names = ["intercept", *eff_names, *cov_names]
    n_eff = len(eff_names)
    D_used = None
    dist = None

    if method in ("bch", "ml"):
        eq = None
        try:
            if method == "bch":
                eq = _BCH(Pa, y, X, family, ref_a, D_given)
                beta = eq.fit()
                cov, D = eq.sandwich(beta), eq.D
            else:
                beta, cov, D = _fit_ml(Pa, y, X, family, ref_a, D_given)
        except _NoSolution as exc:
            eq = None
            if method == "bch":
                notes.append(
                    f"The BCH estimating equations have no finite solution ({exc}): with this "
                    "much classification error the bias-corrected class-specific outcome rates "
                    "fall outside (0, 1). Effects are NaN; try method='ml', collect more dyads "
                    "or sessions, or report method='modal' as a (attenuated) lower bound."
                )
            else:
                notes.append(
                    f"The ML three-step fit failed ({exc}). Effects are NaN; collect more "
                    "dyads or sessions, or report method='modal' as a (attenuated) lower bound."
                )
            k = len(names)
            beta, cov = np.full(k, np.nan), np.full((k, k), np.nan)
            D = _error_matrix(Pa, np.argmax(Pa, axis=1)) if D_given is None else D_given
        se = np.sqrt(np.diag(cov))
        coefs = _effects_frame(names, beta, se, alpha)
        if eq is not None and family == "binomial":
            # logistic effects: invert the robust score test (Wald intervals over-cover
            # when the effect's SE is large: its SE grows with the estimate's error)
            for j in range(1, 1 + n_eff):
                if np.isfinite(se[j]):
                    coefs.iloc[j, 2:5] = eq.score_interval(beta, se[j], j, alpha)
        omnibus = _wald(beta[1:1 + n_eff], cov[1:1 + n_eff, 1:1 + n_eff])
        labels = [CLASSES[k] for k in active]
        D_used = pd.DataFrame(D, index=pd.Index(labels, name="true"),
                              columns=pd.Index(labels, name="assigned"))
        settings: dict[str, Any] = {"error_matrix_source":
                                    "given" if D_given is not None else "probabilities"}
        if method == "bch":
            settings["interval"] = "score" if family == "binomial" else "wald"
    elif method == "modal":
        Z = _design(np.argmax(Pa, axis=1), list(range(len(active))), ref_a, X)
        fit = _glm(y, Z, family)
        beta = np.asarray(fit.params)
        cov = np.asarray(fit.cov_params())
        coefs = _effects_frame(names, beta, np.sqrt(np.diag(cov)), alpha)
        omnibus = _wald(beta[1:1 + n_eff], cov[1:1 + n_eff, 1:1 + n_eff])
        settings = {}
    else:  # draws
        rng = np.random.default_rng(seed)
        cum = np.cumsum(Pa, axis=1)
        ests, covs = [], []
        skipped = 0
        for _ in range(int(n_draws)):
            u = rng.random(n)[:, None]
            codes = np.minimum((u > cum).sum(axis=1), len(active) - 1)
            if np.bincount(codes, minlength=len(active)).min() == 0:
                skipped += 1
                continue
            fit = _glm(y, _design(codes, list(range(len(active))), ref_a, X), family)
            ests.append(np.asarray(fit.params))
            covs.append(np.asarray(fit.cov_params()))
        if len(ests) < 2:
            raise DataError(
                "Fewer than two pseudo-class draws had a dyad in every class; use "
                "method='bch' or 'modal' for so few dyads."
            )
        if skipped:
            notes.append(f"{skipped} of {n_draws} draws left a class empty and were skipped.")
        est_arr = np.array(ests)
        m = len(ests)
        beta = est_arr.mean(axis=0)
        within = np.mean(covs, axis=0)
        between = np.cov(est_arr, rowvar=False, ddof=1)
        cov = within + (1 + 1 / m) * between
        b_diag = np.diag(between)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (1 + 1 / m) * b_diag / np.diag(within)
            dist = np.where(r > 0, (m - 1) * (1 + 1 / r) ** 2, np.inf)
        coefs = _effects_frame(names, beta, np.sqrt(np.diag(cov)), alpha, dist=dist)
        omnibus = _rubin_omnibus(beta[1:1 + n_eff], within[1:1 + n_eff, 1:1 + n_eff],
                                 between[1:1 + n_eff, 1:1 + n_eff], m)
        settings = {"n_draws": int(n_draws), "draws_used": m, "seed": _seed_repr(seed)}

    effects = coefs.loc[eff_names].reindex(others)
    effects.index.name = "class"
    for note in notes:
        warnings.warn(note, AllianceTrajWarning, stacklevel=2)
    return OutcomeFit(
        effects=effects, omnibus=omnibus, coefficients=coefs, n_dyads=n, excluded=excluded,
        error_matrix=D_used, naive=method in ("modal", "draws"),
        settings={**settings, "alpha": alpha}, notes=notes, **common,
    )


def _seed_repr(seed: object) -> object:
    return seed if seed is None or isinstance(seed, (int, np.integer)) else "Generator"


def _rubin_omnibus(q: np.ndarray, u: np.ndarray, b: np.ndarray, m: int) -> dict[str, Any]:
    """The D1 statistic of Li, Raghunathan & Rubin (1991) for multiply drawn classes."""
    k = len(q)
    if k == 0:
        return {"test": "F", "statistic": np.nan, "df": 0, "p_value": np.nan}
    r1 = (1 + 1 / m) * np.trace(b @ np.linalg.inv(u)) / k
    stat = float(q @ np.linalg.solve((1 + r1) * u, q) / k)
    t = k * (m - 1)
    if t > 4:
        df2 = 4 + (t - 4) * (1 + (1 - 2 / t) / r1) ** 2 if r1 > 0 else np.inf
    else:
        df2 = t * (1 + 1 / k) * (1 + 1 / r1) ** 2 / 2 if r1 > 0 else np.inf
    p = float(stats.f.sf(stat, k, df2)) if np.isfinite(df2) else float(stats.chi2.sf(stat * k, k))
    return {"test": "F", "statistic": stat, "df": k, "df_denom": float(df2), "p_value": p}


def _check_error_matrix(error_matrix: pd.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(error_matrix, pd.DataFrame):
        missing = [c for c in CLASSES if c not in error_matrix.index or
                   c not in error_matrix.columns]
        if missing:
            raise ValueError(
                f"error_matrix must have index (true class) and columns (assigned class) "
                f"{list(CLASSES)}; missing {missing}."
            )
        D = error_matrix.loc[list(CLASSES), list(CLASSES)].to_numpy(float)
    else:
        D = np.asarray(error_matrix, dtype=float)
    K = len(CLASSES)
    if D.shape != (K, K) or not np.all(np.isfinite(D)) or np.any(D < 0) or \
            np.any(D.sum(axis=1) <= 0):
        raise ValueError(
            f"error_matrix must be a non-negative {K}x{K} matrix P(assigned | true) with "
            "positive row sums."
        )
    return D / D.sum(axis=1, keepdims=True)


def _joint(result: ClassificationResult, others: list[str], common: dict) -> OutcomeFit:
    extras = getattr(result, "extras", {}) or {}
    eff = extras.get("outcome_effects")
    if not isinstance(eff, pd.DataFrame):
        raise ValueError(
            "method='joint' needs a result from classify(..., method='pymc') fitted with a joint "
            "outcome model (its class effects are stored in result.extras['outcome_effects']); "
            f"this result came from method={result.method!r} and has none. Use method='bch' "
            "(bias-adjusted three-step) instead."
        )
    missing = [c for c in _EFFECT_COLUMNS if c not in eff.columns]
    if missing:
        raise ValueError(f"result.extras['outcome_effects'] lacks column(s) {missing}.")
    effects = eff.loc[:, _EFFECT_COLUMNS].reindex(others)
    effects.index.name = "class"
    omnibus = extras.get("outcome_omnibus") or {
        "test": "none", "statistic": np.nan, "df": len(others), "p_value": np.nan,
    }
    return OutcomeFit(
        effects=effects, omnibus=dict(omnibus), coefficients=effects.copy(),
        n_dyads=int(extras.get("outcome_n_dyads", len(result))), naive=False,
        settings={"source": "result.extras['outcome_effects']"}, **common,
    )


def estimate_error_matrix(
    method: str = "rules",
    *,
    n_cohorts: int = 5,
    n_dyads: int = 400,
    seed: int | np.random.Generator | None = None,
    classify_options: Mapping[str, Any] | None = None,
    **simulate_options: Any,
) -> pd.DataFrame:
    """Estimate ``P(assigned class | true class)`` of a classifier on simulated cohorts.

    For classifiers that output hard labels (``rules``, ``pelt``, ``growth``) the
    probabilities carry no information about misclassification; this matrix, passed
    as ``relate_outcomes(..., method="bch", error_matrix=...)``, supplies it. Simulate
    cohorts that resemble the study (``n_sessions``, ``noise``, ... in
    ``simulate_options``): the matrix is only as good as that resemblance.

    Parameters
    ----------
    method : str, default "rules"
        Classification method (see :func:`alliancetraj.classify`).
    n_cohorts, n_dyads : int
        Number and size of simulated cohorts.
    seed : int or numpy Generator, optional
    classify_options : dict, optional
        Passed to :func:`alliancetraj.classify`.
    **simulate_options
        Passed to :func:`alliancetraj.simulate_cohort`.

    Returns
    -------
    DataFrame
        Index ``true`` class, columns ``assigned`` class (both :data:`CLASSES`); rows
        sum to 1. ``attrs["n_dyads"]`` holds the dyads per true class.
    """
    from .classify import classify
    from .simulate import simulate_cohort

    rng = np.random.default_rng(seed)
    K = len(CLASSES)
    counts = np.zeros((K, K))
    for _ in range(int(n_cohorts)):
        cohort = simulate_cohort(n_dyads, seed=rng, **simulate_options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExcludedDyadsWarning)
            res = classify(cohort.sessions, method=method, **dict(classify_options or {}))
        true = cohort.truth["true_class"].reindex(res.dyads).cat.codes.to_numpy()
        assigned = res.labels.cat.codes.to_numpy()
        np.add.at(counts, (true, assigned), 1)
    rowsum = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        D = np.where(rowsum > 0, counts / rowsum, np.eye(K))
    out = pd.DataFrame(D, index=pd.Index(CLASSES, name="true"),
                       columns=pd.Index(CLASSES, name="assigned"))
    out.attrs["n_dyads"] = dict(zip(CLASSES, rowsum.ravel().astype(int).tolist(), strict=True))
    out.attrs["method"] = method
    return out
