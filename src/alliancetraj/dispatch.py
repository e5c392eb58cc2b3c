"""``classify()``: validate at the boundary, then dispatch to a registered method.

Each method is an object registered in :mod:`alliancetraj.methods` that declares
its name, minimum sessions, seed use and valid options, and fits a validated
canonical frame (columns ``dyad``, ``session``, ``score``); its module is imported
only when it is used, so ``import alliancetraj`` stays fast. Dask input (a dask
DataFrame or a directory of Parquet files) runs the exact engine on Dask
(:mod:`alliancetraj.scale`).

(The module is not called ``classify``: that name is the function,
``alliancetraj.classify``.)
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .io import load_sessions
from .methods import get_method
from .results import ClassificationResult

if TYPE_CHECKING:  # pragma: no cover - typing only (scale imports nothing heavy either)
    from .scale import DaskClassificationResult

__all__ = ["classify"]


def _is_dask(obj: object) -> bool:
    return type(obj).__module__.startswith("dask")


def classify(
    sessions: pd.DataFrame | str | os.PathLike,
    method: str = "exact",
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    scale: tuple[float, float] | None = None,
    dropna: bool = False,
    **options: Any,
) -> ClassificationResult | DaskClassificationResult:
    """Classify every dyad's alliance trajectory.

    Parameters
    ----------
    sessions : DataFrame, path, or dask DataFrame
        Long session data (see :func:`alliancetraj.load_sessions`). A dask
        DataFrame or a directory of Parquet files runs on Dask (method ``"exact"``).
    method : {"exact", "pymc", "growth", "rules", "pelt"}, default "exact"
        ``exact``: closed-form Bayesian change-point models (default);
        ``pymc``: hierarchical change-point mixture sampled with NUTS;
        ``growth``: mixed-effects growth model and labelling rules;
        ``rules``: rule-based rupture criteria from the literature;
        ``pelt``: change points by PELT (ruptures) and the same labelling rules.
    dyad, session, score : column names
    scale : (low, high), optional
        Declared range of the score; values outside raise ``DataError``.
    dropna : bool, default False
        Drop rows with a missing score (with a warning) instead of raising.
    **options
        Passed to the method (see each method's documentation).

    Returns
    -------
    ClassificationResult
        In memory; for Dask input a
        :class:`~alliancetraj.scale.DaskClassificationResult` (its table stays on the
        cluster or in Parquet).

    Raises
    ------
    DataError
        When the data violate the data contract.
    ValueError
        For an unknown method or option (the message lists the valid ones).

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=30, seed=2)
    >>> res = at.classify(cohort.sessions, method="rules")
    >>> res.probabilities.shape
    (30, 4)
    """
    spec = get_method(method)
    if _is_dask(sessions) or (
        isinstance(sessions, (str, os.PathLike)) and Path(sessions).is_dir()
    ):
        from .scale import classify_dask

        return classify_dask(
            sessions, method=method, dyad=dyad, session=session, score=score, scale=scale,
            dropna=dropna, **options,
        )
    frame = load_sessions(
        sessions, dyad=dyad, session=session, score=score, scale=scale, dropna=dropna,
        min_sessions=spec.min_sessions,
    )
    result = spec.fit(frame, **options)
    excluded = list(frame.attrs.get("excluded_dyads", []))
    if excluded:
        result.excluded = list(result.excluded) + excluded
    return result
