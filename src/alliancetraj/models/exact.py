r"""Exact Bayesian change-point engine (``classify(method="exact")``).

Every dyad's scores are explained by four Bayesian regression models on the
session number, one per class in :data:`alliancetraj.CLASSES`. Each model is
conjugate given its discrete change points, so its marginal likelihood is closed
form; the engine sums it over **every** admissible change-point configuration.
Sign and shape constraints enter through exact truncation terms. Class
probabilities are therefore exact posterior probabilities under the model and
priors below (floating-point precision; no sampling, no search heuristic).

The model
---------
A dyad has observed sessions :math:`t_1 < \dots < t_n` (actual session numbers:
gaps and irregular spacing are used as they are) and scores :math:`y`. Let
:math:`x = t - 1`. Given a class :math:`k` and a configuration :math:`\tau`,

.. math::

    y \mid \theta, \sigma^2, \tau, k \sim \mathcal N(X_{k\tau}\,\theta, \sigma^2 I),\qquad
    \sigma^2 \sim \mathrm{InvGamma}(\alpha, \beta),\qquad
    \theta \mid \sigma^2 \sim \mathcal N(m_k, \sigma^2 \operatorname{diag} v_k)
    \text{ restricted to } \theta_{\text{last}} > 0 \text{ (classes 2-4)},

with the prior renormalised on the constrained region. Each class has its own
:math:`\sigma^2` (four separate models). The designs:

``linear``
    :math:`X = [1, x]`, :math:`\theta = (a, b)` (level at session 1, slope);
    no configuration.
``u_shaped``
    :math:`\tau = w`, the session of the minimum, on the half-session grid
    :math:`\{t_1 + \mu, t_1 + \mu + \tfrac12, \dots, t_n - \mu\}` (``u_margin``
    :math:`\mu = 1` keeps the minimum inside treatment); with
    :math:`h = \max(w - t_1, t_n - w)`, :math:`X = [1, ((t - w)/h)^2]`,
    :math:`\theta = (a, c)`, :math:`c > 0`. The parabola is convex with its
    minimum at :math:`w`; :math:`c` is the height of the farther end above the
    minimum (the amplitude).
``v_shaped``
    :math:`\tau = (r, e)`: the rupture session :math:`r = t_i` (first session of
    the drop) and the repair session :math:`e = t_j` (first session back on the
    trend), both observed, :math:`i \ge 3` (two sessions before the rupture),
    :math:`i < j \le n` (at least one observed session from the repair on),
    :math:`e - r \le L` (``max_rupture_length``, default 4 sessions);
    :math:`X = [1, x, -\mathbb 1\{r \le t < e\}]`, :math:`\theta = (a, b, d)`,
    depth :math:`d > 0`.
``unrepaired_rupture``
    :math:`\tau = r = t_i`, :math:`i \ge 3`, at least two observed sessions
    :math:`t \ge r`; :math:`X = [1, x, -\mathbb 1\{t \ge r\}]`, :math:`d > 0`.

Configurations are uniform a priori within a class; classes have prior
probabilities :math:`\pi`. Prior means and variances:
:math:`m = (\text{level\_mean}, \text{slope\_mean}, \text{depth\_mean})`,
:math:`v = (\text{level\_var}, \text{slope\_var}, \text{depth\_var})` (variances
in units of :math:`\sigma^2`), and for ``u_shaped``
:math:`m = (\text{level\_mean}, \text{amplitude\_mean})`,
:math:`v = (\text{level\_var}, \text{amplitude\_var})`.

Closed-form evidence
--------------------
With :math:`\Lambda_0 = \operatorname{diag}(1/v)`,
:math:`\Lambda_n = \Lambda_0 + X^\top X`,
:math:`\eta = \Lambda_0 m + X^\top y`, :math:`m_n = \Lambda_n^{-1}\eta`,
:math:`\alpha_n = \alpha + n/2` and
:math:`\beta_n = \beta + \tfrac12 (y^\top y + m^\top \Lambda_0 m - \eta^\top \Lambda_n^{-1} \eta)`,
the unconstrained evidence is

.. math::

    \log p(y \mid \tau, k) = -\tfrac n2 \log 2\pi + \tfrac12 \log|\Lambda_0|
      - \tfrac12 \log|\Lambda_n| + \alpha \log\beta - \alpha_n \log\beta_n
      + \log\Gamma(\alpha_n) - \log\Gamma(\alpha).

The constraint :math:`\theta_{\text{last}} > 0` multiplies it by
:math:`P(\theta_{\text{last}} > 0 \mid y) / P(\theta_{\text{last}} > 0)`: under the
normal-inverse-gamma model both are Student-t probabilities,
:math:`T_{2\alpha_n}\!\big(m_{n,\text{last}} / \sqrt{(\beta_n/\alpha_n)(\Lambda_n^{-1})_{\text{last}}}\big)`
and :math:`T_{2\alpha}\!\big(m_{\text{last}} / \sqrt{(\beta/\alpha) v_{\text{last}}}\big)`.
The class evidence is :math:`p(y \mid k) = |\mathcal T_k|^{-1} \sum_\tau p(y \mid \tau, k)`
and :math:`P(k \mid y) \propto \pi_k\, p(y \mid k)`.

Cumulative sums of the masked moments over the session grid give every
configuration's :math:`X^\top X` and :math:`X^\top y` at once; the trend block is
shared by all rupture configurations, so each configuration costs a Schur
complement, not a matrix inverse.

Pooling (empirical Bayes)
-------------------------
By default the hyperparameters :math:`(\alpha, \beta, m, v)` are estimated from the
whole cohort by maximising the total marginal likelihood
:math:`\sum_i \log \sum_k \pi_k\, p(y_i \mid k)` (L-BFGS-B with the analytic
gradient over the log-variances, the means and the class proportions' logits,
from moment-based starting values, on a deterministic subsample of at most
``eb_max_dyads`` dyads; the class proportions are then re-estimated by EM on all
dyads). The prior mean
depth and amplitude are kept at or above one typical residual SD,
:math:`\sqrt{\beta/\alpha}`: a "rupture" or "U" smaller than the noise cannot be told
from a flat series, and without this bound short noisy series let the ``u_shaped``
class absorb the ``linear`` one (the convention of Stiles et al. 2004 that a
deflection counts from about one SD). Scores are
standardised internally by the cohort mean and SD; reported hyperparameters and
log evidences are on the original score scale. Fixed, user-given priors are an
option (``hyperparameters=``).

Change points reported
----------------------
Under the dyad's most probable class: the posterior mode of the rupture and
repair sessions with the bounds of their 90% highest-probability credible sets,
the posterior mean depth (a mixture of truncated Student-t means) with an
equal-tailed 90% interval, and for ``u_shaped`` the posterior mode of the
minimum's session.

Computation
-----------
Dyads are processed in blocks of ``chunk_size`` by up to two threads (BLAS is held
to one thread meanwhile). Pass 1 computes every dyad's four class evidences (kept,
32 bytes a dyad) and EM on them gives the class proportions; pass 2 evaluates each
dyad's configurations again only under its most probable class, for the change
points. Student-t log CDFs are read from per-dof cubic tables (absolute error below
1e-9; :class:`alliancetraj.models.tcdf.LogTCdf`) from 2,000 dyads on. The
empirical-Bayes objective and its gradient come from one compiled pass over the
configurations (:func:`alliancetraj.models._kernels.class_evidence_kernel`, numba,
installed with PyMC; the PyMC mixture's likelihood is the same kernel); the
noise-shape derivative, a forward difference, runs beside it on a second thread.
The depth mean and quantiles of the truncated-t mixtures are solved per dyad by a
compiled safeguarded Halley iteration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from ..errors import ConvergenceWarning
from ..io import PanelArrays
from ..results import CLASSES, ClassificationResult
from .tcdf import LogTCdf as _LogTCdf
from .tcdf import log_t_cdf as _log_t_cdf
from .tcdf import t_pdf_log as _t_pdf_log

__all__ = [
    "MIN_SESSIONS",
    "ExactHyperparameters",
    "classify_exact",
    "dyad_posterior",
    "sample_prior_predictive",
]

#: Shortest series the engine accepts (two sessions before a rupture, one in it and one after).
MIN_SESSIONS = 4
_LOG2PI = math.log(2.0 * math.pi)
_K = len(CLASSES)
_LIN, _U, _V, _UN = range(4)


# =============================================================================== hyperparameters
@dataclass(frozen=True)
class ExactHyperparameters:
    """Prior hyperparameters of the exact engine (original score units).

    Variances are in units of the residual variance :math:`\\sigma^2` (the
    normal-inverse-gamma convention). ``class_probs`` follows :data:`CLASSES`.
    """

    noise_shape: float = 3.0
    noise_scale: float = 0.1
    level_mean: float = 3.5
    level_var: float = 25.0
    slope_mean: float = 0.0
    slope_var: float = 0.05
    depth_mean: float = 0.8
    depth_var: float = 9.0
    amplitude_mean: float = 0.8
    amplitude_var: float = 9.0
    class_probs: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "class_probs":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
                raise ValueError(
                    f"The '{f.name}' hyperparameter must be a finite number. Got {value!r} instead."
                )
            if (f.name.endswith("_var") or f.name.startswith("noise_")) and value <= 0:
                raise ValueError(
                    f"The '{f.name}' hyperparameter must be > 0. Got {value!r} instead."
                )
        p = np.asarray(self.class_probs, dtype=float)
        if p.shape != (_K,) or np.any(~np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise ValueError(
                f"The 'class_probs' hyperparameter must be {_K} non-negative numbers in the order "
                f"{list(CLASSES)}. Got {self.class_probs!r} instead."
            )
        object.__setattr__(self, "class_probs", tuple(float(v) for v in p / p.sum()))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExactHyperparameters:
        """Build from a mapping (e.g. ``result.hyperparameters``); extra keys are ignored."""
        names = {f.name for f in fields(cls)}
        # result.hyperparameters also carries how they were obtained: not hyperparameters
        unknown = [k for k in values
                   if k not in names and not k.startswith("eb_") and k != "source"]
        if unknown:
            raise ValueError(f"Unknown hyperparameter name(s): {unknown}. Valid names: {sorted(names)}.")
        kwargs = {k: v for k, v in values.items() if k in names}
        if "class_probs" in kwargs:
            cp = kwargs["class_probs"]
            if isinstance(cp, Mapping):
                cp = [cp[c] for c in CLASSES]
            kwargs["class_probs"] = tuple(float(v) for v in cp)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_probs"] = list(self.class_probs)
        return d

    # -- standardisation: y' = (y - loc) / sd -----------------------------------------------
    def standardise(self, loc: float, sd: float) -> ExactHyperparameters:
        return replace(
            self,
            noise_scale=self.noise_scale / sd**2,
            level_mean=(self.level_mean - loc) / sd,
            slope_mean=self.slope_mean / sd,
            depth_mean=self.depth_mean / sd,
            amplitude_mean=self.amplitude_mean / sd,
        )

    def unstandardise(self, loc: float, sd: float) -> ExactHyperparameters:
        return replace(
            self,
            noise_scale=self.noise_scale * sd**2,
            level_mean=self.level_mean * sd + loc,
            slope_mean=self.slope_mean * sd,
            depth_mean=self.depth_mean * sd,
            amplitude_mean=self.amplitude_mean * sd,
        )


# The continuous hyperparameters optimised by empirical Bayes, and their transforms.
_THETA = (
    ("noise_shape", "log"), ("noise_scale", "logratio"),
    ("level_mean", "id"), ("level_var", "log"),
    ("slope_mean", "id"), ("slope_var", "log"),
    ("depth_mean", "lognoise"), ("depth_var", "log"),
    ("amplitude_mean", "lognoise"), ("amplitude_var", "log"),
)
#: Lower bound of the prior mean depth and amplitude, in typical residual SDs
#: (sqrt(noise_scale / noise_shape)), during empirical Bayes (``min_effect``).
MIN_EFFECT = 1.0
_THETA_BOUNDS = {
    "noise_shape": (math.log(0.3), math.log(200.0)),
    "noise_scale": (math.log(1e-6), math.log(1e2)),
    "level_mean": (-10.0, 10.0),
    "level_var": (math.log(1e-2), math.log(1e6)),
    "slope_mean": (-2.0, 2.0),
    "slope_var": (math.log(1e-8), math.log(1e3)),
    "depth_mean": (math.log(MIN_EFFECT), math.log(50.0)),
    "depth_var": (math.log(1e-3), math.log(1e5)),
    "amplitude_mean": (math.log(MIN_EFFECT), math.log(50.0)),
    "amplitude_var": (math.log(1e-3), math.log(1e5)),
}


def _to_theta(h: ExactHyperparameters) -> np.ndarray:
    """Optimiser coordinates.

    The noise scale enters as log(scale / shape) (less correlated with the shape);
    the prior mean depth and amplitude as the log of their ratio to the typical
    residual SD sqrt(scale / shape), so that their lower bound (``MIN_EFFECT``) is a
    box constraint. Positive values must be positive here (means included).
    """
    typical_sd = math.sqrt(h.noise_scale / h.noise_shape)
    out = []
    for n, t in _THETA:
        v = getattr(h, n)
        if t == "log":
            out.append(math.log(v))
        elif t == "logratio":
            out.append(math.log(v / h.noise_shape))
        elif t == "lognoise":
            out.append(math.log(max(v, 1e-12) / typical_sd))
        else:
            out.append(v)
    return np.array(out)


def _from_theta(theta: np.ndarray, class_probs) -> ExactHyperparameters:
    kw = {}
    for (n, t), v in zip(_THETA, theta):
        kw[n] = math.exp(v) if t in ("log", "logratio", "lognoise") else float(v)
    kw["noise_scale"] *= kw["noise_shape"]
    typical_sd = math.sqrt(kw["noise_scale"] / kw["noise_shape"])
    for n, t in _THETA:
        if t == "lognoise":
            kw[n] *= typical_sd
    return ExactHyperparameters(**kw, class_probs=tuple(class_probs))


# ============================================================================ sufficient statistics
@dataclass
class _Stats:
    """Data-only (hyperparameter-free) statistics of a chunk of dyads, standardised scores."""

    n: np.ndarray            # (D,)
    syy: np.ndarray          # (D,)
    lin: dict[str, np.ndarray]   # per dyad: s1 (=n), sx, sxx, sy, sxy
    u: dict[str, np.ndarray]     # (D, W): sz, szz, szy ; admissible mask
    v: dict[str, np.ndarray]     # (D, Kv): nd, xd, yd ; admissible mask
    un: dict[str, np.ndarray]    # (D, Ku)
    u_vertex: np.ndarray     # (W,) session numbers of the vertex grid
    v_rup: np.ndarray        # (Kv,) rupture session
    v_rep: np.ndarray        # (Kv,) repair session
    un_rup: np.ndarray       # (Ku,) rupture session
    log_prior: np.ndarray    # (D, 3): -log #admissible for u, v, un (or -inf-safe)
    n_admissible: np.ndarray  # (D, 3)
    sessions_key: np.ndarray  # (D, B) uint8: the dyad's observed sessions, bit-packed


@dataclass(frozen=True)
class _Settings:
    max_rupture_length: int = 4
    u_margin: float = 1.0
    min_pre: int = 2
    min_drop: int = 2


def _chunk_stats(scores: np.ndarray, mask: np.ndarray, grid: np.ndarray,
                 settings: _Settings, classes: tuple[str, ...] = ("u", "v", "un")) -> _Stats:
    """Compute every configuration's sufficient statistics for a block of dyads.

    ``classes`` limits the configuration statistics to some of ``u``, ``v``, ``un``
    (the others have no configurations: zero admissible, log prior -inf).
    """
    D, T = scores.shape
    w = mask.astype(float)
    y = np.where(mask, scores, 0.0)
    x = (grid - 1).astype(float)
    n = w.sum(axis=1)
    wy = w * y
    lin = {
        "sx": w @ x,
        "sxx": w @ (x * x),
        "sy": wy.sum(axis=1),
        "sxy": wy @ x,
    }
    syy = (wy * y).sum(axis=1)

    # cumulative sums with a leading zero: C[:, j] = sum over grid indices < j
    c0 = np.concatenate([np.zeros((D, 1)), np.cumsum(w, axis=1)], axis=1)
    c1 = np.concatenate([np.zeros((D, 1)), np.cumsum(w * x, axis=1)], axis=1)
    cy = np.concatenate([np.zeros((D, 1)), np.cumsum(wy, axis=1)], axis=1)

    # v_shaped: (r, e) grid index pairs with 1 <= e - r <= L
    L = settings.max_rupture_length
    rr, ee = [], []
    for r in range(T if "v" in classes else 0):
        for e in range(r + 1, min(T, r + L + 1)):
            rr.append(r)
            ee.append(e)
    rr = np.asarray(rr, dtype=np.int64)
    ee = np.asarray(ee, dtype=np.int64)
    v = {
        "nd": c0[:, ee] - c0[:, rr],
        "xd": c1[:, ee] - c1[:, rr],
        "yd": cy[:, ee] - cy[:, rr],
    }
    v["ok"] = mask[:, rr] & mask[:, ee] & (c0[:, rr] >= settings.min_pre) if len(rr) else \
        np.zeros((D, 0), dtype=bool)

    # unrepaired: r grid index, drop to the end
    ru = np.arange(T if "un" in classes else 0, dtype=np.int64)
    un = {
        "nd": n[:, None] - c0[:, ru],
        "xd": lin["sx"][:, None] - c1[:, ru],
        "yd": lin["sy"][:, None] - cy[:, ru],
    }
    un["ok"] = mask[:, ru] & (c0[:, ru] >= settings.min_pre) & (un["nd"] >= settings.min_drop)

    # u_shaped: vertex on the half-session grid, normalised by the farther end
    first = grid[np.argmax(mask, axis=1)].astype(float)
    last = grid[T - 1 - np.argmax(mask[:, ::-1], axis=1)].astype(float)
    lo, hi = grid[0] + settings.u_margin, grid[-1] - settings.u_margin
    vertex = np.arange(lo, hi + 0.25, 0.5) if hi >= lo and "u" in classes else np.zeros(0)
    t = grid.astype(float)
    p2 = (t[:, None] - vertex[None, :]) ** 2          # (T, W)
    h = np.maximum(vertex[None, :] - first[:, None], last[:, None] - vertex[None, :])
    h = np.maximum(h, 1e-12)
    h2 = h * h
    u = {
        "sz": (w @ p2) / h2,
        "szz": (w @ (p2 * p2)) / (h2 * h2),
        "szy": (wy @ p2) / h2,
    }
    u["ok"] = (vertex[None, :] >= first[:, None] + settings.u_margin - 1e-9) & \
              (vertex[None, :] <= last[:, None] - settings.u_margin + 1e-9)

    n_adm = np.stack([u["ok"].sum(axis=1), v["ok"].sum(axis=1), un["ok"].sum(axis=1)], axis=1)
    with np.errstate(divide="ignore"):
        log_prior = -np.log(n_adm.astype(float))
    return _Stats(
        n=n, syy=syy, lin=lin, u=u, v=v, un=un, u_vertex=vertex,
        v_rup=grid[rr].astype(float) if len(rr) else np.zeros(0),
        v_rep=grid[ee].astype(float) if len(ee) else np.zeros(0),
        un_rup=grid[ru].astype(float), log_prior=log_prior, n_admissible=n_adm,
        sessions_key=np.packbits(mask, axis=1),
    )


# ============================================================================== evidence algebra
@dataclass
class _ConfigEvidence:
    """Per-configuration log evidence (including the within-class log prior) and posterior terms."""

    lin: np.ndarray                      # (D,)
    u: np.ndarray                        # (D, W)
    v: np.ndarray                        # (D, Kv)
    un: np.ndarray                       # (D, Ku)
    # posterior of the constrained coefficient (loc, scale), dof, for depth summaries
    post: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    dof: np.ndarray | None = None


def _evidence(stats: _Stats, h: ExactHyperparameters, *, keep_posterior: bool = False,
              classes: tuple[str, ...] = ("lin", "u", "v", "un"),
              logcdf=_log_t_cdf) -> _ConfigEvidence:
    """Log evidence of every admissible configuration (standardised units).

    ``classes`` limits the work to some classes (the others are left as None).
    """
    a0, b0 = h.noise_shape, h.noise_scale
    n = stats.n
    an = a0 + 0.5 * n
    base = -0.5 * n * _LOG2PI + a0 * math.log(b0) + special.gammaln(an) - special.gammaln(a0)
    dof_post = 2.0 * an

    # ---- trend block shared by linear, v_shaped and unrepaired (design [1, x]) -------------
    ma, va, mb, vb = h.level_mean, h.level_var, h.slope_mean, h.slope_var
    A11 = n + 1.0 / va
    A12 = stats.lin["sx"]
    A22 = stats.lin["sxx"] + 1.0 / vb
    e1 = stats.lin["sy"] + ma / va
    e2 = stats.lin["sxy"] + mb / vb
    detA = A11 * A22 - A12 * A12
    # A^{-1} eta_ab
    g1 = (A22 * e1 - A12 * e2) / detA
    g2 = (A11 * e2 - A12 * e1) / detA
    quad_ab = e1 * g1 + e2 * g2
    prior_quad_ab = ma * ma / va + mb * mb / vb
    bn_lin = b0 + 0.5 * (stats.syy + prior_quad_ab - quad_ab)
    lin = base - 0.5 * (math.log(va) + math.log(vb)) - 0.5 * np.log(detA) - an * np.log(bn_lin)

    out = _ConfigEvidence(lin=lin, u=None, v=None, un=None, dof=dof_post)  # type: ignore[arg-type]

    # ---- rupture classes: add column c = -indicator, coefficient d > 0 ---------------------
    md, vd = h.depth_mean, h.depth_var
    log_prior_trunc = _log_t_cdf(np.array(md / math.sqrt(b0 / a0 * vd)), np.array(2.0 * a0))
    for key in ("v", "un"):
        if key not in classes:
            continue
        s = stats.v if key == "v" else stats.un
        b1 = -s["nd"]
        b2 = -s["xd"]
        a33 = s["nd"] + 1.0 / vd
        e3 = -s["yd"] + md / vd
        # g = A^{-1} b  (A is per dyad: broadcast over configurations)
        q1 = (A22[:, None] * b1 - A12[:, None] * b2) / detA[:, None]
        q2 = (A11[:, None] * b2 - A12[:, None] * b1) / detA[:, None]
        schur = a33 - (b1 * q1 + b2 * q2)
        resid = e3 - (q1 * e1[:, None] + q2 * e2[:, None])
        quad = quad_ab[:, None] + resid * resid / schur
        bn = b0 + 0.5 * (stats.syy[:, None] + prior_quad_ab + md * md / vd - quad)
        mloc = resid / schur
        mscale = np.sqrt(bn / an[:, None] / schur)
        zpost = mloc / mscale
        log_cdf = logcdf(zpost, dof_post[:, None])
        logev = (base[:, None] - 0.5 * (math.log(va) + math.log(vb) + math.log(vd))
                 - 0.5 * (np.log(detA)[:, None] + np.log(schur)) - an[:, None] * np.log(bn)
                 + log_cdf - log_prior_trunc)
        ok = s["ok"]
        logev = np.where(ok, logev, -np.inf)
        setattr(out, key, logev)
        if keep_posterior:
            out.post[key] = (mloc, mscale)

    # ---- u_shaped: design [1, z], coefficient c > 0 -------------------------------------------
    if "u" not in classes:
        return out
    mc, vc = h.amplitude_mean, h.amplitude_var
    log_prior_trunc_u = _log_t_cdf(np.array(mc / math.sqrt(b0 / a0 * vc)), np.array(2.0 * a0))
    s = stats.u
    L11 = n[:, None] + 1.0 / va
    L12 = s["sz"]
    L22 = s["szz"] + 1.0 / vc
    f1 = stats.lin["sy"][:, None] + ma / va
    f2 = s["szy"] + mc / vc
    det = L11 * L22 - L12 * L12
    quad = (L22 * f1 * f1 - 2.0 * L12 * f1 * f2 + L11 * f2 * f2) / det
    bn = b0 + 0.5 * (stats.syy[:, None] + ma * ma / va + mc * mc / vc - quad)
    cloc = (L11 * f2 - L12 * f1) / det
    cscale = np.sqrt(bn / an[:, None] * L11 / det)
    zpost = cloc / cscale
    log_cdf = logcdf(zpost, dof_post[:, None])
    logev = (base[:, None] - 0.5 * (math.log(va) + math.log(vc)) - 0.5 * np.log(det)
             - an[:, None] * np.log(bn) + log_cdf - log_prior_trunc_u)
    out.u = np.where(s["ok"], logev, -np.inf)
    if keep_posterior:
        out.post["u"] = (cloc, cscale)
    return out


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    if a.shape[1] == 0:
        return np.full(a.shape[0], -np.inf)
    m = np.max(a, axis=1)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.sum(np.exp(a - safe[:, None]), axis=1))


def _class_log_evidence(stats: _Stats, ev: _ConfigEvidence,
                        out: np.ndarray | None = None) -> np.ndarray:
    """(D, 4) log p(y | class), uniform prior over admissible configurations.

    Classes that ``ev`` did not compute keep their values in ``out``.
    """
    if out is None:
        out = np.empty((len(stats.n), _K))
    else:
        out = out.copy()
    if ev.lin is not None:
        out[:, _LIN] = ev.lin
    for col, k, arr in ((_U, 0, ev.u), (_V, 1, ev.v), (_UN, 2, ev.un)):
        if arr is not None:
            has = stats.n_admissible[:, k] > 0
            out[:, col] = np.where(has, _logsumexp_rows(arr) + np.where(has, stats.log_prior[:, k],
                                                                         0.0), -np.inf)
    out[~np.isfinite(out)] = -np.inf
    return out


def _em_prepare(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-scaled likelihoods ``exp(L - max)`` (finite) and the row maxima, for :func:`_em_terms`."""
    m = np.max(L, axis=1, keepdims=True)
    return np.exp(L - m), m


