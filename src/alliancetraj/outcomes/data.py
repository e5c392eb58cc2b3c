"""Data for :func:`alliancetraj.relate_outcomes`: alignment, checks, standardisation.

``prepare`` aligns the outcomes with the classification result (dyad ids, numeric
columns, missing values). The checks find what the data cannot answer before any
fitting: a constant outcome (:class:`~alliancetraj.DataError`), constant or collinear
covariates (dropped, NaN coefficients, a note), classes with fewer than two assigned
dyads or (binomial) whose assigned dyads all share one outcome value (their effects are
NaN), and separation by the covariates (a linear program). ``Scaling`` standardises the
outcome (gaussian) and covariates, and maps the fitted coefficients and their
covariance back: every estimator works on unit-free data, so its effects scale with the
outcome exactly and a covariate's units change only its own coefficient.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ExcludedDyadsWarning, format_ids
from ..results import CLASSES, ClassificationResult

__all__ = ["Scaling", "class_counts", "constant", "covariate_separation", "prepare",
           "redundant_columns"]

#: spread below this fraction of the largest absolute value: constant
RELATIVE_SPREAD = 1e-9


def prepare(
    result: ClassificationResult,
    outcomes: pd.DataFrame,
    outcome: Hashable,
    covariates: Sequence[Hashable],
    family: str,
    dyad: Hashable | None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[Any]]:
    """Align outcomes with the result; return (probabilities, y, X_cov, excluded)."""
    if not isinstance(result, ClassificationResult):
        raise TypeError(
            "The 'result' parameter of relate_outcomes must be a ClassificationResult "
            f"(from alliancetraj.classify). Got {type(result).__name__} instead."
        )
    if not isinstance(outcomes, pd.DataFrame):
        raise DataError(f"Outcomes must be a pandas DataFrame; got {type(outcomes).__name__}.")
    frame = outcomes
    if dyad is not None:
        if dyad not in frame.columns:
            raise DataError(
                f"Column {dyad!r} (dyad) is not in the outcomes; columns are "
                f"{format_ids(list(frame.columns), 10)}. Pass dyad=None to use the index."
            )
        frame = frame.set_index(dyad)  # a new frame: the caller's is not modified
    needed = [outcome, *covariates]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"Column(s) {format_ids(missing)} are not in the outcomes; columns are "
            f"{format_ids(list(frame.columns), 10)}. Check the outcome= and covariates= names."
        )
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()].unique().tolist()
        raise DataError(
            f"The outcomes have {len(dup)} duplicated dyad id(s): {format_ids(dup)}. Keep one "
            "row per dyad."
        )
    known = set(result.dyads)
    known_excluded = set(result.excluded)
    unknown = [d for d in frame.index if d not in known and d not in known_excluded]
    if unknown:
        hint = ""
        sample = result.dyads[:1].tolist()
        if sample and type(sample[0]) is not type(unknown[0]):
            hint = (f" The result's ids are {type(sample[0]).__name__} (e.g. {sample[0]!r}); "
                    f"the outcomes' are {type(unknown[0]).__name__}.")
        raise DataError(
            f"The outcomes' dyad ids do not match the classification result: {len(unknown)} "
            f"id(s) are not in it: {format_ids(unknown)}.{hint} Index the outcomes by the "
            "dyad ids used in classify() (or pass dyad='column'), or subset them with "
            "outcomes.loc[outcomes.index.intersection(result.dyads)]."
        )
    frame = frame.reindex(result.dyads)
    columns: dict[Hashable, np.ndarray] = {}
    for col in needed:
        raw = frame[col]
        if pd.api.types.is_bool_dtype(raw.dtype):
            columns[col] = raw.astype(float).to_numpy()
            continue
        if isinstance(raw.dtype, pd.CategoricalDtype):
            raw = raw.astype(object)
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = (num.isna() & raw.notna()).to_numpy()
        if bad.any():
            ids = frame.index[bad].tolist()
            role = "outcome" if col == outcome else "covariate"
            raise DataError(
                f"Column {col!r} ({role}) has {bad.sum()} non-numeric value(s) for dyad(s) "
                f"{format_ids(ids)} (e.g. {raw[bad].iloc[0]!r}). Convert it to numbers "
                "(dummy-code categorical covariates)."
            )
        values = num.to_numpy()
        if np.isinf(values).any():
            ids = frame.index[np.isinf(values)].tolist()
            raise DataError(
                f"Column {col!r} has infinite value(s) for dyad(s) {format_ids(ids)}. Replace "
                "them with valid values or NaN."
            )
        columns[col] = values
    y = columns[outcome]
    if family == "binomial":
        bad = ~np.isnan(y) & ~np.isin(y, (0.0, 1.0))
        if bad.any():
            ids = frame.index[bad].tolist()
            raise DataError(
                f"Column {outcome!r} (outcome) must hold 0/1 for family='binomial'; dyad(s) "
                f"{format_ids(ids)} have other values. Recode it as 0/1 or use "
                "family='gaussian'."
            )
    X = np.column_stack([columns[c] for c in covariates]) if covariates else \
        np.empty((len(y), 0))
    drop = np.isnan(y) | np.isnan(X).any(axis=1)
    excluded: list[Any] = []
    if drop.any():
        excluded = result.dyads[drop].tolist()
        no_y = int(np.isnan(y).sum())
        no_x = int((~np.isnan(y) & np.isnan(X).any(axis=1)).sum())
        if drop.all():
            raise DataError(
                f"No dyad of the classification result has both the outcome {outcome!r} and "
                f"the covariates: nothing to fit (e.g. {format_ids(excluded)})."
            )
        warnings.warn(
            f"Excluded {drop.sum()} of {len(y)} dyad(s) from the outcome model: {no_y} without "
            f"an outcome {outcome!r}" + (f", {no_x} with a missing covariate" if no_x else "")
            + f" ({format_ids(excluded)}).",
            ExcludedDyadsWarning,
            stacklevel=3,
        )
    probs = result.probabilities.loc[:, list(CLASSES)].iloc[~drop]
    return probs, y[~drop], X[~drop], excluded


def constant(values: np.ndarray) -> bool:
    """True when the values' spread is 0 or below ``RELATIVE_SPREAD`` of their magnitude."""
    spread = float(np.ptp(values)) if len(values) else 0.0
    return spread == 0.0 or spread <= RELATIVE_SPREAD * float(np.max(np.abs(values)))


