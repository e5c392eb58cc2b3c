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

Every estimator works on a standardised outcome (gaussian) and standardised
covariates, and maps the fit back (:class:`~alliancetraj.outcomes.data.Scaling`):
effects, standard errors and intervals are equivariant under affine changes of the
outcome's units, and a covariate's units change only its own coefficient and the
intercept. What the data cannot answer (a constant outcome or covariate, a class with
fewer than two assigned dyads, separation of a binary outcome, a rank-deficient
design) is reported as a :class:`~alliancetraj.DataError` or NaN with a note, never
estimated; ``firth=True`` gives penalised logistic estimates under separation.

Modules: :mod:`.relate` (the dispatcher), :mod:`.bch`, :mod:`.ml`, :mod:`.naive`
(``modal`` and ``draws``), :mod:`.solver` (the weighted GLM equations), :mod:`.data`
(alignment, checks, standardisation), :mod:`.result` (:class:`OutcomeFit`).
:func:`estimate_error_matrix` lives in :mod:`alliancetraj.error_matrix` (it runs the
classifier and the simulator, layers above this one) and is importable from here.

The key assumption of all three-step estimators is that classification error is
independent of the outcome and covariates given the true class.
"""

from __future__ import annotations

from typing import Any

from .relate import relate_outcomes
from .result import METHODS, OutcomeFit

__all__ = [
    "METHODS",
    "OutcomeFit",
    "estimate_error_matrix",
    "relate_outcomes",
]


def __getattr__(name: str) -> Any:
    # estimate_error_matrix runs classify and simulate_cohort: it lives a layer above
    # (alliancetraj.error_matrix) and is imported on first use, not at import time
    if name == "estimate_error_matrix":
        from ..error_matrix import estimate_error_matrix

        return estimate_error_matrix
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
