"""Classification-error matrices of hard-label classifiers, estimated on simulated cohorts.

:func:`estimate_error_matrix` runs :func:`alliancetraj.classify` on cohorts from
:func:`alliancetraj.simulate_cohort` and tabulates ``P(assigned class | true class)``,
the matrix that :func:`alliancetraj.relate_outcomes` (``method="bch"`` or ``"ml"``)
needs for classifiers whose probabilities are 0/1. It sits above both the classifier and
the simulator in the layers (and is also importable from :mod:`alliancetraj.outcomes`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .errors import ExcludedDyadsWarning
from .results import CLASSES

__all__ = ["estimate_error_matrix"]


def estimate_error_matrix(
    method: str = "rules",
    *,
    n_cohorts: int = 5,
    n_dyads: int = 400,
    seed: int | np.random.Generator | None = None,
    classify_options: Mapping[str, Any] | None = None,
    **simulate_options: Any,
) -> pd.DataFrame:
    """Estimate ``P(assigned class | true class)`` of a classifier on simulated cohorts.

    For classifiers that output hard labels (``rules``, ``pelt``, ``growth``) the
    probabilities carry no information about misclassification; this matrix, passed
    as ``relate_outcomes(..., method="bch", error_matrix=...)``, supplies it. Simulate
    cohorts that resemble the study (``n_sessions``, ``noise``, ... in
    ``simulate_options``): the matrix is only as good as that resemblance.

    Parameters
    ----------
    method : str, default "rules"
        Classification method (see :func:`alliancetraj.classify`).
    n_cohorts, n_dyads : int
        Number and size of simulated cohorts.
    seed : int or numpy Generator, optional
    classify_options : dict, optional
        Passed to :func:`alliancetraj.classify`.
    **simulate_options
        Passed to :func:`alliancetraj.simulate_cohort`.

    Returns
    -------
    DataFrame
        Index ``true`` class, columns ``assigned`` class (both :data:`CLASSES`); rows
        sum to 1. ``attrs["n_dyads"]`` holds the dyads per true class.
    """
    from .dispatch import classify
    from .simulate import simulate_cohort

    rng = np.random.default_rng(seed)
    K = len(CLASSES)
    counts = np.zeros((K, K))
    for _ in range(int(n_cohorts)):
        cohort = simulate_cohort(n_dyads, seed=rng, **simulate_options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExcludedDyadsWarning)
            res = classify(cohort.sessions, method=method, **dict(classify_options or {}))
        true = cohort.truth["true_class"].reindex(res.dyads).cat.codes.to_numpy()
        assigned = res.labels.cat.codes.to_numpy()
        np.add.at(counts, (true, assigned), 1)
    rowsum = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        D = np.where(rowsum > 0, counts / rowsum, np.eye(K))
    out = pd.DataFrame(D, index=pd.Index(CLASSES, name="true"),
                       columns=pd.Index(CLASSES, name="assigned"))
    out.attrs["n_dyads"] = dict(zip(CLASSES, rowsum.ravel().astype(int).tolist(), strict=True))
    out.attrs["method"] = method
    return out
