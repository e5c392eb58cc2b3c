r"""Fused log evidence of the collapsed cohort model and its exact gradient (numba).

The collapsed model's likelihood is, per dyad and class, a log-sum-exp over the
change-point configurations of closed-form normal-inverse-gamma evidences
(:func:`alliancetraj.models.pymc_design.config_log_evidence` is the numpy reference).
Written as a PyTensor graph, that is a few dozen element-wise passes over every
(dyad, configuration) pair, each storing temporaries, plus the same again for the
reverse-mode gradient. Here one numba loop visits each admissible configuration once
and returns the class evidence and its gradient with respect to the nine continuous
hyperparameters :data:`THETA` together, from closed forms:

with prior precisions :math:`p_j = 1/v_j`, posterior precision
:math:`\Lambda = X^\top X + \operatorname{diag}(p)`, its inverse :math:`S`,
posterior mean :math:`\mu`, :math:`\delta = m - \mu` and
:math:`b_n = b_0 + \tfrac12(y^\top y + m^\top P m - \mu^\top \Lambda \mu)`,

.. math::
    \partial b_n/\partial b_0 = 1, \quad
    \partial b_n/\partial m_j = p_j \delta_j, \quad
    \partial b_n/\partial p_j = \tfrac12 \delta_j^2, \quad
    \partial \log|\Lambda|/\partial p_j = S_{jj},

    \partial \mu_c/\partial m_j = S_{cj} p_j, \quad
    \partial \mu_c/\partial p_j = S_{cj} \delta_j, \quad
    \partial S_{cc}/\partial p_j = -S_{cj}^2,

and the truncation term :math:`\log T_\nu(z)`, :math:`z = \mu_c / \sqrt{b_n S_{cc}/a_n}`,
is read (value and derivative in ``z``) from the cubic-Hermite table
:class:`~alliancetraj.models.pymc_design.LogTCdfTable`, exactly as the PyTensor
graph it replaces did. The trend block (level, slope), shared by every configuration
of a dyad, is inverted once per dyad; a configuration then costs a Schur complement.

:class:`ClassEvidenceOp` wraps the kernel for PyTensor (``perform``, which calls the
disk-cached kernel, for the C/Python back ends that PyMC and this package's nutpie
route use; a numba implementation for PyTensor's numba back end); its second output, the Jacobian, is
what its gradient uses, so one call serves logp and gradient. This module imports
numba and PyTensor: import it only where they are needed. Terms that do not
depend on the configuration (the normalising constants, the prior truncation
:math:`\log T_{2\alpha}(m_c/\sqrt{b_0 v_c/\alpha})`) are added outside by
:func:`class_offsets`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from scipy import special

from . import pymc_design as pdz

__all__ = [
    "THETA",
    "ClassEvidenceOp",
    "class_evidence_kernel",
    "class_log_evidence_draws",
    "class_log_evidence_pt",
    "class_offsets",
    "kernel_inputs",
]

#: Hyperparameters the kernel differentiates, in the order of its ``theta`` input.
THETA = ("noise_scale", "level_mean", "level_var", "slope_mean", "slope_var",
         "depth_mean", "depth_var", "amplitude_mean", "amplitude_var")
#: Data inputs of the kernel after ``theta``, in order. First the session-pattern level
#: (dyads with the same observed sessions share one row): the pattern of each dyad, then
#: per pattern ``n``, ``an`` (posterior noise shape), the table ``rows``, ``lcp`` (log
#: configuration priors) and the score-free moments; then the dyad-level score moments
#: (:data:`alliancetraj.models.pymc_mixture.SCORE_MOMENTS`); then the table.
PATTERN_INPUTS = ("n", "an", "rows", "lcp", "sx", "sxx", "u_sz", "u_szz", "u_ok", "v_nd",
                  "v_xd", "v_ok", "un_nd", "un_xd", "un_ok")
SCORE_INPUTS = ("syy", "sy", "sxy", "u_szy", "v_yd", "un_yd")
DATA_INPUTS = ("pattern", *PATTERN_INPUTS, *SCORE_INPUTS, "tab_in", "tab_out", "tab_grid")
_NEG = pdz.NEG


# ================================================================================ kernel
@numba.njit(cache=True, inline="always")
def _hermite(tab, row, pos):
    """Cubic-Hermite interpolant of a table row at ``pos`` (in nodes), and its derivative."""
    top = tab.shape[1] - 1
    clipped = pos > top - 1e-9
    pc = top - 1e-9 if clipped else pos
    i = math.floor(pc)
    s = pc - i
    f0, d0, f1, d1 = tab[row, i, 0], tab[row, i, 1], tab[row, i + 1, 0], tab[row, i + 1, 1]
    s2 = s * s
    s3 = s2 * s
    val = ((2 * s3 - 3 * s2 + 1) * f0 + (s3 - 2 * s2 + s) * d0
           + (3 * s2 - 2 * s3) * f1 + (s3 - s2) * d1)
    if clipped:
        return val, 0.0
    return val, 6 * (s2 - s) * (f0 - f1) + (3 * s2 - 4 * s + 1) * d0 + (3 * s2 - 2 * s) * d1


@numba.njit(cache=True, inline="always")
def _log_t(z, row, tab_in, tab_out, z_inner, inv_in, u0, inv_out):
    """``log T(z)`` from :class:`~alliancetraj.models.pymc_design.LogTCdfTable` and its derivative.

    ``inv_in`` and ``inv_out`` are the reciprocals of the inner and outer grid steps.
    """
    if abs(z) <= z_inner:
        val, dval = _hermite(tab_in, row, (z + z_inner) * inv_in)
        return val, dval * inv_in
    az = abs(z)
    sq = math.sqrt(1.0 + az * az)
    u = math.log1p(az + az * az / (1.0 + sq))  # asinh(|z|), about 3 times cheaper than asinh
    pos = ((u if z >= 0.0 else -u) - u0) * inv_out
    if pos < 0.0:  # linear tail in u
        return tab_out[row, 0, 0] + tab_out[row, 0, 1] * pos, tab_out[row, 0, 1] * inv_out / sq
    val, dval = _hermite(tab_out, row, pos)
    return val, dval * inv_out / sq


@numba.njit(cache=True, inline="always")
def _logsumexp(fs, gs, m, p, acc, with_grad):
    """``log sum exp(fs[:m])``; with ``with_grad`` also the softmax average of ``gs[:m, :p]`` in ``acc``."""
    top = fs[0]
    for j in range(1, m):
        top = max(top, fs[j])
    tot = 0.0
    acc[:p] = 0.0
    for j in range(m):
        w = math.exp(fs[j] - top)
        tot += w
        if with_grad:
            for t in range(p):
                acc[t] += w * gs[j, t]
    if with_grad:
        for t in range(p):
            acc[t] /= tot
    return top + math.log(tot)


@numba.njit(cache=True, nogil=True)
def class_evidence_kernel(theta, pattern, n, an, rows, lcp, sx, sxx, u_sz, u_szz, u_ok, v_nd,
                          v_xd, v_ok, un_nd, un_xd, un_ok, syy, sy, sxy, u_szy, v_yd, un_yd,
                          tab_in, tab_out, tab_grid, with_grad):
    """Configuration-dependent part of every dyad's class log evidence, and its Jacobian.

    Parameters
    ----------
    theta : (9,) array
        Hyperparameters in the order of :data:`THETA` (standardised scale).
    pattern, n, ..., tab_grid : arrays
        :data:`DATA_INPUTS` (see :func:`kernel_inputs`).
    with_grad : bool
        Compute the Jacobian (otherwise it is returned with no rows).

    Returns
    -------
    C : (D, 4) array
        ``log sum_tau exp(f_tau) + log prior(tau)`` per class (``pdz.NEG`` where a
        class has no admissible configuration); the class log evidence is
        ``C + class_offsets(...)``.
    J : (D, 4, 9) array
        ``dC / dtheta`` (``(0, 4, 9)`` without ``with_grad``).

    Notes
    -----
    Everything that does not involve the scores (the inverse of the trend block, the
    Schur complement ``s`` of the constrained coefficient and ``log s``) is computed
    once per session pattern. Per (dyad, configuration) there remain a residual, one
    division, one square root, one logarithm, a table lookup and, in the
    log-sum-exp, one exponential.
    """
    b0, ma, va, mb, vb, md, vd, mc, vc = (theta[0], theta[1], theta[2], theta[3], theta[4],
                                          theta[5], theta[6], theta[7], theta[8])
    pa, pb, pd, pc = 1.0 / va, 1.0 / vb, 1.0 / vd, 1.0 / vc
    z_inner, inv_in, u0, inv_out = tab_grid[0], 1.0 / tab_grid[1], tab_grid[2], 1.0 / tab_grid[3]
    D, P = pattern.shape[0], n.shape[0]
    # ------------------------------------------------- session-pattern level (no scores)
    trend = np.empty((P, 4))             # Sa, Sab, Sb (inverse trend block), 0.5 log det
    schur_v = np.empty((P, v_nd.shape[1], 4))   # q1, q2, 1 / s, 0.5 log s
    schur_un = np.empty((P, un_nd.shape[1], 4))
    schur_u = np.empty((P, u_sz.shape[1], 3))   # q, 1 / s, 0.5 log s
    for p in range(P):
        A11, A12, A22 = n[p] + pa, sx[p], sxx[p] + pb
        detA = A11 * A22 - A12 * A12
        Sa, Sab, Sb = A22 / detA, -A12 / detA, A11 / detA
        trend[p, 0], trend[p, 1], trend[p, 2] = Sa, Sab, Sb
        trend[p, 3] = 0.5 * math.log(detA)
        for nd_a, xd_a, ok_a, out in ((v_nd, v_xd, v_ok, schur_v),
                                      (un_nd, un_xd, un_ok, schur_un)):
            for j in range(nd_a.shape[1]):
                if ok_a[p, j]:
                    b1, b2 = -nd_a[p, j], -xd_a[p, j]
                    q1 = Sa * b1 + Sab * b2
                    q2 = Sab * b1 + Sb * b2
                    sc = nd_a[p, j] + pd - (b1 * q1 + b2 * q2)
                    out[p, j, 0], out[p, j, 1] = q1, q2
                    out[p, j, 2], out[p, j, 3] = 1.0 / sc, 0.5 * math.log(sc)
        L11 = n[p] + pa
        for j in range(u_sz.shape[1]):
            if u_ok[p, j]:
                q = u_sz[p, j] / L11
                sc = u_szz[p, j] + pc - q * u_sz[p, j]
                schur_u[p, j, 0], schur_u[p, j, 1], schur_u[p, j, 2] = q, 1.0 / sc, \
                    0.5 * math.log(sc)
    # ----------------------------------------------------------------------- dyads
    C = np.empty((D, 4))
    J = np.zeros((D if with_grad else 0, 4, 9))
    kmax = max(u_sz.shape[1], v_nd.shape[1], un_nd.shape[1])
    fs = np.empty(kmax)       # log evidence of each admissible configuration
    gs = np.empty((kmax, 7))  # its gradient (b0, then means, then precisions)
    acc = np.empty(7)
    for i in range(D):
        p = pattern[i]
        ani = an[p]
        row = rows[p]
        Sa, Sab, Sb, half_logdet = trend[p, 0], trend[p, 1], trend[p, 2], trend[p, 3]
        # ------------------------------------------------------------- linear (k=0)
        e1 = sy[i] + ma * pa
        e2 = sxy[i] + mb * pb
        g1 = Sa * e1 + Sab * e2
        g2 = Sab * e1 + Sb * e2
        bn_lin = b0 + 0.5 * (syy[i] + ma * ma * pa + mb * mb * pb - (e1 * g1 + e2 * g2))
        C[i, 0] = -half_logdet - ani * math.log(bn_lin)
        if with_grad:
            kappa = -ani / bn_lin
            da, db = ma - g1, mb - g2
            J[i, 0, 0] = kappa
            J[i, 0, 1] = kappa * pa * da
            J[i, 0, 3] = kappa * pb * db
            J[i, 0, 2] = -pa * pa * (-0.5 * Sa + 0.5 * kappa * da * da)
            J[i, 0, 4] = -pb * pb * (-0.5 * Sb + 0.5 * kappa * db * db)
        # ------------------------------------------- v_shaped (k=2), unrepaired (k=3)
        bn0 = bn_lin + 0.5 * md * md * pd
        for k in (2, 3):
            nd_a, xd_a, yd_a, ok_a, sch = (v_nd, v_xd, v_yd, v_ok, schur_v) if k == 2 else \
                (un_nd, un_xd, un_yd, un_ok, schur_un)
            m = 0
            for j in range(nd_a.shape[1]):
                if not ok_a[p, j]:
                    continue
                q1, q2, inv_s, half_log_s = sch[p, j, 0], sch[p, j, 1], sch[p, j, 2], sch[p, j, 3]
                resid = (md * pd - yd_a[i, j]) + (nd_a[p, j] * g1 + xd_a[p, j] * g2)
                muc = resid * inv_s
                bn = bn0 - 0.5 * resid * muc
                inv_bn = 1.0 / bn
                r = math.sqrt(ani * inv_bn / inv_s)
                z = muc * r
                lt, tp = _log_t(z, row, tab_in, tab_out, z_inner, inv_in, u0, inv_out)
                fs[m] = lt - half_log_s - ani * math.log(bn)
                if with_grad:
                    # d/dp_j = c1 psi_j^2 + c2 delta_j^2 + c3 psi_j delta_j,
                    # d/dm_j = p_j (c4 delta_j + c3 psi_j), d/db0 = c4; psi = (-q1, -q2, 1),
                    # delta = m - mu with mu_ab = g - q mu_c (see the module notes)
                    tz = tp * z
                    c1 = 0.5 * (tz - 1.0) * inv_s
                    c4 = -(ani + 0.5 * tz) * inv_bn
                    c2 = 0.5 * c4
                    c3 = tp * r * inv_s
                    dla = ma - (g1 - q1 * muc)
                    dlb = mb - (g2 - q2 * muc)
                    dlc = md - muc
                    gs[m, 0] = c4
                    gs[m, 1] = c4 * dla - c3 * q1
                    gs[m, 2] = c4 * dlb - c3 * q2
                    gs[m, 3] = c4 * dlc + c3
                    gs[m, 4] = c1 * q1 * q1 + c2 * dla * dla - c3 * q1 * dla
                    gs[m, 5] = c1 * q2 * q2 + c2 * dlb * dlb - c3 * q2 * dlb
                    gs[m, 6] = c1 + c2 * dlc * dlc + c3 * dlc
                m += 1
            if m == 0:
                C[i, k] = _NEG
                continue
            C[i, k] = _logsumexp(fs, gs, m, 7, acc, with_grad) - half_logdet + lcp[p, k - 1]
            if with_grad:
                J[i, k, 0] = acc[0]
                J[i, k, 1] = pa * acc[1]
                J[i, k, 3] = pb * acc[2]
                J[i, k, 5] = pd * acc[3]
                J[i, k, 2] = -pa * pa * (acc[4] - 0.5 * Sa)
                J[i, k, 4] = -pb * pb * (acc[5] - 0.5 * Sb)
                J[i, k, 6] = -pd * pd * acc[6]
        # ------------------------------------------------------------ u_shaped (k=1)
        L11 = n[p] + pa
        f1 = sy[i] + ma * pa
        mu_a0 = f1 / L11
        bn0u = b0 + 0.5 * (syy[i] + ma * ma * pa + mc * mc * pc - f1 * mu_a0)
        m = 0
        for j in range(u_sz.shape[1]):
            if not u_ok[p, j]:
                continue
            q, inv_s, half_log_s = schur_u[p, j, 0], schur_u[p, j, 1], schur_u[p, j, 2]
            resid = (u_szy[i, j] + mc * pc) - q * f1
            muc = resid * inv_s
            bn = bn0u - 0.5 * resid * muc
            inv_bn = 1.0 / bn
            r = math.sqrt(ani * inv_bn / inv_s)
            z = muc * r
            lt, tp = _log_t(z, row, tab_in, tab_out, z_inner, inv_in, u0, inv_out)
            fs[m] = lt - half_log_s - ani * math.log(bn)
            if with_grad:
                tz = tp * z
                c1 = 0.5 * (tz - 1.0) * inv_s
                c4 = -(ani + 0.5 * tz) * inv_bn
                c2 = 0.5 * c4
                c3 = tp * r * inv_s
                dla = ma - (mu_a0 - q * muc)
                dlc = mc - muc
                gs[m, 0] = c4
                gs[m, 1] = c4 * dla - c3 * q
                gs[m, 2] = c4 * dlc + c3
                gs[m, 3] = c1 * q * q + c2 * dla * dla - c3 * q * dla
                gs[m, 4] = c1 + c2 * dlc * dlc + c3 * dlc
            m += 1
        if m == 0:
            C[i, 1] = _NEG
            continue
        C[i, 1] = _logsumexp(fs, gs, m, 5, acc, with_grad) - 0.5 * math.log(L11) + lcp[p, 0]
        if with_grad:
            J[i, 1, 0] = acc[0]
            J[i, 1, 1] = pa * acc[1]
            J[i, 1, 7] = pc * acc[2]
            J[i, 1, 2] = -pa * pa * (acc[3] - 0.5 / L11)
            J[i, 1, 8] = -pc * pc * acc[4]
    return C, J


# ========================================================================= inputs, offsets
def kernel_inputs(stats: pdz.CohortStats, noise_shape: float,
                  table: pdz.LogTCdfTable | None = None) -> dict[str, Any]:
    """The kernel's data inputs (:data:`DATA_INPUTS`) for a cohort.

    Dyads are grouped by session pattern (identical score-free statistics); the
    score moments are passed through unchanged (they may be PyTensor variables, e.g.
    ``pm.Data`` containers).
    """
    n = np.asarray(stats.n, dtype=float)
    dof = 2.0 * noise_shape + n
    if table is None:
        table = pdz.LogTCdfTable(np.unique(dof))
    per_dyad = {"n": n, "an": 0.5 * dof, "rows": table.row(dof), "lcp": stats.log_config_prior}
    per_dyad.update({k: getattr(stats, k) for k in PATTERN_INPUTS if k not in per_dyad})
    key = np.column_stack([np.asarray(per_dyad[k], dtype=float).reshape(len(n), -1)
                           for k in PATTERN_INPUTS])
    _, first, pattern = np.unique(key, axis=0, return_index=True, return_inverse=True)
    out: dict[str, Any] = {"pattern": pattern.reshape(-1).astype(np.int64)}
    out.update({k: np.ascontiguousarray(np.asarray(per_dyad[k])[first]) for k in PATTERN_INPUTS})
    out.update({k: getattr(stats, k) if hasattr(getattr(stats, k), "type")  # PyTensor
                else np.ascontiguousarray(getattr(stats, k), dtype=float) for k in SCORE_INPUTS})
    out.update(tab_in=table.inner, tab_out=table.outer, tab_grid=table.grid)
    return out


def class_offsets(h: dict[str, Any], noise_shape: float, n: np.ndarray, xp: Any = np):
    """Configuration-free terms of the class log evidence, ``(..., D, 4)``.

    ``base_i - 0.5 sum_j log v_j - log T_{2 alpha}(m_c / sqrt(b0 v_c / alpha))`` per
    dyad and class, for the numpy (``h`` values scalars or arrays of draws) or the
    PyTensor (``xp=pytensor.tensor``) back end.
    """
    a0 = float(noise_shape)
    n = np.asarray(n, dtype=float)
    an = a0 + 0.5 * n
    if xp is np:
        h = {k: np.asarray(h[k], dtype=float)[..., None] for k in THETA}
        log_t_prior = pdz.log_t_cdf_numpy
    else:
        h = {k: xp.as_tensor(h[k], dtype="float64")[..., None] for k in THETA}
        log_t_prior = _log_t_prior_pt
    b0 = h["noise_scale"]
    base = (-0.5 * n * pdz._LOG2PI + special.gammaln(an) - special.gammaln(a0)) + a0 * xp.log(b0)
    lva, lvb, lvd, lvc = (xp.log(h[k]) for k in ("level_var", "slope_var", "depth_var",
                                                  "amplitude_var"))
    t_depth = log_t_prior(h["depth_mean"] / xp.sqrt(b0 / a0 * h["depth_var"]), 2.0 * a0)
    t_amp = log_t_prior(h["amplitude_mean"] / xp.sqrt(b0 / a0 * h["amplitude_var"]), 2.0 * a0)
    rupture = base - 0.5 * (lva + lvb + lvd) - t_depth
    return xp.stack([base - 0.5 * (lva + lvb), base - 0.5 * (lva + lvc) - t_amp, rupture,
                     rupture], axis=-1)


def _log_t_prior_pt(z, dof: float):
    """``log T_dof(z)`` in PyTensor for a scalar ``z`` and constant ``dof`` (incomplete beta)."""
    x = dof / (dof + z * z)
    ib = pt.betainc(0.5 * dof, 0.5, x)
    return pt.switch(pt.lt(z, 0), pt.log(0.5) + pt.log(ib), pt.log1p(-0.5 * ib))


def class_log_evidence_draws(stats: pdz.CohortStats, noise_shape: float,
                             hdraws: dict[str, np.ndarray]) -> np.ndarray:
    """``log p(y_i | class, phi^(s))`` for every draw, ``(S, D, 4)``, with the model's own kernel.

    ``hdraws`` maps each of :data:`THETA` to an ``(S,)`` array of standardised draws.
    Draws are spread over the CPU cores (the kernel releases the GIL).
    """
    inputs = tuple(kernel_inputs(stats, noise_shape).values())
    theta = np.column_stack([np.asarray(hdraws[k], dtype=float).reshape(-1) for k in THETA])
    C = np.empty((len(theta), len(stats.n), 4))

    def work(rows: range) -> None:
        for s in rows:
            C[s] = class_evidence_kernel(theta[s], *inputs, False)[0]

    workers = max(1, min(os.cpu_count() or 1, len(theta)))
    chunks = [range(w, len(theta), workers) for w in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, chunks))
    return C + class_offsets({k: theta[:, j] for j, k in enumerate(THETA)}, noise_shape,
                             stats.n)


# ================================================================================ PyTensor
class ClassEvidenceOp(Op):
    """PyTensor Op of :func:`class_evidence_kernel`: outputs ``(C, J)``.

    Inputs: ``theta`` (9,) then :data:`DATA_INPUTS`. The gradient with respect to
    ``theta`` is ``sum(dcost/dC * J)``, so a logp-and-gradient graph evaluates the
    kernel once; data inputs are not differentiable.
    """

    __props__ = ()

    def make_node(self, theta, *data):
        if len(data) != len(DATA_INPUTS):
            raise TypeError(f"ClassEvidenceOp takes theta and {len(DATA_INPUTS)} data inputs, "
                            f"got {len(data)}.")
        theta = pt.as_tensor_variable(theta).astype("float64")
        data = [pt.as_tensor_variable(d) for d in data]
        outs = [pt.tensor(dtype="float64", shape=(None, 4)),
                pt.tensor(dtype="float64", shape=(None, 4, 9))]
        return Apply(self, [theta, *data], outs)

    def perform(self, node, inputs, outputs):
        C, J = class_evidence_kernel(*inputs, True)
        outputs[0][0] = C
        outputs[1][0] = J

    def infer_shape(self, fgraph, node, shapes):
        d = shapes[1][0]  # the pattern index: one per dyad
        return [(d, 4), (d, 4, 9)]

    def connection_pattern(self, node):
        return [[True, True]] + [[False, False]] * (len(node.inputs) - 1)

    def L_op(self, inputs, outputs, output_grads):
        g_c, g_j = output_grads
        data_grads = [disconnected_type() for _ in inputs[1:]]
        if not isinstance(g_j.type, DisconnectedType):
            return [grad_not_implemented(self, 0, inputs[0],
                                         "second derivatives of the class evidence"), *data_grads]
        if isinstance(g_c.type, DisconnectedType):
            return [pt.zeros(9), *data_grads]
        return [(g_c[:, :, None] * outputs[1]).sum(axis=(0, 1)), *data_grads]


@register_funcify_default_op_cache_key(ClassEvidenceOp)
def _numba_class_evidence(op, node, **kwargs):
    """numba implementation of :class:`ClassEvidenceOp` (what nutpie runs)."""

    @numba.njit
    def class_evidence(theta, pattern, n, an, rows, lcp, sx, sxx, u_sz, u_szz, u_ok, v_nd,
                       v_xd, v_ok, un_nd, un_xd, un_ok, syy, sy, sxy, u_szy, v_yd, un_yd,
                       tab_in, tab_out, tab_grid):
        return class_evidence_kernel(theta, pattern, n, an, rows, lcp, sx, sxx, u_sz, u_szz,
                                     u_ok, v_nd, v_xd, v_ok, un_nd, un_xd, un_ok, syy, sy, sxy,
                                     u_szy, v_yd, un_yd, tab_in, tab_out, tab_grid, True)

    return class_evidence, 1


def class_log_evidence_pt(stats: pdz.CohortStats, h: dict[str, Any], noise_shape: float):
    """``(D, 4)`` PyTensor class log evidence; ``h`` values are floats or PyTensor scalars."""
    theta = pt.stack([pt.as_tensor(h[k], dtype="float64") for k in THETA])
    # numpy inputs as shared variables, not constants: compiled code then receives them
    # at run time instead of embedding megabytes of constants (slow to compile)
    data = [pytensor.shared(v, name=f"evidence_{k}") if isinstance(v, np.ndarray) else v
            for k, v in kernel_inputs(stats, noise_shape).items()]
    C, _ = ClassEvidenceOp()(theta, *data)
    return C + class_offsets(h, noise_shape, stats.n, xp=pt)
