"""Sufficient statistics of every (dyad, configuration) pair: the one builder.

Given its configuration, each class's model is a conjugate regression, so its
evidence needs only the data moments ``X'X``, ``X'y``, ``y'y`` and ``n``. They are
computed here for a block of dyads laid out on a dense session grid (configurations
are shared across the block's dyads; ``*_ok`` masks mark those admissible for each
dyad), by cumulative sums of the masked moments: every configuration at once.
The exact engine builds them per block of dyads, the PyMC cohort model once for the
cohort (:func:`cohort_stats`); both read the same :class:`ConfigStats`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from ...io import PanelArrays, to_panel
from .spec import Settings, dip, u_admissible, u_shapes

__all__ = ["ConfigStats", "block_kernel_view", "block_stats", "cohort_stats", "config_stats",
           "kernel_view", "merge_stats", "v_pairs"]

#: The configuration classes with configurations, as the statistics name them.
CONFIG_CLASSES = ("u", "v", "un")


@dataclass
class ConfigStats:
    """Hyperparameter-free statistics of a block of dyads (standardised scores).

    Arrays are indexed by dyad (``D``) and, for the change-point classes, by a
    configuration shared across dyads (``W`` vertices, ``Kv`` rupture/repair pairs,
    ``Ku`` rupture sessions); ``*_ok`` marks the configurations admissible for each
    dyad. The names are those of the compiled kernel's inputs.
    """

    n: np.ndarray      # (D,)
    syy: np.ndarray    # (D,)
    sx: np.ndarray     # (D,) sums of x = t - 1, x^2, y, x y
    sxx: np.ndarray
    sy: np.ndarray
    sxy: np.ndarray
    u_nd: np.ndarray   # (D, W)  sums of the U's dip D(t), x D, D^2 and y D
    u_xd: np.ndarray
    u_dd: np.ndarray
    u_yd: np.ndarray
    u_ok: np.ndarray
    v_nd: np.ndarray   # (D, Kv) sessions in the drop, sums of x and y over the drop
    v_xd: np.ndarray
    v_yd: np.ndarray
    v_ok: np.ndarray
    un_nd: np.ndarray  # (D, Ku)
    un_xd: np.ndarray
    un_yd: np.ndarray
    un_ok: np.ndarray
    u_shape: np.ndarray     # (W, 3) the U's start, bottom and end as fractions of the span
    v_rupture: np.ndarray   # (Kv,)
    v_repair: np.ndarray    # (Kv,)
    un_rupture: np.ndarray  # (Ku,)
    n_admissible: np.ndarray      # (D, 3) admissible configurations of u, v, un
    log_config_prior: np.ndarray  # (D, 3) -log n_admissible (0 where none)
    sessions_key: np.ndarray      # (D, B) uint8: the dyad's observed sessions, bit-packed
    first: np.ndarray | None = None   # (D,) first observed session
    span: np.ndarray | None = None    # (D,) last minus first observed session
    dyads: pd.Index | None = None

    def turning_sessions(self, k: np.ndarray) -> np.ndarray:
        """Session of the bottom of U shape ``k[d]`` for each dyad ``d``."""
        return self.first + self.span * self.u_shape[np.asarray(k, dtype=np.int64), 1]


def v_pairs(T: int, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``v_shaped`` configurations of a grid of ``T`` sessions: (rupture, repair) grid
    index pairs with ``1 <= repair - rupture <= max_length``."""
    rr, ee = [], []
    for r in range(T):
        for e in range(r + 1, min(T, r + max_length + 1)):
            rr.append(r)
            ee.append(e)
    return np.asarray(rr, dtype=np.int64), np.asarray(ee, dtype=np.int64)


