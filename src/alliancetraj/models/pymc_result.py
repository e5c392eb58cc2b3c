"""The PyMC method's result as users of PyMC expect it: the sampler's full ``InferenceData``.

:func:`classify_pymc` (what ``classify(method="pymc")`` runs) is
:func:`alliancetraj.models.pymc_mixture.classify_pymc` plus an ``observed_data``
group in ``result.idata``: the session scores the model conditioned on, one entry
per rated session (dim ``observation``, with ``dyad`` and ``session`` as
coordinates), and, where an outcome sub-model was fitted, the outcome of every dyad
that has one (dim ``outcome_dyad``). The posterior, ``sample_stats`` (divergences,
tree sizes) and ``log_likelihood`` (per dyad, for LOO) groups come from the sampler
and :mod:`~alliancetraj.models.pymc_mixture`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from ..results import ClassificationResult
from .pymc_mixture import MIN_SESSIONS
from .pymc_mixture import classify_pymc as _sample_mixture

__all__ = ["MIN_SESSIONS", "add_observed_data", "classify_pymc"]


@functools.wraps(_sample_mixture)
def classify_pymc(frame: pd.DataFrame, **options: Any) -> ClassificationResult:
    result = _sample_mixture(frame, **options)
    idata = result.extras.get("idata")
    if idata is not None:
        add_observed_data(idata, frame, result.dyads, options.get("outcomes"),
                          options.get("outcome"))
    return result


def add_observed_data(idata, frame: pd.DataFrame, dyads: pd.Index,
                      outcomes: pd.DataFrame | None = None, outcome: str | None = None) -> None:
    """Add (or replace) ``idata.observed_data``: the scores (and outcome) of the fitted dyads.

    Parameters
    ----------
    idata : arviz.InferenceData
        The sampler's result, modified in place.
    frame : DataFrame
        The canonical session frame (``dyad``, ``session``, ``score``) that was fitted.
    dyads : Index
        The dyads of the result (those not excluded), in the posterior's order.
    outcomes, outcome
        The outcome table and column of an outcome sub-model, if one was fitted.
    """
    import xarray as xr

    rows = frame.loc[frame["dyad"].isin(dyads)]
    ids = _coordinate(rows["dyad"])
    data_vars: dict[str, Any] = {
        "score": xr.DataArray(
            rows["score"].to_numpy(float), dims=("observation",),
            coords={"dyad": ("observation", ids),
                    "session": ("observation", rows["session"].to_numpy(np.int64))}),
    }
    if outcomes is not None and outcome is not None and outcome in outcomes.columns:
        values = pd.to_numeric(outcomes[outcome].reindex(dyads), errors="coerce")
        values = values[values.notna()]
        data_vars[str(outcome)] = xr.DataArray(
            values.to_numpy(float), dims=("outcome_dyad",),
            coords={"outcome_dyad": _coordinate(values.index.to_series())})
    observed = xr.Dataset(data_vars, attrs={"score_units": "the scale of the input scores"})
    if "observed_data" in idata.groups():
        idata.observed_data = observed
    else:
        idata.add_groups(observed_data=observed)


def _coordinate(ids: pd.Series) -> np.ndarray:
    """Dyad ids as the posterior's ``dyad`` coordinate holds them (numbers, else text)."""
    if pd.api.types.is_numeric_dtype(ids.dtype):
        return ids.to_numpy()
    return ids.astype(str).to_numpy().astype("U")