def _em_terms(prepared: tuple[np.ndarray, np.ndarray], pi: np.ndarray) -> tuple[float, np.ndarray]:
    """One EM step's additive pieces over a set of dyads: (log likelihood, summed responsibilities).

    Both are sums over dyads, so blocks of a cohort combine by addition (the Dask
    scale-out maps this over partitions and sums).
    """
    lik, m = prepared
    mix = lik @ pi
    ll = float(np.sum(np.log(mix) + m[:, 0]))
    return ll, (lik * pi).T @ (1.0 / mix)


def _em_iterate(step, n_dyads: int, init=None, *, tol: float = 1e-10, max_iter: int = 2000
                ) -> tuple[np.ndarray, float]:
    """EM for the class proportions; ``step(pi)`` returns the summed :func:`_em_terms`."""
    pi = np.full(_K, 1.0 / _K) if init is None else np.asarray(init, dtype=float)
    prev = -np.inf
    for _ in range(max_iter):
        ll, resp = step(pi)
        resp_mean = resp / n_dyads
        pi = np.clip(resp_mean, 1e-12, None)
        pi = pi / pi.sum()
        if ll - prev < tol * max(1.0, abs(ll)):
            break
        prev = ll
    return pi, step(pi)[0]


def _em_class_probs(L: np.ndarray, init=None, *, tol: float = 1e-10, max_iter: int = 2000
                    ) -> tuple[np.ndarray, float]:
    """EM for the class proportions given per-dyad class log evidences; returns (pi, loglik)."""
    prepared = _em_prepare(L)
    return _em_iterate(lambda pi: _em_terms(prepared, pi), L.shape[0], init, tol=tol,
                       max_iter=max_iter)


