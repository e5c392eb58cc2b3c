"""Causal mediation through the alliance: exposure -> alliance -> outcome.

Moran et al. (2014) found that providers' recovery-promoting strategies raise the
working alliance, which in turn raises personal recovery. :func:`mediation` tests
such a chain with statsmodels' :class:`~statsmodels.stats.mediation.Mediation`
(Imai, Keele & Tingley 2010): a mediator model (alliance on exposure and
covariates) and an outcome model (outcome on exposure, alliance and covariates),
with bootstrap or quasi-Bayesian (``"parametric"``) intervals for the indirect
effect. The alliance mediator is a per-dyad summary of the session series (mean
level or slope, see :func:`alliance_summary`), a class probability from a
:class:`~alliancetraj.ClassificationResult`, or any column of the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_choice, check_int, parameter_error
from .errors import DataError, ExcludedDyadsWarning, format_ids
from .results import CLASSES, ClassificationResult

__all__ = ["MediationFit", "alliance_summary", "mediation"]

_METHODS = {"bootstrap": "bootstrap", "parametric": "parametric", "quasi_bayes": "parametric"}
_ROWS = {
    "ACME (average)": "indirect",
    "ADE (average)": "direct",
    "Total effect": "total",
    "Prop. mediated (average)": "proportion_mediated",
}


@dataclass(eq=False)
class MediationFit:
    """Result of :func:`mediation`.

    Attributes
    ----------
    effects : pandas.DataFrame
        Rows ``indirect`` (average causal mediated effect), ``direct`` (average direct
        effect), ``total`` and ``proportion_mediated``; columns ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``. Effects are for a change of the exposure
        from ``contrast[0]`` to ``contrast[1]``.
    indirect : float
        Shortcut for ``effects.loc["indirect", "estimate"]``.
    mediator : str
        What the mediator was (e.g. ``"alliance mean level"``).
    method : str
        ``"bootstrap"`` or ``"parametric"`` (quasi-Bayesian).
    n_dyads : int
    excluded : list
        Dyads left out for a missing value.
    contrast : tuple of float
    statsmodels_result : statsmodels MediationResults
        The full result (``.summary()`` gives statsmodels' table).
    """

    effects: pd.DataFrame
    mediator: str
    exposure: str
    outcome: str
    method: str
    n_dyads: int
    n_rep: int
    contrast: tuple[float, float]
    covariates: list[str] = field(default_factory=list)
    excluded: list[Any] = field(default_factory=list)
    statsmodels_result: Any = None

    @property
    def indirect(self) -> float:
        return float(self.effects.loc["indirect", "estimate"])

    def __repr__(self) -> str:
        return (f"MediationFit({self.exposure!r} -> {self.mediator!r} -> {self.outcome!r}, "
                f"indirect={self.indirect:.4g}, method={self.method!r}, n_dyads={self.n_dyads})")

    def summary(self) -> str:
        """A readable report of the indirect, direct and total effects."""
        kind = "bootstrap" if self.method == "bootstrap" else "quasi-Bayesian"
        lines = [
            f"Mediation: {self.exposure} -> {self.mediator} -> {self.outcome}",
            f"Exposure contrast: {self.contrast[0]:g} -> {self.contrast[1]:g}; "
            f"covariates: {', '.join(self.covariates) if self.covariates else 'none'}",
            f"Intervals: {kind}, {self.n_rep} replications; dyads: {self.n_dyads} used, "
            f"{len(self.excluded)} excluded",
            "",
            self.effects.to_string(float_format=lambda v: f"{v: .4f}"),
        ]
        return "\n".join(lines)


def alliance_summary(
    sessions: pd.DataFrame,
    result: ClassificationResult | None = None,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
) -> pd.DataFrame:
    """Per-dyad alliance summaries to use as mediators.

    Parameters
    ----------
    sessions : DataFrame
        Long session data (validated with :func:`alliancetraj.load_sessions`).
    result : ClassificationResult, optional
        Adds one column ``p_<class>`` per class with the class probabilities.
    dyad, session, score : column names

    Returns
    -------
    DataFrame
        Index dyad; ``alliance_mean`` (mean of the observed scores),
        ``alliance_slope`` (least-squares slope per session; NaN with one session),
        ``n_sessions`` and, with ``result``, ``p_linear`` ... ``p_unrepaired_rupture``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.mediation import alliance_summary
    >>> cohort = at.simulate_cohort(n_dyads=5, seed=2)
    >>> s = alliance_summary(cohort.sessions)
    >>> list(s.columns)
    ['alliance_mean', 'alliance_slope', 'n_sessions']
    """
    from .io import load_sessions

    frame = load_sessions(sessions, dyad=dyad, session=session, score=score)
    g = frame.groupby("dyad", sort=False)
    t = frame["session"].astype(float)
    tc = t - g["session"].transform("mean")
    yc = frame["score"] - g["score"].transform("mean")
    sxy = (tc * yc).groupby(frame["dyad"], sort=False).sum()
    sxx = (tc * tc).groupby(frame["dyad"], sort=False).sum()
    out = pd.DataFrame({
        "alliance_mean": g["score"].mean(),
        "alliance_slope": (sxy / sxx.where(sxx > 0)).astype(float),
        "n_sessions": g["session"].size().astype(np.int64),
    })
    out.index.name = "dyad"
    if result is not None:
        probs = result.probabilities.add_prefix("p_")
        probs.columns.name = None
        out = out.join(probs, how="left")
    return out


def _numeric(frame: pd.DataFrame, col: Hashable, role: str) -> np.ndarray:
    raw = frame[col]
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype(float).to_numpy()
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = (num.isna() & raw.notna()).to_numpy() | np.isinf(num.to_numpy())
    if bad.any():
        raise DataError(
            f"Column {col!r} ({role}) has {bad.sum()} non-numeric or infinite value(s) for "
            f"dyad(s) {format_ids(frame.index[bad].tolist())}. Convert it to finite numbers."
        )
    return num.to_numpy()


def mediation(
    data: pd.DataFrame,
    *,
    exposure: Hashable,
    outcome: Hashable,
    mediator: Hashable = "mean",
    covariates: Sequence[Hashable] | None = None,
    sessions: pd.DataFrame | None = None,
    result: ClassificationResult | None = None,
    dyad: Hashable | None = None,
    session: Hashable = "session",
    score: Hashable = "score",
    family: str = "gaussian",
    method: str = "bootstrap",
    n_rep: int = 1000,
    contrast: tuple[float, float] = (0.0, 1.0),
    seed: int | np.random.Generator | None = None,
) -> MediationFit:
    """Estimate how much of an exposure's effect on an outcome runs through the alliance.

    Fits a mediator model (alliance ~ exposure + covariates, OLS) and an outcome model
    (outcome ~ exposure + alliance + covariates; OLS, or logistic for
    ``family="binomial"``) and passes them to statsmodels'
    :class:`~statsmodels.stats.mediation.Mediation` (Imai, Keele & Tingley 2010).

    Parameters
    ----------
    data : DataFrame
        One row per dyad (index dyad id, or a ``dyad`` column) with the exposure, the
        outcome and the covariates (and the mediator when it is a column).
    exposure, outcome : column names
        E.g. providers' recovery-promoting strategies (RPRS) and personal recovery (RAS).
    mediator : str, default "mean"
        ``"mean"`` (mean alliance level) or ``"slope"`` (alliance slope per session),
        computed from ``sessions``; a class name (e.g. ``"v_shaped"``): that class's
        probability from ``result``; or a column of ``data``.
    covariates : list of column names, optional
    sessions : DataFrame, optional
        Long session data, needed for ``mediator="mean"`` or ``"slope"``.
    result : ClassificationResult, optional
        Needed when the mediator is a class probability.
    dyad : column name, optional
        Column of ``data`` holding the dyad id (default: the index). Also the dyad
        column of ``sessions`` (default ``"dyad"``).
    session, score : column names in ``sessions``
    family : {"gaussian", "binomial"}, default "gaussian"
        Outcome model family.
    method : {"bootstrap", "parametric", "quasi_bayes"}, default "bootstrap"
        Nonparametric bootstrap of both models, or quasi-Bayesian simulation of their
        parameters from their asymptotic normal distributions (``"parametric"``,
        alias ``"quasi_bayes"``).
    n_rep : int, default 1000
        Bootstrap or simulation replications.
    contrast : (float, float), default (0, 1)
        Exposure values compared: effects are for a change from ``contrast[0]`` to
        ``contrast[1]`` (for a standardised exposure, (0, 1) is one SD).
    seed : int or numpy Generator, optional

    Returns
    -------
    MediationFit

    Examples
    --------
    >>> import alliancetraj as at
    >>> sim = at.simulate_mediation(n_dyads=200, seed=1)
    >>> fit = at.mediation(sim.data, exposure="strategies", outcome="recovery",
    ...                    mediator="mean", sessions=sim.sessions, n_rep=50, seed=1)
    >>> list(fit.effects.index)
    ['indirect', 'direct', 'total', 'proportion_mediated']
    """
    import statsmodels.api as sm
    from statsmodels.stats.mediation import Mediation

    check_choice("mediation", "method", method, list(_METHODS))
    check_choice("mediation", "family", family, ("gaussian", "binomial"))
    n_rep = check_int("mediation", "n_rep", n_rep, low=10)
    try:
        c0, c1 = (float(v) for v in contrast)
    except (TypeError, ValueError):
        c0 = c1 = np.nan
    if not (np.isfinite(c0) and np.isfinite(c1) and c0 != c1):
        raise parameter_error("mediation", "contrast", "two different finite numbers", contrast)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"Data must be a pandas DataFrame; got {type(data).__name__}.")
    covariates = [] if covariates is None else (
        [covariates] if isinstance(covariates, str) else list(covariates))
    frame = data.set_index(dyad) if dyad is not None else data
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()].unique().tolist()
        raise DataError(f"The data have duplicated dyad id(s) {format_ids(dup)}; keep one row "
                        "per dyad.")
    missing = [c for c in (exposure, outcome, *covariates) if c not in frame.columns]
    if missing:
        raise DataError(
            f"Column(s) {format_ids(missing)} are not in the data; columns are "
            f"{format_ids(list(frame.columns), 10)}."
        )

    # the mediator -------------------------------------------------------------------
    if mediator in frame.columns:
        med_values = frame[mediator]
        med_label = str(mediator)
    elif mediator in ("mean", "slope") or mediator in CLASSES:
        if mediator in CLASSES:
            if result is None:
                raise ValueError(
                    f"mediator={mediator!r} is a class probability: pass result= (a "
                    "ClassificationResult)."
                )
            summ = result.probabilities[mediator]
            med_label = f"P({mediator})"
        else:
            if sessions is None:
                raise ValueError(
                    f"mediator={mediator!r} is computed from the session series: pass "
                    "sessions= (long session data)."
                )
            summ = alliance_summary(sessions, dyad=dyad if dyad is not None else "dyad",
                                    session=session, score=score)[f"alliance_{mediator}"]
            med_label = f"alliance {'mean level' if mediator == 'mean' else 'slope'}"
        unknown = frame.index.difference(summ.index)
        source = "result" if mediator in CLASSES else "sessions"
        if len(unknown) == len(frame):
            raise DataError(
                f"None of the data's dyad ids are in the {source} (e.g. "
                f"{format_ids(unknown.tolist())}). Index the data by the same dyad ids."
            )
        med_values = summ.reindex(frame.index)
    else:
        raise ValueError(
            f"Unknown mediator {mediator!r}: give 'mean', 'slope', a class name "
            f"{list(CLASSES)} or a column of the data."
        )

    cols = {"exposure": _numeric(frame, exposure, "exposure"),
            "outcome": _numeric(frame, outcome, "outcome")}
    med = pd.to_numeric(med_values, errors="coerce").to_numpy(dtype=float)
    X = {f"cov{j}": _numeric(frame, c, "covariate") for j, c in enumerate(covariates)}
    table = pd.DataFrame({"exposure": (cols["exposure"] - c0) / (c1 - c0), "mediator": med,
                          **X, "outcome": cols["outcome"]}, index=frame.index)
    drop = table.isna().any(axis=1).to_numpy()
    excluded = frame.index[drop].tolist()
    if drop.any():
        warnings.warn(
            f"Excluded {drop.sum()} of {len(table)} dyad(s) from the mediation analysis for a "
            f"missing exposure, mediator, outcome or covariate ({format_ids(excluded)}).",
            ExcludedDyadsWarning,
            stacklevel=2,
        )
    table = table.loc[~drop]
    if len(table) < len(covariates) + 5:
        raise DataError(f"Only {len(table)} complete dyad(s): too few for mediation analysis.")
    if family == "binomial" and not np.isin(table["outcome"], (0.0, 1.0)).all():
        raise DataError(f"Column {outcome!r} (outcome) must hold 0/1 for family='binomial'.")

    cov_names = list(X)
    exog_m = sm.add_constant(table[["exposure", *cov_names]], has_constant="add")
    exog_o = sm.add_constant(table[["exposure", "mediator", *cov_names]], has_constant="add")
    mediator_model = sm.OLS(table["mediator"], exog_m)
    if family == "binomial":
        outcome_model = sm.GLM(table["outcome"], exog_o, family=sm.families.Binomial())
    else:
        outcome_model = sm.OLS(table["outcome"], exog_o)
    med_obj = Mediation(outcome_model, mediator_model, "exposure", mediator="mediator")
    rng = np.random.default_rng(seed)
    raw = med_obj.fit(method=_METHODS[method], n_rep=int(n_rep), rng=rng)
    smry = raw.summary()
    effects = smry.loc[list(_ROWS)].astype(float)
    effects.index = pd.Index(list(_ROWS.values()), name="effect")
    effects.columns = ["estimate", "ci_low", "ci_high", "p_value"]
    return MediationFit(
        effects=effects, mediator=med_label, exposure=str(exposure), outcome=str(outcome),
        method=_METHODS[method], n_dyads=len(table), n_rep=int(n_rep), contrast=(c0, c1),
        covariates=[str(c) for c in covariates], excluded=excluded, statsmodels_result=raw,
    )
