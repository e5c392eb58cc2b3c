"""The Dask scale-out's driver, on the client: partitions in, per-dyad table out.

Validates the partitions (:mod:`alliancetraj.scale_tasks` on the workers), puts
them in dyad order, pools the standardisation moments, then runs the exact
engine's own phases (:mod:`alliancetraj.models.exact_phases`) with a
:class:`DaskExecutor` and maps the per-partition summaries. The entry point and the
result type are in :mod:`alliancetraj.scale`.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, ExcludedDyadsWarning, format_ids
from .models import exact as _exact
from .models.changepoint.spec import MIN_SESSIONS, guard_sd
from .models.exact_phases import (
    ExactOptions,
    check_cohort_size,
    fit_class_proportions,
    fit_priors,
)
from .results import CHANGEPOINT_COLUMNS, CLASSES
from .scale_tasks import (
    class_evidence,
    empty_head,
    log_marginal_sum,
    merge_groups,
    partition_info,
    split_table,
    subsample_stats,
    summary_table,
    validate_partition,
)

__all__ = ["Clock", "DaskExecutor", "RunOutput", "consolidate", "eb_groups", "ordered", "run",
           "validated"]


@dataclass
class RunOutput:
    """What :func:`run` hands back to build the result."""

    table: Any
    evidence: Any
    hyperparameters: dict[str, Any]
    settings: dict[str, Any]
    diagnostics: dict[str, Any]
    excluded: list[Any]
    clock: Clock


class Clock:
    """Wall-clock seconds per phase (reported in ``diagnostics["dask"]["seconds"]``)."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._last = self._now()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = self._now()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def ordered(infos: list[dict]) -> list[dict] | None:
    """Partitions holding dyads, in dyad order; None when the partitions' dyad ranges overlap.

    The ranges are taken before short dyads are excluded, so that a dyad cut in two
    short pieces is caught too.
    """
    spans = [i for i in infos if i["span"] is not None]
    try:
        spans.sort(key=lambda i: i["span"][0])
        ok = all(a["span"][1] < b["span"][0] for a, b in itertools.pairwise(spans))
    except TypeError:  # ids that do not compare across partitions
        return None
    return [i for i in spans if i["n_dyads"]] if ok else None


def validated(dd, client, ddf, dyad, session, score, scale, dropna):
    from dask import delayed

    parts = [
        delayed(validate_partition)(d, i, dyad, session, score, scale, dropna)
        for i, d in enumerate(ddf.to_delayed())
    ]
    # Partitions stay where they are validated and every later pass runs where its partition
    # lives, so spread them round-robin over the workers (the scheduler alone may pile them
    # onto a few workers, which then do most of the work).
    workers = sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
    if workers:
        futures = [
            client.compute(part, workers=[workers[i % len(workers)]], allow_other_workers=True)
            for i, part in enumerate(parts)
        ]
    else:  # pragma: no cover - no worker yet: let the scheduler place them
        futures = client.compute(parts)
    infos = client.gather(client.map(partition_info, futures, pure=False))
    return futures, infos


def by_worker(client, futures) -> dict[str, list]:
    """Group futures by a worker that holds them (so consolidation moves no data)."""
    who = client.who_has(futures)
    groups: dict[str, list] = {}
    for f in futures:
        holders = sorted(who.get(f.key, ()))
        groups.setdefault(holders[0] if holders else "", []).append(f)
    return groups


def consolidate(client, func, futures) -> list:
    from distributed import wait

    wait(futures)
    blocks = []
    for worker, futs in by_worker(client, futures).items():
        where = {"workers": [worker], "allow_other_workers": True} if worker else {}
        blocks.append(client.submit(func, *futs, pure=False, **where))
    return blocks


