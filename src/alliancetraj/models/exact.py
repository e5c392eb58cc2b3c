r"""Exact Bayesian change-point engine (``classify(method="exact")``).

Every dyad's scores are explained by four Bayesian regression models on the
session number, one per class in :data:`alliancetraj.CLASSES`. Each model is
conjugate given its discrete change points, so its marginal likelihood is closed
form; the engine sums it over **every** admissible change-point configuration.
Sign and shape constraints enter through exact truncation terms. Class
probabilities are therefore exact posterior probabilities under the model and
priors below (floating-point precision; no sampling, no search heuristic).

The model (classes, configurations, designs, priors and the closed-form evidence)
is stated once in :mod:`alliancetraj.models.changepoint`; this module is the
driver that fits it to a cohort.

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
points. With tabulated t CDFs pass 1 runs the compiled class-evidence kernel on
inputs built once per session pattern (dyads observed at the same sessions share
every score-free statistic), with the numpy reference only for ``t_cdf="direct"``. Student-t log CDFs are read from per-dof cubic tables (absolute error below
1e-9; :class:`alliancetraj.models.changepoint.tcdf.LogTCdf`) from 2,000 dyads on. The
empirical-Bayes objective and its gradient come from one compiled pass over the
configurations (:func:`alliancetraj.models.changepoint.kernels.class_evidence_kernel`, numba,
installed with PyMC; the PyMC mixture's likelihood is the same kernel); the
noise-shape derivative, a forward difference, runs beside it on a second thread.
The depth mean and quantiles of the truncated-t mixtures are solved per dyad by a
compiled safeguarded Halley iteration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..io import PanelArrays
from ..progress import progress_bar
from ..results import ClassificationResult
from .changepoint.evidence import class_log_evidence, config_evidence, logsumexp_rows
from .changepoint.posterior import dyad_posterior
from .changepoint.predictive import sample_prior_predictive
from .changepoint.spec import (
    CLASSES,
    MIN_SESSIONS,
    UN,
    Hyperparameters,
    Settings,
    U,
    V,
    standardisation,
)
from .changepoint.statistics import block_kernel_view, block_stats
from .changepoint.tcdf import LogTCdf
from .changepoint.tdist import log_t_cdf
from .empirical_bayes import eb_partial, view_class_evidence
from .exact_phases import (
    ExactOptions,
    ThreadExecutor,
    check_cohort_size,
    fit_class_proportions,
    fit_priors,
)

__all__ = [
    "MIN_SESSIONS",
    "ExactHyperparameters",
    "assemble_result",
    "block_class_evidence",
    "block_summary",
    "classify_exact",
    "dyad_posterior",
    "dyad_starts",
    "eb_partial",
    "panel_chunks",
    "run_in_memory",
    "sample_prior_predictive",
    "subsample_stats",
]

#: The change-point model's hyperparameters (:class:`~alliancetraj.models.changepoint.spec.Hyperparameters`).
ExactHyperparameters = Hyperparameters


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
                             table: LogTCdf | None = None
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and equal-tailed interval of a mixture of Student-t truncated to (0, inf).

    w, loc, scale: (D, K) (rows of w sum to 1); dof: (D,). Configurations with
    weight below ``prune`` are dropped (their total mass is below K * prune).
    The component means are closed form,
    E[X | X > 0] = m + s kappa, kappa = t_nu(a) (nu + a^2) / ((nu - 1) T_nu(-a)),
    a = -m / s; the quantiles solve the mixture CDF, written in survival form
    1 - F_k(x) = T(-(x - m) / s) / T(m / s) (accurate also when a component's
    mass above zero is tiny), to 1e-12 by safeguarded Newton steps per dyad
    (compiled kernel :func:`~alliancetraj.models.kernels.truncated_t_mixture`).
    Student-t CDFs come from the cubic tables of ``table`` (a fresh one if None).
    """
    from .changepoint import kernels

    table = LogTCdf() if table is None else table
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
    kernels.truncated_t_mixture(
        np.ascontiguousarray(w), np.ascontiguousarray(loc), np.ascontiguousarray(scale),
        log_tail, dof, rows, *table.arrays, prune, alpha, 1.0 - alpha, out)
    return out[:, 0], out[:, 1], out[:, 2]


