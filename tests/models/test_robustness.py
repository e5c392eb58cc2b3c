"""The model's defences against the worlds it was not built from (issue 18).

The size floor (a rupture or U is at least ``size_floor`` residual SDs), the U as a dip on a
trend, the Dirichlet prior on the class shares and the small-cohort warning.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import special

import alliancetraj as at
from alliancetraj.errors import SmallCohortWarning
from alliancetraj.io import to_panel
from alliancetraj.models import empirical_bayes as eb
from alliancetraj.models.changepoint import evidence, spec, statistics
from alliancetraj.models.changepoint.tcdf import LogTCdf
from alliancetraj.worlds import simulate_world


# ------------------------------------------------------------------------- the U's dips
def test_u_shapes_follow_the_settings():
    shapes = spec.u_shapes()
    assert len(shapes) == 77
    s, w, e = shapes.T
    assert np.all(e - s >= 0.5 - 1e-9) and np.all(w - s >= 0.2 - 1e-9)
    assert np.all(e - w >= 0.2 - 1e-9) and np.all((shapes >= 0) & (shapes <= 1))
    # a brief series (span 4) keeps only dips whose sides span two sessions each
    adm = spec.admissible(np.arange(1.0, 6.0))["u_shaped"]
    assert adm == [(1.0, 3.0, 5.0)]
    assert spec.admissible(np.arange(1.0, 4.0))["u_shaped"] == []


def test_u_dip_is_a_triangle_and_the_statistics_match_the_design():
    t = np.array([1.0, 2.0, 4.0, 5.0, 7.0, 9.0, 10.0, 12.0])
    d = spec.u_dip(t, 1.0, 11.0, (0.1, 0.5, 0.9))
    assert d.max() <= 1.0 and d[0] == 0.0 and d[-1] == 0.0
    np.testing.assert_allclose(spec.u_dip(np.array([6.5]), 1.0, 11.0, (0.1, 0.5, 0.9)), [1.0])
    # the compiled moments equal sums over the explicit design column
    y = np.linspace(4.0, 3.0, len(t))
    frame = at.load_sessions(pd.DataFrame({"dyad": ["a"] * len(t), "session": t.astype(int),
                                           "score": y}))
    stats = statistics.block_stats(to_panel(frame), 0.0, 1.0, spec.Settings())
    configs = spec.admissible(t)["u_shaped"]
    ok = np.flatnonzero(stats.u_ok[0])
    assert len(ok) == len(configs)
    for j, cfg in zip(ok, configs):
        col = -spec.design(t, "u_shaped", cfg)[:, 2]
        np.testing.assert_allclose(
            [stats.u_nd[0, j], stats.u_xd[0, j], stats.u_dd[0, j], stats.u_yd[0, j]],
            [col.sum(), ((t - 1) * col).sum(), (col * col).sum(), (y * col).sum()], atol=1e-12)


# -------------------------------------------------------------------------- the floor
def test_floor_mass_approximates_the_noncentral_t():
    for nu in (8.0, 12.0, 20.0, 40.0):
        for lam in (1.5, 2.5, 4.0):
            z = np.linspace(-3.0, 12.0, 301)
            exact = np.log(special.nctdtr(nu, lam, z))
            keep = exact > -6.0
            approx = evidence.log_floor_mass(z, nu, lam)
            assert np.max(np.abs(approx[keep] - exact[keep])) < 0.07
    # without a floor it is the Student-t CDF exactly
    z = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(evidence.log_floor_mass(z, 10.0, 0.0),
                               np.log(special.stdtr(10.0, z)), rtol=1e-12)


@pytest.mark.parametrize("size_floor", [0.0, 2.5])
def test_kernel_equals_the_numpy_evidence_with_and_without_a_floor(size_floor):
    cohort = at.simulate_cohort(n_dyads=40, seed=9, missing=0.1)
    frame = at.load_sessions(cohort.sessions)
    loc, sd = spec.standardisation(frame)
    stats = statistics.block_stats(to_panel(frame), loc, sd, spec.Settings())
    h = spec.Hyperparameters(noise_scale=0.3, level_mean=0.1, level_var=10.0, slope_var=0.1,
                             depth_mean=0.5, amplitude_mean=0.4, size_floor=size_floor)
    ref = evidence.class_log_evidence(stats, evidence.config_evidence(stats, h))
    got, jac = eb.kernel_class_evidence(stats, h, LogTCdf(), grad=True)
    both = np.isfinite(ref)
    np.testing.assert_array_equal(both, np.isfinite(got))
    np.testing.assert_allclose(got[both], ref[both], atol=1e-8)
    # the analytic gradient (kernel + offsets) against central differences
    offsets = eb.class_offsets_grad(h)
    for name in ("noise_scale", "slope_var", "depth_var", "amplitude_var", "depth_mean"):
        k = list(spec.KERNEL_THETA).index(name)
        step = 1e-6 * max(1.0, abs(getattr(h, name)))
        hi = eb.kernel_class_evidence(stats, replace(h, **{name: getattr(h, name) + step}),
                                      LogTCdf(), grad=False)[0]
        lo = eb.kernel_class_evidence(stats, replace(h, **{name: getattr(h, name) - step}),
                                      LogTCdf(), grad=False)[0]
        num = (hi - lo) / (2 * step)
        ana = jac[:, :, k] + offsets[None, :, k]
        np.testing.assert_allclose(ana[both], num[both], rtol=1e-4, atol=1e-5)


def test_the_floor_keeps_linear_dyads_linear():
    """The issue's failure: linear dyads split into the other classes when a rupture or U of
    any size nests the linear model."""
    cohort = simulate_world("balanced_wai", n_dyads=300, seed=5)
    truth = cohort.truth["true_class"].astype(str)
    recall = {}
    for floor in (0.0, 2.5):
        res = at.classify(cohort.sessions, method="exact", size_floor=floor)
        lab = res.labels.astype(str).reindex(truth.index)
        recall[floor] = float((lab[truth == "linear"] == "linear").mean())
        assert res.hyperparameters["size_floor"] == floor
    assert recall[2.5] >= 0.7
    assert recall[2.5] > recall[0.0] + 0.2


def test_size_floor_is_checked():
    cohort = at.simulate_cohort(n_dyads=60, seed=1)
    for bad in (-1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="size_floor"):
            at.classify(cohort.sessions, method="exact", size_floor=bad)
    with pytest.raises(ValueError, match="size_floor"):
        spec.Hyperparameters(size_floor=-0.5)


def test_given_priors_carry_their_floor_and_the_option_overrides_it():
    cohort = at.simulate_cohort(n_dyads=120, seed=4)
    fitted = at.classify(cohort.sessions, method="exact", size_floor=1.5)
    assert fitted.hyperparameters["size_floor"] == 1.5
    again = at.classify(cohort.sessions, hyperparameters=fitted.hyperparameters,
                        fit_class_probs=False)
    np.testing.assert_allclose(again.probabilities.to_numpy(),
                               fitted.probabilities.to_numpy(), atol=1e-6)
    other = at.classify(cohort.sessions, hyperparameters=fitted.hyperparameters,
                        fit_class_probs=False, size_floor=3.0)
    assert other.hyperparameters["size_floor"] == 3.0
    assert np.abs(other.probabilities.to_numpy() - again.probabilities.to_numpy()).max() > 0.01


# -------------------------------------------------------------- shares and small cohorts
def test_share_prior_is_the_dirichlet_posterior_mode():
    # every dyad certainly in class 0: the mode is (n_k + a - 1) / (N + K (a - 1))
    L = np.full((10, 4), -50.0)
    L[:, 0] = 0.0
    for a in (1.0, 2.0, 5.0):
        pi, _ = eb.em_class_probs(L, concentration=a)
        want = (np.array([10.0, 0.0, 0.0, 0.0]) + a - 1) / (10 + 4 * (a - 1))
        np.testing.assert_allclose(pi, want, atol=1e-6)
    assert eb.share_prior(30) == 5.0 and eb.share_prior(400) == 2.0


def test_a_small_cohort_warns_and_its_priors_do_not_collapse():
    cohort = simulate_world("srs_ceiling", n_dyads=30, seed=3)
    with pytest.warns(SmallCohortWarning, match="30 dyads"):
        res = at.classify(cohort.sessions, method="exact")
    hp = res.hyperparameters
    assert hp["depth_var"] >= spec.MIN_SIZE_VAR - 1e-9
    assert hp["amplitude_var"] >= spec.MIN_SIZE_VAR - 1e-9
    assert min(hp["class_probs"]) > 0.03
    # no longer certain of every label (the issue: mean top probability 0.976-1.000)
    assert res.probabilities.max(axis=1).mean() < 0.95
    # a cohort of 60 pools without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallCohortWarning)
        at.classify(simulate_world("srs_ceiling", n_dyads=60, seed=3).sessions)


def test_floor_is_in_residual_sds_so_units_do_not_matter():
    cohort = simulate_world("brief", n_dyads=80, seed=2)
    base = at.classify(cohort.sessions, method="exact")
    scaled = cohort.sessions.assign(score=cohort.sessions["score"] * 8.0 + 11.0)
    other = at.classify(scaled, method="exact")
    np.testing.assert_allclose(other.probabilities.to_numpy(), base.probabilities.to_numpy(),
                               atol=1e-5)
