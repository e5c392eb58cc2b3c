"""The Dask scale-out's partition tasks: what runs on the workers, one partition at a time.

Each task takes a validated partition (:class:`Part`) or its blocks and returns
something small (a summary, statistics, class evidences, a per-dyad table); the
client-side driver is :mod:`alliancetraj.scale_run`, the entry point
:func:`alliancetraj.scale.classify_dask`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .models import exact as _exact
from .models.changepoint.spec import MIN_SESSIONS
from .models.changepoint.statistics import block_stats, merge_stats
from .models.changepoint.tcdf import LogTCdf
from .models.changepoint.tdist import log_t_cdf
from .results import CHANGEPOINT_COLUMNS, CLASSES

__all__ = ["EVIDENCE_COLUMNS", "TABLE_COLUMNS", "Part", "class_evidence", "empty_head",
           "log_marginal_sum", "merge_groups", "partition_info", "split_table",
           "subsample_stats", "summary_table", "validate_partition"]


@dataclass
class Part:
    """A validated partition and what the client needs to know about it."""

    index: int
    frame: pd.DataFrame
    excluded: list[Any] = field(default_factory=list)
    n_dropped: int = 0
    #: first and last dyad before short dyads were excluded (to detect dyads cut across partitions)
    span: tuple[Any, Any] | None = None


def validate_partition(
    pdf: pd.DataFrame,
    index: int,
    dyad: Hashable,
    session: Hashable,
    score: Hashable,
    scale,
    dropna: bool,
) -> Part:
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
        return Part(index, empty, [], n_dropped)
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
    return Part(index, frame, excluded, n_dropped, span)


def _validate(pdf, dyad, session, score, scale) -> pd.DataFrame:
    from .io import validate_sessions

    return validate_sessions(
        pdf, dyad=dyad, session=session, score=score, scale=scale, dropna=False, min_sessions=1
    )


def partition_info(part: Part) -> dict[str, Any]:
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


def subsample_stats(part: Part, offset: int, step: int, loc: float, sd: float, settings) -> list:
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


def merge_groups(*groups: list) -> list:
    """Per-partition statistics merged into fewer, larger blocks (same configuration grid)."""
    return merge_stats([s for g in groups for s in g])


def _logcdf(use_table: bool):
    """The engine's Student-t log CDF: a fresh table cache per task (no state shared by threads)."""
    return LogTCdf() if use_table else log_t_cdf


def class_evidence(
    part: Part, h_std, loc: float, sd: float, settings, chunk_size: int, use_table: bool
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


def summary_table(
    part: Part,
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


#: The per-dyad evidence columns, kept apart from the table (which matches the in-memory one).
EVIDENCE_COLUMNS = (*(f"log_evidence_{c}" for c in CLASSES), "log_marginal")
#: The in-memory result's table (:meth:`~alliancetraj.ClassificationResult.to_frame`) columns.
TABLE_COLUMNS = ("label", *(f"p_{c}" for c in CLASSES), *CHANGEPOINT_COLUMNS)


def split_table(frame):
    """``(table, evidence)`` of a (pandas or Dask) frame of :func:`summary_table` columns.

    ``table`` has the in-memory result's columns (:data:`TABLE_COLUMNS`); ``evidence``
    has those of :data:`EVIDENCE_COLUMNS` that ``frame`` holds.
    """
    return frame[list(TABLE_COLUMNS)], frame[[c for c in EVIDENCE_COLUMNS if c in frame.columns]]


def empty_head(table: pd.DataFrame) -> pd.DataFrame:
    return table.iloc[:0]


def log_marginal_sum(table: pd.DataFrame) -> float:
    return float(table["log_marginal"].sum())
