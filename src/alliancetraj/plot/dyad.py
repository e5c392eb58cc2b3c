"""One dyad: observed scores, the fitted trajectory of its most probable class, and
the posterior over its rupture and repair sessions."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..models.changepoint.posterior import dyad_posterior
from ..models.changepoint.spec import design_on
from ..results import CLASSES, ClassificationResult
from ._common import (
    CLASS_COLORS,
    CLASS_NAMES,
    canonical_sessions,
    finite,
    new_axes,
    session_axis,
)

__all__ = ["DyadFit", "dyad_fit", "plot_dyad"]

_RUPTURE_COLOR = "#CC79A7"
_REPAIR_COLOR = "#56B4E9"


@dataclass
class DyadFit:
    """What :func:`plot_dyad` draws for one dyad under one class.

    Attributes
    ----------
    cls : str
        The class the fit is conditional on.
    session : ndarray
        Session grid of the fitted trajectory.
    mean, lower, upper : ndarray
        Fitted mean trajectory and its band (NaN band where there is none).
    rupture, repair, turning : Series or None
        Probability of the rupture (repair; the minimum of a U) at each session,
        index session; None where the class has no such change point or the method
        gives no posterior.
    source : str
        ``"posterior"`` (from the method's per-dyad posterior) or ``"least squares"``
        (the class's shape fitted to the scores at the result's change points).
    level : float
        Coverage of the band.
    """

    cls: str
    session: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rupture: pd.Series | None
    repair: pd.Series | None
    source: str
    level: float
    turning: pd.Series | None = None


# ------------------------------------------------------------------------ posterior
def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if isinstance(obj, pd.DataFrame) and name in obj.columns:
            return obj[name]
        if not isinstance(obj, (Mapping, pd.DataFrame)) and hasattr(obj, name):
            return getattr(obj, name)
    return None


def _as_session_series(value: Any, grid: np.ndarray | None) -> pd.Series | None:
    if value is None:
        return None
    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            value = value.iloc[:, -1]
        else:
            value = value.iloc[:, 0]
    if isinstance(value, pd.Series):
        s = value.astype(float)
    else:
        arr = np.asarray(value, dtype=float)
        if grid is None or arr.shape != grid.shape:
            raise TypeError(
                "A change-point posterior given as an array must match the "
                "session grid of the fitted trajectory."
            )
        s = pd.Series(arr, index=grid)
    s.index = s.index.astype(float)
    return s if np.nansum(s.to_numpy()) > 0 else None


def _adapt_posterior(post: Any, cls: str, level: float) -> DyadFit:
    """Read a per-dyad posterior (mapping, object or DataFrame) into a :class:`DyadFit`.

    Recognised names: ``session`` (or the index of a ``trajectory`` DataFrame),
    ``mean``/``fitted``, ``lower``/``low``/``band_low``, ``upper``/``high``/``band_high``,
    ``rupture``/``p_rupture``, ``repair``/``p_repair`` and ``level``/``credible_level``.
    """
    traj = _get(post, "trajectory", "fit")
    source = traj if traj is not None else post
    mean = _get(source, "mean", "fitted", "mu")
    if mean is None:
        raise TypeError(
            "The dyad posterior must give the fitted trajectory as 'mean' (with 'session', "
            f"'lower', 'upper'); got {type(post).__name__} without it."
        )
    session = _get(source, "session", "sessions")
    if session is None and isinstance(mean, pd.Series):
        session = mean.index
    if session is None and isinstance(source, pd.DataFrame):
        session = source.index
    grid = np.asarray(session, dtype=float)
    mean = np.asarray(mean, dtype=float)
    lower = _get(source, "lower", "low", "band_low", "ci_low")
    upper = _get(source, "upper", "high", "band_high", "ci_high")
    lower = np.full_like(mean, np.nan) if lower is None else np.asarray(lower, dtype=float)
    upper = np.full_like(mean, np.nan) if upper is None else np.asarray(upper, dtype=float)
    lvl = _get(post, "level", "credible_level")
    rupture = _get(post, "rupture", "p_rupture", "rupture_posterior")
    repair = _get(post, "repair", "p_repair", "repair_posterior")
    turning = _get(post, "turning", "p_turning", "turning_posterior")
    configs = _get(post, "configurations")
    if isinstance(configs, pd.DataFrame) and "probability" in configs.columns:
        # joint posterior over configurations -> marginal posterior of each change point
        def marginal(col: str) -> pd.Series | None:
            if col not in configs.columns:
                return None
            return configs.groupby(col)["probability"].sum()

        rupture = marginal("rupture_session") if rupture is None else rupture
        repair = marginal("repair_session") if repair is None else repair
        turning = marginal("turning_session") if turning is None else turning
    return DyadFit(
        cls=cls,
        session=grid,
        mean=mean,
        lower=lower,
        upper=upper,
        rupture=_as_session_series(rupture, grid),
        repair=_as_session_series(repair, grid),
        turning=_as_session_series(turning, grid),
        source="posterior",
        level=float(lvl) if lvl is not None else level,
    )


# --------------------------------------------------------------------- least squares
def _design(t: np.ndarray, cls: str, cp: pd.Series) -> np.ndarray:
    """The class's design at the result's change points (the change-point spec's), or
    a free quadratic for ``u_shaped`` (least squares estimates its minimum)."""
    if cls == "u_shaped":
        return np.column_stack([np.ones_like(t), t - t.min(), (t - t.min()) ** 2])
    if cls == "v_shaped" and finite(cp.get("rupture_session")) and finite(cp.get("repair_session")):
        return design_on(t, t, cls, (float(cp["rupture_session"]), float(cp["repair_session"])))
    if cls == "unrepaired_rupture" and finite(cp.get("rupture_session")):
        return design_on(t, t, cls, float(cp["rupture_session"]))
    return design_on(t, t, "linear", None)


def _least_squares(t: np.ndarray, y: np.ndarray, cls: str, cp: pd.Series, level: float) -> DyadFit:
    from scipy import stats

    grid = np.arange(t.min(), t.max() + 1, dtype=float)
    X = _design(t, cls, cp)
    Xg = _design(grid, cls, cp)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    mean = Xg @ beta
    dof = len(y) - np.linalg.matrix_rank(X)
    lower = upper = np.full_like(mean, np.nan)
    if dof > 0:
        resid = y - X @ beta
        s2 = float(resid @ resid) / dof
        cov = s2 * np.linalg.pinv(X.T @ X)
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Xg, cov, Xg), 0.0))
        q = stats.t.ppf(0.5 + level / 2, dof)
        lower, upper = mean - q * se, mean + q * se
    return DyadFit(
        cls=cls,
        session=grid,
        mean=mean,
        lower=lower,
        upper=upper,
        rupture=None,
        repair=None,
        source="least squares",
        level=level,
    )


# ------------------------------------------------------------------------------ API
def dyad_fit(
    sessions: pd.DataFrame,
    result: ClassificationResult,
    dyad_id: Hashable,
    *,
    cls: str | None = None,
    posterior: Any = None,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
) -> DyadFit:
    """The fitted trajectory and change-point posterior that :func:`plot_dyad` draws.

    Uses, in this order: ``posterior`` when given; the method's per-dyad posterior
    ``alliancetraj.models.changepoint.posterior.dyad_posterior(scores,
    result.hyperparameters, cls)``
    for results of the exact engine; otherwise a least-squares fit of the class's
    shape at the result's change points (a confidence band at the result's
    ``credible_level``; no change-point posterior).

    Parameters are those of :func:`plot_dyad`.
    """
    frame = canonical_sessions(sessions, dyad, session, score)
    obs = frame[frame["dyad"] == dyad_id]
    if obs.empty:
        raise KeyError(f"Dyad {dyad_id!r} has no sessions in the data.")
    if dyad_id not in result.labels.index:
        raise KeyError(
            f"Dyad {dyad_id!r} is not in the classification result "
            f"({len(result)} dyads; excluded: {len(result.excluded)})."
        )
    cls = str(result.labels[dyad_id]) if cls is None else cls
    if cls not in CLASSES:
        raise ValueError(f"Unknown class {cls!r}. Valid names: {list(CLASSES)}.")
    level = float(result.credible_level)
    if posterior is None and result.method == "exact":
        settings = result.settings
        posterior = dyad_posterior(
            obs[["dyad", "session", "score"]].reset_index(drop=True),
            result.hyperparameters,
            cls,
            level=level,
            max_rupture_length=settings.get("max_rupture_length", 4),
            u_margin=settings.get("u_margin", 2.0),
            seed=0,
        )
    if posterior is not None:
        return _adapt_posterior(posterior, cls, level)
    t = obs["session"].to_numpy(float)
    y = obs["score"].to_numpy(float)
    cp = (
        result.changepoints.loc[dyad_id]
        if cls == str(result.labels[dyad_id])
        else pd.Series(dtype=float)
    )
    return _least_squares(t, y, cls, cp, level)


def _span(ax, low: Any, high: Any, point: Any, color: str, label: str) -> None:
    if finite(low) and finite(high):
        ax.axvspan(
            float(low) - 0.5,
            float(high) + 0.5,
            color=color,
            alpha=0.15,
            linewidth=0,
            gid=f"interval:{label}",
        )
    if finite(point):
        ax.axvline(
            float(point),
            color=color,
            linestyle="--",
            linewidth=1.2,
            label=f"{label} (estimate)",
            gid=f"estimate:{label}",
        )


def plot_dyad(
    sessions: pd.DataFrame,
    result: ClassificationResult,
    dyad_id: Hashable,
    *,
    cls: str | None = None,
    posterior: Any = None,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    ax: Any = None,
):
    """One dyad's alliance: scores, fitted trajectory with band, rupture and repair.

    Draws the observed scores (points), the fitted trajectory of the most probable
    class (or ``cls``) with its band, the result's rupture and repair estimates
    (dashed lines) with their credible sets (shaded), and, where the method gives
    one, the posterior probability of the rupture and repair (or, for a U, of the
    turning session) at each session as bars on a twin y axis along the bottom
    (the twin is the Axes in ``ax.figure.axes`` with gid ``"changepoint_posterior"``).

    Parameters
    ----------
    sessions : DataFrame
        Long session data (the data the result was fitted to).
    result : ClassificationResult
    dyad_id : hashable
        The dyad to draw.
    cls : str, optional
        Draw the fit under this class instead of the most probable one.
    posterior : mapping or object, optional
        A per-dyad posterior to draw (see :func:`dyad_fit`); by default the exact
        engine's ``dyad_posterior`` for exact results, else a least-squares fit.
    dyad, session, score : column names
    ax : Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.plot import plot_dyad
    >>> cohort = at.simulate_cohort(n_dyads=5, seed=3)
    >>> res = at.ClassificationResult.from_labels(cohort.truth["true_class"], method="truth",
    ...     changepoints=cohort.truth[["rupture_session", "repair_session", "depth"]])
    >>> ax = plot_dyad(cohort.sessions, res, "d00000")
    """
    fit = dyad_fit(
        sessions,
        result,
        dyad_id,
        cls=cls,
        posterior=posterior,
        dyad=dyad,
        session=session,
        score=score,
    )
    frame = canonical_sessions(sessions, dyad, session, score)
    obs = frame[frame["dyad"] == dyad_id]
    ax = new_axes(ax, figsize=(6.4, 3.8))
    color = CLASS_COLORS[fit.cls]

    if np.isfinite(fit.lower).any():
        ax.fill_between(
            fit.session,
            fit.lower,
            fit.upper,
            color=color,
            alpha=0.25,
            linewidth=0,
            label=f"{fit.level:.0%} band",
            gid="band",
        )
    what = "posterior mean" if fit.source == "posterior" else "least-squares fit"
    ax.plot(
        fit.session,
        fit.mean,
        color=color,
        linewidth=2,
        label=f"{what}, {CLASS_NAMES[fit.cls]}",
        gid="fit",
    )
    ax.plot(
        obs["session"].to_numpy(float),
        obs["score"].to_numpy(float),
        "o",
        color="black",
        markersize=4,
        label="observed",
        gid="observed",
        zorder=3,
    )

    if fit.cls == str(result.labels[dyad_id]):
        cp = result.changepoints.loc[dyad_id]
        _span(
            ax,
            cp["rupture_low"],
            cp["rupture_high"],
            cp["rupture_session"],
            _RUPTURE_COLOR,
            "rupture",
        )
        _span(
            ax, cp["repair_low"], cp["repair_high"], cp["repair_session"], _REPAIR_COLOR, "repair"
        )
        if fit.cls == "u_shaped" and finite(cp["turning_session"]):
            ax.axvline(
                float(cp["turning_session"]),
                color=color,
                linestyle=":",
                linewidth=1.2,
                label="turning session",
                gid="estimate:turning",
            )

    if any(s is not None for s in (fit.rupture, fit.repair, fit.turning)):
        pax = ax.twinx()
        pax.set_gid("changepoint_posterior")
        for s, name, col, shift in (
            (fit.rupture, "rupture", _RUPTURE_COLOR, -0.2),
            (fit.repair, "repair", _REPAIR_COLOR, 0.2),
            (fit.turning, "turning", color, 0.0),
        ):
            if s is not None:
                pax.bar(
                    s.index.to_numpy(float) + shift,
                    s.to_numpy(float),
                    width=0.4,
                    color=col,
                    alpha=0.7,
                    label=f"P({name} at session)",
                    gid=f"posterior:{name}",
                )
        low, high = ax.get_ylim()
        ax.set_ylim(low - 0.5 * (high - low), high)  # room for the bars below the scores
        pax.set_ylim(0, 3.0)
        pax.set_yticks([0, 0.5, 1.0])
        # the bars fill the bottom third: the axis line and its label cover that third only
        pax.spines["right"].set_bounds(0, 1.0)
        pax.set_ylabel("P(change)", fontsize=8)
        pax.yaxis.set_label_coords(1.07, 1.0 / 6.0)
        pax.tick_params(labelsize=7)
        handles, labels = pax.get_legend_handles_labels()
    else:
        handles, labels = [], []

    p = float(result.probabilities.loc[dyad_id, fit.cls])
    ax.set_title(
        f"dyad {dyad_id}: {CLASS_NAMES[fit.cls]} (p = {p:.2f}, {result.method})", fontsize=10
    )
    session_axis(ax)
    ax.set_ylabel("alliance score")
    h0, l0 = ax.get_legend_handles_labels()
    ax.legend(h0 + handles, l0 + labels, fontsize=7, loc="best")
    return ax