def redundant_columns(Z: np.ndarray, first: int) -> list[int]:
    """Columns ``j >= first`` of ``Z`` in the span of the columns kept before them.

    Greedy, in order: a column whose residual after projection on the kept columns is
    below ``1e-8`` of its own norm (after centring) is redundant.
    """
    kept = list(range(first))
    drop = []
    for j in range(first, Z.shape[1]):
        col = Z[:, j]
        basis = Z[:, kept]
        coef, *_ = np.linalg.lstsq(basis, col, rcond=None)
        resid = col - basis @ coef
        norm = np.linalg.norm(col - col.mean()) if len(col) else 0.0
        if norm == 0.0 or np.linalg.norm(resid) <= 1e-8 * norm:
            drop.append(j)
        else:
            kept.append(j)
    return drop


def class_counts(modal: np.ndarray, y: np.ndarray, family: str) -> pd.DataFrame:
    """Dyads assigned to each class (and, binomial, by outcome value)."""
    K = len(CLASSES)
    table = {"n_assigned": np.bincount(modal, minlength=K)}
    if family == "binomial":
        table["n_outcome_0"] = np.bincount(modal[y == 0], minlength=K)
        table["n_outcome_1"] = np.bincount(modal[y == 1], minlength=K)
    return pd.DataFrame(table, index=pd.Index(CLASSES, name="class"))


def covariate_separation(Z: np.ndarray, y: np.ndarray) -> bool:
    """True when some ``b != 0`` has ``(2y - 1) z'b >= 0`` for every dyad.

    That is (quasi-)complete separation (Albert & Anderson 1984): the logistic
    likelihood has no finite maximum. Found by a linear program (maximise the sum of
    ``(2y - 1) z'b`` subject to those constraints and ``|b| <= 1``; Konis 2007).
    """
    from scipy.optimize import linprog

    s = 2 * y - 1
    A = -(s[:, None] * Z)  # -(s z'b) <= 0
    c = A.sum(axis=0)      # minimise -sum s z'b
    out = linprog(c, A_ub=A, b_ub=np.zeros(len(y)), bounds=[(-1, 1)] * Z.shape[1],
                  method="highs")
    if out.status != 0:
        return False
    return -float(out.fun) > 1e-6 * max(1.0, float(np.abs(Z).sum(axis=1).max()))


@dataclass
class Scaling:
    """Centre and scale of the outcome (gaussian only) and of each covariate.

    The fitted model on standardised data, ``(y - my) / sy = b0 + d_k + sum g_j
    (x_j - mx_j) / sx_j``, is the model ``y = B0 + D_k + sum G_j x_j`` with
    ``D_k = sy d_k``, ``G_j = sy g_j / sx_j`` and
    ``B0 = my + sy (b0 - sum g_j mx_j / sx_j)``: a linear map ``T`` plus a shift.
    """

    y_center: float
    y_scale: float
    x_center: np.ndarray
    x_scale: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, X: np.ndarray, family: str) -> Scaling:
        """Standardise a gaussian outcome and every covariate (mean 0, SD 1)."""
        if family == "gaussian":
            yc, ys = float(np.mean(y)), float(np.std(y))
        else:
            yc, ys = 0.0, 1.0
        xc = X.mean(axis=0) if X.shape[1] else np.zeros(0)
        xs = X.std(axis=0) if X.shape[1] else np.ones(0)
        return cls(yc, ys, xc, xs)

    def apply(self, y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The standardised outcome and covariates."""
        return (y - self.y_center) / self.y_scale, (X - self.x_center) / self.x_scale

    def matrix(self, n_eff: int) -> tuple[np.ndarray, np.ndarray]:
        """``(T, shift)``: original coefficients ``T @ b + shift`` for ``[b0, d, g]``."""
        m = len(self.x_center)
        p = 1 + n_eff + m
        T = np.zeros((p, p))
        T[0, 0] = self.y_scale
        T[0, 1 + n_eff:] = -self.y_scale * self.x_center / self.x_scale
        idx = np.arange(1, 1 + n_eff)
        T[idx, idx] = self.y_scale
        jdx = np.arange(1 + n_eff, p)
        T[jdx, jdx] = self.y_scale / self.x_scale
        shift = np.zeros(p)
        shift[0] = self.y_center
        return T, shift

    def back(self, beta: np.ndarray, cov: np.ndarray, n_eff: int
             ) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients and covariance on the original scales."""
        T, shift = self.matrix(n_eff)
        return T @ beta + shift, T @ cov @ T.T
