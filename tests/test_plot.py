"""Plots render to PNG (Agg) and hold the data they were given."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt

import alliancetraj as at
from alliancetraj import plot as ap
from alliancetraj.plot import CLASS_COLORS


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("plot functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    yield
    plt.close("all")


def render(fig) -> np.ndarray:
    """Render to PNG bytes with Agg and read the image back (RGB floats in [0, 1])."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    buf.seek(0)
    return plt.imread(buf)[..., :3]


def has_colour(image: np.ndarray, hex_colour: str, tol: float = 0.02) -> bool:
    rgb = np.array(matplotlib.colors.to_rgb(hex_colour))
    return bool((np.abs(image - rgb).max(axis=-1) < tol).any())


def by_gid(artists, gid):
    found = [a for a in artists if a.get_gid() == gid]
    assert found, f"no artist with gid {gid!r}"
    return found


@pytest.fixture(scope="module")
def cohort():
    return at.simulate_cohort(n_dyads=48, seed=7)


@pytest.fixture(scope="module")
def result(cohort):
    """A noisy result built from the truth (independent of any model)."""
    truth = cohort.truth
    rng = np.random.default_rng(1)
    codes = pd.Categorical(truth["true_class"], categories=at.CLASSES).codes
    p = rng.dirichlet(np.ones(4), size=len(truth)) * 0.5
    p[np.arange(len(truth)), codes] += rng.uniform(0.3, 0.9, size=len(truth))
    cp = truth[["rupture_session", "repair_session", "depth", "turning_session"]].copy()
    cp["rupture_low"] = cp["rupture_session"] - 1
    cp["rupture_high"] = cp["rupture_session"] + 1
    cp["repair_low"] = cp["repair_session"]
    cp["repair_high"] = cp["repair_session"] + 1
    return at.ClassificationResult.from_probabilities(
        p, index=truth.index, method="truth+noise", changepoints=cp
    )


# ------------------------------------------------------------------------ trajectories
def test_trajectories_hold_every_dyad_and_the_class_means(cohort, result):
    ax = ap.plot_trajectories(cohort.sessions, result)
    labels = result.labels.astype(str)
    for cls in at.CLASSES:
        members = labels.index[labels == cls]
        (lines,) = by_gid(ax.collections, f"dyads:{cls}")
        segments = lines.get_segments()
        assert len(segments) == len(members)
        # each segment is exactly one dyad's (session, score) series
        first = cohort.sessions[cohort.sessions["dyad"] == members[0]]
        expected = first[["session", "score"]].to_numpy(float)
        assert any(s.shape == expected.shape and np.allclose(s, expected) for s in segments)
        (mean_line,) = by_gid(ax.lines, f"mean:{cls}")
        means = ap.class_means(cohort.sessions, result)[cls].dropna()
        np.testing.assert_allclose(mean_line.get_xdata(), means.index.to_numpy(float))
        np.testing.assert_allclose(mean_line.get_ydata(), means.to_numpy())
    image = render(ax.figure)
    for cls in at.CLASSES:
        assert has_colour(image, CLASS_COLORS[cls]), cls
    assert [t.get_text().split(" (n=")[0] for t in ax.get_legend().get_texts()] == [
        ap.CLASS_NAMES[c] for c in at.CLASSES
    ]


def test_trajectories_faceted_one_class_per_panel(cohort):
    axes = ap.plot_trajectories(cohort.sessions, cohort.truth, facet=True)
    assert len(axes) == len(at.CLASSES)
    counts = cohort.truth["true_class"].value_counts()
    for a, cls in zip(axes, at.CLASSES, strict=True):
        gids = {c.get_gid() for c in a.collections}
        assert gids == {f"dyads:{cls}"}
        assert len(a.collections[0].get_segments()) == counts[cls]
        assert f"n={counts[cls]}" in a.get_title()
    render(axes[0].figure)


