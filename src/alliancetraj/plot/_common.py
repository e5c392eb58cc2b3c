"""Helpers shared by the plot modules: class colours, inputs, new Axes."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from ..io import validate_sessions
from ..results import CLASS_LABELS, CLASSES, ClassificationResult

#: One colour per class (Okabe–Ito palette, safe for colour-blind readers).
CLASS_COLORS: dict[str, str] = {
    "linear": "#0072B2",
    "u_shaped": "#009E73",
    "v_shaped": "#E69F00",
    "unrepaired_rupture": "#D55E00",
}

#: Human-readable class names for legends and tick labels (the report's words).
CLASS_NAMES: dict[str, str] = dict(CLASS_LABELS)


def new_axes(ax: Any = None, *, figsize: tuple[float, float] = (6.4, 4.0)):
    """Return ``ax``, or the Axes of a new pyplot figure when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def as_labels(classes: Any) -> pd.Series:
    """Class labels (str) indexed by dyad from a result, a Series or a truth table.

    Accepts a :class:`~alliancetraj.ClassificationResult` (its ``labels``), a
    Series of class names, or a DataFrame with a ``true_class`` or ``label``
    column (e.g. ``cohort.truth``).
    """
    if isinstance(classes, ClassificationResult):
        series = classes.labels
    elif isinstance(classes, pd.Series):
        series = classes
    elif isinstance(classes, pd.DataFrame):
        for col in ("true_class", "label"):
            if col in classes.columns:
                series = classes[col]
                break
        else:
            raise ValueError(
                "A DataFrame of classes needs a 'true_class' or 'label' column; got columns "
                f"{list(classes.columns)[:8]}."
            )
    else:
        raise TypeError(
            "classes must be a ClassificationResult, a Series of class names or a DataFrame "
            f"with a 'true_class' column; got {type(classes).__name__}."
        )
    series = series.astype(object).astype(str)
    bad = ~series.isin(CLASSES)
    if bad.any():
        raise ValueError(
            f"Unknown class name(s) {sorted(set(series[bad]))[:5]}. Valid names: {list(CLASSES)}."
        )
    return series


def canonical_sessions(
    sessions: pd.DataFrame, dyad: Hashable, session: Hashable, score: Hashable
) -> pd.DataFrame:
    """The validated canonical frame (columns dyad, session, score); the input is not modified."""
    return validate_sessions(sessions, dyad=dyad, session=session, score=score)


def finite(value: Any) -> bool:
    """True for a finite number (False for None and NaN)."""
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def session_axis(ax: Any) -> None:
    """Label ``ax``'s x axis "session" with whole-number ticks (no 2.5, 7.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins="auto", min_n_ticks=3))
    ax.set_xlabel("session")
