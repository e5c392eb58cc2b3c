"""Growth models: lme4 reference values, statsmodels agreement, recovery, classification."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.errors import ConvergenceWarning
from alliancetraj.models import growth, growth_engine, growth_labels
from conftest import data_file


@pytest.fixture(scope="module")
def sleep():
    return pd.read_csv(data_file("sleepstudy.csv"))


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return at.GrowthModel(time="linear", random="slope", reml=True).fit(
        sleep, dyad="Subject", session="Days", score="Reaction"
    )


# ------------------------------------------------------------------ lme4 reference
def test_sleepstudy_matches_lme4(sleep_fit):
    gm = sleep_fit
    fe = gm.fixed_effects
    assert list(fe.index) == ["Intercept", "Days"]
    cov = gm.random_effects_cov
    sd = np.sqrt(np.diag(cov.to_numpy()))
    corr = cov.iat[0, 1] / (sd[0] * sd[1])
    reference = {
        "intercept": (fe["Intercept"], 251.405105),
        "slope": (fe["Days"], 10.467286),
        "sd_intercept": (sd[0], 24.7406580),
        "sd_slope": (sd[1], 5.9221377),
        "correlation": (corr, 0.065551),
        "residual_sd": (gm.residual_sd, 25.5917957),
        "reml_loglik": (gm.loglik, -871.8141),
    }
    for name, (got, want) in reference.items():
        assert float(f"{got:.4g}") == float(f"{want:.4g}"), (name, got, want)
    assert gm.converged_


def test_sleepstudy_does_not_modify_caller_frame(sleep):
    before = sleep.copy()
    at.GrowthModel(polish=False).fit(sleep, dyad="Subject", session="Days", score="Reaction")
    pd.testing.assert_frame_equal(sleep, before)


def test_every_optimizer_agrees_on_sleepstudy(sleep, sleep_fit):
    for kw in (
        {"polish": False},
        {"polish": "full"},
        {"optimizer": "lbfgs"},
        {"optimizer": "bfgs", "start": "identity"},
    ):
        gm = at.GrowthModel(**kw).fit(sleep, dyad="Subject", session="Days", score="Reaction")
        np.testing.assert_allclose(gm.fixed_effects, sleep_fit.fixed_effects, rtol=1e-6)
        np.testing.assert_allclose(gm.random_effects_cov, sleep_fit.random_effects_cov, rtol=1e-3)
        assert gm.loglik == pytest.approx(sleep_fit.loglik, abs=1e-5)


def test_blups_and_standard_errors_match_statsmodels(sleep, sleep_fit):
    from statsmodels.regression.mixed_linear_model import MixedLM

    X = np.column_stack([np.ones(len(sleep)), sleep["Days"].to_numpy(float)])
    ref = MixedLM(
        sleep["Reaction"].to_numpy(), X, groups=sleep["Subject"].to_numpy(), exog_re=X
    ).fit(reml=True)
    blup = sleep_fit.random_effects_
    for subject, effects in ref.random_effects.items():
        np.testing.assert_allclose(blup.loc[subject].to_numpy(), effects.to_numpy(), rtol=1e-4)
    table = sleep_fit.coef_table()
    np.testing.assert_allclose(table["std_error"], ref.bse_fe, rtol=1e-4)
    traj = sleep_fit.trajectories()
    np.testing.assert_allclose(traj["fitted"], ref.fittedvalues, rtol=1e-6)


@pytest.mark.parametrize("reml", [True, False])
def test_engine_equals_statsmodels_loglike_and_score(sleep, reml):
    from statsmodels.regression.mixed_linear_model import MixedLM

    t = sleep["Days"].to_numpy(float)
    X = np.column_stack([np.ones_like(t), t, t**2])
    y = sleep["Reaction"].to_numpy()
    subj = sleep["Subject"].to_numpy()
    starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
    stats = growth_engine.group_stats(y, X, X, starts)
    model = MixedLM(y, X, groups=subj, exog_re=X)
    model.reml, model.cov_pen, model.fe_pen, model._cov_sing, model._freepat = (
        reml,
        None,
        None,
        0,
        None,
    )
    rng = np.random.default_rng(0)
    for _ in range(3):
        theta = np.abs(rng.normal(size=6)) * np.array([1, 0.3, 0.3, 0.05, 0.05, 0.05])
        ll, grad, _, _ = growth_engine.profiled(theta, stats, reml, gradient=True)
        assert ll == pytest.approx(model.loglike(theta), rel=1e-10)
        np.testing.assert_allclose(grad, model.score(theta), rtol=1e-6, atol=1e-8)


def test_model_comparison_tables(sleep):
    kw = {"dyad": "Subject", "session": "Days", "score": "Reaction"}
    lin = at.GrowthModel(reml=False, polish=False).fit(sleep, **kw)
    quad = at.GrowthModel(time="quadratic", reml=False, polish=False).fit(sleep, **kw)
    table = growth.compare_growth(lin, quad)
    assert list(table.columns) == [
        "model",
        "time",
        "random",
        "reml",
        "n_params",
        "loglik",
        "aic",
        "bic",
        "lr_stat",
        "df",
        "p_value",
    ]
    assert table["n_params"].tolist() == [6, 7]
    # lme4: logLik(lmer(Reaction ~ Days + (Days|Subject), REML=FALSE)) = -875.9697, AIC 1763.939
    assert lin.loglik == pytest.approx(-875.9697, abs=1e-3)
    assert lin.aic == pytest.approx(1763.939, abs=1e-2)
    assert 0 <= table["p_value"].iloc[1] <= 1
    reml_lin = at.GrowthModel(polish=False).fit(sleep, **kw)
    reml_quad = at.GrowthModel(time="quadratic", polish=False).fit(sleep, **kw)
    with pytest.raises(ValueError, match="reml=False"):
        growth.compare_growth(reml_lin, reml_quad)
    with pytest.raises(ValueError, match="REML fits or ML fits"):
        lin.compare(reml_lin)


def test_piecewise_knot_profile_and_fixed_knot(sleep):
    kw = {"dyad": "Subject", "session": "Days", "score": "Reaction"}
    gm = at.GrowthModel(time="piecewise", random="slope", polish=False).fit(sleep, **kw)
    prof = gm.knot_profile_
    assert gm.knot_ == prof.loc[prof["ml_loglik"].idxmax(), "knot"]
    assert list(gm.fixed_effects.index) == ["Intercept", "Days", "Days_after_knot"]
    fixed = at.GrowthModel(time="piecewise", knot=4, polish=False).fit(sleep, **kw)
    assert fixed.knot_ == 4.0 and fixed.knot_profile_ is None
    with pytest.raises(at.DataError, match="inside"):
        at.GrowthModel(time="piecewise", knot=9).fit(sleep, **kw)


# ----------------------------------------------------------------- recovery
@pytest.fixture(scope="module")
def linear_cohort():
    return at.simulate_cohort(
        n_dyads=300, seed=21, class_mix={"linear": 1}, scale=None, resolution=None, noise_spread=0.0
    )


def test_recovers_simulated_growth_parameters(linear_cohort):
    gm = at.GrowthModel(polish=False).fit(linear_cohort.sessions)
    truth = linear_cohort.truth
    se = gm.coef_table()["std_error"]
    assert abs(gm.fixed_effects["session"] - 0.02) < 4 * se["session"]
    assert gm.residual_sd == pytest.approx(0.25, rel=0.05)
    sd_slope = np.sqrt(gm.random_effects_cov.iat[1, 1])
    assert sd_slope == pytest.approx(0.02, rel=0.25)
    # BLUP slopes track the true slopes
    slopes = gm.fixed_effects["session"] + gm.random_effects_["session"]
    assert np.corrcoef(slopes, truth.loc[slopes.index, "slope"])[0, 1] > 0.6


def test_covariates_and_origin(linear_cohort):
    s = linear_cohort.sessions.copy()
    dyads = s["dyad"].unique()
    arm = pd.Series(np.where(np.arange(len(dyads)) % 2 == 0, "cbt", "tau"), index=dyads)
    s["arm"] = s["dyad"].map(arm)
    s["score"] += np.where(s["arm"] == "tau", -0.3, 0.0)
    s["rater"] = s["session"] % 3 == 0  # boolean: dummy coded
    gm = at.GrowthModel(covariates=["arm", "rater"], origin=1, polish=False).fit(s)
    assert list(gm.fixed_effects.index) == ["Intercept", "session", "arm[tau]", "rater[True]"]
    row = gm.coef_table().loc["arm[tau]"]
    assert row["ci_low"] < -0.3 < row["ci_high"]
    assert gm.fixed_effects["Intercept"] == pytest.approx(3.6 + 0.02 * 0, abs=0.15)
    with pytest.raises(at.DataError, match="Covariate column 'site'"):
        at.GrowthModel(covariates=["site"]).fit(s)


def test_trajectories_on_a_grid(linear_cohort):
    gm = at.GrowthModel(polish=False).fit(linear_cohort.sessions)
    traj = gm.trajectories(sessions=[1, 5, 10])
    assert len(traj) == 3 * gm.n_dyads_
    assert list(traj.columns) == ["dyad", "session", "fitted", "population"]


# ------------------------------------------------------------- validation & warnings
def test_unfitted_and_bad_parameters(sleep):
    gm = at.GrowthModel()
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = gm.fixed_effects
    kw = {"dyad": "Subject", "session": "Days", "score": "Reaction"}
    with pytest.raises(ValueError, match="'time' parameter of GrowthModel"):
        at.GrowthModel(time="cubic").fit(sleep, **kw)
    with pytest.raises(ValueError, match="random='curvature'"):
        at.GrowthModel(random="curvature").fit(sleep, **kw)
    with pytest.raises(ValueError, match="knot"):
        at.GrowthModel(knot=3).fit(sleep, **kw)
    with pytest.raises(at.DataError, match="Reactoin"):
        at.GrowthModel().fit(sleep, dyad="Subject", session="Days", score="Reactoin")
    bad = sleep.copy()
    bad.loc[3, "Reaction"] = np.nan
    with pytest.raises(at.DataError, match="missing"):
        at.GrowthModel().fit(bad, **kw)


def test_singular_fit_warns_with_advice():
    rng = np.random.default_rng(3)
    n, T = 40, 8
    frame = pd.DataFrame(
        {
            "dyad": np.repeat(np.arange(n), T),
            "session": np.tile(np.arange(1, T + 1), n),
            # random intercepts; every dyad has the same residual pattern, so the per-dyad
            # slopes are identical and the slope variance estimate is exactly at zero
            "score": np.repeat(rng.normal(0, 1, n), T) + np.tile(rng.normal(0, 1, T), n),
        }
    )
    with pytest.warns(ConvergenceWarning, match="fewer random effects"):
        at.GrowthModel(random="slope", polish=False).fit(frame)


def test_optimizer_failure_is_reported(sleep):
    with pytest.warns(ConvergenceWarning, match="optimizer"):
        at.GrowthModel(optimizer="cg", start="identity", maxiter=1).fit(
            sleep, dyad="Subject", session="Days", score="Reaction"
        )


# ---------------------------------------------------------------- classification
@pytest.fixture(scope="module")
def growth_result(small_cohort):
    return at.classify(small_cohort.sessions, method="growth", seed=1)


def test_classify_growth_result_contract(growth_result, small_cohort):
    res = growth_result
    assert res.method == "growth"
    assert list(res.probabilities.columns) == list(at.CLASSES)
    np.testing.assert_allclose(res.probabilities.sum(axis=1), 1.0)
    assert set(res.labels.index) == set(small_cohort.truth.index)
    assert res.extras["growth_model"].converged_
    u = res.labels == "u_shaped"
    assert res.changepoints.loc[u, "turning_session"].notna().all()
    un = res.labels == "unrepaired_rupture"
    assert res.changepoints.loc[un, "rupture_session"].notna().all()
    # linear dyads are (almost) never called anything else
    truth = small_cohort.truth["true_class"].astype(str)
    lin = truth == "linear"
    assert (res.labels[lin.index[lin]].astype(str) == "linear").mean() > 0.9


def test_classify_growth_is_seeded(small_cohort, growth_result):
    again = at.classify(small_cohort.sessions, method="growth", seed=1)
    pd.testing.assert_frame_equal(again.probabilities, growth_result.probabilities)
    onehot = at.classify(small_cohort.sessions, method="growth", n_draws=0)
    assert set(np.unique(onehot.probabilities.to_numpy())) <= {0.0, 1.0}


def test_rules_on_known_shapes():
    t0, t1 = np.array(1.0), np.array(15.0)
    # a, b, c
    code, *_ = growth_labels._rule_labels(
        np.array([3.0, 3.8, 3.0, 3.0]),
        np.array([0.02, -0.16, 0.3, 0.0]),
        np.array([0.0, 0.01, -0.02, 0.0]),
        t0,
        t1,
        0.3,
        3.0,
    )
    assert [at.CLASSES[k] for k in code] == ["linear", "u_shaped", "unrepaired_rupture", "linear"]
    # a dip whose lower side is at most 3 sessions wide at half depth is v_shaped
    code, *_ = growth_labels._rule_labels(np.array(12.0), np.array(-6.0), np.array(1.0), t0, t1, 0.3, 3.0)
    assert at.CLASSES[int(code)] == "v_shaped"


# -------------------------------------------------------------- alliance -> symptoms
def test_alliance_symptom_model_recovers_within_and_between():
    sim = at.simulate_alliance_symptoms(
        n_dyads=400, seed=5, within_effect=-1.5, between_effect=-3.0
    )
    fit = at.alliance_symptom_model(sim.sessions, alliance="alliance", symptoms="symptoms")
    eff = fit.effects
    for name in ("within", "between"):
        assert abs(eff.loc[name, "estimate"] - sim.effects[name]) < 3 * eff.loc[name, "std_error"]
    # the two effects are told apart: within is precisely estimated and differs from between
    assert eff.loc["within", "std_error"] < eff.loc["between", "std_error"]
    assert eff.loc["within", "ci_high"] < 0 and eff.loc["between", "ci_high"] < 0
    assert fit.data["alliance_within"].groupby(fit.data["dyad"]).mean().abs().max() < 1e-9
    assert len(fit.data) == 400 * 11


def test_alliance_symptom_model_validates():
    sim = at.simulate_alliance_symptoms(n_dyads=10, seed=1)
    with pytest.raises(at.DataError, match="alliance column"):
        at.alliance_symptom_model(sim.sessions, alliance="wai")
    with pytest.raises(ValueError, match="'random' parameter"):
        at.alliance_symptom_model(sim.sessions, random="curvature")