def test_trajectories_on_given_axes_and_subsampled(cohort):
    _fig, axes = plt.subplots(2, 2)
    out = ap.plot_trajectories(cohort.sessions, cohort.truth, facet=True, ax=axes, max_dyads=3)
    assert list(out) == list(axes.ravel())
    assert all(len(a.collections[0].get_segments()) <= 3 for a in out)
    _fig2, ax = plt.subplots()
    assert ap.plot_trajectories(cohort.sessions, cohort.truth, ax=ax) is ax
    with pytest.raises(ValueError, match="4 Axes"):
        ap.plot_trajectories(cohort.sessions, cohort.truth, facet=True, ax=[ax])


def test_trajectories_accept_other_column_names(cohort):
    renamed = cohort.sessions.rename(columns={"dyad": "id", "session": "week", "score": "wai"})
    ax = ap.plot_trajectories(renamed, cohort.truth, dyad="id", session="week", score="wai")
    n = sum(len(c.get_segments()) for c in ax.collections)
    assert n == cohort.truth.shape[0]
    assert list(renamed.columns) == ["id", "week", "wai"]  # input untouched


def test_class_means_match_a_direct_computation(cohort):
    means = ap.class_means(cohort.sessions, cohort.truth, min_dyads=1)
    merged = cohort.sessions.merge(cohort.truth["true_class"], left_on="dyad", right_index=True)
    direct = merged.groupby(["true_class", "session"], observed=True)["score"].mean()
    for cls in at.CLASSES:
        np.testing.assert_allclose(means[cls].dropna().to_numpy(), direct.loc[cls].to_numpy())
    thin = ap.class_means(cohort.sessions, cohort.truth, min_dyads=10_000)
    # with a threshold above every class size, a mean needs all of the class's dyads
    for cls in at.CLASSES:
        n_cls = (cohort.truth["true_class"] == cls).sum()
        n_at = merged[merged["true_class"] == cls].groupby("session").size()
        assert thin[cls].notna().sum() == (n_at >= n_cls).sum()


def test_unknown_classes_are_rejected(cohort):
    with pytest.raises(ValueError, match="Unknown class name"):
        ap.plot_trajectories(cohort.sessions, pd.Series("flat", index=cohort.truth.index))
    with pytest.raises(TypeError, match="ClassificationResult"):
        ap.plot_trajectories(cohort.sessions, ["linear"])


# ------------------------------------------------------------------------ probabilities
def _stacked(ax):
    """(heights, bottoms) of the class patches, one column per class."""
    patches = [p for p in ax.patches if str(p.get_gid()).startswith("probability:")]
    assert [p.get_gid() for p in patches] == [f"probability:{c}" for c in at.CLASSES]
    data = [p.get_data() for p in patches]
    tops = np.column_stack([d.values for d in data])
    bottoms = np.column_stack([d.baseline for d in data])
    return tops - bottoms, bottoms


def test_probabilities_are_sorted_stacked_bars(result):
    ax = ap.plot_probabilities(result)
    heights, bottoms = _stacked(ax)
    np.testing.assert_allclose(heights.sum(axis=1), 1.0)
    np.testing.assert_allclose(bottoms[:, 1:], np.cumsum(heights, axis=1)[:, :-1])
    # every dyad's probabilities appear once, grouped by label, most certain first
    rows = {tuple(np.round(r, 12)) for r in result.probabilities.to_numpy()}
    assert {tuple(np.round(h, 12)) for h in heights} == rows
    label = heights.argmax(axis=1)
    assert np.all(np.diff(label) >= 0)
    for k in np.unique(label):
        own = heights[label == k, k]
        assert np.all(np.diff(own) <= 1e-12)
    image = render(ax.figure)
    for cls in at.CLASSES:
        assert has_colour(image, CLASS_COLORS[cls]), cls


def test_probabilities_unsorted_keep_the_result_order(result):
    ax = ap.plot_probabilities(result, sort=False)
    heights, _ = _stacked(ax)
    np.testing.assert_allclose(heights, result.probabilities.to_numpy())
    with pytest.raises(TypeError):
        ap.plot_probabilities(result.probabilities)


# -------------------------------------------------------------------------------- dyad
def _dyad_of(result, cls):
    return result.probabilities[cls][result.labels == cls].idxmax()


