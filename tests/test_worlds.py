"""The independent worlds (alliancetraj.worlds) and their benchmark.

Generators: shape, dtypes, reproducibility, sizes, scales, noise and missing sessions,
the label convention as properties of the measured sizes in the truth, and the
outcome model's effects. Benchmark: run small through ``run_benchmark(worlds=...)``
with a classifier whose scores follow from the truth, and once with a real method.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliancetraj as at
from alliancetraj.bench import run_benchmark
from alliancetraj.worlds import (
    BINARY_EFFECTS,
    MAX_STEP_SHARE,
    MAX_WANDER_SD,
    MIN_SIZE_SD,
    OUTCOME_EFFECTS,
    REPAIRED_SHARE,
    SHARE_PRESETS,
    UNREPAIRED_SHARE,
    WORLDS,
    brief,
    score_world,
    simulate_world,
    world_table,
    worst_worlds,
)
from alliancetraj.worlds._core import describe_curve, draw_outcomes
from alliancetraj.worlds.shapes import SHAPES

NAMES = list(WORLDS)


@pytest.fixture(scope="module")
def cohorts():
    """One 200-dyad cohort per world (seed 11)."""
    return {name: simulate_world(name, n_dyads=200, seed=11) for name in NAMES}


# ------------------------------------------------------------------------------ shape
def test_at_least_eight_worlds_and_every_size():
    assert len(WORLDS) >= 8
    assert {30, 100, 400, 5000} <= {w.n_dyads for w in WORLDS.values()}
    assert all(w.description for w in WORLDS.values())


@pytest.mark.parametrize("name", NAMES)
def test_cohort_shape_and_dtypes(cohorts, name):
    sessions, outcomes, truth = cohorts[name]
    assert list(sessions.columns) == ["dyad", "session", "score"]
    assert sessions["session"].dtype == np.int64
    assert sessions["score"].dtype == np.float64
    assert not sessions.duplicated(["dyad", "session"]).any()
    assert len(truth) == 200 and truth.index.is_unique
    assert outcomes.index.equals(truth.index)
    assert set(sessions["dyad"]) == set(truth.index)
    assert isinstance(truth["true_class"].dtype, pd.CategoricalDtype)
    assert list(truth["true_class"].cat.categories) == list(at.CLASSES)
    assert {"baseline_severity", "recovery", "recovered"} <= set(outcomes.columns)
    assert set(outcomes["recovered"].unique()) <= {0, 1}
    low, high = truth.attrs["scale_bounds"]
    assert sessions["score"].between(low, high).all()
    # the session count and the first session agree with the truth
    per = sessions.groupby("dyad")["session"].agg(["min", "max", "size"])
    per = per.reindex(truth.index)
    assert (per["min"] == truth["first_session"]).all()
    assert (per["size"] == truth["n_rated"]).all()
    assert (per["max"] <= truth["first_session"] + truth["n_sessions"] - 1).all()
    # every cohort passes the package's own validation
    assert len(at.load_sessions(sessions)) == len(sessions)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_cohort(name):
    a = simulate_world(name, n_dyads=25, seed=5)
    b = simulate_world(name, n_dyads=25, seed=5)
    c = simulate_world(name, n_dyads=25, seed=6)
    pd.testing.assert_frame_equal(a.sessions, b.sessions)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
    assert not a.sessions["score"].equals(c.sessions["score"])


def test_default_sizes_and_generator_functions():
    assert len(simulate_world("srs_ceiling", seed=0).truth) == 30
    assert len(WORLDS["brief"].generator(seed=0).truth) == 100
    assert len(brief(7, seed=0).truth) == 7


# --------------------------------------------------------------------- the convention
@pytest.mark.parametrize("seed", [None, 2])
@pytest.mark.parametrize("name", NAMES)
def test_label_convention_holds(cohorts, name, seed):
    truth = cohorts[name].truth if seed is None else simulate_world(name, 200, seed=seed).truth
    cls = truth["true_class"].astype(str)
    linear, u = truth[cls == "linear"], truth[cls == "u_shaped"]
    v, ur = truth[cls == "v_shaped"], truth[cls == "unrepaired_rupture"]
    # linear: no rupture, no meaningful dip, only a small wander around the trend
    assert (linear["wander_sd"] < MAX_WANDER_SD).all()
    assert linear[["rupture_session", "repair_session"]].isna().all().all()
    # u_shaped: a dip of at least MIN_SIZE_SD noise SDs, gradual, no rupture
    assert (u["dip_sd"] >= MIN_SIZE_SD).all()
    assert (u["max_step_share"] <= MAX_STEP_SHARE + 1e-9).all()
    assert u["rupture_session"].isna().all() and u["turning_session"].notna().all()
    # ruptures: a real drop relative to the noise
    for frame in (v, ur):
        assert (frame["depth_sd"] >= MIN_SIZE_SD).all()
        assert np.allclose(frame["depth"], frame["depth_sd"] * frame["noise_sd"])
        assert frame["rupture_session"].notna().all()
    # the last rupture decides: repaired ...
    assert (v["recovered_share"] >= REPAIRED_SHARE).all()
    assert (v["repair_session"] > v["rupture_session"]).all()
    # ... or not repaired by the last session, with at least two sessions in the drop
    assert (ur["recovered_share"] <= UNREPAIRED_SHARE).all()
    assert ur["repair_session"].isna().all()
    last = ur["first_session"] + ur["n_sessions"] - 1
    assert (ur["rupture_session"] <= last - 1).all()
    assert (ur["rupture_session"] >= ur["first_session"] + 2).all()


SHAPE_CASES = [(cls, variant) for cls, table in SHAPES.items() for variant in table]


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(SHAPE_CASES), n=st.integers(5, 50),
       sigma=st.floats(0.05, 0.5), seed=st.integers(0, 2**32 - 1))
def test_every_shape_follows_the_convention(case, n, sigma, seed):
    cls, variant = case
    shape = SHAPES[cls][variant](n, sigma, np.random.default_rng(seed))
    dev = shape.deviation
    assert dev.shape == (n,) and np.all(np.isfinite(dev))
    facts = describe_curve(dev, shape.rupture, sigma)
    if cls == "linear":
        assert shape.rupture is None and facts["wander_sd"] < MAX_WANDER_SD
    elif cls == "u_shaped":
        assert shape.rupture is None
        assert facts["dip_sd"] >= MIN_SIZE_SD
        assert facts["max_step_share"] <= MAX_STEP_SHARE + 1e-9
        low = int(np.argmin(dev))
        before, after = np.flatnonzero(dev[:low] > dev[low] + 0.5 * facts["dip_sd"] * sigma), \
            np.flatnonzero(dev[low:] > dev[low] + 0.5 * facts["dip_sd"] * sigma)
        assert len(before) and len(after)  # high on both sides of the bottom
    else:
        assert 2 <= shape.rupture <= n - 2
        assert facts["depth_sd"] >= MIN_SIZE_SD
        if cls == "v_shaped":
            assert facts["recovered_share"] >= REPAIRED_SHARE
            assert facts["repair"] is not None and facts["repair"] > shape.rupture
        else:
            assert facts["recovered_share"] <= UNREPAIRED_SHARE


def test_earlier_repaired_ruptures_do_not_change_the_label():
    truth = simulate_world("long_treatment", n_dyads=300, seed=3).truth
    after = truth[truth["variant"] == "after_repaired"]
    twice = truth[truth["variant"] == "twice_repaired"]
    assert len(after) and len(twice)
    assert (after["true_class"] == "unrepaired_rupture").all()
    assert (after["dip_sd"] >= MIN_SIZE_SD).all()  # the earlier, repaired dip
    assert (twice["true_class"] == "v_shaped").all()


def test_change_points_are_rated_sessions():
    for name in ("brief", "mixed"):
        cohort = simulate_world(name, n_dyads=200, seed=4)
        rated = set(zip(cohort.sessions["dyad"], cohort.sessions["session"], strict=True))
        for col in ("rupture_session", "repair_session"):
            pts = cohort.truth[col].dropna()
            assert all((d, int(s)) in rated for d, s in pts.items())


def test_describe_curve_measures_what_it_says():
    sigma = 0.2
    v = np.array([0, 0, -1.0, -1.0, -0.4, 0.1, 0.1])
    facts = describe_curve(v, 2, sigma)
    assert facts["depth_sd"] == pytest.approx(5.0)
    assert facts["recovered_share"] == pytest.approx(1.1)
    assert facts["repair"] == 4  # first session with at least half of the drop back
    u = -np.sin(np.linspace(0, np.pi, 9)) * 0.8
    facts = describe_curve(u, None, sigma)
    assert facts["dip_sd"] == pytest.approx(4.0)
    assert facts["max_step_share"] < 0.4
    assert np.isnan(facts["depth_sd"]) and facts["repair"] is None
    flat = describe_curve(np.zeros(6), None, sigma)
    assert flat["dip_sd"] == 0 and flat["wander_sd"] == 0


# --------------------------------------------------------------- worlds' descriptions
def test_scales_sessions_noise_and_missing(cohorts):
    srs = cohorts["srs_ceiling"].sessions["score"]
    assert (srs > 34).mean() > 0.5  # most ratings above 34
    truth = cohorts["srs_ceiling"].truth
    first = cohorts["srs_ceiling"].sessions.groupby("dyad")["score"].first()
    assert truth["level"].between(0, 40).all()
    gap = (first.reindex(truth.index) - truth["level"]).abs()
    assert gap.median() < 1.5 * truth["noise_sd"].median()  # the first rating is near it
    assert np.allclose(srs * 10, np.round(srs * 10))
    wai = cohorts["balanced_wai"].sessions["score"]
    assert np.allclose(wai * 12, np.round(wai * 12))
    seven = cohorts["seven_point_floor"]
    assert seven.truth.attrs["scale_bounds"] == (1.0, 7.0)
    assert (seven.sessions["score"] == 1.0).any()  # the floor is reached
    assert cohorts["brief"].truth["n_sessions"].between(5, 8).all()
    assert cohorts["long_treatment"].truth["n_sessions"].between(30, 50).all()
    assert set(cohorts["brief"].truth["first_session"]) == {1, 2}
    ar1 = cohorts["ar1_wai"].truth
    assert (ar1["noise_kind"] == "ar1").all() and ar1["noise_parameter"].between(0.2, 0.4).all()
    t = cohorts["heavy_tails"].truth
    assert (t["noise_kind"] == "t").all() and t["noise_parameter"].between(3, 5).all()
    kinds = set(cohorts["mixed"].truth["noise_kind"])
    assert kinds == {"gaussian", "ar1", "t", "hetero"}
    for name, (lo, hi) in (("brief", (0.10, 0.25)), ("balanced_wai", (0.10, 0.10))):
        tr = cohorts[name].truth
        assert tr["missing_rate"].between(lo, hi).all()
        rated = tr["n_rated"].sum() / tr["n_sessions"].sum()
        assert 1 - hi - 0.05 < rated < 1 - lo + 0.02


def test_variants_cover_the_issue(cohorts):
    seen = set()
    for cohort in cohorts.values():
        seen |= set(cohort.truth["variant"])
    assert {"steady", "wandering", "cosine", "asymmetric", "piecewise", "abrupt_repair",
            "gradual_repair", "partial_repair", "beyond_repair", "twice_repaired", "step",
            "drift_back", "after_repaired"} <= seen
    lin = cohorts["steep_trends"].truth.query("true_class == 'linear'")["total_change"]
    assert lin.min() < -1.0 and lin.max() > 1.0 and lin.abs().max() <= 1.5


def test_shares(cohorts):
    truth = simulate_world("routine_care", n_dyads=800, seed=1).truth
    observed = truth["true_class"].value_counts(normalize=True)
    expected = np.array(SHARE_PRESETS["routine"]) / sum(SHARE_PRESETS["routine"])
    assert np.allclose(observed.reindex(at.CLASSES), expected, atol=0.05)  # 3 SE
    only = simulate_world("brief", n_dyads=40, seed=1, shares={"v_shaped": 1.0}).truth
    assert (only["true_class"] == "v_shaped").all()
    assert cohorts["brief"].truth.attrs["shares"]["linear"] == pytest.approx(0.25)


def test_outcome_effects_are_recoverable():
    rng = np.random.default_rng(2)
    labels = np.asarray(at.CLASSES, dtype=object)[rng.integers(0, 4, 20_000)]
    effects, binary = OUTCOME_EFFECTS, BINARY_EFFECTS
    out = draw_outcomes(labels, rng, effects, binary)
    x = pd.get_dummies(pd.Categorical(labels, categories=at.CLASSES)).astype(float)
    x = x.drop(columns="linear")
    x.insert(0, "severity", out["baseline_severity"])
    x.insert(0, "const", 1.0)
    beta, *_ = np.linalg.lstsq(x.to_numpy(), out["recovery"].to_numpy(), rcond=None)
    for j, cls in enumerate(x.columns[2:], start=2):
        assert beta[j] == pytest.approx(effects[cls], abs=0.06)  # 3 SE
    assert beta[1] == pytest.approx(-0.4, abs=0.03)
    rate = out["recovered"].groupby(labels).mean()
    assert rate["v_shaped"] > rate["u_shaped"] > rate["linear"] > rate["unrepaired_rupture"]
    # a world reports the effects it used, and takes others
    cohort = simulate_world("brief", n_dyads=10, seed=1, outcome_effects={"u_shaped": -1.0})
    assert cohort.truth.attrs["outcome_effects"] == {**effects, "u_shaped": -1.0}
    assert cohort.truth.attrs["binary_effects"] == binary


def test_bad_parameters():
    with pytest.raises(ValueError, match="'name' parameter of simulate_world"):
        simulate_world("nowhere")
    with pytest.raises(ValueError, match="'n_dyads' parameter of simulate_world"):
        simulate_world("brief", n_dyads=0)
    with pytest.raises(ValueError, match="'shares' parameter"):
        simulate_world("brief", n_dyads=5, shares="unusual")
    with pytest.raises(ValueError, match="'shares' parameter"):
        simulate_world("brief", n_dyads=5, shares=(1, -1, 0, 0))
    with pytest.raises(ValueError, match="'worlds' parameter"):
        run_benchmark("unused", worlds=["nowhere"], methods={"x": lambda s: None})


# ------------------------------------------------------------------------ the benchmark
def _all_linear(sessions):
    dyads = pd.Index(pd.unique(sessions["dyad"]), name="dyad")
    return at.ClassificationResult.from_labels(
        pd.Series("linear", index=dyads), method="all_linear"
    )


def test_score_world_on_known_answers():
    truth = simulate_world("brief", n_dyads=60, seed=8).truth
    perfect = at.ClassificationResult.from_labels(truth["true_class"].astype(str),
                                                  method="oracle")
    s = score_world(perfect, truth)
    assert s["macro_f1"] == 1.0 and s["share_error"] == 0.0 and s["ece"] == 0.0
    assert all(s[f"recall_{c}"] == 1.0 for c in at.CLASSES)
    flat = score_world(_all_linear(simulate_world("brief", n_dyads=60, seed=8).sessions), truth)
    share = truth["true_class"].value_counts(normalize=True)
    assert flat["recall_linear"] == 1.0 and flat["recall_v_shaped"] == 0.0
    assert flat["share_error"] == pytest.approx(1 - share["linear"])
    assert flat["rupture_within_1"] == 0.0


def test_run_benchmark_on_worlds(tmp_path):
    res = run_benchmark(tmp_path, worlds=["brief", "srs_ceiling"], methods={
        "all_linear": _all_linear}, n_dyads=30, n_seeds=2, echo=lambda s: None)
    results = res.results
    assert len(results) == 2 * 2 and (results["error"] == "").all()
    assert (results["recall_linear"] == 1.0).all()
    for row in results.itertuples():
        truth = simulate_world(row.world, 30, seed=row.sim_seed).truth
        linear_share = (truth["true_class"] == "linear").mean()
        assert row.share_error == pytest.approx(1 - linear_share)
        present = truth["true_class"].nunique()  # F1 is 0 for the others, NaN if absent
        assert row.macro_f1 == pytest.approx(2 * linear_share / (1 + linear_share) / present)
    table = world_table(results)
    assert len(table) == 2 and (table["replicates"] == 2).all()
    worst = worst_worlds(results)
    assert worst.loc[0, "worst_macro_f1"] == pytest.approx(table["macro_f1"].min())
    assert worst.loc[0, "worst_world"] == table.loc[table["macro_f1"].idxmin(), "world"]
    names = {p.name for p in res.files}
    assert {"worlds_results.csv", "worlds_table.csv", "worlds_worst.csv",
            "worlds_summary.md", "worlds_meta.json"} <= names
    assert "Headline: the worst world" in res.summary
    assert "load average" in res.summary


def test_bench_worlds_script_with_a_real_method(tmp_path):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_worlds.py"
    spec = importlib.util.spec_from_file_location("bench_worlds", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--worlds", "brief", "--methods", "rules", "--n-dyads", "24",
                        "--seeds", "1", "--out", str(tmp_path), "--tag", "tiny"])
    assert code == 0
    table = pd.read_csv(tmp_path / "tiny_table.csv")
    assert list(table["method"]) == ["rules"] and table["macro_f1"].between(0, 1).all()
    summary = (tmp_path / "tiny_summary.md").read_text()
    assert "bench_worlds.py --worlds brief" in summary
