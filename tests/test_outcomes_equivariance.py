"""relate_outcomes is equivariant: units of the outcome and covariates, and the reference class.

For an outcome ``a * y + b`` the gaussian class effects, SEs and interval bounds scale by
``a`` (bounds swap when ``a < 0``) and p-values are unchanged; a covariate ``c * x + d``
changes only its own coefficient (by ``1 / c``) and the intercept; another reference
class re-expresses the same fitted model (effects are differences of the same class
parameters). Hypothesis draws the transforms; every method, both families.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliancetraj as at
from alliancetraj.errors import AllianceTrajWarning

METHODS = ["bch", "ml", "draws", "modal"]
FAMILIES = {"gaussian": "recovery", "binomial": "reliable_improvement"}
RTOL = 1e-6  # the target: 1e-6 relative on 20 random transforms per method
N_EXAMPLES = 20


@functools.lru_cache(maxsize=1)
def data() -> tuple[at.ClassificationResult, pd.DataFrame]:
    """A small cohort with calibrated, uncertain class probabilities and two covariates."""
    cohort = at.simulate_cohort(n_dyads=160, seed=11, n_sessions=6)
    rng = np.random.default_rng(3)
    codes = cohort.truth["true_class"].cat.codes.to_numpy()
    eye = np.eye(len(at.CLASSES))
    sigma = 0.6
    signal = eye[codes] + sigma * rng.standard_normal((len(codes), len(at.CLASSES)))
    logp = -((signal[:, None, :] - eye[None]) ** 2).sum(-1) / (2 * sigma**2)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    res = at.ClassificationResult.from_probabilities(p, index=cohort.truth.index,
                                                     method="synthetic")
    outcomes = cohort.outcomes.assign(age=rng.normal(40, 12, len(codes)))
    return res, outcomes


def fit(outcomes: pd.DataFrame, family: str, method: str, reference: str = "linear"):
    res, _ = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceTrajWarning)
        return at.relate_outcomes(res, outcomes, FAMILIES[family],
                                  covariates=["baseline_severity", "age"], family=family,
                                  method=method, reference=reference, seed=5, n_draws=6)


@functools.cache
def base(family: str, method: str):
    return fit(data()[1], family, method)


def close(actual, expected, scale: float) -> None:
    """Equal to ``RTOL`` relative to the size of the compared quantities."""
    actual = np.asarray(actual, float)
    expected = np.asarray(expected, float)
    assert np.all(np.isfinite(actual)) and np.all(np.isfinite(expected))
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


def factors():
    """Non-zero factors with magnitudes 1e-3 .. 1e4 and either sign."""
    return st.tuples(st.floats(-3, 4), st.sampled_from([-1.0, 1.0])).map(
        lambda t: t[1] * 10 ** t[0])


offsets = st.floats(-1e6, 1e6, allow_nan=False)


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=N_EXAMPLES, deadline=None)
@given(a=factors(), b=offsets)
def test_gaussian_effects_scale_with_the_outcome(method, a, b):
    _, outcomes = data()
    ref = base("gaussian", method)
    new = fit(outcomes.assign(recovery=a * outcomes["recovery"] + b), "gaussian", method)
    e0, e1 = ref.effects, new.effects
    size = abs(a) * float(np.abs(e0[["estimate", "std_error"]]).to_numpy().max())
    close(e1["estimate"], a * e0["estimate"], size)
    close(e1["std_error"], abs(a) * e0["std_error"], size)
    low, high = ("ci_low", "ci_high") if a > 0 else ("ci_high", "ci_low")
    close(e1["ci_low"], a * e0[low], size)
    close(e1["ci_high"], a * e0[high], size)
    close(e1["p_value"], e0["p_value"], 1.0)
    # covariate coefficients scale with the outcome; the intercept moves by b
    c0, c1 = ref.coefficients["estimate"], new.coefficients["estimate"]
    close(c1[["baseline_severity", "age"]], a * c0[["baseline_severity", "age"]],
          abs(a) * float(np.abs(c0).max()))
    close(c1["intercept"], a * c0["intercept"] + b, abs(a) * abs(c0["intercept"]) + abs(b))
    assert new.omnibus["statistic"] == pytest.approx(ref.omnibus["statistic"], rel=RTOL)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=N_EXAMPLES, deadline=None)
@given(c=factors(), d=offsets)
def test_covariate_units_change_only_their_coefficient(family, method, c, d):
    _, outcomes = data()
    ref = base(family, method)
    new = fit(outcomes.assign(age=c * outcomes["age"] + d), family, method)
    c0, c1 = ref.coefficients, new.coefficients
    size = float(np.abs(ref.effects[["estimate", "std_error"]]).to_numpy().max())
    for col in ("estimate", "std_error", "ci_low", "ci_high"):
        close(new.effects[col], ref.effects[col], size)
        close(c1.loc["baseline_severity", col], c0.loc["baseline_severity", col],
              abs(c0.loc["baseline_severity", "estimate"]))
    close(new.effects["p_value"], ref.effects["p_value"], 1.0)
    close(c1.loc["age", "estimate"], c0.loc["age", "estimate"] / c,
          abs(c0.loc["age", "estimate"] / c))
    close(c1.loc["age", "std_error"], c0.loc["age", "std_error"] / abs(c),
          abs(c0.loc["age", "std_error"] / c))
    close(c1.loc["age", "p_value"], c0.loc["age", "p_value"], 1.0)


@pytest.mark.parametrize("reference", at.CLASSES[1:])
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("method", METHODS)
def test_another_reference_re_expresses_the_same_model(family, method, reference):
    _, outcomes = data()
    ref = base(family, method)
    new = fit(outcomes, family, method, reference=reference)
    # class parameters relative to linear: 0 for linear, the effects for the others
    theta = pd.concat([pd.Series({"linear": 0.0}), ref.effects["estimate"]])
    expected = (theta - theta[reference]).drop(reference)
    close(new.effects["estimate"].reindex(expected.index), expected,
          float(np.abs(theta).max()))
    # the covariate coefficients are those of the same model
    close(new.coefficients.loc[["baseline_severity", "age"], "estimate"],
          ref.coefficients.loc[["baseline_severity", "age"], "estimate"],
          float(np.abs(ref.coefficients["estimate"]).max()))
