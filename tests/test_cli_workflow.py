"""The command line from a researcher's files to a report: Excel in and out, relate,
report, simulate --format parquet."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from alliancetraj.cli import main

pytest.importorskip("openpyxl")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    assert main(["simulate", "--out", str(folder / "c.csv"), "--n-dyads", "60",
                 "--seed", "3"]) == 0
    return folder


def _cli(args, capsys):
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err.strip()


@pytest.mark.filterwarnings("always")     # the command shows its warnings as lines
def test_classify_to_xlsx_then_relate_from_it(cohort, tmp_path, capsys):
    classes = tmp_path / "classes.xlsx"
    status, out, _ = _cli(["classify", cohort / "c.csv", "--out", classes, "--method", "rules"],
                          capsys)
    assert status == 0
    with pd.ExcelFile(classes) as book:
        assert book.sheet_names == ["results", "summary"]
        table = pd.read_excel(book, "results", index_col=0)
        summary = pd.read_excel(book, "summary", index_col=0)
    assert len(table) == 60 and summary["n_dyads"].sum() == 60
    effects = tmp_path / "effects.csv"
    status, out, err = _cli(["relate", classes, cohort / "c_outcomes.csv", "--outcome",
                             "recovery", "--covariate", "baseline_severity", "--out",
                             effects], capsys)
    assert status == 0 and "Class effects on 'recovery'" in out
    # rules give 0/1 probabilities: said once, in one line
    assert err.startswith("alliancetraj relate: warning: The 'from table' classifier gives "
                          "hard labels") and len(err.splitlines()) == 1
    got = pd.read_csv(effects, index_col=0)
    assert got.index.tolist() == ["u_shaped", "v_shaped", "unrepaired_rupture"]
    assert {"estimate", "ci_low", "ci_high", "p_value"} <= set(got.columns)
    assert (got["ci_low"] < got["estimate"]).all() and (got["estimate"] < got["ci_high"]).all()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [(["relate", "{c}/c_truth.csv", "{c}/c_outcomes.csv", "--outcome", "recovery", "--out",
       "{t}/e.csv"], "lacks column(s) 'p_linear'"),
     (["relate", "{c}/none.csv", "{c}/c_outcomes.csv", "--outcome", "recovery", "--out",
       "{t}/e.csv"], "CLASSES '"),
     (["relate", "{c}/c.csv", "{c}/c_outcomes.csv", "--out", "{t}/e.csv"],
      "needs --outcome COLUMN"),
     (["relate", "{c}/c.csv", "{c}/c_outcomes.csv", "--outcome", "recovery", "--out",
       "{t}/e.txt"], "unknown file type '.txt'"),
     (["report", "{c}/c.csv", "--out", "{t}/r.pdf"], "HTML file"),
     (["report", "{c}/c.csv", "--outcome", "recovery", "--out", "{t}/r.html"],
      "--outcome needs an outcomes file"),
     (["report", "{c}/c.csv", "--method", "rules", "--seed", "1", "--out", "{t}/r.html"],
      "draws no random numbers"),
     (["simulate", "--out", "{t}/dir/"], "--format parquet"),
     (["report", "{c}/c.csv", "--outcomes", "{c}/c_outcomes.csv", "--outcome", "recovry",
       "--out", "{t}/r.html"], "Column 'recovry' (--outcome) is not in the outcomes file"),
     (["report", "{c}/c.csv", "--outcomes", "{c}/c_outcomes.csv", "--outcome", "recovery",
       "--covariate", "age", "--out", "{t}/r.html"], "Column 'age' (--covariate)")],
)
def test_new_commands_check_before_computing(cohort, tmp_path, capsys, args, pattern):
    args = [a.replace("{c}", str(cohort)).replace("{t}", str(tmp_path)) for a in args]
    status, _, err = _cli(args, capsys)
    assert status == 2 and len(err.splitlines()) == 1 and pattern in err
    assert list(tmp_path.iterdir()) == []


def test_report_with_outcomes(cohort, tmp_path, capsys):
    out = tmp_path / "report.html"
    status, _, _ = _cli(["report", cohort / "c.csv", "--outcomes", cohort / "c_outcomes.csv",
                         "--outcome", "recovery", "--covariate", "baseline_severity",
                         "--units", "RAS points", "--no-progress", "--out", out], capsys)
    assert status == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'id="effects-table"' in text
    assert "RAS points" in text


def test_simulate_parquet_folder_holds_whole_dyads_in_order(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    folder = tmp_path / "sessions_parquet_dir"
    status, _, _ = _cli(["simulate", "--out", f"{folder}/", "--format", "parquet",
                         "--n-dyads", "1100"], capsys)
    assert status == 0
    parts = sorted(folder.iterdir())
    assert [p.name for p in parts] == ["part-0000.parquet", "part-0001.parquet",
                                       "part-0002.parquet"]
    frames = [pd.read_parquet(p) for p in parts]
    spans = [(f["dyad"].min(), f["dyad"].max()) for f in frames]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    whole = pd.concat(frames)
    assert whole["dyad"].nunique() == 1100
    assert (tmp_path / "sessions_parquet_dir_outcomes.csv").exists()
    # written again over its own output; a foreign file is never deleted
    assert _cli(["simulate", "--out", folder, "--format", "parquet", "--n-dyads", "50"],
                capsys)[0] == 0
    (folder / "mine.txt").write_text("keep")
    status, _, err = _cli(["simulate", "--out", folder, "--format", "parquet"], capsys)
    assert status == 2 and "did not write" in err and (folder / "mine.txt").exists()


@pytest.mark.filterwarnings("always")
def test_sav_input_with_missing_codes_and_excel_sheet(tmp_path, capsys):
    pyreadstat = pytest.importorskip("pyreadstat")
    sessions = pd.DataFrame({"client": ["a"] * 6 + ["b"] * 6, "visit": list(range(1, 7)) * 2,
                             "srs": [30, 31, 99, 32, 33, 34, 35, 36, 20, 21, 22, 23.0]})
    sav = tmp_path / "s.sav"
    pyreadstat.write_sav(sessions, str(sav), missing_ranges={"srs": [99.0]})
    cols = ["--dyad", "client", "--session", "visit", "--score", "srs", "--scale", "0", "40"]
    status, _, err = _cli(["validate", sav, *cols], capsys)
    assert status == 2 and "warning: Column 'srs' (score): 1 value(s) are missing-value" in err
    assert "1 missing (NaN)" in err.splitlines()[-1]
    status, out, _ = _cli(["validate", sav, *cols, "--dropna"], capsys)
    assert status == 0 and "rated sessions: 11" in out
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="notes")
        sessions.replace({"srs": {99: 31.5}}).to_excel(writer, sheet_name="srs", index=False)
    status, out, _ = _cli(["validate", book, *cols, "--sheet", "srs"], capsys)
    assert status == 0 and "rated sessions: 12" in out
    status, _, err = _cli(["validate", book, *cols, "--sheet", "2"], capsys)
    assert status == 2 and "Sheet 2 is not in" in err
