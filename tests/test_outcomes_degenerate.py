"""relate_outcomes when the data cannot answer: an error or NaN with a note, never a guess.

Each degenerate case gives a ``DataError`` (nothing can be estimated) or NaN for what
cannot be estimated, with an ``AllianceTrajWarning`` and a note in ``fit.notes`` (and
``summary()``) naming the cause and the fix; never a tiny p-value, never an internal
exception.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliancetraj as at
from alliancetraj.errors import AllianceTrajWarning, DataError

METHODS = ["bch", "ml", "draws", "modal"]
NON_REF = ["u_shaped", "v_shaped", "unrepaired_rupture"]


@pytest.fixture(scope="module")
def cohort():
    return at.simulate_cohort(n_dyads=200, seed=8, n_sessions=6)


def soft_result(truth: pd.DataFrame, sigma: float = 0.5, seed: int = 1):
    rng = np.random.default_rng(seed)
    codes = truth["true_class"].cat.codes.to_numpy()
    eye = np.eye(len(at.CLASSES))
    signal = eye[codes] + sigma * rng.standard_normal((len(codes), len(at.CLASSES)))
    logp = -((signal[:, None, :] - eye[None]) ** 2).sum(-1) / (2 * sigma**2)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return at.ClassificationResult.from_probabilities(p, index=truth.index, method="synthetic")


@pytest.fixture(scope="module")
def result(cohort):
    return soft_result(cohort.truth)


def relate(*args, **kwargs):
    """relate_outcomes, returning the fit and the package warnings it raised."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", AllianceTrajWarning)
        fit = at.relate_outcomes(*args, seed=2, n_draws=5, **kwargs)
    return fit, [str(w.message) for w in record if issubclass(w.category, AllianceTrajWarning)]


def no_confident_answer(fit) -> None:
    """Every p-value is NaN or comes with a finite, positive standard error."""
    c = fit.coefficients
    finite_p = c["p_value"].notna()
    assert (c.loc[finite_p, "std_error"] > 0).all()
    assert np.isfinite(c.loc[finite_p, "std_error"]).all()


# ----------------------------------------------------------------------- the outcome
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family, value", [("gaussian", 1.0), ("gaussian", 0.0),
                                           ("binomial", 0), ("binomial", 1)])
def test_constant_outcome_is_a_data_error(cohort, result, method, family, value):
    outcomes = cohort.outcomes.assign(y=value)
    with pytest.raises(DataError, match=r"'y' \(outcome\) is constant"):
        at.relate_outcomes(result, outcomes, "y", family=family, method=method, seed=1)


@pytest.mark.parametrize("method", METHODS)
def test_near_constant_outcome_is_judged_relative_to_its_size(cohort, result, method):
    noise = np.random.default_rng(0).standard_normal(len(cohort.outcomes))
    outcomes = cohort.outcomes.assign(flat=1e6 + 1e-6 * noise,
                                      tiny=1e-9 * cohort.outcomes["recovery"])
    with pytest.raises(DataError, match=r"constant \(to 9 significant digits"):
        at.relate_outcomes(result, outcomes, "flat", method=method, seed=1)
    # a small outcome is not a constant one: its effects are the recovery effects x 1e-9
    tiny, _ = relate(result, outcomes, "tiny", method=method)
    full, _ = relate(result, outcomes, "recovery", method=method)
    np.testing.assert_allclose(tiny.effects["estimate"], 1e-9 * full.effects["estimate"],
                               rtol=1e-6)


@pytest.mark.parametrize("values", [(0.0, 1.0), (2.0, 5.0)])
def test_two_valued_gaussian_outcome_suggests_binomial(cohort, result, values):
    binary = cohort.outcomes["reliable_improvement"].to_numpy()
    outcomes = cohort.outcomes.assign(y=np.where(binary == 1, values[1], values[0]))
    fit, messages = relate(result, outcomes, "y")
    assert any("family='binomial'" in m and "two values" in m for m in messages)
    assert any("family='binomial'" in note for note in fit.notes)
    assert "family='binomial'" in fit.summary()
    assert fit.effects["estimate"].notna().all()
    recode = any("recode it as 0/1" in m for m in messages)
    assert recode == (values != (0.0, 1.0))


# ------------------------------------------------------------------------ covariates
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ["gaussian", "binomial"])
def test_constant_covariate_is_dropped_with_a_note(cohort, result, method, family):
    outcomes = cohort.outcomes.assign(site=3.0)
    column = "recovery" if family == "gaussian" else "reliable_improvement"
    fit, messages = relate(result, outcomes, column, ["baseline_severity", "site"],
                           family=family, method=method)
    assert fit.coefficients.loc["site"].isna().all()
    assert any("'site' is constant" in m for m in messages)
    assert any("'site' is constant" in note for note in fit.notes)
    # the rest is the fit without the covariate
    ref, _ = relate(result, cohort.outcomes, column, ["baseline_severity"], family=family,
                    method=method)
    np.testing.assert_allclose(fit.effects["estimate"], ref.effects["estimate"], rtol=1e-8)
    no_confident_answer(fit)


