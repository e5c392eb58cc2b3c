"""The exact engine's options and cohort-level phases, written once for every executor.

The engine fits a cohort in phases: standardise the scores; fit the priors by
empirical Bayes on a subsample (:func:`fit_priors`); estimate the class proportions
by EM on every dyad (:func:`fit_class_proportions`); summarise each block of dyads.
Every phase is a map over blocks of dyads and a sum of what the map returns (the
objectives are additive over dyads), so the phases take an *executor* that does the
mapping: :class:`ThreadExecutor` runs blocks held in memory on threads (the
default, :func:`alliancetraj.models.exact.classify_exact`); the Dask scale-out
(:mod:`alliancetraj.scale`) passes one that maps with ``client.map`` over blocks
that stay on the workers. An executor has four methods:

``map(fn, items, **kwargs)``
    Apply ``fn(item, **kwargs)`` to every item; returns handles (results, or futures).
``gather(handles)``
    The values behind handles.
``call(fn, *handles, **kwargs)``
    Run one function on some handles; returns its value.
``consolidate(fn, handles)``
    Combine handles into fewer blocks (``fn(*some_handles)`` per group; all in one
    block in memory, one per worker on Dask).

:class:`ExactOptions` validates the engine's options once, for both drivers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._validation import check_int, parameter_error
from .changepoint.spec import DEFAULT_SIZE_FLOOR, Hyperparameters, Settings, as_hyperparameters
from .empirical_bayes import (
    eb_partial,
    em_iterate,
    em_prepare,
    em_terms,
    fit_eb,
    moment_start,
    warn_eb,
    warn_small_cohort,
)

__all__ = ["EB_ONE_TASK_MAX", "ExactOptions", "ThreadExecutor", "check_cohort_size",
           "eb_objective",
           "fit_class_proportions", "fit_priors", "start_values"]

_OWNER = "classify(method='exact')"
#: Subsamples up to this many dyads are fitted by one ``call`` (the whole L-BFGS run in
#: one task); larger ones by a map-and-sum per objective evaluation.
EB_ONE_TASK_MAX = 5000


# ===================================================================================== options
@dataclass(frozen=True)
class ExactOptions:
    """The exact engine's options, validated (see :func:`~alliancetraj.models.exact.classify_exact`)."""

    hyperparameters: Hyperparameters | None = None
    fit_class_probs: bool = True
    size_floor: float = DEFAULT_SIZE_FLOOR
    settings: Settings = field(default_factory=Settings)
    credible_level: float = 0.9
    eb_max_dyads: int = 400
    eb_max_iter: int = 200
    chunk_size: int = 2048
    n_jobs: int = 1
    t_cdf: str = "auto"
    progress: bool | None = None

    @classmethod
    def from_options(
        cls,
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
    ) -> ExactOptions:
        """Validate the keyword options of ``classify(method="exact")``."""
        max_rupture_length = check_int(_OWNER, "max_rupture_length", max_rupture_length, 1)
        eb_max_dyads = check_int(_OWNER, "eb_max_dyads", eb_max_dyads, 10)
        eb_max_iter = check_int(_OWNER, "eb_max_iter", eb_max_iter, 1)
        chunk_size = check_int(_OWNER, "chunk_size", chunk_size, 1)
        if not (isinstance(credible_level, (int, float)) and 0 < credible_level < 1):
            raise parameter_error(_OWNER, "credible_level", "in (0, 1)", credible_level)
        if not (isinstance(u_margin, (int, float)) and u_margin >= 0.5):
            raise parameter_error(_OWNER, "u_margin", "a number >= 0.5", u_margin)
        given = None if hyperparameters is None else as_hyperparameters(hyperparameters)
        if size_floor is None:
            size_floor = DEFAULT_SIZE_FLOOR if given is None else given.size_floor
        if not (isinstance(size_floor, (int, float)) and np.isfinite(size_floor)
                and size_floor >= 0):
            raise parameter_error(_OWNER, "size_floor", "a number >= 0 (residual SDs)", size_floor)
        if given is not None and given.size_floor != size_floor:
            given = replace(given, size_floor=float(size_floor))
        if t_cdf not in ("auto", "direct", "table"):
            raise parameter_error(_OWNER, "t_cdf", "'auto', 'direct' or 'table'", t_cdf)
        if n_jobs is None:
            n_jobs = max(1, min(2, os.cpu_count() or 1))
        n_jobs = check_int(_OWNER, "n_jobs", n_jobs, 1)
        return cls(
            hyperparameters=given, fit_class_probs=bool(fit_class_probs),
            size_floor=float(size_floor),
            settings=Settings(max_rupture_length=max_rupture_length, u_margin=float(u_margin)),
            credible_level=float(credible_level), eb_max_dyads=eb_max_dyads,
            eb_max_iter=eb_max_iter, chunk_size=chunk_size, n_jobs=n_jobs, t_cdf=t_cdf,
            progress=progress,
        )

    def use_table(self, n_dyads: int) -> bool:
        """Tabulated Student-t CDFs in the final passes (``t_cdf``; "auto": from 2,000 dyads)."""
        return self.t_cdf == "table" or (self.t_cdf == "auto" and n_dyads >= 2000)