def eb_groups(client, ordered_futs, order, n_dyads, eb_max_dyads, loc, sd, settings):
    """The empirical-Bayes subsample's statistics, left on the workers: ``(groups, n_sub)``.

    Every ``step``-th dyad in global sort order (as in the in-memory engine) is picked
    on its own partition; its statistics are merged into one block per worker.
    """
    step = max(1, math.ceil(n_dyads / eb_max_dyads))
    offsets = np.concatenate([[0], np.cumsum([i["n_dyads"] for i in order])[:-1]])
    sub = client.map(
        subsample_stats,
        ordered_futs,
        [int(o) for o in offsets],
        step=step,
        loc=loc,
        sd=sd,
        settings=settings,
        pure=False,
    )
    groups = consolidate(client, merge_groups, sub)
    return groups, len(range(0, n_dyads, step))


class DaskExecutor:
    """The exact engine's executor on Dask (:mod:`alliancetraj.models.exact_phases`):
    handles are futures, ``map`` is ``client.map``, ``consolidate`` makes one block per
    worker without moving data."""

    def __init__(self, client) -> None:
        self.client = client

    def map(self, fn, items, **kwargs):
        return self.client.map(fn, items, pure=False, **kwargs)

    def gather(self, handles):
        return self.client.gather(handles)

    def call(self, fn, *handles, **kwargs):
        return self.client.submit(fn, *handles, pure=False, **kwargs).result()

    def consolidate(self, fn, handles):
        return consolidate(self.client, fn, handles)


