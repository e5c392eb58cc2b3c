"""Benchmark figures: confusion matrix against the truth, reliability diagram, runtime.

Each function takes ``ax=None`` (a new figure when None), returns the Axes it drew
on and never calls ``plt.show()``. The inputs are the tables of
:mod:`alliancetraj.metrics` and of the benchmark harness (:mod:`alliancetraj.bench`),
so the figures can be redrawn from the committed CSV files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..results import CLASSES
from ._common import CLASS_NAMES, new_axes

__all__ = [
    "METHOD_COLORS",
    "plot_benchmark_metric",
    "plot_confusion_matrix",
    "plot_reliability",
    "plot_runtime",
]

#: One colour per classification method (Okabe–Ito palette); others cycle through the rest.
METHOD_COLORS: dict[str, str] = {
    "exact": "#0072B2",
    "pymc": "#CC79A7",
    "growth": "#009E73",
    "rules": "#E69F00",
    "pelt": "#D55E00",
}
_SPARE_COLORS = ("#56B4E9", "#000000", "#F0E442", "#999999")


def _method_color(name: str, position: int) -> str:
    return METHOD_COLORS.get(name, _SPARE_COLORS[position % len(_SPARE_COLORS)])


def plot_confusion_matrix(
    confusion: pd.DataFrame | np.ndarray,
    *,
    normalize: str | None = "true",
    ax: Any = None,
    title: str | None = None,
    cmap: str = "Blues",
    colorbar: bool = True,
    annotate: bool = True,
) -> Any:
    """Heat map of predicted against true class.

    Parameters
    ----------
    confusion : DataFrame or array (n_classes, n_classes)
        Counts with true classes as rows and predicted classes as columns, e.g.
        from :func:`alliancetraj.metrics.confusion_matrix`. An array is taken in the
        order of :data:`~alliancetraj.CLASSES`.
    normalize : {"true", "pred", "all", None}, default "true"
        Divide by row totals (the share of each true class predicted as each class:
        the diagonal is the recall), by column totals, by the grand total, or show
        the counts.
    ax : matplotlib Axes, optional
    title : str, optional
    cmap : str, default "Blues"
    colorbar : bool, default True
    annotate : bool, default True
        Write the value (and the count, when normalised) in every cell.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from alliancetraj.metrics import confusion_matrix
    >>> from alliancetraj.plot.benchmark import plot_confusion_matrix
    >>> cm = confusion_matrix(["linear", "v_shaped", "v_shaped"],
    ...                       ["linear", "v_shaped", "linear"])
    >>> ax = plot_confusion_matrix(cm)
    >>> ax.get_ylabel()
    'true class'
    """
    if isinstance(confusion, pd.DataFrame):
        classes = [str(c) for c in confusion.index]
        if [str(c) for c in confusion.columns] != classes:
            raise ValueError(
                "The confusion matrix needs the same classes, in the same order, as rows and "
                f"columns. Got rows {classes} and columns {list(confusion.columns)}."
            )
        counts = confusion.to_numpy(dtype=float)
    else:
        counts = np.asarray(confusion, dtype=float)
        classes = list(CLASSES)
        if counts.shape != (len(classes), len(classes)):
            raise ValueError(
                f"The confusion matrix must have shape ({len(classes)}, {len(classes)}). Got "
                f"{counts.shape} instead."
            )
    if normalize not in ("true", "pred", "all", None):
        raise ValueError(
            f"The 'normalize' parameter must be 'true', 'pred', 'all' or None. Got "
            f"{normalize!r} instead."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            values = counts / counts.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            values = counts / counts.sum(axis=0, keepdims=True)
        elif normalize == "all":
            values = counts / counts.sum()
        else:
            values = counts
    ax = new_axes(ax, figsize=(5.4, 4.6))
    vmax = 1.0 if normalize else max(float(np.nanmax(values)) if values.size else 1.0, 1.0)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=vmax)
    names = [CLASS_NAMES.get(c, c).split(" (")[0] for c in classes]
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, names, rotation=30, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if annotate:
        for i in range(len(classes)):
            for j in range(len(classes)):
                v = values[i, j]
                if not np.isfinite(v):
                    continue
                if normalize:
                    text = f"{v:.2f}\n({counts[i, j]:.0f})"
                else:
                    text = f"{v:.0f}"
                dark = v > 0.6 * vmax
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    if colorbar:
        ax.figure.colorbar(
            image,
            ax=ax,
            fraction=0.046,
            pad=0.04,
            label={
                "true": "share of true class",
                "pred": "share of predicted",
                "all": "share of dyads",
                None: "dyads",
            }[normalize],
        )
    if title is not None:
        ax.set_title(title)
    return ax


def plot_reliability(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    ax: Any = None,
    label: str | None = None,
    min_count: int = 1,
    sizes: bool = True,
) -> Any:
    """Reliability diagram: mean confidence against observed frequency per bin.

    Parameters
    ----------
    table : DataFrame, or mapping name -> DataFrame
        Tables of :func:`alliancetraj.metrics.reliability_table` (columns
        ``confidence``, ``observed`` and ``count``; for a classwise table, the
        ``class`` column picks one line per class). A mapping draws one line per
        entry (e.g. per method), labelled with its key.
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label of a single table.
    min_count : int, default 1
        Bins with fewer dyads are not drawn.
    sizes : bool, default True
        Marker area proportional to the share of dyads in the bin.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from alliancetraj.metrics import reliability_table
    >>> from alliancetraj.plot.benchmark import plot_reliability
    >>> p = np.array([[0.7, 0.1, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]])
    >>> ax = plot_reliability(reliability_table(["linear", "u_shaped"], p))
    >>> ax.get_xlabel()
    'confidence (mean predicted probability)'
    """
    if isinstance(table, pd.DataFrame):
        if "class" in table.columns and table["class"].nunique() > 1:
            tables = {str(k): g for k, g in table.groupby("class", sort=False)}
        else:
            tables = {label or "": table}
    elif isinstance(table, Mapping):
        tables = dict(table)
    else:
        raise TypeError(
            "table must be a DataFrame from reliability_table or a mapping name -> DataFrame; "
            f"got {type(table).__name__}."
        )
    ax = new_axes(ax, figsize=(5.2, 4.8))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for position, (name, tab) in enumerate(tables.items()):
        missing = [c for c in ("confidence", "observed", "count") if c not in tab.columns]
        if missing:
            raise ValueError(f"The reliability table {name!r} lacks the column(s) {missing}.")
        tab = tab[(tab["count"] >= min_count) & tab["confidence"].notna()]
        color = _method_color(str(name), position)
        if name in CLASSES:
            from ._common import CLASS_COLORS

            color = CLASS_COLORS[name]
        x = tab["confidence"].to_numpy(float)
        y = tab["observed"].to_numpy(float)
        ax.plot(x, y, color=color, linewidth=1.4, label=str(name) or None)
        if sizes and len(tab):
            share = tab["count"].to_numpy(float) / max(tab["count"].sum(), 1)
            ax.scatter(
                x,
                y,
                s=12 + 300 * share,
                color=color,
                alpha=0.75,
                edgecolor="white",
                linewidth=0.5,
                zorder=3,
                clip_on=False,
            )
    ax.set_xlim(-0.02, 1.02)  # hard-label methods sit at confidence 1
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("confidence (mean predicted probability)")
    ax.set_ylabel("observed frequency")
    if len(tables) > 1 or label:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax


def plot_runtime(
    runtime: pd.DataFrame,
    *,
    ax: Any = None,
    x: str = "n_dyads",
    y: str = "seconds",
    log: bool = True,
) -> Any:
    """Runtime against the number of dyads, one line per method.

    Parameters
    ----------
    runtime : DataFrame
        Columns ``method``, ``x`` and ``y`` (the ``_runtime.csv`` of the harness);
        several rows per (method, x) are summarised by their median.
    ax : matplotlib Axes, optional
    x, y : str, default "n_dyads", "seconds"
    log : bool, default True
        Logarithmic axes (a straight line of slope 1 is linear scaling).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from alliancetraj.plot.benchmark import plot_runtime
    >>> rt = pd.DataFrame({"method": ["rules"] * 2, "n_dyads": [100, 200],
    ...                    "seconds": [0.1, 0.2]})
    >>> ax = plot_runtime(rt)
    >>> ax.get_xscale()
    'log'
    """
    missing = [c for c in ("method", x, y) if c not in runtime.columns]
    if missing:
        raise ValueError(f"The runtime table lacks the column(s) {missing}.")
    ax = new_axes(ax, figsize=(5.6, 4.2))
    med = runtime.groupby(["method", x], sort=False)[y].median().reset_index()
    for position, (name, g) in enumerate(med.groupby("method", sort=False)):
        g = g.sort_values(x)
        ax.plot(g[x], g[y], marker="o", color=_method_color(str(name), position), label=str(name))
    if log:
        ax.set_xscale("log")
        if (med[y] > 0).all():
            ax.set_yscale("log")
        ticks = sorted(med[x].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel("number of dyads" if x == "n_dyads" else x)
    ax.set_ylabel("seconds of classify()" if y == "seconds" else y)
    ax.grid(True, which="major", alpha=0.3)
    if len(med):
        ax.legend(fontsize=8, frameon=False)
    return ax


def plot_benchmark_metric(
    results: pd.DataFrame,
    metric: str = "accuracy",
    *,
    by: str = "n_sessions",
    ax: Any = None,
    methods: Sequence[str] | None = None,
) -> Any:
    """A benchmark score against one grid factor: median and IQR over the other cells.

    Parameters
    ----------
    results : DataFrame
        The ``_results.csv`` of the harness (one row per method x cell x replicate).
    metric : str, default "accuracy"
        A score column (``accuracy``, ``macro_f1``, ``brier``, ``ece``, ...).
    by : str, default "n_sessions"
        The grid factor on the x axis (``n_sessions``, ``noise`` or ``condition``).
    ax : matplotlib Axes, optional
    methods : sequence of str, optional
        Methods to draw (default: all, in order of appearance).

    Returns
    -------
    matplotlib.axes.Axes
    """
    missing = [c for c in ("method", metric, by) if c not in results.columns]
    if missing:
        raise ValueError(f"The results table lacks the column(s) {missing}.")
    ax = new_axes(ax)
    data = results[results[metric].notna()]
    levels = list(
        dict.fromkeys(sorted(data[by].unique()) if by == "n_sessions" else data[by].unique())
    )
    pos = {lv: i for i, lv in enumerate(levels)}
    ordered = pd.api.types.is_numeric_dtype(data[by])
    names = list(methods) if methods is not None else list(dict.fromkeys(data["method"]))
    width = 0.8 / max(len(names), 1)
    for position, name in enumerate(names):
        g = data[data["method"] == name]
        if g.empty:
            continue
        q = g.groupby(by)[metric].quantile([0.25, 0.5, 0.75]).unstack()
        q = q.reindex([lv for lv in levels if lv in q.index])
        xs = np.array([pos[lv] for lv in q.index]) + (position - (len(names) - 1) / 2) * width
        color = _method_color(str(name), position)
        ax.errorbar(
            xs,
            q[0.5],
            yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]],
            fmt="o-" if ordered else "o",  # join ordered levels only
            color=color,
            capsize=2,
            label=str(name),
        )
    ax.set_xticks(range(len(levels)), [str(lv) for lv in levels])
    ax.set_xlabel({"n_sessions": "sessions per dyad"}.get(by, by))
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(True, axis="y", alpha=0.3)
    if names:
        ax.legend(fontsize=8, frameon=False)
    return ax
