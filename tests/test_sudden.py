"""Sudden gains/losses: reproduce R's suddengains on its own example data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import alliancetraj as at
from alliancetraj.sudden import rci_cutoff

# (id, sg_session_n, sg_magnitude) of every sudden gain that suddengains'
# create_bysg(sgdata, sg_crit1_cutoff = 7, bdi_s1..bdi_s12) returns. Derived from
# suddengains' rules (R/identify_sg.R, R/create_bysg.R) applied to sgdata and
# cross-checked three ways below: (1) the first ten (id, sg_session_n) rows are
# printed in suddengains' reference page for create_bysg (1_sg_3, 1_sg_7, 3_sg_8,
# 4_sg_3, 5_sg_3, 5_sg_8, 9_sg_3, 10_sg_2, 10_sg_4, 12_sg_3); (2) the vignette's
# describe_sg() output: 24 gains, magnitude mean 11 (SD 3.43), 4 reversals,
# 70.83% of gains in patients with several gains; byperson (first gain): 15 of 43
# patients, 8 with several gains, 3 reversals, magnitude mean 11.4 (SD 3.98); ID 5's
# first gain is 3 to 4 and its largest 8 to 9; (3) an independent loop below.
SGDATA_GAINS = [
    (1, 3, 11),
    (1, 7, 12),
    (3, 8, 9),
    (4, 3, 10),
    (5, 3, 10),
    (5, 8, 13),
    (9, 3, 9),
    (10, 2, 10),
    (10, 4, 8),
    (12, 3, 8),
    (13, 3, 13),
    (13, 8, 8),
    (14, 2, 14),
    (18, 3, 11),
    (39, 3, 9),
    (40, 2, 8),
    (40, 5, 11),
    (40, 8, 10),
    (41, 6, 11),
    (41, 9, 8),
    (42, 5, 24),
    (42, 8, 9),
    (43, 5, 14),
    (43, 7, 14),
]
REVERSED = {(1, 3), (4, 3), (12, 3), (40, 8)}


@pytest.fixture(scope="module")
def sgdata() -> pd.DataFrame:
    return at.datasets.load_sgdata()


def _reference_loop(wide: pd.DataFrame, cols: list[str], cutoff: float, lag: int):
    """A plain transcription of the published rules, one interval at a time."""
    rows = []
    for _, rec in wide.iterrows():
        x = rec[cols].to_numpy(float)
        g = len(x)
        for j in range(2, g - 1):  # post-change column (0-based); pre-change j - 1
            a, b = x[j - 1], x[j]
            if np.isnan(a) or np.isnan(b):
                continue
            pre = x[max(0, j - 3) : j]
            post = x[j : min(g, j + 3)]
            pre, post = pre[~np.isnan(pre)], post[~np.isnan(post)]
            if len(pre) < 2 or len(post) < 2:
                continue
            df = len(pre) + len(post) - 2
            sp = np.sqrt(
                ((len(pre) - 1) * pre.var(ddof=1) + (len(post) - 1) * post.var(ddof=1)) / df
            )
            c3 = pre.mean() - post.mean() > stats.t.ppf(0.975, df) * sp
            if a - b >= cutoff and a - b >= 0.25 * a and c3:
                mag = a - b
                later = x[j - 1 + lag :]
                rev = bool(np.any(later[~np.isnan(later)] > b + mag / 2))
                rows.append((int(rec["id"]), j, mag, rev))
    return rows


def test_sgdata_matches_suddengains(sgdata):
    gains = at.sudden_changes(sgdata, cutoff=7, prefix="bdi_s")
    got = list(zip(gains["dyad"], gains["session"], gains["magnitude"], strict=True))
    assert got == [(i, s, float(m)) for i, s, m in SGDATA_GAINS]
    assert (
        set(
            zip(
                gains.loc[gains["reversed"], "dyad"],
                gains.loc[gains["reversed"], "session"],
                strict=True,
            )
        )
        == REVERSED
    )
    # the vignette's describe_sg() numbers
    assert round(gains["magnitude"].mean(), 2) == 11.0
    assert round(gains["magnitude"].std(), 2) == 3.43
    counts = gains.groupby("dyad").size()
    assert round(100 * gains["dyad"].map(counts).gt(1).mean(), 2) == 70.83
    first = at.sudden_changes(sgdata, cutoff=7, multiple="first")
    assert len(first) == 15 and (counts > 1).sum() == 8
    assert first["reversed"].sum() == 3
    assert round(first["magnitude"].mean(), 1) == 11.4
    assert round(first["magnitude"].std(), 2) == 3.98
    largest = at.sudden_changes(sgdata, cutoff=7, multiple="largest")
    assert first.set_index("dyad").loc[5, "session"] == 3
    assert largest.set_index("dyad").loc[5, "session"] == 8


def test_sgdata_independent_loop(sgdata):
    cols = [f"bdi_s{i}" for i in range(1, 13)]
    ref = _reference_loop(sgdata, cols, 7, lag=3)
    gains = at.sudden_changes(sgdata)  # defaults read sgdata: id, bdi_s1..bdi_s12
    assert (
        list(
            zip(gains["dyad"], gains["session"], gains["magnitude"], gains["reversed"], strict=True)
        )
        == ref
    )
    # with the baseline column: suddengains' identify_sg_1to2 = TRUE
    cols0 = [f"bdi_s{i}" for i in range(0, 13)]
    ref0 = [(i, s - 1, m, r) for i, s, m, r in _reference_loop(sgdata, cols0, 7, lag=2)]
    with0 = at.sudden_changes(sgdata, baseline=True)
    assert (
        list(
            zip(with0["dyad"], with0["session"], with0["magnitude"], with0["reversed"], strict=True)
        )
        == ref0
    )
    assert (with0["session"] == 1).any()  # 1 -> 2 intervals are now tested


def test_long_equals_wide(sgdata):
    long = at.datasets.load_sgdata("long")
    a = at.sudden_changes(sgdata, prefix="bdi_s")
    b = at.sudden_changes(long, dyad="dyad", session="session", score="score")
    pd.testing.assert_frame_equal(a, b)
    renamed = long.rename(columns={"dyad": "client", "score": "wai"})
    c = at.sudden_changes(renamed, dyad="client", score="wai")
    pd.testing.assert_frame_equal(a, c)


def test_increase_mirrors_decrease(sgdata):
    long = at.datasets.load_sgdata("long")
    neg = long.assign(score=-long["score"])
    kw = dict(dyad="dyad", score="score", criteria=(1, 3))
    down = at.sudden_changes(long, **kw)
    up = at.sudden_changes(neg, direction="increase", **kw)
    cols = ["dyad", "session", "magnitude", "reversed"]
    pd.testing.assert_frame_equal(down[cols], up[cols])


@pytest.mark.parametrize(
    ("pre", "post", "alpha", "expected"),
    [
        # suddengains' check_interval() examples (vignette): critical values 2.776
        # and 9.925 (alpha = .01, one missing on each side)
        ((32, 31, 33), (5, 6, 7), 0.05, True),
        ((np.nan, 31, 33), (5, np.nan, 7), 0.01, True),
    ],
)
def test_check_interval_examples(pre, post, alpha, expected):
    scores = [40.0, *pre, *post, 6.0]
    long = pd.DataFrame({"dyad": "a", "session": range(1, len(scores) + 1), "score": scores})
    long = long.dropna()
    out = at.sudden_changes(long, dyad="dyad", score="score", criteria=(3,), alpha=alpha)
    assert (4 in set(out["session"])) is expected


def test_critical_value_adjusts_for_missing():
    # complete windows: 12 - 6.5 = 5.5 > 2.776 * 1.58: criterion 3 met
    base = {1: 12.0, 2: 11.0, 3: 13.0, 4: 6.5, 5: 4.5, 6: 8.5}
    long = pd.DataFrame({"dyad": "a", "session": list(base), "score": list(base.values())})
    kw = dict(dyad="dyad", score="score", criteria=(3,))
    assert list(at.sudden_changes(long, **kw)["session"]) == [3]
    # one pre-window score missing: the critical value rises to 3.182 ...
    gappy = long[long["session"] != 1]
    pre, post = np.array([11.0, 13.0]), np.array([6.5, 4.5, 8.5])
    sp = np.sqrt((pre.var(ddof=1) + 2 * post.var(ddof=1)) / 3)
    expected = bool(pre.mean() - post.mean() > 3.182 * sp)
    assert (3 in set(at.sudden_changes(gappy, **kw)["session"])) is expected
    # ... unless adjust=False keeps 2.776
    expected_fixed = bool(pre.mean() - post.mean() > 2.776 * sp)
    out = at.sudden_changes(gappy, adjust=False, **kw)
    assert (3 in set(out["session"])) is expected_fixed
    assert expected_fixed and not expected


def test_reliability_cutoff(sgdata):
    out = at.sudden_changes(sgdata, reliability=0.931, sd=10.5)
    assert out.attrs["settings"]["cutoff"] == pytest.approx(rci_cutoff(10.5, 0.931))
    assert rci_cutoff(10.5, 0.931) == pytest.approx(1.96 * np.sqrt(2 * (10.5**2 * 0.069)))
    assert (out["magnitude"] >= rci_cutoff(10.5, 0.931)).all()
    auto = at.sudden_changes(sgdata, reliability=0.9)
    sd1 = sgdata["bdi_s1"].std()
    assert auto.attrs["settings"]["cutoff"] == pytest.approx(rci_cutoff(sd1, 0.9))


def test_multiple_options(sgdata):
    allg = at.sudden_changes(sgdata)
    for how in ("first", "last", "smallest", "largest"):
        one = at.sudden_changes(sgdata, multiple=how)
        assert one["dyad"].is_unique and len(one) == allg["dyad"].nunique()
    last = at.sudden_changes(sgdata, multiple="last").set_index("dyad")
    assert last.loc[40, "session"] == 8


def test_input_not_modified(sgdata):
    copy = sgdata.copy()
    at.sudden_changes(sgdata)
    pd.testing.assert_frame_equal(sgdata, copy)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"direction": "down"}, "'direction' parameter of sudden_changes"),
        ({"criteria": (4,)}, "'criteria' parameter of sudden_changes"),
        ({"criteria": ()}, "'criteria' parameter of sudden_changes"),
        ({"cutoff": -1}, "'cutoff' parameter of sudden_changes"),
        ({"multiple": "median"}, "'multiple' parameter of sudden_changes"),
        ({"alpha": 1.5}, "'alpha' parameter of sudden_changes"),
        ({"reliability": 1.0}, "'reliability' parameter of sudden_changes"),
    ],
)
def test_parameter_errors(sgdata, kwargs, match):
    with pytest.raises(ValueError, match=match):
        at.sudden_changes(sgdata, **kwargs)


def test_data_errors():
    long = pd.DataFrame({"client": ["a", "a"], "session": [1, 2], "score": [1.0, 2.0]})
    with pytest.raises(at.DataError, match="'id'"):
        at.sudden_changes(long, score="score")
    bad = pd.DataFrame({"id": ["a", "a"], "session": [1, 1], "bdi": [1.0, 2.0]})
    with pytest.raises(at.DataError, match="duplicated"):
        at.sudden_changes(bad)
    wide = pd.DataFrame({"id": [1, 1], "x1": [2.0, 4.0], "x2": [3.0, 1.0]})
    with pytest.raises(at.DataError, match="duplicated"):
        at.sudden_changes(wide, prefix="x")
    with pytest.raises(at.DataError, match="prefix"):
        at.sudden_changes(wide, prefix="bdi_s")