@pytest.mark.parametrize("method", METHODS)
def test_collinear_covariate_is_dropped_with_a_note(cohort, result, method):
    outcomes = cohort.outcomes.assign(twice=2 * cohort.outcomes["baseline_severity"] + 1)
    fit, messages = relate(result, outcomes, "recovery", ["baseline_severity", "twice"],
                           method=method)
    assert fit.coefficients.loc["twice"].isna().all()
    assert fit.coefficients.loc["baseline_severity", "estimate"] == pytest.approx(
        relate(result, outcomes, "recovery", ["baseline_severity"], method=method)[0]
        .coefficients.loc["baseline_severity", "estimate"], rel=1e-8)
    assert any("rank-deficient" in m and "'twice'" in m for m in messages)


def test_covariate_equal_to_a_class_indicator_is_dropped(cohort):
    labels = cohort.truth["true_class"].astype(str)
    res = at.ClassificationResult.from_labels(labels, method="truth")
    outcomes = cohort.outcomes.assign(is_v=(labels == "v_shaped").astype(float))
    fit, messages = relate(res, outcomes, "recovery", ["is_v"], method="modal")
    assert fit.coefficients.loc["is_v"].isna().all()
    assert fit.effects["estimate"].notna().all()
    assert any("rank-deficient" in m for m in messages)


# ------------------------------------------------------------- classes with 0/1 dyads
def labels_with(cohort, cls: str, n: int) -> at.ClassificationResult:
    labels = cohort.truth["true_class"].astype(str).copy()
    members = labels.index[labels == cls]
    labels[members[n:]] = "linear"
    return at.ClassificationResult.from_labels(labels, method="truth")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [0, 1])
def test_class_with_fewer_than_two_dyads_is_nan(cohort, method, n):
    res = labels_with(cohort, "v_shaped", n)
    fit, messages = relate(res, cohort.outcomes, "recovery", ["baseline_severity"],
                           method=method)
    assert fit.effects.loc["v_shaped"].isna().all()
    assert fit.effects.drop("v_shaped")["estimate"].notna().all()
    why = "no dyad is assigned" if n == 0 else "only one dyad"
    assert any("'v_shaped' cannot be estimated" in m and why in m for m in messages)
    assert any(why in note for note in fit.notes)
    assert fit.counts.loc["v_shaped", "n_assigned"] == n
    assert fit.n_dyads == len(cohort.outcomes) - n
    no_confident_answer(fit)


def test_reference_class_with_one_dyad_is_a_data_error(cohort):
    res = labels_with(cohort, "u_shaped", 1)
    with pytest.raises(DataError, match="reference class 'u_shaped' cannot be estimated"):
        at.relate_outcomes(res, cohort.outcomes, "recovery", reference="u_shaped")


def test_fewer_dyads_than_coefficients_is_a_data_error(cohort):
    labels = pd.Series(list(at.CLASSES) * 2, index=cohort.truth.index[:8])
    res = at.ClassificationResult.from_labels(labels, method="truth")
    outcomes = cohort.outcomes.iloc[:8].assign(x1=np.arange(8.0), x2=np.arange(8.0) ** 2,
                                                x3=np.arange(8.0) ** 3,
                                                x4=np.cos(np.arange(8.0)))
    with pytest.raises(DataError, match="Only 8 dyad"):
        at.relate_outcomes(res, outcomes, "recovery", ["x1", "x2", "x3", "x4"],
                           method="modal")


# ---------------------------------------------------------------------- separation
def nobody_recovered_in(cohort, result, cls: str) -> pd.DataFrame:
    y = cohort.outcomes["reliable_improvement"].copy()
    y[result.labels == cls] = 0
    return cohort.outcomes.assign(reliable_improvement=y)


@pytest.mark.parametrize("method", METHODS)
def test_separated_class_is_nan_and_named(cohort, result, method):
    outcomes = nobody_recovered_in(cohort, result, "u_shaped")
    fit, messages = relate(result, outcomes, "reliable_improvement", ["baseline_severity"],
                           family="binomial", method=method)
    assert fit.effects.loc["u_shaped"].isna().all()
    assert fit.effects.drop("u_shaped")["estimate"].notna().all()
    text = [m for m in messages if "'u_shaped' cannot be estimated" in m]
    assert text and "reliable_improvement' = 0" in text[0] and "separation" in text[0]
    assert "firth=True" in text[0] and "fit.counts" in text[0]
    assert "separation" in fit.summary()
    n_u = int((result.labels == "u_shaped").sum())
    assert fit.counts.loc["u_shaped"].tolist() == [n_u, n_u, 0]
    no_confident_answer(fit)
    assert np.isnan(fit.omnibus["p_value"]) or fit.omnibus["df"] == 2


