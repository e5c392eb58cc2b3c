"""classify(method="rules"): literature rupture rules and the shared labelling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.results import CHANGEPOINT_COLUMNS


def _frame(series: dict[str, list[float]]) -> pd.DataFrame:
    rows = [(d, s + 1, v) for d, ys in series.items() for s, v in enumerate(ys)]
    return pd.DataFrame(rows, columns=["dyad", "session", "score"])


FLAT = [4.0, 4.1, 3.9, 4.0, 4.1, 3.9, 4.0, 4.1, 3.9, 4.0]
SERIES = {
    "v": [4.0, 4.1, 3.9, 4.0, 2.5, 2.6, 4.0, 4.1, 3.9, 4.0],
    "un": [4.0, 4.1, 3.9, 4.0, 4.1, 2.5, 2.6, 2.4, 2.5, 2.6],
    "lin": FLAT,
    "u": [4.0, 3.7, 3.45, 3.3, 3.2, 3.2, 3.3, 3.45, 3.7, 4.0],
}


@pytest.fixture(scope="module")
def cohort():
    return at.simulate_cohort(n_dyads=200, seed=21)


def test_hand_made_series():
    res = at.classify(_frame(SERIES), method="rules")
    assert res.labels.astype(str).to_dict() == {
        "v": "v_shaped",
        "un": "unrepaired_rupture",
        "lin": "linear",
        "u": "u_shaped",
    }
    cp = res.changepoints
    assert list(cp.columns) == list(CHANGEPOINT_COLUMNS)
    assert cp.loc["v", "rupture_session"] == 5 and cp.loc["v", "repair_session"] == 7
    assert cp.loc["v", "depth"] == pytest.approx(4.0 - 2.55)
    assert cp.loc["un", "rupture_session"] == 6 and np.isnan(cp.loc["un", "repair_session"])
    assert cp.loc["lin"].isna().all()
    assert 5 < cp.loc["u", "turning_session"] < 6
    for col in ("rupture", "repair", "depth"):
        point = "depth" if col == "depth" else f"{col}_session"
        pd.testing.assert_series_equal(cp[f"{col}_low"], cp[point], check_names=False)
        pd.testing.assert_series_equal(cp[f"{col}_high"], cp[point], check_names=False)
    assert res.exact is False and res.method == "rules"
    assert res.settings["rule"] == "deflection" and res.settings["k"] == 1.0
    assert res.settings["threshold"] == "stricter"


def test_within_threshold_over_detects():
    # the classic within-dyad SD rule calls a small wobble of a flat series a rupture
    res = at.classify(_frame(SERIES), method="rules", threshold="within")
    assert res.labels["lin"] != "linear"
    res = at.classify(_frame(SERIES), method="rules", threshold="within", k=2)
    assert res.labels["v"] == "v_shaped"


def test_repair_needs_a_session_after_it():
    late = {"late": [4.0, 4.1, 3.9, 4.0, 4.1, 3.9, 4.0, 2.5, 2.6, 4.0]}
    assert at.classify(_frame(late), method="rules").labels.iloc[0] == "unrepaired_rupture"


def test_repair_window():
    slow = {"slow": [4.0, 4.1, 3.9, 4.0, 2.5, 2.6, 2.5, 2.6, 2.5, 4.0, 4.1, 4.0]}
    assert at.classify(_frame(slow), method="rules").labels.iloc[0] == "unrepaired_rupture"
    res = at.classify(_frame(slow), method="rules", max_length=6)
    assert res.labels.iloc[0] == "v_shaped"


def test_k2_is_stricter_than_k1(cohort):
    r1 = at.classify(cohort.sessions, method="rules", k=1)
    r2 = at.classify(cohort.sessions, method="rules", k=2)
    ruptured = {"v_shaped", "unrepaired_rupture"}
    n1 = r1.labels.astype(str).isin(ruptured).sum()
    n2 = r2.labels.astype(str).isin(ruptured).sum()
    assert n2 < n1


def test_recovery_stricter_threshold(cohort):
    res = at.classify(cohort.sessions, method="rules", k=1, threshold="stricter")
    truth = cohort.truth["true_class"].astype(str)
    labels = res.labels.astype(str).reindex(truth.index)
    assert (labels == truth).mean() > 0.6  # about 0.7 on simulated cohorts
    hit = truth.isin(["v_shaped", "unrepaired_rupture"]) & (labels == truth)
    err = (
        res.changepoints["rupture_session"].reindex(truth.index)[hit]
        - cohort.truth["rupture_session"][hit]
    )
    assert (err.abs() <= 1).mean() > 0.85


def test_sudden_rule():
    data = _frame({**SERIES, "v": [4.0, 4.1, 3.9, 4.0, 2.5, 2.6, 2.5, 4.0, 4.1, 3.9]})
    res = at.classify(data, method="rules", rule="sudden", cutoff=1.0)
    labels = res.labels.astype(str)
    assert labels["v"] == "v_shaped" and labels["un"] == "unrepaired_rupture"
    assert labels["lin"] == "linear"
    assert res.changepoints.loc["v", "rupture_session"] == 5
    assert res.changepoints.loc["v", "repair_session"] == 8
    # a one-session dip does not pass criterion 3 (stable changes only)
    dip = _frame({"dip": [4.0, 4.1, 3.9, 4.0, 2.5, 4.0, 4.1, 3.9, 4.0, 4.1]})
    assert at.classify(dip, method="rules", rule="sudden", cutoff=1.0).labels.iloc[0] == "linear"
    data.loc[data["dyad"] == "lin", "score"] -= 1.0
    res = at.classify(data, method="rules", rule="sudden", reliability=0.9)
    sd1 = data.loc[data["session"] == 1, "score"].std()
    assert res.settings["cutoff"] == pytest.approx(1.96 * np.sqrt(2 * 0.1) * sd1)
    with pytest.raises(ValueError, match="'cutoff' parameter of classify_rules"):
        at.classify(data, method="rules", rule="sudden")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "'k' parameter of classify_rules must be a number > 0"),
        ({"rule": "stiles"}, "'rule' parameter of classify_rules"),
        ({"threshold": "both"}, "'threshold' parameter of classify_rules"),
        ({"max_length": 0}, "'max_length' parameter of classify_rules"),
        ({"window": 1.5}, "'window' parameter of classify_rules"),
    ],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        at.classify(_frame(SERIES), method="rules", **kwargs)


def test_short_dyads_excluded():
    data = _frame({**SERIES, "short": [4.0, 3.0, 4.0]})
    with pytest.warns(at.errors.ExcludedDyadsWarning):
        res = at.classify(data, method="rules")
    assert "short" in res.excluded and "short" not in res.labels.index
