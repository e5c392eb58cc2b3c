"""Empirical Bayes for the change-point model: the priors fitted to the cohort.

The hyperparameters :math:`(\alpha, \beta, m, v)` are estimated by maximising the
total marginal likelihood :math:`\\sum_i \\log \\sum_k \\pi_k\\, p(y_i \\mid k)`
(L-BFGS-B with the analytic gradient from the compiled class-evidence kernel,
:func:`eb_partial`), the class proportions by EM (:func:`em_iterate`). Every
objective here is a sum over dyads of additive pieces (:func:`eb_partial`,
:func:`em_terms`), so the driver may compute them per block or per partition and
reduce by addition (:mod:`alliancetraj.models.exact` does, on threads or Dask).
"""

from __future__ import annotations

import functools
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy import optimize

from ..errors import ConvergenceWarning, SmallCohortWarning
from .changepoint.spec import (
    BOUNDS,
    DEFAULT_SIZE_FLOOR,
    SIZE_PRIOR_MEAN,
    TRANSFORMS,
    UN,
    Hyperparameters,
    K,
    U,
    V,
    from_theta,
    to_theta,
)
from .changepoint.statistics import ConfigStats, kernel_view
from .changepoint.tcdf import LogTCdf
from .changepoint.tdist import floor_argument, log_t_cdf, t_pdf_log

__all__ = [
    "class_offsets_grad",
    "eb_partial",
    "em_class_probs",
    "em_iterate",
    "em_prepare",
    "em_terms",
    "fit_eb",
    "kernel_class_evidence",
    "mixture_terms",
    "moment_start",
    "normal_table",
    "share_prior",
    "view_class_evidence",
    "warn_eb",
    "warn_small_cohort",
]


