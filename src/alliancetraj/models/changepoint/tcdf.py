"""Tabulated Student-t log CDFs: the tables every compiled kernel reads.

:class:`LogTCdf` holds cached per-dof tables of ``log T_nu(z)`` (the truncation
term of each configuration's evidence; ``nu = 2 alpha + n`` is fixed per dyad) that
the compiled kernels of :mod:`alliancetraj.models.changepoint.kernels` read. One
table format serves the exact engine, its empirical-Bayes fit and the PyMC mixture.
:func:`~alliancetraj.models.changepoint.tdist.log_t_cdf` (SciPy) is the reference.

Importing this module does not import numba: calling a table does (the kernels).
"""

from __future__ import annotations

import threading

import numpy as np

from .tdist import log_t_cdf, t_pdf_log

__all__ = ["LogTCdf", "log_t_cdf", "t_pdf_log"]


class LogTCdf:
    """``log T_nu(z)`` from cached per-dof tables.

    Every dyad has one posterior dof (``2 alpha + n``), so a cohort needs few tables;
    they are built on first request (thread-safe). Each table holds ``log T`` and its
    derivative (per grid step) at the nodes of two uniform grids, read by cubic
    Hermite interpolation: one in ``z`` over ``|z| <= 16`` (step 0.005), where nearly
    all arguments fall and no transcendental function is needed to locate them, and
    one in ``w = asinh(z)`` over ``|w| <= 9`` (step 0.005; the inner grid's nodes are
    this grid's interpolant, so building a table costs one pass of CDF
    evaluations). Absolute error below 1e-10 for dof <= 60 and below 1e-9 for dof
    <= 600 (checked in the tests against :func:`log_t_cdf`). Calling the table falls
    back to :func:`log_t_cdf` off the grids; the compiled kernels instead
    extrapolate linearly in ``w`` below them (``log T ~ -nu log|z|`` is asymptotically
    linear there) and return 0 above them (``|log T| < 1e-16``).
    """

    STEP = 0.005
    WMAX = 9.0
    Z_INNER = 16.0
    INNER_STEP = 0.005

    def __init__(self) -> None:
        w = np.arange(-self.WMAX, self.WMAX + self.STEP / 2, self.STEP)
        self._z = np.sinh(w)
        self._dz = self.STEP * np.cosh(w)   # dz per grid step
        self._z_in = self.INNER_STEP * np.arange(round(2 * self.Z_INNER / self.INNER_STEP) + 1) \
            - self.Z_INNER
        self._index: dict[float, int] = {}
        self._outer = np.zeros((0, len(w), 2))
        self._inner = np.zeros((0, len(self._z_in), 2))
        self._lock = threading.Lock()

    def _table(self, nu: float) -> tuple[np.ndarray, np.ndarray]:
        f = log_t_cdf(self._z, nu)
        d = np.exp(t_pdf_log(self._z, nu) - f) * self._dz   # derivative per grid step
        outer = np.stack([f, d], axis=-1)
        # the inner grid's nodes: the outer interpolant and its derivative
        z = self._z_in
        x = (np.arcsinh(z) + self.WMAX) / self.STEP
        i = np.floor(x).astype(np.int64)
        s = x - i
        f0, d0, f1, d1 = f[i], d[i], f[i + 1], d[i + 1]
        c2 = 3.0 * (f1 - f0) - 2.0 * d0 - d1
        c3 = 2.0 * (f0 - f1) + d0 + d1
        val = f0 + s * (d0 + s * (c2 + s * c3))
        dval = (d0 + s * (2.0 * c2 + 3.0 * s * c3)) / self.STEP / np.sqrt(1.0 + z * z)
        return outer, np.stack([val, dval * self.INNER_STEP], axis=-1)

    def _rows(self, dofs: np.ndarray) -> np.ndarray:
        new = [nu for nu in dict.fromkeys(float(v) for v in dofs) if nu not in self._index]
        if new:
            # built outside the lock (threads asking for other dofs go on); a dof that two
            # threads build at once is kept once
            tables = {nu: self._table(nu) for nu in new}
            with self._lock:   # blocks of one cohort may ask from several threads
                tables = {nu: t for nu, t in tables.items() if nu not in self._index}
                if tables:
                    base = len(self._outer)
                    self._outer = np.concatenate(
                        [self._outer, np.stack([t[0] for t in tables.values()])])
                    self._inner = np.concatenate(
                        [self._inner, np.stack([t[1] for t in tables.values()])])
                    for k, nu in enumerate(tables):
                        self._index[nu] = base + k
        return np.array([self._index[float(nu)] for nu in dofs], dtype=np.int64)

    def rows_for(self, dof) -> np.ndarray:
        """Table row of every entry of ``dof`` (tables are built on first request)."""
        dof = np.asarray(dof, dtype=float)
        uniq, inverse = np.unique(dof, return_inverse=True)
        return self._rows(uniq)[inverse.reshape(dof.shape)]

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(asinh-grid rows, inner uniform-z rows, ``[w offset, 1 / step, z_inner,
        1 / inner step]``) for the compiled kernels; rows hold (value, derivative per
        step) at the nodes."""
        return self._outer, self._inner, np.array(
            [self.WMAX, 1.0 / self.STEP, self.Z_INNER, 1.0 / self.INNER_STEP])

    def __call__(self, z, dof) -> np.ndarray:
        from . import kernels

        z = np.asarray(z, dtype=float)
        dof = np.asarray(dof, dtype=float)
        if z.ndim == 2 and dof.shape == (z.shape[0], 1):
            # the engine's case: one dof per dyad (row), broadcast over configurations
            z2, dof_rows = z, dof.reshape(-1)
        else:
            z2 = z.reshape(-1, 1)
            dof_rows = np.broadcast_to(dof, z.shape).reshape(-1)
        rows = self.rows_for(dof_rows)
        val = kernels.log_t_cdf_table(np.ascontiguousarray(z2), rows, *self.arrays,
                                       np.empty(z2.shape))
        val = val.reshape(z.shape)
        off = np.isnan(val)
        if off.any():
            val[off] = log_t_cdf(z[off], np.broadcast_to(dof, z.shape)[off])
        return val
