"""Cohort trajectories (spaghetti plots) by class, and class probabilities across dyads."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from ..results import CLASSES, ClassificationResult
from ._common import (
    CLASS_COLORS,
    CLASS_NAMES,
    as_labels,
    canonical_sessions,
    new_axes,
    session_axis,
)

__all__ = ["class_means", "plot_probabilities", "plot_trajectories"]


def class_means(
    sessions: pd.DataFrame,
    classes: Any,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    min_dyads: int = 5,
) -> pd.DataFrame:
    """Mean score per session within each class.

    Parameters
    ----------
    sessions : DataFrame
        Long session data.
    classes : ClassificationResult, Series of class names, or truth table
        The class of each dyad (dyads without a class are left out).
    dyad, session, score : column names
    min_dyads : int, default 5
        A session's mean is shown only where at least this many dyads of the class
        (or all of them, for a smaller class) were rated at that session; elsewhere NaN.

    Returns
    -------
    DataFrame
        Index session, columns :data:`~alliancetraj.CLASSES`.

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.plot import class_means
    >>> cohort = at.simulate_cohort(n_dyads=40, seed=1)
    >>> class_means(cohort.sessions, cohort.truth).columns.tolist()
    ['linear', 'u_shaped', 'v_shaped', 'unrepaired_rupture']
    """
    frame = canonical_sessions(sessions, dyad, session, score)
    labels = as_labels(classes)
    frame = frame.assign(cls=frame["dyad"].map(labels)).dropna(subset=["cls"])
    sizes = labels[labels.index.isin(frame["dyad"])].value_counts()
    stats = frame.groupby(["cls", "session"])["score"].agg(["mean", "size"])
    out = {}
    for cls in CLASSES:
        if cls not in stats.index.get_level_values(0):
            out[cls] = pd.Series(dtype=float)
            continue
        s = stats.loc[cls]
        need = min(int(min_dyads), int(sizes.get(cls, 0)))
        out[cls] = s["mean"].where(s["size"] >= max(need, 1))
    means = pd.DataFrame(out).reindex(columns=list(CLASSES))
    means.index.name = "session"
    return means.sort_index()


def _segments(frame: pd.DataFrame) -> list[np.ndarray]:
    return [
        np.column_stack([g["session"].to_numpy(float), g["score"].to_numpy(float)])
        for _, g in frame.groupby("dyad", sort=False)
    ]


def _draw_class(
    ax,
    frame: pd.DataFrame,
    means: pd.Series,
    cls: str,
    n_dyads: int,
    *,
    alpha: float,
    linewidth: float,
    show_means: bool,
    label: bool,
) -> None:
    from matplotlib.collections import LineCollection

    color = CLASS_COLORS[cls]
    if len(frame):
        lines = LineCollection(
            _segments(frame), colors=color, alpha=alpha, linewidths=linewidth, gid=f"dyads:{cls}"
        )
        ax.add_collection(lines)
        ax.autoscale_view()
    if show_means and means.notna().any():
        m = means.dropna()
        ax.plot(
            m.index.to_numpy(float),
            m.to_numpy(float),
            color=color,
            linewidth=2.8,
            gid=f"mean:{cls}",
            label=f"{CLASS_NAMES[cls]} (n={n_dyads})" if label else None,
            path_effects=_halo(),
        )


def _halo():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=4.5, foreground="white")]


def plot_trajectories(
    sessions: pd.DataFrame,
    classes: Any,
    *,
    facet: bool = False,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    max_dyads: int | None = None,
    seed: int = 0,
    show_means: bool = True,
    alpha: float | None = None,
    ax: Any = None,
):
    """Spaghetti plot of every dyad's alliance, coloured (or faceted) by class.

    Thin lines are the dyads' observed scores (a missing session is bridged by the
    line); thick lines are the class means per session (see :func:`class_means`).

    Parameters
    ----------
    sessions : DataFrame
        Long session data.
    classes : ClassificationResult, Series of class names, or truth table
        Each dyad's class: a result's most probable class, or the true class from
        ``cohort.truth``. Dyads without a class (e.g. excluded) are left out.
    facet : bool, default False
        One panel per class (in the order of :data:`~alliancetraj.CLASSES`) instead
        of one panel coloured by class.
    dyad, session, score : column names
    max_dyads : int, optional
        Draw at most this many randomly chosen dyads per class (the means still
        use every dyad).
    seed : int, default 0
        Seed of that random choice.
    show_means : bool, default True
    alpha : float, optional
        Opacity of the dyad lines (default chosen from the number of dyads).
    ax : Axes or sequence of 4 Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    Axes, or an array of 4 Axes when ``facet=True``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.plot import plot_trajectories
    >>> cohort = at.simulate_cohort(n_dyads=40, seed=1)
    >>> ax = plot_trajectories(cohort.sessions, cohort.truth)
    >>> axes = plot_trajectories(cohort.sessions, cohort.truth, facet=True)
    >>> len(axes)
    4
    """
    frame = canonical_sessions(sessions, dyad, session, score)
    labels = as_labels(classes)
    frame = frame.assign(cls=frame["dyad"].map(labels)).dropna(subset=["cls"])
    means = class_means(frame, labels)
    counts = frame.drop_duplicates("dyad")["cls"].value_counts()
    rng = np.random.default_rng(seed)
    shown: dict[str, pd.DataFrame] = {}
    for cls in CLASSES:
        part = frame[frame["cls"] == cls]
        ids = part["dyad"].unique()
        if max_dyads is not None and len(ids) > max_dyads:
            keep = rng.choice(ids, size=int(max_dyads), replace=False)
            part = part[part["dyad"].isin(keep)]
        shown[cls] = part
    n_shown = max((p["dyad"].nunique() for p in shown.values()), default=1)
    if alpha is None:
        alpha = float(np.clip(6.0 / max(n_shown, 1), 0.08, 0.6))
    linewidth = 0.8

    if facet:
        if ax is None:
            import matplotlib.pyplot as plt

            _, axes = plt.subplots(
                1, len(CLASSES), figsize=(12, 3.4), sharex=True, sharey=True, layout="constrained"
            )
        else:
            axes = np.asarray(ax, dtype=object).ravel()
            if axes.size != len(CLASSES):
                raise ValueError(
                    f"With facet=True, 'ax' must hold {len(CLASSES)} Axes (one per class); "
                    f"got {axes.size}."
                )
        axes = np.asarray(axes, dtype=object).ravel()
        for a, cls in zip(axes, CLASSES, strict=True):
            _draw_class(
                a,
                shown[cls],
                means[cls],
                cls,
                int(counts.get(cls, 0)),
                alpha=alpha,
                linewidth=linewidth,
                show_means=show_means,
                label=False,
            )
            a.set_title(f"{CLASS_NAMES[cls]} (n={int(counts.get(cls, 0))})", fontsize=10)
            session_axis(a)
        axes[0].set_ylabel("alliance score")
        return axes

    ax = new_axes(ax, figsize=(7.5, 4.2))
    for cls in CLASSES:
        _draw_class(
            ax,
            shown[cls],
            means[cls],
            cls,
            int(counts.get(cls, 0)),
            alpha=alpha,
            linewidth=linewidth,
            show_means=show_means,
            label=True,
        )
    session_axis(ax)
    ax.set_ylabel("alliance score")
    if show_means:
        ax.legend(title="class mean", fontsize=8, title_fontsize=8, loc="best")
    return ax


def _sorted_probabilities(result: ClassificationResult) -> pd.DataFrame:
    probs = result.probabilities.loc[:, list(CLASSES)]
    codes = result.labels.cat.codes.to_numpy()
    p_label = probs.to_numpy()[np.arange(len(probs)), codes]
    order = np.lexsort((-p_label, codes))
    return probs.iloc[order]


def plot_probabilities(result: ClassificationResult, *, sort: bool = True, ax: Any = None):
    """Class probabilities of every dyad as stacked bars.

    With ``sort=True`` dyads are grouped by their most probable class (in the order
    of :data:`~alliancetraj.CLASSES`) and, within a group, ordered from the most
    to the least certain, so that the height of a group's own colour shows how
    sure the classification is. Hard classifiers (``rules``, ``pelt``) give
    one-coloured bars.

    Parameters
    ----------
    result : ClassificationResult
    sort : bool, default True
        Sort as described; False keeps the result's dyad order.
    ax : Axes, optional

    Returns
    -------
    Axes
        Each class is one filled step patch (``ax.patches``, in the order of
        :data:`~alliancetraj.CLASSES`; ``get_data()`` gives the bar tops, edges and
        bottoms).

    Examples
    --------
    >>> import numpy as np, alliancetraj as at
    >>> from alliancetraj.plot import plot_probabilities
    >>> res = at.ClassificationResult.from_probabilities(
    ...     np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.2, 0.5, 0.1]]), index=["a", "b"],
    ...     method="example")
    >>> ax = plot_probabilities(res)
    """
    if not isinstance(result, ClassificationResult):
        raise TypeError(f"result must be a ClassificationResult; got {type(result).__name__}.")
    ax = new_axes(ax, figsize=(8.0, 3.4))
    probs = _sorted_probabilities(result) if sort else result.probabilities.loc[:, list(CLASSES)]
    n = len(probs)
    edges = np.arange(n + 1) - 0.5
    bottom = np.zeros(n)
    for cls in CLASSES:
        top = bottom + probs[cls].to_numpy(float)
        # one filled step patch per class: the same picture as width-1 bars, drawn fast
        ax.stairs(
            top,
            edges,
            baseline=bottom,
            fill=True,
            color=CLASS_COLORS[cls],
            linewidth=0,
            label=CLASS_NAMES[cls],
            gid=f"probability:{cls}",
        )
        bottom = top
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("posterior class probability" if result.exact else "class probability")
    if sort:
        labels = result.labels.reindex(probs.index).astype(str).to_numpy()
        ticks, names = [], []
        for cls in CLASSES:
            where = np.flatnonzero(labels == cls)
            if where.size == 0:
                continue
            ticks.append(where.mean())
            names.append(f"{CLASS_NAMES[cls]}\n(n={where.size})")
            if where[0] > 0:
                ax.axvline(where[0] - 0.5, color="black", linewidth=0.8)
        ax.set_xticks(ticks, names, fontsize=8)
        ax.set_xlabel("dyads, grouped by most probable class, most certain first")
    else:
        ax.set_xlabel("dyad")
    ax.set_title(f"Class probabilities ({result.method}, {n} dyads)", fontsize=10)
    ax.legend(
        ncols=len(CLASSES),
        fontsize=7,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.08),
        frameon=False,
    )
    return ax