def em_prepare(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-scaled likelihoods ``exp(L - max)`` (finite) and the row maxima, for :func:`em_terms`."""
    m = np.max(L, axis=1, keepdims=True)
    return np.exp(L - m), m


def em_terms(prepared: tuple[np.ndarray, np.ndarray], pi: np.ndarray) -> tuple[float, np.ndarray]:
    """One EM step's additive pieces over a set of dyads: (log likelihood, summed responsibilities).

    Both are sums over dyads, so blocks of a cohort combine by addition (the Dask
    scale-out maps this over partitions and sums).
    """
    lik, m = prepared
    mix = lik @ pi
    ll = float(np.sum(np.log(mix) + m[:, 0]))
    return ll, (lik * pi).T @ (1.0 / mix)


#: Cohorts below this many dyads get the stronger Dirichlet prior on the class shares.
SMALL_COHORT = 100
#: Below this many dyads the class shares are barely estimable: a warning says so.
TOO_FEW_TO_POOL = 50


def share_prior(n_dyads: int) -> float:
    """The symmetric Dirichlet concentration of the class shares' prior for a cohort size.

    ``a = 5`` below :data:`SMALL_COHORT` dyads, ``a = 2`` from there: the posterior mode
    of the shares is then ``(n_k + a - 1) / (N + K (a - 1))`` (``n_k`` the summed class
    responsibilities), which keeps a small cohort from emptying a class, and with it
    from turning every dyad's probability for the others to near certainty (measured
    on 30-dyad cohorts of the independent worlds: worst-world macro-F1 0.51 with plain
    EM, 0.56 with ``a = 2``, 0.62 with ``a = 5``; no effect at 400 dyads).
    """
    return 5.0 if n_dyads < SMALL_COHORT else 2.0


def warn_small_cohort(n_dyads: int) -> None:
    """A warning that the cohort is too small to pool (class shares, priors)."""
    if n_dyads < TOO_FEW_TO_POOL:
        warnings.warn(
            f"Only {n_dyads} dyads: too few to estimate the class shares and priors well "
            f"(pooling needs about {TOO_FEW_TO_POOL} or more). The shares get a Dirichlet("
            f"{share_prior(n_dyads):g}) prior that pulls them towards equal; read the "
            "probabilities as rough, or pass hyperparameters= fitted on a larger cohort "
            "(e.g. result.hyperparameters).",
            SmallCohortWarning,
            stacklevel=4,
        )


def em_iterate(step, n_dyads: int, init=None, *, tol: float = 1e-10, max_iter: int = 2000,
               concentration: float | None = None) -> tuple[np.ndarray, float]:
    """EM (posterior mode under a symmetric Dirichlet(``concentration``) prior; default
    :func:`share_prior`) for the class proportions; ``step(pi)`` returns the summed
    :func:`em_terms`."""
    a = share_prior(n_dyads) if concentration is None else float(concentration)
    pi = np.full(K, 1.0 / K) if init is None else np.asarray(init, dtype=float)
    prev = -np.inf
    for _ in range(max_iter):
        ll, resp = step(pi)
        ll += (a - 1.0) * float(np.sum(np.log(pi)))
        pi = np.clip((resp + a - 1.0) / (n_dyads + K * (a - 1.0)), 1e-12, None)
        pi = pi / pi.sum()
        if ll - prev < tol * max(1.0, abs(ll)):
            break
        prev = ll
    return pi, step(pi)[0] + (a - 1.0) * float(np.sum(np.log(pi)))


def em_class_probs(L: np.ndarray, init=None, *, tol: float = 1e-10, max_iter: int = 2000,
                   concentration: float | None = None) -> tuple[np.ndarray, float]:
    """EM for the class proportions given per-dyad class log evidences; returns (pi, log
    posterior up to a constant)."""
    prepared = em_prepare(L)
    return em_iterate(lambda pi: em_terms(prepared, pi), L.shape[0], init, tol=tol,
                      max_iter=max_iter, concentration=concentration)


def moment_start(stats_list: list[ConfigStats]) -> Hyperparameters:
    """Starting values from per-dyad least-squares fits of the linear model (standardised)."""
    n = np.concatenate([s.n for s in stats_list])
    sx = np.concatenate([s.sx for s in stats_list])
    sxx = np.concatenate([s.sxx for s in stats_list])
    sy = np.concatenate([s.sy for s in stats_list])
    sxy = np.concatenate([s.sxy for s in stats_list])
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
    return Hyperparameters(
        noise_shape=shape,
        noise_scale=s2_typ * (shape - 1.0) * 0.7,
        level_mean=float(np.mean(a)),
        level_var=max(float(np.var(a)) / s2_typ, 1.0),
        slope_mean=float(np.mean(b)),
        slope_var=max(var_b / s2_typ, 1e-4),
        depth_mean=SIZE_PRIOR_MEAN,
        depth_var=25.0,
        amplitude_mean=SIZE_PRIOR_MEAN,
        amplitude_var=25.0,
    )


def softmax_pi(logits: np.ndarray) -> np.ndarray:
    z = np.concatenate([[0.0], logits])
    z = np.exp(z - z.max())
    return z / z.sum()


def step_sizes(theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    hi = np.array([BOUNDS[n][1] for n, _ in TRANSFORMS])
    h = step * np.maximum(1.0, np.abs(theta))
    return np.where(theta + h > hi, -h, h)


def mixture_terms(L: np.ndarray, pi: np.ndarray) -> tuple[float, np.ndarray]:
    """Sum over dyads of log sum_k pi_k exp(L_dk), and the (D, K) class responsibilities."""
    m = L.max(axis=1)
    lik = np.exp(L - m[:, None]) * pi
    tot = lik.sum(axis=1)
    with np.errstate(divide="ignore"):
        ll = float(np.sum(m + np.log(tot)))
    return ll, lik / tot[:, None]


def kernel_class_evidence(stats: ConfigStats, h: Hyperparameters, table: LogTCdf,
                           grad: bool) -> tuple[np.ndarray, np.ndarray]:
    """(D, 4) class log evidences by the compiled kernel and, with ``grad``, the (D, 4, 9)
    derivatives in the natural hyperparameters (:data:`kernels.THETA` order).

    Equal to :func:`~alliancetraj.models.changepoint.evidence.class_log_evidence` of
    :func:`~alliancetraj.models.changepoint.evidence.config_evidence` up to the t-CDF table's
    accuracy (-inf for classes without an admissible configuration).
    """
    return view_class_evidence(kernel_view(stats), stats.n, h, table, grad)


def view_class_evidence(v: dict[str, Any], n: np.ndarray, h: Hyperparameters, table: LogTCdf,
                        grad: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kernel_class_evidence` from the kernel's inputs (``v``: a
    :func:`~alliancetraj.models.changepoint.statistics.kernel_view`) and each dyad's
    number of sessions ``n``."""
    from .changepoint import kernels

    a0 = h.noise_shape
    dof = 2.0 * a0 + v["n"]
    floor = kernels.floor_input(h.size_floor, table)
    # with a size floor the kernel reads only the table's normal row: no t rows to build
    rows = table.rows_for(dof) if h.size_floor == 0 else np.zeros(len(dof), dtype=np.int64)
    inputs = {**v, "an": 0.5 * dof, "rows": rows, "floor": floor}
    inputs.update(zip(("tab_outer", "tab_inner", "tab_grid"), table.arrays, strict=True))
    hd = {k: getattr(h, k) for k in kernels.THETA}
    C, J = kernels.class_evidence_kernel(
        np.array(list(hd.values())), *(inputs[k] for k in kernels.DATA_INPUTS), grad)
    C[C <= kernels.NEG] = -np.inf     # no admissible configuration
    return C + kernels.class_offsets(hd, a0, n, size_floor=h.size_floor), J


