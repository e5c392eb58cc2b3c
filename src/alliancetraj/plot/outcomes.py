"""Outcome effects of the trajectory classes (forest plot)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._common import CLASS_COLORS, CLASS_NAMES, new_axes

__all__ = ["plot_effects"]

_EFFECT_COLUMNS = ("estimate", "ci_low", "ci_high")


def _effects_table(fit: Any) -> pd.DataFrame:
    effects = fit if isinstance(fit, pd.DataFrame) else getattr(fit, "effects", None)
    if not isinstance(effects, pd.DataFrame):
        raise TypeError(
            "plot_effects needs a relate_outcomes fit (with an 'effects' table) or the table "
            f"itself; got {type(fit).__name__}."
        )
    missing = [c for c in _EFFECT_COLUMNS if c not in effects.columns]
    if missing:
        raise ValueError(
            f"The effects table lacks column(s) {missing}; it needs {list(_EFFECT_COLUMNS)} "
            f"(got {list(effects.columns)})."
        )
    return effects


def plot_effects(
    fit: Any,
    *,
    null: float = 0.0,
    annotate: bool = True,
    xlabel: str | None = None,
    title: str | None = None,
    units: str | None = None,
    ax: Any = None,
):
    """Forest plot of class effects with their intervals.

    One row per row of the effects table (top to bottom in table order): the
    estimate (point) and its interval (``ci_low`` to ``ci_high``, a line), with a
    reference line at ``null``. Rows named after a class take the class colour.

    Parameters
    ----------
    fit : relate_outcomes fit or DataFrame
        Anything with an ``effects`` table (index: class or term; columns
        ``estimate``, ``ci_low``, ``ci_high`` and optionally ``p_value``), or the
        table itself.
    null : float, default 0
        Value of no effect (0 for differences and log-odds; 1 for ratios).
    annotate : bool, default True
        Write "estimate [low, high]" (and p) at the right of each row.
    xlabel, title : str, optional
        Default: taken from the fit's ``outcome`` and ``reference`` where present.
    units : str, optional
        The outcome's units, named in the default x label (gaussian fits).
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from alliancetraj.plot import plot_effects
    >>> effects = pd.DataFrame({"estimate": [0.3, -0.5], "ci_low": [0.1, -0.8],
    ...                         "ci_high": [0.5, -0.2]}, index=["v_shaped", "unrepaired_rupture"])
    >>> ax = plot_effects(effects)
    """
    effects = _effects_table(fit)
    ax = new_axes(ax, figsize=(6.4, 0.6 * max(len(effects), 2) + 1.4))
    n = len(effects)
    y = np.arange(n)[::-1].astype(float)
    est = effects["estimate"].to_numpy(float)
    lo = effects["ci_low"].to_numpy(float)
    hi = effects["ci_high"].to_numpy(float)
    colors = [CLASS_COLORS.get(str(k), "#444444") for k in effects.index]
    ax.axvline(null, color="grey", linewidth=1, linestyle="--", gid="null")
    ax.hlines(y, lo, hi, colors=colors, linewidth=2.2, gid="intervals")
    ax.scatter(
        est, y, c=colors, s=45, zorder=3, edgecolors="black", linewidths=0.6, gid="estimates"
    )
    names = [CLASS_NAMES.get(str(k), str(k)) for k in effects.index]
    ax.set_yticks(y, names)
    ax.set_ylim(-0.7, n - 0.3)
    if annotate and n:
        from matplotlib.transforms import blended_transform_factory

        trans = blended_transform_factory(ax.transAxes, ax.transData)
        pvals = effects["p_value"].to_numpy(float) if "p_value" in effects else [np.nan] * n
        for yi, e, a, b, p in zip(y, est, lo, hi, pvals, strict=True):
            text = f"{e:.2f} [{a:.2f}, {b:.2f}]"
            if np.isfinite(p):
                text += f"  p={p:.3f}" if p >= 0.001 else "  p<0.001"
            ax.text(1.02, yi, text, transform=trans, va="center", fontsize=8, gid="annotation")
    outcome = getattr(fit, "outcome", None)
    reference = getattr(fit, "reference", None) or "linear"
    if xlabel is None:
        binomial = getattr(fit, "family", None) == "binomial"
        scale = "log-odds ratio" if binomial else "difference"
        xlabel = f"{scale} in {outcome}" if isinstance(outcome, str) else scale
        if units and not binomial:
            xlabel += f" ({units})"
        alpha = getattr(fit, "settings", {}).get("alpha", 0.05)
        xlabel += f" vs {CLASS_NAMES.get(reference, reference)}, {1 - alpha:.0%} interval"
    ax.set_xlabel(xlabel)
    # a few round ticks: the annotations on the right carry the exact numbers
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax
