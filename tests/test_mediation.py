"""mediation(): recovery of a simulated indirect effect through the alliance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.errors import DataError, ExcludedDyadsWarning
from alliancetraj.mediation import alliance_summary


@pytest.fixture(scope="module")
def sim():
    return at.simulate_mediation(n_dyads=1500, seed=3)


def test_simulate_mediation_truth():
    s = at.simulate_mediation(n_dyads=30, seed=1, a=0.4, b=0.5, direct=0.2)
    assert s.truth["indirect"] == pytest.approx(0.2)
    assert s.truth["total"] == pytest.approx(0.4)
    assert set(s.sessions["dyad"]) == set(s.data.index)
    again = at.simulate_mediation(n_dyads=30, seed=1, a=0.4, b=0.5, direct=0.2)
    pd.testing.assert_frame_equal(s.sessions, again.sessions)


@pytest.mark.parametrize("method", ["bootstrap", "quasi_bayes"])
def test_recovers_indirect_effect(sim, method):
    fit = at.mediation(sim.data, exposure="strategies", outcome="recovery", mediator="mean",
                       sessions=sim.sessions, method=method, n_rep=60, seed=1)
    eff = fit.effects
    true = sim.truth["indirect"]
    assert eff.loc["indirect", "ci_low"] < true < eff.loc["indirect", "ci_high"]
    # the interval is informative and the point estimate close (SE about 0.02 here)
    assert eff.loc["indirect", "ci_low"] > 0
    assert abs(fit.indirect - true) < 0.05
    assert eff.loc["total", "ci_low"] < sim.truth["total"] < eff.loc["total", "ci_high"]
    assert "indirect" in fit.summary()


def test_mediator_as_column_and_class_probability(sim):
    fit = at.mediation(sim.data, exposure="strategies", outcome="recovery",
                       mediator="alliance_level", n_rep=20, seed=0)
    assert fit.mediator == "alliance_level"
    sub = sim.data.iloc[:200]
    probs = np.random.default_rng(0).dirichlet(np.ones(4), len(sub))
    res = at.ClassificationResult.from_probabilities(probs, index=sub.index, method="x")
    with pytest.raises(ValueError, match="pass result="):
        at.mediation(sub, exposure="strategies", outcome="recovery", mediator="v_shaped")
    fit = at.mediation(sub, exposure="strategies", outcome="recovery", mediator="linear",
                       result=res, n_rep=20, seed=0)
    assert fit.mediator == "P(linear)"


def test_alliance_summary_slope_and_mean():
    frame = pd.DataFrame({"dyad": ["a"] * 4 + ["b"] * 3, "session": [1, 2, 3, 4, 1, 2, 3],
                          "score": [3.0, 3.5, 4.0, 4.5, 4.0, 4.0, 4.0]})
    s = alliance_summary(frame)
    assert s.loc["a", "alliance_slope"] == pytest.approx(0.5)
    assert s.loc["b", "alliance_mean"] == pytest.approx(4.0)
    assert s.loc["b", "alliance_slope"] == pytest.approx(0.0)


def test_missing_values_are_reported(sim):
    data = sim.data.iloc[:100].copy()
    data.iloc[:2, data.columns.get_loc("recovery")] = np.nan
    before = data.copy()
    with pytest.warns(ExcludedDyadsWarning, match="Excluded 2 of 100"):
        fit = at.mediation(data, exposure="strategies", outcome="recovery",
                           mediator="alliance_level", n_rep=20, seed=0)
    assert fit.n_dyads == 98 and len(fit.excluded) == 2
    pd.testing.assert_frame_equal(data, before)


def test_errors(sim):
    with pytest.raises(DataError, match="not in the data"):
        at.mediation(sim.data, exposure="rprs", outcome="recovery", mediator="alliance_level")
    with pytest.raises(ValueError, match="'method' parameter"):
        at.mediation(sim.data, exposure="strategies", outcome="recovery",
                     mediator="alliance_level", method="sobel")
    with pytest.raises(ValueError, match="Unknown mediator"):
        at.mediation(sim.data, exposure="strategies", outcome="recovery", mediator="wai")