def test_dyad_without_posterior_shows_scores_fit_and_credible_sets(cohort, result):
    d = _dyad_of(result, "v_shaped")
    ax = ap.plot_dyad(cohort.sessions, result, d)
    obs = cohort.sessions[cohort.sessions["dyad"] == d]
    (points,) = by_gid(ax.lines, "observed")
    np.testing.assert_allclose(points.get_xdata(), obs["session"])
    np.testing.assert_allclose(points.get_ydata(), obs["score"])
    (fit,) = by_gid(ax.lines, "fit")
    assert "least-squares" in fit.get_label()
    # the fit is the class shape at the given change points: it drops inside the rupture
    cp = result.changepoints.loc[d]
    x, y = np.asarray(fit.get_xdata()), np.asarray(fit.get_ydata())
    inside = (x >= cp["rupture_session"]) & (x < cp["repair_session"])
    assert y[inside].mean() < y[~inside].mean()
    by_gid(ax.collections, "band")
    (rupture,) = by_gid(ax.lines, "estimate:rupture")
    assert rupture.get_xdata()[0] == cp["rupture_session"]
    (span,) = by_gid(ax.patches, "interval:rupture")
    assert span.get_x() == cp["rupture_low"] - 0.5
    assert span.get_x() + span.get_width() == cp["rupture_high"] + 0.5
    assert d in ax.get_title()
    assert len(ax.figure.axes) == 1  # no posterior bars without a posterior
    render(ax.figure)


def test_dyad_with_a_posterior_draws_band_and_change_point_posterior(cohort, result):
    d = _dyad_of(result, "v_shaped")
    grid = np.arange(1.0, 12.0, 0.5)
    configs = pd.DataFrame(
        {
            "rupture_session": [4.0, 4.0, 5.0],
            "repair_session": [6.0, 7.0, 7.0],
            "probability": [0.5, 0.3, 0.2],
        }
    )
    post = {
        "trajectory": pd.DataFrame(
            {"mean": 3 + 0 * grid, "low": 2.8 + 0 * grid, "high": 3.2 + 0 * grid},
            index=pd.Index(grid, name="session"),
        ),
        "configurations": configs,
    }
    ax = ap.plot_dyad(cohort.sessions, result, d, posterior=post)
    (fit,) = by_gid(ax.lines, "fit")
    np.testing.assert_allclose(fit.get_xdata(), grid)
    assert "posterior mean" in fit.get_label()
    (twin,) = [a for a in ax.figure.axes if a.get_gid() == "changepoint_posterior"]
    heights = {
        c[0].get_gid(): {round(r.get_x() + r.get_width() / 2, 6): r.get_height() for r in c}
        for c in twin.containers
    }
    assert heights["posterior:rupture"] == pytest.approx({3.8: 0.8, 4.8: 0.2})
    assert heights["posterior:repair"] == pytest.approx({6.2: 0.5, 7.2: 0.5})
    render(ax.figure)


def test_dyad_under_another_class_and_errors(cohort, result):
    d = _dyad_of(result, "linear")
    ax = ap.plot_dyad(cohort.sessions, result, d, cls="u_shaped")
    assert "U-shaped" in ax.get_title()
    with pytest.raises(KeyError, match="no sessions"):
        ap.plot_dyad(cohort.sessions, result, "no-such-dyad")
    with pytest.raises(ValueError, match="Unknown class"):
        ap.plot_dyad(cohort.sessions, result, d, cls="w_shaped")


