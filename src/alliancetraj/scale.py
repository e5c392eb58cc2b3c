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
:class:`~alliancetraj.scale_run.DaskExecutor` instead of threads, and the options are validated by the same
:class:`~alliancetraj.models.exact_phases.ExactOptions`; what is Dask's own here is the
partition validation (tasks in :mod:`alliancetraj.scale_tasks`), the placement of blocks
on workers (the driver, :mod:`alliancetraj.scale_run`) and the Parquet I/O here. With the
same data, the result equals the in-memory engine's to floating-point tolerance
(tests/test_scale.py checks this on a 2-worker ``LocalCluster``).

Dask is an optional dependency: ``pip install alliancetraj[dask]``.
"""

from __future__ import annotations

import json
import os
import re
import weakref
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ._files import atomic_dir, check_dir_target, write_text_atomic
from ._validation import check_int
from .errors import DataError
from .models.exact_phases import ExactOptions
from .results import CHANGEPOINT_COLUMNS, CLASSES, ClassificationResult, _dumps
from .scale_run import run
from .scale_tasks import split_table

__all__ = ["DaskClassificationResult", "classify_dask", "local_cluster"]

_OWNER = "classify(method='exact')"

_INSTALL = "pip install alliancetraj[dask]"
#: Metadata file written next to the Parquet table (Parquet readers skip names starting with "_").
META_FILE = "_alliancetraj.json"
#: Parquet files of the per-dyad evidence beside the result table in the output directory,
#: named so that readers of the table skip them: pandas and pyarrow skip names starting with
#: "_", Dask reads only the endings .parquet, .parq and .pq (and reads "_" files).
EVIDENCE_FILES = "_evidence.{}.pqt"
#: The exact engine's options (validated by ExactOptions) and those of the Dask run.
_EXACT_OPTIONS = ("hyperparameters", "fit_class_probs", "size_floor", "max_rupture_length",
                  "u_margin",
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


# ====================================================================================== result
class DaskClassificationResult:
    """Exact-engine classification of a cohort held on a Dask cluster (or in Parquet).

    Attributes
    ----------
    table : dask.dataframe.DataFrame
        One row per dyad (index ``dyad``) with the columns, in order and with the
        dtypes, of the in-memory :meth:`ClassificationResult.to_frame
        <alliancetraj.ClassificationResult.to_frame>` (what ``alliancetraj classify``
        writes for a file): ``label``, ``p_<class>`` and the columns of
        :data:`~alliancetraj.results.CHANGEPOINT_COLUMNS`.
    evidence : dask.dataframe.DataFrame
        Per dyad, ``log_evidence_<class>`` (original units) and ``log_marginal``; the
        :attr:`log_evidence` view reads it. Written beside the table in the Parquet
        output as ``_evidence.<i>.pqt`` Parquet files (names that Parquet readers of
        the table skip).
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
        evidence=None,
        hyperparameters: dict[str, Any],
        settings: dict[str, Any],
        diagnostics: dict[str, Any],
        excluded: list[Any],
        credible_level: float,
        path: str | None = None,
        owned=None,
    ) -> None:
        if evidence is None:  # one frame of every column (as written before the split)
            table, evidence = split_table(table)
        self.table = table
        self.evidence = evidence
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
        return self.evidence[cols].rename(columns=dict(zip(cols, CLASSES)))

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
        log_ev = self.evidence[[f"log_evidence_{c}" for c in CLASSES]].compute()
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

        ``path`` becomes a Parquet dataset directory of :attr:`table` (the columns of
        the in-memory result's table), with a ``_alliancetraj.json`` file
        (hyperparameters, settings, diagnostics, excluded dyads) and
        ``_evidence.<i>.pqt`` Parquet files (:attr:`evidence`), which Parquet readers of
        ``path`` skip; :meth:`read_parquet` reads all three back.
        """
        out = _prepare_out(path, overwrite=overwrite)
        # written beside, swapped in when complete: an interrupted write keeps the old output
        with atomic_dir(out, _owned_entry) as tmp:
            self.table.to_parquet(str(tmp), write_index=True)
            self.evidence.to_parquet(str(tmp), write_index=True,
                                     name_function=EVIDENCE_FILES.format)
            (tmp / META_FILE).write_text(_dumps(_meta(self)))
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
        evidence = sorted(p.glob(EVIDENCE_FILES.format("*")),
                          key=lambda f: int(f.name.split(".")[1]))
        import dask

        # text as pandas reads it ("str", as in the in-memory result), not Dask's "string"
        with dask.config.set({"dataframe.convert-string": False}):
            table = dd.read_parquet(str(p))
            # output written before the table and the evidence were split holds both in one
            evidence = dd.read_parquet([str(f) for f in evidence]) if evidence else None
        return cls(
            table,
            evidence=evidence,
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


def _close_all(objs: list) -> None:
    for obj in objs:
        try:
            obj.close()
        except Exception:  # pragma: no cover - best effort at shutdown
            pass


def _version() -> str:
    from ._version import __version__

    return __version__


def _owned_entry(name: str) -> bool:
    """Is ``name`` a file that :meth:`DaskClassificationResult.to_parquet` writes?"""
    return name in _OWNED_NAMES or re.fullmatch(r"part\.\d+\.parquet|_evidence\.\d+\.pqt", name) is not None


_OWNED_NAMES = frozenset({META_FILE, "_metadata", "_common_metadata"})


def _prepare_out(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Check (never change) the output directory: a new, empty or alliancetraj-written one."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DataError(f"out={str(out)!r} is a file; give a directory for the Parquet output.")
    if out.is_dir() and any(out.iterdir()):
        if not (overwrite or (out / META_FILE).is_file()):
            raise DataError(
                f"out={str(out)!r} is a non-empty directory that alliancetraj did not write. "
                "Choose a new or empty directory."
            )
    return check_dir_target(out, _owned_entry, what="out=")


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
        output = run(
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
        )
        result = DaskClassificationResult(
            output.table,
            evidence=output.evidence,
            hyperparameters=output.hyperparameters,
            settings=output.settings,
            diagnostics=output.diagnostics,
            excluded=output.excluded,
            credible_level=exact_options.credible_level,
        )
        if out is not None:
            result.to_parquet(out, overwrite=True)
            output.clock.lap("write")
            write_text_atomic(Path(out) / META_FILE, _dumps(_meta(result)))
    except BaseException:
        _close_all(owned)
        raise
    if out is not None:
        _close_all(owned)
        return DaskClassificationResult.read_parquet(out)
    result._owned = owned
    result._finalizer = weakref.finalize(result, _close_all, list(owned)) if owned else None
    return result