def _changepoints(panel: PanelArrays, loc: float, sd: float, settings: Settings,
                  h: Hyperparameters, L: np.ndarray, labels: np.ndarray, level: float,
                  logcdf=log_t_cdf) -> pd.DataFrame:
    """Change-point summaries of each dyad under its most probable class.

    Only the labelled class's configurations of each dyad are built and evaluated
    (per class, the statistics and evidence of the dyads that carry its label).
    """
    D = len(L)
    cols = {c: np.full(D, np.nan) for c in (
        "rupture_session", "rupture_low", "rupture_high", "repair_session", "repair_low",
        "repair_high", "depth", "depth_low", "depth_high", "turning_session")}
    # the depth summaries always read tabulated t CDFs (error < 1e-9 in log T)
    table = logcdf if isinstance(logcdf, LogTCdf) else LogTCdf()

    for cls, key in ((V, "v"), (UN, "un")):
        sel = np.flatnonzero((labels == cls) & np.isfinite(L[:, cls]))
        if len(sel) == 0:
            continue
        stats = block_stats(panel, loc, sd, settings, rows=sel, classes=(key,))
        ev = config_evidence(stats, h, keep_posterior=True, classes=(key,), logcdf=logcdf)
        lp = stats.log_config_prior[:, 1 if key == "v" else 2]
        w = np.exp(getattr(ev, key) + lp[:, None] - L[sel, cls][:, None])
        w = w / w.sum(axis=1, keepdims=True)
        rup = stats.v_rupture if key == "v" else stats.un_rupture
        values = np.unique(rup)
        marg = _marginal(w, rup, values)
        mode, lo, hi = _hpd_bounds(marg, values, level)
        cols["rupture_session"][sel], cols["rupture_low"][sel], cols["rupture_high"][sel] = \
            mode, lo, hi
        if key == "v":
            rvals = np.unique(stats.v_repair)
            marg = _marginal(w, stats.v_repair, rvals)
            mode, lo, hi = _hpd_bounds(marg, rvals, level)
            cols["repair_session"][sel], cols["repair_low"][sel], cols["repair_high"][sel] = \
                mode, lo, hi
        ploc, pscale = ev.post[key]
        mean, dlo, dhi = _truncated_mixture_depth(w, ploc, pscale, ev.dof, level, table=table)
        cols["depth"][sel], cols["depth_low"][sel], cols["depth_high"][sel] = \
            mean * sd, dlo * sd, dhi * sd

    sel = np.flatnonzero((labels == U) & np.isfinite(L[:, U]))
    if len(sel):
        stats = block_stats(panel, loc, sd, settings, rows=sel, classes=("u",))
        # the mode of the dip's bottom needs no normalisation (nor the truncation terms' constants)
        ev = config_evidence(stats, h, classes=("u",), logcdf=logcdf)
        cols["turning_session"][sel] = stats.turning_sessions(np.argmax(ev.u, axis=1))
    return pd.DataFrame(cols)


# ================================================================================= public entry
def dyad_starts(frame: pd.DataFrame) -> np.ndarray:
    """Row position of each dyad's first session in a validated (sorted) frame.

    A dyad's rows are contiguous, so its boundaries are the id changes, found in one
    vectorised comparison (no hashing of the ids).
    """
    dyad = frame["dyad"]
    new = dyad.ne(dyad.shift()).fillna(True).to_numpy(dtype=bool, copy=True)
    if len(new):
        new[0] = True
    return np.flatnonzero(new)


def panel_chunks(frame: pd.DataFrame, chunk_size: int, starts: np.ndarray | None = None):
    """Blocks of ``chunk_size`` dyads of a validated frame as ``(dyad ids, PanelArrays)``.

    The frame is sorted by dyad, so a dyad's rows are contiguous: blocks are cut at
    id changes (``starts``, :func:`dyad_starts`, computed when not given). Each block's
    session grid runs from its own first to last session, as
    :func:`~alliancetraj.io.to_panel` lays it out.
    """
    if starts is None:
        starts = dyad_starts(frame)
    dyad = frame["dyad"]
    row_dyad = np.repeat(np.arange(len(starts)), np.diff(starts, append=len(frame)))
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


