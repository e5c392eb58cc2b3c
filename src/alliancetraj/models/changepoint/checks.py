r"""Posterior predictive checks per dyad: which dyads the change-point model does not describe.

A class probability is only as good as the model behind it. For every dyad of an exact
classification, :func:`fit_checks` takes the dyad's most probable class and that
class's exact configuration posterior, draws replicate series from the posterior
predictive and compares test statistics of the observed series with those of the
replicates: a posterior predictive p-value per statistic (Gelman, Meng & Stern 1996;
Gelman et al., *Bayesian Data Analysis*, 3rd ed., ch. 6).

The draws
---------
Under class :math:`k` with admissible configurations :math:`\tau`, each draw
:math:`s = 1..S`

1. picks a configuration :math:`\tau_s` with its posterior probability (the exact
   per-configuration evidences of
   :func:`~alliancetraj.models.changepoint.evidence.config_posterior`, truncation
   terms included);
2. draws :math:`\sigma_s^2` from its marginal posterior under the size floor,
   :math:`\mathrm{IG}(\alpha_n, \beta_n)` reweighted by
   :math:`P(\theta_{\text{last}} > \kappa\sigma \mid \sigma, y)
   = \Phi\big((m_{n,\text{last}} - \kappa\sigma) / (\sigma\sqrt{V_{n,\text{last}}})\big)`,
   by sampling-importance-resampling from :data:`SIR_CANDIDATES` inverse-gamma draws
   (no reweighting for ``linear``, which has no floor);
3. draws the constrained coefficient from its normal posterior truncated at
   :math:`\kappa\sigma_s`, the others from their normal distribution given it
   (:math:`\theta \mid \sigma^2 \sim \mathcal N(m_n, \sigma^2 V_n)`);
4. draws a replicate :math:`y^{\text{rep}}_s = X_{\tau_s}\theta_s + \sigma_s\varepsilon_s`.

The statistics
--------------
Each statistic is a *realised discrepancy*: it is computed on the residuals from the
draw's own mean :math:`\mu_s = X_{\tau_s}\theta_s`, for the observed series
(:math:`r_s = y - \mu_s`) and for the replicate (:math:`y^{\text{rep}}_s - \mu_s`):

``lag1``
    :math:`\sum_i r_i r_{i+1} / \sum_i r_i^2` over consecutive observed sessions:
    autocorrelated residuals (AR noise, a wandering alliance, a slow trend the class
    misses).
``max_resid``
    :math:`\max_i |r_i| / \sigma_s`: one session far from the trajectory (an outlier).
``kurtosis``
    :math:`n \sum_i r_i^4 / (\sum_i r_i^2)^2`: heavy tails.

The reported statistic is its posterior mean over the draws; its p-value is
:math:`\hat p = S^{-1} \sum_s \mathbb 1\{T(y^{\text{rep}}_s, \theta_s) \ge T(y, \theta_s)\}`,
one-sided because each misfit above makes its statistic large. A p-value of
:math:`\le` 1/S means no replicate reached the observed value.

The flag: calibrated p-values
-----------------------------
Posterior predictive p-values are conservative: under the model they crowd around 1/2
(the posterior has seen the data it is checked against), so "below 0.01" almost never
happens, misfit or not: of 400 dyads drawn from the model itself 0.2-0.5% fell below 0.05
(``benchmarks/results/fit_checks.md``). :func:`fit_checks` therefore also calibrates them (Hjort, Dahl & Steinbakk
2006), pooled over the cohort: ``calibration_dyads`` dyads are drawn from the fitted
model (:func:`~alliancetraj.models.changepoint.predictive.sample_on_sessions`, with the
result's hyperparameters, on session patterns resampled from the cohort), labelled by
their most probable class as the engine labels them, checked the same way, and each observed p-value is replaced by the share of
these null p-values at or below it, :math:`(1 + \#\{p^{\text{null}} \le p\}) / (1 + N)`
(``pcal_*``). Under the model a calibrated p-value is uniform (up to the pooling over
session patterns), so ``misfit`` (any calibrated p-value below ``alpha``, default 0.01)
flags at most about ``3 * alpha`` (Bonferroni), 3%, of dyads the model describes. A flag
means the model misses something in that dyad; ``flagged`` names the statistics.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..._validation import check_bool, check_int, check_number, check_seed
from ...errors import DataError, format_ids
from ...io import to_panel, validate_sessions
from ...progress import progress_bar
from .evidence import class_log_evidence, config_evidence, config_posterior
from .predictive import sample_on_sessions
from .spec import CLASSES, Hyperparameters, Settings, admissible, design, standardisation
from .statistics import block_stats

__all__ = ["SIR_CANDIDATES", "STATISTICS", "check_dyad", "fit_checks"]

#: The test statistics, in column order.
STATISTICS: tuple[str, ...] = ("lag1", "max_resid", "kurtosis")
#: Inverse-gamma candidates per draw of the noise variance under the size floor.
SIR_CANDIDATES = 16
_FUNC = "fit_checks"


def residual_statistics(resid: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``(S, 3)`` statistics (:data:`STATISTICS`) of residuals ``resid`` ``(S, n)``."""
    ss = np.sum(resid * resid, axis=1)
    safe = np.where(ss > 0, ss, 1.0)
    lag1 = np.sum(resid[:, 1:] * resid[:, :-1], axis=1) / safe
    max_resid = np.max(np.abs(resid), axis=1) / sigma
    kurt = resid.shape[1] * np.sum(resid**4, axis=1) / (safe * safe)
    return np.column_stack([lag1, max_resid, kurt])


