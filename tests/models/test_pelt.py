"""classify(method="pelt"): PELT change points (ruptures) and the shared labelling."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at

pytest.importorskip("ruptures")


def _frame(series: dict[str, list[float]]) -> pd.DataFrame:
    rows = [(d, s + 1, v) for d, ys in series.items() for s, v in enumerate(ys)]
    return pd.DataFrame(rows, columns=["dyad", "session", "score"])


SERIES = {
    "v": [4.0, 4.1, 3.9, 4.0, 4.1, 2.5, 2.6, 4.0, 4.1, 3.9, 4.0, 4.1],
    "un": [4.0, 4.1, 3.9, 4.0, 4.1, 3.9, 2.5, 2.6, 2.4, 2.5, 2.6, 2.4],
    "lin": [3.0, 3.2, 3.1, 3.3, 3.2, 3.4, 3.3, 3.5, 3.4, 3.6, 3.5, 3.7],
    "u": [4.6, 4.1, 3.6, 3.3, 3.0, 2.9, 2.9, 3.0, 3.3, 3.6, 4.1, 4.6],
}


def test_hand_made_series():
    res = at.classify(_frame(SERIES), method="pelt")
    assert res.labels.astype(str).to_dict() == {
        "v": "v_shaped",
        "un": "unrepaired_rupture",
        "lin": "linear",
        "u": "u_shaped",
    }
    cp = res.changepoints
    assert cp.loc["v", "rupture_session"] == 6 and cp.loc["v", "repair_session"] == 8
    assert cp.loc["v", "depth"] == pytest.approx(4.02 - 2.55)
    assert cp.loc["un", "rupture_session"] == 7 and np.isnan(cp.loc["un", "repair_session"])
    assert (cp["rupture_low"].fillna(-1) == cp["rupture_high"].fillna(-1)).all()
    assert res.settings["penalty"] == "bic" and res.settings["jump"] == 1
    assert res.diagnostics["n_changepoints"]["v"] == 2


def test_recovery():
    cohort = at.simulate_cohort(n_dyads=150, seed=22)
    res = at.classify(cohort.sessions, method="pelt")
    truth = cohort.truth["true_class"].astype(str)
    labels = res.labels.astype(str).reindex(truth.index)
    assert (labels == truth).mean() > 0.6  # about 0.7 on simulated cohorts
    hit = truth.isin(["v_shaped", "unrepaired_rupture"]) & (labels == truth)
    err = (
        res.changepoints["rupture_session"].reindex(truth.index)[hit]
        - cohort.truth["rupture_session"][hit]
    )
    assert (err.abs() <= 1).mean() > 0.85


def test_penalty_rules_order():
    cohort = at.simulate_cohort(n_dyads=60, seed=23)
    loose = at.classify(cohort.sessions, method="pelt", penalty=1.0)
    strict = at.classify(cohort.sessions, method="pelt", penalty="mbic")
    n_loose = sum(loose.diagnostics["n_changepoints"].values())
    n_strict = sum(strict.diagnostics["n_changepoints"].values())
    assert n_strict < n_loose


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"penalty": "aic"}, "'penalty' parameter of classify_pelt"),
        ({"penalty": -1.0}, "'penalty' parameter of classify_pelt must be a number > 0"),
        ({"cost": "ar"}, "'cost' parameter of classify_pelt"),
        ({"min_size": 0}, "'min_size' parameter of classify_pelt"),
        ({"detrend": "yes"}, "'detrend' parameter of classify_pelt"),
    ],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        at.classify(_frame(SERIES), method="pelt", **kwargs)


def test_missing_ruptures_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "ruptures", None)  # makes `import ruptures` fail
    with pytest.raises(ImportError, match=r"pip install alliancetraj\[baselines\]"):
        at.classify(_frame(SERIES), method="pelt")