# the engine parallelises over blocks itself; BLAS threads on its small matrix products
# only oversubscribe the cores (measured: 17x slower products under load)
@threadpool_limits.wrap(limits=1, user_api="blas")
def classify_exact(
    frame: pd.DataFrame,
    *,
    hyperparameters: Hyperparameters | Mapping[str, Any] | None = None,
    fit_class_probs: bool = True,
    size_floor: float | None = None,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
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
    hyperparameters : Hyperparameters or mapping, optional
        Fixed priors (original score units). ``None`` (default) estimates them by
        empirical Bayes from the whole cohort.
    fit_class_probs : bool, default True
        Estimate the class proportions by EM (also when other hyperparameters are
        fixed); False keeps the given (or uniform) proportions.
    size_floor : float, optional
        The smallest rupture depth or U amplitude, in the dyad's residual SDs (default
        2.5, or that of the given ``hyperparameters``): the label convention (a dip
        smaller than this is noise around a line), and what keeps ``linear`` from being
        nested in the other classes. 0 lets a rupture be of any size.
    max_rupture_length : int, default 4
        Longest repaired rupture (repair session minus rupture session).
    u_margin : float, default 2.0
        Each side of a ``u_shaped`` dip (its fall and its rise) spans at least this many
        sessions (and at least a fifth of the dyad's span of sessions).
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
        Show a progress bar over blocks: True everywhere (plain lines when the output is not
        a terminal), False never; default: in terminals and notebooks on long runs.
    seed : ignored
        The engine is deterministic: the method declares ``uses_seed=False``
        (:mod:`alliancetraj.methods`) and accepts ``seed`` only so that one call can
        pass it to every method.

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
    del seed  # deterministic: declared by the method (uses_seed=False)
    options = ExactOptions.from_options(
        hyperparameters=hyperparameters, fit_class_probs=fit_class_probs, size_floor=size_floor,
        max_rupture_length=max_rupture_length, u_margin=u_margin, credible_level=credible_level,
        eb_max_dyads=eb_max_dyads, eb_max_iter=eb_max_iter, chunk_size=chunk_size,
        n_jobs=n_jobs, t_cdf=t_cdf, progress=progress)
    return run_in_memory(frame, options)


def run_in_memory(frame: pd.DataFrame, options: ExactOptions) -> ClassificationResult:
    """The engine's phases on a validated frame held in memory, blocks mapped on threads."""

    executor = ThreadExecutor(options.n_jobs)
    settings = options.settings
    loc, sd = standardisation(frame)
    starts = dyad_starts(frame)
    n_dyads = len(starts)
    check_cohort_size(n_dyads, options)

    # ---- priors: given, or empirical Bayes on every k-th dyad --------------------------------
    eb_info: dict[str, Any] = {}
    if options.hyperparameters is None:
        sub_stats = subsample_stats(frame, starts, loc, sd, options)
        h_std, eb_info = fit_priors(executor, [sub_stats], n_sub=sum(len(s.n) for s in sub_stats),
                                    options=options)
    else:
        h_std = options.hyperparameters.standardise(loc, sd)

    chunks = list(panel_chunks(frame, options.chunk_size, starts=starts))
    use_table = options.use_table(n_dyads)
    logcdf = LogTCdf() if use_table else log_t_cdf

    # ---- pass 1: class proportions by EM on every dyad ---------------------------------------------
    # (the (D, 4) class log evidences are kept: pass 2 then evaluates each dyad's
    # configurations only under its most probable class, for the change points)
    Ls: list[np.ndarray | None] = [None] * len(chunks)
    if options.fit_class_probs:
        Ls = executor.map(lambda item: block_class_evidence(item[1], h_std, loc, sd, settings,
                                                            logcdf), chunks)
        h_std, _ = fit_class_proportions(executor, Ls, n_dyads=n_dyads, h_std=h_std)

    # ---- pass 2: posteriors and change points per block ------------------------------------------
    # None: a bar in terminals and notebooks on long runs, nothing elsewhere
    show = options.progress if options.progress is not None else (None if len(chunks) > 8
                                                                  else False)
    parts = []
    with progress_bar(total=n_dyads, desc="exact engine", unit="dyad", enabled=show) as bar:
        for part in executor.imap(
                lambda item: block_summary(item[0][0], item[0][1], h_std, loc, sd, settings,
                                           options.credible_level, logcdf, L=item[1]),
                list(zip(chunks, Ls))):
            parts.append(part)
            bar.update(len(part[0]))
    return assemble_result(parts, h_std, loc, sd, settings, credible_level=options.credible_level,
                           eb_info=eb_info, given=options.hyperparameters is not None,
                           fit_class_probs=options.fit_class_probs,
                           eb_max_dyads=options.eb_max_dyads,
                           t_cdf_used="table" if use_table else "direct")


def subsample_stats(frame: pd.DataFrame, starts: np.ndarray, loc: float, sd: float,
                    options: ExactOptions) -> list:
    """Statistics of empirical Bayes's subsample: every k-th dyad in sorted order (at most
    ``options.eb_max_dyads``; deterministic), in blocks of 1,024 dyads."""
    step = max(1, math.ceil(len(starts) / options.eb_max_dyads))
    keep = np.zeros(len(starts), dtype=bool)
    keep[::step] = True
    rows = np.repeat(keep, np.diff(starts, append=len(frame)))
    sub = frame.iloc[np.flatnonzero(rows)]
    return [block_stats(c, loc, sd, options.settings) for _, c in panel_chunks(sub, 1024)]


def block_class_evidence(panel: PanelArrays, h_std: Hyperparameters, loc: float,
                         sd: float, settings: Settings, logcdf=log_t_cdf) -> np.ndarray:
    """(D, 4) class log evidences (standardised units) of a block of dyads (a panel).

    With tabulated t CDFs (``logcdf`` a :class:`LogTCdf`) the compiled kernel computes
    them from the block's inputs per session pattern
    (:func:`~alliancetraj.models.changepoint.statistics.block_kernel_view`,
    :func:`~alliancetraj.models.empirical_bayes.view_class_evidence`): equal to the numpy
    reference up to the tables' accuracy (~1e-10). With ``log_t_cdf``
    (``t_cdf="direct"``) the numpy reference computes them.
    """
    if isinstance(logcdf, LogTCdf):
        view, n = block_kernel_view(panel, loc, sd, settings)
        return view_class_evidence(view, n, h_std, logcdf, grad=False)[0]
    stats = block_stats(panel, loc, sd, settings)
    return class_log_evidence(stats, config_evidence(stats, h_std, logcdf=logcdf))


def block_summary(ids, panel: PanelArrays, h_std: Hyperparameters, loc: float, sd: float,
                  settings: Settings, credible_level: float, logcdf=log_t_cdf,
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
    norm = logsumexp_rows(logpost)
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


def assemble_result(parts, h_std: Hyperparameters, loc: float, sd: float,
                    settings: Settings, *, credible_level: float, eb_info: dict[str, Any],
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
