"""The result type of :func:`alliancetraj.relate_outcomes` and its tables and tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import format_ids

__all__ = ["EFFECT_COLUMNS", "METHODS", "OutcomeFit", "effects_frame", "rubin_omnibus", "wald"]

#: Estimators of :func:`relate_outcomes` and whether each is a naive baseline.
METHODS: dict[str, str] = {
    "bch": "bias-adjusted three-step (BCH, Vermunt 2010), dyad-clustered sandwich SEs",
    "ml": "maximum-likelihood three-step (Vermunt 2010; Bakk et al. 2013), sandwich SEs",
    "draws": "naive: pseudo-class draws pooled by Rubin's rules (attenuated)",
    "modal": "naive: regression on the most probable class (attenuated)",
    "joint": "joint Bayesian outcome sub-model (PyMC results with a joint outcome model)",
}
EFFECT_COLUMNS = ["estimate", "std_error", "ci_low", "ci_high", "p_value"]


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
        ratios (binomial) relative to ``reference``, in the outcome's own units. NaN
        for a class that cannot be estimated (fewer than two assigned dyads; binomial:
        every assigned dyad has the same outcome) or when the fit has no finite
        solution; ``notes`` says why.
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
        Caveats raised during fitting (also issued as warnings), each naming the cause
        and the fix (constant covariates, classes that cannot be estimated,
        separation, a two-valued outcome under the gaussian family, ...).
    counts : pandas.DataFrame or None
        The exact counts behind the fit: dyads assigned (modal class) to each class,
        column ``n_assigned``; for ``binomial`` also ``n_outcome_0`` and
        ``n_outcome_1`` (a class whose assigned dyads all share one outcome value
        separates the data). None for ``joint``.
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
    counts: pd.DataFrame | None = None

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
        if self.settings.get("firth"):
            lines.append("Penalised (Firth) logistic fit: finite estimates under separation, "
                         "Wald intervals")
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


def effects_frame(names: Sequence[str], est, se, alpha: float, dist=None) -> pd.DataFrame:
    """Estimates, SEs, Wald (or Rubin t) intervals and p-values, one row per term."""
    est = np.asarray(est, float)
    se = np.asarray(se, float)
    se = np.where(se > 0, se, np.nan)  # a zero SE is no information, never p = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if dist is None:
            crit = stats.norm.ppf(1 - alpha / 2)
            p = 2 * stats.norm.sf(np.abs(est / se))
        else:  # per-coefficient t degrees of freedom (Rubin's rules)
            crit = stats.t.ppf(1 - alpha / 2, dist)
            p = 2 * stats.t.sf(np.abs(est / se), dist)
    return pd.DataFrame(
        {"estimate": est, "std_error": se, "ci_low": est - crit * se,
         "ci_high": est + crit * se, "p_value": p},
        index=pd.Index(list(names), name="term"),
    )


def wald(est: np.ndarray, cov: np.ndarray, df_denom: float | None = None) -> dict[str, Any]:
    """Wald test that every entry of ``est`` is zero (NaN when undefined).

    Chi-square; with ``df_denom`` the F form (statistic / k on k and ``df_denom`` df).
    """
    k = len(est)
    nan = ({"test": "chi2", "statistic": np.nan, "df": k, "p_value": np.nan}
           if df_denom is None else
           {"test": "F", "statistic": np.nan, "df": k, "df_denom": float(df_denom),
            "p_value": np.nan})
    if k == 0 or not np.all(np.isfinite(cov)) or not np.all(np.isfinite(est)):
        return nan
    try:
        stat = float(est @ np.linalg.solve(cov, est))
    except np.linalg.LinAlgError:
        return nan
    if df_denom is not None:
        return {"test": "F", "statistic": stat / k, "df": k, "df_denom": float(df_denom),
                "p_value": float(stats.f.sf(stat / k, k, df_denom))}
    return {"test": "chi2", "statistic": stat, "df": k, "p_value": float(stats.chi2.sf(stat, k))}


def rubin_omnibus(q: np.ndarray, u: np.ndarray, b: np.ndarray, m: int) -> dict[str, Any]:
    """The D1 statistic of Li, Raghunathan & Rubin (1991) for multiply drawn classes."""
    k = len(q)
    if k == 0 or not np.all(np.isfinite(q)) or not np.all(np.isfinite(u)):
        return {"test": "F", "statistic": np.nan, "df": k, "p_value": np.nan}
    r1 = (1 + 1 / m) * np.trace(b @ np.linalg.inv(u)) / k
    stat = float(q @ np.linalg.solve((1 + r1) * u, q) / k)
    t = k * (m - 1)
    if t > 4:
        df2 = 4 + (t - 4) * (1 + (1 - 2 / t) / r1) ** 2 if r1 > 0 else np.inf
    else:
        df2 = t * (1 + 1 / k) * (1 + 1 / r1) ** 2 / 2 if r1 > 0 else np.inf
    p = float(stats.f.sf(stat, k, df2)) if np.isfinite(df2) else float(stats.chi2.sf(stat * k, k))
    return {"test": "F", "statistic": stat, "df": k, "df_denom": float(df2), "p_value": p}