def test_dyad_of_an_exact_result_uses_the_exact_posterior(cohort, result):
    exact = pytest.importorskip("alliancetraj.models.exact", reason="exact engine not installed")
    if not hasattr(exact, "dyad_posterior"):
        pytest.skip("alliancetraj.models.exact has no dyad_posterior")
    # an exact result as classify(method="exact") returns it, without running the engine
    hyper = {
        "noise_shape": 6.0,
        "noise_scale": 0.35,
        "level_mean": 3.5,
        "level_var": 4.0,
        "slope_mean": 0.02,
        "slope_var": 0.01,
        "depth_mean": 0.8,
        "depth_var": 3.0,
        "amplitude_mean": 0.9,
        "amplitude_var": 3.5,
        "class_probs": [0.4, 0.2, 0.2, 0.2],
        "eb_converged": True,
        "source": "empirical_bayes",
    }
    res = at.ClassificationResult.from_probabilities(
        result.probabilities,
        method="exact",
        changepoints=result.changepoints,
        hyperparameters=hyper,
        exact=True,
        settings={"max_rupture_length": 4, "u_margin": 1.0},
    )
    for cls in ("v_shaped", "unrepaired_rupture"):
        d = _dyad_of(res, cls)
        ax = ap.plot_dyad(cohort.sessions, res, d)
        (fit,) = by_gid(ax.lines, "fit")
        assert "posterior mean" in fit.get_label()
        (twin,) = [a for a in ax.figure.axes if a.get_gid() == "changepoint_posterior"]
        rupture = [
            r.get_height() for c in twin.containers for r in c if r.get_gid() == "posterior:rupture"
        ]
        assert sum(rupture) == pytest.approx(1.0)
        render(ax.figure)


# ----------------------------------------------------------------------------- effects
@pytest.fixture
def effects():
    return pd.DataFrame(
        {
            "estimate": [0.3, 0.5, -0.5],
            "std_error": [0.1, 0.1, 0.15],
            "ci_low": [0.1, 0.3, -0.8],
            "ci_high": [0.5, 0.7, -0.2],
            "p_value": [0.003, 0.0001, 0.001],
        },
        index=pd.Index(["u_shaped", "v_shaped", "unrepaired_rupture"], name="class"),
    )


def test_forest_plot_holds_estimates_and_intervals(effects):
    class Fit:  # anything with an effects table, like relate_outcomes' OutcomeFit
        outcome = "recovery"
        reference = "linear"
        family = "gaussian"

    fit = Fit()
    fit.effects = effects
    ax = ap.plot_effects(fit)
    (intervals,) = by_gid(ax.collections, "intervals")
    segs = intervals.get_segments()
    np.testing.assert_allclose([s[:, 0].min() for s in segs], effects["ci_low"])
    np.testing.assert_allclose([s[:, 0].max() for s in segs], effects["ci_high"])
    (points,) = by_gid(ax.collections, "estimates")
    offsets = points.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], effects["estimate"])
    # first row on top
    assert list(np.argsort(-offsets[:, 1])) == [0, 1, 2]
    names = [t.get_text() for t in ax.get_yticklabels()]
    ticks = sorted(zip(ax.get_yticks(), names, strict=True))
    assert [name for _, name in ticks][::-1] == [ap.CLASS_NAMES[c] for c in effects.index]
    notes = [t.get_text() for t in ax.texts]
    assert notes[0].startswith("0.30 [0.10, 0.50]") and "p<0.001" in notes[1]
    assert "recovery" in ax.get_xaxis().get_label().get_text()
    (null,) = by_gid(ax.lines, "null")
    assert null.get_xdata()[0] == 0
    image = render(ax.figure)
    assert has_colour(image, CLASS_COLORS["v_shaped"])


def test_forest_plot_of_a_table_and_errors(effects):
    _fig, ax = plt.subplots()
    assert ap.plot_effects(effects, null=1.0, annotate=False, ax=ax) is ax
    assert not ax.texts
    with pytest.raises(ValueError, match="ci_low"):
        ap.plot_effects(effects.drop(columns="ci_low"))
    with pytest.raises(TypeError, match="effects"):
        ap.plot_effects(object())


def test_forest_plot_of_a_relate_outcomes_fit(cohort, result):
    outcomes = pytest.importorskip("alliancetraj.outcomes", reason="outcomes not installed")
    fit = outcomes.relate_outcomes(
        result, cohort.outcomes, outcome="recovery", covariates=["baseline_severity"]
    )
    ax = ap.plot_effects(fit)
    (points,) = by_gid(ax.collections, "estimates")
    np.testing.assert_allclose(points.get_offsets()[:, 0], fit.effects["estimate"])
    render(ax.figure)


def test_public_names():
    for name in ap.__all__:
        assert hasattr(ap, name), name
