"""Tests of the hierarchical change-point mixture (``classify(method="pymc")``).

Cheap tests check the data side (configurations, sufficient statistics, the closed
form written for PyTensor, the Student-t table) against brute force and the exact
engine, and the model structure without compiling it. One real sampling run on a
few dyads (session-scoped, short chains, ``slow``) checks the result, the
InferenceData, the diagnostics, the outcome sub-model and LOO.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import alliancetraj as at
from alliancetraj.models import pymc_design as pdz
from alliancetraj.models import pymc_mixture as pmm
from alliancetraj.models.changepoint.spec import extra_column, standardise_mapping
from alliancetraj.models.pymc_explicit import admissible_configurations

HYPER = {
    "noise_shape": 5.0, "noise_scale": 0.29, "level_mean": 3.46, "level_var": 2.6,
    "slope_mean": 0.027, "slope_var": 0.0039, "depth_mean": 0.89, "depth_var": 0.98,
    "amplitude_mean": 0.9, "amplitude_var": 0.48, "class_probs": [0.37, 0.25, 0.27, 0.11],
}


@pytest.fixture(scope="module")
def frame():
    cohort = at.simulate_cohort(n_dyads=12, seed=4, n_sessions=(6, 12), missing=0.15)
    return at.load_sessions(cohort.sessions, min_sessions=pmm.MIN_SESSIONS)


def _brute_force_log_evidence(t, y, cls, cfg, h):
    """Closed-form NIG evidence of one configuration with dense linear algebra."""
    x = t - 1.0
    cols = [np.ones_like(x), x]
    m = np.array([h["level_mean"], h["slope_mean"]])
    v = np.array([h["level_var"], h["slope_var"]])
    if cls != "linear":
        size = "amplitude" if cls == "u_shaped" else "depth"
        cols.append(extra_column(t, t, cls, cfg))
        m = np.append(m, h[f"{size}_mean"])
        v = np.append(v, h[f"{size}_var"])
    X = np.column_stack(cols)
    a0, b0 = h["noise_shape"], h["noise_scale"]
    n = len(y)
    L0 = np.diag(1 / v)
    Ln = L0 + X.T @ X
    mn = np.linalg.solve(Ln, L0 @ m + X.T @ y)
    an = a0 + n / 2
    bn = b0 + 0.5 * (y @ y + m @ L0 @ m - mn @ Ln @ mn)
    out = (-n / 2 * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(L0)[1]
           - 0.5 * np.linalg.slogdet(Ln)[1] + a0 * np.log(b0) - an * np.log(bn)
           + special.gammaln(an) - special.gammaln(a0))
    if cls != "linear":
        # the mass above the size floor kappa sigma (2.5 by default), posterior over prior:
        # noncentral-t CDFs F(z; nu, lam) in the model's normal approximation
        # Phi((z (1 - 1/(4 nu)) - lam) / sqrt(1 + z^2 / (2 nu)))
        kappa = h.get("size_floor", 2.5)
        cov = np.linalg.inv(Ln)

        def log_mass(z, nu, lam):
            return special.log_ndtr((z * (1 - 1 / (4 * nu)) - lam) / np.sqrt(1 + z * z / (2 * nu)))

        out += log_mass(mn[-1] / np.sqrt(bn / an * cov[-1, -1]), 2 * an,
                        kappa / np.sqrt(cov[-1, -1]))
        out -= log_mass(m[-1] / np.sqrt(b0 / a0 * v[-1]), 2 * a0, kappa / np.sqrt(v[-1]))
    return out


def test_closed_form_matches_brute_force(frame):
    loc, sd = pdz.standardisation(frame)
    st = pdz.cohort_stats(frame, loc=loc, sd=sd)
    h = standardise_mapping(HYPER, loc, sd)
    L = pdz.class_log_evidence(pdz.config_log_evidence(st, h))
    for i, (d, g) in enumerate(frame.groupby("dyad", sort=False)):
        assert st.dyads[i] == d
        t = g["session"].to_numpy(float)
        y = (g["score"].to_numpy(float) - loc) / sd
        configs = admissible_configurations(t)
        for k, cls in enumerate(at.CLASSES):
            vals = [_brute_force_log_evidence(t, y, cls, c, h) for c in configs[cls]]
            ref = special.logsumexp(vals) - np.log(len(vals)) if vals else -np.inf
            np.testing.assert_allclose(L[i, k], ref, rtol=0, atol=1e-9)


def test_collapsed_with_fixed_hyperparameters_equals_exact_engine(frame):
    exact = pytest.importorskip("alliancetraj.models.exact")
    del exact
    ref = at.classify(frame, method="exact", hyperparameters=HYPER, fit_class_probs=False)
    res = at.classify(frame, method="pymc", hyperparameters=HYPER, progress=False)
    assert res.method == "pymc" and res.settings["sampled"] is False
    diff = np.abs(res.probabilities.to_numpy() - ref.probabilities.loc[res.dyads].to_numpy())
    assert diff.max() < 1e-9
    np.testing.assert_allclose(res.log_evidence.to_numpy(),
                               ref.log_evidence.loc[res.dyads].to_numpy(), atol=1e-8)


@pytest.mark.parametrize("dof", [4.0, 10.0, 26.0, 80.0])
def test_kernel_t_cdf_lookup_and_its_derivative_are_accurate(dof):
    """What the class-evidence kernel reads: log T and d/dz log T, tails included."""
    from alliancetraj.models.changepoint import kernels
    from alliancetraj.models.changepoint.tcdf import LogTCdf, log_t_cdf, t_pdf_log

    tab = LogTCdf()
    row = int(tab.rows_for([dof])[0])
    outer, inner, grid = tab.arrays
    # both pieces of the table: uniform in z for |z| < 16, in asinh(z) beyond
    z = np.concatenate([np.linspace(-40, 40, 4001), [-1e5, -1e3, -200.0, 1e3, 1e5]])
    got = np.array([kernels._lookup_grad(v, outer, inner, row, *grid) for v in z])
    ref = log_t_cdf(z, dof)
    ref_d = np.exp(t_pdf_log(z, dof) - ref)
    inner = np.abs(z) <= 40
    assert np.max(np.abs(got[inner, 0] - ref[inner])) < 1e-10
    np.testing.assert_allclose(got[inner, 1], ref_d[inner], rtol=1e-6, atol=1e-9)
    # beyond the grid: log T linear in asinh(z) below (relative error), 0 above
    np.testing.assert_allclose(got[~inner, 0], ref[~inner], rtol=1e-3, atol=1e-12)
    assert np.all(np.isfinite(got))


def test_noise_shape_estimate_recovers_simulation():
    rng = np.random.default_rng(3)
    rows = []
    for d in range(300):
        s2 = 1 / rng.gamma(6.0, 1 / 0.5)  # InvGamma(6, 0.5)
        t = np.arange(1, 16)
        y = 0.1 * t + rng.normal(0, np.sqrt(s2), size=t.size)
        rows.append(pd.DataFrame({"dyad": d, "session": t, "score": y}))
    frame = at.load_sessions(pd.concat(rows))
    st = pdz.cohort_stats(frame)
    a, b = pmm.estimate_noise_shape(st)
    assert 3.0 < a < 12.0
    assert 0.5 * 0.1 < b / a < 2 * 0.1


def test_model_structure_without_compiling(frame):
    data = pmm.prepare_cohort(frame)
    model = pmm.build_cohort_model(data)
    free = {rv.name for rv in model.free_RVs}
    # the size priors' means are the model's (0), not sampled
    assert free == {"noise_scale", "level_mean", "level_var", "slope_mean", "slope_var",
                    "depth_var", "amplitude_var", "class_probs"}
    assert model.named_vars_to_dims["class_prob"] == ("dyad", "class")
    assert list(model.coords["class"]) == list(at.CLASSES)
    fixed = standardise_mapping({k: v for k, v in HYPER.items() if k != "noise_shape"},
                             data.loc, data.sd)
    fixed.pop("level_mean")
    model2 = pmm.build_cohort_model(data, fixed=fixed)
    assert {rv.name for rv in model2.free_RVs} == {"level_mean"}
    model3 = pmm.build_cohort_model(data, classes=("linear", "u_shaped"))
    assert "class_probs_included" in {rv.name for rv in model3.free_RVs}


def test_prior_predictive_sampler_follows_the_model(frame):
    pattern = [np.arange(1, 13)] * 400
    sessions, truth = pdz.sample_prior_predictive(pattern, HYPER, seed=1)
    assert set(sessions.columns) == {"dyad", "session", "score"}
    share = truth["true_class"].value_counts(normalize=True).reindex(at.CLASSES)
    np.testing.assert_allclose(share.to_numpy(), HYPER["class_probs"], atol=0.08)
    rup = truth["true_class"].isin(["v_shaped", "unrepaired_rupture"])
    assert (truth.loc[rup, "depth"] > 0).all()
    assert (truth.loc[rup, "rupture_session"] >= 3).all()


def test_option_errors(frame):
    with pytest.raises(ImportError, match="numpyro"):
        at.classify(frame, method="pymc", sampler="numpyro")
    with pytest.raises(ValueError, match="Valid samplers"):
        at.classify(frame, method="pymc", sampler="stan")
    with pytest.raises(ValueError, match="'draws' parameter"):
        at.classify(frame, method="pymc", draws=0)
    with pytest.raises(ValueError, match="Valid names"):
        at.classify(frame, method="pymc", hyperparameters={"levl_mean": 1.0})
    with pytest.raises(ValueError, match="Valid names"):
        at.classify(frame, method="pymc", classes=("linear", "w_shaped"))
    with pytest.raises(ValueError, match="every hyperparameter fixed"):
        at.classify(frame, method="pymc", model="explicit", hyperparameters={"level_mean": 3.0})
    with pytest.raises(at.DataError, match="not in the outcomes table"):
        at.classify(frame, method="pymc", outcomes=pd.DataFrame({"x": [1.0]}), outcome="recovery")


# ----------------------------------------------------------------------------- real sampling
@pytest.fixture(scope="session")
def sampled():
    cohort = at.simulate_cohort(n_dyads=16, seed=21, n_sessions=(8, 12))
    import warnings

    from alliancetraj.errors import SamplerWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        res = at.classify(cohort.sessions, method="pymc", chains=2, draws=250, tune=250, sampler="pymc",
                          seed=5, progress=False, outcomes=cohort.outcomes,
                          outcome="recovery", covariates=["baseline_severity"])
    return cohort, res, caught


# PyTensor's C backend warns once that it found no BLAS (pip install); nothing to fix here.
_NO_BLAS = "ignore:PyTensor could not link to a BLAS installation:UserWarning"


@pytest.mark.slow
@pytest.mark.filterwarnings(_NO_BLAS)
def test_sampling_result(sampled):
    cohort, res, caught = sampled
    assert res.method == "pymc" and not res.exact
    assert np.allclose(res.probabilities.sum(axis=1), 1)
    assert list(res.probabilities.columns) == list(at.CLASSES)
    idata = res.extras["idata"]
    assert idata.posterior["class_prob"].dims == ("chain", "draw", "dyad", "class")
    assert idata.log_likelihood["trajectory"].dims == ("chain", "draw", "dyad")
    d = res.diagnostics
    for key in ("r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences",
                "sampling_seconds"):
        assert key in d
    # a SamplerWarning exactly when the diagnostics are outside the safe range
    bad = d["r_hat_max"] > 1.01 or min(d["ess_bulk_min"], d["ess_tail_min"]) < 400 or \
        d["divergences"] > 0
    assert bad == bool(caught)
    eff = res.extras["outcome_effects"]
    assert list(eff.index) == list(at.CLASSES[1:])
    assert list(eff.columns) == ["estimate", "std_error", "ci_low", "ci_high", "p_value"]
    assert (eff["ci_low"] <= eff["estimate"]).all() and (eff["estimate"] <= eff["ci_high"]).all()
    hp = res.hyperparameters
    assert set(pmm.HYPERPARAMETERS) <= set(hp)
    assert abs(sum(hp["class_probs"]) - 1) < 1e-9
    # most dyads classified as simulated (short chains, 16 dyads: a loose check)
    truth = cohort.truth.loc[res.dyads, "true_class"].astype(str).to_numpy()
    assert np.mean(res.labels.astype(str).to_numpy() == truth) >= 0.5
    rup = res.labels.isin(["v_shaped", "unrepaired_rupture"])
    assert res.changepoints.loc[rup, "rupture_session"].notna().all()


@pytest.mark.slow
@pytest.mark.filterwarnings(_NO_BLAS)
# 16 dyads and short chains: ArviZ warns that some Pareto k > 0.7 (a statistical caveat
# about this tiny test fit, not a defect to fix).
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_loo_runs(sampled):
    import arviz as az

    _, res, _ = sampled
    loo = az.loo(res.extras["idata"])
    assert np.isfinite(loo.elpd_loo)


@pytest.mark.slow
@pytest.mark.filterwarnings(_NO_BLAS)
def test_inference_data_and_diagnostics_saved_with_the_result(sampled, tmp_path):
    import arviz as az

    cohort, res, _ = sampled
    idata = res.idata
    assert idata is res.extras["idata"]
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert group in idata.groups(), group
    obs = idata.observed_data
    fitted = cohort.sessions[cohort.sessions["dyad"].isin(res.dyads)]
    np.testing.assert_allclose(np.sort(obs["score"].to_numpy()), np.sort(fitted["score"]))
    assert set(obs["dyad"].to_numpy()) == set(idata.posterior["dyad"].to_numpy())
    np.testing.assert_allclose(obs["recovery"].to_numpy(),
                               cohort.outcomes.loc[obs["outcome_dyad"].to_numpy(), "recovery"])
    assert "class_probs" in az.summary(idata, var_names=["class_probs"]).index[0]

    ds = res.to_xarray()
    d = res.diagnostics
    assert float(ds["r_hat_max"]) == pytest.approx(d["r_hat_max"])
    assert float(ds["ess_bulk_min"]) == pytest.approx(d["ess_bulk_min"])
    assert int(ds["divergences"]) == d["divergences"] == int(idata.sample_stats["diverging"].sum())
    assert float(ds["ess_tail"].max()) == pytest.approx(
        max(v["ess_tail"] for v in d["per_variable"].values()))
    assert set(ds["parameter"].to_numpy()) == set(d["per_variable"])
    assert "diagnostics" in ds.attrs                          # the JSON attr is kept

    res.to_netcdf(tmp_path / "classes.nc")
    assert (tmp_path / "classes.idata.nc").is_file()
    back = at.ClassificationResult.read_netcdf(tmp_path / "classes.nc")
    np.testing.assert_allclose(back.idata.posterior["class_probs"].to_numpy(),
                               idata.posterior["class_probs"].to_numpy())
    assert set(back.idata.groups()) == set(idata.groups())
    assert float(back.to_xarray()["r_hat_max"]) == pytest.approx(d["r_hat_max"])


def test_kernel_matches_closed_form_and_its_gradient(frame):
    """The fused numba kernel (what NUTS evaluates) against the numpy reference."""
    from alliancetraj.models import pymc_kernel as pk

    loc, sd = pdz.standardisation(frame)
    st = pdz.cohort_stats(frame, loc=loc, sd=sd)
    h = standardise_mapping(HYPER, loc, sd)
    ref = pdz.class_log_evidence(pdz.config_log_evidence(st, h))
    inputs = tuple(pk.kernel_inputs(st, h["noise_shape"]).values())
    theta = np.array([h[k] for k in pk.THETA])
    C, J = pk.class_evidence_kernel(theta, *inputs, True)
    L = C + pk.class_offsets(h, h["noise_shape"], st.n)
    ok = np.isfinite(ref)
    np.testing.assert_allclose(L[ok], ref[ok], rtol=0, atol=1e-9)
    assert np.all(L[~ok] < -1e29)
    draws = pk.class_log_evidence_draws(st, h["noise_shape"],
                                        {k: np.full(3, h[k]) for k in pk.THETA})
    np.testing.assert_allclose(draws, np.broadcast_to(L, draws.shape), rtol=0, atol=1e-12)
    for j in range(len(pk.THETA)):
        step = np.zeros_like(theta)
        step[j] = 1e-6 * max(abs(theta[j]), 1e-3)
        fd = (pk.class_evidence_kernel(theta + step, *inputs, False)[0]
              - pk.class_evidence_kernel(theta - step, *inputs, False)[0]) / (2 * step[j])
        np.testing.assert_allclose(J[:, :, j][ok], fd[ok], rtol=1e-6, atol=1e-6,
                                   err_msg=pk.THETA[j])


def test_result_without_sampling_saves_no_inference_data(frame, tmp_path):
    """The netCDF of a result with no draws stays one file; a missing idata file is an error."""
    from alliancetraj.results import idata_path

    res = at.classify(frame, method="pymc", hyperparameters=HYPER, progress=False)
    assert res.idata is None and res.exact
    assert "r_hat_max" not in res.to_xarray()
    path = tmp_path / "classes.nc"
    res.to_netcdf(path)
    assert not idata_path(path).exists()
    assert at.ClassificationResult.read_netcdf(path).idata is None
    # a result saved with draws, whose draws file went missing
    import arviz as az

    draws = az.from_dict(posterior={"class_probs": np.full((2, 5, 4), 0.25)})
    sampled = at.ClassificationResult.from_probabilities(
        res.probabilities, method="pymc", extras={"idata": draws},
        diagnostics={"r_hat_max": 1.0, "ess_bulk_min": 10.0, "ess_tail_min": 9.0,
                     "divergences": 0, "per_variable": {"class_probs": {
                         "r_hat": 1.0, "ess_bulk": 10.0, "ess_tail": 9.0}}})
    sampled.to_netcdf(path)
    assert at.ClassificationResult.read_netcdf(path).idata.posterior["class_probs"].shape == (
        2, 5, 4)
    idata_path(path).unlink()
    with pytest.raises(at.DataError, match=r"classes\.idata\.nc"):
        at.ClassificationResult.read_netcdf(path)
