r"""The collapsed cohort model's class evidence as a PyTensor Op.

:class:`ClassEvidenceOp` wraps
:func:`alliancetraj.models.changepoint.kernels.class_evidence_kernel` (one fused numba pass
that returns every dyad's class log evidence and its exact gradient with respect to
the nine continuous hyperparameters :data:`THETA`; the equations are in
:mod:`alliancetraj.models.changepoint.kernels`) for PyTensor: ``perform``, which calls the
disk-cached kernel, for the C/Python back ends that PyMC and this package's nutpie
route use, and a numba implementation for PyTensor's numba back end. Its second
output, the Jacobian, is what its gradient uses, so one call serves logp and
gradient. The same kernel is the exact engine's empirical-Bayes objective. Terms
that do not depend on the configuration (the normalising constants, the prior
truncation :math:`\log T_{2\alpha}(m_c/\sqrt{b_0 v_c/\alpha})`) are added outside by
:func:`class_offsets`. This module imports numba and PyTensor: import it only where
they are needed.
"""

from __future__ import annotations

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

from . import pymc_design as pdz
from .changepoint.kernels import (
    DATA_INPUTS,
    PATTERN_INPUTS,
    SCORE_INPUTS,
    THETA,
    class_evidence_kernel,
    floor_input,
    group_patterns,
)
from .changepoint.kernels import class_offsets as _class_offsets
from .changepoint.spec import DEFAULT_SIZE_FLOOR
from .changepoint.tcdf import LogTCdf

__all__ = [
    "THETA",
    "ClassEvidenceOp",
    "class_evidence_kernel",
    "class_log_evidence_draws",
    "class_log_evidence_pt",
    "class_offsets",
    "kernel_inputs",
]

# ========================================================================= inputs, offsets
def kernel_inputs(stats: pdz.CohortStats, noise_shape: float,
                  table: LogTCdf | None = None, size_floor: float = DEFAULT_SIZE_FLOOR) -> dict[str, Any]:
    """The kernel's data inputs (:data:`DATA_INPUTS`) for a cohort.

    Dyads are grouped by session pattern (identical score-free statistics); the
    score moments are passed through unchanged (they may be PyTensor variables, e.g.
    ``pm.Data`` containers).
    """
    n = np.asarray(stats.n, dtype=float)
    dof = 2.0 * noise_shape + n
    if table is None:
        table = LogTCdf()
    per_dyad = {"n": n, "an": 0.5 * dof, "rows": table.rows_for(dof),
                "lcp": stats.log_config_prior}
    per_dyad.update({k: getattr(stats, k) for k in PATTERN_INPUTS if k not in per_dyad})
    pattern, first = group_patterns(per_dyad)
    out: dict[str, Any] = {"pattern": pattern}
    out.update({k: np.ascontiguousarray(np.asarray(per_dyad[k])[first]) for k in PATTERN_INPUTS})
    out.update({k: getattr(stats, k) if hasattr(getattr(stats, k), "type")  # PyTensor
                else np.ascontiguousarray(getattr(stats, k), dtype=float) for k in SCORE_INPUTS})
    out["floor"] = floor_input(size_floor, table)
    out.update(zip(("tab_outer", "tab_inner", "tab_grid"), table.arrays, strict=True))
    return {k: out[k] for k in DATA_INPUTS}


def class_offsets(h: dict[str, Any], noise_shape: float, n: np.ndarray, xp: Any = np,
                  size_floor: float = DEFAULT_SIZE_FLOOR):
    """Configuration-free terms of the class log evidence, ``(..., D, 4)``
    (:func:`alliancetraj.models.changepoint.kernels.class_offsets`), for the numpy (``h`` values
    scalars or arrays of draws) or the PyTensor (``xp=pytensor.tensor``) back end.
    """
    if xp is np:
        return _class_offsets(h, noise_shape, n, size_floor=size_floor)
    return _class_offsets(h, noise_shape, n, xp=xp, log_t_prior=_log_t_prior_pt,
                          size_floor=size_floor, log_norm_cdf=_log_norm_cdf_pt)


def _log_norm_cdf_pt(g):
    """``log Phi(g)`` in PyTensor (for the prior mass above the size floor; ``g`` moderate)."""
    return pt.log(0.5 * pt.erfc(-g / np.sqrt(2.0)))


def _log_t_prior_pt(z, dof: float):
    """``log T_dof(z)`` in PyTensor for a scalar ``z`` and constant ``dof`` (incomplete beta)."""
    x = dof / (dof + z * z)
    ib = pt.betainc(0.5 * dof, 0.5, x)
    return pt.switch(pt.lt(z, 0), pt.log(0.5) + pt.log(ib), pt.log1p(-0.5 * ib))


def class_log_evidence_draws(stats: pdz.CohortStats, noise_shape: float,
                             hdraws: dict[str, np.ndarray], size_floor: float = DEFAULT_SIZE_FLOOR
                             ) -> np.ndarray:
    """``log p(y_i | class, phi^(s))`` for every draw, ``(S, D, 4)``, with the model's own kernel.

    ``hdraws`` maps each of :data:`THETA` to an ``(S,)`` array of standardised draws.
    Draws are spread over the CPU cores (the kernel releases the GIL).
    """
    inputs = tuple(kernel_inputs(stats, noise_shape, size_floor=size_floor).values())
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
                             stats.n, size_floor=size_floor)


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
    def class_evidence(theta, pattern, n, an, rows, lcp, sx, sxx, u_nd, u_xd, u_dd, u_ok,
                       v_nd, v_xd, v_ok, un_nd, un_xd, un_ok, syy, sy, sxy, u_yd, v_yd, un_yd,
                       tab_outer, tab_inner, tab_grid, floor):
        return class_evidence_kernel(theta, pattern, n, an, rows, lcp, sx, sxx, u_nd, u_xd,
                                     u_dd, u_ok, v_nd, v_xd, v_ok, un_nd, un_xd, un_ok, syy, sy,
                                     sxy, u_yd, v_yd, un_yd, tab_outer, tab_inner, tab_grid,
                                     floor, True)

    return class_evidence, 1


def class_log_evidence_pt(stats: pdz.CohortStats, h: dict[str, Any], noise_shape: float,
                          size_floor: float = DEFAULT_SIZE_FLOOR):
    """``(D, 4)`` PyTensor class log evidence; ``h`` values are floats or PyTensor scalars."""
    theta = pt.stack([pt.as_tensor(h[k], dtype="float64") for k in THETA])
    # numpy inputs as shared variables, not constants: compiled code then receives them
    # at run time instead of embedding megabytes of constants (slow to compile)
    data = [pytensor.shared(v, name=f"evidence_{k}") if isinstance(v, np.ndarray) else v
            for k, v in kernel_inputs(stats, noise_shape, size_floor=size_floor).items()]
    C, _ = ClassEvidenceOp()(theta, *data)
    return C + class_offsets(h, noise_shape, stats.n, xp=pt, size_floor=size_floor)