# ============================================================================ empirical Bayes
def _moment_start(stats_list: list[_Stats]) -> ExactHyperparameters:
    """Starting values from per-dyad least-squares fits of the linear model (standardised)."""
    n = np.concatenate([s.n for s in stats_list])
    sx = np.concatenate([s.lin["sx"] for s in stats_list])
    sxx = np.concatenate([s.lin["sxx"] for s in stats_list])
    sy = np.concatenate([s.lin["sy"] for s in stats_list])
    sxy = np.concatenate([s.lin["sxy"] for s in stats_list])
    syy = np.concatenate([s.syy for s in stats_list])
    det = n * sxx - sx * sx
    ok = det > 1e-9
    b = np.where(ok, (n * sxy - sx * sy) / np.where(ok, det, 1.0), 0.0)
    a = (sy - b * sx) / n
    rss = syy - a * sy - b * sxy
    s2 = np.clip(rss / np.maximum(n - 2, 1), 1e-6, None)
    s2_typ = float(np.median(s2))
    shape = 3.0
    var_b = float(np.var(b[ok])) if ok.sum() > 2 else 0.01
    return ExactHyperparameters(
        noise_shape=shape,
        noise_scale=s2_typ * (shape - 1.0) * 0.7,
        level_mean=float(np.mean(a)),
        level_var=max(float(np.var(a)) / s2_typ, 1.0),
        slope_mean=float(np.mean(b)),
        slope_var=max(var_b / s2_typ, 1e-4),
        depth_mean=3.0 * math.sqrt(s2_typ),
        depth_var=1.0,
        amplitude_mean=3.0 * math.sqrt(s2_typ),
        amplitude_var=1.0,
    )


