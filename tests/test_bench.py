"""The benchmark harness (alliancetraj.bench) and ``alliancetraj benchmark``.

Most tests run the harness on a stand-in method registered in ``alliancetraj.methods.REGISTRY``
(so the real ``classify`` dispatch is exercised) that reads the simulated truth and
adds errors: fast, and its scores are known. One slow test runs the real quick mode.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

import alliancetraj.bench as bench
import alliancetraj.bench.run as bench_run
from alliancetraj import methods as registry
from alliancetraj.bench import (
    FULL_GRID,
    QUICK_GRID,
    BenchmarkGrid,
    Cell,
    describe_grid,
    run_benchmark,
)
from alliancetraj.cli import main
from alliancetraj.results import CLASSES, ClassificationResult


def _fake_method(name: str, implementation: str, uses_seed: bool) -> registry.Method:
    """A registered-method stand-in (the contract's declarations, no module of its own)."""
    cls = type(f"Fake_{name}", (registry.Method,), {
        "name": name, "min_sessions": 3, "uses_seed": uses_seed,
        "options": ("seed",) if uses_seed else (), "implementation": implementation})
    return cls()


TINY = BenchmarkGrid(
    cells=(Cell(12, "low", "well_specified"), Cell(8, "high", "missing")),
    n_dyads=40,
    n_seeds=2,
    scan_sizes=(20, 40),
)


@pytest.fixture
def fake_methods(monkeypatch):
    """Register 'oracle' (truth with 20% flipped labels), 'perfect' and 'broken'."""
    seen: list[pd.DataFrame] = []
    simulate = bench_run.simulate_cohort

    def remember(*args, **kwargs):
        cohort = simulate(*args, **kwargs)
        seen.append(cohort.truth)
        return cohort

    monkeypatch.setattr(bench_run, "simulate_cohort", remember)

    def result(sessions, flip, seed=0):
        truth = seen[-1]
        dyads = pd.Index(pd.unique(sessions["dyad"]), name="dyad")
        assert dyads.isin(truth.index).all()
        t = truth.reindex(dyads)
        rng = np.random.default_rng(seed)
        codes = t["true_class"].cat.codes.to_numpy().copy()
        flipped = rng.random(len(codes)) < flip
        codes[flipped] = (codes[flipped] + 1) % 4
        return ClassificationResult.from_probabilities(
            0.05 + np.eye(4)[codes],
            index=dyads,
            method="fake",
            changepoints=t[["rupture_session", "repair_session"]],
        )

    module = types.ModuleType("alliancetraj_fake_methods")
    module.MIN_SESSIONS = 3
    module.classify_oracle = lambda frame, seed=0: result(frame, 0.2, seed)
    module.classify_perfect = lambda frame: result(frame, 0.0)

    def classify_broken(frame):
        raise RuntimeError("this method always fails")

    module.classify_broken = classify_broken
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for name in ("oracle", "perfect", "broken"):
        monkeypatch.setitem(registry.REGISTRY, name, _fake_method(
            name, f"{module.__name__}:classify_{name}", uses_seed=name == "oracle"))
    monkeypatch.setitem(registry.REGISTRY, "ghost", _fake_method(
        "ghost", "alliancetraj.models.no_such_module:classify", uses_seed=False))
    return seen


def test_grid_definition():
    assert len(FULL_GRID.cells) == 4 * 2 * 5
    assert sorted({c.n_sessions for c in FULL_GRID.cells}) == [8, 12, 20, 30]
    assert {c.noise for c in FULL_GRID.cells} == {"low", "high"}
    assert {c.condition for c in FULL_GRID.cells} == {
        "well_specified",
        "ar1",
        "t4",
        "ceiling",
        "missing",
    }
    assert FULL_GRID.n_seeds > 1
    assert len(QUICK_GRID.cells) == 2 and QUICK_GRID.n_seeds == 1
    text = describe_grid(FULL_GRID)
    assert "8 / 12 / 20 / 30" in text and "AR(1)" in text and "40" in text
    kwargs = Cell(20, "high", "t4").simulate_kwargs()
    assert kwargs == {"n_sessions": 20, "noise": 0.35, "df": 4.0}
    with pytest.raises(ValueError, match="Valid conditions"):
        Cell(8, "low", "wobbly")


def test_cell_seeds_are_stable_and_distinct():
    cell = Cell(12, "low", "well_specified")
    assert bench._cell_seed(0, cell, 0) == bench._cell_seed(0, cell, 0)
    seeds = {bench._cell_seed(0, c, r) for c in FULL_GRID.cells for r in range(3)}
    assert len(seeds) == len(FULL_GRID.cells) * 3
    assert bench._cell_seed(1, cell, 0) != bench._cell_seed(0, cell, 0)


def test_run_benchmark_outputs(tmp_path, fake_methods):
    lines: list[str] = []
    res = run_benchmark(
        tmp_path, methods=["oracle", "perfect"], grid=TINY, seed=3, memory="all", echo=lines.append
    )
    r = res.results
    # tidy: one row per method x cell x replicate
    assert len(r) == 2 * 2 * 2
    assert set(r["method"]) == {"oracle", "perfect"}
    assert (r["error"] == "").all()
    assert (r.loc[r["method"] == "perfect", "accuracy"] == 1.0).all()
    assert r.loc[r["method"] == "oracle", "accuracy"].between(0.5, 0.98).all()
    assert (r["rupture_exact"].dropna() == 1.0).all()
    assert (r["peak_memory_mib"] >= 0).all() and (r["runtime_s"] > 0).all()
    assert np.allclose(r["runtime_per_1000_s"], r["runtime_s"] / 40 * 1000)
    # paired: both methods saw the same cohorts
    assert r.groupby(["cell", "replicate"])["sim_seed"].nunique().eq(1).all()
    # the CSV round-trips
    csv = pd.read_csv(tmp_path / "benchmark_results.csv", keep_default_na=False, na_values=[""])
    assert list(csv.columns) == list(bench.RESULT_COLUMNS)
    assert len(csv) == len(r)
    # confusion counts add up to the classified dyads
    cm = pd.read_csv(tmp_path / "benchmark_confusion.csv")
    totals = cm.groupby(["method", "cell", "replicate"])["count"].sum()
    assert (totals == 40).all()
    assert set(cm["true"]) == set(CLASSES)
    rel = pd.read_csv(tmp_path / "benchmark_reliability.csv")
    assert (rel.groupby(["method", "cell", "replicate"])["count"].sum() == 40).all()
    # runtime scan: the 40-dyad size is reused from the grid (2 replicates), 20 is run
    rt = pd.read_csv(tmp_path / "benchmark_runtime.csv")
    assert sorted(rt.loc[rt["method"] == "oracle", "n_dyads"]) == [20, 40, 40]
    assert (rt["peak_memory_mib"] >= 0).all()
    # summary, metadata, figures
    md = (tmp_path / "benchmark_summary.md").read_text()
    for heading in (
        "## Grid",
        "## Headline",
        "## By condition",
        "## Every cell",
        "## Runtime against number of dyads",
        "## Definitions",
    ):
        assert heading in md
    assert "median (min–max)" in md.lower() or "Median (min–max)" in md
    meta = json.loads((tmp_path / "benchmark_meta.json").read_text())
    assert meta["command"].startswith("alliancetraj benchmark")
    assert meta["seed"] == 3 and meta["grid"]["n_dyads"] == 40
    for name in ("confusion", "reliability", "runtime", "accuracy"):
        png = tmp_path / f"benchmark_{name}.png"
        assert png.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("wrote" in line for line in lines)
    assert all(p.exists() for p in res.files)


def test_same_seed_same_cohorts(tmp_path, fake_methods):
    a = run_benchmark(
        tmp_path / "a",
        methods=["oracle"],
        grid=TINY,
        figures=False,
        scan_sizes=(),
        memory="none",
        echo=lambda s: None,
    )
    b = run_benchmark(
        tmp_path / "b",
        methods=["oracle"],
        grid=TINY,
        figures=False,
        scan_sizes=(25,),
        memory="scan",
        echo=lambda s: None,
    )
    cols = ["sim_seed", "accuracy", "brier", "ece"]
    pd.testing.assert_frame_equal(a.results[cols], b.results[cols])
    assert a.runtime.empty and a.results["peak_memory_mib"].isna().all()
    # memory="scan": traced only in the runtime scan
    assert b.results["peak_memory_mib"].isna().all()
    assert list(b.runtime["n_dyads"]) == [25] and b.runtime["peak_memory_mib"].notna().all()
    assert "the runtime scan only" in b.summary


def test_unavailable_and_failing_methods_never_crash(tmp_path, fake_methods):
    lines: list[str] = []
    res = run_benchmark(
        tmp_path,
        methods=["ghost", "broken", "oracle"],
        grid=TINY,
        scan_sizes=(),
        figures=False,
        warmup=False,
        memory="none",
        echo=lines.append,
    )
    assert any("skipping method 'ghost'" in line and "not available" in line for line in lines)
    broken = res.results[res.results["method"] == "broken"]
    assert len(broken) == 4 and broken["error"].str.contains("always fails").all()
    assert (res.results.loc[res.results["method"] == "oracle", "error"] == "").all()
    assert "## Failures" in res.summary
    # with the warm-up, a method that fails on a small cohort is skipped up front
    lines.clear()
    res = run_benchmark(
        tmp_path,
        methods=["broken", "oracle"],
        grid=TINY,
        scan_sizes=(),
        figures=False,
        echo=lines.append,
    )
    assert "broken" in res.skipped and set(res.results["method"]) == {"oracle"}
    # nothing available: a note and a summary saying so, no crash
    res = run_benchmark(tmp_path, methods=["ghost"], grid=TINY, echo=lines.append)
    assert res.results.empty and "No method produced results" in res.summary


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Valid methods"):
        run_benchmark(tmp_path, methods=["nope"], grid=TINY)
    with pytest.raises(ValueError, match="memory"):
        run_benchmark(tmp_path, memory="some", grid=TINY)
    with pytest.raises(ValueError, match="n_dyads"):
        run_benchmark(tmp_path, n_dyads=0, grid=TINY)


def test_custom_callables(tmp_path):
    calls = []

    def everything_linear(sessions):
        calls.append(len(sessions))
        dyads = pd.Index(pd.unique(sessions["dyad"]), name="dyad")
        return ClassificationResult.from_labels(
            pd.Series("linear", index=dyads), method="all_linear"
        )

    res = run_benchmark(
        tmp_path,
        methods={"all_linear": everything_linear},
        grid=TINY,
        scan_sizes=(),
        figures=False,
        echo=lambda s: None,
    )
    r = res.results
    assert len(r) == 4 and (r["f1_u_shaped"] == 0).all()
    # hard labels: ECE = 1 - accuracy, rupture never located
    assert np.allclose(r["ece"], 1 - r["accuracy"])
    assert (r["rupture_within_1"] == 0).all()
    assert len(calls) == 1 + 4 + 2  # warm-up, grid, traced call of the first replicates


def test_cli_benchmark(tmp_path, fake_methods, capsys):
    status = main(
        [
            "benchmark",
            "--quick",
            "--out",
            str(tmp_path),
            "--methods",
            "oracle",
            "--n-dyads",
            "30",
            "--seed",
            "2",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--n-dyads 30" in out
    r = pd.read_csv(tmp_path / "benchmark_quick_results.csv")
    assert len(r) == len(QUICK_GRID.cells) and (r["n_dyads"] == 30).all()
    assert (tmp_path / "benchmark_quick_summary.md").exists()
    assert not (tmp_path / "benchmark_results.csv").exists()  # quick never overwrites full
    assert main(["benchmark", "--out", str(tmp_path), "--methods", "nope"]) == 2


@pytest.mark.slow
def test_quick_mode_with_the_real_methods(tmp_path):
    """``alliancetraj benchmark --quick`` as a user runs it (every available method)."""
    available = [
        m for m, why in bench.available_methods(bench.QUICK_METHODS).items() if why is None
    ]
    if not available:
        pytest.skip("no classification method is available yet")
    assert main(["benchmark", "--quick", "--out", str(tmp_path)]) == 0
    r = pd.read_csv(tmp_path / "benchmark_quick_results.csv")
    assert set(r["method"]) == set(available)
    assert r["error"].isna().all(), r["error"].dropna().tolist()  # empty: no failure
    assert (r["accuracy"] > 0.3).all()  # a smoke test; recovery is tested per model
    for name in ("summary.md", "confusion.png", "reliability.png", "runtime.png"):
        assert (tmp_path / f"benchmark_quick_{name}").exists()
