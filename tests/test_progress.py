"""Progress output suits where it goes: bars in terminals, lines or nothing elsewhere."""

from __future__ import annotations

import io
import sys
import types

import pytest

from alliancetraj.progress import LineProgress, in_notebook, progress_bar


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(bar, steps: int) -> None:
    with bar:
        for _ in range(steps):
            bar.update(1)


def test_not_a_terminal_is_silent_by_default_and_lines_when_asked():
    out = io.StringIO()
    run(progress_bar(total=8, desc="exact engine", unit="dyad", file=out), 8)
    assert out.getvalue() == ""
    run(progress_bar(total=8, desc="exact engine", unit="dyad", enabled=True, file=out), 8)
    lines = out.getvalue().splitlines()
    assert lines[0] == "exact engine: 0/8 dyads"
    assert [line.split(":")[1].split()[0] for line in lines[1:4]] == ["25%", "50%", "75%"]
    assert lines[-1].startswith("exact engine: done (8/8 dyads")
    assert "\r" not in out.getvalue()


def test_terminal_gets_a_bar_and_disabled_gets_nothing():
    tty = Tty()
    run(progress_bar(total=5, desc="fit", file=tty), 5)
    assert "5/5" in tty.getvalue() and "\r" in tty.getvalue()
    quiet = Tty()
    run(progress_bar(total=5, desc="fit", enabled=False, file=quiet), 5)
    assert quiet.getvalue() == ""


def test_notebook_without_ipywidgets_gets_a_text_bar_without_a_warning(monkeypatch):
    class ZMQInteractiveShell:
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    assert in_notebook()
    out = io.StringIO()
    run(progress_bar(total=3, desc="nb", file=out), 3)     # warnings are errors here
    assert "3/3" in out.getvalue()


def test_line_progress_with_zero_total_closes_cleanly():
    out = io.StringIO()
    with LineProgress(0, "none", "dyad", out) as bar:
        bar.update(0)
    assert out.getvalue().splitlines()[-1].startswith("none: done (0/0")


@pytest.mark.parametrize("tty", [False, True])
def test_cli_shows_no_bar_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys, tty):
    from alliancetraj import cli

    seen = {}

    def fake_classify(data, method, **options):
        seen.update(options)
        raise cli._CliError("stop here")

    import importlib

    monkeypatch.setattr(importlib.import_module("alliancetraj.dispatch"), "classify",
                        fake_classify)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    csv = tmp_path / "s.csv"
    csv.write_text("dyad,session,score\na,1,3\na,2,3\na,3,4\na,4,4\n")
    assert cli.main(["classify", str(csv), "--out", str(tmp_path / "c.csv")]) == 2
    assert seen["progress"] is tty
