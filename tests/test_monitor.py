"""Session-by-session monitoring (alliancetraj.monitor)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.cli import main
from alliancetraj.models.exact import ExactHyperparameters
from alliancetraj.monitor import (
    MONITOR_COLUMNS,
    MonitorPriors,
    fit_priors,
    load_priors,
    save_priors,
)
from alliancetraj.plot.monitor import plot_caseload, plot_monitor_dyad


@pytest.fixture(scope="module")
def priors():
    return fit_priors(at.simulate_cohort(n_dyads=80, seed=5).sessions)


@pytest.fixture(scope="module")
def stream():
    # gaps (missing sessions) and one dyad too short ever to be scored
    cohort = at.simulate_cohort(n_dyads=6, seed=8, n_sessions=(8, 12), missing=0.15,
                                class_mix=(0.25, 0.0, 0.25, 0.5), id_prefix="s")
    short = pd.DataFrame({"dyad": "short", "session": [1, 2, 4], "score": [3.5, 3.6, 3.4]})
    return pd.concat([cohort.sessions, short], ignore_index=True), cohort.truth


def _planted(drop_from: int, n: int, repair_at: int | None = None) -> pd.DataFrame:
    """A flat, slightly noisy series that drops by 1.5 at ``drop_from`` (and repairs)."""
    rng = np.random.default_rng(0)
    t = np.arange(1, n + 1)
    y = 4.0 + 0.05 * rng.standard_normal(n)
    down = (t >= drop_from) & ((t < repair_at) if repair_at else True)
    y = np.where(down, y - 1.5, y)
    return pd.DataFrame({"dyad": "p", "session": t, "score": y})


def test_probability_equals_the_offline_engine_on_every_prefix(priors, stream):
    sessions, _ = stream
    table = at.monitor(sessions, priors)
    scored = table[table["status"] == "scored"]
    assert len(scored) > 20
    for row in scored.itertuples():
        prefix = sessions[(sessions["dyad"] == row.dyad) & (sessions["session"] <= row.session)]
        offline = at.classify(prefix, method="exact", hyperparameters=priors.hyperparameters,
                              fit_class_probs=False)
        assert abs(offline.probabilities["unrepaired_rupture"].iloc[0] - row.p_unrepaired) \
            < 1e-9, (row.dyad, row.session)


def test_table_shape_and_sessions_before_the_fourth_are_not_scored(priors, stream):
    sessions, _ = stream
    table = at.monitor(sessions, priors)
    assert tuple(table.columns) == MONITOR_COLUMNS
    assert len(table) == len(sessions)
    n_obs = table.groupby("dyad")["session"].rank().astype(int)
    assert (table["n_observed"] == n_obs).all()
    early = table["n_observed"] < 4
    assert (table.loc[early, "status"] == "too_few_sessions").all()
    assert table.loc[early, ["p_unrepaired", "onset_mode", "depth"]].isna().all().all()
    assert not table.loc[early, "alert"].any()
    late = table.loc[~early]
    assert (late["status"] == "scored").all()
    assert late["p_unrepaired"].between(0, 1).all()
    assert (table.loc[table["dyad"] == "short", "status"] == "too_few_sessions").all()
    # the onset lies inside the series seen so far, inside its credible set
    assert (late["onset_low"] <= late["onset_mode"]).all()
    assert (late["onset_mode"] <= late["onset_high"]).all()
    assert (late["onset_high"] <= late["session"]).all()
    assert ((late["depth_low"] <= late["depth"]) & (late["depth"] <= late["depth_high"])).all()


def test_later_sessions_never_change_earlier_rows(priors, stream):
    sessions, _ = stream
    before = at.monitor(sessions, priors)
    changed = sessions.copy()
    last = changed.groupby("dyad")["session"].transform("max") == changed["session"]
    changed.loc[last, "score"] = 1.0
    after = at.monitor(changed, priors)
    keep = ~last.to_numpy()
    cols = ["p_unrepaired", "onset_mode", "onset_high", "depth", "alert"]
    pd.testing.assert_frame_equal(before.loc[keep, cols], after.loc[keep, cols])
    assert not np.allclose(before.loc[~keep, "p_unrepaired"].fillna(0),
                           after.loc[~keep, "p_unrepaired"].fillna(0))


def test_latest_only_is_the_last_row_of_the_full_table(priors, stream):
    sessions, _ = stream
    full = at.monitor(sessions, priors, threshold=0.3)
    latest = at.monitor(sessions, priors, threshold=0.3, latest_only=True)
    expected = full.groupby("dyad", sort=False).tail(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(latest, expected, rtol=1e-12)
    assert latest["dyad"].is_unique


def test_a_planted_drop_is_flagged_with_its_onset_and_reset_by_repair(priors):
    drop = _planted(drop_from=7, n=9)
    table = at.monitor(drop, priors, threshold=0.5).set_index("session")
    assert table.loc[6, "p_unrepaired"] < 0.5
    assert table.loc[9, "alert"] and table.loc[9, "p_unrepaired"] > 0.9
    first = table.index[table["alert"]].min()
    assert first <= 9 and table.loc[first, "new_alert"]
    assert table["new_alert"].sum() == 1
    assert table.loc[9, "onset_mode"] == 7
    assert table.loc[9, "onset_low"] <= 7 <= table.loc[9, "onset_high"]
    # the depth is shrunk from the planted 1.5 towards the reference cohort's typical drop
    assert priors.hyperparameters.depth_mean < table.loc[9, "depth"] < 1.5
    assert table.loc[9, "depth_low"] < table.loc[9, "depth"] < table.loc[9, "depth_high"]

    repaired = at.monitor(_planted(drop_from=7, n=14, repair_at=10), priors, threshold=0.5)
    repaired = repaired.set_index("session")
    assert repaired.loc[9, "alert"]
    assert not repaired.loc[14, "alert"]
    assert repaired.loc[14, "p_unrepaired"] < 0.1


def test_one_new_dyad_is_scored_alone_with_the_same_numbers(priors, stream):
    sessions, _ = stream
    full = at.monitor(sessions, priors)
    one = sessions[sessions["dyad"] == "s00001"]
    alone = at.monitor(one, priors)
    np.testing.assert_allclose(alone["p_unrepaired"],
                               full.loc[full["dyad"] == "s00001", "p_unrepaired"], rtol=1e-9)


def test_priors_round_trip_through_a_json_file(priors, tmp_path, stream):
    path = save_priors(priors, tmp_path / "sub" / "priors.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["priors.json"]  # no temp left
    loaded = load_priors(path)
    assert loaded == priors
    sessions, _ = stream
    a = at.monitor(sessions, priors)
    b = at.monitor(sessions, str(path))
    pd.testing.assert_frame_equal(a, b)
    # a classify result, an ExactHyperparameters or a mapping serve as priors too
    h = priors.hyperparameters
    for other in (h, h.to_dict(), priors.to_dict()):
        pd.testing.assert_series_equal(at.monitor(sessions, other)["p_unrepaired"],
                                       a["p_unrepaired"])


def test_priors_from_a_classification_result(priors):
    cohort = at.simulate_cohort(n_dyads=20, seed=9)
    res = at.classify(cohort.sessions, hyperparameters=priors.hyperparameters,
                      fit_class_probs=False, max_rupture_length=3)
    from_result = at.monitor(cohort.sessions, res)
    direct = at.monitor(cohort.sessions, MonitorPriors(priors.hyperparameters,
                                                       max_rupture_length=3))
    pd.testing.assert_frame_equal(from_result, direct)
    with pytest.raises(ValueError, match="'priors' parameter of monitor"):
        at.monitor(cohort.sessions, at.classify(cohort.sessions, method="rules"))


def test_bad_priors_files_are_reported(tmp_path, stream):
    sessions, _ = stream
    with pytest.raises(FileNotFoundError, match="save_priors"):
        at.monitor(sessions, tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(at.DataError, match="not a JSON priors file"):
        load_priors(bad)
    bad.write_text(json.dumps({"noise_shape": 3.0}))
    with pytest.raises(at.DataError, match="'format' key"):
        load_priors(bad)
    good = MonitorPriors(ExactHyperparameters()).to_dict()
    good["hyperparameters"]["noise_scale"] = -1.0
    bad.write_text(json.dumps(good))
    with pytest.raises(at.DataError, match="noise_scale"):
        load_priors(bad)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"threshold": 1.0}, "The 'threshold' parameter of monitor must be a number > 0 and < 1"),
    ({"threshold": "high"}, "'threshold' parameter"),
    ({"credible_level": 0}, "'credible_level' parameter"),
    ({"latest_only": "yes"}, "'latest_only' parameter of monitor must be a bool"),
])
def test_parameter_errors(priors, stream, kwargs, match):
    with pytest.raises(ValueError, match=match):
        at.monitor(stream[0], priors, **kwargs)


def test_data_errors_name_the_column_and_the_input_is_not_modified(priors, stream):
    sessions, _ = stream
    copy = sessions.copy()
    at.monitor(sessions, priors)
    pd.testing.assert_frame_equal(sessions, copy)
    with pytest.raises(at.DataError, match="alliance"):
        at.monitor(sessions, priors, score="alliance")
    dup = pd.concat([sessions, sessions.head(1)])
    with pytest.raises(at.DataError):
        at.monitor(dup, priors)


def test_cli_fits_priors_then_scores_a_caseload(tmp_path, capsys, stream):
    ref = tmp_path / "past.csv"
    at.simulate_cohort(n_dyads=30, seed=2).sessions.rename(columns={"score": "srs"}) \
        .to_csv(ref, index=False)
    priors_path = tmp_path / "priors.json"
    assert main(["monitor", str(ref), "--fit-priors", "--priors", str(priors_path),
                 "--score", "srs"]) == 0
    assert load_priors(priors_path).reference["n_dyads"] == 30
    caseload = tmp_path / "caseload.csv"
    stream[0].to_csv(caseload, index=False)
    out = tmp_path / "alerts.csv"
    assert main(["monitor", str(caseload), "--priors", str(priors_path), "--out", str(out),
                 "--threshold", "0.6"]) == 0
    alerts = pd.read_csv(out)
    assert list(alerts.columns) == list(MONITOR_COLUMNS)
    assert sorted(alerts["dyad"]) == sorted(stream[0]["dyad"].unique())
    assert "alert(s)" in capsys.readouterr().out
    assert main(["monitor", str(caseload), "--priors", str(tmp_path / "missing.json"),
                 "--out", str(out)]) == 2
    assert main(["monitor", str(caseload), "--priors", str(priors_path), "--out", str(out),
                 "--score", "nope"]) == 2
    assert "error" in capsys.readouterr().err


def test_plots_return_their_axes(priors, stream):
    table = at.monitor(stream[0], priors, threshold=0.5)
    ax = plot_monitor_dyad(table, "s00000")
    assert ax.get_ylim() == (-0.02, 1.02)
    assert len(ax.figure.axes) == 2
    assert ax.lines[0].get_ydata().shape == ((table["dyad"] == "s00000").sum(),)
    plt.close(ax.figure)
    fig, given = plt.subplots()
    assert plot_monitor_dyad(table, "s00001", ax=given) is given
    plt.close(fig)
    ax = plot_caseload(table, max_dyads=5)
    assert len(ax.get_yticks()) == 5
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="not in the monitoring table"):
        plot_monitor_dyad(table, "nobody")
    with pytest.raises(ValueError, match=r"columns of alliancetraj\.monitor"):
        plot_caseload(stream[0])


@pytest.mark.parametrize("extra, message", [
    ([], "needs --out"),
    (["--out", "{tmp}/a.csv", "--threshold", "1.5"], "--threshold must be a number in (0, 1)"),
    (["--out", "{tmp}/a.xyz"], "unknown file type"),
    (["--out", "{tmp}"], "directory"),
])
def test_cli_checks_monitor_options_before_computing(tmp_path, capsys, stream, priors,
                                                     monkeypatch, extra, message):
    import sys

    monitor_module = sys.modules["alliancetraj.monitor"]  # at.monitor is the function
    caseload = tmp_path / "caseload.csv"
    stream[0].to_csv(caseload, index=False)
    priors_path = tmp_path / "priors.json"
    save_priors(priors, priors_path)

    def never(*args, **kwargs):  # nothing may be computed before the options are checked
        raise AssertionError("computed before checking the options")

    monkeypatch.setattr(monitor_module, "monitor", never)
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(["monitor", str(caseload), "--priors", str(priors_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_fit_priors_refuses_scoring_options_and_keeps_old_priors(tmp_path, capsys, priors):
    ref = tmp_path / "past.csv"
    at.simulate_cohort(n_dyads=30, seed=2).sessions.to_csv(ref, index=False)
    priors_path = tmp_path / "priors.json"
    save_priors(priors, priors_path)
    before = priors_path.read_bytes()
    assert main(["monitor", str(ref), "--fit-priors", "--priors", str(priors_path),
                 "--out", str(tmp_path / "a.csv")]) == 2
    assert "drop --out" in capsys.readouterr().err
    assert main(["monitor", str(ref), "--fit-priors", "--priors",
                 str(tmp_path / "priors.txt")]) == 2
    assert "written as .json" in capsys.readouterr().err
    assert priors_path.read_bytes() == before