# =================================================================================== executors
class ThreadExecutor:
    """Blocks held in memory, mapped on up to ``n_jobs`` threads (handles are the values)."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs

    def imap(self, fn: Callable, items: Iterable, **kwargs: Any) -> Iterator:
        """``fn(item, **kwargs)`` for every item, in order, as they finish (for progress bars)."""
        items = list(items)
        if self.n_jobs == 1 or len(items) <= 1:
            yield from (fn(item, **kwargs) for item in items)
        else:
            with ThreadPoolExecutor(max_workers=self.n_jobs) as pool:
                yield from pool.map(lambda item: fn(item, **kwargs), items)

    def map(self, fn: Callable, items: Iterable, **kwargs: Any) -> list:
        return list(self.imap(fn, items, **kwargs))

    def gather(self, handles: Iterable) -> list:
        return list(handles)

    def call(self, fn: Callable, *handles: Any, **kwargs: Any) -> Any:
        return fn(*handles, **kwargs)

    def consolidate(self, fn: Callable, handles: list) -> list:
        return [fn(*handles)]


# ====================================================================================== phases
def _flat(groups) -> list:
    return [s for g in groups for s in g]


def _moment_start_groups(*groups: list) -> Hyperparameters:
    return moment_start(_flat(groups))


def _fit_eb_task(*groups: list, start, n_dyads: int, fit_class_probs: bool, max_iter: int):
    stats = _flat(groups)
    return fit_eb(lambda theta, pi: eb_partial(stats, theta, pi, start.size_floor), start,
                  n_dyads=n_dyads,
                  fit_class_probs=fit_class_probs, max_iter=max_iter)


def start_values(executor, groups: list) -> Hyperparameters:
    """Moment-based starting values of empirical Bayes from the subsample's statistics."""
    return executor.call(_moment_start_groups, *groups)


def eb_objective(executor, groups: list, size_floor: float = DEFAULT_SIZE_FLOOR):
    """``evaluate(theta, pi)``: the empirical-Bayes objective's ``(loglik, gradient,
    responsibilities)`` as a map of :func:`~alliancetraj.models.empirical_bayes.eb_partial`
    over the groups and a sum (the in-memory objective up to the summation order)."""
    def evaluate(theta, pi):
        pieces = executor.gather(executor.map(eb_partial, groups, theta=theta, pi=pi,
                                              size_floor=size_floor))
        return (sum(p[0] for p in pieces), sum(p[1] for p in pieces),
                sum(p[2] for p in pieces))

    return evaluate


def fit_priors(executor, groups: list, *, n_sub: int, options: ExactOptions
               ) -> tuple[Hyperparameters, dict[str, Any]]:
    """Empirical Bayes on a subsample whose statistics are ``groups`` (handles to lists of
    :class:`~alliancetraj.models.changepoint.statistics.ConfigStats`).

    Small subsamples (up to :data:`EB_ONE_TASK_MAX` dyads) are fitted by one ``call``
    (on Dask this spares the scheduler round trip of each of the ~100 evaluations);
    larger ones evaluate :func:`eb_objective` (a map-and-sum) at every step.
    """
    start = replace(start_values(executor, groups), size_floor=options.size_floor)
    kw = {"n_dyads": n_sub, "fit_class_probs": options.fit_class_probs,
          "max_iter": options.eb_max_iter}
    if n_sub <= EB_ONE_TASK_MAX:
        h_std, eb_info = executor.call(_fit_eb_task, *groups, start=start, **kw)
    else:
        h_std, eb_info = fit_eb(eb_objective(executor, groups, start.size_floor), start, **kw)
    eb_info["eb_n_dyads"] = n_sub
    warn_eb(eb_info)
    return h_std, eb_info


def _em_block(*blocks: np.ndarray):
    return em_prepare(np.concatenate(blocks))


def fit_class_proportions(executor, evidence: list, *, n_dyads: int, h_std: Hyperparameters
                          ) -> tuple[Hyperparameters, int]:
    """EM for the class proportions over handles to blocks' (D, 4) class log evidences.

    Each iteration maps :func:`~alliancetraj.models.empirical_bayes.em_terms` over the
    consolidated blocks and sums. Returns the priors with the new proportions and the
    number of EM steps.
    """
    blocks = executor.consolidate(_em_block, evidence)
    steps = 0

    def step(pi):
        nonlocal steps
        steps += 1
        pieces = executor.gather(executor.map(em_terms, blocks, pi=pi))
        return sum(p[0] for p in pieces), sum(p[1] for p in pieces)

    pi, _ = em_iterate(step, n_dyads, h_std.class_probs)
    return replace(h_std, class_probs=tuple(pi)), steps


def check_cohort_size(n_dyads: int, options: ExactOptions) -> None:
    """Warn when a cohort is too small to pool (when anything is pooled: EB or shares)."""
    if options.hyperparameters is None or options.fit_class_probs:
        warn_small_cohort(n_dyads)
