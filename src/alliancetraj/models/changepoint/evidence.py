"""The numpy reference evidence: closed-form log evidence of every configuration.

:func:`config_evidence` evaluates, for every dyad and admissible configuration of a
:class:`~alliancetraj.models.changepoint.statistics.ConfigStats`, the
normal-inverse-gamma log evidence with its truncation terms (the equations are in
the package docstring); the trend block ``[1, x]`` is shared by the linear and the
rupture classes, so each rupture configuration costs a Schur complement.
:func:`class_log_evidence` sums configurations into the four class evidences.
:func:`config_posterior` is the same update for one configuration written with
explicit matrices (the check of both, and the per-dyad posterior's building block).
The compiled kernel (:mod:`~alliancetraj.models.changepoint.kernels`) computes the
same class evidences and their gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from .spec import CLASSES, DEFAULT_SIZE_FLOOR, LIN, NAMES, UN, K, U, V, design, prior_moments
from .statistics import ConfigStats
from .tdist import floor_argument, log_t_cdf

__all__ = ["ConfigEvidence", "class_log_evidence", "config_evidence", "config_posterior",
           "log_floor_mass", "logsumexp_rows"]

_LOG2PI = math.log(2.0 * math.pi)


@dataclass
class ConfigEvidence:
    """Per-configuration log evidence (without the within-class configuration prior).

    ``lin`` (D,), ``u`` (D, W), ``v`` (D, Kv), ``un`` (D, Ku), ``-inf`` where a
    configuration is not admissible, ``None`` for classes not computed; ``post`` maps
    a class key to the location and scale of its constrained coefficient's Student-t
    posterior and ``bn`` to the posterior noise scale (both with ``keep_posterior``);
    ``dof`` is the posterior dof (D,).
    """

    lin: np.ndarray | None
    u: np.ndarray | None = None
    v: np.ndarray | None = None
    un: np.ndarray | None = None
    post: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    bn: dict[str, np.ndarray] = field(default_factory=dict)
    dof: np.ndarray | None = None


def _values(h: Any) -> dict[str, float]:
    names = [k for k in NAMES if k != "class_probs"]
    if isinstance(h, Mapping):
        return {k: h[k] for k in names if k in h}
    return {k: getattr(h, k) for k in names}


def config_evidence(stats: ConfigStats, h: Any, *, keep_posterior: bool = False,
                    classes: tuple[str, ...] = ("lin", "u", "v", "un"),
                    logcdf=log_t_cdf) -> ConfigEvidence:
    """Log evidence of every admissible configuration (standardised units).

    Parameters
    ----------
    stats : ConfigStats
    h : Hyperparameters or mapping
        Standardised-scale hyperparameters (scalars).
    keep_posterior : bool
        Also return the constrained coefficient's posterior location and scale.
    classes : tuple of {"lin", "u", "v", "un"}
        Limits the work to some classes (the others are left as None).
    logcdf : callable
        ``log T_dof(z)``: :func:`~alliancetraj.models.changepoint.tdist.log_t_cdf`
        (SciPy, exact) or a :class:`~alliancetraj.models.changepoint.tcdf.LogTCdf` table.
    """
    p = _values(h)
    a0, b0 = p["noise_shape"], p["noise_scale"]
    n = stats.n
    an = a0 + 0.5 * n
    base = -0.5 * n * _LOG2PI + a0 * math.log(b0) + special.gammaln(an) - special.gammaln(a0)
    dof_post = 2.0 * an

    # ---- trend block shared by linear, v_shaped and unrepaired (design [1, x]) -------------
    ma, va, mb, vb = p["level_mean"], p["level_var"], p["slope_mean"], p["slope_var"]
    A11 = n + 1.0 / va
    A12 = stats.sx
    A22 = stats.sxx + 1.0 / vb
    e1 = stats.sy + ma / va
    e2 = stats.sxy + mb / vb
    detA = A11 * A22 - A12 * A12
    # A^{-1} eta_ab
    g1 = (A22 * e1 - A12 * e2) / detA
    g2 = (A11 * e2 - A12 * e1) / detA
    quad_ab = e1 * g1 + e2 * g2
    prior_quad_ab = ma * ma / va + mb * mb / vb
    bn_lin = b0 + 0.5 * (stats.syy + prior_quad_ab - quad_ab)
    lin = base - 0.5 * (math.log(va) + math.log(vb)) - 0.5 * np.log(detA) - an * np.log(bn_lin)
    out = ConfigEvidence(lin=lin, dof=dof_post)
    if keep_posterior:
        out.bn["lin"] = bn_lin

    # ---- change-point classes: add column -D (drop indicator or U dip), coefficient > 0 -------
    kappa = float(p.get("size_floor", DEFAULT_SIZE_FLOOR))
    for key in ("u", "v", "un"):
        if key not in classes:
            continue
        if key == "u":
            mk, vk = p["amplitude_mean"], p["amplitude_var"]
            nd, xd, dd, yd, ok = stats.u_nd, stats.u_xd, stats.u_dd, stats.u_yd, stats.u_ok
        else:
            mk, vk = p["depth_mean"], p["depth_var"]
            nd, xd, yd, ok = ((stats.v_nd, stats.v_xd, stats.v_yd, stats.v_ok) if key == "v" else
                              (stats.un_nd, stats.un_xd, stats.un_yd, stats.un_ok))
            dd = nd
        log_prior_trunc = log_floor_mass(np.array(mk / math.sqrt(b0 / a0 * vk)),
                                         np.array(2.0 * a0), kappa / math.sqrt(vk), log_t_cdf)
        b1 = -nd
        b2 = -xd
        a33 = dd + 1.0 / vk
        e3 = -yd + mk / vk
        # g = A^{-1} b  (A is per dyad: broadcast over configurations)
        q1 = (A22[:, None] * b1 - A12[:, None] * b2) / detA[:, None]
        q2 = (A11[:, None] * b2 - A12[:, None] * b1) / detA[:, None]
        schur = a33 - (b1 * q1 + b2 * q2)
        resid = e3 - (q1 * e1[:, None] + q2 * e2[:, None])
        bn = b0 + 0.5 * (stats.syy[:, None] + prior_quad_ab + mk * mk / vk
                         - quad_ab[:, None] - resid * resid / schur)
        mloc = resid / schur
        mscale = np.sqrt(bn / an[:, None] / schur)
        zpost = mloc / mscale
        with np.errstate(invalid="ignore"):
            log_cdf = log_floor_mass(zpost, dof_post[:, None], kappa * np.sqrt(schur), logcdf)
        logev = (base[:, None] - 0.5 * (math.log(va) + math.log(vb) + math.log(vk))
                 - 0.5 * (np.log(detA)[:, None] + np.log(schur)) - an[:, None] * np.log(bn)
                 + log_cdf - log_prior_trunc)
        setattr(out, key, np.where(ok, logev, -np.inf))
        if keep_posterior:
            out.post[key] = (mloc, mscale)
            out.bn[key] = bn
    return out


def log_floor_mass(z, dof, lam, logcdf=log_t_cdf):
    """``log P(c > kappa sigma)`` for a coefficient with Student-t standardised location ``z``
    (``dof`` degrees of freedom) and floor shift ``lam = kappa / (its scale in sigma units)``.

    ``lam = 0``: ``log T_dof(z)`` by ``logcdf``. Otherwise the noncentral-t CDF
    ``F(z; dof, lam)`` by its normal approximation ``Phi((z (1 - 1/(4 dof)) - lam) /
    sqrt(1 + z^2 / (2 dof)))`` (Abramowitz and Stegun 26.7.10): the compiled kernel's
    formula.
    """
    lam = np.asarray(lam, dtype=float)
    if not np.any(lam):
        return logcdf(z, dof)
    return special.log_ndtr(floor_argument(np.asarray(z, dtype=float),
                                           np.asarray(dof, dtype=float), lam))


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp, ``-inf`` for empty rows or rows of ``-inf``."""
    if a.shape[1] == 0:
        return np.full(a.shape[0], -np.inf)
    m = np.max(a, axis=1)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.sum(np.exp(a - safe[:, None]), axis=1))


