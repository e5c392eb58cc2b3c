"""Scores of the benchmark (alliancetraj.metrics) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliancetraj as at
from alliancetraj import metrics
from alliancetraj.results import ClassificationResult

CLASSES = list(at.CLASSES)
TRUE = ["linear", "linear", "linear", "u_shaped", "v_shaped", "v_shaped"]
PRED = ["linear", "linear", "v_shaped", "u_shaped", "v_shaped", "linear"]


def test_confusion_matrix_counts_and_order():
    cm = metrics.confusion_matrix(TRUE, PRED)
    assert list(cm.index) == CLASSES and list(cm.columns) == CLASSES
    assert cm.index.name == "true" and cm.columns.name == "predicted"
    assert cm.loc["linear", "linear"] == 2
    assert cm.loc["linear", "v_shaped"] == 1
    assert cm.loc["v_shaped", "linear"] == 1
    assert cm.loc["unrepaired_rupture"].sum() == 0
    assert cm.to_numpy().sum() == len(TRUE)


def test_series_are_aligned_on_the_dyad_index():
    idx = [f"d{i}" for i in range(len(TRUE))]
    truth = pd.Series(TRUE, index=idx)
    pred = pd.Series(PRED, index=idx).iloc[::-1]  # other order
    assert metrics.accuracy(truth, pred) == pytest.approx(4 / 6)
    pd.testing.assert_frame_equal(
        metrics.confusion_matrix(truth, pred), metrics.confusion_matrix(TRUE, PRED)
    )
    with pytest.raises(ValueError, match="no truth"):
        metrics.accuracy(truth.iloc[:3], pred)


def test_f1_by_hand():
    f1 = metrics.f1_per_class(TRUE, PRED)
    # linear: tp 2, fp 1, fn 1 -> 4/6; u: 1; v: tp 1, fp 1, fn 1 -> 2/4
    assert f1["linear"] == pytest.approx(2 / 3)
    assert f1["u_shaped"] == pytest.approx(1.0)
    assert f1["v_shaped"] == pytest.approx(0.5)
    assert np.isnan(f1["unrepaired_rupture"])  # neither true nor predicted
    assert metrics.macro_f1(TRUE, PRED) == pytest.approx((2 / 3 + 1 + 0.5) / 3)


def test_unknown_labels_and_lengths_raise():
    with pytest.raises(ValueError, match="Valid classes"):
        metrics.confusion_matrix(["linear"], ["flat"])
    with pytest.raises(ValueError, match="same length"):
        metrics.accuracy(["linear"], ["linear", "linear"])
    with pytest.raises(ValueError, match="shape"):
        metrics.brier_score(["linear"], np.ones((1, 3)))
    with pytest.raises(ValueError, match="n_bins"):
        metrics.expected_calibration_error(["linear"], np.ones((1, 4)) / 4, n_bins=0)


def test_brier_bounds():
    onehot = np.eye(4)
    assert metrics.brier_score(CLASSES, onehot) == 0.0
    assert metrics.brier_score(CLASSES, np.full((4, 4), 0.25)) == pytest.approx(0.75)
    assert metrics.brier_score(CLASSES, onehot[[1, 0, 3, 2]]) == pytest.approx(2.0)


def test_ece_by_hand_and_for_hard_labels():
    # two dyads at confidence 0.9 (bin 9), one right: |0.5 - 0.9| = 0.4
    p = np.array([[0.9, 0.1, 0, 0], [0.9, 0.1, 0, 0]])
    assert metrics.expected_calibration_error(["linear", "u_shaped"], p) == pytest.approx(0.4)
    # one-hot probabilities: ECE = 1 - accuracy
    onehot = np.eye(4)[[CLASSES.index(c) for c in PRED]]
    assert metrics.expected_calibration_error(TRUE, onehot) == pytest.approx(1 - 4 / 6)


def test_classwise_ece_by_hand():
    p = np.array([[0.9, 0.1, 0, 0], [0.9, 0.1, 0, 0]])
    # linear: bin 9, mean p 0.9, frequency 0.5 -> 0.4; u_shaped: bin 1, 0.1 vs 0.5 -> 0.4;
    # v_shaped, unrepaired: p 0, frequency 0 -> 0
    assert metrics.classwise_ece(["linear", "u_shaped"], p) == pytest.approx(0.2)


def test_ece_is_small_for_calibrated_probabilities():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=20_000)
    truth = np.array(CLASSES, dtype=object)[[rng.choice(4, p=row) for row in p]]
    assert metrics.expected_calibration_error(truth, p) < 0.02
    assert metrics.classwise_ece(truth, p) < 0.02


def test_reliability_table_bins_and_additivity():
    p = np.array([[1.0, 0, 0, 0], [0.1, 0.9, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    table = metrics.reliability_table(["linear", "linear", "u_shaped"], p)
    assert list(table["bin"]) == list(range(10))
    assert np.allclose(table["bin_low"], np.arange(10) / 10)
    counts = table.set_index("bin")["count"]
    assert counts[9] == 2  # 1.0 falls in the last, closed bin; 0.9 too
    assert counts[2] == 1  # 0.25
    assert table["count"].sum() == 3
    both = pd.concat([table, table]).groupby("bin")[["count", "sum_observed"]].sum()
    assert both["count"].sum() == 6
    classwise = metrics.reliability_table(["linear"] * 3, p, kind="classwise")
    assert set(classwise["class"]) == set(CLASSES)
    assert (classwise.groupby("class")["count"].sum() == 3).all()


def test_changepoint_location():
    true = [5, 7, np.nan, 4, 10]
    est = [5.2, 8, 3, np.nan, 13]
    loc = metrics.changepoint_location(true, est)
    assert loc["n"] == 4
    assert loc["exact"] == pytest.approx(1 / 4)
    assert loc["within"] == pytest.approx(2 / 4)
    assert loc["located"] == pytest.approx(3 / 4)
    assert loc["mae"] == pytest.approx((0 + 1 + 3) / 3)
    assert metrics.changepoint_location(true, est, tolerance=3)["within"] == pytest.approx(3 / 4)
    none = metrics.changepoint_location([np.nan], [2])
    assert none["n"] == 0 and np.isnan(none["exact"])


def _oracle(truth: pd.DataFrame, seed: int, flip: float = 0.2) -> ClassificationResult:
    rng = np.random.default_rng(seed)
    codes = truth["true_class"].cat.codes.to_numpy().copy()
    flipped = rng.random(len(codes)) < flip
    codes[flipped] = rng.integers(0, 4, flipped.sum())
    p = 0.1 + np.eye(4)[codes]
    cps = truth[["rupture_session", "repair_session"]].copy()
    cps["rupture_session"] += rng.integers(-1, 2, len(cps))
    return ClassificationResult.from_probabilities(
        p, index=truth.index, method="oracle", changepoints=cps
    )


def test_score_result(small_cohort):
    truth = small_cohort.truth
    res = _oracle(truth.iloc[10:], seed=1)  # 10 dyads "excluded"
    s = metrics.score_result(res, truth)
    assert s["n_dyads"] == len(truth) and s["n_classified"] == len(truth) - 10
    y = truth["true_class"].astype(str).iloc[10:]
    assert s["accuracy"] == pytest.approx(np.mean(res.labels.astype(str) == y))
    assert s["confusion"].to_numpy().sum() == len(truth) - 10
    assert s["repair_exact"] == pytest.approx(1.0)  # repair left as true
    assert s["rupture_within_1"] == pytest.approx(1.0)
    assert 0 < s["rupture_exact"] < 1
    assert 0 <= s["ece"] <= 1 and 0 <= s["brier"] <= 2
    assert set(s) >= {f"f1_{c}" for c in CLASSES} | {"macro_f1", "classwise_ece"}


def test_score_result_needs_the_truth_of_every_dyad(small_cohort):
    res = _oracle(small_cohort.truth, seed=2)
    with pytest.raises(ValueError, match="not in the truth"):
        metrics.score_result(res, small_cohort.truth.iloc[5:])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 3),
            st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_score_ranges(rows):
    truth = [CLASSES[t] for t, _, _ in rows]
    pred = [CLASSES[q] for _, q, _ in rows]
    p = np.array([w for _, _, w in rows])
    p = p / p.sum(axis=1, keepdims=True)
    cm = metrics.confusion_matrix(truth, pred)
    assert metrics.accuracy(truth, pred) == pytest.approx(np.trace(cm) / len(rows))
    assert 0 <= metrics.brier_score(truth, p) <= 2
    assert 0 <= metrics.expected_calibration_error(truth, p) <= 1
    assert 0 <= metrics.classwise_ece(truth, p) <= 1
    f1 = metrics.macro_f1(truth, pred)
    assert 0 <= f1 <= 1