def class_offsets_grad(h: Hyperparameters) -> np.ndarray:
    """(4, 9) derivatives of the configuration-free terms of the class log evidences
    (:func:`alliancetraj.models.kernels.class_offsets`; the same for every dyad) in the
    natural hyperparameters (:data:`alliancetraj.models.kernels.THETA` order)."""
    a0, b0, kappa = h.noise_shape, h.noise_scale, h.size_floor
    nu = 2.0 * a0
    # natural order: b0, ma, va, mb, vb, md, vd, mc, vc
    G = np.zeros((K, 9))
    G[:, 0] = a0 / b0
    G[:, 2] = -0.5 / h.level_var
    G[:, 4] = -0.5 / h.slope_var
    G[[V, UN], 6] = -0.5 / h.depth_var
    G[U, 8] = -0.5 / h.amplitude_var
    # the prior truncation terms -log P(c > kappa sigma) (kernels.class_offsets)
    for rows, m_i, v_i, mean, var in (([V, UN], 5, 6, h.depth_mean, h.depth_var),
                                      ([U], 7, 8, h.amplitude_mean, h.amplitude_var)):
        scale = math.sqrt(b0 / a0 * var)
        z = mean / scale
        if kappa > 0:
            lam = kappa / math.sqrt(var)
            den = 1.0 + z * z / (2.0 * nu)
            g = float(floor_argument(z, nu, lam))
            hazard = math.exp(float(t_pdf_log(g, np.inf) - log_t_cdf(g, np.inf)))
            dg_dz = (1.0 - 0.25 / nu + lam * z / (2.0 * nu)) / den ** 1.5
            dg_dlam = -1.0 / math.sqrt(den)
        else:
            lam, dg_dlam = 0.0, 0.0
            hazard = math.exp(float(t_pdf_log(z, nu) - log_t_cdf(z, nu)))
            dg_dz = 1.0
        # z = m / scale: dz/dm = 1/scale, dz/dv = -z/(2v), dz/db0 = -z/(2 b0); dlam/dv = -lam/(2v)
        G[rows, m_i] -= hazard * dg_dz / scale
        G[rows, v_i] += 0.5 * hazard * (dg_dz * z + dg_dlam * lam) / var
        G[rows, 0] += 0.5 * hazard * dg_dz * z / b0
    return G


#: The kernel's inputs with one row per dyad (the others are per session pattern).
_ROW_INPUTS = ("pattern", "syy", "sy", "sxy", "u_yd", "v_yd", "un_yd")


