"""Scale-out of the exact engine on Dask (registry-scale cohorts).

:func:`alliancetraj.classify` hands a dask DataFrame, or a path to a directory
holding a partitioned Parquet dataset, to :func:`classify_dask`. The sessions are
never collected on one machine:

1. **Validate per partition.** Every partition goes through
   :func:`alliancetraj.io.validate_sessions` on a worker. Its sorted dyad range,
   dyad count and score moments come back to the client (a few numbers per
   partition). No dyad may be split across partitions: when the partitions'
   dyad ranges overlap (unsorted input, or a dyad cut at a partition boundary),
   the data are repartitioned by dyad (``set_index``, a range shuffle) and
   validated again. Partitions in dyad order make every dyad's global sort rank
   known from per-partition offsets, which is what the in-memory engine's
   deterministic choices (the empirical-Bayes subsample) are defined on.
2. **Standardise.** The cohort mean and SD (``ddof=0``) come from a reduction of
   per-partition ``(count, mean, M2)`` moments (Chan et al.'s pairwise update:
   the same numbers as ``sum``/``sum of squares`` without their cancellation).
3. **Empirical Bayes.** Every ``k``-th dyad in global sort order (at most
   ``eb_max_dyads``, as in :func:`~alliancetraj.models.exact.classify_exact`) is
   picked on its own partition, and its sufficient statistics are reduced to one
   block per worker. Large subsamples (over
   :data:`~alliancetraj.models.exact_phases.EB_ONE_TASK_MAX` dyads) stay there:
   each L-BFGS evaluation maps :func:`~alliancetraj.models.empirical_bayes.eb_partial` over
   the blocks and sums the returned ``(loglik, gradient, responsibilities)``
   triples (the objective is additive over dyads, so this is the in-memory
   objective up to the order of floating-point summation). Small ones (the
   default, 400 dyads) are fitted in one task on a worker, which spares the
   scheduler round trip of each of the ~100 evaluations.
4. **Class proportions.** The per-dyad class log evidences stay on the workers
   (consolidated into one block per worker) and are reused by step 5; every EM
   iteration is a map of
   :func:`~alliancetraj.models.empirical_bayes.em_terms` over the blocks and a sum of the
   returned ``(loglik, responsibilities)``.
5. **Posteriors.** :func:`~alliancetraj.models.exact.block_summary` runs per
   partition (in blocks of ``chunk_size`` dyads); the per-dyad table stays on
   the cluster (a :class:`DaskClassificationResult`) or is written as Parquet
   (``out=``).

Steps 3 and 4 are the in-memory engine's own phases
(:func:`~alliancetraj.models.exact_phases.fit_priors`,
:func:`~alliancetraj.models.exact_phases.fit_class_proportions`), given a
:class:`DaskExecutor` instead of threads, and the options are validated by the same
:class:`~alliancetraj.models.exact_phases.ExactOptions`; what is Dask's own here is the
partition validation, the placement of blocks on workers and the Parquet I/O. With the
same data, the result equals the in-memory engine's to floating-point tolerance
(tests/test_scale.py checks this on a 2-worker ``LocalCluster``).

Dask is an optional dependency: ``pip install alliancetraj[dask]``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
import weakref
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_int
from .errors import DataError, ExcludedDyadsWarning, format_ids
from .models import exact as _exact
from .models.changepoint.spec import MIN_SESSIONS, guard_sd
from .models.changepoint.statistics import block_stats, merge_stats
from .models.changepoint.tcdf import LogTCdf
from .models.changepoint.tdist import log_t_cdf
from .models.exact_phases import ExactOptions, fit_class_proportions, fit_priors
from .results import CHANGEPOINT_COLUMNS, CLASSES, ClassificationResult, _dumps

__all__ = ["DaskClassificationResult", "classify_dask", "local_cluster"]

_OWNER = "classify(method='exact')"

_INSTALL = "pip install alliancetraj[dask]"
#: Metadata file written next to the Parquet table (Parquet readers skip names starting with "_").
META_FILE = "_alliancetraj.json"
#: The exact engine's options (validated by ExactOptions) and those of the Dask run.
_EXACT_OPTIONS = ("hyperparameters", "fit_class_probs", "max_rupture_length", "u_margin",
                  "credible_level", "eb_max_dyads", "eb_max_iter", "chunk_size", "t_cdf",
                  "n_jobs", "progress")
_OPTIONS = (*_EXACT_OPTIONS, "seed", "workers", "scheduler", "out", "memory_limit", "processes")


def _import_dask():
    try:
        import dask.dataframe as dd
        import distributed
    except ImportError as exc:
        raise ImportError(
            "Running classify on a dask DataFrame or a Parquet dataset directory needs Dask "
            f"(dask[dataframe] and distributed): install it with `{_INSTALL}`."
        ) from exc
    return dd, distributed


# ================================================================ partition tasks (on workers)
@dataclass
class _Part:
    """A validated partition and what the client needs to know about it."""

    index: int
    frame: pd.DataFrame
    excluded: list[Any] = field(default_factory=list)
    n_dropped: int = 0
    #: first and last dyad before short dyads were excluded (to detect dyads cut across partitions)
    span: tuple[Any, Any] | None = None


def _validate_partition(
    pdf: pd.DataFrame,
    index: int,
    dyad: Hashable,
    session: Hashable,
    score: Hashable,
    scale,
    dropna: bool,
) -> _Part:
    """validate_sessions on one partition; short dyads are excluded here, warned about once."""
    pdf = pdf.loc[:, [dyad, session, score]]
    n_dropped = 0
    if dropna:
        na = pdf[score].isna().to_numpy()
        n_dropped = int(na.sum())
        if n_dropped:
            pdf = pdf.loc[~na]
    if len(pdf) == 0:
        empty = pd.DataFrame(
            {
                "dyad": pd.Series([], dtype=object),
                "session": pd.Series([], dtype=np.int64),
                "score": pd.Series([], dtype=float),
            }
        )
        return _Part(index, empty, [], n_dropped)
    try:
        frame = _validate(pdf, dyad, session, score, scale)
    except DataError as exc:
        raise DataError(f"{exc} (in Dask partition {index})") from None
    span = (frame["dyad"].iloc[0], frame["dyad"].iloc[-1])
    counts = frame.groupby("dyad", sort=False)["session"].size()
    short = counts[counts < MIN_SESSIONS]
    excluded = short.index.tolist()
    if excluded:
        frame = frame.loc[~frame["dyad"].isin(excluded)].reset_index(drop=True)
    return _Part(index, frame, excluded, n_dropped, span)


def _validate(pdf, dyad, session, score, scale) -> pd.DataFrame:
    from .io import validate_sessions

    return validate_sessions(
        pdf, dyad=dyad, session=session, score=score, scale=scale, dropna=False, min_sessions=1
    )


def _partition_info(part: _Part) -> dict[str, Any]:
    """Small per-partition summary: dyad range and count, score moments, exclusions."""
    frame = part.frame
    y = frame["score"].to_numpy(dtype=float)
    n = len(y)
    mean = float(np.mean(y)) if n else 0.0
    m2 = float(np.sum((y - mean) ** 2)) if n else 0.0
    dyads = frame["dyad"]
    n_dyads = len(pd.unique(dyads))
    return {
        "index": part.index,
        "n_rows": n,
        "mean": mean,
        "m2": m2,
        "n_dyads": n_dyads,
        "first": dyads.iloc[0] if n else None,
        "last": dyads.iloc[-1] if n else None,
        "span": part.span,
        "excluded": list(part.excluded),
        "n_dropped": part.n_dropped,
    }


def _subsample_stats(part: _Part, offset: int, step: int, loc: float, sd: float, settings) -> list:
    """Statistics of this partition's dyads whose global sort rank is a multiple of ``step``."""
    frame = part.frame
    if len(frame) == 0:
        return []
    codes, _ = pd.factorize(frame["dyad"], sort=False)
    keep = (offset + codes) % step == 0
    if not keep.any():
        return []
    sub = frame.loc[keep]
    return [block_stats(c, loc, sd, settings) for _, c in _exact.panel_chunks(sub, 1024)]


