r"""Compiled inner loops of the change-point engines (numba; imported lazily).

Every kernel reads Student-t log CDFs from the cubic Hermite tables of
:class:`alliancetraj.models.changepoint.tcdf.LogTCdf` (value and derivative at the nodes of a
uniform grid in ``z`` near zero and of one in ``w = asinh(z)`` beyond):

* :func:`log_t_cdf_table` evaluates the tables for a ``(D, K)`` block whose rows
  share a degree of freedom (one table row per dyad); points off the table come
  back as NaN for the caller's exact fallback.
* :func:`truncated_t_mixture` returns the mean and two quantiles of a mixture of
  Student-t densities truncated to ``(0, inf)``, per dyad, by a safeguarded
  Halley iteration that stops per dyad (the vectorised version had to iterate
  every row until the slowest converged).
* :func:`class_evidence_kernel` returns every dyad's class log evidence (up to the
  configuration-free terms) and its exact gradient in the nine continuous
  hyperparameters :data:`THETA`, in one pass over the admissible configurations.
  It is the exact engine's empirical-Bayes objective and, wrapped as a PyTensor Op
  (:mod:`alliancetraj.models.pymc_kernel`), the PyMC mixture's likelihood.

The class evidence per dyad and class is a log-sum-exp over change-point
configurations of closed-form normal-inverse-gamma evidences
(:func:`alliancetraj.models.changepoint.evidence.config_evidence` is the numpy
reference). With prior precisions :math:`p_j = 1/v_j`, posterior precision
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
is read from the table with its derivative in ``z``. The trend block (level,
slope), shared by every configuration of a dyad, is inverted once per session
pattern; a configuration then costs a Schur complement.

numba is a dependency of PyTensor, hence always installed with PyMC. The kernels
are compiled on first use and cached on disk; they release the GIL, so that the
engine's block threads run them in parallel.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from .spec import KERNEL_THETA
from .tdist import floor_argument, log_t_cdf

_NAN = math.nan


@numba.njit(cache=True, inline="always")
def _hermite(tab, row, pos):
    """Cubic Hermite interpolant of a (value, derivative per step) table row at ``pos``
    (in nodes), and its derivative per step (0 beyond the last node)."""
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
def _lookup(z, outer, inner, row, grid):
    """``log T(z)`` from table row ``row`` (see :func:`_lookup_grad`); NaN off the grids."""
    z_in = grid[2]
    if abs(z) < z_in:
        return _hermite(inner, row, (z + z_in) * grid[3])[0]
    pos = (math.asinh(z) + grid[0]) * grid[1]
    if not (pos >= 0.0 and pos <= outer.shape[1] - 1):   # also catches NaN
        return _NAN
    return _hermite(outer, row, pos)[0]


@numba.njit(cache=True, inline="always")
def _inner_hermite(z, inner, row, z_in, inv_in, last):
    """``log T(z)`` and its derivative in ``z`` on the inner (uniform-z) grid, ``|z| < z_in``;
    ``last`` = number of nodes - 2 (guards ``pos`` rounding up to the top node)."""
    pos = (z + z_in) * inv_in
    i = min(int(pos), last)
    u = pos - i
    f0, d0, f1, d1 = inner[row, i, 0], inner[row, i, 1], inner[row, i + 1, 0], inner[row, i + 1, 1]
    u2 = u * u
    u3 = u2 * u
    val = ((2 * u3 - 3 * u2 + 1) * f0 + (u3 - 2 * u2 + u) * d0
           + (3 * u2 - 2 * u3) * f1 + (u3 - u2) * d1)
    return val, (6 * (u2 - u) * (f0 - f1) + (3 * u2 - 4 * u + 1) * d0
                 + (3 * u2 - 2 * u) * d1) * inv_in


@numba.njit(cache=True, inline="always")
def _lookup_grad(z, outer, inner, row, wmax, inv_step, z_in, inv_in):
    """``log T(z)`` and its derivative in ``z`` from table row ``row``.

    ``inner`` (R, N, 2) and ``outer`` (R, G, 2): value and derivative per step at the
    nodes of the uniform-z grid over ``|z| <= z_in`` and of the asinh grid
    (:class:`~alliancetraj.models.changepoint.tcdf.LogTCdf`). Below the asinh grid: linear in
    ``w = asinh(z)``; above it: 0. The scalars are the entries of the table's grid,
    passed unpacked so that compiled loops keep them in registers.
    """
    if abs(z) < z_in:
        return _inner_hermite(z, inner, row, z_in, inv_in, inner.shape[1] - 2)
    az = abs(z)
    sq = math.sqrt(1.0 + az * az)
    w = math.log1p(az + az * az / (1.0 + sq))  # asinh(|z|), about 3 times cheaper than asinh
    pos = ((w if z >= 0.0 else -w) + wmax) * inv_step
    if pos < 0.0:  # linear tail in w
        return outer[row, 0, 0] + outer[row, 0, 1] * pos, outer[row, 0, 1] * inv_step / sq
    val, dval = _hermite(outer, row, pos)
    return val, dval * inv_step / sq


@numba.njit(nogil=True, cache=True)
def log_t_cdf_table(z, rows, outer, inner, grid, out):  # pragma: no cover - compiled
    """``out[d, k] = log T(z[d, k])`` with the table row ``rows[d]`` (NaN off the table)."""
    D, K = z.shape
    for d in range(D):
        r = rows[d]
        for k in range(K):
            out[d, k] = _lookup(z[d, k], outer, inner, r, grid)
    return out


@numba.njit(nogil=True, cache=True)
def truncated_t_mixture(w, loc, scale, log_tail, nu, rows, outer, inner, grid,
                        prune, q_low, q_high, out):  # pragma: no cover - compiled
    """Mean and the ``q_low`` / ``q_high`` quantiles of a truncated Student-t mixture.

    Per dyad d: components k with ``w[d, k] > prune`` (renormalised), location
    ``loc``, scale ``scale``, degrees of freedom ``nu[d]``, each truncated to
    (0, inf) with log mass ``log_tail[d, k]`` above zero. ``out`` (D, 3) receives
    the mean and the two quantiles, the mixture CDF solved to 1e-12 by Halley
    steps (the density's derivative is free) safeguarded by bisection.
    """
    wmax, inv_step, z_in, inv_in = grid[0], grid[1], grid[2], grid[3]
    D, K = w.shape
    m = np.empty(K)
    inv_s = np.empty(K)
    vk = np.empty(K)        # weight / mass above zero: multiplies the survival T(-z)
    for d in range(D):
        n = nu[d]
        row = rows[d]
        half = 0.5 * (n + 1.0)
        const = math.lgamma(half) - math.lgamma(0.5 * n) - 0.5 * math.log(n * math.pi)
        total = 0.0
        for k in range(K):
            if w[d, k] > prune:
                total += w[d, k]
        mean = 0.0
        upper = 1e-6
        nk = 0
        for k in range(K):
            if w[d, k] > prune:
                mk, sk = loc[d, k], scale[d, k]
                wt = w[d, k] / total
                a = -mk / sk
                kappa = math.exp(const - half * math.log1p(a * a / n)
                                 - log_tail[d, k]) * (n + a * a) / (n - 1.0)
                mean += wt * (mk + sk * kappa)
                upper = max(upper, mk + 60.0 * sk)
                m[nk] = mk
                inv_s[nk] = 1.0 / sk
                vk[nk] = wt * math.exp(-log_tail[d, k])
                nk += 1
        out[d, 0] = mean
        for j in range(2):
            q = q_low if j == 0 else q_high
            lo, hi = 0.0, upper
            x = min(max(mean, lo), hi)
            for _ in range(100):
                surv = 0.0
                pdf = 0.0
                dpdf = 0.0
                for k in range(nk):
                    z = (x - m[k]) * inv_s[k]
                    # survival T(-z) and the density t(z) = T(-z) d log T(-z) / du from the
                    # table (the density only steers the step: no exp/log pair for it)
                    lt, dlt = _lookup_grad(-z, outer, inner, row, wmax, inv_step, z_in, inv_in)
                    sk = vk[k] * math.exp(lt)
                    surv += sk
                    dens = sk * dlt * inv_s[k]
                    pdf += dens
                    dpdf -= dens * (n + 1.0) * z * inv_s[k] / (n + z * z)
                g = 1.0 - surv - q          # F(x) - q; each survival term is at most its weight
                if abs(g) < 1e-12:
                    break
                if g > 0:
                    hi = x
                else:
                    lo = x
                den = 2.0 * pdf * pdf - g * dpdf
                step = x - 2.0 * g * pdf / den if den > 0 else _NAN
                # safeguard: bisect when the step leaves the bracket
                if not (lo <= step <= hi):
                    step = 0.5 * (lo + hi)
                x = step
            out[d, 1 + j] = x
    return out


@numba.njit(nogil=True, cache=True)
def dip_moments(y, mask, x, x_first, span, shapes, out):  # pragma: no cover - compiled
    """Moments of every U dip over each dyad's observed sessions.

    ``y``, ``mask`` (D, T): scores (0 where unobserved) and observed sessions on the
    grid ``x`` (T,); ``x_first``, ``span`` (D,): the dyad's first observed ``x`` and span;
    ``shapes`` (K, 3): dips as fractions of the span. ``out`` (4, D, K) receives the sums
    of D(t), x D(t), D(t)^2 and y D(t) over the observed sessions, D the triangular dip
    (0 outside, 1 at the bottom).
    """
    D, T = mask.shape
    K = shapes.shape[0]
    xs = np.empty(T)    # the dyad's observed x and y, in order
    ys = np.empty(T)
    for d in range(D):
        m = 0
        for t in range(T):
            if mask[d, t]:
                xs[m] = x[t]
                ys[m] = y[d, t]
                m += 1
        for k in range(K):
            s = x_first[d] + span[d] * shapes[k, 0]
            w = x_first[d] + span[d] * shapes[k, 1]
            e = x_first[d] + span[d] * shapes[k, 2]
            inv_down = 1.0 / max(w - s, 1e-12)
            inv_up = 1.0 / max(e - w, 1e-12)
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            # only the sessions strictly inside (s, e) contribute: from the first beyond s
            j = np.searchsorted(xs[:m], s, side="right")
            while j < m and xs[j] < e:
                xt = xs[j]
                v = min((xt - s) * inv_down, (e - xt) * inv_up, 1.0)
                a0 += v
                a1 += xt * v
                a2 += v * v
                a3 += ys[j] * v
                j += 1
            out[0, d, k] = a0
            out[1, d, k] = a1
            out[2, d, k] = a2
            out[3, d, k] = a3
    return out


# ====================================================================== class evidence
#: Stand-in for log(0) in the class evidence (keeps gradients and PyTensor graphs finite).
NEG = -1e30
#: Hyperparameters :func:`class_evidence_kernel` differentiates, in the order of its ``theta``.
THETA = KERNEL_THETA
#: Data inputs of the kernel after ``theta``, in order. First the session-pattern level
#: (dyads with the same observed sessions share one row): the pattern of each dyad, then
#: per pattern ``n``, ``an`` (posterior noise shape), the table ``rows``, ``lcp`` (log
#: configuration priors of u, v, un) and the score-free moments; then the dyad-level
#: score moments; then the :class:`~alliancetraj.models.changepoint.tcdf.LogTCdf` arrays
#: and ``floor`` = ``[size floor kappa, table row of the normal CDF]``.
PATTERN_INPUTS = ("n", "an", "rows", "lcp", "sx", "sxx", "u_nd", "u_xd", "u_dd", "u_ok",
                  "v_nd", "v_xd", "v_ok", "un_nd", "un_xd", "un_ok")
SCORE_INPUTS = ("syy", "sy", "sxy", "u_yd", "v_yd", "un_yd")
TABLE_INPUTS = ("tab_outer", "tab_inner", "tab_grid", "floor")
DATA_INPUTS = ("pattern", *PATTERN_INPUTS, *SCORE_INPUTS, *TABLE_INPUTS)


def floor_input(size_floor: float, table) -> np.ndarray:
    """The kernel's ``floor`` input: the size floor and the table row of the normal CDF
    (built in ``table`` when the floor is positive)."""
    row = float(table.rows_for(np.array([np.inf]))[0]) if size_floor > 0 else 0.0
    return np.array([float(size_floor), row])


def floored_z(z, a0: float, size_floor: float, var, xp=np):
    """The argument of the normal CDF approximating the prior mass above the floor.

    ``P(d > kappa sigma)`` under ``d | sigma^2 ~ N(m, sigma^2 v)``, ``sigma^2 ~ IG(a0, b0)``
    is a noncentral-t CDF ``F(z; 2 a0, kappa / sqrt(v))`` at ``z = m / sqrt(b0 v / a0)``;
    it is approximated by ``Phi(g)``, ``g = (z (1 - 1/(4 nu)) - lam) / sqrt(1 + z^2/(2 nu))``
    (Abramowitz and Stegun 26.7.10), exact at ``z = 0``. The posterior terms of the
    kernel use the same approximation.
    """
    return floor_argument(z, 2.0 * a0, size_floor / xp.sqrt(var), xp)


def class_offsets(h, noise_shape: float, n, xp=np, log_t_prior=None, size_floor: float = 0.0,
                  log_norm_cdf=None):
    """Configuration-free terms of the class log evidence, ``(..., D, 4)``:
    :func:`class_evidence_kernel`'s ``C`` plus these is the class log evidence.

    ``base_i - 0.5 sum_j log v_j - log P(c > kappa sigma)`` per dyad and class
    (``c`` the depth or amplitude; ``P`` the Student-t CDF ``T_{2 alpha}(m_c / sqrt(b0 v_c
    / alpha))`` without a floor, :func:`floored_z`'s normal approximation with one),
    ``base_i = -n_i/2 log 2 pi + alpha log b0 + log Gamma(alpha + n_i/2) - log Gamma(alpha)``.
    ``h`` maps :data:`THETA` to scalars or arrays of draws (or PyTensor variables with
    ``xp=pytensor.tensor`` and matching ``log_t_prior`` and ``log_norm_cdf``; defaults:
    SciPy).
    """
    if log_t_prior is None:
        log_t_prior = log_t_cdf
    if log_norm_cdf is None:
        log_norm_cdf = special.log_ndtr
    a0 = float(noise_shape)
    n = np.asarray(n, dtype=float)
    an = a0 + 0.5 * n
    if xp is np:
        h = {k: np.asarray(h[k], dtype=float)[..., None] for k in THETA}
    else:
        h = {k: xp.as_tensor(h[k], dtype="float64")[..., None] for k in THETA}
    b0 = h["noise_scale"]
    base = (-0.5 * n * math.log(2.0 * math.pi) + special.gammaln(an) - special.gammaln(a0)) \
        + a0 * xp.log(b0)
    lva, lvb, lvd, lvc = (xp.log(h[k]) for k in ("level_var", "slope_var", "depth_var",
                                                  "amplitude_var"))

    def prior_mass(mean, var):
        z = mean / xp.sqrt(b0 / a0 * var)
        if size_floor > 0:
            return log_norm_cdf(floored_z(z, a0, size_floor, var, xp))
        return log_t_prior(z, 2.0 * a0)

    t_depth = prior_mass(h["depth_mean"], h["depth_var"])
    t_amp = prior_mass(h["amplitude_mean"], h["amplitude_var"])
    rupture = base - 0.5 * (lva + lvb + lvd) - t_depth
    return xp.stack([base - 0.5 * (lva + lvb), base - 0.5 * (lva + lvb + lvc) - t_amp, rupture,
                     rupture], axis=-1)


def group_patterns(per_dyad: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group dyads whose score-free statistics are identical (the same observed sessions).

    ``per_dyad`` maps names to arrays with one leading row per dyad. Returns each
    dyad's pattern index and the first dyad of every pattern.
    """
    arrays = [np.asarray(v, dtype=float) for v in per_dyad.values()]
    D = len(arrays[0])
    key = np.column_stack([a.reshape(D, -1) for a in arrays])
    _, first, pattern = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return pattern.reshape(-1).astype(np.int64), first


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


@numba.njit(cache=True)
def _lookup_pass(zs, m, outer, inner, row, grid, lts, tps):
    """``lts[:m], tps[:m] = log T(zs[:m])`` and its derivative (:func:`_lookup_grad`),
    with the inner-grid step written out (see :func:`class_evidence_kernel`)."""
    wmax, inv_step, z_in, inv_in = grid[0], grid[1], grid[2], grid[3]
    last = inner.shape[1] - 2
    for t in range(m):
        z = zs[t]
        if abs(z) < z_in:
            lts[t], tps[t] = _inner_hermite(z, inner, row, z_in, inv_in, last)
        else:
            lts[t], tps[t] = _lookup_grad(z, outer, inner, row, wmax, inv_step, z_in, inv_in)


@numba.njit(cache=True, nogil=True)
def class_evidence_kernel(theta, pattern, n, an, rows, lcp, sx, sxx, u_nd, u_xd, u_dd, u_ok,
                          v_nd, v_xd, v_ok, un_nd, un_xd, un_ok, syy, sy, sxy, u_yd, v_yd, un_yd,
                          tab_outer, tab_inner, tab_grid, floor, with_grad):  # pragma: no cover
    """Configuration-dependent part of every dyad's class log evidence, and its Jacobian.

    Parameters
    ----------
    theta : (9,) array
        Hyperparameters in the order of :data:`THETA` (standardised scale).
    pattern, n, ..., floor : arrays
        :data:`DATA_INPUTS` (see :func:`kernel_inputs`).
    with_grad : bool
        Compute the Jacobian (otherwise it is returned with no rows).

    Returns
    -------
    C : (D, 4) array
        ``log sum_tau exp(f_tau) + log prior(tau)`` per class (:data:`NEG` where a
        class has no admissible configuration); the class log evidence is
        ``C + class_offsets(...)``.
    J : (D, 4, 9) array
        ``dC / dtheta`` (``(0, 4, 9)`` without ``with_grad``).

    Notes
    -----
    Every change-point class has the design ``[1, x, -D]``: ``D`` the drop indicator
    (``v_shaped``, ``unrepaired_rupture``; then ``sum D^2 = sum D``) or the U's
    triangular dip, with moments ``nd = sum D``, ``xd = sum x D``, ``dd = sum D^2`` and
    ``yd = sum y D``. Everything that does not involve the scores (the inverse of the
    trend block, the Schur complement ``s`` of the constrained coefficient, ``log s``,
    ``a_n s`` and the floor's shift ``lam = kappa sqrt(s)``) is computed once per session
    pattern. Per (dyad, configuration) there remain a residual, one division, one square
    root, one logarithm, a table lookup and, in the log-sum-exp, one exponential.

    With a size floor ``kappa > 0`` the truncation term is ``log P(c > kappa sigma | y)``,
    a noncentral-t CDF ``F(z; nu, lam)``, read as ``log Phi(g)`` with
    ``g = (z (1 - 1/(4 nu)) - lam) / sqrt(1 + z^2 / (2 nu))`` (Abramowitz and Stegun
    26.7.10; the table's normal row); without one it is the Student-t CDF ``T_nu(z)``.

    Each class's configurations go through separate passes (``z`` and ``b_n``; the
    table lookups, :func:`_lookup_pass`; the log evidences; the gradient terms) over
    small scratch arrays: the passes have no dependency from one configuration to the
    next, so the CPU overlaps their latency-bound chains. Time any change with
    ``benchmarks/bench_pymc.py --grad-only``.
    """
    b0, ma, va, mb, vb, md, vd, mc, vc = (theta[0], theta[1], theta[2], theta[3], theta[4],
                                          theta[5], theta[6], theta[7], theta[8])
    kappa = floor[0]
    nrow = int(floor[1])
    pa, pb, pd, pc = 1.0 / va, 1.0 / vb, 1.0 / vd, 1.0 / vc
    D, P = pattern.shape[0], n.shape[0]
    # ------------------------------------------------- session-pattern level (no scores)
    trend = np.empty((P, 4))             # Sa, Sab, Sb (inverse trend block), 0.5 log det
    # per class and configuration: q1, q2, 1 / s, 0.5 log s, a_n s, lam, d lam / d p
    schur_u = np.empty((P, u_nd.shape[1], 7))
    schur_v = np.empty((P, v_nd.shape[1], 7))
    schur_un = np.empty((P, un_nd.shape[1], 7))
    for p in range(P):
        A11, A12, A22 = n[p] + pa, sx[p], sxx[p] + pb
        detA = A11 * A22 - A12 * A12
        Sa, Sab, Sb = A22 / detA, -A12 / detA, A11 / detA
        trend[p, 0], trend[p, 1], trend[p, 2] = Sa, Sab, Sb
        trend[p, 3] = 0.5 * math.log(detA)
        for nd_a, xd_a, dd_a, ok_a, prec, out in ((u_nd, u_xd, u_dd, u_ok, pc, schur_u),
                                                  (v_nd, v_xd, v_nd, v_ok, pd, schur_v),
                                                  (un_nd, un_xd, un_nd, un_ok, pd, schur_un)):
            for j in range(nd_a.shape[1]):
                if ok_a[p, j]:
                    b1, b2 = -nd_a[p, j], -xd_a[p, j]
                    q1 = Sa * b1 + Sab * b2
                    q2 = Sab * b1 + Sb * b2
                    sc = dd_a[p, j] + prec - (b1 * q1 + b2 * q2)
                    out[p, j, 0], out[p, j, 1] = q1, q2
                    out[p, j, 2], out[p, j, 3] = 1.0 / sc, 0.5 * math.log(sc)
                    out[p, j, 4] = an[p] * sc
                    lam = kappa * math.sqrt(sc)
                    out[p, j, 5] = lam
                    out[p, j, 6] = 0.5 * lam / sc
    # ----------------------------------------------------------------------- dyads
    C = np.empty((D, 4))
    J = np.zeros((D if with_grad else 0, 4, 9))
    kmax = max(u_nd.shape[1], v_nd.shape[1], un_nd.shape[1])
    fs = np.empty(kmax)       # log evidence of each admissible configuration
    gs = np.empty((kmax, 7))  # its gradient (b0, then means, then precisions)
    acc = np.empty(7)
    zs = np.empty(kmax)
    gz = np.empty(kmax)       # the table's argument (z, or g with a floor)
    mus = np.empty(kmax)
    bns = np.empty(kmax)
    rs = np.empty(kmax)
    lts = np.empty(kmax)
    tps = np.empty(kmax)
    tls = np.empty(kmax)      # d log F / d lam (with a floor)
    js = np.empty(kmax, dtype=np.int64)
    for i in range(D):
        p = pattern[i]
        ani = an[p]
        nu = 2.0 * ani
        cnu = 1.0 - 0.25 / nu
        half_nu = 0.5 / nu
        row = rows[p] if kappa == 0.0 else nrow
        Sa, Sab, Sb, half_logdet = trend[p, 0], trend[p, 1], trend[p, 2], trend[p, 3]
        # ------------------------------------------------------------- linear (k=0)
        e1 = sy[i] + ma * pa
        e2 = sxy[i] + mb * pb
        g1 = Sa * e1 + Sab * e2
        g2 = Sab * e1 + Sb * e2
        bn_lin = b0 + 0.5 * (syy[i] + ma * ma * pa + mb * mb * pb - (e1 * g1 + e2 * g2))
        C[i, 0] = -half_logdet - ani * math.log(bn_lin)
        if with_grad:
            kap = -ani / bn_lin
            da, db = ma - g1, mb - g2
            J[i, 0, 0] = kap
            J[i, 0, 1] = kap * pa * da
            J[i, 0, 3] = kap * pb * db
            J[i, 0, 2] = -pa * pa * (-0.5 * Sa + 0.5 * kap * da * da)
            J[i, 0, 4] = -pb * pb * (-0.5 * Sb + 0.5 * kap * db * db)
        # ------------------------------ u_shaped (k=1), v_shaped (k=2), unrepaired (k=3)
        for k in (1, 2, 3):
            if k == 1:
                nd_a, xd_a, yd_a, ok_a, sch = u_nd, u_xd, u_yd, u_ok, schur_u
                mk, pk, im, iv = mc, pc, 7, 8
            elif k == 2:
                nd_a, xd_a, yd_a, ok_a, sch = v_nd, v_xd, v_yd, v_ok, schur_v
                mk, pk, im, iv = md, pd, 5, 6
            else:
                nd_a, xd_a, yd_a, ok_a, sch = un_nd, un_xd, un_yd, un_ok, schur_un
                mk, pk, im, iv = md, pd, 5, 6
            bn0 = bn_lin + 0.5 * mk * mk * pk
            base_r = mk * pk
            m = 0
            for j in range(nd_a.shape[1]):
                if not ok_a[p, j]:
                    continue
                resid = (base_r - yd_a[i, j]) + (nd_a[p, j] * g1 + xd_a[p, j] * g2)
                muc = resid * sch[p, j, 2]
                bn = bn0 - 0.5 * resid * muc
                r = math.sqrt(sch[p, j, 4] / bn)
                z = muc * r
                zs[m] = z
                if kappa == 0.0:
                    gz[m] = z
                else:
                    gz[m] = (z * cnu - sch[p, j, 5]) / math.sqrt(1.0 + z * z * half_nu)
                mus[m] = muc
                bns[m] = bn
                rs[m] = r
                js[m] = j
                m += 1
            _lookup_pass(gz, m, tab_outer, tab_inner, row, tab_grid, lts, tps)
            for t in range(m):
                fs[t] = lts[t] - sch[p, js[t], 3] - ani * math.log(bns[t])
            if with_grad:
                if kappa != 0.0:
                    # chain rule through g(z, lam): tps becomes d log F / dz
                    for t in range(m):
                        z = zs[t]
                        den = 1.0 + z * z * half_nu
                        sq = math.sqrt(den)
                        lam = sch[p, js[t], 5]
                        tls[t] = -tps[t] / sq
                        tps[t] = tps[t] * (cnu + lam * z * half_nu) / (den * sq)
                # d/dp_j = c1 psi_j^2 + c2 delta_j^2 + c3 psi_j delta_j,
                # d/dm_j = p_j (c4 delta_j + c3 psi_j), d/db0 = c4; psi = (-q1, -q2, 1),
                # delta = m - mu with mu_ab = g - q mu_c (see the module notes); with a
                # floor, lam = kappa sqrt(s) adds d lam / d p_j = (kappa / 2 sqrt s) psi_j^2
                for t in range(m):
                    j = js[t]
                    q1, q2, inv_s = sch[p, j, 0], sch[p, j, 1], sch[p, j, 2]
                    tp, z, muc, r = tps[t], zs[t], mus[t], rs[t]
                    inv_bn = 1.0 / bns[t]
                    tz = tp * z
                    c1 = 0.5 * (tz - 1.0) * inv_s
                    if kappa != 0.0:
                        c1 += tls[t] * sch[p, j, 6]
                    c4 = -(ani + 0.5 * tz) * inv_bn
                    c2 = 0.5 * c4
                    c3 = tp * r * inv_s
                    dla = ma - (g1 - q1 * muc)
                    dlb = mb - (g2 - q2 * muc)
                    dlc = mk - muc
                    gs[t, 0] = c4
                    gs[t, 1] = c4 * dla - c3 * q1
                    gs[t, 2] = c4 * dlb - c3 * q2
                    gs[t, 3] = c4 * dlc + c3
                    gs[t, 4] = c1 * q1 * q1 + c2 * dla * dla - c3 * q1 * dla
                    gs[t, 5] = c1 * q2 * q2 + c2 * dlb * dlb - c3 * q2 * dlb
                    gs[t, 6] = c1 + c2 * dlc * dlc + c3 * dlc
            if m == 0:
                C[i, k] = NEG
                continue
            C[i, k] = _logsumexp(fs, gs, m, 7, acc, with_grad) - half_logdet + lcp[p, k - 1]
            if with_grad:
                J[i, k, 0] = acc[0]
                J[i, k, 1] = pa * acc[1]
                J[i, k, 3] = pb * acc[2]
                J[i, k, im] = pk * acc[3]
                J[i, k, 2] = -pa * pa * (acc[4] - 0.5 * Sa)
                J[i, k, 4] = -pb * pb * (acc[5] - 0.5 * Sb)
                J[i, k, iv] = -pk * pk * acc[6]
    return C, J
