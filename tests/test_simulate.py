"""simulate_cohort: the truth it returns is the truth it used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at


def test_same_seed_same_cohort_and_generator_seed_accepted():
    a = at.simulate_cohort(50, seed=3)
    b = at.simulate_cohort(50, seed=3)
    c = at.simulate_cohort(50, seed=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a.sessions, b.sessions)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.sessions, c.sessions)
    assert not at.simulate_cohort(50, seed=4).sessions.equals(a.sessions)


def test_output_satisfies_the_data_contract():
    cohort = at.simulate_cohort(80, seed=1, missing=0.2, dropout=0.3)
    valid = at.load_sessions(cohort.sessions, scale=(1, 5))
    assert len(valid) == len(cohort.sessions)
    assert set(cohort.truth.index) == set(cohort.sessions["dyad"])
    assert set(cohort.outcomes.index) == set(cohort.truth.index)
    assert cohort.outcomes["reliable_improvement"].isin([0, 1]).all()


def test_class_mix_is_respected():
    cohort = at.simulate_cohort(4000, seed=2, class_mix={"v_shaped": 1, "linear": 1})
    share = cohort.truth["true_class"].value_counts(normalize=True)
    assert share["u_shaped"] == 0 and share["unrepaired_rupture"] == 0
    assert share["v_shaped"] == pytest.approx(0.5, abs=0.03)


def test_truth_matches_the_scores_it_claims():
    cohort = at.simulate_cohort(400, seed=5, noise=0.05, noise_spread=0.0, scale=None,
                                resolution=None)
    s = cohort.sessions.set_index(["dyad", "session"])["score"]
    t = cohort.truth
    for dyad, row in t[t["true_class"] == "v_shaped"].iterrows():
        r, e = int(row.rupture_session), int(row.repair_session)
        y = s.loc[dyad]
        trend = row.level + row.slope * (y.index - 1)
        dev = (y - trend).to_numpy()
        inside = (y.index >= r) & (y.index < e)
        assert np.all(np.abs(dev[inside] + row.depth) < 0.3)
        assert np.all(np.abs(dev[~inside]) < 0.3)
        assert (y.index < r).sum() >= 2 and (y.index >= e).sum() >= 2
    for dyad, row in t[t["true_class"] == "unrepaired_rupture"].iterrows():
        y = s.loc[dyad]
        assert (y.index >= row.rupture_session).sum() >= 2
    for dyad, row in t[t["true_class"] == "u_shaped"].iterrows():
        y = s.loc[dyad]
        assert y.index.min() < row.turning_session < y.index.max()
        curve = row.level - 0.5 * row.amplitude + row.curvature * (y.index - row.turning_session) ** 2
        assert np.all(np.abs(y.to_numpy() - curve) < 0.3)
        farther = max(row.turning_session - 1, row.last_session - row.turning_session)
        assert row.curvature * farther**2 == pytest.approx(row.amplitude)


def test_outcome_effects_follow_the_literature_by_default():
    cohort = at.simulate_cohort(6000, seed=7)
    means = cohort.outcomes.join(cohort.truth["true_class"]).groupby(
        "true_class", observed=True)["recovery"].mean()
    assert means["v_shaped"] > means["linear"] > means["unrepaired_rupture"]


def test_realism_knobs_change_the_data():
    base = at.simulate_cohort(300, seed=9)
    ceiling = at.simulate_cohort(300, seed=9, level=4.6)
    assert (ceiling.sessions["score"] == 5).mean() > (base.sessions["score"] == 5).mean() + 0.1
    assert np.allclose(base.sessions["score"] * 12, np.round(base.sessions["score"] * 12))
    gaps = at.simulate_cohort(300, seed=9, missing=0.3, n_sessions=20)
    assert len(gaps.sessions) < 0.8 * 300 * 20


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"n_dyads": 0}, "'n_dyads' parameter of simulate_cohort must be an int >= 1. Got 0"),
     ({"n_sessions": 2}, "'n_sessions' parameter of simulate_cohort must be an int >= 6"),
     ({"ar1": 1.0}, "'ar1'"), ({"df": 2}, "'df'"), ({"missing": 1.5}, "'missing'"),
     ({"class_mix": {"bogus": 1}}, r"Unknown class name\(s\) \['bogus'\]")],
)
def test_bad_parameters_are_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        at.simulate_cohort(**{"n_dyads": 10, **kwargs})