@pytest.mark.parametrize("method", ["modal", "draws"])
def test_firth_gives_finite_penalised_effects_under_separation(cohort, result, method):
    outcomes = nobody_recovered_in(cohort, result, "u_shaped")
    fit, _ = relate(result, outcomes, "reliable_improvement", ["baseline_severity"],
                    family="binomial", method=method, firth=True)
    eff = fit.effects
    assert eff["estimate"].notna().all() and np.isfinite(eff["std_error"]).all()
    # nobody in the class recovered: a clearly negative, finite log-odds ratio
    assert -12 < eff.loc["u_shaped", "estimate"] < -1
    assert fit.settings["firth"] and "Firth" in fit.summary()


@pytest.mark.parametrize("method", ["modal", "draws"])
def test_firth_shrinks_toward_zero_without_separation(cohort, result, method):
    plain, _ = relate(result, cohort.outcomes, "reliable_improvement", family="binomial",
                      method=method)
    firth, _ = relate(result, cohort.outcomes, "reliable_improvement", family="binomial",
                      method=method, firth=True)
    a, b = plain.effects["estimate"], firth.effects["estimate"]
    assert np.all(np.abs(b) <= np.abs(a) + 1e-12)
    np.testing.assert_allclose(b, a, atol=0.5 * plain.effects["std_error"].max())


def test_firth_options_are_checked(cohort, result):
    for method in ("bch", "ml"):
        with pytest.raises(ValueError, match="'firth' parameter of relate_outcomes must be "
                                             "False for method='bch', 'ml'"):
            at.relate_outcomes(result, cohort.outcomes, "reliable_improvement",
                               family="binomial", method=method, firth=True)
    with pytest.raises(ValueError, match="False unless family='binomial'"):
        at.relate_outcomes(result, cohort.outcomes, "recovery", firth=True)
    with pytest.raises(ValueError, match="must be a bool"):
        at.relate_outcomes(result, cohort.outcomes, "recovery", firth="yes")


@pytest.mark.parametrize("method", METHODS)
def test_separation_by_a_covariate_gives_nan_and_a_note(cohort, result, method):
    x = cohort.outcomes["baseline_severity"]
    outcomes = cohort.outcomes.assign(reliable_improvement=(x > 0).astype(int))
    fit, messages = relate(result, outcomes, "reliable_improvement", ["baseline_severity"],
                           family="binomial", method=method)
    assert fit.coefficients["estimate"].isna().all()
    assert any("separated by the covariates" in m for m in messages)
    assert np.isnan(fit.omnibus["p_value"])


def test_separated_reference_is_a_data_error(cohort, result):
    outcomes = nobody_recovered_in(cohort, result, "linear")
    with pytest.raises(DataError, match=r"reference class 'linear'.*= 0.*firth=True"):
        at.relate_outcomes(result, outcomes, "reliable_improvement", family="binomial")


# ------------------------------------------------- small, messy data: no internal errors
@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_tiny_cohorts_give_a_fit_or_a_data_error(method, data):
    n = data.draw(st.integers(6, 24), label="n")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    family = data.draw(st.sampled_from(["gaussian", "binomial"]), label="family")
    hard = data.draw(st.booleans(), label="hard")
    rng = np.random.default_rng(seed)
    index = [f"d{i}" for i in range(n)]
    p = rng.dirichlet(np.full(len(at.CLASSES), 0.3), size=n)
    if hard:
        p = np.eye(len(at.CLASSES))[p.argmax(axis=1)]
    res = at.ClassificationResult.from_probabilities(p, index=index, method="synthetic")
    y = rng.integers(0, 2, n).astype(float) if family == "binomial" else rng.normal(20, 5, n)
    outcomes = pd.DataFrame({"y": y, "x": rng.normal(size=n)}, index=index)
    try:
        fit, _ = relate(res, outcomes, "y", ["x"], family=family, method=method)
    except DataError:
        return
    no_confident_answer(fit)


@pytest.mark.parametrize("method", METHODS)
def test_small_samples_carry_a_caution(cohort, method):
    res = soft_result(cohort.truth.iloc[:22], sigma=0.4, seed=3)
    fit, messages = relate(res, cohort.outcomes.iloc[:22], "recovery", ["baseline_severity"],
                           method=method)
    assert any("fewer than 5 per coefficient" in m for m in messages)
    if method == "ml":  # 22 dyads for 12 likelihood parameters: not fitted
        assert fit.effects["estimate"].isna().all()
        assert any("overfitted" in note for note in fit.notes)
    else:
        assert fit.effects["estimate"].notna().all()


def test_twenty_dyads_classified_by_pelt():
    # the case: binomial ML on a 20-dyad pelt classification raised LinAlgError
    pytest.importorskip("ruptures", reason="ruptures (baselines extra) is not installed")
    cohort = at.simulate_cohort(20, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceTrajWarning)
        res = at.classify(cohort.sessions, method="pelt")
    for method in METHODS:
        fit, _ = relate(res, cohort.outcomes, "reliable_improvement", family="binomial",
                        method=method)
        assert fit.effects["estimate"].notna().any()
        no_confident_answer(fit)
