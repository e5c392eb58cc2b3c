"""Compiled inner loops of the exact engine (numba; imported lazily by ``exact.py``).

Two kernels, both read Student-t log CDFs from the cubic tables of
:class:`alliancetraj.models.exact._LogTCdf` (coefficients per grid interval in
``w = asinh(z)``):

* :func:`log_t_cdf_table` evaluates the tables for a ``(D, K)`` block whose rows
  share a degree of freedom (one table row per dyad); points off the table come
  back as NaN for the caller's exact fallback.
* :func:`truncated_t_mixture` returns the mean and two quantiles of a mixture of
  Student-t densities truncated to ``(0, inf)``, per dyad, by a safeguarded
  Newton iteration that stops per dyad (the vectorised version had to iterate
  every row until the slowest converged).

numba is a dependency of PyTensor, hence always installed with PyMC. The kernels
are compiled on first use and cached on disk; they release the GIL, so that the
engine's block threads run them in parallel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_NAN = math.nan


@numba.njit(nogil=True, cache=True, inline="always")
def _lookup(z: float, coef: np.ndarray, first: int, wmax: float, inv_step: float) -> float:
    """log T(z) from one table row ``coef`` (G, 4); NaN when z is off the table."""
    x = (math.asinh(z) + wmax) * inv_step
    if not (x >= first and x < coef.shape[0] - 1):   # also catches NaN
        return _NAN
    i = int(x)
    t = x - i
    return coef[i, 0] + t * (coef[i, 1] + t * (coef[i, 2] + t * coef[i, 3]))


@numba.njit(nogil=True, cache=True)
def log_t_cdf_table(z, rows, coef, first, wmax, inv_step, out):  # pragma: no cover - compiled
    """``out[d, k] = log T(z[d, k])`` with the table row ``rows[d]`` (NaN off the table)."""
    D, K = z.shape
    for d in range(D):
        r = rows[d]
        c = coef[r]
        f = first[r]
        for k in range(K):
            out[d, k] = _lookup(z[d, k], c, f, wmax, inv_step)
    return out


@numba.njit(nogil=True, cache=True)
def truncated_t_mixture(w, loc, scale, log_tail, nu, rows, coef, first, wmax, inv_step,
                        prune, q_low, q_high, out):  # pragma: no cover - compiled
    """Mean and the ``q_low`` / ``q_high`` quantiles of a truncated Student-t mixture.

    Per dyad d: components k with ``w[d, k] > prune`` (renormalised), location
    ``loc``, scale ``scale``, degrees of freedom ``nu[d]``, each truncated to
    (0, inf) with log mass ``log_tail[d, k]`` above zero. ``out`` (D, 3) receives
    the mean and the two quantiles, the mixture CDF solved to 1e-12 by Halley
    steps (the density's derivative is free) safeguarded by bisection.
    """
    D, K = w.shape
    m = np.empty(K)
    inv_s = np.empty(K)
    wk = np.empty(K)        # weight / (scale * mass above zero): multiplies the density
    vk = np.empty(K)        # weight / mass above zero: multiplies the survival T(-z)
    for d in range(D):
        n = nu[d]
        c = coef[rows[d]]
        f = first[rows[d]]
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
                wk[nk] = vk[nk] * inv_s[nk] * math.exp(const)
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
                    lt = _lookup(-z, c, f, wmax, inv_step)
                    if lt == lt:
                        surv += vk[k] * math.exp(lt)
                    elif z < 0:      # off the table on the right: T(-z) = 1
                        surv += vk[k]
                    u = 1.0 + z * z / n
                    dens = wk[k] * math.exp(-half * math.log(u))
                    pdf += dens
                    dpdf -= dens * (n + 1.0) * z * inv_s[k] / (n * u)
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
