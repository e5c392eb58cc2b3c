"""The command line: useful output, one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from alliancetraj.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "simulate", "validate", "classify", "benchmark"):
        assert cmd in out


def test_simulate_validate_classify(tmp_path, capsys):
    path = tmp_path / "cohort.csv"
    assert main(["simulate", "--out", str(path), "--n-dyads", "40", "--seed", "2"]) == 0
    assert path.exists() and (tmp_path / "cohort_truth.csv").exists()
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dyads: 40" in out
    res = tmp_path / "res.csv"
    assert main(["classify", str(path), "--out", str(res), "--method", "rules"]) == 0
    table = pd.read_csv(res, index_col=0)
    assert len(table) == 40 and {"label", "p_linear", "rupture_session"} <= set(table.columns)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [(["validate", "missing.csv"], "does not exist"),
     (["validate", "{csv}", "--score", "alliance"], "Column 'alliance'"),
     (["classify", "{csv}", "--out", "x.csv", "--scale", "1", "2"], "outside the declared scale")],
)
def test_errors_are_one_line_with_status_2(tmp_path, args, pattern):
    csv = tmp_path / "s.csv"
    pd.DataFrame({"dyad": ["a"] * 4, "session": [1, 2, 3, 4], "score": [4.0, 4, 3, 4]}).to_csv(
        csv, index=False)
    args = [a.replace("{csv}", str(csv)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "alliancetraj.cli", *args], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert pattern in err


def test_every_option_has_help_text():
    import argparse

    from alliancetraj.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