def class_log_evidence(stats: ConfigStats, ev: ConfigEvidence,
                       out: np.ndarray | None = None) -> np.ndarray:
    """(D, 4) log p(y | class), uniform prior over admissible configurations.

    Classes that ``ev`` did not compute keep their values in ``out``.
    """
    if out is None:
        out = np.empty((len(stats.n), K))
    else:
        out = out.copy()
    if ev.lin is not None:
        out[:, LIN] = ev.lin
    for col, k, arr in ((U, 0, ev.u), (V, 1, ev.v), (UN, 2, ev.un)):
        if arr is not None:
            has = stats.n_admissible[:, k] > 0
            out[:, col] = np.where(has, logsumexp_rows(arr) + stats.log_config_prior[:, k],
                                   -np.inf)
    out[~np.isfinite(out)] = -np.inf
    return out


def config_posterior(t: np.ndarray, y: np.ndarray, h: Any, cls: str, config):
    """Explicit conjugate update for one configuration: (log evidence, mn, Vn, an, bn).

    ``h``: standardised or original :class:`Hyperparameters` (matching ``y``).
    """
    if cls not in CLASSES:
        raise ValueError(f"Unknown class {cls!r}. Valid classes: {list(CLASSES)}.")
    p = _values(h)
    X = design(t, cls, config)
    m, v = prior_moments(h, cls)
    lam0 = np.diag(1.0 / v)
    lam_n = lam0 + X.T @ X
    eta = lam0 @ m + X.T @ y
    Vn = np.linalg.inv(lam_n)
    mn = Vn @ eta
    a0, b0 = p["noise_shape"], p["noise_scale"]
    an = a0 + 0.5 * len(y)
    bn = b0 + 0.5 * (y @ y + m @ lam0 @ m - eta @ mn)
    logdet = np.linalg.slogdet(lam_n)[1]
    logev = (-0.5 * len(y) * _LOG2PI - 0.5 * np.sum(np.log(v)) - 0.5 * logdet
             + a0 * math.log(b0) - an * math.log(bn)
             + special.gammaln(an) - special.gammaln(a0))
    if cls != "linear":
        kappa = float(p.get("size_floor", DEFAULT_SIZE_FLOOR))
        z_post = mn[-1] / math.sqrt(bn / an * Vn[-1, -1])
        z_prior = m[-1] / math.sqrt(b0 / a0 * v[-1])
        logev += float(log_floor_mass(z_post, 2 * an, kappa / math.sqrt(Vn[-1, -1]))) - float(
            log_floor_mass(z_prior, 2 * a0, kappa / math.sqrt(v[-1])))
    return logev, mn, Vn, an, bn
