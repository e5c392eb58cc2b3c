"""Mixed-effects growth models (statsmodels ``MixedLM``) and ``classify(method="growth")``.

:class:`GrowthModel` fits the classic growth curve of session-level alliance
ratings: fixed and per-dyad random intercept, slope and (optionally) curvature,
with linear, quadratic or piecewise-linear time (a knot fixed or profiled over a
grid by likelihood), fixed-effect covariates, REML or ML, likelihood-ratio tests,
AIC and BIC. :func:`classify_growth` labels each dyad from its predicted (BLUP)
trajectory; :func:`alliance_symptom_model` splits the previous session's alliance
into a between-dyad (trait-like) and a within-dyad (state-like) part as a
predictor of session-level symptoms (Falkenström et al. 2013; Zilcha-Mano 2016).

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

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, DataError, format_ids
from ..io import validate_sessions
from ..results import CLASSES, ClassificationResult
from . import growth_engine as engine

__all__ = [
    "MIN_SESSIONS",
    "AllianceSymptomFit",
    "GrowthModel",
    "alliance_symptom_model",
    "classify_growth",
    "compare_growth",
]

#: Shortest series :func:`classify_growth` labels (a quadratic needs >= 4 points to
#: leave any residual information).
MIN_SESSIONS = 4

TIME_CODINGS = ("linear", "quadratic", "piecewise")
RANDOM_STRUCTURES = ("intercept", "slope", "curvature")
OPTIMIZERS = ("fast", "lbfgs", "bfgs", "cg", "powell", "nm")

_ADVICE = (
    "Try: rescaling the score (e.g. to 0-1 or z-scores) and centring the session numbers "
    "(origin=...); fewer random effects (random='slope' or 'intercept'); or another "
    "optimizer (optimizer='lbfgs', 'bfgs', 'powell' or 'nm')."
)


def _param_error(name: str, owner: str, must: str, got: object) -> ValueError:
    return ValueError(f"The '{name}' parameter of {owner} must be {must}. Got {got!r} instead.")


# ============================================================================ data prep
def _validated(
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


def _covariate_columns(
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
class _Design:
    y: np.ndarray
    X: np.ndarray
    re_idx: list[int]
    names: list[str]
    starts: np.ndarray
    dyads: pd.Index
    time: np.ndarray  # caller's time scale (session - offset)


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
            raise _param_error("time", owner, f"one of {list(TIME_CODINGS)}", self.time)
        if self.random not in RANDOM_STRUCTURES:
            raise _param_error("random", owner, f"one of {list(RANDOM_STRUCTURES)}", self.random)
        if self.random == "curvature" and self.time == "linear":
            raise ValueError(
                "The 'random' parameter of GrowthModel can be 'curvature' only with "
                "time='quadratic' or 'piecewise'. Got random='curvature' with time='linear'."
            )
        if not isinstance(self.reml, (bool, np.bool_)):
            raise _param_error("reml", owner, "True or False", self.reml)
        if self.optimizer not in OPTIMIZERS:
            raise _param_error("optimizer", owner, f"one of {list(OPTIMIZERS)}", self.optimizer)
        if self.start not in ("ols", "identity"):
            raise _param_error("start", owner, "'ols' or 'identity'", self.start)
        if (
            isinstance(self.maxiter, bool)
            or not isinstance(self.maxiter, (int, np.integer))
            or self.maxiter < 1
        ):
            raise _param_error("maxiter", owner, "an int >= 1", self.maxiter)
        if not (isinstance(self.polish, (bool, np.bool_)) or self.polish == "full"):
            raise _param_error("polish", owner, "True, False or 'full'", self.polish)
        if not np.isfinite(float(self.origin)):
            raise _param_error("origin", owner, "a finite number", self.origin)
        if isinstance(self.covariates, (str, bytes)):
            raise _param_error("covariates", owner, "a list of column names", self.covariates)
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
            raise _param_error(
                "knot", "GrowthModel", "a number, a list of numbers, 'profile' or None", self.knot
            )
        grid = np.atleast_1d(np.asarray(self.knot, dtype=float))
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise _param_error("knot", "GrowthModel", "finite session number(s)", self.knot)
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
    ) -> _Design:
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
        cov_names, cov_cols = _covariate_columns(data, list(self.covariates))
        X = np.column_stack([*cols, cov_cols])
        codes, uniques = pd.factorize(data["dyad"], sort=False)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        return _Design(
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
        data, offset = _validated(frame, dyad, session, score)
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
                        _fast_fit(des, reml=False, maxiter=self.maxiter, start=self.start)["loglik"]
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

    def _fit_design(self, design: _Design) -> dict[str, Any]:
        if self.optimizer == "fast":
            out = _fast_fit(design, reml=bool(self.reml), maxiter=self.maxiter, start=self.start)
            if self.polish == "full":
                out = _statsmodels_fit(
                    design,
                    reml=bool(self.reml),
                    theta0=out["theta_s"],
                    method="lbfgs",
                    maxiter=self.maxiter,
                    prior=out,
                )
            elif self.polish:
                out = _statsmodels_check(
                    design, reml=bool(self.reml), out=out, maxiter=self.maxiter
                )
        else:
            out = _statsmodels_fit(
                design,
                reml=bool(self.reml),
                theta0=None,
                method=self.optimizer,
                maxiter=self.maxiter,
                start=self.start,
            )
        _check_boundary(out, design)
        return out

    def _store(self, design: _Design, out: dict[str, Any], session_name: str) -> None:
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


# ============================================================================ engines
def _scaling(design: _Design):
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
    design: _Design,
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


def _fast_fit(design: _Design, *, reml: bool, maxiter: int, start: str) -> dict[str, Any]:
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
            f"{gnorm:.2g} per observation: {res.message}). {_ADVICE}",
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


def _statsmodels_fit(
    design: _Design,
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
            f". {_ADVICE}",
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


def _statsmodels_check(
    design: _Design, *, reml: bool, out: dict[str, Any], maxiter: int
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
        return _statsmodels_fit(
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


def _check_boundary(out: dict[str, Any], design: _Design) -> None:
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
            f"compare the fits with compare_growth(). {_ADVICE}",
            ConvergenceWarning,
            stacklevel=4,
        )


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


# ============================================================================ classify
def _rule_labels(a, b, c, t0, t1, min_change, max_dip_width):
    """Apply the labelling rules to trajectories ``a + b t + c t^2`` on ``[t0, t1]``.

    Arrays broadcast; returns integer class codes (index into CLASSES) and the
    vertex ``v`` and the half-depth half-width ``h`` used for change points.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(c != 0, -b / (2 * c), np.nan)
    f0 = a + b * t0 + c * t0**2
    f1 = a + b * t1 + c * t1**2
    fv = a + b * v + c * v**2
    inside = (v > t0) & (v < t1)
    bend = np.abs(c) * (t1 - t0) ** 2 / 4  # largest gap between the curve and its chord
    curved = bend >= min_change / 2
    dip_depth = np.minimum(f0, f1) - fv
    rise = np.maximum(f0, f1) - fv
    convex_dip = curved & (c > 0) & inside & (rise >= min_change) & (dip_depth >= min_change / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.sqrt(np.abs(dip_depth) / (2 * np.abs(c)))
    narrow = 2 * half <= max_dip_width
    fmax = np.where((c < 0) & inside, fv, np.maximum(f0, f1))
    drop = fmax - f1
    unrepaired = curved & (c < 0) & (drop >= min_change) & (np.where(inside, v, t0) < t1)
    code = np.zeros(np.broadcast(a, b, c, t0).shape, dtype=int)
    code = np.where(convex_dip & ~narrow, 1, code)
    code = np.where(convex_dip & narrow, 2, code)
    code = np.where(unrepaired & ~convex_dip, 3, code)
    return code, v, half, dip_depth, drop


def _half_drop_session(a, b, c, v, t0, t1, drop):
    """Where a concave curve has lost half of ``drop`` below its maximum on ``[t0, t1]``."""
    peak = np.where((v > t0) & (v < t1), v, t0)
    fpeak = a + b * peak + c * peak**2
    target = fpeak - drop / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        disc = np.sqrt(np.clip(b**2 - 4 * c * (a - target), 0, None))
        r1 = (-b + disc) / (2 * c)
        r2 = (-b - disc) / (2 * c)
    # the crossing after the peak: the larger root for c < 0 is (-b - disc) / (2c)
    return np.where(r2 >= peak, r2, r1)


def classify_growth(
    frame: pd.DataFrame,
    *,
    time: str = "quadratic",
    random: str = "curvature",
    reml: bool = True,
    min_change: float | None = None,
    max_dip_width: float = 3.0,
    n_draws: int = 200,
    seed: int | np.random.Generator | None = 0,
    polish: bool = False,
) -> ClassificationResult:
    """Label each dyad from its predicted growth trajectory (``classify(method="growth")``).

    A quadratic growth model with random intercept, slope and curvature is fitted
    to all dyads; each dyad's predicted trajectory ``f(t) = a + b t + c t^2`` on its
    observed span ``[t0, t1]`` is then labelled by these rules, with ``delta =
    min_change``:

    1. ``linear`` unless the curve bends: ``|c| (t1 - t0)^2 / 4 >= delta / 2`` (the
       largest gap between curve and chord).
    2. A convex dip (``c > 0``, vertex ``v`` strictly inside the span, one end at
       least ``delta`` and the other at least ``delta / 2`` above ``f(v)``) is
       ``v_shaped`` when its width at half depth (of the lower end) is at most
       ``max_dip_width`` sessions, else ``u_shaped``.
    3. A concave curve (``c < 0``) that ends at least ``delta`` below its maximum
       over the span is an ``unrepaired_rupture``.

    Probabilities are a documented approximation: the share of ``n_draws`` draws
    from each dyad's conditional (empirical-Bayes) distribution of its random
    effects, fixed effects and variances held at their estimates, that the rules
    give each class (``n_draws=0`` gives one-hot probabilities of the predicted
    trajectory). A smooth quadratic cannot follow a sudden drop of a few sessions,
    so brief ruptures are mostly missed or called ``u_shaped``: this is the
    classic approach and its known weakness.

    Parameters
    ----------
    frame : DataFrame
        Validated canonical frame (``dyad``, ``session``, ``score``).
    time, random, reml
        Passed to :class:`GrowthModel`.
    min_change : float, optional
        Smallest change (score units) that counts; default the model's residual SD.
    max_dip_width : float, default 3
        Widest dip, in sessions at half depth, still called ``v_shaped``.
    n_draws : int, default 200
        Draws per dyad for the probabilities (0: one-hot).
    seed : int, Generator or None, default 0
        Randomness of the draws (the default makes results reproducible).
    polish : bool, default False
        Passed to :class:`GrowthModel` (statsmodels standard errors are not needed
        for labelling).

    Returns
    -------
    ClassificationResult
        ``changepoints``: ``turning_session`` (vertex) for ``u_shaped``; rupture and
        repair sessions (dip edges at half depth) and depth for ``v_shaped``;
        rupture session (half-depth point after the maximum) and depth for
        ``unrepaired_rupture``; point values (no intervals). ``extras["growth_model"]``
        holds the fitted model.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=80, seed=3)
    >>> res = at.classify(cohort.sessions, method="growth")
    >>> res.method, list(res.probabilities.columns) == list(at.CLASSES)
    ('growth', True)
    """
    if time not in ("quadratic", "piecewise"):
        raise _param_error("time", "classify_growth", "'quadratic' or 'piecewise'", time)
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 0:
        raise _param_error("n_draws", "classify_growth", "an int >= 0", n_draws)
    if not (np.isfinite(max_dip_width) and max_dip_width > 0):
        raise _param_error("max_dip_width", "classify_growth", "a number > 0", max_dip_width)
    if time == "piecewise":
        raise ValueError(
            "classify_growth labels quadratic trajectories; time='piecewise' is available "
            "through GrowthModel directly."
        )
    gm = GrowthModel(time=time, random=random, reml=reml, polish=polish)
    gm.fit(frame, dyad="dyad", session="session", score="score")
    delta = gm.residual_sd_ if min_change is None else float(min_change)
    if not (np.isfinite(delta) and delta > 0):
        raise _param_error("min_change", "classify_growth", "a number > 0", min_change)

    d = gm._design_
    n_rows = np.diff(np.append(d.starts, len(d.y)))
    t0 = d.time[d.starts]
    t1 = d.time[d.starts + n_rows - 1]
    beta = gm.fixed_effects_.to_numpy()[:3]
    coef = np.zeros((len(d.dyads), 3))
    q = len(d.re_idx)
    coef[:, :] = beta
    coef[:, :q] += gm.random_effects_.to_numpy()
    a, b, c = coef.T
    code, v, half, dip_depth, drop = _rule_labels(a, b, c, t0, t1, delta, max_dip_width)

    if n_draws > 0:
        rng = np.random.default_rng(seed)
        cov = gm.random_effects_conditional_cov_
        w, vec = np.linalg.eigh(cov)
        root = vec * np.sqrt(np.clip(w, 0, None))[:, None, :]
        z = rng.standard_normal((n_draws, len(d.dyads), q))
        draws = np.repeat(coef[None], n_draws, axis=0)
        draws[..., :q] += np.einsum("gij,kgj->kgi", root, z)
        dcode, *_ = _rule_labels(
            draws[..., 0], draws[..., 1], draws[..., 2], t0, t1, delta, max_dip_width
        )
        probs = np.stack([(dcode == k).mean(axis=0) for k in range(len(CLASSES))], axis=1)
    else:
        probs = np.eye(len(CLASSES))[code]
    label = probs.argmax(axis=1)

    cp = pd.DataFrame(
        np.nan,
        index=d.dyads,
        columns=[
            "rupture_session",
            "rupture_low",
            "rupture_high",
            "repair_session",
            "repair_low",
            "repair_high",
            "depth",
            "depth_low",
            "depth_high",
            "turning_session",
        ],
    )
    is_u, is_v, is_un = label == 1, label == 2, label == 3
    ok = np.isfinite(v) & (c > 0)
    cp.loc[is_u & ok, "turning_session"] = v[is_u & ok]
    sel = is_v & ok
    cp.loc[sel, "rupture_session"] = np.clip(np.round(v - half), t0, t1)[sel]
    cp.loc[sel, "repair_session"] = np.clip(np.round(v + half), t0, t1)[sel]
    cp.loc[sel, "depth"] = dip_depth[sel]
    sel = is_un & (c < 0)
    after = _half_drop_session(a, b, c, v, t0, t1, drop)
    cp.loc[sel, "rupture_session"] = np.clip(np.round(after), t0, t1)[sel]
    cp.loc[sel, "depth"] = drop[sel]
    for stem, col in (
        ("rupture", "rupture_session"),
        ("repair", "repair_session"),
        ("depth", "depth"),
    ):
        cp[f"{stem}_low"] = cp[col]
        cp[f"{stem}_high"] = cp[col]

    vc = gm.variance_components()["estimate"]
    return ClassificationResult.from_probabilities(
        probs,
        index=d.dyads,
        method="growth",
        changepoints=cp,
        settings={
            "time": time,
            "random": random,
            "reml": bool(reml),
            "min_change": delta,
            "max_dip_width": float(max_dip_width),
            "n_draws": int(n_draws),
            "seed": seed if isinstance(seed, (int, np.integer)) else None,
            "probabilities": "empirical-Bayes draws" if n_draws else "one-hot",
        },
        hyperparameters={
            "fixed_effects": gm.fixed_effects_.to_dict(),
            "variance_components": vc.to_dict(),
        },
        diagnostics={**gm.diagnostics_, "loglik": gm.loglik_},
        exact=False,
        extras={"growth_model": gm},
    )


# ============================================================================ alliance -> symptoms
@dataclass
class AllianceSymptomFit:
    """Result of :func:`alliance_symptom_model`.

    Attributes
    ----------
    effects : pandas.DataFrame
        Rows ``within`` (state-like: a dyad's alliance above its own mean) and
        ``between`` (trait-like: a dyad's mean alliance), columns ``estimate``,
        ``std_error``, ``z``, ``p_value``, ``ci_low``, ``ci_high``.
    model : GrowthModel
        The fitted mixed model (all fixed effects in ``model.coef_table()``).
    data : pandas.DataFrame
        The analysis rows: dyad, session, symptoms, alliance_lag,
        alliance_between, alliance_within.
    """

    effects: pd.DataFrame
    model: GrowthModel
    data: pd.DataFrame


def alliance_symptom_model(
    frame: pd.DataFrame,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    alliance: Hashable = "alliance",
    symptoms: Hashable = "symptoms",
    covariates: Sequence[Hashable] = (),
    random: str = "intercept",
    reml: bool = True,
    consecutive: bool = False,
) -> AllianceSymptomFit:
    """Session-level symptoms predicted by last session's alliance, within and between.

    For dyad ``i`` at session ``t`` the model is (Falkenström et al. 2013;
    Zilcha-Mano et al. 2016)::

        symptoms_it = b0 + b1 t + b_between * mean_i(A) + b_within * (A_i,t-1 - mean_i(A))
                      + covariates + u_i (+ u1_i t) + e_it

    where ``A_i,t-1`` is the alliance at the dyad's previous rated session and
    ``mean_i(A)`` the dyad's mean of those lagged ratings (person-mean centring, so
    the within part is free of between-dyad differences).

    Parameters
    ----------
    frame : DataFrame
        Long format: one row per session with both ratings (not modified).
    dyad, session, alliance, symptoms : column names
    covariates : sequence of column names
        Extra fixed effects (e.g. treatment arm).
    random : {"intercept", "slope"}, default "intercept"
        Random intercept, or random intercept and time slope per dyad.
    reml : bool, default True
    consecutive : bool, default False
        Use only rows whose previous rated session is exactly one session earlier.

    Returns
    -------
    AllianceSymptomFit

    Examples
    --------
    >>> import alliancetraj as at
    >>> sim = at.simulate_alliance_symptoms(n_dyads=80, seed=4)
    >>> fit = at.alliance_symptom_model(sim.sessions)
    >>> list(fit.effects.index)
    ['within', 'between']
    """
    if random not in ("intercept", "slope"):
        raise _param_error("random", "alliance_symptom_model", "'intercept' or 'slope'", random)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"Sessions must be a pandas DataFrame; got {type(frame).__name__}.")
    if alliance not in frame.columns:
        raise DataError(
            f"Column {alliance!r} (the alliance column) is not in the data. Columns present: "
            f"{format_ids([str(c) for c in frame.columns], limit=12)}. Pass alliance=..."
        )
    data, offset = _validated(frame, dyad, session, symptoms)
    a = pd.to_numeric(data[alliance], errors="coerce").astype(float)
    if a.isna().any():
        bad = data.loc[a.isna().to_numpy(), "dyad"].unique().tolist()
        raise DataError(
            f"Column {alliance!r} (alliance) has missing or non-numeric values (dyads "
            f"{format_ids(bad)}). Fill or drop those rows."
        )
    same = data["dyad"].eq(data["dyad"].shift(1)).to_numpy()
    lag = a.shift(1).to_numpy()
    gap = data["session"].diff().to_numpy()
    keep = same & (gap == 1 if consecutive else True)
    rows = data.loc[keep].copy()
    rows["alliance_lag"] = lag[keep]
    rows["alliance_between"] = rows.groupby("dyad", sort=False)["alliance_lag"].transform("mean")
    rows["alliance_within"] = rows["alliance_lag"] - rows["alliance_between"]
    rows["session"] = rows["session"] - offset
    if len(rows) == 0 or rows["dyad"].nunique() < 3:
        raise DataError(
            "Too few sessions with a previous alliance rating (need >= 3 dyads with two or "
            "more rated sessions)."
        )
    model = GrowthModel(
        time="linear",
        random="slope" if random == "slope" else "intercept",
        reml=reml,
        covariates=["alliance_between", "alliance_within", *covariates],
    )
    model.fit(
        rows.drop(columns=[c for c in (alliance,) if c in rows.columns]),
        dyad="dyad",
        session="session",
        score="score",
    )
    table = model.coef_table().loc[["alliance_within", "alliance_between"]]
    table.index = pd.Index(["within", "between"], name="effect")
    out = (
        rows[["dyad", "session", "score", "alliance_lag", "alliance_between", "alliance_within"]]
        .rename(columns={"score": "symptoms"})
        .reset_index(drop=True)
    )
    return AllianceSymptomFit(effects=table, model=model, data=out)
