"""The PNG figures of a benchmark run (matplotlib, drawn without pyplot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._files import write_atomic
from ..results import CLASSES


def _write_figures(
    out: Path,
    prefix: str,
    results: pd.DataFrame,
    confusion: pd.DataFrame,
    reliability: pd.DataFrame,
    runtime: pd.DataFrame,
) -> list[Path]:
    from matplotlib.figure import Figure

    from ..metrics import reliability_means
    from ..plot.benchmark import (
        plot_benchmark_metric,
        plot_confusion_matrix,
        plot_reliability,
        plot_runtime,
    )

    files = []
    methods = list(dict.fromkeys(confusion["method"]))
    if methods:
        ncol = 2 if len(methods) == 4 else min(len(methods), 3)
        nrow = -(-len(methods) // ncol)
        fig = Figure(figsize=(4.6 * ncol, 4.2 * nrow), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for ax, method in zip(axes, methods, strict=False):
            sub = confusion[confusion["method"] == method]
            cm = sub.pivot_table(
                index="true", columns="predicted", values="count", aggfunc="sum", sort=False
            )
            cm = cm.reindex(index=list(CLASSES), columns=list(CLASSES), fill_value=0)
            plot_confusion_matrix(cm, ax=ax, title=method, colorbar=False)
        for ax in axes[len(methods) :]:
            ax.set_visible(False)
        fig.suptitle("Predicted against true class (row-normalised, all cells pooled)")
        path = out / f"{prefix}_confusion.png"
        _save(fig, path)
        files.append(path)

    if not reliability.empty:
        pooled = (
            reliability.groupby(["method", "bin", "bin_low", "bin_high"], sort=False)[
                ["count", "sum_confidence", "sum_observed"]
            ]
            .sum()
            .reset_index()
        )
        tables = {m: reliability_means(g) for m, g in pooled.groupby("method", sort=False)}
        fig = Figure(figsize=(5.6, 5.0), layout="constrained")
        ax = fig.subplots()
        plot_reliability(tables, ax=ax)
        ax.set_title("Reliability (top label, all cells pooled)")
        path = out / f"{prefix}_reliability.png"
        _save(fig, path)
        files.append(path)

    if not runtime.empty:
        fig = Figure(figsize=(5.6, 4.2), layout="constrained")
        ax = fig.subplots()
        plot_runtime(runtime, ax=ax)
        path = out / f"{prefix}_runtime.png"
        _save(fig, path)
        files.append(path)

    ok = results[results["error"].fillna("") == ""]
    if not ok.empty:
        fig = Figure(figsize=(10.4, 4.0), layout="constrained")
        left, right = fig.subplots(1, 2, sharey=True)
        plot_benchmark_metric(ok, "accuracy", by="n_sessions", ax=left)
        plot_benchmark_metric(ok, "accuracy", by="condition", ax=right)
        right.tick_params(axis="x", labelrotation=20)
        fig.suptitle("Accuracy: median and IQR over the other factors and replicates")
        path = out / f"{prefix}_accuracy.png"
        _save(fig, path)
        files.append(path)
    return files


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