def _kernel_rows(stats: ConfigStats, h: Hyperparameters, table: LogTCdf, lo: int, hi: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kernel_class_evidence` with its gradient for dyads ``lo:hi`` of a block."""
    v = kernel_view(stats)
    rows = {k: (v[k][lo:hi] if k in _ROW_INPUTS else v[k]) for k in v}
    return view_class_evidence(rows, stats.n[lo:hi], h, table, grad=True)


@functools.lru_cache(maxsize=1)
def normal_table() -> LogTCdf:
    """A table with the normal row only (``dof = inf``), built once per process: all the
    kernel reads when the size floor is positive."""
    table = LogTCdf()
    table.rows_for(np.array([np.inf]))
    return table


def eb_partial(stats_list: list[ConfigStats], theta: np.ndarray, pi: np.ndarray,
               size_floor: float = DEFAULT_SIZE_FLOOR) -> tuple[float, np.ndarray, np.ndarray]:
    """The empirical-Bayes objective's additive pieces over a set of dyads.

    Returns ``(ll, grad, resp_sum)``: the total log marginal likelihood at
    ``theta`` (standardised units), its gradient in ``theta`` (analytic, except
    the noise shape: a forward difference) and the summed class responsibilities.
    All three are sums over dyads, so partitions of a cohort combine by addition
    (this is what the Dask scale-out reduces). The class evidences and their
    derivatives come from the compiled kernel
    (:func:`alliancetraj.models.kernels.class_evidence_kernel`).
    """
    h0 = from_theta(theta, pi, size_floor)
    step = step_sizes(theta)[0]
    th = theta.copy()
    th[0] += step
    h_shift = from_theta(th, pi, size_floor)
    # fresh tables per call (the dofs move with the noise shape); the forward difference
    # below differentiates the interpolant, whose error is smooth in the dof, so the
    # difference keeps ~1e-9 accuracy. With a size floor only the normal row is read: it
    # does not move, so one table serves every call.
    if size_floor > 0:
        table = table_shift = normal_table()
    else:
        table, table_shift = LogTCdf(), LogTCdf()
    g_nat = np.zeros(9)
    resp_sum = np.zeros(K)
    ll0 = 0.0

    def shifted() -> float:
        return sum(mixture_terms(kernel_class_evidence(s, h_shift, table_shift, grad=False)[0],
                                  pi)[0] for s in stats_list)

    offset_grad = class_offsets_grad(h0)   # the same for every dyad
    # the compiled kernel releases the GIL: the shifted pass runs beside the main one, and
    # the gradient pass of each block's second half beside its first (the kernel's rows
    # are those of one call: the sums below are unchanged)
    with ThreadPoolExecutor(max_workers=2) as pool:
        ll_shift_future = pool.submit(shifted)
        for s in stats_list:
            half = len(s.n) // 2 if len(s.n) >= 64 else len(s.n)
            second = pool.submit(_kernel_rows, s, h0, table, half, len(s.n))
            L1, J1 = _kernel_rows(s, h0, table, 0, half)
            L2, J2 = second.result()
            L, J = np.concatenate([L1, L2]), np.concatenate([J1, J2])
            ll, r = mixture_terms(L, pi)
            ll0 += ll
            R = r.sum(axis=0)
            resp_sum += R
            g_nat += np.einsum("dk,dkj->j", r, J) + R @ offset_grad
        ll_shift = ll_shift_future.result()
    # to the optimiser's coordinates (see to_theta): log variances, log(b0 / a0), means as
    # they are (theta_0 does not enter the noise scale's coordinate)
    grad = np.zeros(len(TRANSFORMS))
    grad[0] = (ll_shift - ll0) / step      # noise shape: d/d dof of T has no closed form
    grad[1] = h0.noise_scale * g_nat[0]
    grad[[2, 4, 6, 8]] = g_nat[[1, 3, 5, 7]]
    grad[[3, 5, 7, 9]] = g_nat[[2, 4, 6, 8]] * np.array(
        [h0.level_var, h0.slope_var, h0.depth_var, h0.amplitude_var])
    return ll0, grad, resp_sum


#: An L-BFGS line-search failure counts as convergence when the best objective moved by
#: less than _STALL_FTOL (relative) over the last _STALL_EVALS evaluations.
_STALL_EVALS = 10
_STALL_FTOL = 1e-7


def fit_eb(evaluate, start: Hyperparameters, *, n_dyads: int, fit_class_probs: bool,
            max_iter: int) -> tuple[Hyperparameters, dict[str, Any]]:
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
    n_theta = len(TRANSFORMS)
    bounds = [BOUNDS[n] for n, _ in TRANSFORMS]
    lo_b = np.array([b[0] for b in bounds])
    hi_b = np.array([b[1] for b in bounds])
    theta0 = np.clip(to_theta(start), lo_b, hi_b)
    pi0 = np.clip(np.asarray(start.class_probs, dtype=float), 1e-6, None)
    pi0 = pi0 / pi0.sum()
    logits0 = np.log(pi0[1:] / pi0[0])
    best: list[float] = []      # best objective after each evaluation

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = x[:n_theta]
        pi = softmax_pi(x[n_theta:]) if fit_class_probs else pi0
        ll0, grad_theta, resp = evaluate(theta, pi)
        best.append(min(-ll0 if np.isfinite(ll0) else np.inf, best[-1] if best else np.inf))
        if not np.isfinite(ll0):
            return 1e300, np.zeros_like(x)
        grad = np.zeros_like(x)
        grad[:n_theta] = grad_theta
        if fit_class_probs:
            # d ll / d logit_k = sum_d (resp_dk - pi_k), k = 1..3 (class 0 is the reference),
            # plus the Dirichlet(a) prior's (a - 1) sum_j log pi_j: (a - 1)(1 - K pi_k)
            grad[n_theta:] = resp[1:] - n_dyads * pi[1:] + (a - 1.0) * (1.0 - K * pi[1:])
            ll0 = ll0 + (a - 1.0) * float(np.sum(np.log(pi)))
        return -ll0, -grad

    a = share_prior(n_dyads)
    x0 = np.concatenate([theta0, logits0]) if fit_class_probs else theta0
    all_bounds = bounds + ([(-20.0, 20.0)] * (K - 1) if fit_class_probs else [])
    res = optimize.minimize(value_and_grad, x0, jac=True, method="L-BFGS-B", bounds=all_bounds,
                            options={"maxiter": max_iter, "ftol": 1e-9, "gtol": 1e-3,
                                     "maxcor": 50})
    pi = softmax_pi(res.x[n_theta:]) if fit_class_probs else pi0
    h = from_theta(res.x[:n_theta], pi, start.size_floor)
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


def warn_eb(eb_info: dict[str, Any]) -> None:
    if not eb_info["eb_converged"]:
        warnings.warn(
            "Empirical-Bayes fit of the exact engine's hyperparameters did not converge "
            f"({eb_info['eb_message']}). Results use the last iterate; check "
            "result.hyperparameters, raise eb_max_iter, or pass fixed hyperparameters=.",
            ConvergenceWarning,
            stacklevel=4,
        )
