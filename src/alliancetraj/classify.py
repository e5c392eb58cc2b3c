"""``classify()``: validate at the boundary, then dispatch to a method.

Each method lives in its own module under :mod:`alliancetraj.models` and exposes
``MIN_SESSIONS`` (the shortest series it can classify) and a function that takes
the validated canonical frame (columns ``dyad``, ``session``, ``score``) plus
keyword options and returns a :class:`~alliancetraj.results.ClassificationResult`.
Modules are imported only when their method is used, so ``import alliancetraj``
stays fast.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pandas as pd

from .io import load_sessions
from .results import ClassificationResult

__all__ = ["METHODS", "classify"]

#: method name -> (module, function)
METHODS: dict[str, tuple[str, str]] = {
    "exact": ("alliancetraj.models.exact", "classify_exact"),
    "pymc": ("alliancetraj.models.pymc_mixture", "classify_pymc"),
    "growth": ("alliancetraj.models.growth", "classify_growth"),
    "rules": ("alliancetraj.models.rules", "classify_rules"),
    "pelt": ("alliancetraj.models.pelt", "classify_pelt"),
}


def _method_module(method: str):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"Unknown method {method!r}. Valid methods: {list(METHODS)}."
        )
    module_name, func_name = METHODS[method]
    module = importlib.import_module(module_name)
    return module, getattr(module, func_name)


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
) -> ClassificationResult:
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

    Raises
    ------
    DataError
        When the data violate the data contract.
    ValueError
        For an unknown method or option.
    """
    module, func = _method_module(method)
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
        min_sessions=int(getattr(module, "MIN_SESSIONS", 1)),
    )
    result = func(frame, **options)
    excluded = list(frame.attrs.get("excluded_dyads", []))
    if excluded:
        result.excluded = list(result.excluded) + excluded
    return result