def _draw_sigma2(an: float, bn: np.ndarray, mlast: np.ndarray, vlast: np.ndarray,
                 kappa: float, rng: np.random.Generator) -> np.ndarray:
    """Noise variances from IG(an, bn) reweighted by the floor mass (SIR, Gumbel-max)."""
    cand = bn[:, None] / rng.gamma(an, 1.0, size=(len(bn), SIR_CANDIDATES))
    sigma = np.sqrt(cand)
    logw = special.log_ndtr((mlast[:, None] - kappa * sigma) / (sigma * np.sqrt(vlast)[:, None]))
    pick = np.argmax(logw + rng.gumbel(size=logw.shape), axis=1)
    return cand[np.arange(len(bn)), pick]


def check_dyad(t: np.ndarray, y: np.ndarray, h: Hyperparameters, cls: str, settings: Settings,
               draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Posterior predictive checks of one dyad under class ``cls``.

    Returns the posterior mean of each observed statistic and its p-value, both of shape
    ``(3,)`` in the order of :data:`STATISTICS` (see the module docstring).
    """
    configs = admissible(t, settings)[cls]
    rows = [config_posterior(t, y, h, cls, cfg) for cfg in configs]
    logev = np.array([r[0] for r in rows])
    w = np.exp(logev - special.logsumexp(logev))
    pick = rng.choice(len(rows), size=draws, p=w)
    X = np.stack([design(t, cls, cfg) for cfg in configs])[pick]          # (S, n, p)
    mn = np.stack([r[1] for r in rows])[pick]                               # (S, p)
    Vn = np.stack([r[2] for r in rows])[pick]                               # (S, p, p)
    an = rows[0][3]
    bn = np.array([r[4] for r in rows])[pick]
    p = mn.shape[1]
    if cls == "linear":
        sig2 = bn / rng.gamma(an, 1.0, size=draws)
        z = rng.standard_normal((draws, p, 1))
        theta = mn + np.sqrt(sig2)[:, None] * (np.linalg.cholesky(Vn) @ z)[:, :, 0]
    else:
        kappa = float(h.size_floor)
        vll = Vn[:, -1, -1]
        sig2 = _draw_sigma2(an, bn, mn[:, -1], vll, kappa, rng)
        sd_last = np.sqrt(sig2 * vll)
        lower = (kappa * np.sqrt(sig2) - mn[:, -1]) / sd_last
        last = mn[:, -1] + sd_last * stats.truncnorm.rvs(lower, np.inf, size=draws,
                                                         random_state=rng)
        vol = Vn[:, :-1, -1]
        cond = Vn[:, :-1, :-1] - vol[:, :, None] * vol[:, None, :] / vll[:, None, None]
        z = rng.standard_normal((draws, p - 1, 1))
        others = (mn[:, :-1] + vol / vll[:, None] * (last - mn[:, -1])[:, None]
                  + np.sqrt(sig2)[:, None] * (np.linalg.cholesky(cond) @ z)[:, :, 0])
        theta = np.column_stack([others, last])
    sigma = np.sqrt(sig2)
    mu = np.einsum("snp,sp->sn", X, theta)
    rep_resid = sigma[:, None] * rng.standard_normal(mu.shape)   # y_rep - mu
    t_obs = residual_statistics(y[None, :] - mu, sigma)
    t_rep = residual_statistics(rep_resid, sigma)
    return t_obs.mean(axis=0), np.mean(t_rep >= t_obs, axis=0)


def _most_probable(frame: pd.DataFrame, h: Hyperparameters, settings: Settings) -> list[str]:
    """Each dyad's most probable class, as the exact engine labels it (frame order)."""
    loc, sd = standardisation(frame)
    stats_ = block_stats(to_panel(frame), loc, sd, settings)
    h_std = h.standardise(loc, sd)
    L = class_log_evidence(stats_, config_evidence(stats_, h_std))
    logpost = L + np.log(np.clip(np.asarray(h.class_probs), 1e-300, None))
    return [CLASSES[k] for k in np.argmax(logpost, axis=1)]


def _check_many(series, classes, h, settings, draws, rng, bar):
    obs = np.empty((len(series), len(STATISTICS)))
    pval = np.empty_like(obs)
    for i, ((t, y), cls) in enumerate(zip(series, classes)):
        obs[i], pval[i] = check_dyad(t, y, h, cls, settings, draws, rng)
        bar.update(1)
    return obs, pval


def _exact_parts(result: Any) -> tuple[Hyperparameters, Settings]:
    method = getattr(result, "method", None)
    hyper = getattr(result, "hyperparameters", None)
    if method != "exact" or not hyper or not hasattr(result, "labels"):
        got = method if method is not None else type(result).__name__
        raise ValueError(
            "The 'result' parameter of fit_checks must be a ClassificationResult of "
            f"classify(method='exact') (the checks use its exact posterior). Got {got!r} "
            "instead; a Dask result needs .compute() first."
        )
    h = Hyperparameters.from_dict(hyper)
    s = result.settings
    settings = Settings(max_rupture_length=int(s.get("max_rupture_length", 4)),
                        u_margin=float(s.get("u_margin", 2.0)))
    return h, settings


def fit_checks(
    sessions: pd.DataFrame,
    result: Any,
    *,
    draws: int = 200,
    seed: int | np.random.Generator | None = 0,
    alpha: float = 0.01,
    calibration_dyads: int = 400,
    progress: bool | None = None,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    dropna: bool = False,
) -> pd.DataFrame:
    """Posterior predictive checks per dyad of an exact classification.

    For each dyad, under its most probable class, ``draws`` replicate series are drawn
    from the exact posterior predictive and three statistics of the residuals (lag-1
    autocorrelation, largest residual in residual SDs, kurtosis) are compared with the
    replicates'; the model and the rule are in :mod:`alliancetraj.models.changepoint.checks`.

    Parameters
    ----------
    sessions : DataFrame
        The long sessions that were classified (extra dyads are ignored).
    result : ClassificationResult
        Of ``classify(..., method="exact")``: its labels, hyperparameters and settings.
    draws : int, default 200
        Posterior predictive draws per dyad (p-values in steps of ``1 / draws``).
    seed : int or numpy.random.Generator, default 0
        The same seed gives the same numbers.
    alpha : float, default 0.01
        A dyad is flagged (``misfit``) when any calibrated p-value is below ``alpha``.
    calibration_dyads : int, default 400
        Dyads drawn from the fitted model to calibrate the p-values (see the module
        docstring); 0 skips the calibration and flags on the raw p-values (which are
        conservative: few flags).
    progress : bool, optional
        Progress bar over dyads: True everywhere, False never; default: in terminals and
        notebooks from 1,000 dyads (calibration dyads included) on.
    dyad, session, score : column names in ``sessions``.
    dropna : bool, default False
        Drop sessions without a score (with a warning), as ``classify(dropna=True)`` does.

    Returns
    -------
    DataFrame
        Index dyad (the result's order); columns ``class`` (the class checked),
        ``n_sessions``, ``lag1``, ``max_resid``, ``kurtosis`` (posterior means of the
        observed statistics), ``p_lag1``, ``p_max_resid``, ``p_kurtosis`` (posterior
        predictive p-values), ``pcal_lag1``, ``pcal_max_resid``, ``pcal_kurtosis``
        (calibrated; absent when ``calibration_dyads=0``), ``misfit`` (bool) and
        ``flagged`` (the statistics below ``alpha``, joined by ``+``; empty when none).

    Raises
    ------
    ValueError
        ``result`` is not an exact classification, or a parameter is out of range.
    DataError
        Bad sessions, or dyads of ``result`` missing from ``sessions``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=60, seed=3)
    >>> res = at.classify(cohort.sessions, method="exact")
    >>> checks = at.fit_checks(cohort.sessions, res, draws=100, seed=1)
    >>> list(checks.columns[:2]), len(checks)
    (['class', 'n_sessions'], 60)
    >>> bool(checks["p_kurtosis"].between(0, 1).all())
    True
    """
    draws = check_int(_FUNC, "draws", draws, low=20)
    calibration_dyads = check_int(_FUNC, "calibration_dyads", calibration_dyads, low=0)
    alpha = check_number(_FUNC, "alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    if progress is not None:
        check_bool(_FUNC, "progress", progress)
    rng = check_seed(_FUNC, seed)
    h, settings = _exact_parts(result)
    frame = validate_sessions(sessions, dyad=dyad, session=session, score=score,
                              dropna=check_bool(_FUNC, "dropna", dropna))
    ids = result.labels.index
    groups = dict(iter(frame.groupby("dyad", sort=False)))
    missing = [d for d in ids if d not in groups]
    if missing:
        raise DataError(
            f"Column '{dyad}': {len(missing)} dyad(s) of the result are not in the sessions "
            f"({format_ids(missing)}). Pass the sessions that were classified."
        )
    labels = result.labels.astype(str)
    series = [(groups[d]["session"].to_numpy(float), groups[d]["score"].to_numpy(float))
              for d in ids]
    n_null = calibration_dyads
    total = len(ids) + n_null
    show = progress if progress is not None else (None if total >= 1000 else False)
    with progress_bar(total=total, desc="fit checks", unit="dyad", enabled=show) as bar:
        obs, pval = _check_many(series, list(labels), h, settings, draws, rng, bar)
        if n_null:
            patterns = [series[i][0] for i in rng.integers(len(series), size=n_null)]
            null_sessions, _ = sample_on_sessions(
                patterns, h.to_dict(), seed=rng, max_rupture_length=settings.max_rupture_length,
                u_margin=settings.u_margin)
            null_frame = validate_sessions(null_sessions)
            null_series = [(g["session"].to_numpy(float), g["score"].to_numpy(float))
                           for _, g in null_frame.groupby("dyad", sort=False)]
            null_classes = _most_probable(null_frame, h, settings)
            _, null_p = _check_many(null_series, null_classes, h, settings, draws, rng, bar)
    out = pd.DataFrame({"class": pd.Categorical(labels.to_numpy(), categories=list(CLASSES)),
                        "n_sessions": [len(t) for t, _ in series]},
                       index=pd.Index(ids, name="dyad"))
    for j, name in enumerate(STATISTICS):
        out[name] = obs[:, j]
    for j, name in enumerate(STATISTICS):
        out[f"p_{name}"] = pval[:, j]
    if n_null:
        cal = np.column_stack([
            (1.0 + np.searchsorted(np.sort(null_p[:, j]), pval[:, j], side="right")) / (1 + n_null)
            for j in range(len(STATISTICS))])
        for j, name in enumerate(STATISTICS):
            out[f"pcal_{name}"] = cal[:, j]
    else:
        cal = pval
    below = cal < alpha
    out["misfit"] = below.any(axis=1)
    out["flagged"] = ["+".join(n for n, b in zip(STATISTICS, row) if b) for row in below]
    return out