def config_stats(scores: np.ndarray, mask: np.ndarray, grid: np.ndarray,
                 settings: Settings, classes: tuple[str, ...] = CONFIG_CLASSES) -> ConfigStats:
    """Every configuration's sufficient statistics for a block of dyads.

    Parameters
    ----------
    scores, mask : (D, T) arrays
        Standardised scores on the session grid and the observed sessions.
    grid : (T,) int array
        Session numbers of the grid's columns.
    settings : Settings
    classes : tuple of {"u", "v", "un"}
        Limits the configuration statistics to some classes (the others get no
        configurations: zero admissible).
    """
    D, T = scores.shape
    w = mask.astype(float)
    y = np.where(mask, scores, 0.0)
    x = (grid - 1).astype(float)
    n = w.sum(axis=1)
    wy = w * y
    sx = w @ x
    sy = wy.sum(axis=1)

    # cumulative sums with a leading zero: C[:, j] = sum over grid indices < j
    c0 = np.concatenate([np.zeros((D, 1)), np.cumsum(w, axis=1)], axis=1)
    c1 = np.concatenate([np.zeros((D, 1)), np.cumsum(w * x, axis=1)], axis=1)
    cy = np.concatenate([np.zeros((D, 1)), np.cumsum(wy, axis=1)], axis=1)

    # v_shaped: (r, e) grid index pairs with 1 <= e - r <= L
    rr, ee = v_pairs(T if "v" in classes else 0, settings.max_rupture_length)
    v_ok = mask[:, rr] & mask[:, ee] & (c0[:, rr] >= settings.min_pre) if len(rr) else \
        np.zeros((D, 0), dtype=bool)

    # unrepaired: r grid index, drop to the end
    ru = np.arange(T if "un" in classes else 0, dtype=np.int64)
    un_nd = n[:, None] - c0[:, ru]
    un_ok = mask[:, ru] & (c0[:, ru] >= settings.min_pre) & (un_nd >= settings.min_drop)

    # u_shaped: a triangular dip on each dyad's own span of sessions
    first = grid[np.argmax(mask, axis=1)].astype(float)
    last = grid[T - 1 - np.argmax(mask[:, ::-1], axis=1)].astype(float)
    span = last - first
    shapes = u_shapes(settings) if "u" in classes else np.zeros((0, 3))
    u_ok = u_admissible(span[:, None], shapes, settings)
    from .kernels import dip_moments

    u_mom = dip_moments(np.ascontiguousarray(y), np.ascontiguousarray(mask), x, first - 1.0,
                        span, shapes, np.zeros((4, D, len(shapes))))

    n_adm = np.stack([u_ok.sum(axis=1), v_ok.sum(axis=1), un_ok.sum(axis=1)], axis=1)
    k = n_adm.astype(float)
    return ConfigStats(
        n=n, syy=(wy * y).sum(axis=1), sx=sx, sxx=w @ (x * x), sy=sy, sxy=wy @ x,
        u_nd=u_mom[0], u_xd=u_mom[1], u_dd=u_mom[2], u_yd=u_mom[3], u_ok=u_ok,
        v_nd=c0[:, ee] - c0[:, rr], v_xd=c1[:, ee] - c1[:, rr], v_yd=cy[:, ee] - cy[:, rr],
        v_ok=v_ok,
        un_nd=un_nd, un_xd=sx[:, None] - c1[:, ru], un_yd=sy[:, None] - cy[:, ru], un_ok=un_ok,
        u_shape=shapes,
        v_rupture=grid[rr].astype(float) if len(rr) else np.zeros(0),
        v_repair=grid[ee].astype(float) if len(ee) else np.zeros(0),
        un_rupture=grid[ru].astype(float),
        n_admissible=n_adm, log_config_prior=-np.log(np.where(k > 0, k, 1.0)),
        sessions_key=np.packbits(mask, axis=1), first=first, span=span,
    )


def block_stats(panel: PanelArrays, loc: float, sd: float, settings: Settings,
                rows: np.ndarray | None = None,
                classes: tuple[str, ...] = CONFIG_CLASSES) -> ConfigStats:
    """Statistics (scores standardised as ``(y - loc) / sd``) of a block, or of some of its dyads."""
    scores, mask = panel.scores, panel.mask
    if rows is not None:
        scores, mask = scores[rows], mask[rows]
    return config_stats((scores - loc) / sd, mask, panel.grid, settings, classes)


def cohort_stats(
    frame: pd.DataFrame,
    *,
    loc: float = 0.0,
    sd: float = 1.0,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
) -> ConfigStats:
    """Sufficient statistics of every (dyad, configuration) pair of a whole cohort.

    Parameters
    ----------
    frame : DataFrame
        Validated canonical session frame (``dyad``, ``session``, ``score``).
    loc, sd : float
        Scores are standardised as ``(score - loc) / sd``.
    max_rupture_length : int
        Longest repaired rupture (``repair - rupture`` in sessions).
    u_margin : float
        Each side of a U's dip spans at least this many sessions.

    Returns
    -------
    ConfigStats
        With ``dyads`` set.
    """
    panel = to_panel(frame)
    stats = block_stats(panel, loc, sd, Settings(max_rupture_length=max_rupture_length,
                                                 u_margin=u_margin))
    stats.dyads = panel.dyads
    return stats


#: The kernel's per-pattern inputs that come from the statistics, and the score moments.
PATTERN_STATS = ("n", "sx", "sxx", "u_nd", "u_xd", "u_dd", "u_ok", "v_nd", "v_xd", "v_ok",
                 "un_nd", "un_xd", "un_ok")
SCORE_STATS = ("syy", "sy", "sxy", "u_yd", "v_yd", "un_yd")


def kernel_view(stats: ConfigStats) -> dict[str, Any]:
    """The inputs of the compiled class-evidence kernel that do not depend on the priors.

    Dyads observed at the same sessions share every score-free statistic: they are
    grouped by session pattern (``pattern``: each dyad's row in the per-pattern
    arrays). Cached on the statistics object: an empirical-Bayes fit evaluates the
    same blocks many times.
    """
    view = getattr(stats, "_kernel_view", None)
    if view is not None:
        return view
    per_dyad = {k: getattr(stats, k) for k in PATTERN_STATS}
    per_dyad["lcp"] = stats.log_config_prior
    key = np.ascontiguousarray(stats.sessions_key)
    _, first, pattern = np.unique(key.view(np.dtype((np.void, key.shape[1]))),
                                  return_index=True, return_inverse=True)
    view = {k: np.ascontiguousarray(np.asarray(v)[first]) for k, v in per_dyad.items()}
    view["pattern"] = pattern.reshape(-1).astype(np.int64)
    view.update({k: np.ascontiguousarray(getattr(stats, k), dtype=float) for k in SCORE_STATS})
    stats._kernel_view = view  # type: ignore[attr-defined]
    return view


