r"""Data side of the PyMC change-point mixture: configurations, sufficient statistics, evidence.

The per-dyad models are those of the exact engine (see
:mod:`alliancetraj.models.exact`): four normal-inverse-gamma regressions on the
session number, one per class, with discrete change-point configurations
:math:`\tau` and the constrained coefficient (amplitude or depth) kept positive by
truncating the joint prior. Given the hyperparameters every configuration's
evidence is closed form, so the cohort model only needs, per (dyad,
configuration), the data moments :math:`X^\top X`, :math:`X^\top y`,
:math:`y^\top y` and :math:`n`. They are computed here once, in numpy, on a dense
dyad x session grid (configurations are shared across dyads; a mask marks the
admissible ones for each dyad).

:func:`config_log_evidence` is the numpy reference of the evidence (fixed
hyperparameters; the log Student-t CDF of the truncation terms exactly, with SciPy).
The cohort model evaluates the same quantities, and their gradient, in one fused
numba kernel (:func:`alliancetraj.models._kernels.class_evidence_kernel`), which reads
the log Student-t CDF from the cubic tables of :class:`alliancetraj.models.tcdf.LogTCdf`
(the degrees of freedom are fixed per dyad because the noise shape is fixed), accurate
to about 1e-10.

Nothing here imports PyMC or PyTensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ..io import to_panel
from ..results import CLASSES
from .tcdf import log_t_cdf

__all__ = [
    "CohortStats",
    "class_log_evidence",
    "cohort_stats",
    "config_log_evidence",
    "sample_prior_predictive",
    "standardisation",
]

_LOG2PI = math.log(2.0 * math.pi)


# ====================================================================== sufficient statistics
@dataclass
class CohortStats:
    """Hyperparameter-free statistics of a cohort (standardised scores).

    Arrays are indexed by dyad (``D``) and, for the change-point classes, by a
    configuration shared across dyads (``W`` vertices, ``Kv`` rupture/repair pairs,
    ``Ku`` rupture sessions); ``*_ok`` marks the configurations admissible for each
    dyad.
    """

    dyads: pd.Index
    n: np.ndarray      # (D,)
    syy: np.ndarray    # (D,)
    sx: np.ndarray
    sxx: np.ndarray
    sy: np.ndarray
    sxy: np.ndarray
    u_sz: np.ndarray   # (D, W)  sum of q = ((t - w)/h)^2
    u_szz: np.ndarray
    u_szy: np.ndarray
    u_ok: np.ndarray
    v_nd: np.ndarray   # (D, Kv) sessions in the drop, sum of x and y over the drop
    v_xd: np.ndarray
    v_yd: np.ndarray
    v_ok: np.ndarray
    un_nd: np.ndarray  # (D, Ku)
    un_xd: np.ndarray
    un_yd: np.ndarray
    un_ok: np.ndarray
    vertex: np.ndarray     # (W,) session of the u minimum
    v_rupture: np.ndarray  # (Kv,)
    v_repair: np.ndarray   # (Kv,)
    un_rupture: np.ndarray  # (Ku,)

    @property
    def n_admissible(self) -> np.ndarray:
        """(D, 3) number of admissible configurations of u_shaped, v_shaped, unrepaired."""
        return np.stack([self.u_ok.sum(1), self.v_ok.sum(1), self.un_ok.sum(1)], axis=1)

    @property
    def log_config_prior(self) -> np.ndarray:
        """(D, 3) minus log of the number of admissible configurations (0 where none)."""
        k = self.n_admissible.astype(float)
        return -np.log(np.where(k > 0, k, 1.0))


def standardisation(frame: pd.DataFrame) -> tuple[float, float]:
    """Cohort mean and SD of the scores (SD 1 when the scores are constant)."""
    y = frame["score"].to_numpy(dtype=float)
    loc = float(np.mean(y))
    sd = float(np.std(y))
    if not np.isfinite(sd) or sd <= 1e-12 * max(1.0, abs(loc)):
        sd = 1.0
    return loc, sd


def cohort_stats(
    frame: pd.DataFrame,
    *,
    loc: float = 0.0,
    sd: float = 1.0,
    max_rupture_length: int = 4,
    u_margin: float = 1.0,
) -> CohortStats:
    """Sufficient statistics of every (dyad, configuration) pair.

    Parameters
    ----------
    frame : DataFrame
        Validated canonical session frame (``dyad``, ``session``, ``score``).
    loc, sd : float
        Scores are standardised as ``(score - loc) / sd``.
    max_rupture_length : int
        Longest repaired rupture (``repair - rupture`` in sessions).
    u_margin : float
        The u minimum lies in ``[t_1 + u_margin, t_n - u_margin]``.

    Returns
    -------
    CohortStats
    """
    panel = to_panel(frame)
    mask = panel.mask
    y = np.where(mask, (panel.scores - loc) / sd, 0.0)
    grid = panel.grid.astype(float)
    D, T = mask.shape
    w = mask.astype(float)
    x = grid - 1.0
    n = w.sum(1)
    # counts/sums over grid positions < j (leading zero column)
    c0 = np.concatenate([np.zeros((D, 1)), np.cumsum(w, 1)], 1)
    c1 = np.concatenate([np.zeros((D, 1)), np.cumsum(w * x, 1)], 1)
    cy = np.concatenate([np.zeros((D, 1)), np.cumsum(y, 1)], 1)
    sx, sy = w @ x, y.sum(1)

    pairs = [(r, e) for r in range(T) for e in range(r + 1, min(T, r + max_rupture_length + 1))]
    rr = np.array([p[0] for p in pairs], dtype=np.int64)
    ee = np.array([p[1] for p in pairs], dtype=np.int64)
    v_ok = mask[:, rr] & mask[:, ee] & (c0[:, rr] >= 2)
    ru = np.arange(T)
    un_nd = n[:, None] - c0[:, ru]
    un_ok = mask & (c0[:, ru] >= 2) & (un_nd >= 2)

    first = grid[np.argmax(mask, 1)]
    last = grid[T - 1 - np.argmax(mask[:, ::-1], 1)]
    lo, hi = grid[0] + u_margin, grid[-1] - u_margin
    vertex = np.arange(lo, hi + 0.25, 0.5) if hi >= lo else np.zeros(0)
    q = (grid[:, None] - vertex[None, :]) ** 2  # (T, W)
    h2 = np.maximum(np.maximum(vertex[None, :] - first[:, None],
                               last[:, None] - vertex[None, :]), 1e-6) ** 2
    u_ok = (vertex[None, :] >= first[:, None] + u_margin - 1e-9) & \
        (vertex[None, :] <= last[:, None] - u_margin + 1e-9)
    return CohortStats(
        dyads=panel.dyads, n=n, syy=(y * y).sum(1), sx=sx, sxx=w @ (x * x), sy=sy, sxy=y @ x,
        u_sz=(w @ q) / h2, u_szz=(w @ (q * q)) / (h2 * h2), u_szy=(y @ q) / h2, u_ok=u_ok,
        v_nd=c0[:, ee] - c0[:, rr], v_xd=c1[:, ee] - c1[:, rr], v_yd=cy[:, ee] - cy[:, rr],
        v_ok=v_ok,
        un_nd=un_nd, un_xd=sx[:, None] - c1[:, ru], un_yd=sy[:, None] - cy[:, ru], un_ok=un_ok,
        vertex=vertex, v_rupture=grid[rr], v_repair=grid[ee], un_rupture=grid[ru],
    )


# ================================================================================== evidence
def config_log_evidence(stats: CohortStats, h: dict[str, Any]) -> dict[str, Any]:
    r"""Log evidence of every (dyad, configuration), standardised units.

    Parameters
    ----------
    stats : CohortStats
    h : dict
        Hyperparameters on the standardised scale (floats): ``noise_shape``,
        ``noise_scale``, ``level_mean``, ``level_var``, ``slope_mean``, ``slope_var``,
        ``depth_mean``, ``depth_var``, ``amplitude_mean``, ``amplitude_var``.

    Returns
    -------
    dict
        ``"linear"`` (D,), ``"u_shaped"`` (D, W), ``"v_shaped"`` (D, Kv),
        ``"unrepaired_rupture"`` (D, Ku): log evidence **including** the uniform
        configuration prior, ``-inf`` where inadmissible; plus ``"post"``: the location and scale of the
        constrained coefficient's Student-t posterior per configuration.
    """
    log, sqrt, where = np.log, np.sqrt, np.where
    a0 = float(h["noise_shape"])
    b0 = h["noise_scale"]
    n = stats.n
    an = a0 + 0.5 * n
    dof = 2.0 * an
    base = -0.5 * n * _LOG2PI + a0 * log(b0) + special.gammaln(an) - special.gammaln(a0)
    lcp = stats.log_config_prior
    masked = -np.inf

    ma, va, mb, vb = h["level_mean"], h["level_var"], h["slope_mean"], h["slope_var"]
    # trend block [1, x], shared by linear and the rupture classes
    A11 = n + 1.0 / va
    A12 = stats.sx
    A22 = stats.sxx + 1.0 / vb
    e1 = stats.sy + ma / va
    e2 = stats.sxy + mb / vb
    detA = A11 * A22 - A12 * A12
    g1 = (A22 * e1 - A12 * e2) / detA
    g2 = (A11 * e2 - A12 * e1) / detA
    quad_ab = e1 * g1 + e2 * g2
    prior_quad_ab = ma * ma / va + mb * mb / vb
    bn = b0 + 0.5 * (stats.syy + prior_quad_ab - quad_ab)
    out: dict[str, Any] = {"post": {}, "post_bn": {"linear": bn}}
    out["linear"] = base - 0.5 * (log(va) + log(vb)) - 0.5 * log(detA) - an * log(bn)

    md, vd = h["depth_mean"], h["depth_var"]
    trunc0 = log_t_cdf(md / sqrt(b0 / a0 * vd), 2.0 * a0)
    col = lambda a: a[:, None]  # noqa: E731
    for key, nd, xd, yd, ok, j in (
        ("v_shaped", stats.v_nd, stats.v_xd, stats.v_yd, stats.v_ok, 1),
        ("unrepaired_rupture", stats.un_nd, stats.un_xd, stats.un_yd, stats.un_ok, 2),
    ):
        # third column c = -indicator; Schur complement of the trend block
        q1 = (col(A22) * (-nd) - col(A12) * (-xd)) / col(detA)
        q2 = (col(A11) * (-xd) - col(A12) * (-nd)) / col(detA)
        schur = nd + 1.0 / vd - ((-nd) * q1 + (-xd) * q2)
        resid = (-yd + md / vd) - (q1 * col(e1) + q2 * col(e2))
        bn_c = b0 + 0.5 * (col(stats.syy) + prior_quad_ab + md * md / vd
                           - col(quad_ab) - resid * resid / schur)
        loc_c = resid / schur
        scale_c = sqrt(bn_c / col(an) / schur)
        val = (col(base) - 0.5 * (log(va) + log(vb) + log(vd))
               - 0.5 * (col(log(detA)) + log(schur)) - col(an) * log(bn_c)
               + log_t_cdf(loc_c / scale_c, col(dof)) - trunc0 + col(lcp[:, j]))
        out[key] = where(ok, val, masked)
        out["post"][key] = (loc_c, scale_c)
        out["post_bn"][key] = bn_c

    mc, vc = h["amplitude_mean"], h["amplitude_var"]
    trunc0u = log_t_cdf(mc / sqrt(b0 / a0 * vc), 2.0 * a0)
    L11 = col(n) + 1.0 / va
    L12 = stats.u_sz
    L22 = stats.u_szz + 1.0 / vc
    f1 = col(stats.sy) + ma / va
    f2 = stats.u_szy + mc / vc
    det = L11 * L22 - L12 * L12
    quad = (L22 * f1 * f1 - 2.0 * L12 * f1 * f2 + L11 * f2 * f2) / det
    bn_u = b0 + 0.5 * (col(stats.syy) + ma * ma / va + mc * mc / vc - quad)
    loc_u = (L11 * f2 - L12 * f1) / det
    scale_u = sqrt(bn_u / col(an) * L11 / det)
    val = (col(base) - 0.5 * (log(va) + log(vc)) - 0.5 * log(det) - col(an) * log(bn_u)
           + log_t_cdf(loc_u / scale_u, col(dof)) - trunc0u + col(lcp[:, 0]))
    out["u_shaped"] = where(stats.u_ok, val, masked)
    out["post"]["u_shaped"] = (loc_u, scale_u)
    out["post_bn"]["u_shaped"] = bn_u
    return out


def _lse_rows(a: np.ndarray) -> np.ndarray:
    if a.shape[1] == 0:
        return np.full(a.shape[0], -np.inf)
    m = np.max(a, 1)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.exp(a - safe[:, None]).sum(1))


def class_log_evidence(ev: dict[str, Any]) -> np.ndarray:
    """(D, 4) ``log p(y | class)`` from :func:`config_log_evidence` (numpy)."""
    return np.stack([ev["linear"], _lse_rows(ev["u_shaped"]), _lse_rows(ev["v_shaped"]),
                     _lse_rows(ev["unrepaired_rupture"])], axis=1)


# ================================================================= prior-predictive sampler
def sample_prior_predictive(
    sessions,
    hyperparameters: dict[str, Any],
    *,
    seed: int | np.random.Generator | None = None,
    max_rupture_length: int = 4,
    u_margin: float = 1.0,
    id_prefix: str = "p",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate dyads from the per-dyad models themselves (for recovery/coverage checks).

    Parameters
    ----------
    sessions : sequence of arrays
        Observed session numbers of each dyad (sorted, at least 4 each).
    hyperparameters : dict
        The exact engine's hyperparameters, original score scale.
    seed : int or Generator
    max_rupture_length, u_margin : as in the models.

    Returns
    -------
    (sessions, truth)
        Long session frame (dyad, session, score) and one row per dyad: true_class,
        noise_var, level, slope, coefficient (depth or amplitude), rupture_session,
        repair_session, depth, turning_session.

    Notes
    -----
    Class ~ ``class_probs``; configuration uniform over the admissible ones;
    ``(theta, sigma2)`` from the normal-inverse-gamma prior restricted to a positive
    depth/amplitude by rejection (the joint truncation of the models).
    """
    from .pymc_explicit import _extra_column, admissible_configurations

    rng = np.random.default_rng(seed)
    h = hyperparameters
    pi = np.asarray(h["class_probs"], dtype=float)
    pi = pi / pi.sum()
    rows, truth = [], []
    for i, t in enumerate(sessions):
        t = np.asarray(t, dtype=float)
        configs = admissible_configurations(t, max_rupture_length=max_rupture_length,
                                            u_margin=u_margin)
        p = np.array([pi[k] if configs[c] else 0.0 for k, c in enumerate(CLASSES)])
        k = int(rng.choice(len(CLASSES), p=p / p.sum()))
        cls = CLASSES[k]
        cfg = configs[cls][int(rng.integers(len(configs[cls])))]
        x = t - 1.0
        if cls == "u_shaped":
            m = [h["level_mean"], h["amplitude_mean"]]
            v = [h["level_var"], h["amplitude_var"]]
        else:
            m = [h["level_mean"], h["slope_mean"]] + ([h["depth_mean"]] if k >= 2 else [])
            v = [h["level_var"], h["slope_var"]] + ([h["depth_var"]] if k >= 2 else [])
        for _ in range(100000):
            s2 = 1.0 / rng.gamma(h["noise_shape"], 1.0 / h["noise_scale"])
            theta = rng.normal(m, np.sqrt(s2 * np.asarray(v)))
            if k == 0 or theta[-1] > 0:
                break
        if k == 0:
            mean = theta[0] + theta[1] * x
        elif k == 1:
            mean = theta[0] + theta[1] * _extra_column(t, cls, cfg)
        else:
            mean = theta[0] + theta[1] * x + theta[2] * _extra_column(t, cls, cfg)
        y = mean + rng.normal(0.0, math.sqrt(s2), size=t.size)
        dyad = f"{id_prefix}{i:05d}"
        rows.append(pd.DataFrame({"dyad": dyad, "session": t.astype(np.int64), "score": y}))
        truth.append({
            "dyad": dyad, "true_class": cls, "noise_var": s2, "level": theta[0],
            "slope": theta[1] if k != 1 else np.nan,
            "coefficient": theta[-1] if k else np.nan,
            "rupture_session": cfg[0] if k == 2 else (cfg if k == 3 else np.nan),
            "repair_session": cfg[1] if k == 2 else np.nan,
            "depth": theta[2] if k >= 2 else np.nan,
            "turning_session": cfg if k == 1 else np.nan,
        })
    return pd.concat(rows, ignore_index=True), pd.DataFrame(truth).set_index("dyad")