def _merge_stats(*groups: list) -> list:
    """Per-partition statistics merged into fewer, larger blocks (same configuration grid)."""
    return merge_stats([s for g in groups for s in g])


def _logcdf(use_table: bool):
    """The engine's Student-t log CDF: a fresh table cache per task (no state shared by threads)."""
    return LogTCdf() if use_table else log_t_cdf


def _class_evidence(
    part: _Part, h_std, loc: float, sd: float, settings, chunk_size: int, use_table: bool
) -> np.ndarray:
    if len(part.frame) == 0:
        return np.empty((0, len(CLASSES)))
    logcdf = _logcdf(use_table)
    return np.concatenate(
        [
            _exact.block_class_evidence(c, h_std, loc, sd, settings, logcdf)
            for _, c in _exact.panel_chunks(part.frame, chunk_size)
        ]
    )


def _summary_table(
    part: _Part,
    L: np.ndarray | None,
    h_std,
    loc: float,
    sd: float,
    settings,
    credible_level: float,
    chunk_size: int,
    use_table: bool,
) -> pd.DataFrame:
    """One row per dyad: label, probabilities, change points, class log evidences, log marginal.

    ``L`` are the partition's class log evidences from the EM pass (kept on the worker),
    or None to compute them here.
    """
    logcdf = _logcdf(use_table)
    parts = []
    start = 0
    for ids, c in _exact.panel_chunks(part.frame, chunk_size):
        block_L = None if L is None else L[start:start + len(ids)]
        start += len(ids)
        parts.append(_exact.block_summary(ids, c, h_std, loc, sd, settings, credible_level,
                                          logcdf, L=block_L))
    probs = pd.concat([p[0] for p in parts])
    p = probs.to_numpy(float)
    labels = pd.Series(
        np.asarray(CLASSES, dtype=object)[np.argmax(p / p.sum(axis=1, keepdims=True), axis=1)],
        index=probs.index,
        name="label",
    )
    table = pd.concat(
        [
            labels.astype(str),
            probs.add_prefix("p_"),
            pd.concat([q[1] for q in parts]).reindex(columns=list(CHANGEPOINT_COLUMNS)),
            pd.concat([q[2] for q in parts]).add_prefix("log_evidence_"),
            pd.concat([q[3] for q in parts]),
        ],
        axis=1,
    )
    table.index.name = "dyad"
    table.columns.name = None
    return table


