"""Per-dyad posterior predictive checks of the exact engine (``alliancetraj.fit_checks``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.models.changepoint import checks
from alliancetraj.models.changepoint.predictive import sample_prior_predictive
from alliancetraj.models.changepoint.spec import Hyperparameters, Settings

#: Priors of a WAI-like cohort (residual SD about 0.2 scale points).
H = Hyperparameters(noise_shape=6.0, noise_scale=0.25, level_mean=3.5, level_var=4.0,
                    slope_mean=0.0, slope_var=0.01, depth_mean=0.2, depth_var=16.0,
                    amplitude_mean=0.2, amplitude_var=16.0)
FAST = {"draws": 100, "calibration_dyads": 250}


def _classify(sessions):
    return at.classify(sessions, method="exact", hyperparameters=H, fit_class_probs=False)


@pytest.fixture(scope="module")
def model_cohort():
    """Dyads drawn from the model itself, their classification and checks."""
    sessions, truth = sample_prior_predictive(H, 150, (16, 26), seed=5)
    res = _classify(sessions)
    return sessions, truth, res, at.fit_checks(sessions, res, seed=1, **FAST)


def test_columns_and_ranges(model_cohort):
    sessions, _, res, out = model_cohort
    assert list(out.index) == list(res.labels.index)
    assert (out["class"].astype(str) == res.labels.astype(str)).all()
    assert (out["n_sessions"] == sessions.groupby("dyad").size().reindex(out.index)).all()
    for name in checks.STATISTICS:
        assert out[f"p_{name}"].between(0, 1).all()
        assert out[f"pcal_{name}"].between(0, 1).all() and (out[f"pcal_{name}"] > 0).all()
    assert out["misfit"].dtype == bool
    assert (out["misfit"] == (out["flagged"] != "")).all()
    assert (out["kurtosis"] > 1).all() and (out["max_resid"] > 0).all()


def test_dyads_from_the_model_are_rarely_flagged(model_cohort):
    out = model_cohort[3]
    assert out["misfit"].mean() <= 0.05
    # calibrated p-values are roughly uniform: mean near 1/2, a tenth below 0.1
    for name in checks.STATISTICS:
        p = out[f"pcal_{name}"]
        assert 0.4 < p.mean() < 0.6
        assert (p < 0.1).mean() < 0.2
    # the raw posterior predictive p-values are conservative: crowded around 1/2
    raw = out[[f"p_{n}" for n in checks.STATISTICS]]
    assert (raw < 0.05).to_numpy().mean() < 0.02


def test_an_outlier_session_is_flagged_by_max_resid(model_cohort):
    sessions, truth, _, before = model_cohort
    dyad = before.index[before["class"] == "linear"][0]
    changed = sessions.copy()
    rows = np.flatnonzero(changed["dyad"] == dyad)
    changed.loc[rows[len(rows) // 2], "score"] += 8 * truth.at[dyad, "noise_sd"]
    after = at.fit_checks(changed, _classify(changed), seed=1, **FAST)
    assert not before.at[dyad, "misfit"]
    assert after.at[dyad, "misfit"] and "max_resid" in after.at[dyad, "flagged"]
    assert after.at[dyad, "pcal_max_resid"] < 0.01
    assert after.at[dyad, "max_resid"] > before.at[dyad, "max_resid"] + 2


def test_ar1_residuals_raise_the_lag1_flag_rate(model_cohort):
    sessions, truth, _, before = model_cohort
    rng = np.random.default_rng(7)
    parts = []
    for d, g in sessions.groupby("dyad", sort=False):
        e = np.empty(len(g))
        e[0] = rng.standard_normal()
        for i in range(1, len(g)):
            e[i] = 0.5 * e[i - 1] + 0.75**0.5 * rng.standard_normal()   # unit variance
        parts.append(g.assign(score=g["score"] + 1.5 * truth.at[d, "noise_sd"] * e))
    ar = pd.concat(parts, ignore_index=True)
    after = at.fit_checks(ar, _classify(ar), seed=1, **FAST)
    rate_before = (before["pcal_lag1"] < 0.05).mean()
    rate_after = (after["pcal_lag1"] < 0.05).mean()
    assert rate_after > 2 * rate_before and rate_after > rate_before + 0.05
    assert after["lag1"].mean() > before["lag1"].mean() + 0.05


def test_same_seed_same_numbers(model_cohort):
    sessions, _, res, _ = model_cohort
    a = at.fit_checks(sessions, res, draws=20, calibration_dyads=40, seed=3)
    b = at.fit_checks(sessions, res, draws=20, calibration_dyads=40, seed=3)
    c = at.fit_checks(sessions, res, draws=20, calibration_dyads=40, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["p_lag1"], c["p_lag1"])


def test_result_dyads_missing_from_sessions_are_named(model_cohort):
    sessions, _, res, _ = model_cohort
    gone = res.labels.index[0]
    with pytest.raises(at.DataError, match=f"'dyad'.*{gone}"):
        at.fit_checks(sessions[sessions["dyad"] != gone], res, **FAST)


def test_bad_inputs(model_cohort):
    sessions, _, res, _ = model_cohort
    rules = at.classify(sessions, method="rules")
    with pytest.raises(ValueError, match=r"classify\(method='exact'\).*'rules'"):
        at.fit_checks(sessions, rules)
    with pytest.raises(ValueError, match="'draws' parameter of fit_checks must be an int >= 20"):
        at.fit_checks(sessions, res, draws=5)
    with pytest.raises(ValueError, match="'alpha' parameter of fit_checks"):
        at.fit_checks(sessions, res, alpha=0.0)
    with pytest.raises(ValueError, match="'calibration_dyads' parameter of fit_checks"):
        at.fit_checks(sessions, res, calibration_dyads=-1)
    with pytest.raises(TypeError):
        at.fit_checks(sessions, res, seed="x")
    with pytest.raises(at.DataError):
        at.fit_checks(sessions.drop(columns="score"), res)


def test_replicates_of_a_well_fitted_series_sit_in_the_middle():
    # a straight line with Gaussian noise under the linear class: no statistic is extreme
    rng = np.random.default_rng(0)
    t = np.arange(1.0, 21.0)
    y = 3.0 + 0.02 * t + 0.2 * rng.standard_normal(len(t))
    stat, p = checks.check_dyad(t, y, H, "linear", Settings(), 400, np.random.default_rng(1))
    assert stat.shape == p.shape == (3,)
    assert np.all(p > 0.05)
    # and one far session is extreme for max_resid
    y[10] += 3.0
    stat2, p2 = checks.check_dyad(t, y, H, "linear", Settings(), 400, np.random.default_rng(1))
    assert p2[1] < 0.01 and stat2[1] > stat[1]
