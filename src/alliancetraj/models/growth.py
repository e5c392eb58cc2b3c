"""Mixed-effects growth models (statsmodels ``MixedLM``).

:class:`GrowthModel` fits the classic growth curve of session-level alliance
ratings: fixed and per-dyad random intercept, slope and (optionally) curvature,
with linear, quadratic or piecewise-linear time (a knot fixed or profiled over a
grid by likelihood), fixed-effect covariates, REML or ML, likelihood-ratio tests,
AIC and BIC. Built on it: ``classify(method="growth")``
(:mod:`alliancetraj.models.growth_labels`) and the alliance -> symptoms model
(:mod:`alliancetraj.models.alliance_symptom`); the fitting engines are in
:mod:`alliancetraj.models.growth_fit`.

Engine
------
The model is statsmodels' :class:`~statsmodels.regression.mixed_linear_model.MixedLM`
(``use_sqrt=True`` parameterisation, one group per dyad). The default
``optimizer="fast"`` maximises the same profiled criterion, evaluated on per-dyad
sufficient statistics with an analytic gradient (see ``growth_engine.py``; the
test suite checks it equals ``MixedLM.loglike`` and ``MixedLM.score``), starting
from per-dyad least squares, on internally standardised score and time columns.
With ``polish=True`` (default) statsmodels' own ``MixedLM.loglike`` and
``MixedLM.score`` then confirm the optimum (one pass each); ``polish="full"`` hands
it to ``MixedLM.fit`` as its starting value (statsmodels' Hessian-based standard
errors). Other ``optimizer`` values run ``MixedLM.fit`` itself with that scipy
method from the same start. Estimates are always reported on the caller's scales.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import parameter_error
from ..errors import DataError, format_ids
from .growth_fit import (
    Design,
    check_boundary,
    covariate_columns,
    fast_fit,
    statsmodels_check,
    statsmodels_fit,
    validate_frame,
)

__all__ = ["GrowthModel", "compare_growth"]

#: Names that moved: classify_growth and its MIN_SESSIONS to growth_labels, the
#: alliance -> symptoms model to alliance_symptom (still importable from here).
_MOVED = {"MIN_SESSIONS": "growth_labels", "classify_growth": "growth_labels",
          "AllianceSymptomFit": "alliance_symptom", "alliance_symptom_model": "alliance_symptom"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        where = f"alliancetraj.models.{_MOVED[name]}"
        warnings.warn(f"alliancetraj.models.growth.{name} moved to {where}.{name}.",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(where), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

TIME_CODINGS = ("linear", "quadratic", "piecewise")
RANDOM_STRUCTURES = ("intercept", "slope", "curvature")
OPTIMIZERS = ("fast", "lbfgs", "bfgs", "cg", "powell", "nm")

# ============================================================================ the model
class GrowthModel:
    """Linear mixed-effects growth model of session-level scores (statsmodels ``MixedLM``).

    Parameters
    ----------
    time : {"linear", "quadratic", "piecewise"}, default "linear"
        Coding of time ``t = session - origin``. ``quadratic`` adds ``t^2``;
        ``piecewise`` adds ``max(session - knot, 0)`` (the change of slope after the
        knot), so the slope is ``b1`` before the knot and ``b1 + b2`` after it.
    random : {"intercept", "slope", "curvature"}, default "slope"
        Per-dyad random effects: intercept; intercept and slope; or intercept, slope
        and the third time term (``t^2`` or the after-knot slope), with an
        unstructured covariance.
    reml : bool, default True
        Restricted maximum likelihood (as lme4's default); False gives ML, needed to
        compare models that differ in their fixed effects.
    knot : float, "profile", sequence of floats or None, default None
        Piecewise only. A number fixes the knot (a session number); ``"profile"`` or
        None tries every session that leaves at least two distinct session numbers
        on each side, a sequence tries those values; the knot with the highest ML
        log-likelihood is kept (``knot_`` and ``knot_profile_``).
    covariates : sequence of column names, default ()
        Fixed-effect covariates (treatment arm, rater, site ...). Numeric columns
        enter as they are; other columns are dummy coded with their first (sorted)
        level as reference (terms named ``"arm[cbt]"``).
    origin : float, default 0
        Session number at which ``t = 0``: the intercept is the expected score there.
        The default reports coefficients on the caller's session numbers as given.
    optimizer : {"fast", "lbfgs", "bfgs", "cg", "powell", "nm"}, default "fast"
        ``"fast"``: the vectorised profiled likelihood with analytic gradient (see
        the module notes). Any other value runs ``MixedLM.fit(method=...)``.
    start : {"ols", "identity"}, default "ols"
        Starting covariance: per-dyad least squares (method of moments) or the
        identity (statsmodels' default).
    polish : bool or "full", default True
        With ``optimizer="fast"``: True evaluates statsmodels' ``MixedLM.loglike``
        and ``MixedLM.score`` at the optimum and accepts it only if statsmodels
        agrees (same log-likelihood, gradient ~0), else runs ``MixedLM.fit`` from it;
        ``"full"`` always runs ``MixedLM.fit`` from the optimum (statsmodels'
        Hessian-based standard errors, slower); False skips statsmodels. Except
        with ``"full"`` or another optimizer, fixed-effect standard errors are
        ``sigma^2 (X'V^-1 X)^-1`` (as lme4's).
    maxiter : int, default 1000
        Iteration limit of the optimiser.

    Attributes
    ----------
    fixed_effects : pandas.Series
        Intercept first, then the time terms, then covariates.
    random_effects_cov : pandas.DataFrame
        Covariance of the random effects (intercept first).
    residual_sd, loglik : float
        Residual standard deviation; (REML or ML) log-likelihood.
    random_effects_ : pandas.DataFrame
        Predicted random effects (BLUPs), one row per dyad.
    knot_, knot_profile_ : float, pandas.DataFrame
        Piecewise only: the knot used and the log-likelihood of each knot tried.
    sm_result_ : statsmodels MixedLMResults or None
        The statsmodels result when ``MixedLM.fit`` ran (``polish="full"``, another
        optimizer, or a failed check), else None.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=60, seed=1, class_mix={"linear": 1})
    >>> gm = at.GrowthModel(time="linear", random="slope").fit(cohort.sessions)
    >>> list(gm.fixed_effects.index)
    ['Intercept', 'session']
    >>> bool(abs(gm.fixed_effects["session"] - 0.02) < 0.02)
    True
    >>> gm.variance_components().index[0]
    'sd(Intercept)'
    """

    def __init__(
        self,
        time: str = "linear",
        random: str = "slope",
        reml: bool = True,
        *,
        knot: float | str | Sequence[float] | None = None,
        covariates: Sequence[Hashable] = (),
        origin: float = 0.0,
        optimizer: str = "fast",
        start: str = "ols",
        polish: bool | str = True,
        maxiter: int = 1000,
    ) -> None:
        self.time = time
        self.random = random
        self.reml = reml
        self.knot = knot
        self.covariates = covariates
        self.origin = origin
        self.optimizer = optimizer
        self.start = start
        self.polish = polish
        self.maxiter = maxiter

    def __repr__(self) -> str:
        return (
            f"GrowthModel(time={self.time!r}, random={self.random!r}, reml={self.reml!r}"
            + (f", knot={self.knot!r}" if self.knot is not None else "")
            + (f", covariates={list(self.covariates)!r}" if len(self.covariates) else "")
            + ")"
        )

    # ----------------------------------------------------------------- checking
    def _check(self) -> None:
        owner = "GrowthModel"
        if self.time not in TIME_CODINGS:
            raise parameter_error(owner, "time", f"one of {list(TIME_CODINGS)}", self.time)
        if self.random not in RANDOM_STRUCTURES:
            raise parameter_error(owner, "random", f"one of {list(RANDOM_STRUCTURES)}", self.random)
        if self.random == "curvature" and self.time == "linear":
            raise ValueError(
                "The 'random' parameter of GrowthModel can be 'curvature' only with "
                "time='quadratic' or 'piecewise'. Got random='curvature' with time='linear'."
            )
        if not isinstance(self.reml, (bool, np.bool_)):
            raise parameter_error(owner, "reml", "True or False", self.reml)
        if self.optimizer not in OPTIMIZERS:
            raise parameter_error(owner, "optimizer", f"one of {list(OPTIMIZERS)}", self.optimizer)
        if self.start not in ("ols", "identity"):
            raise parameter_error(owner, "start", "'ols' or 'identity'", self.start)
        if (
            isinstance(self.maxiter, bool)
            or not isinstance(self.maxiter, (int, np.integer))
            or self.maxiter < 1
        ):
            raise parameter_error(owner, "maxiter", "an int >= 1", self.maxiter)
        if not (isinstance(self.polish, (bool, np.bool_)) or self.polish == "full"):
            raise parameter_error(owner, "polish", "True, False or 'full'", self.polish)
        if not np.isfinite(float(self.origin)):
            raise parameter_error(owner, "origin", "a finite number", self.origin)
        if isinstance(self.covariates, (str, bytes)):
            raise parameter_error(owner, "covariates", "a list of column names", self.covariates)
        if self.time != "piecewise" and self.knot is not None:
            raise ValueError(
                f"The 'knot' parameter of GrowthModel applies to time='piecewise' only. Got "
                f"knot={self.knot!r} with time={self.time!r}."
            )

    def _knot_grid(self, time: np.ndarray) -> list[float]:
        if self.knot is None or (isinstance(self.knot, str) and self.knot == "profile"):
            values = np.unique(time)
            grid = values[2:-2] if len(values) >= 5 else np.array([])
            if len(grid) == 0:
                raise DataError(
                    "Profiling the knot needs at least five distinct session numbers (two on "
                    "each side of a knot). Give knot=<session> explicitly or use time='linear'."
                )
            return [float(v) for v in grid]
        if isinstance(self.knot, str):
            raise parameter_error("GrowthModel", "knot", "a number, a list of numbers, 'profile' or None", self.knot
            )
        grid = np.atleast_1d(np.asarray(self.knot, dtype=float))
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise parameter_error("GrowthModel", "knot", "finite session number(s)", self.knot)
        lo, hi = time.min(), time.max()
        if np.any((grid <= lo) | (grid >= hi)):
            raise DataError(
                f"Knot(s) {format_ids(grid[(grid <= lo) | (grid >= hi)].tolist())} lie outside "
                f"the observed sessions ({lo:g} to {hi:g}): a knot must be strictly inside."
            )
        return [float(v) for v in grid]

    # --------------------------------------------------------------------- design
    def _design(
        self, data: pd.DataFrame, offset: int, session_name: str, knot: float | None
    ) -> Design:
        t_caller = data["session"].to_numpy(dtype=float) - offset
        t = t_caller - float(self.origin)
        cols = [np.ones_like(t), t]
        names = ["Intercept", session_name]
        if self.time == "quadratic":
            cols.append(t**2)
            names.append(f"{session_name}^2")
        elif self.time == "piecewise":
            cols.append(np.maximum(t_caller - knot, 0.0))
            names.append(f"{session_name}_after_knot")
        n_re = {"intercept": 1, "slope": 2, "curvature": 3}[self.random]
        cov_names, cov_cols = covariate_columns(data, list(self.covariates))
        X = np.column_stack([*cols, cov_cols])
        codes, uniques = pd.factorize(data["dyad"], sort=False)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        return Design(
            y=data["score"].to_numpy(dtype=float),
            X=X,
            re_idx=list(range(n_re)),
            names=names + cov_names,
            starts=starts,
            dyads=pd.Index(uniques, name="dyad"),
            time=t_caller,
        )

    # ------------------------------------------------------------------------ fit
    def fit(
        self,
        frame: pd.DataFrame,
        *,
        dyad: Hashable = "dyad",
        session: Hashable = "session",
        score: Hashable = "score",
    ) -> GrowthModel:
        """Fit the model to long session data.

        Parameters
        ----------
        frame : pandas.DataFrame
            Long format, one row per rated session (not modified). Session numbers
            are integers; they may start at 0 or below (they are used as given).
        dyad, session, score : column names

        Returns
        -------
        GrowthModel
            ``self``, fitted.

        Raises
        ------
        DataError
            When the data violate the data contract or a covariate is unusable.
        """
        self._check()
        data, offset = validate_frame(frame, dyad, session, score)
        n_dyads = data["dyad"].nunique()
        n_re = {"intercept": 1, "slope": 2, "curvature": 3}[self.random]
        if n_dyads < n_re + 2:
            raise DataError(
                f"A growth model with random={self.random!r} needs at least {n_re + 2} dyads; "
                f"the data hold {n_dyads}."
            )
        session_name = str(session)
        knot = None
        self.knot_profile_ = None
        if self.time == "piecewise":
            time_caller = data["session"].to_numpy(dtype=float) - offset
            grid = self._knot_grid(time_caller)
            if len(grid) > 1:
                lls = []
                for k in grid:
                    des = self._design(data, offset, session_name, k)
                    lls.append(
                        fast_fit(des, reml=False, maxiter=self.maxiter, start=self.start)["loglik"]
                    )
                self.knot_profile_ = pd.DataFrame({"knot": grid, "ml_loglik": lls})
                knot = grid[int(np.nanargmax(lls))]
            else:
                knot = grid[0]
        self.knot_ = knot
        design = self._design(data, offset, session_name, knot)
        rank = np.linalg.matrix_rank(design.X)
        if rank < design.X.shape[1]:
            raise DataError(
                f"The fixed-effect design (terms {design.names}) is rank deficient: a covariate "
                "is collinear with time or with another covariate. Leave one of them out."
            )
        out = self._fit_design(design)
        self._store(design, out, session_name)
        return self

    def _fit_design(self, design: Design) -> dict[str, Any]:
        if self.optimizer == "fast":
            out = fast_fit(design, reml=bool(self.reml), maxiter=self.maxiter, start=self.start)
            if self.polish == "full":
                out = statsmodels_fit(
                    design,
                    reml=bool(self.reml),
                    theta0=out["theta_s"],
                    method="lbfgs",
                    maxiter=self.maxiter,
                    prior=out,
                )
            elif self.polish:
                out = statsmodels_check(
                    design, reml=bool(self.reml), out=out, maxiter=self.maxiter
                )
        else:
            out = statsmodels_fit(
                design,
                reml=bool(self.reml),
                theta0=None,
                method=self.optimizer,
                maxiter=self.maxiter,
                start=self.start,
            )
        check_boundary(out, design)
        return out

    def _store(self, design: Design, out: dict[str, Any], session_name: str) -> None:
        names = design.names
        re_names = [names[j] for j in design.re_idx]
        self._design_ = design
        self.session_name_ = session_name
        self.term_names_ = names
        self.fixed_effects_ = pd.Series(
            out["beta"], index=pd.Index(names, name="term"), name="estimate"
        )
        self.fixed_cov_ = pd.DataFrame(out["beta_cov"], index=names, columns=names)
        self.random_effects_cov_ = pd.DataFrame(out["psi"], index=re_names, columns=re_names)
        self.residual_sd_ = float(np.sqrt(out["sigma2"]))
        self.loglik_ = float(out["loglik"])
        self.random_effects_ = pd.DataFrame(out["blup"], index=design.dyads, columns=re_names)
        self.random_effects_conditional_cov_ = out["blup_cov"]
        self.converged_ = bool(out["converged"])
        self.diagnostics_ = out["diagnostics"]
        self.sm_result_ = out.get("sm_result")
        self.n_obs_ = len(design.y)
        self.n_dyads_ = len(design.dyads)
        self.n_params_ = int(len(names) + len(re_names) * (len(re_names) + 1) // 2 + 1)
        self._fingerprint = (self.n_obs_, self.n_dyads_, float(np.round(design.y.sum(), 6)))

    # ---------------------------------------------------------------- properties
    def _require_fit(self) -> None:
        if not hasattr(self, "fixed_effects_"):
            raise RuntimeError(
                "This GrowthModel is not fitted yet. Call "
                "fit(frame, dyad=..., session=..., score=...) first."
            )

    @property
    def fixed_effects(self) -> pd.Series:
        """Fixed effects: intercept, time terms, covariates (caller's scales)."""
        self._require_fit()
        return self.fixed_effects_.copy()

    @property
    def random_effects_cov(self) -> pd.DataFrame:
        """Covariance matrix of the random effects (intercept first)."""
        self._require_fit()
        return self.random_effects_cov_.copy()

    @property
    def residual_sd(self) -> float:
        """Residual (within-dyad) standard deviation."""
        self._require_fit()
        return self.residual_sd_

    @property
    def loglik(self) -> float:
        """Maximised log-likelihood: REML when ``reml=True`` (as lme4 reports it), else ML."""
        self._require_fit()
        return self.loglik_

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``-2 loglik + 2 k`` (k: all parameters)."""
        self._require_fit()
        return -2.0 * self.loglik_ + 2.0 * self.n_params_

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``-2 loglik + k log(n_obs)`` (as lme4)."""
        self._require_fit()
        return -2.0 * self.loglik_ + self.n_params_ * np.log(self.n_obs_)

    # ---------------------------------------------------------------- tidy tables
    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects with standard errors, Wald z, p-values and confidence intervals."""
        from scipy import stats

        self._require_fit()
        est = self.fixed_effects_.to_numpy()
        se = np.sqrt(np.diag(self.fixed_cov_.to_numpy()))
        z = est / se
        crit = stats.norm.ppf(0.5 + level / 2)
        return pd.DataFrame(
            {
                "estimate": est,
                "std_error": se,
                "z": z,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
                "ci_low": est - crit * se,
                "ci_high": est + crit * se,
            },
            index=self.fixed_effects_.index,
        )

    def variance_components(self) -> pd.DataFrame:
        """Random-effect SDs and correlations and the residual SD (one ``estimate`` column)."""
        self._require_fit()
        cov = self.random_effects_cov_
        sd = np.sqrt(np.diag(cov.to_numpy()))
        rows: dict[str, float] = {f"sd({n})": s for n, s in zip(cov.index, sd, strict=True)}
        for i in range(len(sd)):
            for j in range(i):
                denom = sd[i] * sd[j]
                rows[f"cor({cov.index[j]},{cov.index[i]})"] = (
                    cov.iat[i, j] / denom if denom > 0 else np.nan
                )
        rows["sd(Residual)"] = self.residual_sd_
        return pd.DataFrame({"estimate": pd.Series(rows)}).rename_axis("component")

    def trajectories(self, sessions: Sequence[float] | None = None) -> pd.DataFrame:
        """Per-dyad predicted trajectories (fixed effects plus BLUPs).

        Parameters
        ----------
        sessions : sequence of session numbers, optional
            Predict every dyad at these sessions (covariates are taken from the
            dyad's first session). Default: each dyad's observed sessions.

        Returns
        -------
        pandas.DataFrame
            Columns ``dyad``, ``session`` (caller's scale), ``fitted`` (fixed plus
            random effects) and ``population`` (fixed effects only).
        """
        self._require_fit()
        d = self._design_
        beta = self.fixed_effects_.to_numpy()
        blup = self.random_effects_.to_numpy()
        re_idx = d.re_idx
        if sessions is None:
            X = d.X
            codes = np.repeat(np.arange(len(d.dyads)), np.diff(np.append(d.starts, len(d.y))))
            time = d.time
        else:
            grid = np.asarray(sessions, dtype=float)
            codes = np.repeat(np.arange(len(d.dyads)), len(grid))
            time = np.tile(grid, len(d.dyads))
            X = self._time_columns(time, d.X[d.starts][codes])
        pop = X @ beta
        fitted = pop + np.einsum("ij,ij->i", X[:, re_idx], blup[codes])
        return pd.DataFrame(
            {"dyad": d.dyads[codes], "session": time, "fitted": fitted, "population": pop}
        )

    def _time_columns(self, time: np.ndarray, template: np.ndarray) -> np.ndarray:
        X = template.copy()
        t = time - float(self.origin)
        X[:, 0] = 1.0
        X[:, 1] = t
        if self.time == "quadratic":
            X[:, 2] = t**2
        elif self.time == "piecewise":
            X[:, 2] = np.maximum(time - self.knot_, 0.0)
        return X

    def compare(self, *others: GrowthModel) -> pd.DataFrame:
        """Compare this fit with others: see :func:`compare_growth`."""
        return compare_growth(self, *others)


# ============================================================================ comparison
def compare_growth(*models: GrowthModel) -> pd.DataFrame:
    """Compare fitted growth models by likelihood-ratio tests, AIC and BIC.

    Models are ordered by their number of parameters; each is tested against the
    previous one (``lr_stat = 2 (loglik - loglik_prev)`` on the difference in
    parameters, chi-square; conservative when a variance is tested at zero).

    Parameters
    ----------
    *models : GrowthModel
        Fitted to the same data. REML fits may be compared only when their fixed
        effects are the same (they then differ in random effects); otherwise refit
        with ``reml=False``.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``time``, ``random``, ``reml``, ``n_params``,
        ``loglik``, ``aic``, ``bic``, ``lr_stat``, ``df``, ``p_value``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> s = at.simulate_cohort(n_dyads=50, seed=2, class_mix={"linear": 1}).sessions
    >>> lin = at.GrowthModel(reml=False).fit(s)
    >>> quad = at.GrowthModel(time="quadratic", reml=False).fit(s)
    >>> list(at.models.growth.compare_growth(lin, quad)["n_params"])
    [6, 7]
    """
    from scipy import stats

    if len(models) < 2:
        raise ValueError("compare_growth needs at least two fitted GrowthModel objects.")
    for m in models:
        if not isinstance(m, GrowthModel):
            raise TypeError(f"compare_growth takes GrowthModel objects; got {type(m).__name__}.")
        m._require_fit()
    if len({m._fingerprint for m in models}) > 1:
        raise ValueError("The models were fitted to different data; compare fits of the same data.")
    if len({bool(m.reml) for m in models}) > 1:
        raise ValueError("Compare either REML fits or ML fits, not a mix (refit with one reml=).")
    same_fixed = len({(tuple(m.term_names_), m.knot_) for m in models}) == 1
    if models[0].reml and not same_fixed:
        raise ValueError(
            "REML likelihoods of models with different fixed effects are not comparable. Refit "
            "the models with reml=False to compare time codings or covariates."
        )
    ordered = sorted(models, key=lambda m: m.n_params_)
    rows = []
    prev = None
    for m in ordered:
        row = {
            "model": repr(m),
            "time": m.time,
            "random": m.random,
            "reml": bool(m.reml),
            "n_params": m.n_params_,
            "loglik": m.loglik_,
            "aic": m.aic,
            "bic": m.bic,
            "lr_stat": np.nan,
            "df": np.nan,
            "p_value": np.nan,
        }
        if prev is not None and m.n_params_ > prev.n_params_:
            lr = max(2.0 * (m.loglik_ - prev.loglik_), 0.0)
            df = m.n_params_ - prev.n_params_
            row.update(lr_stat=lr, df=float(df), p_value=float(stats.chi2.sf(lr, df)))
        rows.append(row)
        prev = m
    return pd.DataFrame(rows)


