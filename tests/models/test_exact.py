"""The exact change-point engine: closed form = brute force, calibration, recovery, edges."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import special

import alliancetraj as at
from alliancetraj.models import empirical_bayes as eb
from alliancetraj.models import exact as ex
from alliancetraj.models.changepoint import evidence, spec, statistics
from alliancetraj.models.changepoint.tcdf import LogTCdf

H = ex.ExactHyperparameters(
    noise_shape=3.0, noise_scale=0.12, level_mean=3.5, level_var=20.0, slope_mean=0.01,
    slope_var=0.02, depth_mean=0.7, depth_var=4.0, amplitude_mean=0.6, amplitude_var=4.0,
    class_probs=(0.4, 0.2, 0.2, 0.2),
)


def _irregular_cohort(n_dyads: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_dyads):
        n = int(rng.integers(4, 16))
        sessions = np.sort(rng.choice(np.arange(1, 25), size=n, replace=False))
        y = 3.5 + 0.03 * sessions + rng.normal(0, 0.3, n)
        if i % 3 == 0:
            y[n // 2:n // 2 + 2] -= 1.0
        rows.append(pd.DataFrame({"dyad": f"x{i}", "session": sessions, "score": y}))
    return pd.concat(rows, ignore_index=True)


# ------------------------------------------------------------------ closed form, two ways
def test_vectorised_engine_equals_explicit_enumeration_on_irregular_sessions():
    frame = _irregular_cohort(25, seed=4)
    res = at.classify(frame, hyperparameters=H, fit_class_probs=False, chunk_size=6)
    for dyad, group in frame.groupby("dyad"):
        post = ex.dyad_posterior(group, H, n_draws=10, seed=0)
        np.testing.assert_allclose(res.log_evidence.loc[dyad].to_numpy(),
                                   post["log_evidence"].to_numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(res.probabilities.loc[dyad].to_numpy(),
                                   post["probabilities"].to_numpy(), atol=1e-10)


def test_admissible_configurations_counted_the_same_way():
    frame = _irregular_cohort(15, seed=9)
    settings = spec.Settings()
    canon = at.load_sessions(frame)
    stats = statistics.block_stats(at.io.to_panel(canon), 0.0, 1.0, settings)
    for i, (_, group) in enumerate(canon.groupby("dyad", sort=False)):
        adm = spec.admissible(group["session"].to_numpy(float), settings)
        assert stats.n_admissible[i].tolist() == [
            len(adm["u_shaped"]), len(adm["v_shaped"]), len(adm["unrepaired_rupture"])
        ]


def _gl(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def _brute_force_log_evidence(t, y, h, cls, config, nodes=48):
    """Integrate prior x likelihood over (theta, sigma^2) numerically (Gauss-Legendre).

    Coordinates are shifted and scaled by a rough posterior location/scale at each
    sigma^2 node (a change of variables with its Jacobian); the integrand itself is
    the plain product of the prior densities and the Gaussian likelihood, with the
    constrained coefficient integrated over (kappa sigma, inf) only and the prior renormalised
    by a separate quadrature of its mass on the constrained region.
    """
    X = spec.design(t, cls, config)
    m, v = spec.prior_moments(h, cls)
    p = len(m)
    _, mn, Vn, an, bn = evidence.config_posterior(t, y, h, cls, config)
    s2 = bn / an
    us, uw = _gl(math.log(s2) - 3.0, math.log(s2) + 8.0, 80)
    z, zw = _gl(-12.0, 12.0, nodes)
    constrained = cls != "linear"
    free = p - 1 if constrained else p
    if constrained:
        vf, vfd, vdd = Vn[:free, :free], Vn[:free, free], Vn[free, free]
        cond = vf - np.outer(vfd, vfd) / vdd
    else:
        cond = Vn
    K = np.linalg.cholesky(cond)
    zg = np.stack([g.ravel() for g in np.meshgrid(*([z] * free), indexing="ij")], axis=1)
    zwg = np.prod(np.stack([g.ravel() for g in np.meshgrid(*([zw] * free), indexing="ij")],
                           axis=1), axis=1)
    terms = []
    for u, wu in zip(us, uw):
        sig2 = math.exp(u)
        sig = math.sqrt(sig2)
        log_ig = h.noise_shape * math.log(h.noise_scale) - special.gammaln(h.noise_shape) \
            - (h.noise_shape + 1) * u - h.noise_scale / sig2
        if constrained:
            sd_d = sig * math.sqrt(vdd)
            lo = max(h.size_floor * sig, mn[free] - 14 * sd_d)
            ds, dw = _gl(lo, mn[free] + 14 * sd_d, nodes)
            centre = mn[:free][None, :] + np.outer(ds - mn[free], vfd / vdd)   # (nd, free)
            th_f = centre[:, None, :] + sig * (zg @ K.T)[None, :, :]
            theta = np.concatenate([th_f, np.broadcast_to(ds[:, None, None], (*th_f.shape[:2], 1))],
                                   axis=2).reshape(-1, p)
            w = (dw[:, None] * zwg[None, :]).ravel() * sig**free * np.prod(np.diag(K))
        else:
            theta = mn[None, :] + sig * (zg @ K.T)
            w = zwg * sig**p * np.prod(np.diag(K))
        rss = np.sum((y[None, :] - theta @ X.T) ** 2, axis=1)
        dev = np.sum((theta - m) ** 2 / v, axis=1)
        log_prior_theta = -0.5 * p * math.log(2 * math.pi * sig2) - 0.5 * np.sum(np.log(v)) \
            - 0.5 * dev / sig2
        log_lik = -0.5 * len(y) * math.log(2 * math.pi * sig2) - 0.5 * rss / sig2
        terms.append(special.logsumexp(log_ig + log_prior_theta + log_lik + u, b=w * wu))
    log_ev = special.logsumexp(terms)
    if constrained:
        # prior mass of d > 0: integrate N(d; m, sigma^2 v) over d > 0, then over sigma^2
        us2, uw2 = _gl(math.log(h.noise_scale / h.noise_shape) - 6,
                       math.log(h.noise_scale / h.noise_shape) + 30, 800)
        mass = []
        for u, wu in zip(us2, uw2):
            sd_d = math.exp(0.5 * u) * math.sqrt(v[-1])
            floor = h.size_floor * math.exp(0.5 * u)
            ds, dw = _gl(max(floor, m[-1] - 14 * sd_d), max(floor, m[-1]) + 14 * sd_d, 64)
            dens = np.sum(dw * np.exp(-0.5 * ((ds - m[-1]) / sd_d) ** 2)) / (
                math.sqrt(2 * math.pi) * sd_d)
            log_ig = h.noise_shape * math.log(h.noise_scale) - special.gammaln(h.noise_shape) \
                - (h.noise_shape + 1) * u - h.noise_scale / math.exp(u)
            mass.append(log_ig + u + math.log(wu) + math.log(dens))
        log_ev -= special.logsumexp(mass)
    return log_ev


@pytest.mark.parametrize(
    ("cls", "config"),
    [("linear", None), ("u_shaped", (1.0, 3.5, 6.0)), ("v_shaped", (3.0, 5.0)),
     ("unrepaired_rupture", 4.0)],
)
@pytest.mark.parametrize("size_floor", [0.0, 2.5])
def test_closed_form_evidence_equals_numerical_integration(cls, config, size_floor):
    t = np.arange(1.0, 7.0)
    y = np.array([3.9, 4.1, 3.2, 3.0, 3.8, 4.0])
    h = replace(H, size_floor=size_floor)
    closed = evidence.config_posterior(t, y, h, cls, config)[0]
    brute = _brute_force_log_evidence(t, y, h, cls, config, nodes=48 if cls != "u_shaped" else 44)
    # without a floor the truncation terms are exact Student-t CDFs; with one they are the
    # documented normal approximation of two noncentral-t CDFs (error below ~0.1 in the log)
    assert closed == pytest.approx(brute, abs=1e-9 if size_floor == 0 or cls == "linear" else 0.1)


# ----------------------------------------------------------------------- calibration
def _ece(p: np.ndarray, truth_codes: np.ndarray, bins: int = 10) -> float:
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == truth_codes
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(conf[which == b].mean() - correct[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def test_probabilities_are_calibrated_on_data_from_the_model():
    sessions, truth = ex.sample_prior_predictive(H, n_dyads=1500, n_sessions=(6, 16), seed=3)
    res = at.classify(sessions, hyperparameters=H, fit_class_probs=False)
    codes = truth.loc[res.dyads, "true_class"].cat.codes.to_numpy()
    p = res.probabilities.to_numpy()
    assert _ece(p, codes) <= 0.05
    # expected class counts match the realised ones (within 4 binomial SDs)
    expected = p.sum(axis=0)
    realised = np.bincount(codes, minlength=4)
    assert np.all(np.abs(expected - realised) <= 4 * np.sqrt(expected * (1 - expected / len(p))))
    # the true rupture session lies in the 90% credible set about 90% of the time (or more:
    # the bounds of a set cover at least the set)
    both = (res.labels.astype(str) == truth.loc[res.dyads, "true_class"].astype(str)).to_numpy()
    rup = truth.loc[res.dyads, "rupture_session"].to_numpy()
    cp = res.changepoints
    sel = both & np.isfinite(rup)
    covered = (cp["rupture_low"].to_numpy()[sel] <= rup[sel]) & (rup[sel] <= cp["rupture_high"]
                                                                   .to_numpy()[sel])
    assert covered.mean() >= 0.85


def test_depth_interval_is_a_proper_posterior_summary():
    sessions, truth = ex.sample_prior_predictive(H, n_dyads=600, n_sessions=12, seed=8)
    res = at.classify(sessions, hyperparameters=H, fit_class_probs=False)
    cp = res.changepoints.dropna(subset=["depth"])
    assert len(cp) > 50
    assert (cp["depth_low"] > 0).all()
    assert (cp["depth_low"] <= cp["depth"]).all() and (cp["depth"] <= cp["depth_high"]).all()
    ok = res.labels.loc[cp.index].astype(str) == truth.loc[cp.index, "true_class"].astype(str)
    d = truth.loc[cp.index, "depth"][ok]
    inside = (cp.loc[d.index, "depth_low"] <= d) & (d <= cp.loc[d.index, "depth_high"])
    assert 0.8 <= inside.mean() <= 0.98


# ------------------------------------------------------------------- empirical Bayes
# the model's size priors: centred at 0, wide above the floor (EB keeps the variances >= 16)
H_EB = replace(H, depth_mean=0.0, depth_var=25.0, amplitude_mean=0.0, amplitude_var=25.0)


@pytest.fixture(scope="module")
def eb_fit():
    sessions, truth = ex.sample_prior_predictive(H_EB, n_dyads=800, n_sessions=(8, 16), seed=21)
    return at.classify(sessions, eb_max_dyads=800), truth


def test_empirical_bayes_recovers_the_hyperparameters(eb_fit):
    res, truth = eb_fit
    hp = res.hyperparameters
    assert hp["source"] == "empirical_bayes" and hp["eb_converged"]
    assert hp["level_mean"] == pytest.approx(H_EB.level_mean, abs=0.1)
    assert hp["slope_mean"] == pytest.approx(H_EB.slope_mean, abs=0.02)
    typical_var = hp["noise_scale"] / hp["noise_shape"]
    assert typical_var == pytest.approx(H_EB.noise_scale / H_EB.noise_shape, rel=0.25)
    assert hp["depth_mean"] == 0.0 and hp["amplitude_mean"] == 0.0   # fixed by the model
    assert 25.0 / 1.8 <= hp["depth_var"] <= 25.0 * 1.8
    assert hp["size_floor"] == H_EB.size_floor
    np.testing.assert_allclose(hp["class_probs"], H_EB.class_probs, atol=0.07)
    acc = (res.labels.astype(str) == truth.loc[res.dyads, "true_class"].astype(str)).mean()
    assert acc > 0.7


def test_recovery_on_simulated_cohort(small_cohort_exact):
    res, cohort = small_cohort_exact
    truth = cohort.truth.loc[res.dyads]
    acc = (res.labels.astype(str) == truth["true_class"].astype(str)).mean()
    assert acc >= 0.72
    v = (truth["true_class"] == "v_shaped") & (res.labels == "v_shaped")
    rup = res.changepoints.loc[v, "rupture_session"] - truth.loc[v, "rupture_session"]
    assert (rup.abs() <= 1).mean() >= 0.85
    assert res.exact and res.method == "exact"


@pytest.fixture(scope="module")
def small_cohort_exact():
    cohort = at.simulate_cohort(n_dyads=300, seed=17)
    return at.classify(cohort.sessions, progress=False), cohort


# ------------------------------------------------------------------------ invariances
def test_affine_change_of_units_leaves_probabilities_unchanged():
    frame = _irregular_cohort(30, seed=2)
    res = at.classify(frame, hyperparameters=H, fit_class_probs=False)
    scaled = frame.assign(score=2.0 * frame["score"] + 1.0)
    H2 = ex.ExactHyperparameters.from_dict({
        **H.to_dict(), "level_mean": 2 * H.level_mean + 1, "slope_mean": 2 * H.slope_mean,
        "noise_scale": 4 * H.noise_scale, "depth_mean": 2 * H.depth_mean,
        "amplitude_mean": 2 * H.amplitude_mean})
    res2 = at.classify(scaled, hyperparameters=H2, fit_class_probs=False)
    np.testing.assert_allclose(res.probabilities, res2.probabilities, atol=1e-10)
    np.testing.assert_allclose(res2.changepoints["depth"], 2 * res.changepoints["depth"],
                               rtol=1e-7)


def test_blocks_and_threads_do_not_change_results():
    frame = _irregular_cohort(40, seed=6)
    a = at.classify(frame, hyperparameters=H, chunk_size=7, n_jobs=2)
    b = at.classify(frame, hyperparameters=H, chunk_size=1000, n_jobs=1)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-12)
    pd.testing.assert_frame_equal(a.changepoints, b.changepoints, atol=1e-9)


def test_same_input_same_numbers_and_input_untouched():
    frame = _irregular_cohort(20, seed=1)
    before = frame.copy()
    a = at.classify(frame)
    b = at.classify(frame)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(a.probabilities, b.probabilities)


# ------------------------------------------------------------------------ edge cases
def _assert_clean(res):
    assert np.isfinite(res.probabilities.to_numpy()).all()
    np.testing.assert_allclose(res.probabilities.sum(axis=1), 1.0)
    assert res.labels.notna().all()


def test_constant_series_and_quantised_scores():
    frame = pd.DataFrame({"dyad": ["c"] * 8 + ["q"] * 8,
                          "session": list(range(1, 9)) * 2,
                          "score": [4.0] * 8 + [4.0, 4.0, 3.0, 4.0, 4.0, 4.0, 3.0, 4.0]})
    _assert_clean(at.classify(frame, hyperparameters=H))
    res = at.classify(frame)
    _assert_clean(res)


def test_every_dyad_constant_and_at_the_ceiling():
    frame = pd.DataFrame({"dyad": np.repeat(["a", "b", "c"], 6),
                          "session": np.tile(np.arange(1, 7), 3), "score": 5.0})
    res = at.classify(frame, scale=(1, 5))
    _assert_clean(res)


def test_minimum_length_and_single_dyad():
    frame = pd.DataFrame({"dyad": "only", "session": [1, 2, 3, 4],
                          "score": [4.0, 4.1, 3.0, 3.1]})
    res = at.classify(frame)
    _assert_clean(res)
    assert len(res) == 1
    short = pd.concat([frame, pd.DataFrame({"dyad": "tiny", "session": [1, 2, 3],
                                            "score": [3.0, 3.0, 3.0]})])
    with pytest.warns(at.errors.ExcludedDyadsWarning, match="1 of 2"):
        res = at.classify(short, hyperparameters=H)
    assert res.excluded == ["tiny"]


def test_bad_options_are_reported():
    frame = _irregular_cohort(5, seed=0)
    with pytest.raises(ValueError, match="'max_rupture_length' parameter"):
        at.classify(frame, max_rupture_length=0)
    with pytest.raises(ValueError, match="Unknown hyperparameter"):
        at.classify(frame, hyperparameters={"noise": 1.0})
    with pytest.raises(ValueError, match="'depth_var' hyperparameter must be > 0"):
        at.classify(frame, hyperparameters={**H.to_dict(), "depth_var": -1})


def test_netcdf_round_trip(tmp_path, small_cohort_exact):
    res, _ = small_cohort_exact
    path = tmp_path / "res.nc"
    res.to_netcdf(path)
    back = at.ClassificationResult.read_netcdf(path)
    pd.testing.assert_frame_equal(back.probabilities, res.probabilities, check_names=False)
    pd.testing.assert_frame_equal(back.changepoints, res.changepoints, check_names=False)
    assert back.hyperparameters["depth_mean"] == pytest.approx(res.hyperparameters["depth_mean"])
    assert back.exact and back.method == "exact"
    ds = res.to_xarray()
    assert ds["probability"].dims == ("dyad", "class")
    assert ds.attrs["method"] == "exact"


def test_dyad_posterior_band_contains_the_fit():
    t = np.arange(1.0, 13.0)
    y = 3.8 + 0.02 * t
    y[5:7] -= 1.0
    post = ex.dyad_posterior((t, y), H, seed=1)
    assert post["class"] == "v_shaped"
    cfg = post["configurations"]
    top = cfg.loc[cfg["probability"].idxmax()]
    assert (top["rupture_session"], top["repair_session"]) == (6.0, 8.0)
    traj = post["trajectory"]
    assert (traj["low"] <= traj["mean"]).all() and (traj["mean"] <= traj["high"]).all()


def test_tabulated_t_cdf_is_accurate_and_gives_the_same_results():
    tab = LogTCdf()
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.uniform(-60, 60, 20000), rng.normal(0, 3, 20000), [1e5, -1e5, 0.0]])
    for nu in (4.0, 17.3, 45.0, 200.0, 700.0):
        with np.errstate(divide="ignore"):
            exact = np.log(special.stdtr(nu, z))
        ok = np.isfinite(exact)
        got = tab(z, np.full_like(z, nu))
        assert np.max(np.abs(got[ok] - exact[ok])) < 1e-9
    frame = _irregular_cohort(60, seed=12)
    a = at.classify(frame, hyperparameters=H, t_cdf="direct")
    b = at.classify(frame, hyperparameters=H, t_cdf="table")
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-9)
    np.testing.assert_allclose(a.changepoints, b.changepoints, atol=1e-7)
    assert b.settings["t_cdf"] == "table"


def test_truncated_t_mixture_summaries_match_quadrature():
    """The compiled depth summaries (mean, 5% and 95% quantiles) against scipy.stats."""
    from scipy import integrate, optimize, stats

    rng = np.random.default_rng(4)
    D, K = 6, 7
    w = rng.dirichlet(np.ones(K), D)
    w[0, 3:] = 0.0                       # a row with padded (zero-weight) slots
    w[0] /= w[0].sum()
    loc = rng.normal(0.5, 1.0, (D, K))
    loc[1] = -3.0                        # components with little mass above zero
    scale = rng.uniform(0.2, 1.5, (D, K))
    dof = rng.uniform(5.0, 40.0, D)
    mean, lo, hi = ex._truncated_mixture_depth(w, loc, scale, dof, 0.9)
    for d in range(D):
        comps = [(w[d, k], stats.t(dof[d], loc[d, k], scale[d, k])) for k in range(K)
                 if w[d, k] > 0]
        masses = [c.sf(0.0) for _, c in comps]

        def cdf(x, comps=comps, masses=masses):
            # survival form: components with tiny mass above zero stay accurate
            return 1.0 - sum(wk * c.sf(x) / m for (wk, c), m in zip(comps, masses))

        ref_mean = sum(wk * integrate.quad(lambda x, c=c: x * c.pdf(x), 0, np.inf)[0] / m
                       for (wk, c), m in zip(comps, masses))
        assert mean[d] == pytest.approx(ref_mean, rel=1e-7)
        for q, got in ((0.05, lo[d]), (0.95, hi[d])):
            ref = optimize.brentq(lambda x, q=q: cdf(x) - q, 0.0, 200.0, xtol=1e-13)
            assert got == pytest.approx(ref, rel=1e-7, abs=1e-9)


def test_empirical_bayes_objective_and_gradient():
    """The compiled EB objective equals the numpy evidence (SciPy CDFs); its gradient, finite
    differences of itself (every coordinate but the noise shape is analytic)."""
    frame = _irregular_cohort(60, seed=4)
    loc, sd = spec.standardisation(frame)
    stats = [statistics.block_stats(c, loc, sd, spec.Settings()) for _, c in ex.panel_chunks(frame, 25)]
    # several blocks and several session counts (several t-table rows)
    assert len(stats) > 1 and len(np.unique(np.concatenate([s.n for s in stats]))) > 1
    theta = spec.to_theta(eb.moment_start(stats)) + np.linspace(-0.2, 0.3, len(spec.TRANSFORMS))
    pi = np.array([0.4, 0.25, 0.2, 0.15])
    ll, grad, resp = ex.eb_partial(stats, theta, pi)
    h = spec.from_theta(theta, pi)
    ref = 0.0
    for s in stats:
        L = evidence.class_log_evidence(s, evidence.config_evidence(s, h))
        ref += eb.mixture_terms(L, pi)[0]
    assert ll == pytest.approx(ref, abs=1e-8)
    assert resp.sum() == pytest.approx(60, abs=1e-9)
    for j in range(len(theta)):
        step = np.zeros_like(theta)
        step[j] = 1e-5
        fd = (ex.eb_partial(stats, theta + step, pi)[0]
              - ex.eb_partial(stats, theta - step, pi)[0]) / 2e-5
        assert grad[j] == pytest.approx(fd, rel=1e-5, abs=1e-5), spec.TRANSFORMS[j][0]
