"""Benchmark figures: every function takes ax=None, returns the Axes, never shows."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alliancetraj import metrics
from alliancetraj.plot import benchmark as pb

CLASSES = ["linear", "u_shaped", "v_shaped", "unrepaired_rupture"]


@pytest.fixture(autouse=True)
def _no_show(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plot functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    truth = np.array(CLASSES, dtype=object)[rng.integers(0, 4, 200)]
    pred = np.where(
        rng.random(200) < 0.7, truth, np.array(CLASSES, dtype=object)[rng.integers(0, 4, 200)]
    )
    p = 0.2 + 0.8 * (pred[:, None] == np.array(CLASSES)[None, :])
    p = p / p.sum(axis=1, keepdims=True)
    return truth, pred, p


def test_confusion_matrix(labels):
    truth, pred, _ = labels
    cm = metrics.confusion_matrix(truth, pred)
    ax = pb.plot_confusion_matrix(cm, title="method")
    assert ax.get_title() == "method"
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    image = ax.get_images()[0].get_array()
    assert np.allclose(image.sum(axis=1), 1.0)  # row-normalised
    assert len(ax.texts) == 16
    _fig, given = plt.subplots()
    assert (
        pb.plot_confusion_matrix(cm.to_numpy(), ax=given, normalize=None, colorbar=False) is given
    )
    assert given.get_images()[0].get_array().sum() == len(truth)
    with pytest.raises(ValueError, match="normalize"):
        pb.plot_confusion_matrix(cm, normalize="rows")
    with pytest.raises(ValueError, match="shape"):
        pb.plot_confusion_matrix(np.ones((3, 3)))


def test_reliability_diagram(labels):
    truth, _, p = labels
    table = metrics.reliability_table(truth, p)
    _fig, ax = plt.subplots()
    out = pb.plot_reliability({"a": table, "b": table}, ax=ax)
    assert out is ax
    assert len(ax.get_lines()) == 3  # diagonal + two methods
    assert [t.get_text() for t in ax.get_legend().get_texts()][1:] == ["a", "b"]
    assert ax.get_xlim() == (-0.02, 1.02)
    single = pb.plot_reliability(table)
    assert single.get_legend() is None
    classwise = pb.plot_reliability(metrics.reliability_table(truth, p, kind="classwise"))
    assert len(classwise.get_lines()) == 1 + 4
    with pytest.raises(ValueError, match="lacks"):
        pb.plot_reliability(table.drop(columns=["observed"]))
    with pytest.raises(TypeError):
        pb.plot_reliability([table])


def test_runtime_plot():
    rt = pd.DataFrame(
        {
            "method": ["exact"] * 3 + ["rules"] * 3,
            "n_dyads": [100, 200, 400] * 2,
            "seconds": [1.0, 2.1, 4.0, 0.05, 0.1, 0.2],
        }
    )
    ax = pb.plot_runtime(rt)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 2
    assert ax.get_lines()[0].get_color() == pb.METHOD_COLORS["exact"]
    _fig, given = plt.subplots()
    assert pb.plot_runtime(rt, ax=given, log=False) is given
    assert given.get_xscale() == "linear"
    with pytest.raises(ValueError, match="lacks"):
        pb.plot_runtime(rt.drop(columns=["seconds"]))


def test_metric_plot():
    results = pd.DataFrame(
        {
            "method": ["exact", "rules"] * 4,
            "n_sessions": [8, 8, 12, 12, 8, 8, 12, 12],
            "condition": ["well_specified"] * 4 + ["ar1"] * 4,
            "accuracy": [0.8, 0.6, 0.9, 0.7, 0.7, 0.5, 0.85, 0.6],
        }
    )
    ax = pb.plot_benchmark_metric(results, "accuracy")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "12"]
    assert ax.get_xlabel() == "sessions per dyad"
    ax = pb.plot_benchmark_metric(results, "accuracy", by="condition", methods=["rules"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rules"]
    with pytest.raises(ValueError, match="lacks"):
        pb.plot_benchmark_metric(results, "brier")


def test_public_names_reexported():
    import alliancetraj.plot as plot

    for name in pb.__all__:
        assert getattr(plot, name) is getattr(pb, name)
