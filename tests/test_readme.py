"""The README runs as written: every command of its bash blocks, and the "Your own data"
section's Python, in a fresh folder (sizes made smaller where the README says so)."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import pytest

from alliancetraj.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"

#: Smaller sizes for the suite (the README says its commands are run so).
SMALLER = {"--n-dyads": 60}
EXTRA = {"benchmark": ["--methods", "rules", "--n-dyads", "20", "--n-seeds", "1"],
         "demo": ["--n-dyads", "40"]}


def _blocks(language: str, text: str | None = None) -> list[str]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _commands() -> list[list[str]]:
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] == "make":     # make demo/test: the suite's own set-up
                continue
            assert words[0] == "alliancetraj", line
            out.append(words[1:])
    return out


def _smaller(words: list[str]) -> list[str]:
    words = list(words)
    for option, most in SMALLER.items():
        if option in words:
            i = words.index(option) + 1
            words[i] = str(min(int(words[i]), most if "parquet" not in words else 600))
    return words + EXTRA.get(words[0], [])


def test_readme_has_the_workflow_commands():
    commands = {c[0] for c in _commands()}
    assert {"simulate", "validate", "classify", "relate", "report", "monitor"} <= commands
    assert any("--format" in c for c in _commands())


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("openpyxl")
    pytest.importorskip("distributed")
    monkeypatch.chdir(tmp_path)
    own = _blocks("python", README.read_text(encoding="utf-8").split("## Your own data")[1])
    assert own, "the README lost its 'Your own data' Python block"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the commands' warnings are for their users
        exec(compile(own[0], "README.md (Your own data)", "exec"), {})
        assert Path("srs_report.html").is_file()
        for words in _commands():
            status = main(_smaller(words))
            err = capsys.readouterr().err
            assert status == 0, (words, err)
            assert "Traceback" not in err
    for name in ("classes.csv", "effects.xlsx", "report.html", "out_dir", "alerts.csv",
                 "srs_classes.xlsx", "srs_effects.xlsx", "srs_report.html",
                 "demo-output/report.html"):
        assert Path(name).exists(), name
    assert len(list(Path("sessions_parquet_dir").glob("part-*.parquet"))) == 2