def _softmax_pi(logits: np.ndarray) -> np.ndarray:
    z = np.concatenate([[0.0], logits])
    z = np.exp(z - z.max())
    return z / z.sum()


def _step_sizes(theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    hi = np.array([_THETA_BOUNDS[n][1] for n, _ in _THETA])
    h = step * np.maximum(1.0, np.abs(theta))
    return np.where(theta + h > hi, -h, h)


def _mixture_terms(L: np.ndarray, pi: np.ndarray) -> tuple[float, np.ndarray]:
    """Sum over dyads of log sum_k pi_k exp(L_dk), and the (D, K) class responsibilities."""
    m = L.max(axis=1)
    lik = np.exp(L - m[:, None]) * pi
    tot = lik.sum(axis=1)
    with np.errstate(divide="ignore"):
        ll = float(np.sum(m + np.log(tot)))
    return ll, lik / tot[:, None]


def _kernel_view(stats: _Stats) -> dict[str, Any]:
    """The inputs of the compiled class-evidence kernel that do not depend on the priors.

    Dyads are grouped by session pattern (identical score-free statistics). Cached on
    the statistics object: an empirical-Bayes fit evaluates the same blocks many times.
    """
    view = getattr(stats, "_kernel_view", None)
    if view is not None:
        return view
    # named as the kernel's inputs (alliancetraj.models._kernels.DATA_INPUTS)
    per_dyad = {"n": stats.n, "lcp": stats.log_prior, "sx": stats.lin["sx"],
                "sxx": stats.lin["sxx"], "u_sz": stats.u["sz"], "u_szz": stats.u["szz"],
                "u_ok": stats.u["ok"], "v_nd": stats.v["nd"], "v_xd": stats.v["xd"],
                "v_ok": stats.v["ok"], "un_nd": stats.un["nd"], "un_xd": stats.un["xd"],
                "un_ok": stats.un["ok"]}
    # dyads observed at the same sessions share every score-free statistic
    key = np.ascontiguousarray(stats.sessions_key)
    _, first, pattern = np.unique(key.view(np.dtype((np.void, key.shape[1]))),
                                  return_index=True, return_inverse=True)
    view = {k: np.ascontiguousarray(np.asarray(v)[first]) for k, v in per_dyad.items()}
    view["pattern"] = pattern.reshape(-1).astype(np.int64)
    view.update({k: np.ascontiguousarray(v, dtype=float) for k, v in (
        ("syy", stats.syy), ("sy", stats.lin["sy"]), ("sxy", stats.lin["sxy"]),
        ("u_szy", stats.u["szy"]), ("v_yd", stats.v["yd"]), ("un_yd", stats.un["yd"]))})
    stats._kernel_view = view  # type: ignore[attr-defined]
    return view


def _kernel_class_evidence(stats: _Stats, h: ExactHyperparameters, table: _LogTCdf,
                           grad: bool) -> tuple[np.ndarray, np.ndarray]:
    """(D, 4) class log evidences by the compiled kernel and, with ``grad``, the (D, 4, 9)
    derivatives in the natural hyperparameters (:data:`_kernels.THETA` order).

    Equal to :func:`_class_log_evidence` of :func:`_evidence` up to the t-CDF table's
    accuracy (-inf for classes without an admissible configuration).
    """
    from . import _kernels

    v = _kernel_view(stats)
    a0 = h.noise_shape
    dof = 2.0 * a0 + v["n"]
    inputs = {**v, "an": 0.5 * dof, "rows": table.rows_for(dof)}
    hd = {k: getattr(h, k) for k in _kernels.THETA}
    C, J = _kernels.class_evidence_kernel(
        np.array(list(hd.values())),
        *(inputs[k] for k in _kernels.DATA_INPUTS if not k.startswith("tab_")),
        *table.arrays, grad)
    C[C <= _kernels.NEG] = -np.inf     # no admissible configuration
    return C + _kernels.class_offsets(hd, a0, stats.n), J


def _class_offsets_grad(h: ExactHyperparameters) -> np.ndarray:
    """(4, 9) derivatives of the configuration-free terms of the class log evidences
    (:func:`alliancetraj.models._kernels.class_offsets`; the same for every dyad) in the
    natural hyperparameters (:data:`alliancetraj.models._kernels.THETA` order)."""
    a0, b0 = h.noise_shape, h.noise_scale
    # natural order: b0, ma, va, mb, vb, md, vd, mc, vc
    G = np.zeros((_K, 9))
    G[:, 0] = a0 / b0
    G[:, 2] = -0.5 / h.level_var
    G[[_LIN, _V, _UN], 4] = -0.5 / h.slope_var
    G[[_V, _UN], 6] = -0.5 / h.depth_var
    G[_U, 8] = -0.5 / h.amplitude_var
    # the prior truncation terms -log T_{2 a0}(m / sqrt(b0 v / a0))
    for rows, m_i, v_i, mean, var in (([_V, _UN], 5, 6, h.depth_mean, h.depth_var),
                                      ([_U], 7, 8, h.amplitude_mean, h.amplitude_var)):
        scale = math.sqrt(b0 / a0 * var)
        z = mean / scale
        hazard = math.exp(float(_t_pdf_log(z, 2.0 * a0) - _log_t_cdf(z, 2.0 * a0)))
        G[rows, m_i] -= hazard / scale
        G[rows, v_i] += 0.5 * hazard * z / var
        G[rows, 0] += 0.5 * hazard * z / b0
    return G


def eb_partial(stats_list: list[_Stats], theta: np.ndarray, pi: np.ndarray
               ) -> tuple[float, np.ndarray, np.ndarray]:
    """The empirical-Bayes objective's additive pieces over a set of dyads.

    Returns ``(ll, grad, resp_sum)``: the total log marginal likelihood at
    ``theta`` (standardised units), its gradient in ``theta`` (analytic, except
    the noise shape: a forward difference) and the summed class responsibilities.
    All three are sums over dyads, so partitions of a cohort combine by addition
    (this is what the Dask scale-out reduces). The class evidences and their
    derivatives come from the compiled kernel
    (:func:`alliancetraj.models._kernels.class_evidence_kernel`).
    """
    h0 = _from_theta(theta, pi)
    step = _step_sizes(theta)[0]
    th = theta.copy()
    th[0] += step
    h_shift = _from_theta(th, pi)
    # fresh tables per call (the dofs move with the noise shape); the forward difference
    # below differentiates the interpolant, whose error is smooth in the dof, so the
    # difference keeps ~1e-9 accuracy
    table, table_shift = _LogTCdf(), _LogTCdf()
    g_nat = np.zeros(9)
    resp_sum = np.zeros(_K)
    ll0 = 0.0

    def shifted() -> float:
        return sum(_mixture_terms(_kernel_class_evidence(s, h_shift, table_shift, grad=False)[0],
                                  pi)[0] for s in stats_list)

    offset_grad = _class_offsets_grad(h0)   # the same for every dyad
    # the compiled kernel releases the GIL: the shifted pass runs beside the main one
    with ThreadPoolExecutor(max_workers=1) as pool:
        ll_shift_future = pool.submit(shifted)
        for s in stats_list:
            L, J = _kernel_class_evidence(s, h0, table, grad=True)
            ll, r = _mixture_terms(L, pi)
            ll0 += ll
            R = r.sum(axis=0)
            resp_sum += R
            g_nat += np.einsum("dk,dkj->j", r, J) + R @ offset_grad
        ll_shift = ll_shift_future.result()
    # to the optimiser's coordinates (see _to_theta): log variances, log(b0 / a0), and
    # mean = exp(psi) * sqrt(b0 / a0) for depth and amplitude (theta_0 does not enter it)
    grad = np.zeros(len(_THETA))
    grad[0] = (ll_shift - ll0) / step      # noise shape: d/d dof of T has no closed form
    grad[1] = h0.noise_scale * g_nat[0]
    grad[[2, 4]] = g_nat[[1, 3]]
    grad[[3, 5, 7, 9]] = g_nat[[2, 4, 6, 8]] * np.array(
        [h0.level_var, h0.slope_var, h0.depth_var, h0.amplitude_var])
    for j, k, mean in ((6, 5, h0.depth_mean), (8, 7, h0.amplitude_mean)):
        grad[j] = g_nat[k] * mean
        grad[1] += 0.5 * grad[j]
    return ll0, grad, resp_sum


#: An L-BFGS line-search failure counts as convergence when the best objective moved by
#: less than _STALL_FTOL (relative) over the last _STALL_EVALS evaluations.
_STALL_EVALS = 10
_STALL_FTOL = 1e-7


def _fit_eb(evaluate, start: ExactHyperparameters, *, n_dyads: int, fit_class_probs: bool,
            max_iter: int) -> tuple[ExactHyperparameters, dict[str, Any]]:
    """Maximise the total marginal likelihood over the hyperparameters (empirical Bayes).

    ``evaluate(theta, pi)`` returns the summed pieces of :func:`eb_partial`. The
    continuous hyperparameters (log scale for positive ones) and the class
    proportions (softmax logits) are optimised jointly by L-BFGS-B with the
    gradient of :func:`eb_partial`. The objective is flat along some directions
    (the depth and amplitude spreads trade off against the class proportions), so
    the optimiser keeps 50 correction pairs (more than the 13 unknowns: in effect
    full BFGS) and stops at a relative reduction of 1e-9: with scipy's defaults
    (10 pairs, 1e-7) it stopped on the ridge at points that depended on the
    floating-point summation order (e.g. the block size), and took more steps.
    The class proportions are then re-estimated by EM on all dyads.
    """
    n_theta = len(_THETA)
    bounds = [_THETA_BOUNDS[n] for n, _ in _THETA]
    lo_b = np.array([b[0] for b in bounds])
    hi_b = np.array([b[1] for b in bounds])
    theta0 = np.clip(_to_theta(start), lo_b, hi_b)
    pi0 = np.clip(np.asarray(start.class_probs, dtype=float), 1e-6, None)
    pi0 = pi0 / pi0.sum()
    logits0 = np.log(pi0[1:] / pi0[0])
    best: list[float] = []      # best objective after each evaluation

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = x[:n_theta]
        pi = _softmax_pi(x[n_theta:]) if fit_class_probs else pi0
        ll0, grad_theta, resp = evaluate(theta, pi)
        best.append(min(-ll0 if np.isfinite(ll0) else np.inf, best[-1] if best else np.inf))
        if not np.isfinite(ll0):
            return 1e300, np.zeros_like(x)
        grad = np.zeros_like(x)
        grad[:n_theta] = grad_theta
        if fit_class_probs:
            # d ll / d logit_k = sum_d (resp_dk - pi_k), k = 1..3 (class 0 is the reference)
            grad[n_theta:] = resp[1:] - n_dyads * pi[1:]
        return -ll0, -grad

    x0 = np.concatenate([theta0, logits0]) if fit_class_probs else theta0
    all_bounds = bounds + ([(-20.0, 20.0)] * (_K - 1) if fit_class_probs else [])
    res = optimize.minimize(value_and_grad, x0, jac=True, method="L-BFGS-B", bounds=all_bounds,
                            options={"maxiter": max_iter, "ftol": 1e-9, "gtol": 1e-3,
                                     "maxcor": 50})
    pi = _softmax_pi(res.x[n_theta:]) if fit_class_probs else pi0
    h = _from_theta(res.x[:n_theta], pi)
    converged, message = bool(res.success), str(res.message)
    if not converged and message.startswith("ABNORMAL") and len(best) > _STALL_EVALS:
        # the line search found no decrease: at the optimum the one finite-difference
        # component of the gradient (the noise shape) is no longer consistent with the
        # objective. Converged when the objective stopped moving anyway.
        change = (best[-_STALL_EVALS - 1] - best[-1]) / max(1.0, abs(best[-1]))
        if change < _STALL_FTOL:
            converged = True
            message = (f"line search stalled at the optimum (relative change {change:.1e} "
                       f"over the last {_STALL_EVALS} evaluations)")
    info = {
        "eb_converged": converged,
        "eb_message": message,
        "eb_iterations": int(res.nit),
        "eb_evaluations": len(best),
        "eb_loglik_subsample": float(-res.fun),
    }
    return h, info


# ============================================================================== summaries
def _hpd_bounds(weights: np.ndarray, values: np.ndarray, level: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mode and bounds of the highest-probability set (level) of a discrete posterior.

    weights: (D, M) rows summing to 1 over values (M,). Returns mode, low, high.
    """
    order = np.argsort(-weights, axis=1, kind="stable")
    sorted_w = np.take_along_axis(weights, order, axis=1)
    cum = np.cumsum(sorted_w, axis=1)
    # number of values needed to reach the level
    k = np.argmax(cum >= level - 1e-12, axis=1) + 1
    in_set = np.arange(weights.shape[1])[None, :] < k[:, None]
    vals = values[order]
    low = np.where(in_set, vals, np.inf).min(axis=1)
    high = np.where(in_set, vals, -np.inf).max(axis=1)
    mode = vals[:, 0]
    return mode, low, high


def _marginal(weights: np.ndarray, positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum configuration weights (D, K) into a marginal over ``values`` via ``positions`` (K,)."""
    idx = np.searchsorted(values, positions)
    out = np.zeros((weights.shape[0], len(values)))
    for j in range(len(values)):
        sel = idx == j
        if sel.any():
            out[:, j] = weights[:, sel].sum(axis=1)
    return out


def _truncated_mixture_depth(w: np.ndarray, loc: np.ndarray, scale: np.ndarray,
                             dof: np.ndarray, level: float, prune: float = 1e-10,
                             table: _LogTCdf | None = None
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and equal-tailed interval of a mixture of Student-t truncated to (0, inf).

    w, loc, scale: (D, K) (rows of w sum to 1); dof: (D,). Configurations with
    weight below ``prune`` are dropped (their total mass is below K * prune).
    The component means are closed form,
    E[X | X > 0] = m + s kappa, kappa = t_nu(a) (nu + a^2) / ((nu - 1) T_nu(-a)),
    a = -m / s; the quantiles solve the mixture CDF, written in survival form
    1 - F_k(x) = T(-(x - m) / s) / T(m / s) (accurate also when a component's
    mass above zero is tiny), to 1e-12 by safeguarded Newton steps per dyad
    (compiled kernel :func:`~alliancetraj.models._kernels.truncated_t_mixture`).
    Student-t CDFs come from the cubic tables of ``table`` (a fresh one if None).
    """
    from . import _kernels

    table = _LogTCdf() if table is None else table
    D = w.shape[0]
    out = np.empty((D, 3))
    if D == 0:
        return out[:, 0], out[:, 1], out[:, 2]
    dof = np.asarray(dof, dtype=float)
    keep = w > prune
    with np.errstate(divide="ignore", invalid="ignore"):
        log_tail = np.where(keep, table(np.where(keep, loc / scale, 0.0), dof[:, None]), 0.0)
    rows = table.rows_for(dof)
    alpha = (1.0 - level) / 2.0
    _kernels.truncated_t_mixture(
        np.ascontiguousarray(w), np.ascontiguousarray(loc), np.ascontiguousarray(scale),
        log_tail, dof, rows, *table.arrays, prune, alpha, 1.0 - alpha, out)
    return out[:, 0], out[:, 1], out[:, 2]


def _changepoints(panel: PanelArrays, loc: float, sd: float, settings: _Settings,
                  h: ExactHyperparameters, L: np.ndarray, labels: np.ndarray, level: float,
                  logcdf=_log_t_cdf) -> pd.DataFrame:
    """Change-point summaries of each dyad under its most probable class.

    Only the labelled class's configurations of each dyad are built and evaluated
    (per class, the statistics and evidence of the dyads that carry its label).
    """
    D = len(L)
    cols = {c: np.full(D, np.nan) for c in (
        "rupture_session", "rupture_low", "rupture_high", "repair_session", "repair_low",
        "repair_high", "depth", "depth_low", "depth_high", "turning_session")}
    # the depth summaries always read tabulated t CDFs (error < 1e-9 in log T)
    table = logcdf if isinstance(logcdf, _LogTCdf) else _LogTCdf()

    for cls, key in ((_V, "v"), (_UN, "un")):
        sel = np.flatnonzero((labels == cls) & np.isfinite(L[:, cls]))
        if len(sel) == 0:
            continue
        stats = _prepare(panel, loc, sd, settings, rows=sel, classes=(key,))
        ev = _evidence(stats, h, keep_posterior=True, classes=(key,), logcdf=logcdf)
        lp = stats.log_prior[:, 1 if key == "v" else 2]
        w = np.exp(getattr(ev, key) + lp[:, None] - L[sel, cls][:, None])
        w = w / w.sum(axis=1, keepdims=True)
        rup = stats.v_rup if key == "v" else stats.un_rup
        values = np.unique(rup)
        marg = _marginal(w, rup, values)
        mode, lo, hi = _hpd_bounds(marg, values, level)
        cols["rupture_session"][sel], cols["rupture_low"][sel], cols["rupture_high"][sel] = \
            mode, lo, hi
        if key == "v":
            rvals = np.unique(stats.v_rep)
            marg = _marginal(w, stats.v_rep, rvals)
            mode, lo, hi = _hpd_bounds(marg, rvals, level)
            cols["repair_session"][sel], cols["repair_low"][sel], cols["repair_high"][sel] = \
                mode, lo, hi
        ploc, pscale = ev.post[key]
        mean, dlo, dhi = _truncated_mixture_depth(w, ploc, pscale, ev.dof, level, table=table)
        cols["depth"][sel], cols["depth_low"][sel], cols["depth_high"][sel] = \
            mean * sd, dlo * sd, dhi * sd

    sel = np.flatnonzero((labels == _U) & np.isfinite(L[:, _U]))
    if len(sel):
        stats = _prepare(panel, loc, sd, settings, rows=sel, classes=("u",))
        # the mode of the vertex needs no normalisation (nor the truncation terms' constants)
        ev = _evidence(stats, h, classes=("u",), logcdf=logcdf)
        cols["turning_session"][sel] = stats.u_vertex[np.argmax(ev.u, axis=1)]
    return pd.DataFrame(cols)


# ================================================================================= public entry
def _panel_chunks(frame: pd.DataFrame, chunk_size: int):
    """Blocks of ``chunk_size`` dyads of a validated frame as ``(dyad ids, PanelArrays)``.

    The frame is sorted by dyad, so a dyad's rows are contiguous: blocks are cut at
    id changes found in one vectorised comparison (no hashing of the ids per block).
    Each block's session grid runs from its own first to last session, as
    :func:`~alliancetraj.io.to_panel` lays it out.
    """
    dyad = frame["dyad"]
    new = dyad.ne(dyad.shift()).fillna(True).to_numpy(dtype=bool, copy=True)
    if len(new):
        new[0] = True
    starts = np.flatnonzero(new)
    row_dyad = np.cumsum(new) - 1
    ids = dyad.iloc[starts]
    sessions = frame["session"].to_numpy(dtype=np.int64)
    scores = frame["score"].to_numpy(dtype=float)
    n_dyads = len(starts)
    for lo in range(0, n_dyads, chunk_size):
        hi = min(lo + chunk_size, n_dyads)
        rows = slice(starts[lo], starts[hi] if hi < n_dyads else len(frame))
        s = sessions[rows]
        first = int(s.min())
        grid = np.arange(first, int(s.max()) + 1, dtype=np.int64)
        block_scores = np.zeros((hi - lo, len(grid)))
        mask = np.zeros((hi - lo, len(grid)), dtype=bool)
        r = row_dyad[rows] - lo
        block_scores[r, s - first] = scores[rows]
        mask[r, s - first] = True
        index = pd.Index(ids.iloc[lo:hi].to_numpy(), name="dyad")
        yield index, PanelArrays(dyads=index, grid=grid, scores=block_scores, mask=mask)


def _standardisation(frame: pd.DataFrame) -> tuple[float, float]:
    y = frame["score"].to_numpy(dtype=float)
    loc = float(np.mean(y))
    return loc, _guard_sd(loc, float(np.std(y)))


def _guard_sd(loc: float, sd: float) -> float:
    """The standardising SD, or 1.0 for (numerically) constant scores."""
    # relative, not absolute: scores in any unit (1e-12 .. 1e12) are standardised alike
    if not np.isfinite(sd) or sd <= max(1e-12 * abs(loc), np.finfo(float).tiny):
        return 1.0
    return sd


def _prepare(panel: PanelArrays, loc: float, sd: float, settings: _Settings,
             rows: np.ndarray | None = None,
             classes: tuple[str, ...] = ("u", "v", "un")) -> _Stats:
    """Sufficient statistics (standardised scores) of a block, or of some of its dyads."""
    scores, mask = panel.scores, panel.mask
    if rows is not None:
        scores, mask = scores[rows], mask[rows]
    return _chunk_stats((scores - loc) / sd, mask, panel.grid, settings, classes)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(
            f"The '{name}' parameter of classify(method='exact') must be an int >= {low}. "
            f"Got {value!r} instead."
        )
    return int(value)


# the engine parallelises over blocks itself; BLAS threads on its small matrix products
# only oversubscribe the cores (measured: 17x slower products under load)
@threadpool_limits.wrap(limits=1, user_api="blas")
def classify_exact(
    frame: pd.DataFrame,
    *,
    hyperparameters: ExactHyperparameters | Mapping[str, Any] | None = None,
    fit_class_probs: bool = True,
    max_rupture_length: int = 4,
    u_margin: float = 1.0,
    credible_level: float = 0.9,
    eb_max_dyads: int = 400,
    eb_max_iter: int = 200,
    chunk_size: int = 2048,
    n_jobs: int | None = None,
    t_cdf: str = "auto",
    progress: bool | None = None,
    seed: int | None = None,
) -> ClassificationResult:
    """Classify trajectories with the exact Bayesian change-point engine.

    Called through :func:`alliancetraj.classify` (``method="exact"``) with a
    validated frame. The model, priors and equations are in the module docstring.

    Parameters
    ----------
    frame : DataFrame
        Validated canonical sessions (``dyad``, ``session``, ``score``).
    hyperparameters : ExactHyperparameters or mapping, optional
        Fixed priors (original score units). ``None`` (default) estimates them by
        empirical Bayes from the whole cohort.
    fit_class_probs : bool, default True
        Estimate the class proportions by EM (also when other hyperparameters are
        fixed); False keeps the given (or uniform) proportions.
    max_rupture_length : int, default 4
        Longest repaired rupture (repair session minus rupture session).
    u_margin : float, default 1.0
        The minimum of a ``u_shaped`` trajectory lies at least this many sessions
        inside the first and last observed sessions.
    credible_level : float, default 0.9
        Level of the change-point credible sets and the depth interval.
    eb_max_dyads : int, default 400
        Empirical Bayes fits the continuous hyperparameters on at most this many
        dyads (every k-th dyad in sorted order: deterministic).
    eb_max_iter : int, default 200
        Iteration limit of the L-BFGS-B optimiser.
    chunk_size : int, default 2048
        Dyads per block; memory is bounded by the block, not the cohort.
    n_jobs : int, optional
        Threads over blocks (default: up to 2 on this kind of machine, never more
        than the CPUs).
    t_cdf : {"auto", "direct", "table"}, default "auto"
        How the Student-t CDFs of the truncation terms are evaluated in the final
        passes: ``"direct"`` calls ``scipy.special.stdtr`` for every configuration;
        ``"table"`` reads cached per-dof tables (absolute error below 1e-9 in the log
        CDF, several times faster); ``"auto"`` uses tables from 2,000 dyads on. The
        empirical-Bayes fit always uses tables, and the change-point depth summaries
        always do.
    progress : bool, optional
        Show a progress bar over blocks (default: only for long runs).
    seed : ignored
        The engine is deterministic; accepted for a uniform ``classify`` interface.

    Returns
    -------
    ClassificationResult
        ``exact=True``; ``log_evidence`` per class (original units);
        ``hyperparameters`` with the empirical-Bayes diagnostics (``eb_*`` keys).

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=60, seed=3)
    >>> res = at.classify(cohort.sessions, method="exact")
    >>> res.probabilities.shape
    (60, 4)
    >>> bool(abs(res.probabilities.sum(axis=1) - 1).max() < 1e-12)
    True
    """
    del seed  # deterministic
    from tqdm.auto import tqdm

    max_rupture_length = _check_int("max_rupture_length", max_rupture_length, 1)
    eb_max_dyads = _check_int("eb_max_dyads", eb_max_dyads, 10)
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    if not 0 < credible_level < 1:
        raise ValueError(
            "The 'credible_level' parameter of classify(method='exact') must be in (0, 1). "
            f"Got {credible_level!r} instead."
        )
    if not (isinstance(u_margin, (int, float)) and u_margin >= 0.5):
        raise ValueError(
            "The 'u_margin' parameter of classify(method='exact') must be a number >= 0.5. "
            f"Got {u_margin!r} instead."
        )
    settings = _Settings(max_rupture_length=max_rupture_length, u_margin=float(u_margin))
    if t_cdf not in ("auto", "direct", "table"):
        raise ValueError(
            "The 't_cdf' parameter of classify(method='exact') must be 'auto', 'direct' or "
            f"'table'. Got {t_cdf!r} instead."
        )
    if n_jobs is None:
        n_jobs = max(1, min(2, os.cpu_count() or 1))
    n_jobs = _check_int("n_jobs", n_jobs, 1)

    loc, sd = _standardisation(frame)
    dyads_all = pd.unique(frame["dyad"])
    n_dyads = len(dyads_all)

    # ---- hyperparameters -----------------------------------------------------------------------
    eb_info: dict[str, Any] = {}
    given = None
    if hyperparameters is not None:
        given = hyperparameters if isinstance(hyperparameters, ExactHyperparameters) else \
            ExactHyperparameters.from_dict(hyperparameters)
    if given is None:
        step = max(1, math.ceil(n_dyads / eb_max_dyads))
        sub_ids = dyads_all[::step]
        sub = frame.loc[frame["dyad"].isin(sub_ids)]
        sub_stats = [_prepare(c, loc, sd, settings) for _, c in _panel_chunks(sub, 1024)]
        h_std, eb_info = _fit_eb(
            lambda theta, pi: eb_partial(sub_stats, theta, pi), _moment_start(sub_stats),
            n_dyads=len(sub_ids), fit_class_probs=fit_class_probs, max_iter=eb_max_iter,
        )
        eb_info["eb_n_dyads"] = len(sub_ids)
        _warn_eb(eb_info)
    else:
        h_std = given.standardise(loc, sd)

    chunks = list(_panel_chunks(frame, chunk_size))
    use_table = t_cdf == "table" or (t_cdf == "auto" and n_dyads >= 2000)
    logcdf = _LogTCdf() if use_table else _log_t_cdf

    def run(fn, items):
        if n_jobs == 1 or len(items) == 1:
            yield from map(fn, items)
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                yield from pool.map(fn, items)

    # ---- pass 1: class proportions by EM on every dyad ---------------------------------------------
    # (the (D, 4) class log evidences are kept: pass 2 then evaluates each dyad's
    # configurations only under its most probable class, for the change points)
    Ls: list[np.ndarray | None] = [None] * len(chunks)
    if fit_class_probs:
        Ls = list(run(lambda item: block_class_evidence(item[1], h_std, loc, sd, settings,
                                                        logcdf), chunks))
        pi, _ = _em_class_probs(np.concatenate(Ls), init=h_std.class_probs)
        h_std = replace(h_std, class_probs=tuple(pi))

    # ---- pass 2: posteriors and change points per block ------------------------------------------
    show = progress if progress is not None else (len(chunks) > 8)
    parts = []
    with tqdm(total=n_dyads, desc="exact engine", unit="dyad", disable=not show,
              leave=False) as bar:
        for part in run(lambda item: block_summary(item[0][0], item[0][1], h_std, loc, sd,
                                                   settings, credible_level, logcdf, L=item[1]),
                        list(zip(chunks, Ls))):
            parts.append(part)
            bar.update(len(part[0]))
    return assemble_result(parts, h_std, loc, sd, settings, credible_level=credible_level,
                           eb_info=eb_info, given=given is not None,
                           fit_class_probs=fit_class_probs, eb_max_dyads=eb_max_dyads,
                           t_cdf_used="table" if use_table else "direct")


def _warn_eb(eb_info: dict[str, Any]) -> None:
    if not eb_info["eb_converged"]:
        import warnings

        warnings.warn(
            "Empirical-Bayes fit of the exact engine's hyperparameters did not converge "
            f"({eb_info['eb_message']}). Results use the last iterate; check "
            "result.hyperparameters, raise eb_max_iter, or pass fixed hyperparameters=.",
            ConvergenceWarning,
            stacklevel=4,
        )


def block_class_evidence(panel: PanelArrays, h_std: ExactHyperparameters, loc: float,
                         sd: float, settings: _Settings, logcdf=_log_t_cdf) -> np.ndarray:
    """(D, 4) class log evidences (standardised units) of a block of dyads (a panel)."""
    stats = _prepare(panel, loc, sd, settings)
    return _class_log_evidence(stats, _evidence(stats, h_std, logcdf=logcdf))


def block_summary(ids, panel: PanelArrays, h_std: ExactHyperparameters, loc: float, sd: float,
                  settings: _Settings, credible_level: float, logcdf=_log_t_cdf,
                  L: np.ndarray | None = None):
    """Posterior class probabilities, change points and log evidences of a block of dyads.

    Returns ``(probabilities, changepoints, log_evidence, log_marginal)`` with
    original-unit log evidences; a pure function of the block (used per partition
    by the Dask scale-out). ``L`` are the block's class log evidences
    (:func:`block_class_evidence`) when already computed.
    """
    if L is None:
        L = block_class_evidence(panel, h_std, loc, sd, settings, logcdf)
    log_pi = np.log(np.clip(np.asarray(h_std.class_probs), 1e-300, None))
    logpost = L + log_pi
    norm = _logsumexp_rows(logpost)
    post = np.exp(logpost - norm[:, None])
    labels = np.argmax(post, axis=1)
    index = pd.Index(ids, name="dyad")
    cp = _changepoints(panel, loc, sd, settings, h_std, L, labels, credible_level, logcdf=logcdf)
    cp.index = index
    shift = panel.n_obs * math.log(sd)
    probs = pd.DataFrame(post, index=index, columns=list(CLASSES))
    log_ev = pd.DataFrame(L - shift[:, None], index=index, columns=list(CLASSES))
    log_marginal = pd.Series(norm - shift, index=index, name="log_marginal")
    return probs, cp, log_ev, log_marginal


def assemble_result(parts, h_std: ExactHyperparameters, loc: float, sd: float,
                    settings: _Settings, *, credible_level: float, eb_info: dict[str, Any],
                    given: bool, fit_class_probs: bool, eb_max_dyads: int,
                    t_cdf_used: str = "direct") -> ClassificationResult:
    """Combine :func:`block_summary` outputs into the shared result type."""
    probs = pd.concat([p[0] for p in parts])
    changepoints = pd.concat([p[1] for p in parts])
    log_ev = pd.concat([p[2] for p in parts])
    marg_ll = float(sum(p[3].sum() for p in parts))
    hyper = h_std.unstandardise(loc, sd).to_dict()
    hyper.update(eb_info)
    hyper["source"] = "fixed" if given else "empirical_bayes"
    diagnostics = {"log_marginal_likelihood": marg_ll, "n_dyads": len(probs),
                   "standardisation": {"loc": loc, "sd": sd}}
    return ClassificationResult.from_probabilities(
        probs,
        method="exact",
        changepoints=changepoints,
        settings={
            "max_rupture_length": settings.max_rupture_length,
            "u_margin": settings.u_margin,
            "credible_level": float(credible_level),
            "fit_class_probs": bool(fit_class_probs),
            "eb_max_dyads": eb_max_dyads,
            "hyperparameters_given": bool(given),
            "min_sessions": MIN_SESSIONS,
            "t_cdf": t_cdf_used,
        },
        log_evidence=log_ev,
        hyperparameters=hyper,
        diagnostics=diagnostics,
        exact=True,
        credible_level=float(credible_level),
    )


# ======================================================================= explicit designs
def _admissible(t: np.ndarray, settings: _Settings) -> dict[str, list]:
    """Admissible configurations of one dyad, enumerated directly from its sessions."""
    n = len(t)
    out: dict[str, list] = {"linear": [None], "u_shaped": [], "v_shaped": [],
                            "unrepaired_rupture": []}
    if n >= 1:
        lo, hi = t[0] + settings.u_margin, t[-1] - settings.u_margin
        w = lo
        while w <= hi + 1e-9:
            out["u_shaped"].append(float(w))
            w += 0.5
    for i in range(settings.min_pre, n):           # i: 0-based index of the rupture session
        for j in range(i + 1, n):
            if t[j] - t[i] <= settings.max_rupture_length:
                out["v_shaped"].append((float(t[i]), float(t[j])))
        if n - i >= settings.min_drop:
            out["unrepaired_rupture"].append(float(t[i]))
    return out


def _design(t: np.ndarray, cls: str, config) -> np.ndarray:
    """Design of one configuration at the dyad's observed sessions."""
    return _design_on(t, t, cls, config)


def _prior(h: ExactHyperparameters, cls: str) -> tuple[np.ndarray, np.ndarray]:
    if cls == "linear":
        return np.array([h.level_mean, h.slope_mean]), np.array([h.level_var, h.slope_var])
    if cls == "u_shaped":
        return (np.array([h.level_mean, h.amplitude_mean]),
                np.array([h.level_var, h.amplitude_var]))
    return (np.array([h.level_mean, h.slope_mean, h.depth_mean]),
            np.array([h.level_var, h.slope_var, h.depth_var]))


def _as_hyper(hyperparameters) -> ExactHyperparameters:
    if isinstance(hyperparameters, ExactHyperparameters):
        return hyperparameters
    if isinstance(hyperparameters, Mapping):
        return ExactHyperparameters.from_dict(hyperparameters)
    raise ValueError(
        "The 'hyperparameters' parameter must be an ExactHyperparameters or a mapping (e.g. "
        f"result.hyperparameters). Got {type(hyperparameters).__name__} instead."
    )


def _config_posterior(t: np.ndarray, y: np.ndarray, h: ExactHyperparameters, cls: str, config):
    """Explicit conjugate update for one configuration: (log evidence, mn, Vn, an, bn)."""
    X = _design(t, cls, config)
    m, v = _prior(h, cls)
    lam0 = np.diag(1.0 / v)
    lam_n = lam0 + X.T @ X
    eta = lam0 @ m + X.T @ y
    Vn = np.linalg.inv(lam_n)
    mn = Vn @ eta
    an = h.noise_shape + 0.5 * len(y)
    bn = h.noise_scale + 0.5 * (y @ y + m @ lam0 @ m - eta @ mn)
    logdet = np.linalg.slogdet(lam_n)[1]
    logev = (-0.5 * len(y) * _LOG2PI - 0.5 * np.sum(np.log(v)) - 0.5 * logdet
             + h.noise_shape * math.log(h.noise_scale) - an * math.log(bn)
             + special.gammaln(an) - special.gammaln(h.noise_shape))
    if cls != "linear":
        z_post = mn[-1] / math.sqrt(bn / an * Vn[-1, -1])
        z_prior = m[-1] / math.sqrt(h.noise_scale / h.noise_shape * v[-1])
        logev += math.log(special.stdtr(2 * an, z_post)) - math.log(
            special.stdtr(2 * h.noise_shape, z_prior))
    return logev, mn, Vn, an, bn


def _one_dyad(sessions) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(sessions, pd.DataFrame):
        from ..io import validate_sessions

        cols = list(sessions.columns)
        frame = sessions if "dyad" in cols else sessions.assign(dyad="dyad")
        frame = validate_sessions(frame)
        if frame["dyad"].nunique() != 1:
            from ..errors import DataError

            raise DataError(
                "dyad_posterior takes the sessions of one dyad; got "
                f"{frame['dyad'].nunique()} dyads. Select one with frame[frame.dyad == id]."
            )
        return frame["session"].to_numpy(float), frame["score"].to_numpy(float)
    t, y = sessions
    return np.asarray(t, dtype=float), np.asarray(y, dtype=float)


def dyad_posterior(
    sessions,
    hyperparameters: ExactHyperparameters | Mapping[str, Any],
    cls: str | None = None,
    *,
    n_draws: int = 2000,
    level: float = 0.9,
    max_rupture_length: int = 4,
    u_margin: float = 1.0,
    seed: int | np.random.Generator | None = None,
) -> dict[str, Any]:
    """The exact posterior of one dyad, for plots and inspection.

    Parameters
    ----------
    sessions : DataFrame (columns session, score; optionally dyad) or (t, y) arrays
    hyperparameters : ExactHyperparameters or mapping
        Usually ``result.hyperparameters`` of an exact classification.
    cls : str, optional
        Class to condition on (default: the most probable class).
    n_draws : int, default 2000
        Monte Carlo draws from the exact posterior for the trajectory band.
    level : float, default 0.9
        Level of the pointwise band.
    seed : int or Generator, optional
        Seed of the Monte Carlo band (the probabilities are exact).

    Returns
    -------
    dict
        ``probabilities`` (Series over CLASSES), ``class``, ``configurations``
        (DataFrame: the configuration's sessions and posterior probability under
        ``class``), ``trajectory`` (DataFrame indexed by session on a fine grid with
        ``mean``, ``low``, ``high``), ``log_evidence`` (Series over CLASSES).
    """
    h = _as_hyper(hyperparameters)
    t, y = _one_dyad(sessions)
    settings = _Settings(max_rupture_length=max_rupture_length, u_margin=u_margin)
    configs = _admissible(t, settings)
    logev = {}
    per_config = {}
    for c in CLASSES:
        rows = [(cfg, *_config_posterior(t, y, h, c, cfg)) for cfg in configs[c]]
        per_config[c] = rows
        if rows:
            le = np.array([r[1] for r in rows])
            logev[c] = float(special.logsumexp(le) - math.log(len(le)))
        else:
            logev[c] = -np.inf
    L = np.array([logev[c] for c in CLASSES])
    logpost = L + np.log(np.asarray(h.class_probs) + 1e-300)
    probs = np.exp(logpost - special.logsumexp(logpost))
    if cls is None:
        cls = CLASSES[int(np.argmax(probs))]
    if cls not in CLASSES:
        raise ValueError(f"Unknown class {cls!r}. Valid classes: {list(CLASSES)}.")
    rows = per_config[cls]
    le = np.array([r[1] for r in rows])
    w = np.exp(le - special.logsumexp(le))
    if cls == "u_shaped":
        cfg_frame = pd.DataFrame({"turning_session": [r[0] for r in rows], "probability": w})
    elif cls == "v_shaped":
        cfg_frame = pd.DataFrame({"rupture_session": [r[0][0] for r in rows],
                                  "repair_session": [r[0][1] for r in rows], "probability": w})
    elif cls == "unrepaired_rupture":
        cfg_frame = pd.DataFrame({"rupture_session": [r[0] for r in rows], "probability": w})
    else:
        cfg_frame = pd.DataFrame({"probability": w})

    rng = np.random.default_rng(seed)
    grid = np.round(np.arange(t[0], t[-1] + 1e-9, 0.25), 6)
    picks = rng.choice(len(rows), size=n_draws, p=w)
    curves = np.empty((n_draws, len(grid)))
    for k in np.unique(picks):
        idx = np.flatnonzero(picks == k)
        cfg, _, mn, Vn, an, bn = rows[k]
        sig2 = bn / rng.gamma(an, 1.0, size=len(idx))
        p = len(mn)
        if cls == "linear":
            z = rng.standard_normal((len(idx), p)) @ np.linalg.cholesky(Vn).T
            theta = mn + z * np.sqrt(sig2)[:, None]
        else:
            from scipy.stats import truncnorm

            sd_last = np.sqrt(sig2 * Vn[-1, -1])
            a = -mn[-1] / sd_last
            last = mn[-1] + sd_last * truncnorm.rvs(a, np.inf, size=len(idx), random_state=rng)
            # the others given the last: Gaussian conditional
            cov_ol = Vn[:-1, -1] / Vn[-1, -1]
            cond_cov = Vn[:-1, :-1] - np.outer(Vn[:-1, -1], Vn[:-1, -1]) / Vn[-1, -1]
            chol = np.linalg.cholesky(cond_cov)
            z = rng.standard_normal((len(idx), p - 1)) @ chol.T
            others = mn[:-1] + np.outer(last - mn[-1], cov_ol) + z * np.sqrt(sig2)[:, None]
            theta = np.column_stack([others, last])
        Xg = _design_on(grid, t, cls, cfg)
        curves[idx] = theta @ Xg.T
    alpha = (1 - level) / 2
    traj = pd.DataFrame(
        {"mean": curves.mean(axis=0), "low": np.quantile(curves, alpha, axis=0),
         "high": np.quantile(curves, 1 - alpha, axis=0)},
        index=pd.Index(grid, name="session"),
    )
    return {
        "probabilities": pd.Series(probs, index=list(CLASSES)),
        "log_evidence": pd.Series(L, index=list(CLASSES)),
        "class": cls,
        "configurations": cfg_frame,
        "trajectory": traj,
    }


def _design_on(grid: np.ndarray, t: np.ndarray, cls: str, config) -> np.ndarray:
    """Design evaluated at ``grid`` (e.g. a fine grid for plots); the U's scale ``h`` comes
    from the dyad's own first and last observed sessions ``t``."""
    x = grid - 1.0
    one = np.ones_like(x)
    if cls == "linear":
        return np.column_stack([one, x])
    if cls == "u_shaped":
        h = max(config - t[0], t[-1] - config)
        return np.column_stack([one, ((grid - config) / h) ** 2])
    if cls == "v_shaped":
        r, e = config
        # the drop covers observed sessions r .. before e; on the grid, up to e
        return np.column_stack([one, x, -((grid >= r) & (grid < e)).astype(float)])
    return np.column_stack([one, x, -(grid >= config).astype(float)])


def sample_prior_predictive(
    hyperparameters: ExactHyperparameters | Mapping[str, Any],
    n_dyads: int,
    n_sessions: int | tuple[int, int] = 12,
    *,
    max_rupture_length: int = 4,
    u_margin: float = 1.0,
    seed: int | np.random.Generator | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw dyads from the engine's own model (for calibration checks).

    Returns ``(sessions, truth)``: long sessions (dyad, session, score) and, per
    dyad, ``true_class``, ``rupture_session``, ``repair_session``, ``depth``,
    ``turning_session``, ``noise_sd``. Unlike :func:`alliancetraj.simulate_cohort`
    (which mimics real alliance data), these data follow the stated model exactly,
    so the engine's probabilities must be calibrated on them.
    """
    h = _as_hyper(hyperparameters)
    rng = np.random.default_rng(seed)
    settings = _Settings(max_rupture_length=max_rupture_length, u_margin=u_margin)
    if isinstance(n_sessions, (int, np.integer)):
        lo = hi = int(n_sessions)
    else:
        lo, hi = (int(v) for v in n_sessions)
    if lo < MIN_SESSIONS:
        raise ValueError(f"n_sessions must be >= {MIN_SESSIONS}. Got {n_sessions!r} instead.")
    from scipy.stats import truncnorm

    recs, truth = [], []
    pi = np.asarray(h.class_probs)
    for i in range(int(n_dyads)):
        n = int(rng.integers(lo, hi + 1))
        t = np.arange(1.0, n + 1.0)
        k = int(rng.choice(_K, p=pi))
        cls = CLASSES[k]
        configs = _admissible(t, settings)[cls]
        cfg = configs[int(rng.integers(len(configs)))]
        sig2 = h.noise_scale / rng.gamma(h.noise_shape, 1.0)
        m, v = _prior(h, cls)
        sd = np.sqrt(sig2 * v)
        theta = m + sd * rng.standard_normal(len(m))
        if cls != "linear":
            a = -m[-1] / sd[-1]
            theta[-1] = m[-1] + sd[-1] * truncnorm.rvs(a, np.inf, random_state=rng)
        y = _design(t, cls, cfg) @ theta + math.sqrt(sig2) * rng.standard_normal(n)
        dyad = f"p{i:05d}"
        recs.append(pd.DataFrame({"dyad": dyad, "session": t.astype(np.int64), "score": y}))
        row = {"dyad": dyad, "true_class": cls, "noise_sd": math.sqrt(sig2),
               "rupture_session": np.nan, "repair_session": np.nan, "depth": np.nan,
               "turning_session": np.nan}
        if cls == "v_shaped":
            row.update(rupture_session=cfg[0], repair_session=cfg[1], depth=theta[-1])
        elif cls == "unrepaired_rupture":
            row.update(rupture_session=cfg, depth=theta[-1])
        elif cls == "u_shaped":
            row.update(turning_session=cfg)
        truth.append(row)
    sessions = pd.concat(recs, ignore_index=True)
    truth_df = pd.DataFrame(truth).set_index("dyad")
    truth_df["true_class"] = pd.Categorical(truth_df["true_class"], categories=list(CLASSES))
    return sessions, truth_df
