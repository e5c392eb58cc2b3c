"""Reading and writing SPSS, Stata, Excel and compressed CSV files (alliancetraj.formats)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.errors import ExcludedDyadsWarning, MissingCodesWarning
from alliancetraj.formats import read_table, write_tables

pyreadstat = pytest.importorskip("pyreadstat")
pytest.importorskip("openpyxl")

#: SRS 0-40 ratings with string ids and a gap (dyad "c-7" has no session 2).
SESSIONS = pd.DataFrame({
    "client": ["c-7", "c-7", "c-7", "b12", "b12", "b12", "b12"],
    "visit": [1, 3, 4, 1, 2, 3, 4],
    "srs": [31.5, 33.0, 35.2, 36.0, 28.4, 37.9, 38.1],
})


def load(path, **kw):
    return at.load_sessions(path, dyad="client", session="visit", score="srs", **kw)


@pytest.mark.parametrize("name", ["s.csv.gz", "s.xlsx", "s.parquet", "s.csv"])
def test_written_tables_read_back_as_the_same_sessions(tmp_path, name):
    path = write_tables(tmp_path / name, {"sessions": SESSIONS}, index=False)
    back = read_table(path)
    pd.testing.assert_frame_equal(back, SESSIONS, check_dtype=False)
    pd.testing.assert_frame_equal(load(path), load(SESSIONS))


def test_xlsx_has_one_sheet_per_table_and_sheet_option(tmp_path):
    other = pd.DataFrame({"client": ["b12", "c-7"], "recovery": [1.5, -0.2]})
    path = write_tables(tmp_path / "both.xlsx", {"outcomes": other, "sessions": SESSIONS},
                        index=False)
    with pd.ExcelFile(path) as book:
        assert book.sheet_names == ["outcomes", "sessions"]
    pd.testing.assert_frame_equal(load(path, sheet="sessions"), load(SESSIONS))
    pd.testing.assert_frame_equal(load(path, sheet=1), load(SESSIONS))
    with pytest.raises(at.DataError, match=r"Sheet 'nope' is not in .*'outcomes', 'sessions'"):
        load(path, sheet="nope")
    with pytest.raises(at.DataError, match="Column 'visit'"):   # first sheet: no sessions
        load(path)
    with pytest.raises(at.DataError, match="applies to Excel files only"):
        load(write_tables(tmp_path / "s.csv", {"s": SESSIONS}), sheet=0)


def test_sav_round_trip_with_value_labels_and_user_missing_codes(tmp_path):
    raw = SESSIONS.copy()
    raw.loc[1, "srs"] = 99.0     # user-missing (declared in the file)
    raw.loc[4, "srs"] = -9.0     # only value-labelled ("refused")
    path = tmp_path / "s.sav"
    pyreadstat.write_sav(
        raw, str(path),
        variable_value_labels={"srs": {99.0: "not rated", -9.0: "refused", 40.0: "best"}},
        missing_ranges={"srs": [99.0]},
    )
    table = read_table(path)
    assert np.isnan(table.loc[1, "srs"]) and table.loc[4, "srs"] == -9.0
    assert table.attrs["missing_codes"] == {"srs": {99.0: 1}}
    # neither code is ever used as a score: NaN, reported, then an error (or dropped)
    with pytest.warns(MissingCodesWarning, match=r"2 value\(s\) .*99.*: 1.*-9 \('refused'\): 1"):
        with pytest.raises(at.DataError, match="2 missing"):
            load(path)
    with pytest.warns(MissingCodesWarning), pytest.warns(ExcludedDyadsWarning, match="Dropped 2"):
        out = load(path, dropna=True, scale=(0, 40))
    expected = load(SESSIONS.drop(index=[1, 4]))
    pd.testing.assert_frame_equal(out, expected)


def test_sav_labels_inside_the_scale_are_anchors_not_codes(tmp_path):
    path = tmp_path / "anchors.sav"
    pyreadstat.write_sav(SESSIONS, str(path),
                         variable_value_labels={"srs": {38.1: "top", 36.0: "high"}})
    out = load(path, scale=(0, 40))                     # no warning: anchors are ratings
    pd.testing.assert_frame_equal(out, load(SESSIONS))
    with pytest.warns(MissingCodesWarning, match="2 value"):   # no scale: codes, not ratings
        with pytest.raises(at.DataError, match="missing"):
            load(path)


def test_dta_round_trip_with_extended_missing(tmp_path):
    raw = SESSIONS.astype({"srs": object})
    raw.loc[2, "srs"] = "a"                           # Stata's .a
    path = tmp_path / "s.dta"
    pyreadstat.write_dta(raw, str(path), missing_user_values={"srs": ["a"]})
    with pytest.warns(MissingCodesWarning, match=r"\.a: 1"), \
            pytest.warns(ExcludedDyadsWarning, match="Dropped 1"):
        out = load(path, dropna=True)
    pd.testing.assert_frame_equal(out, load(SESSIONS.drop(index=[2])))
    plain = tmp_path / "plain.dta"
    pyreadstat.write_dta(SESSIONS, str(plain))
    pd.testing.assert_frame_equal(load(plain), load(SESSIONS))


def test_unreadable_and_unknown_files(tmp_path):
    for name in ("bad.sav", "bad.dta", "bad.xlsx"):
        (tmp_path / name).write_text("not that")
        with pytest.raises(at.DataError, match="Could not parse"):
            read_table(tmp_path / name)
    (tmp_path / "x.xls").write_text("")
    with pytest.raises(at.DataError, match=r"Unknown file type '.xls'.*\.xlsx"):
        read_table(tmp_path / "x.xls")
    with pytest.raises(at.DataError, match="one table, but 2"):
        write_tables(tmp_path / "t.csv", {"a": SESSIONS, "b": SESSIONS})


def test_missing_reader_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyreadstat" else real(name, *a))
    (tmp_path / "s.sav").write_text("")
    with pytest.raises(at.DataError, match=r"needs pyreadstat.*alliancetraj\[formats\]"):
        read_table(tmp_path / "s.sav")