def _dip_weights(mask: np.ndarray, x: np.ndarray, first: np.ndarray, span: np.ndarray,
                 shapes: np.ndarray) -> np.ndarray:
    """(P, K, T) values of every U dip (:func:`~alliancetraj.models.changepoint.spec.dip`) at
    the observed sessions (0 elsewhere): the weights
    :func:`~alliancetraj.models.changepoint.kernels.dip_moments` sums."""
    x_first = (first - 1.0)[:, None, None]
    s, w, e = (x_first + span[:, None, None] * shapes[None, :, i, None] for i in range(3))
    return np.where(mask[:, None, :], dip(x[None, None, :], s, w, e), 0.0)


def block_kernel_view(panel: PanelArrays, loc: float, sd: float, settings: Settings,
                      max_share: float = 1 / 16) -> tuple[dict[str, Any], np.ndarray]:
    """The compiled kernel's inputs (:func:`kernel_view`) of a block, and each dyad's ``n``.

    Equal to ``kernel_view(block_stats(panel, loc, sd, settings))`` without building the
    score-free statistics of every dyad: when the block has few session patterns (at most
    ``max_share`` of its dyads), they are computed once per pattern and only the score
    moments per dyad (the U dips' ``sum y D`` as one matrix product per pattern; the
    other moments by the same cumulative sums as :func:`config_stats`). Otherwise the
    full statistics are built.
    """
    mask = panel.mask
    D, T = mask.shape
    key = np.packbits(mask, axis=1)
    key = np.ascontiguousarray(key)
    _, first_row, pattern = np.unique(key.view(np.dtype((np.void, key.shape[1]))),
                                      return_index=True, return_inverse=True)
    pattern = pattern.reshape(-1).astype(np.int64)
    P = len(first_row)
    if D == 0 or P > max(1, max_share * D) or P * T > 50_000:
        stats = block_stats(panel, loc, sd, settings)
        return kernel_view(stats), stats.n
    scores = (panel.scores - loc) / sd
    rep = config_stats(scores[first_row], mask[first_row], panel.grid, settings)
    view = {k: np.ascontiguousarray(getattr(rep, k)) for k in PATTERN_STATS}
    view["lcp"] = np.ascontiguousarray(rep.log_config_prior)
    view["pattern"] = pattern

    # score moments per dyad, as config_stats computes them
    w = mask.astype(float)
    y = np.where(mask, scores, 0.0)
    x = (panel.grid - 1).astype(float)
    wy = w * y
    sy = wy.sum(axis=1)
    cy = np.concatenate([np.zeros((D, 1)), np.cumsum(wy, axis=1)], axis=1)
    rr, ee = v_pairs(T, settings.max_rupture_length)
    ru = np.arange(T, dtype=np.int64)
    u_yd = np.empty((D, len(rep.u_shape)))
    weights = _dip_weights(mask[first_row], x, rep.first, rep.span, rep.u_shape)
    if P == 1:
        np.matmul(y, weights[0].T, out=u_yd)
    else:
        order = np.argsort(pattern, kind="stable")
        bounds = np.searchsorted(pattern[order], np.arange(P + 1))
        for p in range(P):
            rows = order[bounds[p]:bounds[p + 1]]
            u_yd[rows] = y[rows] @ weights[p].T
    view.update(syy=(wy * y).sum(axis=1), sy=sy, sxy=wy @ x, u_yd=u_yd,
                v_yd=np.ascontiguousarray(cy[:, ee] - cy[:, rr]),
                un_yd=np.ascontiguousarray(sy[:, None] - cy[:, ru]))
    return view, w.sum(axis=1)


#: Fields that describe the configuration grid (shared by a block's dyads), not a dyad.
GRID_FIELDS = ("u_shape", "v_rupture", "v_repair", "un_rupture")


def merge_stats(stats: list[ConfigStats]) -> list[ConfigStats]:
    """Concatenate statistics of blocks that share a configuration grid (fewer, larger blocks).

    Per-dyad quantities are unchanged (dyads keep their order within each grid);
    only the number of vectorised calls falls.
    """
    by_grid: dict[tuple, list[ConfigStats]] = {}
    for s in stats:
        key = tuple(getattr(s, f).tobytes() for f in GRID_FIELDS)
        by_grid.setdefault(key, []).append(s)
    merged = []
    for same in by_grid.values():
        if len(same) == 1:
            merged.append(same[0])
            continue
        per_dyad = {f.name: np.concatenate([getattr(s, f.name) for s in same], axis=0)
                    for f in fields(ConfigStats) if f.name not in (*GRID_FIELDS, "dyads")}
        merged.append(ConfigStats(**per_dyad, **{f: getattr(same[0], f) for f in GRID_FIELDS}))
    return merged