def _empty_head(table: pd.DataFrame) -> pd.DataFrame:
    return table.iloc[:0]


def _log_marginal_sum(table: pd.DataFrame) -> float:
    return float(table["log_marginal"].sum())


# ====================================================================================== result
class DaskClassificationResult:
    """Exact-engine classification of a cohort held on a Dask cluster (or in Parquet).

    Attributes
    ----------
    table : dask.dataframe.DataFrame
        One row per dyad (index ``dyad``): ``label``, ``p_<class>``, the columns of
        :data:`~alliancetraj.results.CHANGEPOINT_COLUMNS`, ``log_evidence_<class>``
        (original units) and ``log_marginal``.
    hyperparameters, settings, diagnostics : dict
        As in the in-memory :class:`~alliancetraj.ClassificationResult`
        (``diagnostics["dask"]`` describes the run).
    excluded : list
        Dyads excluded for having fewer sessions than the engine needs.

    ``compute()`` collects the table into an ordinary
    :class:`~alliancetraj.ClassificationResult`; ``to_parquet(path)`` writes it from
    the workers. A result that started its own ``LocalCluster`` owns it: ``close()``
    (or a ``with`` block) shuts it down; results read from Parquet need no cluster.
    """

    method = "exact"
    exact = True

    def __init__(
        self,
        table,
        *,
        hyperparameters: dict[str, Any],
        settings: dict[str, Any],
        diagnostics: dict[str, Any],
        excluded: list[Any],
        credible_level: float,
        path: str | None = None,
        owned=None,
    ) -> None:
        self.table = table
        self.hyperparameters = hyperparameters
        self.settings = settings
        self.diagnostics = diagnostics
        self.excluded = excluded
        self.credible_level = credible_level
        self.path = path
        self._owned = owned or []
        self._finalizer = (
            weakref.finalize(self, _close_all, list(self._owned)) if self._owned else None
        )

    # ------------------------------------------------------------------------ views (lazy)
    @property
    def probabilities(self):
        """Dask DataFrame: index dyad, columns :data:`~alliancetraj.CLASSES`."""
        probs = self.table[[f"p_{c}" for c in CLASSES]]
        return probs.rename(columns={f"p_{c}": c for c in CLASSES})

    @property
    def labels(self):
        """Dask Series of the most probable class."""
        return self.table["label"]

    @property
    def changepoints(self):
        """Dask DataFrame with the columns of :data:`~alliancetraj.results.CHANGEPOINT_COLUMNS`."""
        return self.table[list(CHANGEPOINT_COLUMNS)]

    @property
    def log_evidence(self):
        """Dask DataFrame of per-class log marginal likelihoods (original units)."""
        cols = [f"log_evidence_{c}" for c in CLASSES]
        return self.table[cols].rename(columns=dict(zip(cols, CLASSES)))

    @property
    def n_dyads(self) -> int:
        return int(self.diagnostics["n_dyads"])

    def __len__(self) -> int:
        return self.n_dyads

    def __repr__(self) -> str:
        where = f"parquet={self.path!r}" if self.path else f"npartitions={self.table.npartitions}"
        return f"DaskClassificationResult(method='exact', n_dyads={self.n_dyads}, {where})"

    # ------------------------------------------------------------------------- materialise
    def compute(self) -> ClassificationResult:
        """Collect the per-dyad table into an in-memory :class:`ClassificationResult`."""
        table = self.table.compute()
        probs = table[[f"p_{c}" for c in CLASSES]].rename(columns=lambda c: c[2:])
        log_ev = table[[f"log_evidence_{c}" for c in CLASSES]]
        log_ev.columns = list(CLASSES)
        return ClassificationResult.from_probabilities(
            probs,
            method="exact",
            changepoints=table[list(CHANGEPOINT_COLUMNS)],
            settings=dict(self.settings),
            log_evidence=log_ev,
            hyperparameters=dict(self.hyperparameters),
            diagnostics=dict(self.diagnostics),
            excluded=list(self.excluded),
            exact=True,
            credible_level=self.credible_level,
        )

    def to_parquet(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the per-dyad table (Parquet, from the workers) and the metadata (JSON).

        ``path`` becomes a Parquet dataset directory with a ``_alliancetraj.json``
        file (hyperparameters, settings, diagnostics, excluded dyads) that Parquet
        readers skip; :meth:`read_parquet` reads both back.
        """
        out = _prepare_out(path, overwrite=overwrite)
        self.table.to_parquet(str(out), write_index=True)
        (out / META_FILE).write_text(_dumps(_meta(self)))
        return out

    @classmethod
    def read_parquet(cls, path: str | os.PathLike) -> DaskClassificationResult:
        """Open a result written by :meth:`to_parquet` (or ``classify(..., out=)``), lazily."""
        dd, _ = _import_dask()
        p = Path(path)
        meta_path = p / META_FILE
        if not meta_path.is_file():
            raise DataError(
                f"{str(p)!r} holds no {META_FILE}: it was not written by alliancetraj's Dask "
                "classify. Give the directory passed as out=."
            )
        meta = json.loads(meta_path.read_text())
        return cls(
            dd.read_parquet(str(p)),
            hyperparameters=meta["hyperparameters"],
            settings=meta["settings"],
            diagnostics=meta["diagnostics"],
            excluded=meta["excluded"],
            credible_level=float(meta["credible_level"]),
            path=str(p),
        )

    # -------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Shut down the client/cluster this result started (no-op otherwise)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> DaskClassificationResult:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _meta(result: DaskClassificationResult) -> dict[str, Any]:
    return {
        "method": "exact",
        "credible_level": result.credible_level,
        "hyperparameters": result.hyperparameters,
        "settings": result.settings,
        "diagnostics": result.diagnostics,
        "excluded": list(result.excluded),
        "alliancetraj_version": _version(),
    }


class _Clock:
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


def _close_all(objs: list) -> None:
    for obj in objs:
        try:
            obj.close()
        except Exception:  # pragma: no cover - best effort at shutdown
            pass


def _version() -> str:
    from ._version import __version__

    return __version__


def _prepare_out(path: str | os.PathLike, *, overwrite: bool) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DataError(f"out={str(out)!r} is a file; give a directory for the Parquet output.")
    if out.is_dir() and any(out.iterdir()):
        if not (overwrite or (out / META_FILE).is_file()):
            raise DataError(
                f"out={str(out)!r} is a non-empty directory that alliancetraj did not write. "
                "Choose a new or empty directory."
            )
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


# ===================================================================================== entry
def _check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(k for k in options if k not in _OPTIONS)
    if unknown:
        raise ValueError(
            f"Unknown option name(s) for classify on Dask: {unknown}. Valid names: "
            f"{sorted(_OPTIONS)}."
        )


def _client(distributed, scheduler, workers, memory_limit, processes):
    """(client, owned objects). An active default client is reused; scheduler= connects."""
    if scheduler is not None:
        if isinstance(scheduler, distributed.Client):
            return scheduler, []
        if not isinstance(scheduler, str):
            raise ValueError(
                "The 'scheduler' parameter must be an address like 'tcp://host:8786' or a "
                f"distributed.Client. Got {type(scheduler).__name__} instead."
            )
        client = distributed.Client(scheduler)
        return client, [client]
    try:
        return distributed.default_client(), []
    except ValueError:
        pass
    cluster = local_cluster(workers, memory_limit=memory_limit, processes=processes)
    client = distributed.Client(cluster)
    return client, [client, cluster]


def local_cluster(
    workers: int | None = None, *, memory_limit: str | int = "4GiB", processes: bool = True
):
    """The embedded ``distributed.LocalCluster`` that :func:`classify_dask` starts.

    ``workers`` single-threaded workers (default: the number of CPUs). Worker processes
    are spawned without distributed's default ``MALLOC_TRIM_THRESHOLD_=65536``: that
    setting turns off glibc's adaptive mmap threshold, so every large NumPy temporary
    of the engine is mapped and unmapped afresh; without it the per-partition passes
    ran about 25-30% faster here (benchmarks/results/dask_benchmark*.md).
    """
    import dask
    import distributed

    if workers is None:
        workers = max(1, os.cpu_count() or 1)
    workers = check_int(_OWNER, "workers", workers, 1)
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            memory_limit=memory_limit,
            # an ephemeral loopback port: with None the scheduler's HTTP server still tries
            # the default port 8787, and when another cluster holds it, tornado leaks the
            # socket it failed to bind (a ResourceWarning at garbage collection)
            dashboard_address="127.0.0.1:0",
        )


def _source_frame(dd, sessions, dyad, session, score):
    if isinstance(sessions, (str, os.PathLike)):
        path = Path(sessions)
        if not path.exists():
            raise DataError(f"Directory {str(path)!r} does not exist. Check the path.")
        try:
            ddf = dd.read_parquet(str(path))
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(
                f"Could not read {str(path)!r} as a Parquet dataset ({first}). Give a directory "
                "of Parquet files (one row per rated session)."
            ) from exc
    else:
        ddf = sessions
    from .io import _resolve_column

    empty = pd.DataFrame(columns=list(ddf.columns))
    cols = [
        _resolve_column(empty, c, role, role)
        for c, role in ((dyad, "dyad"), (session, "session"), (score, "score"))
    ]
    if len(set(cols)) < 3:
        raise DataError(
            f"The dyad, session and score columns must be three different columns; got "
            f"dyad={dyad!r}, session={session!r}, score={score!r}."
        )
    return ddf[cols]


def _ordered(infos: list[dict]) -> list[dict] | None:
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


def classify_dask(
    sessions,
    *,
    method: str = "exact",
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    scale: tuple[float, float] | None = None,
    dropna: bool = False,
    **options: Any,
) -> DaskClassificationResult:
    """Classify a cohort held in a dask DataFrame or a Parquet dataset directory.

    Called by :func:`alliancetraj.classify` for such input; the sessions are never
    collected on one machine.

    Parameters
    ----------
    sessions : dask.dataframe.DataFrame, or path to a directory of Parquet files
        Long session data (one row per rated session).
    method : {"exact"}
        Only the exact engine scales out.
    dyad, session, score, scale, dropna
        As in :func:`alliancetraj.classify`.
    **options
        The exact engine's options (``hyperparameters``, ``fit_class_probs``,
        ``max_rupture_length``, ``u_margin``, ``credible_level``, ``eb_max_dyads``,
        ``eb_max_iter``, ``chunk_size``, ``t_cdf``; ``n_jobs``, ``progress`` and ``seed`` are
        accepted and ignored), and:

        ``scheduler`` : str or distributed.Client, optional
            ``"tcp://host:port"`` connects to an existing cluster. Without it, an
            active client is used, else an embedded ``LocalCluster`` is started.
        ``workers`` : int, optional
            Workers of the embedded cluster (default: the number of CPUs), one
            thread each.
        ``memory_limit`` : str, default "4GiB"
            Memory limit per worker of the embedded cluster.
        ``processes`` : bool, default True
            Worker processes (True) or threads (False) in the embedded cluster.
        ``out`` : path, optional
            Write the per-dyad table as Parquet (plus ``_alliancetraj.json``) to this
            directory; the embedded cluster is then shut down and the returned
            result reads the Parquet lazily.

    Returns
    -------
    DaskClassificationResult
        ``.compute()`` gives the :class:`~alliancetraj.ClassificationResult` the
        in-memory engine returns on the same data (to floating-point tolerance).

    Examples
    --------
    >>> import dask.dataframe as dd  # doctest: +SKIP
    >>> res = at.classify(dd.read_parquet("cohort/"), workers=2)  # doctest: +SKIP
    >>> res.compute().labels.value_counts()  # doctest: +SKIP
    """
    dd, distributed = _import_dask()
    if method != "exact":
        raise ValueError(
            f"classify on Dask supports method='exact' only. Got method={method!r}; collect a "
            "sample with .compute() to use other methods."
        )
    _check_options(options)
    exact_options = ExactOptions.from_options(
        **{k: v for k, v in options.items() if k in _EXACT_OPTIONS})
    if scale is not None:
        from .io import _check_scale

        scale = _check_scale(scale)
    out = options.get("out")
    if out is not None:
        out = _prepare_out(out, overwrite=False)

    ddf = _source_frame(dd, sessions, dyad, session, score)
    client, owned = _client(
        distributed,
        options.get("scheduler"),
        options.get("workers"),
        options.get("memory_limit", "4GiB"),
        bool(options.get("processes", True)),
    )
    try:
        result = _run(
            dd,
            distributed,
            client,
            ddf,
            dyad,
            session,
            score,
            scale,
            dropna,
            options=exact_options,
            out=out,
        )
    except BaseException:
        _close_all(owned)
        raise
    if out is not None:
        _close_all(owned)
        return DaskClassificationResult.read_parquet(out)
    result._owned = owned
    result._finalizer = weakref.finalize(result, _close_all, list(owned)) if owned else None
    return result


def _validated(dd, client, ddf, dyad, session, score, scale, dropna):
    from dask import delayed

    parts = [
        delayed(_validate_partition)(d, i, dyad, session, score, scale, dropna)
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
    infos = client.gather(client.map(_partition_info, futures, pure=False))
    return futures, infos


def _by_worker(client, futures) -> dict[str, list]:
    """Group futures by a worker that holds them (so consolidation moves no data)."""
    who = client.who_has(futures)
    groups: dict[str, list] = {}
    for f in futures:
        holders = sorted(who.get(f.key, ()))
        groups.setdefault(holders[0] if holders else "", []).append(f)
    return groups


def _consolidate(client, func, futures) -> list:
    from distributed import wait

    wait(futures)
    blocks = []
    for worker, futs in _by_worker(client, futures).items():
        where = {"workers": [worker], "allow_other_workers": True} if worker else {}
        blocks.append(client.submit(func, *futs, pure=False, **where))
    return blocks


def _eb_groups(client, ordered_futs, order, n_dyads, eb_max_dyads, loc, sd, settings):
    """The empirical-Bayes subsample's statistics, left on the workers: ``(groups, n_sub)``.

    Every ``step``-th dyad in global sort order (as in the in-memory engine) is picked
    on its own partition; its statistics are merged into one block per worker.
    """
    step = max(1, math.ceil(n_dyads / eb_max_dyads))
    offsets = np.concatenate([[0], np.cumsum([i["n_dyads"] for i in order])[:-1]])
    sub = client.map(
        _subsample_stats,
        ordered_futs,
        [int(o) for o in offsets],
        step=step,
        loc=loc,
        sd=sd,
        settings=settings,
        pure=False,
    )
    groups = _consolidate(client, _merge_stats, sub)
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
        return _consolidate(self.client, fn, handles)


def _run(
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
    out,
):
    clock = _Clock()
    executor = DaskExecutor(client)
    settings = options.settings
    # ---- 1. validate per partition; repartition by dyad when dyads are not kept together ------
    futures, infos = _validated(dd, client, ddf, dyad, session, score, scale, dropna)
    repartitioned = False
    order = _ordered(infos)
    if order is None:
        del futures
        # range-partition by dyad: every dyad's rows land in one partition, partitions in order
        ddf = ddf.set_index(dyad, sort=True).reset_index()
        futures, infos = _validated(dd, client, ddf, dyad, session, score, scale, dropna)
        repartitioned = True
        order = _ordered(infos)
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
    valid = {i["index"]: futures[i["index"]] for i in order}
    del futures
    ordered_futs = [valid[i["index"]] for i in order]

    placement = _by_worker(client, ordered_futs)
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
        groups, n_sub = _eb_groups(client, ordered_futs, order, n_dyads, options.eb_max_dyads,
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
        L_futs = executor.map(_class_evidence, ordered_futs, h_std=h_std, loc=loc, sd=sd,
                              settings=settings, chunk_size=options.chunk_size,
                              use_table=use_table)
        h_std, em_iterations = fit_class_proportions(executor, L_futs, n_dyads=n_dyads,
                                                     h_std=h_std)

    clock.lap("class_proportions")
    # ---- 5. posteriors and change points per partition ----------------------------------------
    # (the EM pass's class log evidences stay on the workers and are reused here)
    tables = client.map(
        _summary_table,
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
    meta = client.submit(_empty_head, tables[0], pure=False).result()
    firsts = [i["first"] for i in order]
    divisions = (*firsts, order[-1]["last"])
    table = dd.from_delayed(tables, meta=meta, divisions=divisions, verify_meta=False)
    log_marginal = sum(client.gather(client.map(_log_marginal_sum, tables, pure=False)))
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
    result = DaskClassificationResult(
        table,
        hyperparameters=template.hyperparameters,
        settings=template.settings,
        diagnostics=diagnostics,
        excluded=excluded,
        credible_level=options.credible_level,
    )
    if out is not None:
        result.to_parquet(out, overwrite=True)
        clock.lap("write")
        (Path(out) / META_FILE).write_text(_dumps(_meta(result)))
    return result
