"""The data contract: load_sessions, validate_sessions, wide_to_long."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames

import alliancetraj as at
from alliancetraj.errors import ExcludedDyadsWarning

GOOD = pd.DataFrame({"id": ["b", "a", "a", "b"], "week": [2, 2, 1, 1],
                     "wai": [4.0, 3.5, 3.0, 2.5], "site": ["x", "y", "y", "x"]})


def load(frame, **kw):
    return at.load_sessions(frame, dyad="id", session="week", score="wai", **kw)


def test_returns_sorted_canonical_copy_and_keeps_other_columns():
    before = GOOD.copy()
    out = load(GOOD)
    pd.testing.assert_frame_equal(GOOD, before)
    assert list(out.columns) == ["dyad", "session", "score", "site"]
    assert out["dyad"].tolist() == ["a", "a", "b", "b"]
    assert out["session"].tolist() == [1, 2, 1, 2]
    assert out["session"].dtype == np.int64 and out["score"].dtype == np.float64


def test_reads_csv_and_parquet(tmp_path):
    GOOD.to_csv(tmp_path / "s.csv", index=False)
    GOOD.to_parquet(tmp_path / "s.parquet")
    a = load(tmp_path / "s.csv")
    b = load(str(tmp_path / "s.parquet"))
    pd.testing.assert_frame_equal(a[["dyad", "session", "score"]],
                                  b[["dyad", "session", "score"]])


@pytest.mark.parametrize(
    ("frame", "kwargs", "pattern"),
    [
        (GOOD.drop(columns="wai"), {}, r"Column 'wai' \(the score column\) is not in the data"),
        (GOOD.iloc[:0], {}, "empty"),
        (GOOD.assign(wai=["4", "x", "3", "2"]), {}, r"non-numeric value.*dyad 'a', session 2.*'x'"),
        (GOOD.assign(wai=[4.0, np.inf, 3.0, 2.0]), {}, "infinite"),
        (GOOD.assign(wai=[4.0, np.nan, 3.0, 2.0]), {}, r"missing \(NaN\).*dropna=True"),
        (GOOD.assign(week=[2, 2, 1, 2]), {}, r"duplicated.*dyad 'b', session 2"),
        (GOOD.assign(week=[2, 2.5, 1, 1]), {}, "positive integers"),
        (GOOD.assign(week=[2, 0, 1, 1]), {}, "positive integers"),
        (GOOD.assign(week=[2, -1, 1, 1]), {}, "positive integers"),
        (GOOD.assign(id=["b", None, "a", "b"]), {}, "missing id"),
        (GOOD, {"scale": (3, 5)}, r"outside the declared scale \[3, 5\].*dyad 'b', session 1"),
    ],
)
def test_bad_input_gives_data_error_naming_column_ids_and_fix(frame, kwargs, pattern):
    with pytest.raises(at.DataError, match=pattern):
        load(frame, **kwargs)


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(at.DataError, match="does not exist"):
        at.load_sessions(tmp_path / "nope.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(at.DataError, match="Could not parse"):
        at.load_sessions(bad)
    (tmp_path / "x.ods").write_text("")
    with pytest.raises(at.DataError, match="Unknown file type"):
        at.load_sessions(tmp_path / "x.ods")


def test_dropna_warns_with_count():
    frame = GOOD.assign(wai=[4.0, np.nan, 3.0, np.nan])
    with pytest.warns(ExcludedDyadsWarning, match="Dropped 2 row"):
        out = load(frame, dropna=True)
    assert len(out) == 2


def test_short_dyads_excluded_with_warning_never_silently():
    frame = pd.concat([GOOD, pd.DataFrame({"id": ["c"], "week": [1], "wai": [3.0]})])
    with pytest.warns(ExcludedDyadsWarning, match=r"Excluded 1 of 3 dyad.*'c'"):
        out = load(frame, min_sessions=2)
    assert out.attrs["excluded_dyads"] == ["c"]
    with pytest.raises(at.DataError, match="Every dyad has fewer than 5"):
        load(GOOD, min_sessions=5)


def test_close_column_names_are_suggested():
    with pytest.raises(at.DataError, match="Did you mean 'wai'"):
        at.load_sessions(GOOD, dyad="id", session="week", score="wia")


def test_wide_to_long_round_trip_and_bad_cells():
    wide = pd.DataFrame({"id": [1, 2], "bdi_s1": [20.0, 30.0], "bdi_s2": [15.0, np.nan],
                         "bdi_fu1": [1.0, 2.0]})
    long = at.wide_to_long(wide, dyad="id", prefix="bdi_s")
    assert long.values.tolist() == [[1, 1, 20.0], [1, 2, 15.0], [2, 1, 30.0]]
    bad = wide.astype({"bdi_s2": object})
    bad.loc[0, "bdi_s2"] = "high"
    with pytest.raises(at.DataError, match=r"non-numeric.*'high'"):
        at.wide_to_long(bad, dyad="id", prefix="bdi_s")


# ------------------------------------------------------------------------ properties
def _frames():
    return data_frames(columns=[
        column("dyad", elements=st.one_of(st.integers(0, 4), st.sampled_from(["a", "b", None]))),
        column("session", elements=st.one_of(
            st.integers(-2, 12), st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from(["3", "x", None]))),
        column("score", elements=st.one_of(
            st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10),
            st.sampled_from(["4.5", "bad", None, True]))),
    ])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(), dropna=st.booleans(), min_sessions=st.integers(1, 3),
       scale=st.sampled_from([None, (0.0, 5.0)]))
def test_every_input_validates_or_raises_data_error_and_is_never_modified(
        frame, dropna, min_sessions, scale):
    before = frame.copy(deep=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExcludedDyadsWarning)
        try:
            out = at.load_sessions(frame, dropna=dropna, min_sessions=min_sessions, scale=scale)
        except at.DataError:
            out = None
    pd.testing.assert_frame_equal(frame, before)
    if out is not None:
        assert out["score"].notna().all() and np.isfinite(out["score"]).all()
        assert (out["session"] >= 1).all()
        assert not out.duplicated(["dyad", "session"]).any()
        assert (out.groupby("dyad")["session"].size() >= min_sessions).all()
        if scale is not None:
            assert out["score"].between(*scale).all()