def run(
    dd,
    distributed,
    client,
    ddf,
    dyad,
    session,
    score,
    scale,
    dropna,
    *,
    options: ExactOptions,
) -> RunOutput:
    """The scale-out's steps 1-5 (see :mod:`alliancetraj.scale`) on a client."""
    clock = Clock()
    executor = DaskExecutor(client)
    settings = options.settings
    # ---- 1. validate per partition; repartition by dyad when dyads are not kept together ------
    futures, infos = validated(dd, client, ddf, dyad, session, score, scale, dropna)
    repartitioned = False
    order = ordered(infos)
    if order is None:
        del futures
        # range-partition by dyad: every dyad's rows land in one partition, partitions in order.
        # A task-based shuffle: distributed's peer-to-peer one (the default on a cluster) logs
        # every shuffle's start and end at WARNING level from its scheduler plugin, lines a
        # user cannot act on; the task graph moves the same rows with no scheduler plugin.
        ddf = ddf.set_index(dyad, sort=True, shuffle_method="tasks").reset_index()
        futures, infos = validated(dd, client, ddf, dyad, session, score, scale, dropna)
        repartitioned = True
        order = ordered(infos)
        if order is None:
            raise DataError(
                f"Column {dyad!r} (dyad) holds ids that cannot be ordered across partitions. "
                "Use strings or integers of one type as dyad ids."
            )
    excluded = [d for i in infos for d in i["excluded"]]
    n_dropped = sum(i["n_dropped"] for i in infos)
    n_dyads = sum(i["n_dyads"] for i in infos)
    if n_dropped:
        warnings.warn(
            f"Dropped {n_dropped} row(s) with a missing score in column {score!r}.",
            ExcludedDyadsWarning,
            stacklevel=4,
        )
    if n_dyads == 0:
        if excluded:
            raise DataError(
                f"Every dyad has fewer than {MIN_SESSIONS} sessions (the minimum for this "
                f"model); e.g. {format_ids(excluded)}. Collect more sessions or choose a method "
                "that needs fewer."
            )
        raise DataError("The session data are empty (0 rows): nothing to analyse.")
    if excluded:
        warnings.warn(
            f"Excluded {len(excluded)} of {n_dyads + len(excluded)} dyad(s) with fewer than "
            f"{MIN_SESSIONS} sessions: {format_ids(excluded)}.",
            ExcludedDyadsWarning,
            stacklevel=4,
        )
    check_cohort_size(n_dyads, options)
    valid = {i["index"]: futures[i["index"]] for i in order}
    del futures
    ordered_futs = [valid[i["index"]] for i in order]

    placement = by_worker(client, ordered_futs)
    clock.lap("validate")
    # ---- 2. standardisation: pooled (count, mean, M2) ------------------------------------------
    n_tot, mean, m2 = 0, 0.0, 0.0
    for i in order:
        n_b = i["n_rows"]
        delta = i["mean"] - mean
        tot = n_tot + n_b
        mean = mean + delta * n_b / tot
        m2 = m2 + i["m2"] + delta * delta * n_tot * n_b / tot
        n_tot = tot
    loc = float(mean)
    sd = guard_sd(loc, float(math.sqrt(m2 / n_tot)))

    # ---- 3. empirical Bayes on a deterministic subsample, stats stay on the workers ------------
    eb_info: dict[str, Any] = {}
    if options.hyperparameters is None:
        groups, n_sub = eb_groups(client, ordered_futs, order, n_dyads, options.eb_max_dyads,
                                   loc, sd, settings)
        h_std, eb_info = fit_priors(executor, groups, n_sub=n_sub, options=options)
        del groups
    else:
        h_std = options.hyperparameters.standardise(loc, sd)

    clock.lap("empirical_bayes")
    use_table = options.use_table(n_dyads)
    # ---- 4. class proportions by EM: each iteration a map + sum over per-worker blocks ----------
    em_iterations = 0
    if options.fit_class_probs:
        L_futs = executor.map(class_evidence, ordered_futs, h_std=h_std, loc=loc, sd=sd,
                              settings=settings, chunk_size=options.chunk_size,
                              use_table=use_table)
        h_std, em_iterations = fit_class_proportions(executor, L_futs, n_dyads=n_dyads,
                                                     h_std=h_std)

    clock.lap("class_proportions")
    # ---- 5. posteriors and change points per partition ----------------------------------------
    # (the EM pass's class log evidences stay on the workers and are reused here)
    tables = client.map(
        summary_table,
        ordered_futs,
        L_futs if options.fit_class_probs else [None] * len(ordered_futs),
        h_std=h_std,
        loc=loc,
        sd=sd,
        settings=settings,
        credible_level=options.credible_level,
        chunk_size=options.chunk_size,
        use_table=use_table,
        pure=False,
    )
    distributed.wait(tables)
    del ordered_futs, valid
    if options.fit_class_probs:
        del L_futs
    meta = client.submit(empty_head, tables[0], pure=False).result()
    firsts = [i["first"] for i in order]
    divisions = (*firsts, order[-1]["last"])
    everything = dd.from_delayed(tables, meta=meta, divisions=divisions, verify_meta=False)
    table, evidence = split_table(everything)
    log_marginal = sum(client.gather(client.map(log_marginal_sum, tables, pure=False)))
    clock.lap("posteriors")

    # metadata exactly as the in-memory engine builds it (assemble_result on zero dyads)
    empty = (
        pd.DataFrame(columns=list(CLASSES), dtype=float),
        pd.DataFrame(columns=list(CHANGEPOINT_COLUMNS), dtype=float),
        pd.DataFrame(columns=list(CLASSES), dtype=float),
        pd.Series(dtype=float, name="log_marginal"),
    )
    template = _exact.assemble_result(
        [empty],
        h_std,
        loc,
        sd,
        settings,
        credible_level=options.credible_level,
        eb_info=eb_info,
        given=options.hyperparameters is not None,
        fit_class_probs=options.fit_class_probs,
        eb_max_dyads=options.eb_max_dyads,
        t_cdf_used="table" if use_table else "direct",
    )
    diagnostics = dict(template.diagnostics)
    diagnostics.update(
        log_marginal_likelihood=float(log_marginal),
        n_dyads=int(n_dyads),
        dask={
            "n_partitions": len(order),
            "repartitioned_by_dyad": repartitioned,
            "n_workers": len(client.scheduler_info(n_workers=-1).get("workers", {})),
            "partitions_per_worker": {w: len(f) for w, f in placement.items()},
            "em_iterations": em_iterations,
            "seconds": clock.laps,
        },
    )
    return RunOutput(table=table, evidence=evidence, hyperparameters=template.hyperparameters,
                     settings=template.settings, diagnostics=diagnostics, excluded=excluded,
                     clock=clock)
