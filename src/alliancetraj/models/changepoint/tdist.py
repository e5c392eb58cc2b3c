"""The Student-t log CDF and log density by SciPy: the reference every table and kernel is
checked against (nothing here imports numba, PyMC or PyTensor).

Each conjugate change-point model with a sign-constrained coefficient carries a
truncation term ``log T_nu(z)`` per configuration (``T_nu``: the standard
Student-t CDF; ``nu = 2 alpha + n`` is fixed per dyad).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = ["floor_argument", "log_t_cdf", "t_pdf_log"]


def floor_argument(z, dof, lam, xp=np):
    """``g`` of the normal approximation ``F(z; dof, lam) ~ Phi(g)`` of a noncentral-t CDF,
    ``g = (z (1 - 1/(4 dof)) - lam) / sqrt(1 + z^2 / (2 dof))`` (Abramowitz and Stegun
    26.7.10): the mass above the size floor in every back end (``xp``: numpy or PyTensor)."""
    return (z * (1.0 - 0.25 / dof) - lam) / xp.sqrt(1.0 + z * z / (2.0 * dof))


def log_t_cdf(z, dof) -> np.ndarray:
    """``log T_dof(z)`` with SciPy; the far lower tail (where the CDF underflows) by its series.
    ``dof = inf`` is the normal CDF."""
    z = np.asarray(z, dtype=float)
    dof = np.asarray(dof, dtype=float)
    if np.all(np.isinf(dof)):
        return np.broadcast_to(special.log_ndtr(z), np.broadcast_shapes(z.shape, dof.shape)).copy()
    with np.errstate(divide="ignore", under="ignore"):
        out = np.log(special.stdtr(dof, z))
        bad = ~np.isfinite(out)
        if np.any(bad):
            # T = 0.5 I_x(dof / 2, 1 / 2) with x = dof / (dof + z^2) -> 0: leading terms of
            # the incomplete-beta series
            zz, dd = np.broadcast_arrays(z, dof)
            zb, db = zz[bad], dd[bad]
            xb = db / (db + zb * zb)
            out = np.array(out, copy=True)
            out[bad] = (math.log(0.5) + 0.5 * db * np.log(xb) + 0.5 * np.log1p(-xb)
                        - np.log(0.5 * db) - special.betaln(0.5 * db, 0.5))
    return out


def t_pdf_log(z, dof) -> np.ndarray:
    """Log density of the standard Student-t (the normal for ``dof = inf``)."""
    z = np.asarray(z, dtype=float)
    dof = np.asarray(dof, dtype=float)
    if np.all(np.isinf(dof)):
        return np.broadcast_to(-0.5 * z * z - 0.5 * math.log(2.0 * math.pi),
                               np.broadcast_shapes(z.shape, dof.shape)).copy()
    return (special.gammaln((dof + 1) / 2) - special.gammaln(dof / 2)
            - 0.5 * np.log(dof * math.pi) - (dof + 1) / 2 * np.log1p(z * z / dof))
