"""relate_outcomes: recovery of simulated class effects, naive attenuation, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.errors import AllianceTrajWarning, DataError, ExcludedDyadsWarning
from alliancetraj.outcomes import OutcomeFit, estimate_error_matrix
from alliancetraj.simulate import DEFAULT_BINARY_EFFECTS, DEFAULT_OUTCOME_EFFECTS

MIX = np.array([0.4, 0.2, 0.2, 0.2])  # simulate_cohort's default class mix
NON_REF = ["u_shaped", "v_shaped", "unrepaired_rupture"]


def calibrated_result(truth: pd.DataFrame, sigma: float, seed: int) -> at.ClassificationResult:
    """A classifier whose probabilities are exact posteriors (calibrated by construction).

    Each dyad emits a noisy signal ``e_true + sigma * N(0, I)``; its class probabilities
    are the Bayes posterior under the known class mix. Larger ``sigma``: harder.
    """
    rng = np.random.default_rng(seed)
    codes = truth["true_class"].cat.codes.to_numpy()
    eye = np.eye(len(at.CLASSES))
    signal = eye[codes] + sigma * rng.standard_normal((len(codes), len(at.CLASSES)))
    logp = np.log(MIX) - ((signal[:, None, :] - eye[None]) ** 2).sum(-1) / (2 * sigma**2)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return at.ClassificationResult.from_probabilities(p, index=truth.index, method="synthetic")


@pytest.fixture(scope="module")
def big_cohort():
    return at.simulate_cohort(n_dyads=1500, seed=2024, n_sessions=6)


@pytest.fixture(scope="module")
def noisy_result(big_cohort):
    return calibrated_result(big_cohort.truth, sigma=0.8, seed=7)


def _truth(effects: dict, index) -> np.ndarray:
    return np.array([effects[c] for c in index])


def test_bch_recovers_gaussian_effects(big_cohort, noisy_result):
    fit = at.relate_outcomes(noisy_result, big_cohort.outcomes, outcome="recovery",
                             covariates=["baseline_severity"])
    assert fit.method == "bch" and not fit.naive
    eff = fit.effects
    assert list(eff.index) == NON_REF
    assert list(eff.columns) == ["estimate", "std_error", "ci_low", "ci_high", "p_value"]
    z = (eff["estimate"] - _truth(DEFAULT_OUTCOME_EFFECTS, eff.index)) / eff["std_error"]
    assert np.all(np.abs(z) < 3.5), z
    sev = fit.coefficients.loc["baseline_severity", "estimate"]
    assert abs(sev - (-0.4)) < 4 * fit.coefficients.loc["baseline_severity", "std_error"]
    assert fit.omnibus["p_value"] < 1e-6 and fit.omnibus["df"] == 3
    # error matrix: rows are true classes and sum to one
    assert np.allclose(fit.error_matrix.sum(axis=1), 1.0)


def test_bch_recovers_binomial_effects(big_cohort, noisy_result):
    fit = at.relate_outcomes(noisy_result, big_cohort.outcomes, outcome="reliable_improvement",
                             covariates=["baseline_severity"], family="binomial")
    eff = fit.effects
    z = (eff["estimate"] - _truth(DEFAULT_BINARY_EFFECTS, eff.index)) / eff["std_error"]
    assert np.all(np.abs(z) < 3.5), z


def test_bch_binomial_intervals_invert_the_robust_score_test(big_cohort, noisy_result):
    from scipy import stats

    from alliancetraj.outcomes.bch import BCH as _BCH

    out = big_cohort.outcomes.loc[noisy_result.dyads]
    fit = at.relate_outcomes(noisy_result, out, outcome="reliable_improvement",
                             covariates=["baseline_severity"], family="binomial")
    assert fit.settings["interval"] == "score"
    assert "robust score test" in fit.summary()
    eff = fit.effects
    eq = _BCH(noisy_result.probabilities.to_numpy(), out["reliable_improvement"].to_numpy(float),
              out[["baseline_severity"]].to_numpy(float), "binomial", 0, None)
    beta = eq.fit()
    assert np.allclose(beta[1:4], eff["estimate"].to_numpy())
    crit = stats.chi2.ppf(0.95, 1)
    for j, name in enumerate(eff.index, start=1):
        lo, hi = eff.loc[name, ["ci_low", "ci_high"]]
        assert lo < beta[j] < hi
        # the bounds are where the statistic reaches the critical value; inside it is below
        assert eq.score_statistic(beta, j, lo) == pytest.approx(crit, abs=1e-3)
        assert eq.score_statistic(beta, j, hi) == pytest.approx(crit, abs=1e-3)
        assert eq.score_statistic(beta, j, beta[j]) < 1e-8
        # with 1,500 dyads the score and Wald intervals nearly agree
        half = 1.959964 * eff.loc[name, "std_error"]
        assert lo == pytest.approx(beta[j] - half, abs=0.15 * half)
        assert hi == pytest.approx(beta[j] + half, abs=0.15 * half)
        p0 = stats.chi2.sf(eq.score_statistic(beta, j, 0.0), 1)
        assert eff.loc[name, "p_value"] == pytest.approx(p0)
    # the Gaussian family keeps Wald intervals
    gauss = at.relate_outcomes(noisy_result, out, outcome="recovery",
                               covariates=["baseline_severity"])
    assert gauss.settings["interval"] == "wald"


def test_naive_methods_are_attenuated(big_cohort, noisy_result):
    kwargs = dict(outcome="recovery", covariates=["baseline_severity"])
    bch = at.relate_outcomes(noisy_result, big_cohort.outcomes, method="bch", **kwargs)
    modal = at.relate_outcomes(noisy_result, big_cohort.outcomes, method="modal", **kwargs)
    draws = at.relate_outcomes(noisy_result, big_cohort.outcomes, method="draws", seed=1,
                               n_draws=5, **kwargs)
    true = _truth(DEFAULT_OUTCOME_EFFECTS, NON_REF)
    big = np.abs(true) >= 0.5  # v_shaped, unrepaired_rupture
    for naive in (modal, draws):
        assert naive.naive
        est = naive.effects["estimate"].to_numpy()
        # shrunk toward zero, and by more than BCH's error
        assert np.all(np.abs(est[big]) < 0.85 * np.abs(true[big]))
        assert np.all(np.abs(est - true)[big] > np.abs(bch.effects["estimate"].to_numpy()
                                                       - true)[big])
    assert "naive" in modal.summary()


def test_perfect_classification_all_methods_agree(big_cohort):
    res = at.ClassificationResult.from_labels(big_cohort.truth["true_class"].astype(str),
                                              method="truth")
    kwargs = dict(outcome="recovery", covariates=["baseline_severity"])
    modal = at.relate_outcomes(res, big_cohort.outcomes, method="modal", **kwargs)
    draws = at.relate_outcomes(res, big_cohort.outcomes, method="draws", n_draws=2, seed=0,
                               **kwargs)
    with pytest.warns(AllianceTrajWarning, match="hard labels"):
        bch = at.relate_outcomes(res, big_cohort.outcomes, method="bch", **kwargs)
    np.testing.assert_allclose(bch.effects["estimate"], modal.effects["estimate"], atol=1e-10)
    np.testing.assert_allclose(draws.effects["estimate"], modal.effects["estimate"], atol=1e-10)
    # sandwich and model-based SEs agree under homoscedastic errors
    np.testing.assert_allclose(bch.effects["std_error"], modal.effects["std_error"], rtol=0.1)


def test_error_matrix_for_hard_labels(big_cohort):
    # hard labels with a known misclassification matrix
    rng = np.random.default_rng(5)
    D = np.array([[0.80, 0.10, 0.05, 0.05],
                  [0.15, 0.75, 0.05, 0.05],
                  [0.10, 0.05, 0.80, 0.05],
                  [0.10, 0.05, 0.05, 0.80]])
    codes = big_cohort.truth["true_class"].cat.codes.to_numpy()
    assigned = np.array([rng.choice(4, p=D[c]) for c in codes])
    labels = pd.Series(np.array(at.CLASSES)[assigned], index=big_cohort.truth.index)
    res = at.ClassificationResult.from_labels(labels, method="rules")
    Ddf = pd.DataFrame(D, index=at.CLASSES, columns=at.CLASSES)
    fit = at.relate_outcomes(res, big_cohort.outcomes, outcome="recovery",
                             covariates=["baseline_severity"], error_matrix=Ddf)
    z = (fit.effects["estimate"] - _truth(DEFAULT_OUTCOME_EFFECTS, NON_REF)) / \
        fit.effects["std_error"]
    assert np.all(np.abs(z) < 3.5), z
    assert fit.settings["error_matrix_source"] == "given"


def test_estimate_error_matrix_rows_sum_to_one(monkeypatch):
    import sys

    dispatch = sys.modules["alliancetraj.dispatch"]  # where estimate_error_matrix finds classify

    def fake_classify(sessions, method="rules", **options):
        dyads = sessions["dyad"].unique()
        labels = pd.Series(["linear"] * len(dyads), index=dyads)
        return at.ClassificationResult.from_labels(labels, method=method)

    monkeypatch.setattr(dispatch, "classify", fake_classify)
    D = estimate_error_matrix("rules", n_cohorts=2, n_dyads=40, seed=1)
    assert list(D.index) == list(at.CLASSES) and list(D.columns) == list(at.CLASSES)
    np.testing.assert_allclose(D.sum(axis=1), 1.0)
    assert (D["linear"] == 1.0).all()


def test_excluded_dyads_are_counted_and_frames_untouched(small_cohort):
    res = calibrated_result(small_cohort.truth, sigma=0.5, seed=1)
    outcomes = small_cohort.outcomes.copy()
    outcomes.iloc[:3, outcomes.columns.get_loc("recovery")] = np.nan
    outcomes = outcomes.iloc[:-2]  # two dyads without an outcome row
    before = outcomes.copy()
    probs_before = res.probabilities.copy()
    with pytest.warns(ExcludedDyadsWarning, match=r"Excluded 5 of 120"):
        fit = at.relate_outcomes(res, outcomes, outcome="recovery",
                                 covariates=["baseline_severity"])
    assert isinstance(fit, OutcomeFit)
    assert fit.n_dyads == 115 and len(fit.excluded) == 5
    pd.testing.assert_frame_equal(outcomes, before)
    pd.testing.assert_frame_equal(res.probabilities, probs_before)
    assert "5 excluded" in fit.summary()


def test_dyad_column_and_missing_covariate(small_cohort):
    res = calibrated_result(small_cohort.truth, sigma=0.5, seed=1)
    frame = small_cohort.outcomes.reset_index()
    frame.loc[0, "baseline_severity"] = np.nan
    with pytest.warns(ExcludedDyadsWarning, match="missing covariate"):
        fit = at.relate_outcomes(res, frame, outcome="recovery", dyad="dyad",
                                 covariates="baseline_severity", method="modal")
    assert fit.n_dyads == 119


def test_data_errors(small_cohort):
    res = calibrated_result(small_cohort.truth, sigma=0.5, seed=1)
    out = small_cohort.outcomes
    with pytest.raises(DataError, match="not in the outcomes"):
        at.relate_outcomes(res, out, outcome="recovery", covariates=["age"])
    renamed = out.set_axis([f"x{i}" for i in range(len(out))], axis=0)
    with pytest.raises(DataError, match="do not match the classification result"):
        at.relate_outcomes(res, renamed, outcome="recovery")
    text = out.assign(recovery=out["recovery"].astype(str))
    text.iloc[4, text.columns.get_loc("recovery")] = "high"
    with pytest.raises(DataError, match=r"'recovery' \(outcome\) has 1 non-numeric"):
        at.relate_outcomes(res, text, outcome="recovery")
    with pytest.raises(DataError, match="0/1"):
        at.relate_outcomes(res, out, outcome="recovery", family="binomial")
    with pytest.raises(ValueError, match="'method' parameter"):
        at.relate_outcomes(res, out, outcome="recovery", method="magic")


def test_joint_method(small_cohort):
    res = calibrated_result(small_cohort.truth, sigma=0.5, seed=1)
    with pytest.raises(ValueError, match="method='pymc'"):
        at.relate_outcomes(res, small_cohort.outcomes, outcome="recovery", method="joint")
    stored = pd.DataFrame(
        {"estimate": [0.3, 0.5, -0.5], "std_error": 0.1, "ci_low": 0.0, "ci_high": 1.0,
         "p_value": 0.01}, index=NON_REF)
    res.extras["outcome_effects"] = stored
    fit = at.relate_outcomes(res, small_cohort.outcomes, outcome="recovery", method="joint")
    np.testing.assert_allclose(fit.effects["estimate"], [0.3, 0.5, -0.5])


def test_draws_reproducible_with_seed(small_cohort):
    res = calibrated_result(small_cohort.truth, sigma=0.7, seed=1)
    kw = dict(outcome="recovery", method="draws", n_draws=4)
    a = at.relate_outcomes(res, small_cohort.outcomes, seed=3, **kw)
    b = at.relate_outcomes(res, small_cohort.outcomes, seed=3, **kw)
    pd.testing.assert_frame_equal(a.effects, b.effects)
    assert a.omnibus["test"] == "F"


# --------------------------------------------------------------------- ML three-step
@pytest.mark.parametrize("family, column, effects", [
    ("gaussian", "recovery", DEFAULT_OUTCOME_EFFECTS),
    ("binomial", "reliable_improvement", DEFAULT_BINARY_EFFECTS),
])
def test_ml_recovers_effects(big_cohort, noisy_result, family, column, effects):
    fit = at.relate_outcomes(noisy_result, big_cohort.outcomes, outcome=column,
                             covariates=["baseline_severity"], family=family, method="ml")
    assert fit.method == "ml" and not fit.naive
    eff = fit.effects
    assert list(eff.index) == NON_REF and eff["std_error"].gt(0).all()
    z = (eff["estimate"] - _truth(effects, eff.index)) / eff["std_error"]
    assert np.all(np.abs(z) < 3.5), z
    assert np.allclose(fit.error_matrix.sum(axis=1), 1.0)
    assert fit.omnibus["p_value"] < 1e-3
    # ML and BCH estimate the same quantities from the same error matrix
    bch = at.relate_outcomes(noisy_result, big_cohort.outcomes, outcome=column,
                             covariates=["baseline_severity"], family=family)
    gap = np.abs(eff["estimate"] - bch.effects["estimate"])
    assert np.all(gap < 2 * bch.effects["std_error"]), gap


def test_ml_with_perfect_classification_is_the_class_regression(big_cohort):
    res = at.ClassificationResult.from_labels(big_cohort.truth["true_class"].astype(str),
                                              method="truth")
    kwargs = dict(outcome="recovery", covariates=["baseline_severity"])
    modal = at.relate_outcomes(res, big_cohort.outcomes, method="modal", **kwargs)
    with pytest.warns(AllianceTrajWarning, match="hard labels"):
        ml = at.relate_outcomes(res, big_cohort.outcomes, method="ml", **kwargs)
    np.testing.assert_allclose(ml.effects["estimate"], modal.effects["estimate"], atol=1e-5)
    np.testing.assert_allclose(ml.effects["std_error"], modal.effects["std_error"], rtol=0.1)


def test_ml_class_depending_on_covariate(big_cohort, noisy_result):
    # class membership depends on the covariate (u_shaped dyads are more severe); the ML
    # estimator models the class proportions given the covariate, so it stays unbiased
    rng = np.random.default_rng(11)
    codes = big_cohort.truth["true_class"].cat.codes.to_numpy()
    severity = rng.standard_normal(len(codes)) + 1.0 * (codes == 1) - 0.7 * (codes == 3)
    effects = _truth(DEFAULT_OUTCOME_EFFECTS, at.CLASSES)
    outcomes = pd.DataFrame({
        "baseline_severity": severity,
        "recovery": effects[codes] - 0.4 * severity + rng.standard_normal(len(codes)),
    }, index=big_cohort.truth.index)
    fit = at.relate_outcomes(noisy_result, outcomes, outcome="recovery",
                             covariates=["baseline_severity"], method="ml")
    z = (fit.effects["estimate"] - effects[1:]) / fit.effects["std_error"]
    assert np.all(np.abs(z) < 3.5), z
    sev = fit.coefficients.loc["baseline_severity"]
    assert abs(sev["estimate"] + 0.4) < 3.5 * sev["std_error"]


def test_ml_with_given_error_matrix(big_cohort):
    rng = np.random.default_rng(5)
    D = np.array([[0.80, 0.10, 0.05, 0.05],
                  [0.15, 0.75, 0.05, 0.05],
                  [0.10, 0.05, 0.80, 0.05],
                  [0.10, 0.05, 0.05, 0.80]])
    codes = big_cohort.truth["true_class"].cat.codes.to_numpy()
    assigned = np.array([rng.choice(4, p=D[c]) for c in codes])
    labels = pd.Series(np.array(at.CLASSES)[assigned], index=big_cohort.truth.index)
    res = at.ClassificationResult.from_labels(labels, method="rules")
    fit = at.relate_outcomes(res, big_cohort.outcomes, outcome="reliable_improvement",
                             covariates=["baseline_severity"], family="binomial",
                             method="ml", error_matrix=D)
    z = (fit.effects["estimate"] - _truth(DEFAULT_BINARY_EFFECTS, NON_REF)) / \
        fit.effects["std_error"]
    assert np.all(np.abs(z) < 3.5), z
    assert fit.settings["error_matrix_source"] == "given"
    with pytest.raises(ValueError, match="error_matrix is used by"):
        at.relate_outcomes(res, big_cohort.outcomes, outcome="recovery", method="modal",
                           error_matrix=D)


def test_modal_gaussian_is_ordinary_least_squares(small_cohort):
    import statsmodels.formula.api as smf

    labels = small_cohort.truth["true_class"].astype(str)
    res = at.ClassificationResult.from_labels(labels, method="truth")
    fit = at.relate_outcomes(res, small_cohort.outcomes, "recovery", ["baseline_severity"],
                             method="modal")
    frame = small_cohort.outcomes.assign(cls=pd.Categorical(labels, categories=at.CLASSES))
    ols = smf.ols("recovery ~ cls + baseline_severity", frame).fit()
    table = ols.summary2().tables[1]
    np.testing.assert_allclose(fit.coefficients["estimate"], table["Coef."], rtol=1e-10)
    np.testing.assert_allclose(fit.coefficients["std_error"], table["Std.Err."], rtol=1e-10)
    np.testing.assert_allclose(fit.coefficients["p_value"], table["P>|t|"], rtol=1e-8)
    np.testing.assert_allclose(fit.coefficients["ci_low"], table["[0.025"], rtol=1e-10)
    joint = ols.f_test("cls[T.u_shaped] = cls[T.v_shaped] = cls[T.unrepaired_rupture] = 0")
    assert fit.omnibus["test"] == "F" and fit.omnibus["df_denom"] == ols.df_resid
    assert fit.omnibus["statistic"] == pytest.approx(float(joint.fvalue), rel=1e-10)
    assert fit.omnibus["p_value"] == pytest.approx(float(joint.pvalue), rel=1e-8)
