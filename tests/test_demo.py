"""``alliancetraj demo``: report and tables written, the method used said out loud."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj import demo
from alliancetraj.cli import main
from alliancetraj.results import CLASS_LABELS

TABLES = ("classification.csv", "summary.csv", "effects.csv", "confusion.csv")


def _fake_classify(sessions, method="exact", **options):
    """A result from the truth of the demo's cohort (fast; no model involved)."""
    truth = at.simulate_cohort(n_dyads=sessions["dyad"].nunique(), seed=123).truth
    rng = np.random.default_rng(0)
    codes = pd.Categorical(truth["true_class"], categories=at.CLASSES).codes
    p = rng.dirichlet(np.ones(4), size=len(truth))
    p[np.arange(len(truth)), codes] += 1.0
    return at.ClassificationResult.from_probabilities(
        p,
        index=truth.index,
        method=method,
        changepoints=truth[["rupture_session", "repair_session", "depth"]],
    )


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def _check_output(out, n_dyads, lines):
    text = (out / "report.html").read_text(encoding="utf-8")
    images = _images(text)
    # probabilities, trajectories, 3 dyads, forest plot, confusion matrix
    assert len(images) >= 7
    assert all(img[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    for section in ("summary", "probabilities", "trajectories", "dyads", "effects", "confusion"):
        assert f'id="{section}"' in text
    classification = pd.read_csv(out / "classification.csv", index_col=0)
    assert len(classification) == n_dyads
    assert {"label", "p_linear", "rupture_session", "true_class"} <= set(classification.columns)
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert list(summary.index) == list(at.CLASSES)
    assert summary["n_dyads"].sum() == n_dyads
    effects = pd.read_csv(out / "effects.csv", index_col=0)
    assert list(effects.index) == ["u_shaped", "v_shaped", "unrepaired_rupture"]
    for cls, row in effects.iterrows():  # the effects table of the report is the CSV's
        assert f"<td>{CLASS_LABELS[cls]}</td>" in text and f"{row['estimate']:.3f}" in text
    for cls, n in summary["n_dyads"].items():
        assert re.search(rf"<td>{CLASS_LABELS[cls]}</td>\s*<td>{n}</td>", text)
    assert f"simulated dyads</dt><dd>{n_dyads}" in text
    assert any(str(out) in line for line in lines)


def test_demo_writes_report_and_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "classify", _fake_classify)
    lines: list[str] = []
    out = demo.run_demo(tmp_path / "demo", n_dyads=40, seed=123, echo=lines.append)
    assert out == tmp_path / "demo"
    for name in (*TABLES, "report.html", "sessions.csv", "outcomes.csv", "truth.csv"):
        assert (out / name).exists(), name
    _check_output(out, 40, lines)
    assert any("method='exact'" in line for line in lines)
    assert not any(line.startswith("NOTE") for line in lines)


def test_demo_says_which_method_it_fell_back_to(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "classify", _fake_classify)
    real = demo._installed
    monkeypatch.setattr(
        demo, "_installed", lambda name: name != "alliancetraj.models.exact" and real(name)
    )
    lines: list[str] = []
    out = demo.run_demo(tmp_path, n_dyads=30, seed=123, echo=lines.append)
    used = demo._choose_method("exact")
    assert used != "exact"
    assert any(line.startswith("NOTE") and f"method {used!r} instead" in line for line in lines)
    text = (out / "report.html").read_text(encoding="utf-8")
    assert f"classified with method {used!r} instead" in text.replace("&#x27;", "'")


def test_demo_without_any_method_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(demo, "_installed", lambda name: False)
    with pytest.raises(ImportError, match="needs a classification method"):
        demo._choose_method("exact")
    with pytest.raises(ValueError, match="Valid methods"):
        demo._choose_method("magic")


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path, capsys):
    """The real thing: exact engine and relate_outcomes through the command line."""
    pytest.importorskip("alliancetraj.models.exact", reason="exact engine not installed")
    pytest.importorskip("alliancetraj.outcomes", reason="alliancetraj.outcomes not installed")
    status = main(["demo", "--out", str(tmp_path / "out"), "--n-dyads", "80", "--seed", "4"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "method='exact' (exact posterior probabilities)" in printed
    assert "NOTE" not in printed
    _check_output(tmp_path / "out", 80, printed.splitlines())
