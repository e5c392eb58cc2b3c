"""The words of the report: class names, a methods paragraph written from the settings,
and how to read class probabilities and effects.

Everything here returns plain strings (HTML-escaped where it says so); the layout is
:mod:`alliancetraj.report`'s. The paragraph is generated from what the result and the
outcome fit record (method, settings, estimator, family, covariates, interval level),
so it says what was done, not what usually is.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .results import CLASS_LABELS, CLASSES, ClassificationResult

__all__ = ["CLASS_LABELS", "CLASS_MEANINGS", "class_label", "effects_sentence",
           "how_to_read", "methods_paragraphs"]


#: What each class means, in one sentence.
CLASS_MEANINGS: dict[str, str] = {
    "linear": "a stable alliance, or one that rises or falls steadily over treatment",
    "u_shaped": "a gradual high-low-high course: a slow, smooth dip over a large part of "
                "treatment and a recovery",
    "v_shaped": "a rupture-repair sequence: a sudden drop lasting a few sessions, then a "
                "return to the earlier level or trend",
    "unrepaired_rupture": "a sudden drop that is not repaired by the last observed session",
}

_METHODS: dict[str, str] = {
    "exact": (
        "Each dyad's ratings were compared with four Bayesian regression models, one per "
        "class, each summed over every admissible change-point session (the rupture and "
        "repair sessions of the V-shaped class, the first dropped session of an unrepaired "
        "rupture, the turning session of the U). The priors of level, slope, depth and noise "
        "were fitted to the whole cohort by empirical Bayes, and so were the class shares. "
        "The class probabilities are the exact posterior probabilities of the four models "
        "given the dyad's ratings: no sampling is involved"
    ),
    "pymc": (
        "One hierarchical Bayesian mixture model was fitted to the whole cohort with PyMC "
        "(population distributions of level, slope, depth, curvature and noise; class and "
        "change points marginalised). The class probabilities are posterior means over MCMC "
        "draws (NUTS), with R-hat, effective sample size and divergences checked"
    ),
    "growth": (
        "A mixed-effects growth model (random intercept and slope) was fitted to the "
        "cohort, and labelling rules were applied to each dyad's predicted trajectory; the "
        "class probabilities are shares of draws of the random effects, not posterior "
        "probabilities"
    ),
    "rules": (
        "Each dyad was labelled by rules (a Stiles-type deflection rule for ruptures and "
        "repairs; Tang and DeRubeis sudden-change criteria). The labels are hard: each "
        "dyad's probability is 1 for its class and 0 for the others"
    ),
    "pelt": (
        "Change points were found by PELT (the ruptures package) and labelled by rules. The "
        "labels are hard: each dyad's probability is 1 for its class and 0 for the others"
    ),
}

_ESTIMATORS: dict[str, str] = {
    "bch": (
        "the bias-adjusted three-step estimator (BCH; Bolck, Croon and Hagenaars 2004; "
        "Vermunt 2010). It does not assign each dyad to one class: every dyad enters "
        "every class with a weight from its class probabilities, corrected by the inverse "
        "of the classification-error matrix (how often a dyad of one class is taken for "
        "another, estimated from the probabilities themselves), so that misclassification "
        "neither shrinks nor inflates the class effects. Standard errors are dyad-clustered "
        "sandwich estimates"
    ),
    "ml": (
        "the maximum-likelihood three-step estimator (Vermunt 2010): the classification-"
        "error matrix enters the likelihood of the outcome, so that misclassification does "
        "not shrink the class effects"
    ),
    "draws": (
        "pseudo-class draws (each dyad's class drawn from its probabilities, fits pooled "
        "by Rubin's rules); this naive estimator shrinks the effects towards zero when "
        "classes are uncertain"
    ),
    "modal": (
        "regression on the most probable class; this naive estimator ignores the "
        "uncertainty of the classes and shrinks their effects towards zero"
    ),
}


def class_label(cls: object) -> str:
    """The readable name of a class (``"u_shaped"`` -> ``"U-shaped"``)."""
    return CLASS_LABELS.get(str(cls), str(cls))


def _sessions_sentence(sessions: pd.DataFrame, result: ClassificationResult,
                       session: Any, score: Any, dyad: Any,
                       scale: tuple[float, float] | None) -> str:
    n_obs = sessions.groupby(dyad, sort=False)[session].size()
    scores = pd.to_numeric(sessions[score], errors="coerce")
    text = (
        f"The data are {len(sessions):,} rated sessions of {len(n_obs):,} client-provider "
        f"dyads ({n_obs.min()} to {n_obs.max()} sessions per dyad, median {n_obs.median():g}"
        "; a session without a rating is simply absent). Scores range from "
        f"{scores.min():g} to {scores.max():g}"
    )
    if scale is not None:
        text += f" on a scale declared as {scale[0]:g} to {scale[1]:g}"
    text += f". {len(result):,} dyads were classified"
    if result.excluded:
        text += (f"; {len(result.excluded):,} had too few sessions to be classified and are "
                 "left out")
    return text + "."


def methods_paragraphs(
    result: ClassificationResult,
    sessions: pd.DataFrame,
    fit: Any = None,
    *,
    units: str | None = None,
    scale: tuple[float, float] | None = None,
    dyad: Any = "dyad",
    session: Any = "session",
    score: Any = "score",
) -> list[str]:
    """The methods section as HTML paragraphs (escaped), written from the settings.

    Parameters
    ----------
    result : ClassificationResult
    sessions : DataFrame
        The long session data the result was fitted to.
    fit : relate_outcomes fit, optional
        Adds a paragraph on the outcome model (estimator, family, covariates, units).
    units : str, optional
        The outcome's units (e.g. ``"RAS points"``).
    scale : (low, high), optional
        The declared score range.
    dyad, session, score : column names of ``sessions``

    Returns
    -------
    list of str
    """
    esc = html.escape
    paras = [esc(_sessions_sentence(sessions, result, session, score, dyad, scale))]
    classes = "; ".join(f"<b>{esc(class_label(c))}</b>: {esc(CLASS_MEANINGS[c])}"
                        for c in CLASSES)
    paras.append(f"Each dyad's trajectory was classified into one of four patterns: {classes}.")
    method = _METHODS.get(result.method)
    if method is None:
        method = (f"The class probabilities come from method {result.method!r}"
                  + (" (read from a classes table; the method that made it is not recorded "
                     "there)" if result.method == "from table" else ""))
    level = getattr(result, "credible_level", 0.9)
    paras.append(esc(method) + (
        f". Rupture and repair sessions are reported with {level:.0%} credible sets."
        if result.exact else "."))
    if fit is not None:
        paras.append(_outcome_paragraph(fit, units))
    return paras


def _outcome_paragraph(fit: Any, units: str | None) -> str:
    esc = html.escape
    alpha = (getattr(fit, "settings", None) or {}).get("alpha", 0.05)
    reference = class_label(getattr(fit, "reference", "linear"))
    covariates = list(getattr(fit, "covariates", []) or [])
    estimator = _ESTIMATORS.get(getattr(fit, "method", ""), f"estimator {fit.method!r}")
    if getattr(fit, "family", "gaussian") == "binomial":
        scale = (f"log-odds ratios of {fit.outcome} (a logistic model; exp(estimate) is the "
                 "odds ratio)")
    else:
        unit = f" in {units}" if units else " in the outcome's own units (not stated)"
        scale = f"differences in the mean of {fit.outcome}{unit}"
    adj = (f", adjusted for {', '.join(str(c) for c in covariates)}" if covariates
           else ", without covariates")
    text = (
        f"The effect of each class on {fit.outcome} was estimated relative to the "
        f"{reference} class{adj}, with {estimator}. Effects are {scale}, with "
        f"{1 - alpha:.0%} confidence intervals; {fit.n_dyads:,} dyads had the outcome"
    )
    if getattr(fit, "excluded", None):
        text += f" ({len(fit.excluded):,} without it or a covariate were left out)"
    return esc(text + ".")


def effects_sentence(fit: Any, units: str | None = None) -> str:
    """One sentence per class effect, plus the omnibus test (plain text)."""
    effects = fit.effects if hasattr(fit, "effects") else fit
    alpha = (getattr(fit, "settings", None) or {}).get("alpha", 0.05)
    unit = f" {units}" if units and getattr(fit, "family", "gaussian") != "binomial" else ""
    reference = class_label(getattr(fit, "reference", "linear"))
    parts = []
    for cls, row in effects.iterrows():
        if not np.isfinite(row["estimate"]):
            parts.append(f"{class_label(cls)}: no estimate (no dyad in the class).")
            continue
        parts.append(
            f"{class_label(cls)} vs {reference}: {row['estimate']:+.2f}{unit} "
            f"({1 - alpha:.0%} CI {row['ci_low']:+.2f} to {row['ci_high']:+.2f})."
        )
    omnibus: Mapping[str, Any] = getattr(fit, "omnibus", None) or {}
    if omnibus.get("p_value") is not None and np.isfinite(omnibus.get("p_value", np.nan)):
        df = omnibus.get("df")
        test = omnibus.get("test", "test")
        p = omnibus["p_value"]
        parts.append(
            f"Joint test that class matters: {test}({df}) = {omnibus.get('statistic', np.nan):.2f}"
            f", p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}."
        )
    return " ".join(parts)


def how_to_read(result: ClassificationResult) -> list[str]:
    """A short guide to class probabilities, as HTML paragraphs (escaped)."""
    lines = [
        "A dyad's four class probabilities sum to 1. They say how strongly its ratings "
        "support each pattern under the model, not how typical the dyad is: 0.90 for "
        "V-shaped means that, given the ratings and the cohort's class shares, the model puts "
        "9-to-1 odds on a rupture and repair against the other three patterns together.",
        "The most probable class is a convenient label, but a dyad whose highest "
        "probability is below about 0.6 is ambiguous: read its probabilities, not its label. "
        "The expected share of a class (the mean of its probabilities) estimates how common "
        "the pattern is better than the count of labels does, and the outcome model uses "
        "the probabilities, not the labels.",
    ]
    if not result.exact:
        lines.append("These probabilities are not exact posterior probabilities (see Methods): "
                     "treat them as scores, not as calibrated chances.")
    else:
        lines.append("They are exact under the model's assumptions (normal residuals, the "
                     "four shapes); when those do not hold they can be over-confident.")
    return [html.escape(x) for x in lines]
