"""The dispatcher: :func:`relate_outcomes` validates, standardises, fits, maps back.

The estimators live in :mod:`.bch`, :mod:`.ml` and :mod:`.naive`; the data checks and
the standardisation in :mod:`.data`; the result type in :mod:`.result`.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_int, check_number, parameter_error
from ..errors import AllianceTrajWarning, DataError, format_ids
from ..results import CLASSES, ClassificationResult
from .bch import BCH
from .data import (
    Scaling,
    class_counts,
    constant,
    covariate_separation,
    prepare,
    redundant_columns,
)
from .ml import fit_ml
from .naive import fit_draws, fit_modal
from .result import EFFECT_COLUMNS, METHODS, OutcomeFit, effects_frame, rubin_omnibus, wald
from .solver import NoSolution, design
from .solver import error_matrix as implied_error_matrix

__all__ = ["FAMILIES", "relate_outcomes"]

FAMILIES = ("gaussian", "binomial")


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
    firth: bool = False,
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
    firth : bool, default False
        ``family="binomial"`` with ``method="modal"`` or ``"draws"``: fit the logistic
        regression with Firth's (1993) bias-reducing penalty, which has finite estimates when a
        class (or a covariate) separates the outcome (e.g. nobody in a class
        recovered). Intervals are then Wald. Without it, a separated class's effect
        is NaN with a warning naming the class and the outcome value.

    Notes
    -----
    Every estimator works on a standardised outcome (gaussian) and standardised
    covariates and maps the fit back, so effects, standard errors and intervals
    scale exactly with the outcome (``a * y + b`` multiplies them by ``a``; p-values
    are unchanged) and a covariate's units change only its own coefficient and the
    intercept. What the data cannot answer is reported, never estimated: a constant
    outcome raises :class:`~alliancetraj.DataError`; a constant or collinear
    covariate, a class with fewer than two assigned dyads, and (binomial) separation
    give NaN with a warning and a note in ``fit.notes`` naming the cause and the fix;
    a two-valued outcome under ``family="gaussian"`` is fitted with a hint to use
    ``family="binomial"``.

    Returns
    -------
    OutcomeFit
        ``effects`` (one row per non-reference class), ``omnibus``, ``summary()``.

    Raises
    ------
    DataError
        Outcomes that do not match the result's dyads, non-numeric outcomes or
        covariates, missing columns; a constant outcome; a reference class with
        fewer than two assigned dyads (or, binomial, separated); fewer dyads than
        coefficients.
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
    F = "relate_outcomes"
    family = check_choice(F, "family", family, FAMILIES)
    method = check_choice(F, "method", method, list(METHODS))
    reference = check_choice(F, "reference", reference, CLASSES)
    alpha = check_number(F, "alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    n_draws = check_int(F, "n_draws", n_draws, low=2)
    if not isinstance(firth, (bool, np.bool_)):
        raise parameter_error(F, "firth", "a bool", firth)
    firth = bool(firth)
    if firth and family != "binomial":
        raise parameter_error(F, "firth", "False unless family='binomial' (the penalty "
                              "is for logistic separation)", firth)
    if firth and method not in ("modal", "draws"):
        raise parameter_error(F, "firth", "False for method='bch', 'ml' and 'joint' (the "
                              "penalised fit is available for method='modal' and 'draws')",
                              firth)
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

    probs, y, X, excluded = prepare(result, outcomes, outcome, covariates, family, dyad)
    P = probs.to_numpy(float)
    ids = probs.index
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
            "to the naive modal estimate. Pass error_matrix=estimate_error_matrix(method=...) "
            "to correct for misclassification."
        )
    _check_outcome(y, outcome, family, notes)
    cov_names = [str(c) for c in covariates]
    keep_cov = _constant_covariates(X, cov_names, notes)

    # classes that cannot be estimated: fewer than two assigned dyads, or separated
    modal = np.argmax(P, axis=1)
    counts = class_counts(modal, y, family)
    ref = CLASSES.index(reference)
    reasons = _inestimable_classes(counts, ids, modal, family, firth, outcome)
    if ref in reasons:
        fix = (" or pass method='modal' (or 'draws') with firth=True for a penalised fit"
               if "separation" in reasons[ref] else "")
        raise DataError(
            f"The reference class {reference!r} cannot be estimated: {reasons[ref]}. Choose "
            f"another reference (reference=...){fix}. Counts by assigned class: "
            f"{counts.to_dict(orient='index')}."
        )
    active = [k for k in range(len(CLASSES)) if k not in reasons]
    if reasons:
        drop = np.isin(modal, list(reasons))
        for k, why in reasons.items():
            notes.append(_class_note(CLASSES[k], why, ids[modal == k].tolist(), family, method))
        P, y, X, ids = P[~drop], y[~drop], X[~drop], ids[~drop]
        _check_outcome(y, outcome, family, [])
    if D_given is not None:
        D_given = D_given[np.ix_(active, active)]
        D_given = D_given / D_given.sum(axis=1, keepdims=True)
    Pa = P[:, active]
    Pa = Pa / Pa.sum(axis=1, keepdims=True)
    ref_a = active.index(ref)
    eff_names = [CLASSES[k] for k in active if k != ref]
    n_eff = len(eff_names)
    n = len(y)

    # standardise; drop covariates collinear with the intercept, classes, earlier ones
    scaling = Scaling.of(y, X[:, keep_cov], family)
    ys, Xs = scaling.apply(y, X[:, keep_cov])
    Zm = design(np.argmax(Pa, axis=1), list(range(len(active))), ref_a, Xs)
    redundant = [j - 1 - n_eff for j in redundant_columns(Zm, 1 + n_eff)]
    if redundant:
        names_r = [cov_names[keep_cov[j]] for j in redundant]
        notes.append(
            f"Covariate(s) {names_r} are linear combinations of the intercept, the class "
            "indicators and the covariates listed before them (rank-deficient design): their "
            "coefficients are NaN and they were left out. Drop them or combine the collinear "
            "covariates."
        )
        sub = [j for j in range(len(keep_cov)) if j not in redundant]
        keep_cov = [keep_cov[j] for j in sub]
        scaling = Scaling(scaling.y_center, scaling.y_scale, scaling.x_center[sub],
                          scaling.x_scale[sub])
        Xs = Xs[:, sub]
        Zm = Zm[:, [*range(1 + n_eff), *(1 + n_eff + j for j in sub)]]
    fit_names = ["intercept", *eff_names, *(cov_names[j] for j in keep_cov)]
    if n <= len(fit_names):
        raise DataError(
            f"Only {n} dyad(s) for {len(fit_names)} coefficients ({fit_names}): nothing can be "
            "estimated. Use fewer covariates or more dyads."
        )
    if n < 5 * len(fit_names):
        notes.append(
            f"Only {n} dyads for {len(fit_names)} coefficients (fewer than 5 per "
            "coefficient): standard errors are unreliable in samples this small (usually too "
            "narrow, so p-values too small). Treat the estimates as exploratory; use fewer "
            "covariates or more dyads."
        )
    separated = family == "binomial" and not firth and covariate_separation(Zm, ys)
    if separated:
        notes.append(
            f"The binary outcome {outcome!r} is (quasi-)completely separated by the "
            f"covariates {[cov_names[j] for j in keep_cov]} together with the classes: a "
            "combination of them predicts it perfectly for some dyads, so the log-odds have "
            "no finite estimate and every coefficient is NaN. Pass method='modal' (or 'draws') "
            "with firth=True for a penalised fit, or drop the covariate that separates it."
        )

    fitted = _estimate(method, Pa, ys, Xs, family, ref_a, D_given, firth, separated,
                       n_draws, seed, alpha, fit_names, notes)
    beta, cov = scaling.back(fitted["beta"], fitted["cov"], n_eff)
    if "draws" in fitted:  # Rubin's rules on the original scales
        T, shift = scaling.matrix(n_eff)
        ests = fitted["draws"] @ T.T + shift
        within = np.einsum("ij,mjk,lk->il", T, fitted["covs"], T) / len(ests)
        dfcom = n - len(fit_names) if family == "gaussian" else None
        coefs, omnibus = _pool(ests, within, fit_names, n_eff, alpha, dfcom)
    else:
        # the modal gaussian fit is ordinary least squares: exact t and F references
        dof = n - len(fit_names) if method == "modal" and family == "gaussian" else None
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        coefs = effects_frame(fit_names, beta, se, alpha,
                              dist=None if dof is None else np.full(len(se), float(dof)))
        omnibus = wald(beta[1:1 + n_eff], cov[1:1 + n_eff, 1:1 + n_eff], df_denom=dof)
    for j, interval in fitted.get("score", {}).items():  # binomial BCH: score intervals
        lo, hi, p = interval
        coefs.iloc[j, 2:5] = [lo * scaling.y_scale, hi * scaling.y_scale, p]
    coefs = coefs.reindex(["intercept", *eff_names, *cov_names])
    effects = coefs.loc[eff_names].reindex(others)
    effects.index.name = "class"
    D_used = None
    if fitted.get("D") is not None:
        labels = [CLASSES[k] for k in active]
        D_used = pd.DataFrame(fitted["D"], index=pd.Index(labels, name="true"),
                              columns=pd.Index(labels, name="assigned"))
    for note in notes:
        warnings.warn(note, AllianceTrajWarning, stacklevel=2)
    settings = {**fitted["settings"], "alpha": alpha}
    if firth:
        settings["firth"] = True
    return OutcomeFit(
        effects=effects, omnibus=omnibus, coefficients=coefs, n_dyads=n, excluded=excluded,
        error_matrix=D_used, naive=method in ("modal", "draws"), settings=settings,
        notes=notes, counts=counts, **common,
    )


def _check_outcome(y: np.ndarray, outcome: Hashable, family: str, notes: list[str]) -> None:
    """A constant outcome raises; a two-valued gaussian outcome gets a note."""
    if constant(y):
        how = "exactly" if np.ptp(y) == 0 else "to 9 significant digits"
        raise DataError(
            f"Column {outcome!r} (outcome) is constant ({how}: {y[0]:g}) across the {len(y)} "
            "dyads in the fit: there is no variation for the classes to explain, so no class "
            "effect can be estimated. Check the outcome= column (and the dyads it covers)."
        )
    if family == "gaussian":
        values = np.unique(y)
        if len(values) == 2:
            recode = "" if set(values.tolist()) == {0.0, 1.0} else " recode it as 0/1 and"
            notes.append(
                f"Column {outcome!r} (outcome) takes only two values ({values[0]:g} and "
                f"{values[1]:g}): under family='gaussian' the class effects are differences in "
                f"proportions with normal-theory intervals. For log-odds ratios{recode} pass "
                "family='binomial'."
            )


def _constant_covariates(X: np.ndarray, names: list[str], notes: list[str]) -> list[int]:
    """Indices of the covariates that vary; a note for each constant one."""
    keep = []
    for j, name in enumerate(names):
        if constant(X[:, j]):
            notes.append(
                f"Covariate {name!r} is constant (every dyad in the fit has {X[0, j]:g}): it "
                "cannot be told apart from the intercept, so its coefficient is NaN and it was "
                "left out of the model. Drop it from covariates=."
            )
        else:
            keep.append(j)
    return keep


def _inestimable_classes(counts: pd.DataFrame, ids: pd.Index, modal: np.ndarray,
                         family: str, firth: bool, outcome: Hashable) -> dict[int, str]:
    """Class index -> why its effect cannot be estimated."""
    reasons = {}
    for k, cls in enumerate(CLASSES):
        n_k = int(counts.loc[cls, "n_assigned"])
        if n_k == 0:
            reasons[k] = "no dyad is assigned to it"
        elif n_k == 1:
            reasons[k] = f"only one dyad ({format_ids(ids[modal == k])}) is assigned to it"
        elif family == "binomial" and not firth:
            for value in (0, 1):
                if int(counts.loc[cls, f"n_outcome_{value}"]) == n_k:
                    reasons[k] = (f"all {n_k} dyads assigned to it have outcome {outcome!r} = "
                                  f"{value} (quasi-complete separation: its log-odds are "
                                  f"{'-' if value == 0 else '+'}infinite)")
    return reasons


def _class_note(cls: str, why: str, members: list, family: str, method: str) -> str:
    text = (f"Class {cls!r} cannot be estimated: {why}. Its effect is NaN; "
            + (f"its {len(members)} dyad(s) ({format_ids(members)}) were left out and "
               if members else "")
            + "its probability mass was spread over the other classes.")
    if "separation" in why:
        if method in ("modal", "draws"):
            text += " Pass firth=True for a penalised (Firth) estimate"
        else:
            text += (" The three-step corrections have no finite estimate here; "
                     "method='modal' (or 'draws') with firth=True gives a penalised (Firth) "
                     "one, attenuated by classification error")
        text += ", or report the exact counts (fit.counts)."
    elif family == "gaussian" or "one dyad" in why or "no dyad" in why:
        text += " Collect more dyads, or merge the class with a neighbouring one."
    return text


def _nan_fit(p: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(p, np.nan), np.full((p, p), np.nan)


def _estimate(method, Pa, ys, Xs, family, ref_a, D_given, firth, separated, n_draws, seed,
              alpha, names, notes) -> dict[str, Any]:
    """Fit one estimator on standardised data: beta, cov (and draws, D, score intervals)."""
    p = len(names)
    n_eff = Pa.shape[1] - 1
    out: dict[str, Any] = {"settings": {}}
    if method in ("bch", "ml"):
        D = implied_error_matrix(Pa, np.argmax(Pa, axis=1)) if D_given is None else D_given
        out["D"] = D
        out["settings"] = {"error_matrix_source": "given" if D_given is not None
                           else "probabilities"}
        if method == "bch":
            out["settings"]["interval"] = "score" if family == "binomial" else "wald"
        out["beta"], out["cov"] = _nan_fit(p)
        if separated:
            return out
        try:
            if method == "bch":
                eq = BCH(Pa, ys, Xs, family, ref_a, D_given)
                beta = eq.fit()
                cov = eq.sandwich(beta)
                if family == "binomial":
                    se = np.sqrt(np.diag(cov))
                    out["score"] = {j: eq.score_interval(beta, se[j], j, alpha)
                                    for j in range(1, 1 + n_eff) if np.isfinite(se[j])}
            else:
                beta, cov, _ = fit_ml(Pa, ys, Xs, family, ref_a, D_given)
            out["beta"], out["cov"] = beta, cov
        except NoSolution as exc:
            notes.append(_failure_note(method, family, str(exc)))
        return out
    if method == "modal":
        out["beta"], out["cov"] = _nan_fit(p)
        if not separated:
            try:
                out["beta"], out["cov"] = fit_modal(Pa, ys, Xs, family, ref_a, firth=firth)
            except NoSolution as exc:
                notes.append(_failure_note(method, family, str(exc)))
        return out
    # draws
    rng = np.random.default_rng(seed)
    if separated:
        ests, covs, skipped = np.full((2, p), np.nan), np.full((2, p, p), np.nan), 0
    else:
        ests, covs, skipped = fit_draws(Pa, ys, Xs, family, ref_a, n_draws, rng, firth=firth)
    if len(ests) < 2:
        raise DataError(
            f"Only {len(ests)} of {n_draws} pseudo-class draws could be fitted (a drawn class "
            "had fewer than two dyads"
            + (", or a drawn class separated the binary outcome" if family == "binomial"
               else "")
            + "): use method='bch' or 'modal'"
            + (", or firth=True" if family == "binomial" and not firth else "") + "."
        )
    if skipped:
        notes.append(f"{skipped} of {n_draws} pseudo-class draws left a class with fewer than "
                     "two dyads or had no finite solution, and were skipped.")
    out.update(draws=ests, covs=covs, beta=ests.mean(axis=0), cov=covs.mean(axis=0))
    out["settings"] = {"n_draws": int(n_draws), "draws_used": len(ests),
                       "seed": _seed_repr(seed)}
    return out


def _failure_note(method: str, family: str, why: str) -> str:
    if method == "bch":
        text = (f"The BCH estimating equations have no finite solution ({why}): with this "
                "much classification error the bias-corrected class-specific outcome "
                + ("rates fall outside (0, 1)" if family == "binomial" else "means are not "
                   "identified") + ". Effects are NaN; ")
    elif method == "ml":
        text = f"The ML three-step fit failed ({why}). Effects are NaN; "
    else:
        text = f"The {method} regression has no finite solution ({why}). Effects are NaN; "
    if family == "binomial" and method in ("modal", "draws"):
        text += "pass firth=True for a penalised fit, "
    elif family == "binomial":
        text += "see fit.counts, try method='modal' with firth=True (attenuated), "
    return text + ("collect more dyads or sessions, or report method='modal' as an "
                   "(attenuated) lower bound.")


def _pool(ests: np.ndarray, within: np.ndarray, names: list[str], n_eff: int,
          alpha: float, dfcom: float | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rubin's rules: pooled estimates, per-coefficient t intervals and the D1 omnibus.

    With the complete-data degrees of freedom ``dfcom`` (gaussian: ``n - p``), the t
    degrees of freedom are Barnard & Rubin's (1999) small-sample ones.
    """
    m = len(ests)
    beta = ests.mean(axis=0)
    between = np.cov(ests, rowvar=False, ddof=1)
    cov = within + (1 + 1 / m) * between
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (1 + 1 / m) * np.diag(between) / np.diag(within)
        dist = np.where(r > 0, (m - 1) * (1 + 1 / r) ** 2, np.inf)
        if dfcom is not None:
            gamma = r / (1 + r)  # fraction of information lost to the class draws
            observed = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - gamma)
            dist = 1 / (1 / dist + 1 / observed)
    coefs = effects_frame(names, beta, np.sqrt(np.clip(np.diag(cov), 0, None)), alpha,
                          dist=dist)
    sl = slice(1, 1 + n_eff)
    omnibus = rubin_omnibus(beta[sl], within[sl, sl], between[sl, sl], m)
    return coefs, omnibus


def _seed_repr(seed: object) -> object:
    return seed if seed is None or isinstance(seed, (int, np.integer)) else "Generator"


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
    missing = [c for c in EFFECT_COLUMNS if c not in eff.columns]
    if missing:
        raise ValueError(f"result.extras['outcome_effects'] lacks column(s) {missing}.")
    effects = eff.loc[:, EFFECT_COLUMNS].reindex(others)
    effects.index.name = "class"
    omnibus = extras.get("outcome_omnibus") or {
        "test": "none", "statistic": np.nan, "df": len(others), "p_value": np.nan,
    }
    return OutcomeFit(
        effects=effects, omnibus=dict(omnibus), coefficients=effects.copy(),
        n_dyads=int(extras.get("outcome_n_dyads", len(result))), naive=False,
        settings={"source": "result.extras['outcome_effects']"}, **common,
    )
