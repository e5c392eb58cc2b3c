"""Instrument scoring: known scores, validation, the missing-item rule, change indices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliancetraj as at
from alliancetraj import instruments
from alliancetraj.errors import DataError

BUILT_IN = ["wai_sr", "srs", "phq9", "gad7"]


def test_registry_lists_built_ins():
    assert set(BUILT_IN) <= set(instruments.available())
    assert instruments.get_instrument("PHQ-9").name == "phq9"
    with pytest.raises(ValueError, match="Valid names"):
        instruments.get_instrument("bdi")


def test_wai_sr_subscales():
    row = list(range(1, 13))
    items = pd.DataFrame([[1 + (i % 5) for i in row]], columns=[f"wai{i}" for i in row])
    out = at.instruments.score(items, instrument="wai_sr")
    vals = items.iloc[0].to_numpy(float)
    assert out.loc[0, "total"] == pytest.approx(vals.mean())
    assert out.loc[0, "task"] == pytest.approx(vals[[0, 1, 9, 11]].mean())
    assert out.loc[0, "bond"] == pytest.approx(vals[[2, 4, 6, 8]].mean())
    assert out.loc[0, "goal"] == pytest.approx(vals[[3, 5, 7, 10]].mean())
    assert "band" not in out


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
     (14, "moderate"), (15, "moderately severe"), (19, "moderately severe"), (20, "severe"),
     (27, "severe")],
)
def test_phq9_bands(total, band):
    items = [min(3, max(0, total - 3 * j)) for j in range(9)]
    assert sum(items) == total
    out = instruments.score(pd.DataFrame([items]), "phq9")
    assert out.loc[0, "total"] == total and out.loc[0, "band"] == band


@pytest.mark.parametrize(("total", "band"), [(4, "minimal"), (5, "mild"), (10, "moderate"),
                                             (15, "severe"), (21, "severe")])
def test_gad7_bands(total, band):
    items = [min(3, max(0, total - 3 * j)) for j in range(7)]
    out = instruments.score(pd.DataFrame([items]), "gad7")
    assert out.loc[0, "total"] == total and out.loc[0, "band"] == band


def test_srs_at_risk_cutoff():
    items = pd.DataFrame([[9.0, 9.0, 9.0, 8.5], [9.5, 9.0, 9.0, 9.0]])
    out = instruments.score(items, "srs")
    assert out["total"].tolist() == [35.5, 36.5]
    assert out["at_risk"].tolist() == [True, False]
    assert instruments.score(items, "srs", cutoff=37)["at_risk"].tolist() == [True, True]


def test_validation_errors():
    with pytest.raises(DataError, match="outside phq9's item range"):
        instruments.score(pd.DataFrame([[0] * 8 + [4]]), "phq9")
    with pytest.raises(DataError, match="9 items but the data have 8"):
        instruments.score(pd.DataFrame([[0] * 8]), "phq9")
    with pytest.raises(DataError, match="non-integer"):
        instruments.score(pd.DataFrame([[0.5] + [0] * 6]), "gad7")
    with pytest.raises(DataError, match="non-numeric"):
        instruments.score(pd.DataFrame([["a"] + [0] * 6]), "gad7")


def test_custom_instrument_with_reversed_items_and_columns():
    inst = instruments.Instrument("test_scale_rev", 3, (0, 4), reversed_items=(2,),
                                  subscales={"pair": (1, 2)})
    instruments.register(inst, overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        instruments.register(inst)
    items = pd.DataFrame({"x": [9], "q1": [4], "q2": [0], "q3": [4]})
    try:
        out = instruments.score(items, "test_scale_rev", columns=["q1", "q2", "q3"])
    finally:
        instruments._REGISTRY.pop("testscalerev")
    assert out.loc[0, "total"] == 12 and out.loc[0, "pair"] == 8


def _manual(values: list[float], m_allowed: int, aggregate: str) -> float:
    answered = [v for v in values if not math.isnan(v)]
    if len(values) - len(answered) > m_allowed or not answered:
        return math.nan
    mean = sum(answered) / len(answered)
    return mean * len(values) if aggregate == "sum" else mean


@st.composite
def item_frames(draw):
    name = draw(st.sampled_from(BUILT_IN))
    inst = instruments.get_instrument(name)
    low, high = inst.item_range
    n_rows = draw(st.integers(1, 6))
    item = (st.integers(int(low), int(high)).map(float) if inst.integer
            else st.floats(low, high, allow_nan=False))
    cell = st.one_of(item, item, item, st.just(math.nan))
    rows = draw(st.lists(st.lists(cell, min_size=inst.n_items, max_size=inst.n_items),
                         min_size=n_rows, max_size=n_rows))
    max_missing = draw(st.sampled_from([None, 0.0, 0.25, 0.5]))
    return name, pd.DataFrame(rows), max_missing


@settings(max_examples=60, deadline=None)
@given(item_frames())
def test_property_scores_in_range_and_missing_rule_everywhere(case):
    name, items, max_missing = case
    inst = instruments.get_instrument(name)
    out = instruments.score(items, name, max_missing=max_missing)
    frac = inst.max_missing if max_missing is None else max_missing
    lo, hi = inst.total_range
    scales = {"total": tuple(range(1, inst.n_items + 1)), **dict(inst.subscales)}
    for scale, idx in scales.items():
        got = out[scale].to_numpy()
        ok = got[~np.isnan(got)]
        m = len(idx)
        s_lo, s_hi = ((inst.item_range[0] * m, inst.item_range[1] * m)
                      if inst.aggregate == "sum" else inst.item_range)
        assert np.all((ok >= s_lo - 1e-9) & (ok <= s_hi + 1e-9))
        allowed = math.floor(frac * m + 1e-9)
        for r in range(len(items)):
            vals = [float(items.iat[r, i - 1]) for i in idx]
            expected = _manual(vals, allowed, inst.aggregate)
            if math.isnan(expected):
                assert math.isnan(got[r])
            else:
                assert got[r] == pytest.approx(expected)
    assert np.all((out["total"].dropna() >= lo) & (out["total"].dropna() <= hi))
    if inst.bands:
        assert (out["band"].isna() == out["total"].isna()).all()
    # scoring a row alone gives the same as scoring it within the frame
    alone = instruments.score(items.iloc[[0]], name, max_missing=max_missing)
    pd.testing.assert_frame_equal(alone, out.iloc[[0]])


def test_reliable_and_clinically_significant_change():
    # PHQ-9-like: sd 5, reliability 0.84 -> S_diff = sqrt(2) * 5 * 0.4 = 2.83
    rc = instruments.reliable_change(pd.Series([20.0, 20.0, 10.0]), pd.Series([10.0, 18.0, 16.0]),
                                     sd=5.0, reliability=0.84)
    assert rc["rci"].iloc[0] == pytest.approx(-10 / (math.sqrt(2) * 5 * 0.4))
    assert rc["improved"].tolist() == [True, False, False]
    assert rc["deteriorated"].tolist() == [False, False, True]
    cs = instruments.clinically_significant_change(
        [20.0, 20.0, 12.0], [8.0, 14.0, 20.0], sd=5.0, reliability=0.84,
        clinical=(16.0, 5.0), functional=(4.0, 3.0))
    assert cs.attrs["cutoff"] == pytest.approx((5 * 4 + 3 * 16) / 8)
    assert cs["category"].astype(str).tolist() == ["recovered", "improved", "deteriorated"]
    up = instruments.reliable_change([2.0], [4.0], sd=0.5, reliability=0.9, direction="increase")
    assert bool(up["improved"].iloc[0])
    with pytest.raises(ValueError, match="needs"):
        instruments.clinically_significant_change([1.0], [2.0], sd=1.0, reliability=0.8,
                                                  criterion="c")
